"""Fault injection: every untrusted input and every fault ends in one line
and loses nothing.

One section per class of fault (the six of the hardening audit):

1. resource arguments (threads, seeds, sizes)    4. loaders that must agree with the report
2. disk full and unwritable targets              5. terminal and CSV injection
3. special files in a results directory          6. umask, dead runs, weight files

To add a case: write a test in its class's section that provokes the fault
and checks the outcome with `one_line` (CLI: exit status, a single stderr
line, no traceback) and, where data existed before, that it is all still
there. Disk-full cases run on a small tmpfs where this process may mount
one (root on Linux) and through a patched writer everywhere.
"""
import contextlib
import errno
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import cli_child

import bnnbench
from bnnbench.runs import asv, liveness, reader, schema, writer
from bnnbench import escape, files, untrusted
from bnnbench.models import weights
from bnnbench.models import zoo
from bnnbench.models.accuracy import Config
from bnnbench.cli import main
from bnnbench.errors import BnnbenchError
from bnnbench.methods import conv, kernels
from bnnbench.report.build import build_report
from test_report import rewrite as copy_run   # a run file copied under another host

FAST = ["--quick", "--channels", "1", "--methods", "float_blas,xnor_64", "--min-time", "0",
        "--repeat", "1", "--quiet"]


def bnnbench_cli(*args, timeout=120, **kw):
    return cli_child.bnnbench(*args, timeout=timeout, **kw)


def one_line(err, *needles):
    """stderr holds exactly one error line, no traceback, naming `needles`."""
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


def run_cli(capsys, *args):
    """main(ARGS) in process: (status, stdout, stderr)."""
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    """One real quick sweep run file."""
    out = tmp_path_factory.mktemp("sweep")
    assert main(["sweep", *FAST, "--label", "good", "--out", str(out)]) == 0
    return next(out.glob("sweep-*.json"))


@pytest.fixture
def results_dir(tmp_path, sweep_file):
    d = tmp_path / "results"
    copy_run(sweep_file, d / "good.json", "1" * 32)
    return d


# ------------------------------------------------------ 1. resource arguments

@pytest.mark.parametrize("value", ["100000", str(10**30)])
def test_huge_thread_count_is_one_line_and_no_file(tmp_path, value):
    proc = bnnbench_cli("sweep", *FAST, "--methods", "xnor_64_omp", "--threads", value,
                        "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    one_line(proc.stderr, "--threads")
    assert not (tmp_path / "out").exists()


def test_api_thread_counts(rng):
    a = rng.standard_normal((5, 70), dtype=np.float32)
    b = rng.standard_normal((70, 9), dtype=np.float32)
    ref = np.where(a >= 0, 1, -1) @ np.where(b >= 0, 1, -1)
    # numpy integers are integers: accepted, and handed on as plain ints.
    out = bnnbench.gemm("xnor_64_omp" if "xnor_64_omp" in bnnbench.METHODS else "xnor_64",
                        a, b, threads=np.int64(2))
    assert np.array_equal(out, ref)
    for bad in (100000, 10**30, -1, 2.0, True, np.float64(2)):
        with pytest.raises(BnnbenchError, match="threads"):
            bnnbench.gemm("xnor_64", a, b, threads=bad)


@pytest.mark.parametrize("command", [
    ["sweep", *FAST], ["accuracy", "--epochs", "1"],
    ["profile", "cntk-bnn", "--batch", "1", "--threads", "1", "--quiet"],
    ["models", "cntk-basic", "--export"],
], ids=["sweep", "accuracy", "profile", "models-export"])
def test_negative_seed_is_one_line_before_any_file(tmp_path, capsys, command):
    out = str(tmp_path / "out")
    args = command + [out] if command[-1] == "--export" else command + ["--out", out]
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--seed", "-1"])
    assert exit_.value.code == 2
    one_line(capsys.readouterr().err, "--seed")
    assert not os.path.exists(out)


def test_accuracy_hidden_width_meets_the_memory_guard(tmp_path, capsys):
    status, _, err = run_cli(capsys, "accuracy", "--hidden", "100000000",
                             "--out", str(tmp_path / "out"))
    assert status == 2
    one_line(err, "GiB", "--hidden")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BnnbenchError, match="GiB"):
        Config(hidden=10**8).check()
    with pytest.raises(BnnbenchError, match="seed"):
        Config(seed=-3).check()


