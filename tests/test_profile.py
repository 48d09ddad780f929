"""bnnbench profile: layers lowered to GEMMs, totals, and a real (tiny) run."""
import json

import pytest

from bnnbench.models import zoo

from bnnbench.measure import profile

from bnnbench.runs import reader
from bnnbench.cli import main
from bnnbench.errors import BnnbenchError

FAST = ["--min-time", "0", "--repeat", "1", "--quiet", "--threads", "1"]


def test_layers_lowered_to_im2col_gemms():
    gemms = {g.layer: g for g in profile.layer_gemms(zoo.get_model("cntk-vgg9"), 4)}
    assert list(gemms) == ["conv1a", "conv1b", "conv2a", "conv2b", "conv3a", "conv3b",
                           "dense1", "dense2", "dense3"]
    g = gemms["conv1a"]
    assert (g.M, g.K, g.N, g.binary) == (64, 3 * 3 * 3, 4 * 32 * 32, False)
    g = gemms["conv2b"]
    assert (g.M, g.K, g.N, g.binary) == (96, 3 * 3 * 96, 4 * 15 * 15, True)
    assert (g.channels, g.filters, g.kernel) == (96, 96, 3)
    g = gemms["dense1"]
    assert (g.M, g.K, g.N, g.kernel, g.binary) == (1024, 3 * 3 * 128, 4, 1, True)
    assert not gemms["dense3"].binary
    with pytest.raises(BnnbenchError, match="batch"):
        profile.layer_gemms(zoo.get_model("cntk-vgg9"), 0)


def test_plan_times_float_layers_with_blas_only():
    gemms = profile.layer_gemms(zoo.get_model("cntk-basic"), 1)
    steps = profile.plan(gemms, ["xnor_64", "xnor_64_omp"], (1, 2))
    by_layer = {}
    for g, t, m in steps:
        by_layer.setdefault(g.layer, []).append((t, m))
    assert by_layer["conv1"] == [(1, "float_blas"), (2, "float_blas")]
    assert by_layer["conv2"] == [(1, "float_blas"), (1, "xnor_64"), (1, "xnor_64_omp"),
                                 (2, "float_blas"), (2, "xnor_64_omp")]


def test_totals_count_float_layers_in_both():
    def row(layer, binary, method, s, threads=1):
        return {"layer": layer, "binary": binary, "method": method, "threads": threads,
                "verified": True, "median_s": s}
    rows = [row("first", False, "float_blas", 1.0),
            row("mid", True, "float_blas", 8.0), row("mid", True, "xnor_64", 0.5),
            row("last", False, "float_blas", 0.5)]
    tot = profile.totals(rows, ["xnor_64"], (1,))
    assert tot == [{"method": "xnor_64", "threads": 1, "float_s": 9.5, "binary_s": 2.0,
                    "speedup": 9.5 / 2.0}]
    rows[2]["verified"] = False     # an unverified layer leaves no total
    assert profile.totals(rows, ["xnor_64"], (1,)) == []


def test_methods_must_be_binary():
    with pytest.raises(BnnbenchError, match="not a binary method"):
        profile.check_methods(["float_gemm"])
    with pytest.raises(BnnbenchError, match="unknown method"):
        profile.check_methods(["xnor_128"])


def test_cli_profile_run_file(tmp_path, capsys):
    assert main(["profile", "cntk-bnn", "--batch", "1", "--methods", "xnor_64",
                 "--out", str(tmp_path), "--format", "json", "--label", "ci-host", *FAST]) == 0
    printed = json.loads(capsys.readouterr().out)
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    run = reader.load_run(str(files[0]))
    assert run == printed and run["kind"] == "profile" and run["status"] == "complete"
    assert all(r["verified"] for r in run["rows"])
    # 4 layers with float_blas, the 3 binary ones also with xnor_64.
    assert len(run["rows"]) == 4 + 3
    assert {r["layer"] for r in run["rows"] if r["method"] == "xnor_64"} == \
        {"bconv2", "bconv3", "bconv4"}
    (total,) = run["totals"]
    assert total["method"] == "xnor_64" and total["float_s"] > 0 and total["binary_s"] > 0
    df = reader.load_frame([str(files[0])])
    assert {"layer", "method", "median_s", "M", "K", "N"} <= set(df.columns)


def test_cli_profile_table(tmp_path, capsys):
    assert main(["profile", "cntk-basic", "--batch", "1", "--out", str(tmp_path), *FAST]) == 0
    out = capsys.readouterr().out
    assert "whole network" in out and "xnor_64_x" in out and "conv2" in out


@pytest.mark.parametrize("args,message", [
    (["nonet"], "unknown model 'nonet'"),
    (["cntk-basic", "--methods", "float_blas"], "not a binary method"),
])
def test_cli_profile_errors(tmp_path, capsys, args, message):
    assert main(["profile", *args, "--out", str(tmp_path), *FAST]) == 2
    assert message in capsys.readouterr().err


def test_layer_level_profile(tmp_path, capsys):
    convs = {c.layer: c for c in profile.layer_convs(zoo.get_model("cntk-bnn"), 2)}
    c = convs["bconv2"]
    assert (c.channels, c.filters, c.kernel, c.height, c.binary) == (32, 128, 3, 15, True)
    assert main(["profile", "cntk-bnn", "--level", "conv", "--out", str(tmp_path), *FAST]) == 0
    out = capsys.readouterr().out
    assert "conv_float_blas_ms" in out and "conv_xnor_64_x" in out
    run = reader.load_run(str(next(tmp_path.glob("*.json"))))
    assert all(r["verified"] and r["level"] == "conv" for r in run["rows"])
    assert {t["method"] for t in run["totals"]} == {"conv_xnor_64", "conv_xnor_64_omp"}
