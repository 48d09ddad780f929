"""The model level of the sweep (--level model): whole networks checked
against numpy, timed in turns, saved in the run file, read back into the
frame, the terminal table and the report's "Whole networks" section."""
import json

import numpy as np
import pytest
import cli_child

from bnnbench.measure import levels
from bnnbench.models import zoo
from bnnbench.report.build import build_report
from bnnbench.runs import reader
from bnnbench.runs.frame import add_speedups

# The smallest binary CNN of the zoo keeps the sweep to seconds.
MODEL = "cntk-bnn"


def bnnbench(*args):
    return cli_child.bnnbench(*args, timeout=600)  # whole networks take longer


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("model-run")
    proc = bnnbench("sweep", "--level", "model", "--models", MODEL, "--batch", "1,2",
                    "--threads", "1", "--methods", "net_float,net_bnnbench", "--quick",
                    "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc


def test_rows_are_verified_timed_and_carry_the_network_columns(model_run):
    out, proc = model_run
    (path,) = out.glob("sweep-*.json")
    run = reader.load_run(str(path))
    assert run["settings"]["models"] == [MODEL]
    rows = run["rows"]
    assert {(r["method"], r["batch"]) for r in rows} == {
        (m, b) for m in ("net_float", "net_bnnbench") for b in (1, 2)}
    for r in rows:
        assert r["level"] == "model" and r["verified"] is True and r["median_s"] > 0
        assert "peak_fraction" not in r   # a whole network has no roofline
    own = [r for r in rows if r["method"] == "net_bnnbench"]
    summary = zoo.summarize(zoo.get_model(MODEL))
    assert all(r["deployed_bytes"] == summary["binary_bytes"] for r in own)
    for r in own:   # per-layer breakdown timed in the same turns
        assert {layer["type"] for layer in r["layers"]} <= {"binary", "float", "other"}
        assert any(layer["type"] == "binary" for layer in r["layers"])
        assert 0 < r["outside_binary_share"] < 1
    # The terminal says ms per image and the speedup over the float twin.
    assert "whole networks" in proc.stdout and "vs_net_float" in proc.stdout
    assert "net_bnnbench:" in proc.stderr   # the verdict's headline names the network engine


def test_speedups_are_taken_inside_the_run_per_batch(model_run):
    out, _ = model_run
    df = add_speedups(reader.load_frame([str(out)]))
    for batch, d in df.groupby("batch"):
        base = d[d["method"] == "net_float"]["median_s"].iloc[0]
        own = d[d["method"] == "net_bnnbench"].iloc[0]
        assert own["speedup"] == pytest.approx(base / own["median_s"])


def test_report_has_a_whole_networks_section(model_run, tmp_path):
    out, _ = model_run
    files = build_report([str(out)], str(tmp_path / "report"))
    html = open(files.html, encoding="utf-8").read()
    assert 'id="networks"' in html and "Whole networks" in html
    assert "QuickNet" in html   # the published anchors beside the measured rows
    assert (tmp_path / "report" / "networks_1.csv").exists()


def test_checks_compare_every_engine_with_numpy():
    shape = levels.NetShape(MODEL, 2)
    ops = levels.MODEL.make_operands(shape, 0)
    check = levels.MODEL.check(ops, 0)
    for name in ("net_float", "net_bnnbench"):
        run = levels.MODEL.prepare(name, ops, 1)
        ok, err = check.check(name, run())
        assert ok and err < 1e-3
        wrong = run().copy()
        wrong[0] = -wrong[0]   # a different class: never verified
        assert not check.check(name, wrong)[0]


@pytest.mark.parametrize("args, message", [
    (("--level", "model", "--models", "resnet-9000"), "unknown model"),
    (("--level", "gemm", "--batch", "1,2"), "one value"),
    (("--level", "model", "--methods", "xnor_64"), "belongs to --level gemm"),
])
def test_bad_model_level_options_are_one_line(args, message, tmp_path):
    proc = bnnbench("sweep", *args, "--quick", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_model_row_needs_its_model_fields(tmp_path):
    run = {"schema_version": 1, "kind": "sweep", "run_id": "r", "status": "complete",
           "started_at": "2026-01-01T00:00:00+00:00", "host": {"label": "h", "arch": "x"},
           "rows": [{"level": "model", "method": "net_float", "threads": 1, "batch": 1,
                     "verified": True, "samples_s": [1.0], "min_s": 1.0, "median_s": 1.0,
                     "iqr_s": 0.0}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(run))
    with pytest.raises(reader.RunFileError, match="lacks 'model'"):
        reader.load_run(str(path))
    run["rows"][0]["model"] = MODEL
    path.write_text(json.dumps(run))
    assert reader.load_run(str(path))["rows"][0]["model"] == MODEL


def test_net_shape_describes_the_model():
    shape = levels.NetShape("birealnet18", 1)
    fields = shape.fields()
    assert (fields["height"], fields["width"], fields["channels"]) == (224, 224, 3)
    assert 0.5 < fields["binary_mac_share"] < 1
    assert shape.ops == 2 * sum(np.int64(zoo.summarize(shape.spec)[k])
                                for k in ("float_macs", "binary_macs"))
