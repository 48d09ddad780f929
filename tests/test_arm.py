"""Raspberry Pi support without a Pi: emulation detection and the ARM build logic.

The detection tests feed hostinfo.emulation() fake /proc trees copied from
real devices and from qemu-user. The build tests use Debian's cross compilers
(gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf) as stand-ins for a Pi's gcc
and run the NEON tiles under qemu-user when it is installed; without them
they skip, saying what to install. The full check (the real kernels in an
emulated Python, `bnnbench verify` on both architectures) is `make
arm-verify`.
"""
import os
import re
import runpy
import shutil
import subprocess

import pytest

from bnnbench.measure import hostinfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "kernels_pyx")
TILE_CHECK = os.path.join(ROOT, "tools", "tiles", "tile_check.c")

# /proc/cpuinfo excerpts as the devices print them.
PI4_64 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2835
Revision\t: c03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
PI4_32_ON_64 = """processor\t: 0
model name\t: ARMv7 Processor rev 3 (v7l)
BogoMIPS\t: 108.00
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2711
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep popcnt avx avx2
"""


def fake_proc(tmp_path, cpuinfo=None, kernel_arch=None, binfmt=None):
    proc = tmp_path / "proc"
    (proc / "sys" / "kernel").mkdir(parents=True)
    if cpuinfo is not None:
        (proc / "cpuinfo").write_text(cpuinfo)
    if kernel_arch is not None:
        (proc / "sys" / "kernel" / "arch").write_text(kernel_arch + "\n")
    if binfmt is not None:
        folder = proc / "sys" / "fs" / "binfmt_misc"
        folder.mkdir(parents=True)
        (folder / "register").write_text("")
        (folder / "status").write_text("enabled\n")
        for name, state in binfmt.items():
            (folder / name).write_text(f"{state}\ninterpreter /usr/bin/{name}\nflags: \n")
    return str(proc)


# ------------------------------------------------------------ real devices

@pytest.mark.parametrize("machine, cpuinfo, kernel_arch", [
    ("aarch64", PI4_64, "aarch64"),        # 64-bit Raspberry Pi OS
    ("armv7l", PI4_32_ON_64, "aarch64"),   # 32-bit userland on the Pi 4's 64-bit kernel
    ("armv8l", PI4_32_ON_64, "aarch64"),   # the same under `linux32`
    ("armv7l", PI4_32_ON_64, None),        # a kernel without /proc/sys/kernel/arch
    ("x86_64", X86, "x86_64"),
])
def test_real_devices_are_never_marked_emulated(tmp_path, machine, cpuinfo, kernel_arch):
    # qemu registered for foreign binaries does not make a native run emulated
    proc = fake_proc(tmp_path, cpuinfo, kernel_arch,
                     binfmt={"qemu-x86_64": "enabled", "qemu-aarch64": "enabled"}
                     if machine == "x86_64" else None)
    assert hostinfo.emulation(machine, environ={}, proc=proc) == (False, None)
    assert hostinfo.emulation(machine, environ={"BNNBENCH_EMULATED": "0"},
                              proc=proc) == (False, None)


def test_no_proc_at_all_is_not_emulated(tmp_path):
    assert hostinfo.emulation("aarch64", environ={}, proc=str(tmp_path / "none")) == (False, None)


# ------------------------------------------------------------ emulated runs

def test_qemu_user_is_caught_by_the_kernel_and_cpuinfo(tmp_path):
    # what qemu-aarch64 7.2 shows on an x86-64 host
    proc = fake_proc(tmp_path, X86, "x86_64")
    assert hostinfo.emulation("aarch64", environ={}, proc=proc) == (
        True, "unknown (kernel is x86_64)")


def test_either_trace_alone_is_enough(tmp_path):
    only_cpuinfo = fake_proc(tmp_path / "a", X86, None)
    assert hostinfo.emulation("aarch64", environ={}, proc=only_cpuinfo)[0] is True
    # an emulator that fakes an ARM /proc/cpuinfo still runs on an x86 kernel
    only_kernel = fake_proc(tmp_path / "b", PI4_64, "x86_64")
    assert hostinfo.emulation("aarch64", environ={}, proc=only_kernel)[0] is True


