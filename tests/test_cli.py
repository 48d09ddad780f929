"""The bnnbench command as a user runs it: real subprocesses, real sweeps."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cli_child import bnnbench

from bnnbench.runs import frame, reader

FAST = ["--min-time", "0", "--repeat", "1", "--quiet", "--no-probe"]


def test_sweep_json_matches_run_file_and_loads(tmp_path):
    proc = bnnbench("sweep", "--channels", "1,32,256", "--threads", "1", "--format", "json",
                    "--out", str(tmp_path), "--label", "ci-host", *FAST)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text()) == printed
    run = reader.load_run(str(files[0]))
    assert run["status"] == "complete" and run["host"]["label"] == "ci-host"
    serial = [m for m in run["settings"]["methods"]]
    assert {r["channels"] for r in run["rows"]} == {1, 32, 256}
    assert len(run["rows"]) == 3 * len(serial)
    assert all(r["verified"] and r["threads"] == 1 for r in run["rows"])
    df = frame.add_speedups(reader.load_frame([str(files[0])]))
    assert {"host_label", "method", "median_s", "speedup", "K"} <= set(df.columns)
    assert set(df["K"]) == {25, 800, 6400}
    for key in ("schema_version", "run_id", "started_at", "finished_at", "bnnbench_version",
                "git_commit", "command", "host", "rows"):
        assert key in printed
    for key in ("hostname", "arch", "cpu_brand", "cpu_flags", "physical_cores", "logical_cores",
                "memory_bytes", "blas", "build"):
        assert key in printed["host"]
    assert printed["host"]["build"]["cflags"]


def test_sweep_table_quick(tmp_path):
    proc = bnnbench("sweep", "--quick", "--out", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0].split()
    assert header[:6] == ["channels", "filters", "kernel", "K", "threads", "method"]
    assert "speedup" in header and "throughput" in header
    assert "run file:" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--channels", "0"], "invalid value '0'"),
    (["--channels", "abc"], "invalid value 'abc'"),
    (["--channels", ""], "invalid value ''"),
    (["--threads", "-2"], "invalid value '-2'"),
    (["--min-time", "soon"], "invalid value 'soon'"),
    (["--methods", "xnor_64,warp_drive"], "unknown method 'warp_drive'; valid methods:"),
    (["--channels", "4000000", "--batch", "2000"], "GiB but only"),
    (["--filters", "1000000000"], "use fewer --channels or --filters"),
    (["--level", "model", "--models", "birealnet18", "--batch", "100000"],
     "GiB is available; use a smaller --batch"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    proc = bnnbench("sweep", "--out", str(tmp_path), *args, *FAST)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.glob("*.json")) == []


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = bnnbench("sweep", "--quick", "--out", str(blocker / "sub"), *FAST)
    assert proc.returncode == 2 and "cannot create output directory" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_interrupted_sweep_keeps_finished_rows(tmp_path):
    # Far more shapes than the two rows it waits for, so that on a busy host
    # the sweep cannot end between the poll and the signal.
    proc = subprocess.Popen([sys.executable, "-m", "bnnbench", "sweep", "--channels",
                             ",".join(map(str, range(1, 25))), "--batch", "50", "--threads", "1",
                             "--min-time", "0.3", "--out", str(tmp_path), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    rows = 0
    while time.monotonic() < deadline and rows < 2:
        time.sleep(0.2)
        for f in tmp_path.glob("sweep-*.json"):
            try:
                rows = len(json.loads(f.read_text())["rows"])
            except ValueError:
                pass  # never happens with atomic writes; tolerated while polling
    assert rows >= 2, "sweep never wrote rows"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; kept" in err and "Traceback" not in err
    (path,) = tmp_path.glob("sweep-*.json")
    run = reader.load_run(str(path))
    assert run["status"] == "interrupted"
    assert len(run["rows"]) >= rows
    assert len(run["rows"]) < 24 * 5


def test_host_and_verify():
    host = bnnbench("host", "--format", "json")
    assert host.returncode == 0
    assert json.loads(host.stdout)["build"]["kernel_path"]
    verify = bnnbench("verify", "--quiet")
    assert verify.returncode == 0, verify.stderr
    assert "exact on every shape" in verify.stdout


def test_help_explains():
    proc = bnnbench("sweep", "--help")
    assert proc.returncode == 0
    assert "float_blas" in proc.stdout and "--channels" in proc.stdout


def test_measuring_commands_need_no_page_libraries():
    """A Pi that only sweeps needs numpy and pandas, not the report page's
    jinja2 and matplotlib: building the CLI imports neither."""
    code = ("import sys, bnnbench.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('jinja2', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
