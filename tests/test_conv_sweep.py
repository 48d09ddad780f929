"""bnnbench sweep --level conv: whole layers verified, timed, written with a
level field, and their speedups over both float baselines."""
import json

import pandas as pd

from bnnbench.runs import frame, reader
from bnnbench.report.terminal import add_best_float, layer_table

from test_cli import FAST, bnnbench


def test_layer_sweep_rows(tmp_path):
    proc = bnnbench("sweep", "--level", "gemm,conv", "--channels", "3,40", "--batch", "2",
                    "--threads", "1,2", "--stride", "2", "--padding", "same",
                    "--methods",
                    "float_blas,xnor_64,conv_float_blas,conv_xnor_64,conv_xnor_64_omp",
                    "--out", str(tmp_path), *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "whole layers" in proc.stdout and "vs_best_float" in proc.stdout
    run = json.loads(next(tmp_path.glob("*.json")).read_text())
    layers = [r for r in run["rows"] if r["level"] == "conv"]
    assert {r["method"] for r in layers} == {"conv_float_blas", "conv_xnor_64", "conv_xnor_64_omp"}
    assert all(r["verified"] and r["held_bytes"] > 0 and r["stride"] == 2
               and r["padding"] == "same" and r["out_size"] == 8 for r in layers)
    assert all(r["read_bytes"] == r["feature_map_bytes"] for r in layers if r["kind"] == "xnor")
    # The float layer's im2col is timed in the same turns and kept as its share.
    blas = [r for r in layers if r["method"] == "conv_float_blas"]
    assert all(r["im2col_s"] > 0 and 0 < r["im2col_share"] for r in blas)
    assert not any("im2col_s" in r for r in layers if r["kind"] == "xnor")
    assert "im2col_%" in proc.stdout
    df = frame.add_speedups(reader.load_frame([str(tmp_path)]))
    conv = df[df["level"] == "conv"]
    assert (conv[conv["method"] == "conv_float_blas"]["speedup"] == 1).all()
    assert conv["speedup"].notna().all()
    gemm = df[df["level"] == "gemm"]
    assert (gemm[gemm["method"] == "float_blas"]["speedup"] == 1).all()


def test_dabnn_preset_shapes(tmp_path):
    proc = bnnbench("sweep", "--level", "conv", "--preset", "dabnn", "--threads", "1",
                    "--methods", "conv_xnor_64", "--out", str(tmp_path), *FAST)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(next(tmp_path.glob("*.json")).read_text())["rows"]
    assert [(r["height"], r["channels"], r["filters"], r["kernel"], r["batch"], r["padding"])
            for r in rows] == [(56, 64, 64, 3, 1, "same"), (28, 128, 128, 3, 1, "same"),
                               (14, 256, 256, 3, 1, "same"), (7, 512, 512, 3, 1, "same")]


def test_old_rows_load_as_gemm(tmp_path):
    proc = bnnbench("sweep", "--channels", "1", "--threads", "1", "--methods", "float_blas",
                    "--out", str(tmp_path), *FAST)
    assert proc.returncode == 0, proc.stderr
    path = next(tmp_path.glob("*.json"))
    run = json.loads(path.read_text())
    for row in run["rows"]:
        del row["level"]
    path.write_text(json.dumps(run))
    assert set(reader.load_frame([str(path)])["level"]) == {"gemm"}


def test_unavailable_method_is_one_line(tmp_path, monkeypatch):
    proc = bnnbench("sweep", "--level", "gemm", "--methods", "conv_xnor_64",
                    "--out", str(tmp_path), *FAST)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_best_float_is_the_fastest_float_of_the_group():
    base = dict(run_id="r", channels=8, filters=4, kernel=3, batch=1, height=5, width=5,
                stride=1, padding="valid", threads=1, verified=True, iqr_s=0.0,
                held_bytes=1, level="conv", M=4, N=9, K=72, out_size=3)
    df = pd.DataFrame([dict(base, method="conv_float_blas", kind="float", median_s=4.0),
                       dict(base, method="tflite_conv2d", kind="float", median_s=2.0),
                       dict(base, method="conv_xnor_64", kind="xnor", median_s=0.5)])
    out = add_best_float(df).set_index("method")
    assert out.loc["conv_xnor_64", "speedup_best_float"] == 4.0
    table = layer_table(df).set_index("method")
    assert table.loc["conv_xnor_64", "vs_conv_float_blas"] == 8.0


def test_report_has_a_layer_section_first(tmp_path):
    out = tmp_path / "res"
    proc = bnnbench("sweep", "--level", "gemm,conv", "--channels", "8", "--batch", "2",
                    "--threads", "1",
                    "--methods", "float_blas,xnor_64,conv_float_blas,conv_xnor_64",
                    "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    proc = bnnbench("report", str(out), "--out", str(tmp_path / "rep"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "Whole layers" in page and "faster than the best float layer" in page
    assert page.index("Whole layers") < page.index("At a glance")


def test_compare_shows_layer_rows(tmp_path):
    out = tmp_path / "res"
    for label in ("host-a", "host-b"):
        proc = bnnbench("sweep", "--level", "conv", "--channels", "8", "--batch", "2",
                        "--threads", "1", "--methods", "conv_float_blas,conv_xnor_64",
                        "--label", label, "--out", str(out), *FAST)
        assert proc.returncode == 0, proc.stderr
    proc = bnnbench("compare", "host-a", "host-b", "--results", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "conv_xnor_64" in proc.stdout and "conv_float_blas" in proc.stdout