# The one rule for numeric arguments (limits.check_int / check_threads), on
# every public entry point: integers and numpy integers in, everything else
# one ValueError line naming the argument and its range.
X1, W1 = np.ones((1, 3, 3, 1), np.float32), np.ones((1, 3, 3, 1), np.float32)


@pytest.mark.parametrize("call,needles", [
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, threads=10**30), ("threads", "<=")),
    (lambda: bnnbench.conv2d("conv_float_blas", X1, W1, threads=100000), ("threads", "<=")),
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, threads=2.0), ("threads", "float")),
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, threads=True), ("threads", "bool")),
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, threads="2"), ("threads",)),
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, stride=1.0), ("stride", ">= 1")),
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, stride=10**30), ("stride", "<=")),
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, padding=1.0), ("padding", ">= 0")),
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, padding=10**30), ("padding", "<=")),
    (lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, padding=True), ("padding",)),
    (lambda: bnnbench.pack_signs(X1, word_bits=64.0), ("word_bits", "32 or 64")),
    (lambda: bnnbench.pack_signs(X1, word_bits=True), ("word_bits", "32 or 64")),
    (lambda: bnnbench.pack_signs(X1, word_bits="64"), ("word_bits", "32 or 64")),
    (lambda: bnnbench.gemm("float_blas", X1[0, 0], X1[0, 0].T, threads=10**30), ("threads",)),
    (lambda: conv.prepare("conv_xnor_64", X1, W1, threads=1.5), ("threads",)),
    (lambda: kernels.prepare("xnor_64", X1[0, 0], X1[0, 0].T, threads=np.float32(2)),
     ("threads",)),
], ids=["conv-threads-huge", "conv-threads-100000", "conv-threads-float", "conv-threads-bool",
        "conv-threads-str", "stride-float", "stride-huge", "padding-float", "padding-huge",
        "padding-bool", "word-bits-float", "word-bits-bool", "word-bits-str", "gemm-threads-huge",
        "conv-prepare-float", "kernels-prepare-np-float"])
def test_numeric_arguments_one_rule(call, needles):
    with pytest.raises(BnnbenchError) as info:
        call()
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "\n" not in message and len(message) < 200, message
    for needle in needles:
        assert needle in message, message


def test_numpy_integers_are_integers_everywhere(rng):
    a = rng.standard_normal((4, 70), dtype=np.float32)
    b = rng.standard_normal((70, 5), dtype=np.float32)
    ref = np.where(a >= 0, 1, -1) @ np.where(b >= 0, 1, -1)
    for t in (np.int32(2), np.int64(1), np.uint8(3)):
        assert np.array_equal(bnnbench.gemm("xnor_64", a, b, threads=t), ref)
        assert bnnbench.gemm("float_blas", a, b, threads=t).shape == (4, 5)
    x = rng.standard_normal((1, 5, 5, 3), dtype=np.float32)
    w = rng.standard_normal((2, 3, 3, 3), dtype=np.float32)
    want = bnnbench.conv2d("conv_xnor_64", x, w, stride=1, padding=1, threads=1)
    got = bnnbench.conv2d("conv_xnor_64", x, w, stride=np.int64(1), padding=np.int32(1),
                          threads=np.int64(2))
    assert np.array_equal(want, got)
    assert bnnbench.pack_signs(x, word_bits=np.int64(32)).dtype == np.uint32


@pytest.mark.parametrize("call", [
    lambda: bnnbench.conv2d("conv_xnor_64", X1, W1, padding=10**6),
    lambda: bnnbench.conv2d("conv_float_blas", X1, W1, padding=10**6),
    lambda: conv.prepare("conv_xnor_32", X1, W1, padding=10**6),
    lambda: bnnbench.gemm("float_blas", np.ones((2**20, 1), np.float32),
                          np.ones((1, 2**20), np.float32)),
], ids=["conv2d-xnor", "conv2d-float", "conv-prepare", "gemm"])
def test_terabyte_layer_is_refused_before_allocation(call):
    """A 2-million-pixel-square output (padding=10**6): terabytes of
    buffers, refused in one line naming the GiB, before numpy is asked."""
    with pytest.raises(BnnbenchError, match=r"needs [0-9.]+ GiB but only [0-9.]+ GiB") as info:
        call()
    assert "\n" not in str(info.value)


