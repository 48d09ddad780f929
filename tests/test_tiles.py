"""The xnor tiles in C, natively: every variant of the AVX2 tile (the
BNN_AVX2_POPCNT_ROWS knob) against the plain C tile, and the side-by-side
tile timer (tools/tiles/compare.py) end to end on tiny runs. The ARM builds
of the same checker run under qemu-user in test_arm.py."""
import json
import os
import platform
import shutil
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "kernels_pyx")
TILE_CHECK = os.path.join(ROOT, "tools", "tiles", "tile_check.c")
COMPARE = os.path.join(ROOT, "tools", "tiles", "compare.py")
CC = os.environ.get("CC", "cc")


def host_has_avx2():
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2 " in f.read().replace("\n", " ")
    except OSError:
        return False


needs_cc = pytest.mark.skipif(shutil.which(CC) is None, reason=f"no C compiler ({CC})")
needs_avx2 = pytest.mark.skipif(not host_has_avx2(), reason="host cannot run AVX2 code")


def check_tiles(tmp_path, flags, path):
    exe = tmp_path / "tile_check"
    cmd = [CC, "-O2", "-Wall", "-Wextra", "-Werror", "-march=native", *flags, f"-I{KERNELS}",
           TILE_CHECK, "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stderr}"
    res = subprocess.run([str(exe), path], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr or res.stdout
    assert f"path {path} xnor tiles match" in res.stdout


@needs_cc
@needs_avx2
@pytest.mark.parametrize("popcnt_rows", [0, 1, 2, 3, 4])
def test_avx2_tile_variants_match_c_tiles(tmp_path, popcnt_rows):
    check_tiles(tmp_path, ["-mno-avx512f", f"-DBNN_AVX2_POPCNT_ROWS={popcnt_rows}"], "avx2")


@needs_cc
@needs_avx2
def test_avx2_popcount_rows_beyond_the_tile_do_not_build(tmp_path):
    res = subprocess.run([CC, "-O2", "-march=native", "-mno-avx512f", "-DBNN_AVX2_POPCNT_ROWS=5",
                          f"-I{KERNELS}", TILE_CHECK, "-o", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert "BNN_AVX2_POPCNT_ROWS counts rows of the tile" in res.stderr


def compare(*args):
    return subprocess.run([sys.executable, COMPARE, *args], capture_output=True, text=True,
                          timeout=300)


@needs_cc
def test_compare_times_variants_side_by_side():
    res = compare("--quick", "--rounds", "2", "--format", "json",
                  "--variant", "base=", "--variant", "again=-O2")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["cpu"] and out["rounds"] == 2 and len(out["loadavg_1min"]) == 2
    base, again = out["variants"]
    assert (base["name"], again["flags"]) == ("base", "-O2")
    assert sorted(int(k) for k in base["k"]) == [800, 3200, 12800]  # the GEMM's K, not whole words
    for cell in base["k"].values():
        assert cell["ratio"] == cell["ratio_min"] == cell["ratio_max"] == 1.0
        assert 0 < cell["min"] <= cell["median"] <= cell["max"]
    assert all(c["ratio_min"] <= c["ratio"] <= c["ratio_max"] for c in again["k"].values())
    assert "round 2/2" in res.stderr


@needs_cc
@needs_avx2
def test_compare_table_names_cpu_path_and_variants():
    res = compare("--quick", "--rounds", "1", "--variant", "lookup=-mno-avx512f",
                  "--variant", "popcnt1=-mno-avx512f -DBNN_AVX2_POPCNT_ROWS=1")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "rounds" in lines[0]
    assert lines[3].split()[:3] == ["lookup", "avx2", lines[3].split()[2]]
    assert lines[4].split()[:2] == ["popcnt1", "avx2"]


@pytest.mark.parametrize("args, says", [
    (["--variant", "nameonly"], "--variant wants NAME=FLAGS"),
    (["--variant", "a=", "--variant", "a=-O1"], "variant names must differ"),
    (["--rounds", "0"], "--rounds must be at least 1"),
    (["--cc", "no-such-compiler-here"], "C compiler 'no-such-compiler-here' not found"),
])
def test_compare_bad_arguments_say_one_line(args, says):
    res = compare(*args)
    assert res.returncode == 2
    assert says in res.stderr and res.stdout == ""


@needs_cc
def test_compare_variant_that_does_not_build_says_which():
    res = compare("--quick", "--rounds", "1", "--variant", "broken=-DBNN_AVX2_POPCNT_ROWS=x -Werror=bogus")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith("compare.py: variant broken does not build")


@needs_cc
def test_compare_interrupted_reports_the_whole_rounds_done():
    proc = subprocess.Popen([sys.executable, COMPARE, "--rounds", "50", "--format", "json",
                             "--variant", "a=", "--variant", "b=-O2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait for the second round to start: the first is whole by then
    seen = ""
    while "round 2/50" not in seen:
        line = proc.stderr.readline()
        assert line, f"compare.py ended early: {seen}"
        seen += line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "interrupted; reporting the" in err
    result = json.loads(out)
    assert 1 <= result["rounds"] < 50
    assert all(len(v["k"]) == 3 for v in result["variants"])