@pytest.mark.parametrize("machine, entry", [("aarch64", "qemu-aarch64"), ("armv7l", "qemu-arm")])
def test_binfmt_entry_names_the_emulator(tmp_path, machine, entry):
    proc = fake_proc(tmp_path, X86, "x86_64",
                     binfmt={"qemu-x86_64": "enabled", "qemu-riscv64": "enabled", entry: "enabled"})
    assert hostinfo.emulation(machine, environ={}, proc=proc) == (True, entry)


def test_disabled_binfmt_entry_is_not_named(tmp_path):
    proc = fake_proc(tmp_path, X86, "x86_64", binfmt={"qemu-aarch64": "disabled"})
    assert hostinfo.emulation("aarch64", environ={}, proc=proc) == (
        True, "unknown (kernel is x86_64)")


def test_x86_emulated_on_an_arm_kernel(tmp_path):
    # box64 / FEX / Rosetta: the other direction
    proc = fake_proc(tmp_path, PI4_64, "aarch64")
    assert hostinfo.emulation("x86_64", environ={}, proc=proc) == (
        True, "unknown (kernel is aarch64)")


def test_declared_emulator_adds_but_never_removes(tmp_path):
    hidden = fake_proc(tmp_path / "hidden", PI4_64, None)   # traces all faked
    assert hostinfo.emulation("aarch64", environ={"BNNBENCH_EMULATED": "qemu-aarch64"},
                              proc=hidden) == (True, "qemu-aarch64")
    assert hostinfo.emulation("aarch64", environ={"BNNBENCH_EMULATED": "1"},
                              proc=hidden) == (True, "unknown")
    visible = fake_proc(tmp_path / "visible", X86, "x86_64")
    for off in ("0", "false", ""):
        assert hostinfo.emulation("aarch64", environ={"BNNBENCH_EMULATED": off},
                                  proc=visible)[0] is True


def test_fingerprint_records_emulation():
    fp = hostinfo.fingerprint("t")
    assert isinstance(fp["emulated"], bool)
    assert fp["emulator"] is None or isinstance(fp["emulator"], str)
    assert fp["emulated"] == (fp["emulator"] is not None)


# ------------------------------------------------------- ARM build logic

CROSS = {
    # Debian arch: (compiler, flags for a Pi's core, qemu, its library prefix)
    "arm64": ("aarch64-linux-gnu-gcc", ["-mcpu=cortex-a72"], "qemu-aarch64", "/usr/aarch64-linux-gnu"),
    "armhf": ("arm-linux-gnueabihf-gcc", ["-mcpu=cortex-a7", "-mfpu=neon-vfpv4"], "qemu-arm",
              "/usr/arm-linux-gnueabihf"),
}


def cross(arch):
    cc, flags, qemu, prefix = CROSS[arch]
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed (apt-get install gcc-{cc[:-4]}): "
                    f"ARM build not checked; `make arm-verify` installs it")
    return cc, flags, qemu, prefix