# ---------------------------------------------- 2. disk full, unwritable targets

@contextlib.contextmanager
def small_tmpfs(path, size="512k"):
    """A tmpfs of `size` mounted at `path`, or a skip where mounting is not
    allowed (not root, a container without CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()[:80]}); the patched-"
                    f"writer cases cover disk full")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory):
    """Fill the file system of `directory` to the last byte."""
    for i, size in enumerate([4096] + [512] * 100):   # then the last crumbs
        fd = os.open(os.path.join(directory, f"filler{i}"), os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * size):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)


def fail_writes(monkeypatch, after, err=errno.ENOSPC):
    """The writer's temporaries fail with `err` after `after` good ones."""
    real = files._write_temp
    calls = {"n": 0}

    def write_temp(path, data, mode):
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(err, os.strerror(err), path)
        return real(path, data, mode)
    monkeypatch.setattr(files, "_write_temp", write_temp)


def no_temporaries(directory):
    return [n for n in os.listdir(directory) if n.startswith((".tmp-", ".bak-"))] == []


def test_run_file_on_a_full_disk_keeps_rows_and_says_failed(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    # Creation and the first row's save succeed, the second row's save fails.
    fail_writes(monkeypatch, after=2)
    status, _, err = run_cli(capsys, "sweep", *FAST, "--channels", "1,32", "--out", str(out))
    assert status == 2
    one_line(err, "No space left on device", "marked failed")
    (path,) = out.glob("sweep-*.json")
    run = json.loads(path.read_text())
    assert run["status"] == "failed" and len(run["rows"]) >= 1
    assert no_temporaries(out)


def test_run_file_on_a_real_full_tmpfs(tmp_path):
    with small_tmpfs(tmp_path / "fs") as fs:
        run = writer.new_run("sweep", {"label": "h", "arch": "x86_64"})
        run_writer = writer.RunWriter(run, str(fs))
        run_writer.add_row({"method": "float_blas", "padding": "x" * 2000})
        fill(fs)
        with pytest.raises(files.WriteError, match="No space left on device.*marked failed"):
            run_writer.add_row({"method": "xnor_64", "padding": "y" * 20000})
        saved = json.loads(open(run_writer.path).read())
        assert saved["status"] == "failed" and len(saved["rows"]) == 1
        run_writer.finish("failed")   # later saves are no-ops, not a second error
        assert no_temporaries(fs)


def _report_set(out):
    return {n: (out / n).read_bytes() for n in sorted(os.listdir(out))}


@pytest.mark.parametrize("after", [0, 2, 5])
def test_report_on_a_full_disk_leaves_the_last_report_whole(tmp_path, sweep_file, monkeypatch,
                                                             capsys, after):
    out = tmp_path / "out"
    assert main(["report", str(sweep_file), "--out", str(out), "--quiet"]) == 0
    before = _report_set(out)
    other = copy_run(sweep_file, tmp_path / "more" / "b.json", "2" * 32, label="second")
    capsys.readouterr()
    fail_writes(monkeypatch, after=after)
    status, _, err = run_cli(capsys, "report", str(sweep_file), str(other), "--out", str(out),
                             "--quiet")
    assert status == 2
    one_line(err, "No space left on device")
    assert _report_set(out) == before      # old page, old CSVs, old manifest: all there


def test_report_on_a_real_full_tmpfs(tmp_path, sweep_file, capsys):
    with small_tmpfs(tmp_path / "fs", size="2m") as fs:
        out = fs / "out"
        assert main(["report", str(sweep_file), "--out", str(out), "--quiet"]) == 0
        before = _report_set(out)
        fill(fs)
        other = copy_run(sweep_file, tmp_path / "more" / "b.json", "2" * 32, label="second")
        capsys.readouterr()
        status, _, err = run_cli(capsys, "report", str(sweep_file), str(other),
                                 "--out", str(out), "--quiet")
        assert status == 2
        one_line(err, "No space left on device")
        assert _report_set(out) == before and no_temporaries(out)


def test_report_html_that_is_a_directory(tmp_path, sweep_file, capsys):
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)
    status, _, err = run_cli(capsys, "report", str(sweep_file), "--out", str(out), "--quiet")
    assert status == 2
    one_line(err, "report.html", "is a directory")
    assert sorted(os.listdir(out)) == ["report.html"]


