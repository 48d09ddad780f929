"""bnnbench compare on two hosts' real quick sweeps (one rewritten as an ARM
host), checked against the DataFrame the loader makes."""
import io
import json

import pandas as pd
import pytest
from cli_child import bnnbench

from bnnbench.runs import frame, reader
from bnnbench.cli import main

FAST = ["--quick", "--threads", "1,2", "--min-time", "0", "--repeat", "1", "--quiet"]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("results")
    proc = bnnbench("sweep", *FAST, "--label", "desk", "--out", str(tmp))
    assert proc.returncode == 0, proc.stderr
    (src,) = tmp.glob("sweep-desk-*.json")
    run = json.loads(src.read_text())
    run["run_id"] = "a" * 32
    run["host"].update(label="pi", arch="armv7l", cpu_brand="ARMv7 Processor rev 4 (v7l)",
                       cpu_flags=["neon", "vfpv4", "thumb"], physical_cores=4, logical_cores=4)
    for row in run["rows"]:   # a slower device: 7x the float time, 3x the xnor time
        factor = 7 if row["method"].startswith("float") else 3
        row["median_s"] *= factor
    (tmp / "pi.json").write_text(json.dumps(run))
    run["run_id"], run["host"]["label"] = "e" * 32, "pi-qemu"
    run["host"].update(emulated=True, emulator="qemu-arm")
    (tmp / "qemu.json").write_text(json.dumps(run))
    return tmp, src


def test_csv_matches_the_frame(results_dir):
    tmp, src = results_dir
    proc = bnnbench("compare", "desk", "pi", "--results", str(tmp), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    out = pd.read_csv(io.StringIO(proc.stdout))
    df = frame.add_speedups(reader.load_frame([str(tmp)]))
    desk, pi = df[df["host_label"] == "desk"], df[df["host_label"] == "pi"]
    assert len(out) == len(desk) == len(pi)
    key = ["method", "channels", "threads"]
    m = out.rename(columns={"threads_a": "threads"}).merge(desk, on=key).merge(
        pi, on=key, suffixes=("_desk", "_pi"))
    assert len(m) == len(out)
    assert (m["median_ms_a"] - 1e3 * m["median_s_desk"]).abs().max() < 1e-9
    assert (m["median_ms_b"] - 1e3 * m["median_s_pi"]).abs().max() < 1e-9
    assert (m["speedup_a"] - m["speedup_desk"]).abs().max() < 1e-9
    assert (m["speedup_b"] - m["speedup_pi"]).abs().max() < 1e-9
    ratio = m["median_s_desk"] / m["median_s_pi"]
    assert (m["time_a/b"] - ratio).abs().max() < 1e-9
    # The rewrite makes the pi's own speedup of xnor over float 7/3 of the desk's.
    x = m[(m["method"] == "xnor_64") & (m["channels"] == 32)].iloc[0]
    assert x["speedup_b"] == pytest.approx(x["speedup_a"] * 7 / 3)
    assert set(out["host_a"]) == {"desk"} and set(out["host_b"]) == {"pi"}


def compare(capsys, *args):
    """The command in-process (the CSV test above runs it as a user would)."""
    code = main(["compare", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_table_and_json(results_dir, capsys):
    tmp, _ = results_dir
    code, out, err = compare(capsys, "desk", "pi", "--results", str(tmp))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("A = desk:") and lines[1].startswith("B = pi: ARMv7")
    assert "armv7l" in lines[1]
    header = lines[4].split()
    assert header[:2] == ["method", "channels"] and "A/B_time" in header
    assert any(line.split()[0] == "binarize_xnor_64_omp" for line in lines[5:])
    code, out, _ = compare(capsys, "pi", "desk", "--results", str(tmp), "--format", "json")
    js = json.loads(out)
    assert code == 0 and js["host_a"] == "pi" and len(js["rows"]) == len(lines) - 5


def test_emulated_host_is_named(results_dir, capsys):
    tmp, _ = results_dir
    code, out, err = compare(capsys, "desk", "pi-qemu", "--results", str(tmp))
    assert code == 0, err
    assert "EMULATED by qemu-arm" in out.splitlines()[1]


def test_unknown_host_lists_the_labels(results_dir, capsys):
    tmp, _ = results_dir
    code, _, err = compare(capsys, "desk", "toaster", "--results", str(tmp))
    assert code == 2
    assert err.strip() == ("bnnbench compare: error: host 'toaster' not found in the "
                           "results; hosts: 'desk', 'pi', 'pi-qemu'")
