"""Run files: atomic writes, validation of untrusted files, the DataFrame."""
import json
import warnings

import numpy as np
import pytest

from bnnbench.runs import frame, reader, schema
from bnnbench.runs.writer import RunWriter, new_run


def sweep_row(method="xnor_64", median=0.01, threads=1):
    return {"method": method, "kind": "xnor" if "xnor" in method else "float",
            "threads": threads, "M": 64, "N": 512, "K": 800, "channels": 32, "filters": 64,
            "kernel": 5, "batch": 8, "out_size": 8, "verified": True,
            "samples_s": [median] * 3, "min_s": median, "median_s": median, "iqr_s": 0.0,
            "gops": 1.0}


def make_run(tmp_path, label="hostA", rows=None):
    run = new_run("sweep", {"label": label, "arch": "x86_64"}, {"x": 1}, "bnnbench sweep")
    writer = RunWriter(run, str(tmp_path))
    for row in rows or [sweep_row("float_blas", 0.1), sweep_row("xnor_64", 0.01)]:
        writer.add_row(row)
    writer.finish()
    return writer.path


def test_round_trip_and_frame(tmp_path):
    path = make_run(tmp_path)
    run = reader.load_run(path)
    assert run["status"] == "complete" and len(run["rows"]) == 2
    df = frame.add_speedups(reader.load_frame([str(tmp_path)]))
    assert set(df["host_label"]) == {"hostA"}
    assert df.set_index("method").loc["xnor_64", "speedup"] == pytest.approx(10.0)
    assert df.set_index("method").loc["float_blas", "speedup"] == pytest.approx(1.0)


def test_speedups_never_cross_runs(tmp_path):
    make_run(tmp_path / "a", rows=[sweep_row("float_blas", 0.1)])
    make_run(tmp_path / "b", rows=[sweep_row("xnor_64", 0.01)])
    df = frame.add_speedups(reader.load_frame([str(tmp_path)]))
    assert np.isnan(df.set_index("method").loc["xnor_64", "speedup"])


def test_no_temp_files_left(tmp_path):
    make_run(tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


@pytest.mark.parametrize("mutate,reason", [
    (lambda r: "{not json", "not valid JSON"),
    (lambda r: json.dumps(r)[:-40], "not valid JSON"),
    (lambda r: json.dumps([1, 2]), "top level is not an object"),
    (lambda r: json.dumps({"hello": 1}), "not a bnnbench run file"),
    (lambda r: json.dumps(dict(r, schema_version=99)), "newer than this bnnbench"),
    (lambda r: json.dumps(dict(r, kind="mystery")), "unknown run kind"),
    (lambda r: json.dumps(dict(r, host={"label": 3, "arch": "x"})), "host.label"),
    (lambda r: json.dumps(dict(r, rows=[dict(r["rows"][0], median_s="fast")])), "wrong type"),
    (lambda r: json.dumps(dict(r, rows=[dict(r["rows"][0], samples_s=[-1])])), "non-negative"),
    (lambda r: json.dumps(r).replace('"median_s": 0.1', '"median_s": NaN'), "not valid JSON"),
    (lambda r: json.dumps(dict(r, rows=[{k: v for k, v in r["rows"][0].items() if k != "K"}])),
     "lacks 'K'"),
])
def test_rejects_bad_files_with_one_line_reason(tmp_path, mutate, reason):
    good = json.loads(open(make_run(tmp_path)).read())
    bad = tmp_path / "bad.json"
    bad.write_text(mutate(good))
    with pytest.raises(schema.RunFileError, match=reason) as info:
        reader.load_run(str(bad))
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_binary_garbage_is_rejected(tmp_path):
    bad = tmp_path / "garbage.json"
    bad.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(schema.RunFileError):
        reader.load_run(str(bad))


def test_loader_skips_bad_files_with_a_warning(tmp_path):
    make_run(tmp_path)
    (tmp_path / "broken.json").write_text("{")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = reader.load_frame([str(tmp_path)])
    assert len(df) == 2
    assert any("broken.json" in str(w.message) for w in caught)


def test_unverified_rows_load_but_get_no_speedup(tmp_path):
    bad = dict(sweep_row("xnor_64"), verified=False, samples_s=[], min_s=None,
               median_s=None, iqr_s=None)
    path = make_run(tmp_path, rows=[sweep_row("float_blas", 0.1), bad])
    df = frame.add_speedups(reader.load_frame([path]))
    assert np.isnan(df.set_index("method").loc["xnor_64", "speedup"])