def test_a_rename_that_fails_half_way_restores_the_last_report(tmp_path, sweep_file,
                                                                monkeypatch, capsys):
    """An immutable report.html (chattr +i) fails at the last rename: the
    CSVs already replaced get their previous versions back."""
    out = tmp_path / "out"
    assert main(["report", str(sweep_file), "--out", str(out), "--quiet"]) == 0
    before = _report_set(out)
    other = copy_run(sweep_file, tmp_path / "more" / "b.json", "2" * 32, label="second")
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith("report.html"):
            raise PermissionError(errno.EPERM, "Operation not permitted", str(dst))
        return real(src, dst)
    monkeypatch.setattr(files.os, "replace", replace)
    status, _, err = run_cli(capsys, "report", str(sweep_file), str(other), "--out", str(out),
                             "--quiet")
    monkeypatch.undo()
    assert status == 2
    one_line(err, "report.html", "Operation not permitted")
    assert _report_set(out) == before


def test_immutable_report_html(tmp_path, sweep_file, capsys):
    out = tmp_path / "out"
    assert main(["report", str(sweep_file), "--out", str(out), "--quiet"]) == 0
    before = _report_set(out)
    if subprocess.run(["chattr", "+i", str(out / "report.html")],
                      capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        other = copy_run(sweep_file, tmp_path / "more" / "b.json", "2" * 32, label="second")
        capsys.readouterr()
        status, _, err = run_cli(capsys, "report", str(sweep_file), str(other),
                                 "--out", str(out), "--quiet")
    finally:
        subprocess.run(["chattr", "-i", str(out / "report.html")])
    assert status == 2
    one_line(err, "report.html")
    assert _report_set(out) == before


def test_weights_export_to_an_unwritable_place(tmp_path, capsys):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "cntk-basic.bnnw").mkdir()   # a directory where the file goes
    status, _, err = run_cli(capsys, "models", "cntk-basic", "--export", str(tmp_path / "w"))
    assert status == 2
    one_line(err, "cntk-basic.bnnw")


# ------------------------------------------- 3. special files in a results directory

def test_fifo_named_json_is_skipped_not_read(results_dir, tmp_path):
    os.mkfifo(results_dir / "pipe.json")
    for args in (["report", str(results_dir), "--out", str(tmp_path / "out")],
                 ["compare", "good", "good", "--results", str(results_dir)]):
        proc = bnnbench_cli(*args, timeout=120)
        assert "pipe.json: a FIFO, not a regular file" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    with pytest.warns(UserWarning, match="a FIFO"):
        assert len(reader.load_frame([str(results_dir)])) > 0


