"""bnnbench report on run files from several hosts: real quick sweeps, one
rewritten to look like a Raspberry Pi's, one emulated, one with a hostile
label, and files that must be skipped."""
import copy
import json
import subprocess
import sys
import warnings

import pandas as pd
import pytest
from cli_child import bnnbench

from bnnbench.runs import reader
from bnnbench.runs.frame import add_speedups
from bnnbench.cli import main
from bnnbench.report import data, sections
from bnnbench.report.build import build_report

FAST = ["--quick", "--min-time", "0", "--repeat", "1", "--quiet"]
HOSTILE = "<script>alert(1)</script>"


def quick_sweeps(tmp, labels, extra=()):
    """Real quick sweeps (and any `extra` commands), run side by side:
    timings do not matter here."""
    cmds = [["sweep", *FAST, "--label", label, "--out", str(tmp / label)] for label in labels]
    procs = [subprocess.Popen([sys.executable, "-m", "bnnbench", *cmd], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for cmd in cmds + list(extra)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    return {label: next((tmp / label).glob("sweep-*.json")) for label in labels}


def rewrite(src, dest, run_id, **host):
    """A copy of a real run file with other host fields (and its own run id)."""
    run = json.loads(src.read_text())
    run["run_id"] = run_id
    run["host"].update(host)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(run))
    return dest


ARM = dict(label="rpi4", arch="aarch64", cpu_brand="Cortex-A72", cpu_vendor="ARM",
           cpu_flags=["asimd", "neon"], physical_cores=4, logical_cores=4,
           memory_bytes=4 * 2**30, hostname="raspberrypi",
           blas={"library": "openblas", "version": "0.3.21", "threads": 4,
                 "architecture": "cortexa72"},
           build={"cflags": "-O3 -mcpu=native -fopenmp", "compiler": "gcc 12.2.0",
                  "kernel_path": "portable", "openmp": True})


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    accuracy = ["accuracy", "--epochs", "1", "--hidden", "32", "--label", "ws",
                "--out", str(tmp / "ws")]
    profile = ["profile", "cntk-bnn", "--batch", "2", "--threads", "1", "--min-time", "0",
               "--repeat", "1", "--quiet", "--label", "server", "--out", str(tmp / "server")]
    files = quick_sweeps(tmp, ["ws", "server"], extra=[accuracy, profile])
    files["accuracy"] = next((tmp / "ws").glob("accuracy-*.json"))
    files["profile"] = next((tmp / "server").glob("profile-*.json"))
    files["rpi4"] = rewrite(files["server"], tmp / "pi" / "rpi4.json", "a" * 32, **ARM)
    files["qemu"] = rewrite(files["server"], tmp / "pi" / "qemu.json", "e" * 32,
                            **dict(ARM, label="qemu-arm64", emulated=True,
                                   emulator="qemu-aarch64"))
    files["hostile"] = rewrite(files["ws"], tmp / "odd" / "hostile.json", "b" * 32,
                               label=HOSTILE, cpu_brand="<img src=x onerror=alert(2)> $\\frac{",
                               hostname="</dd><b>")
    corrupt = tmp / "odd" / "corrupt.json"
    corrupt.write_text(files["ws"].read_text()[:400])
    files["corrupt"] = corrupt
    return tmp, files


@pytest.fixture(scope="module")
def cli_report(hosts, tmp_path_factory):
    tmp, _ = hosts
    out = tmp_path_factory.mktemp("report")
    proc = bnnbench("report", str(tmp), "--out", str(out), "--reference", "ws")
    assert proc.returncode == 0, proc.stderr
    return proc, out, (out / "report.html").read_text()


def speedup_frame(path):
    return add_speedups(reader.load_frame([str(path)]))


def test_report_has_a_room_per_host(cli_report):
    proc, out, page = cli_report
    assert "report.html" in proc.stdout and "5 hosts" in proc.stdout
    for label in ("ws", "server", "rpi4", "qemu-arm64"):
        assert f"<h2>{label}<span class=\"tag" in page
    assert page.count('<section id="room-') == 5
    for section in ("glance", "comparison", "model-size", "accuracy", "published", "runs"):
        assert f'<section id="{section}"' in page


def test_arm_host_shows_like_any_other(cli_report):
    _, _, page = cli_report
    room = page.split("<h2>rpi4")[1].split("</section>")[0]
    assert "Cortex-A72" in room and "aarch64" in room and "asimd neon" in room
    assert "NEON" in room  # read as its hardware popcount
    assert room.count("<img ") >= 3   # time, speedup, thread scaling


def test_emulated_host_is_flagged(cli_report):
    _, _, page = cli_report
    room = page.split("<h2>qemu-arm64")[1].split("</section>")[0]
    assert "EMULATED" in room and "qemu-aarch64" in room
    assert "say nothing about a real device" in room


def test_hostile_strings_are_escaped(cli_report):
    _, out, page = cli_report
    assert HOSTILE not in page and "<img src=x" not in page and "</dd><b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page   # the page runs no script at all
    # Offline: no fetches; every figure is inline.
    assert "http://" not in page and "https://" not in page
    assert all(src.startswith("data:image/png;base64,")
               for src in (s.split('"')[0] for s in page.split('src="')[1:]))
    glance = pd.read_csv(out / "glance.csv")
    assert HOSTILE in set(glance["host"])


def test_accuracy_run_is_shown(cli_report, hosts):
    _, out, page = cli_report
    _, files = hosts
    run = json.loads(files["accuracy"].read_text())
    table = pd.read_csv(out / "accuracy.csv")
    assert len(table) == len(run["rows"]) == 3
    for row in run["rows"]:
        got = table[(table["network"] == row["network"])
                    & (table["evaluation"] == row["evaluation"])]["accuracy_%"].iloc[0]
        assert got == pytest.approx(100 * row["accuracy"])
    section = page.split('<section id="accuracy"')[1].split("</section>")[0]
    assert "Test accuracy" in section and "→ binary" in section


def test_profile_run_gets_a_chart_and_totals(cli_report, hosts):
    _, out, page = cli_report
    _, files = hosts
    run = json.loads(files["profile"].read_text())
    section = page.split('<section id="profile"')[1].split("</section>")[0]
    assert "server: cntk-bnn, 1 thread" in section and section.count("<img ") == 1
    table = pd.read_csv(out / "profile.csv")
    assert len(table) == len(run["rows"])
    for row in run["rows"]:
        got = table[(table["layer"] == row["layer"]) & (table["method"] == row["method"])]
        assert got["median_ms"].iloc[0] == pytest.approx(1e3 * row["median_s"])
    base = {r["layer"]: r["median_s"] for r in run["rows"] if r["method"] == "float_blas"}
    x = table[(table["method"] == "xnor_64") & table["binary"]].iloc[0]
    want = base[x["layer"]] / (x["median_ms"] / 1e3)
    assert x["speedup"] == pytest.approx(want)
    whole = pd.read_csv(out / "profile_totals.csv")
    float_s = sum(base.values())
    assert whole["float_ms"].iloc[0] == pytest.approx(1e3 * float_s)


def test_corrupt_file_skipped_with_warning(cli_report, hosts):
    proc, _, page = cli_report
    _, files = hosts
    assert f"warning: skipped {files['corrupt']}" in proc.stderr
    assert "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert 'id="skipped"' in page and "corrupt.json" in page


def test_speedup_table_matches_the_frame(cli_report, hosts):
    _, out, _ = cli_report
    _, files = hosts
    table = pd.read_csv(out / "compare_speedup.csv")
    checked = 0
    for label in ("ws", "server", "rpi4"):
        df = speedup_frame(files[label])
        for method, level, threads in (("xnor_64", "1", 1), ("xnor_64_omp", "all", 2),
                                       ("binarize_xnor_64_omp", "all", 2)):
            for channels in (1, 32):
                want = df[(df["method"] == method) & (df["threads"] == threads)
                          & (df["channels"] == channels)]["speedup"].iloc[0]
                got = table[(table["method"] == method) & (table["level"].astype(str) == level)
                            & (table["channels"] == channels)][label].iloc[0]
                assert got == pytest.approx(want, rel=1e-9)
                checked += 1
    assert checked == 18


def test_room_table_matches_the_frame(cli_report, hosts):
    _, out, _ = cli_report
    _, files = hosts
    room = pd.read_csv(out / "room_rpi4.csv")
    df = speedup_frame(files["rpi4"])
    assert len(room) == len(df)
    merged = room.merge(df, on=["method", "threads", "channels", "filters", "kernel"])
    assert len(merged) == len(df)
    assert (merged["median_ms"] - merged["median_s"] * 1e3).abs().max() < 1e-9
    assert (merged["speedup_x"] - merged["speedup_y"]).abs().max() < 1e-9


def test_throughput_ratios_match_the_frame(cli_report, hosts):
    _, out, page = cli_report
    _, files = hosts
    table = pd.read_csv(out / "compare_throughput.csv")
    assert "Throughput relative to ws" in page   # --reference ws
    assert (table["ws"] == 1).all()
    ws, server = speedup_frame(files["ws"]), speedup_frame(files["server"])
    for method in ("float_blas", "xnor_64"):
        row = table[(table["method"] == method) & (table["channels"] == 32)
                    & (table["level"].astype(str) == "1")].iloc[0]
        pick = lambda d: d[(d["method"] == method) & (d["channels"] == 32)  # noqa: E731
                           & (d["threads"] == 1)]["median_s"].iloc[0]
        assert row["server"] == pytest.approx(pick(ws) / pick(server), rel=1e-9)


def test_newest_run_is_used_and_said(tmp_path, hosts):
    _, files = hosts
    old = json.loads(files["ws"].read_text())
    new = copy.deepcopy(old)
    new["run_id"] = "f" * 32
    new["started_at"] = "2999-01-01T00:00:00+00:00"
    for row in new["rows"]:
        row["median_s"] *= 2
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    ds = data.load([str(tmp_path)])
    assert set(ds.sweep["run_id"]) == {"f" * 32}
    used = dict(zip(ds.runs_table["run_id"], ds.runs_table["used"]))
    assert used["f" * 32] == "used" and used[old["run_id"]].startswith("not used")
    assert any("newest" in n for n in ds.notes)
    room = sections.room(ds, ds.hosts.iloc[0], 0)
    assert any(f"run {'f' * 8} (2999-01-01T00:00:00+00:00, {len(old['rows'])} rows)" in text
               for _, text in room.notices)
    agg = data.load([str(tmp_path)], all_runs=True)
    row = agg.sweep[(agg.sweep["method"] == "xnor_64") & (agg.sweep["channels"] == 32)].iloc[0]
    want = [r["median_s"] for r in old["rows"] if r["method"] == "xnor_64" and r["channels"] == 32]
    assert row["median_s"] == pytest.approx(1.5 * want[0]) and row["n_runs"] == 2
    assert row["kind"] == "xnor"   # a method's kind, not the host's first row's


def test_files_from_other_versions(tmp_path, hosts):
    _, files = hosts
    run = json.loads(files["ws"].read_text())
    (tmp_path / "future.json").write_text(json.dumps(dict(run, schema_version=99, run_id="9" * 32)))
    (tmp_path / "machine.json").write_text('{"machine": "x", "version": 1}')   # e.g. asv's
    (tmp_path / "ok.json").write_text(json.dumps(run))
    ds = data.load([str(tmp_path)])
    reasons = {p.rsplit("/", 1)[1]: r for p, r in ds.skipped}
    assert "newer than this bnnbench understands" in reasons["future.json"]
    assert "not a bnnbench run file" in reasons["machine.json"]
    assert len(ds.runs) == 1


def test_odd_but_valid_values_never_crash(tmp_path, hosts):
    """A hand-edited file that passes the schema with strange values: the
    report builds, and every section builds."""
    _, files = hosts
    run = json.loads(files["server"].read_text())
    run["run_id"] = "c" * 32
    run["host"].update(label="$odd$ host", cpu_flags="popcnt avx2", blas="mkl",
                       memory_bytes="lots", frequency_mhz=7, build=None,
                       probe={"popcount_gops": 123.4, "fma_gflops": "x", "copy_gbs": 9.5})
    run["rows"][0]["median_s"] = 0
    for row in run["rows"]:
        row["peak_fraction"] = 0.25 if row["method"] != "xnor_64" else "high"
    # Rows that claim another run or host, repeat a measurement, or are no layer.
    run["rows"][1].update(run_id="d" * 32, host_label="evil")
    run["rows"].append(dict(run["rows"][2]))
    run["rows"].append(dict(run["rows"][3], channels=0, method="xnor_32_omp"))
    (tmp_path / "odd.json").write_text(json.dumps(run))
    # A second host whose label would be a broken matplotlib formula.
    rewrite(files["ws"], tmp_path / "math.json", "7" * 32, label="$\\frac{ws")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # nothing may even warn
        files_out = build_report([str(tmp_path)], str(tmp_path / "out"))
    assert files_out.problems == [] and files_out.skipped == []
    ds = files_out.dataset
    odd = ds.sweep[ds.sweep["host_label"] != "$\\frac{ws"]
    assert set(odd["run_id"]) == {"c" * 32} and set(odd["host_label"]) == {"$odd$ host"}
    assert len(odd) == len(json.loads(files["server"].read_text())["rows"])
    page = (tmp_path / "out" / "report.html").read_text()
    assert "123 Gbit-op/s popcount, 9.50 GB/s copy" in page   # probe peaks on the card
    assert "Fraction of peak" in page
    assert "xnor_64 (1 thread): speedup over each host" in page   # drew both labels


def fake_asv_results(root, speedups):
    """A minimal asv results directory (asv's format 2): one GEMM benchmark
    over method x channels x threads, one results file per commit."""
    root.mkdir()
    params = [["'float_blas'", "'xnor_64'"], ["32"], ["1"]]
    (root / "benchmarks.json").write_text(json.dumps({
        "bench_gemm.TimeGemm.time_gemm": {"param_names": ["method", "channels", "threads"],
                                          "params": params, "type": "time",
                                          "unit": "seconds"}, "version": 2}))
    (root / "box").mkdir()
    (root / "box" / "machine.json").write_text(json.dumps(
        {"machine": "box", "arch": "aarch64", "cpu": "Cortex-A72", "num_cpu": "4",
         "ram": "4000000000", "version": 1}))
    for i, speedup in enumerate(speedups):
        (root / "box" / f"{i:08x}-env.json").write_text(json.dumps({
            "commit_hash": f"{i + 1:x}" * 40, "env_name": "env", "date": 1_700_000_000_000 + i,
            "python": "3.11", "version": 2, "result_columns": ["result", "params", "started_at"],
            "results": {"bench_gemm.TimeGemm.time_gemm": [[0.1, 0.1 / speedup], params,
                                                          1_700_000_000_000 + i]}}))
    return root


def test_asv_results_show_as_a_history(tmp_path, hosts):
    pytest.importorskip("bnnbench.runs.asv")
    _, files = hosts
    asv = fake_asv_results(tmp_path / "asv", [4.0, 8.0])
    result = build_report([str(asv), str(files["ws"])], str(tmp_path / "out"))
    if any("not a bnnbench run file" in reason for _, reason in result.skipped):
        pytest.skip("results.load_run does not read asv results in this version")
    assert result.skipped == [] and result.problems == []   # machine.json etc. are no runs
    page = open(result.html).read()
    section = page.split('<section id="asv"')[1].split("</section>")[0]
    assert "box: speedup over float_blas by commit" in section
    times = pd.read_csv(tmp_path / "out" / "asv_times.csv")
    xnor = times[times["method"] == "xnor_64"].sort_values("date")
    assert list(xnor["speedup"]) == pytest.approx([4.0, 8.0])
    assert "Cortex-A72" in page.split("<h2>box")[1].split("</section>")[0]


def test_probe_peaks_per_thread_count():
    probe = {"popcount_method": "avx512_vpopcntdq",
             "threads": {"1": {"popcount_gops": 180.0, "fma_gflops": 60.5, "copy_gbs": 11.0},
                         "2": {"popcount_gops": 350.0, "fma_gflops": "bad"}}}
    card = dict(sections.host_card({"label": "x", "arch": "x86_64", "probe": probe}))
    assert card["probed peaks, 1 thread"] == ("180 Gbit-op/s popcount, 60.5 GFLOP/s FMA, "
                                              "11.0 GB/s copy")
    assert card["probed peaks, 2 threads"] == "350 Gbit-op/s popcount"
    assert card["probe popcount"] == "avx512_vpopcntdq"


def test_empty_and_missing_inputs(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no bnnbench run files" in err and len(err.strip().splitlines()) == 1
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and len(err.strip().splitlines()) == 1


def test_one_host_says_there_is_nothing_to_compare(tmp_path, hosts):
    _, files = hosts
    result = build_report([str(files["ws"])], str(tmp_path))
    page = open(result.html).read()
    assert "Nothing to compare" in page
    assert "No accuracy runs" in page
    # A second report in the same place removes CSVs the first wrote and it does not.
    (tmp_path / "room_gone.csv").write_text("x")
    manifest = tmp_path / ".bnnbench-report-files"
    manifest.write_text(manifest.read_text() + "room_gone.csv\n")
    build_report([str(files["ws"])], str(tmp_path))
    assert not (tmp_path / "room_gone.csv").exists()


def test_a_newer_partial_run_does_not_hide_other_methods():
    """Newest run per method: a later float-only run must not hide the xnor
    rows (and their in-run speedups) of an earlier run of the same shape."""
    shape = dict(channels=32, filters=64, kernel=5, batch=8, out_size=8, M=64, N=512, K=800)
    def row(run, ts, method, median):
        return dict(shape, host_label="h", run_id=run, started_ts=ts, finished_at=None,
                    threads=1, method=method, verified=True, median_s=median)
    df = pd.DataFrame([row("old", 1.0, "float_blas", 0.10), row("old", 1.0, "xnor_64", 0.01),
                       row("new", 2.0, "float_blas", 0.12)])
    chosen, used = data.select_newest(df, per_method=True)
    picked = chosen.set_index("method")["run_id"].to_dict()
    assert picked == {"float_blas": "new", "xnor_64": "old"}
    assert used == {"new": 1, "old": 1}


def test_binarizing_rows_need_a_probe_with_read_bandwidth(tmp_path, hosts):
    """Older runs judged binarize_* rows against the popcount peak alone;
    the report drops that fraction instead of plotting it as the roofline."""
    _, files = hosts
    run = json.loads(files["server"].read_text())
    for row in run["rows"]:
        row["peak_fraction"] = 0.5
    peaks = {"popcount_gops": 1000.0, "fma_gflops": 100.0}
    for name, probe in (("old", {"threads": {"1": dict(peaks)}}),
                        ("new", {"threads": {"1": dict(peaks, read_gbs=30.0)}})):
        run["host"]["probe"] = probe
        run["run_id"] = (name * 32)[:32]
        (tmp_path / f"{name}.json").write_text(json.dumps(run))
        df = data.load([str(tmp_path / f"{name}.json")]).sweep
        binarizing = df["method"].str.startswith("binarize_")
        assert binarizing.any() and (~binarizing).any()
        assert (df.loc[~binarizing, "peak_fraction"] == 0.5).all()
        fractions = df.loc[binarizing, "peak_fraction"]
        if name == "new":
            assert (fractions == 0.5).all()
        else:
            assert fractions.isna().all()