def build_tile_check(tmp_path, arch, extra=(), include=KERNELS):
    cc, flags, qemu, prefix = cross(arch)
    exe = tmp_path / f"tile_check-{arch}"
    cmd = [cc, "-O2", "-Wall", "-Wextra", "-Werror", *flags, *extra, f"-I{include}",
           TILE_CHECK, "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stderr}"
    return exe, qemu, prefix


def run_tile_check(exe, qemu, prefix, path):
    if shutil.which(qemu) is None:
        pytest.skip(f"{qemu} not installed (apt-get install qemu-user): tiles compiled, not run")
    res = subprocess.run([qemu, "-L", prefix, str(exe), path], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr or res.stdout
    assert f"path {path} xnor tiles match" in res.stdout


@pytest.mark.parametrize("arch", ["arm64", "armhf"])
def test_neon_tiles_match_c_tiles_under_qemu(tmp_path, arch):
    exe, qemu, prefix = build_tile_check(tmp_path, arch)
    run_tile_check(exe, qemu, prefix, "neon")


@pytest.mark.parametrize("arch", ["arm64", "armhf"])
def test_portable_build_for_arm_has_no_intrinsics(tmp_path, arch):
    exe, qemu, prefix = build_tile_check(tmp_path, arch, extra=["-DBNN_PORTABLE=1"])
    run_tile_check(exe, qemu, prefix, "portable")


@pytest.mark.parametrize("panel_bits, mr", [(256, 3), (1024, 5), (384, 1)])
def test_neon_tiles_follow_the_tile_constants(tmp_path, panel_bits, mr):
    # the tile sizes may change in bnn_config.h; the NEON tiles must follow
    cross("arm64")
    include = tmp_path / "kernels"
    shutil.copytree(KERNELS, include, ignore=shutil.ignore_patterns("*.c", "*.so"))
    config = (include / "bnn_config.h").read_text()
    config, n_bits = re.subn(r"#define BNN_PANEL_BITS \d+", f"#define BNN_PANEL_BITS {panel_bits}",
                             config)
    config, n_mr = re.subn(r"#define BNN_XNOR_MR \d+", f"#define BNN_XNOR_MR {mr}", config)
    # one BNN_PANEL_BITS and one BNN_XNOR_MR per code path (#if/#else)
    assert n_bits >= 1 and n_mr >= 1, \
        "bnn_config.h no longer defines BNN_PANEL_BITS / BNN_XNOR_MR"
    (include / "bnn_config.h").write_text(config)
    exe, qemu, prefix = build_tile_check(tmp_path, "arm64", include=str(include))
    run_tile_check(exe, qemu, prefix, "neon")


@pytest.fixture
def setup_ns(monkeypatch):
    """setup.py's namespace without running setup() or Cython."""
    import Cython.Build
    import setuptools
    monkeypatch.setattr(setuptools, "setup", lambda **kw: None)
    monkeypatch.setattr(Cython.Build, "cythonize", lambda exts, **kw: exts)
    return runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="bnnbench_setup")


def choose_flags(setup_ns, monkeypatch, cc, env):
    from setuptools import Distribution
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler
    for name in ("BNNBENCH_PORTABLE", "BNNBENCH_NO_OPENMP", "BNNBENCH_CFLAGS", "CFLAGS",
                 "CPPFLAGS", "LDSHARED", "LDFLAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CC", cc)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cmd = setup_ns["BuildExt"](Distribution())
    cmd.compiler = new_compiler()
    customize_compiler(cmd.compiler)
    flags, _, portable, _ = cmd._choose_flags()
    return cmd, flags, portable


@pytest.mark.parametrize("cpu, neon", [
    ("-mcpu=cortex-a7", True),              # Pi 2; Pi 3 and 4 in 32-bit mode
    ("-mcpu=cortex-a72", True),
    ("-mcpu=arm1176jzf-s -marm", False),    # Pi 1 / Zero: ARMv6, no NEON to find
])
def test_setup_finds_neon_behind_a_vfp_default(setup_ns, monkeypatch, cpu, neon):
    # Raspberry Pi OS's 32-bit gcc is configured --with-fpu=vfp: -mcpu alone
    # leaves NEON off. The cross compiler with -mfpu=vfp plays that gcc.
    cc, _, _, _ = cross("armhf")
    cmd, flags, _ = choose_flags(setup_ns, monkeypatch, f"{cc} -mfpu=vfp",
                                 {"BNNBENCH_CFLAGS": cpu})
    assert ("-mfpu=auto" in flags) == neon, flags
    assert cmd._compiles(flags, setup_ns["NEON_PROBE"]) == neon


def test_setup_leaves_aarch64_and_portable_builds_alone(setup_ns, monkeypatch):
    cc, _, _, _ = cross("arm64")
    cmd, flags, _ = choose_flags(setup_ns, monkeypatch, cc, {})
    assert "-mfpu=auto" not in flags
    assert cmd._compiles(flags, setup_ns["NEON_PROBE"])
    cc, _, _, _ = cross("armhf")
    _, flags, portable = choose_flags(setup_ns, monkeypatch, f"{cc} -mfpu=vfp",
                                      {"BNNBENCH_PORTABLE": "1", "BNNBENCH_CFLAGS": "-mcpu=cortex-a7"})
    assert portable and "-mfpu=auto" not in flags


EMULATED_RUN = os.path.join(ROOT, "tests", "data", "sweep-emulated-qemu-aarch64.json")


def test_emulated_run_file_loads_and_says_so():
    # made by `make arm-sweep`; the report tests load it beside native runs
    from bnnbench.runs import reader
    run = reader.load_run(EMULATED_RUN)
    host = run["host"]
    assert (host["arch"], host["emulated"], host["emulator"]) == ("aarch64", True, "qemu-aarch64")
    assert host["build"]["kernel_path"] == "neon"
    assert run["status"] == "complete" and run["rows"]
    assert all(row["verified"] for row in run["rows"])