def test_fifo_given_by_name(tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(schema.RunFileError, match="a FIFO"):
        reader.load_run(str(tmp_path / "pipe.json"))


@pytest.mark.parametrize("kind", ["fifo", "device", "loop", "directory", "huge"])
def test_fleet_inventory_special_files_do_not_hang(tmp_path, kind):
    """`bnnbench fleet check INVENTORY` with a FIFO (which used to hang), a
    device, a symlink loop, a directory or an oversized file: one line."""
    path = tmp_path / "fleet.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = "/dev/zero"
    elif kind == "loop":
        os.symlink(tmp_path / "b.toml", tmp_path / "a.toml")
        os.symlink(tmp_path / "a.toml", tmp_path / "b.toml")
        path = tmp_path / "a.toml"
    elif kind == "directory":
        path.mkdir()
    else:
        with open(path, "wb") as fh:
            fh.truncate(2 << 20)
    proc = bnnbench_cli("fleet", "check", str(path), timeout=60)
    assert proc.returncode == 2
    one_line(proc.stderr, "inventory", str(path))


def test_link_to_dev_zero_is_skipped(results_dir, tmp_path):
    os.symlink("/dev/zero", results_dir / "zero.json")
    proc = bnnbench_cli("report", str(results_dir), "--out", str(tmp_path / "out"), timeout=120)
    assert proc.returncode == 0
    assert "zero.json: a character device, not a regular file" in proc.stderr


def test_symlink_loops_end(results_dir, tmp_path):
    os.symlink(".", results_dir / "a")
    os.symlink(".", results_dir / "b")
    os.symlink("..", results_dir / "up")
    proc = bnnbench_cli("report", str(results_dir), "--out", str(tmp_path / "out"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "a link back to a directory already read" in proc.stderr
    assert "(1 hosts, 1 runs" in proc.stdout


def test_oversized_file_is_refused_before_reading(results_dir, monkeypatch):
    monkeypatch.setattr(untrusted, "MAX_FILE_BYTES", 1000)
    with pytest.warns(UserWarning, match="over the 1000-byte limit"):
        assert reader.load_frame([str(results_dir)]).empty


# --------------------------------------------- 4. loaders agree with the report

def deep_json(depth=10_000):
    return "[" * depth + "]" * depth


def test_deep_json_skipped_by_every_loader(results_dir, tmp_path):
    (results_dir / "deep.json").write_text(deep_json())
    with pytest.warns(UserWarning, match="deep.json: JSON nested deeper"):
        assert len(reader.load_frame([str(results_dir)])) > 0
    ds = build_report([str(results_dir)], str(tmp_path / "out")).dataset
    assert [os.path.basename(p) for p, _ in ds.skipped] == ["deep.json"]


def asv_dir(root, results_entry, params, date=1_700_000_000_000):
    """An asv results directory with one benchmark over `params`."""
    (root / "box").mkdir(parents=True)
    names = [f"p{i}" for i in range(len(params))] if params else []
    (root / "benchmarks.json").write_text(json.dumps({
        "bench.TimeGemm.time_gemm": {"param_names": names, "params": params, "type": "time",
                                     "unit": "seconds"}, "version": 2}))
    (root / "box" / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    (root / "box" / "c0ffee-env.json").write_text(json.dumps({
        "commit_hash": "c0ffee" * 7, "env_name": "env", "date": date, "version": 2,
        "result_columns": ["result", "params", "started_at"],
        "results": {"bench.TimeGemm.time_gemm": results_entry}}))
    return root


def test_asv_deep_results_file(tmp_path):
    root = asv_dir(tmp_path / "asv", [[0.1], [["'float_blas'"]], 1], [["'float_blas'"]])
    (root / "box" / "deep-env.json").write_text(deep_json())
    with pytest.warns(UserWarning, match="deep-env.json: JSON nested deeper"):
        df = asv.load_frame(str(root))
    assert len(df) == 1


@pytest.mark.parametrize("date", [1e300, -1e300, 2**70])
def test_asv_absurd_dates(tmp_path, date):
    root = asv_dir(tmp_path / "asv", [[0.1], [["'float_blas'"]], date], [["'float_blas'"]],
                   date=date)
    df = asv.load_frame(str(root))
    assert len(df) == 1 and df["commit_date"].isna().all()
    build_report([str(root)], str(tmp_path / "out"))


@pytest.mark.parametrize("raw", ["10**400", "9" * 40, "-5", "'x'"])
def test_asv_absurd_integer_parameter(tmp_path, raw):
    params = [["'float_blas'"], [raw]]
    root = asv_dir(tmp_path / "asv", [[0.1], params, 1], params)
    # the benchmark names its second parameter "channels"
    bench = json.loads((root / "benchmarks.json").read_text())
    bench["bench.TimeGemm.time_gemm"]["param_names"] = ["method", "channels"]
    (root / "benchmarks.json").write_text(json.dumps(bench))
    with pytest.warns(UserWarning, match="parameter channels"):
        assert asv.load_frame(str(root)).empty
    skipped = build_report([str(root)], str(tmp_path / "out")).skipped
    assert any("parameter channels" in reason for _, reason in skipped)


def test_asv_astronomical_parameter_grid_is_not_expanded(tmp_path):
    params = [[f"{i}" for i in range(100)]] * 20     # 10**40 combinations
    root = asv_dir(tmp_path / "asv", [[0.1], params, 1], params)
    t0 = time.monotonic()
    with pytest.warns(UserWarning, match="combinations but 1 results"):
        assert asv.load_frame(str(root)).empty
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("field,value", [("kind", ["x"]), ("threads", 2**70),
                                         ("channels", 10**30), ("M", 2**80)])
def test_wrong_typed_row_field_is_named_by_file_and_host(results_dir, tmp_path, field, value):
    run = json.loads((results_dir / "good.json").read_text())
    run.update(run_id="9" * 32)
    run["host"]["label"] = "odd-box"
    run["rows"][0][field] = value
    (results_dir / "odd.json").write_text(json.dumps(run))
    with pytest.warns(UserWarning, match=f"odd.json: host 'odd-box', row 0: {field}="):
        df = reader.load_frame([str(results_dir)])
    assert set(df["host_label"]) == {"good"}
    files_out = build_report([str(results_dir)], str(tmp_path / "out"))
    assert files_out.problems == []
    assert [(os.path.basename(p), "odd-box" in r) for p, r in files_out.skipped] == [
        ("odd.json", True)]


# --------------------------------------------------------- 5. terminal, CSV

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\rbnnbench report: all fine\n\u202e"


def test_terminal_text_shows_controls():
    shown = escape.terminal("a" + ESCAPES + "\tb")
    assert not any(ch in shown for ch in "\x1b\x07\r\n\u202e")
    assert "\\x1b]0;pwned\\x07" in shown and "\tb" in shown


def test_hostile_labels_reach_the_terminal_escaped(results_dir, sweep_file, capsys):
    copy_run(sweep_file, results_dir / "evil.json", "3" * 32, label="evil" + ESCAPES,
             cpu_brand="\x1b[31mRED")
    (results_dir / ("bad\x1b[2J.json")).write_text("{")
    status, out, err = run_cli(capsys, "compare", "good", "evil" + ESCAPES,
                               "--results", str(results_dir))
    assert status == 0
    assert "\x1b" not in out + err and "\u202e" not in out + err
    assert "bad\\x1b[2J.json" in err
    assert not any(line.startswith("bnnbench report: all fine") for line in out.splitlines())


def test_compare_csv_guards_formulas(results_dir, sweep_file, capsys):
    copy_run(sweep_file, results_dir / "f.json", "4" * 32, label='=HYPERLINK("http://x")')
    status, out, _ = run_cli(capsys, "compare", "good", '=HYPERLINK("http://x")',
                             "--results", str(results_dir), "--format", "csv")
    assert status == 0
    assert ",\"'=HYPERLINK(\"\"http://x\"\")\"" in out
    assert "\n=" not in out and ",=" not in out


# ------------------------------------------ 6. umask, dead runs, weight files

@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)],
                         ids=["022", "027", "077"])
def test_files_honour_the_umask(tmp_path, sweep_file, mask, mode):
    old = os.umask(mask)
    try:
        build_report([str(sweep_file)], str(tmp_path / "out"))
        weights.export_model(zoo.get_model("cntk-basic"), str(tmp_path / "w"))
    finally:
        os.umask(old)
    written = list((tmp_path / "out").iterdir()) + list((tmp_path / "w").iterdir())
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {mode}


def test_killed_sweep_is_shown_as_died(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "bnnbench", "sweep", "--quick", "--channels",
                             "1,32,64,128", "--methods", "float_blas,xnor_64", "--min-time", "2",
                             "--quiet", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if list(out.glob("sweep-*.json")):
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run = json.loads(next(out.glob("sweep-*.json")).read_text())
    assert run["status"] == "running" and run["pid"] == proc.pid
    assert "pid" in liveness.died(run)
    (out / "extra").mkdir()
    copy_run(next(out.glob("sweep-*.json")), out / "extra" / "ok.json", "5" * 32)
    ds = build_report([str(out)], str(tmp_path / "rep")).dataset
    status = dict(zip(ds.runs_table["run_id"], ds.runs_table["status"]))
    assert status[run["run_id"]].startswith("died (its process (pid")
    assert any("it died" in note for note in ds.notes)


def test_stale_heartbeat_from_another_host():
    run = {"status": "running", "finished_at": None, "pid": 1,
           "host": {"hostname": "elsewhere"}, "started_at": "2020-01-01T00:00:00+00:00",
           "heartbeat_at": "2020-01-01T01:00:00+00:00"}
    assert "no sign of life" in liveness.died(run)
    fresh = dict(run, heartbeat_at=writer.now_iso())
    assert liveness.died(fresh) is None
    assert liveness.died(dict(run, status="complete")) is None
    assert liveness.died(dict(fresh, host={"hostname": socket.gethostname()},
                              pid=os.getpid())) is None


@pytest.fixture
def weights_file(tmp_path):
    return weights.export_model(zoo.get_model("cntk-basic"), str(tmp_path))


def test_flipped_bit_fails_the_checksum(weights_file):
    data = bytearray(open(weights_file, "rb").read())
    for at in (len(data) - 3, 60):    # one in the body, one in the header
        bad = bytearray(data)
        bad[at] ^= 0x10
        open(weights_file, "wb").write(bad)
        with pytest.raises(BnnbenchError, match="not a valid bnnbench weights file "
                                                "\\(checksum mismatch"):
            weights.read_weights(weights_file)


def _v1(data):
    """The same file in format 1: no checksum after the prefix."""
    magic, _, word_bits, hlen = struct.unpack_from("<4sHHI", data)
    header = data[44:44 + hlen].strip()
    header += b" " * (-(12 + len(header)) % 8)
    return struct.pack("<4sHHI", magic, 1, word_bits, len(header)) + header + data[44 + hlen:]


def test_version_1_files_still_read_with_a_warning(weights_file, tmp_path):
    new = weights.read_weights(weights_file)
    old_path = tmp_path / "old.bnnw"
    old_path.write_bytes(_v1(open(weights_file, "rb").read()))
    with pytest.warns(UserWarning, match="no checksum"):
        old = weights.read_weights(str(old_path))
    assert old.tensors.keys() == new.tensors.keys()
    assert all(np.array_equal(old.tensors[k], new.tensors[k]) for k in new.tensors)


def _with_header(data, edit):
    """The file with its JSON header edited by `edit` and a fresh checksum:
    what a careless tool (not a flipped bit) would write."""
    import hashlib
    _, _, word_bits, hlen = struct.unpack_from("<4sHHI", data)
    header = json.loads(data[44:44 + hlen])
    body = data[44 + hlen:]
    text = edit(header)
    text = (text if isinstance(text, bytes) else json.dumps(text).encode())
    text += b" " * (-(44 + len(text)) % 8)
    return (struct.pack("<4sHHI", b"BNNW", 2, word_bits, len(text))
            + hashlib.sha256(text + body).digest() + text + body)


def _tensor(h, **kw):
    h["tensors"][0].update(kw)
    return h


@pytest.mark.parametrize("edit", [
    lambda h: deep_json(50_000).encode(),
    lambda h: _tensor(h, stored_shape=[-1, 4]),
    lambda h: _tensor(h, stored_shape=[2**62, 2**62]),
    lambda h: _tensor(h, shape="abc"),
    lambda h: _tensor(h, shape=[1.5]),
    lambda h: _tensor(h, nbytes="8"),
    lambda h: _tensor(h, offset=2**70),
    lambda h: _tensor(h, encoding=["float32"]),
    lambda h: dict(h, tensors=[1, 2]),
    lambda h: dict(h, body_bytes="0"),
    lambda h: [h],
    lambda h: b"\xff\xfe",
], ids=["deep", "negative-dim", "huge-dims", "shape-str", "shape-float", "nbytes-str",
        "huge-offset", "encoding-list", "entries-not-objects", "body-str", "not-object",
        "not-utf8"])
def test_every_header_fault_is_one_line(weights_file, tmp_path, edit):
    bad = tmp_path / "bad.bnnw"
    bad.write_bytes(_with_header(open(weights_file, "rb").read(), edit))
    with pytest.raises(BnnbenchError, match=f"{bad}: not a valid bnnbench weights file"):
        weights.read_weights(str(bad))


def test_weights_fifo_and_device(tmp_path):
    os.mkfifo(tmp_path / "pipe.bnnw")
    with pytest.raises(BnnbenchError, match="not a valid bnnbench weights file \\(a FIFO"):
        weights.read_weights(str(tmp_path / "pipe.bnnw"))
    with pytest.raises(BnnbenchError, match="a character device"):
        weights.read_weights("/dev/zero")
