"""asv: the suites run under asv for real, and what asv wrote loads into the
tidy DataFrame; broken asv files are skipped with a warning naming them."""
import glob
import itertools
import json
import math
import os
import subprocess
import sys
import warnings

import pytest

from bnnbench.runs import asv, reader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACHINE = "pytest-host"
# Cheap combinations only: the whole asv run takes seconds (no environment
# is built: --python=same uses this interpreter and its bnnbench).
SELECTION = [
    r"TimeGemmChannels\.time_gemm\('(float_blas|xnor_64)', 32, 1\)",
    r"TimePackPanels\.time_pack_panels\(64, 32, 1\)",
    r"TrackSpeedup\.track_speedup\('xnor_64', 64, 1\)",
    r"TrackPackFraction\.track_pack_fraction\(1\)",
]


def _git(*args):
    out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="module")
def asv_run(tmp_path_factory):
    """A real `asv run` of SELECTION into a temporary results directory,
    recorded as the checkout's HEAD commit."""
    asv_util = pytest.importorskip("asv.util")
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        pytest.skip("not a git checkout")
    tmp = tmp_path_factory.mktemp("asv")
    conf = asv_util.load_json(os.path.join(ROOT, "asv.conf.json"), js_comments=True)
    conf.update(repo=ROOT, benchmark_dir=os.path.join(ROOT, "benchmarks"),
                results_dir=str(tmp / "results"), html_dir=str(tmp / "html"),
                env_dir=str(tmp / "env"))
    conf_path = tmp / "asv.conf.json"
    conf_path.write_text(json.dumps(conf))
    # asv keeps machine descriptions in ~/.asv-machine.json: not the user's.
    env = dict(os.environ, HOME=str(tmp))
    asv_cmd = [sys.executable, "-m", "asv"]

    def run(*args):
        proc = subprocess.run(asv_cmd + list(args) + ["--config", str(conf_path)], cwd=tmp,
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    run("machine", "--yes", "--machine", MACHINE)
    asv.save_host(str(tmp / "results"), MACHINE)
    bench = [arg for sel in SELECTION for arg in ("--bench", sel)]
    run("run", "--python=same", "--set-commit-hash", commit, "--machine", MACHINE,
        "--record-samples", "-a", "rounds=1", "-a", "repeat=3", "-a", "warmup_time=0",
        "--show-stderr", *bench)
    files = glob.glob(str(tmp / "results" / MACHINE / "*.json"))
    raw = [json.load(open(f)) for f in files if not f.endswith("machine.json")]
    assert len(raw) == 1
    return {"tmp": tmp, "results": str(tmp / "results"), "commit": commit, "raw": raw[0],
            "run": run}


def _raw(raw, bench, *params):
    """asv's own numbers for one parameter combination of a benchmark."""
    entry = dict(zip(raw["result_columns"], raw["results"][bench]))
    index = list(itertools.product(*entry["params"])).index(tuple(map(repr, params)))
    return {k: v[index] for k, v in entry.items() if k in ("result", "samples", "stats_q_25",
                                                           "stats_q_75")}


def test_asv_results_load_into_the_frame(asv_run):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = asv.load_frame(asv_run["results"])
    assert len(df) == 5   # only the selected combinations; the rest were not run
    assert set(df["run_kind"]) == {"asv"}
    assert set(df["commit"]) == {asv_run["commit"]}
    assert set(df["git_commit"]) == {asv_run["commit"]}
    assert set(df["machine"]) == {MACHINE}
    assert set(df["host_label"]) == {MACHINE}      # from bnnbench's saved fingerprint
    assert df["host_cpu_flags"].notna().all()
    assert df["environment"].str.startswith("existing").all()

    gemm = df[df["benchmark"] == "bench_gemm.TimeGemmChannels.time_gemm"]
    assert sorted(gemm["method"]) == ["float_blas", "xnor_64"]
    assert sorted(gemm["kind"]) == ["float", "xnor"]          # the method's, as in sweep rows
    for _, row in gemm.iterrows():
        assert (row.channels, row.filters, row.kernel) == (32, 64, 5)
        assert (row.batch, row.out_size) == (200, 8)
        assert (row.M, row.N, row.K, row.threads) == (64, 12800, 800, 1)
        assert row.verified == True  # noqa: E712
        raw = _raw(asv_run["raw"], row.benchmark, row.method, 32, 1)
        assert row.median_s == raw["result"] > 0
        assert len(row.samples_s) == 3 and row.min_s == min(raw["samples"]) <= row.median_s
        assert row.iqr_s == pytest.approx(raw["stats_q_75"] - raw["stats_q_25"])
        assert row.unit == "seconds" and row.asv_type == "time"

    pack = df[df["method"] == "pack_panels"].iloc[0]
    assert (pack.word_bits, pack.channels, pack.threads, pack.K) == (64, 32, 1, 800)
    assert pack.median_s > 0

    track = df[df["benchmark"] == "bench_track.TrackSpeedup.track_speedup"].iloc[0]
    assert (track.method, track.channels, track.threads) == ("xnor_64", 64, 1)
    assert track.value > 0 and track.unit == "x float_blas"
    assert math.isnan(track.median_s)

    # A share of the probe's read bandwidth: above 0, and a packer cannot
    # stream far faster than a plain read of memory.
    packing = df[df["benchmark"] == "bench_track.TrackPackFraction.track_pack_fraction"].iloc[0]
    assert packing.threads == 1 and packing.unit == "fraction of read bandwidth"
    assert 0 < packing.value < 2


def test_results_loader_reads_asv_directories(asv_run):
    """bnnbench.runs.reader (and so `bnnbench report`) takes an asv results dir
    like any directory of run files, without tripping over asv's own files."""
    paths = reader.expand_paths([asv_run["results"]])
    assert [os.path.basename(p) for p in paths if p.endswith("machine.json")] == []
    assert not any(p.endswith("benchmarks.json") for p in paths)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = reader.load_frame([asv_run["results"]])
    assert len(df) == 5 and set(df["run_kind"]) == {"asv"}
    assert reader.load_runs([asv_run["results"]], kinds={"sweep"}) == []


def test_publish_and_compare(asv_run, tmp_path):
    parent = _git("rev-parse", "HEAD~1")
    if parent is None:
        pytest.skip("needs a parent commit")
    results_dir = os.path.join(asv_run["results"], MACHINE)
    # The same measurements filed under the parent commit: two commits to compare.
    raw = dict(asv_run["raw"], commit_hash=parent)
    with open(os.path.join(results_dir, f"{parent[:8]}-{raw['env_name']}.json"), "w") as fh:
        json.dump(raw, fh)
    try:
        out = asv_run["run"]("compare", "--machine", MACHINE, parent, asv_run["commit"])
        assert "time_gemm('xnor_64', 32, 1)" in out and "Ratio" in out
        asv_run["run"]("publish")
        assert os.path.exists(asv_run["tmp"] / "html" / "index.html")
    finally:
        os.unlink(os.path.join(results_dir, f"{parent[:8]}-{raw['env_name']}.json"))


# ---------------------------------------------------------------- bad input

def _results_dir(tmp_path, files):
    mdir = tmp_path / "results" / "box"
    mdir.mkdir(parents=True)
    (mdir / "machine.json").write_text(json.dumps(
        {"machine": "box", "arch": "aarch64", "cpu": "Cortex-A72", "num_cpu": "4",
         "os": "Linux", "ram": "4000000", "version": 1}))
    (tmp_path / "results" / "benchmarks.json").write_text(json.dumps({
        "bench_gemm.TimeGemmChannels.time_gemm": {
            "param_names": ["method", "channels", "threads"], "type": "time",
            "unit": "seconds"},
        "version": 2}))
    for name, text in files.items():
        (mdir / name).write_text(text)
    return str(tmp_path / "results")


def _good(commit="a" * 40, result=(0.5, float("nan")), channels=("512",)):
    return json.dumps({
        "commit_hash": commit, "env_name": "virtualenv-py3.11", "date": 1.7e12,
        "params": {}, "python": "3.11", "requirements": {}, "env_vars": {},
        "result_columns": ["result", "params", "version", "started_at", "duration",
                           "stats_ci_99_a", "stats_ci_99_b", "stats_q_25", "stats_q_75"],
        "results": {"bench_gemm.TimeGemmChannels.time_gemm": [
            list(result), [["'xnor_64'"], list(channels), ["1", "2"]], "v", 1.7e12, 3.0,
            [0.4, None], [0.6, None], [0.45, None], [0.55, None]]},
        "durations": {}, "version": 2})


def test_a_hand_made_results_dir_without_fingerprint(tmp_path):
    path = _results_dir(tmp_path, {"aaaaaaaa-virtualenv-py3.11.json": _good()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = asv.load_frame(path)
    assert len(df) == 1        # the NaN (skipped) combination is no row
    row = df.iloc[0]
    assert (row.method, row.channels, row.threads, row.K) == ("xnor_64", 512, 1, 12800)
    assert row.median_s == 0.5 and row.iqr_s == pytest.approx(0.1)
    assert row.min_s is None or math.isnan(row.min_s)   # asv kept no samples
    # Without a saved fingerprint the host is what asv's machine.json says.
    assert (row.host_label, row.host_arch, row.host_cpu_brand) == ("box", "aarch64", "Cortex-A72")


def test_failed_benchmarks_are_rows_that_are_not_verified(tmp_path):
    path = _results_dir(tmp_path, {"aaaaaaaa-env.json": _good(result=(None, None))})
    df = asv.load_frame(path)
    assert len(df) == 2 and not df["verified"].any()
    assert df["median_s"].isna().all()


@pytest.mark.parametrize("name, text, reason", [
    ("bbbbbbbb-env.json", "{not json", "not valid JSON"),
    ("bbbbbbbb-env.json", json.dumps({"commit_hash": "b" * 40, "version": 1}),
     "asv results format 1"),
    ("bbbbbbbb-env.json", json.dumps({"version": 2}), "not an asv results file"),
    ("bbbbbbbb-env.json", json.dumps([1, 2]), "not an asv results file"),
    ("bbbbbbbb-env.json", _good().replace('"env_name"', '"env"'), "env_name missing"),
    ("bbbbbbbb-env.json", _good(result=(0.5,)), "2 parameter combinations but 1 results"),
    ("bbbbbbbb-env.json", _good(channels=("'many'",)), "channels is 'many'"),
    ("bbbbbbbb-env.json", _good(result=("fast", 1.0)), "not a number"),
])
def test_unparseable_files_are_skipped_with_a_warning_naming_them(tmp_path, name, text, reason):
    path = _results_dir(tmp_path, {"aaaaaaaa-env.json": _good(), name: text})
    with pytest.warns(UserWarning) as caught:
        df = asv.load_frame(path)
    messages = " ".join(str(w.message) for w in caught)
    assert name in messages and reason in messages
    assert list(df["commit"].unique()) == ["a" * 40]   # the good file still loads


def test_a_results_file_without_machine_json_is_not_asv(tmp_path):
    (tmp_path / "x.json").write_text(_good())
    assert not asv.is_results_file(str(tmp_path / "x.json"))
    with pytest.raises(Exception, match="not an asv results directory"):
        asv.load_runs(str(tmp_path))


def test_save_host_appends_only_what_changed(tmp_path):
    fp = {"label": "box", "arch": "x86_64", "frequency_mhz": {"current": 1000}, "numpy": "2.0"}
    path = asv.save_host(str(tmp_path), "box", fp)
    asv.save_host(str(tmp_path), "box", dict(fp, frequency_mhz={"current": 3000}))
    assert len(open(path).read().splitlines()) == 1     # only the clock moved
    asv.save_host(str(tmp_path), "box", dict(fp, numpy="2.1"))
    lines = [json.loads(line) for line in open(path).read().splitlines()]
    assert [line["host"]["numpy"] for line in lines] == ["2.0", "2.1"]
    assert os.path.basename(path) == asv.HOST_FILE
    with pytest.raises(Exception, match="bad asv machine name"):
        asv.save_host(str(tmp_path), "../up", fp)

