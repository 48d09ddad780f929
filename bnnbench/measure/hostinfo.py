"""The host fingerprint: everything that would explain a number.

CPU model and the flags that matter for popcount and float throughput,
cores, memory, frequency, OS and Python, the BLAS library and its threads,
and how the kernels were built.
"""
import functools
import os
import platform
import re
import socket

import numpy as np
import psutil
from threadpoolctl import threadpool_info

from ..methods.kernels import BUILD

# CPU features that change what the kernels can do (x86 and ARM names as
# /proc/cpuinfo and py-cpuinfo spell them).
RELEVANT_FLAGS = (
    "popcnt", "sse4_2", "avx", "avx2", "fma", "bmi2",
    "avx512f", "avx512bw", "avx512vl", "avx512_vpopcntdq", "avx512vpopcntdq",
    "avx512_bitalg", "avx512bitalg", "avx512_vnni",
    "neon", "asimd", "asimddp", "sve", "sve2", "vfpv4", "thumb",
)


@functools.lru_cache(maxsize=1)
def _cpuinfo():
    # py-cpuinfo can take a second; and on an unknown platform it may fail.
    try:
        import cpuinfo
        return cpuinfo.get_cpu_info()
    except Exception:  # pragma: no cover - depends on the platform
        return {}


def _blas():
    libs = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    if not libs:
        return {"library": "unknown"}
    lib = libs[0]
    return {
        "library": lib.get("internal_api", "unknown"),
        "version": lib.get("version"),
        "threads": lib.get("num_threads"),
        "architecture": lib.get("architecture"),
        "threading_layer": lib.get("threading_layer"),
        "prefix": lib.get("prefix"),
    }


def _frequency_mhz():
    try:
        freq = psutil.cpu_freq()
    except Exception:  # pragma: no cover - missing on some VMs and ARM kernels
        freq = None
    if not freq:
        return None
    return {"current": freq.current or None, "max": freq.max or None}


def _isa_family(machine):
    """x86, arm, ... of a `uname -m` name: a 32-bit ARM userland on a 64-bit
    ARM kernel (32-bit Raspberry Pi OS on a Pi 4) is native, not emulated."""
    m = (machine or "").strip().lower()
    if not m:
        return None
    if m in ("x86_64", "amd64", "x86", "i386", "i486", "i586", "i686"):
        return "x86"
    for prefix, family in (("aarch64", "arm"), ("arm", "arm"), ("riscv", "riscv"),
                           ("ppc", "power"), ("powerpc", "power"), ("s390", "s390"),
                           ("mips", "mips"), ("loongarch", "loongarch")):
        if m.startswith(prefix):
            return family
    return m


def _cpuinfo_family(text):
    """Which instruction set a /proc/cpuinfo describes (None if unknown)."""
    if not text:
        return None
    if re.search(r"^vendor_id\s*:\s*IBM/S390", text, re.M):
        return "s390"
    if re.search(r"^(CPU implementer|CPU architecture)\s*:", text, re.M):
        return "arm"
    if re.search(r"^vendor_id\s*:", text, re.M) and re.search(r"^flags\s*:", text, re.M):
        return "x86"
    if re.search(r"^isa\s*:\s*rv", text, re.M):
        return "riscv"
    return None


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(1 << 16)
    except OSError:
        return None


def _binfmt_emulator(machine, proc):
    """The enabled binfmt_misc entry (e.g. qemu-aarch64) that names `machine`."""
    folder = os.path.join(proc, "sys", "fs", "binfmt_misc")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    aliases = [machine.lower()] + (["arm"] if machine.lower().startswith("arm") else [])
    for name in names:
        if name in ("register", "status") or not any(a in name.lower() for a in aliases):
            continue
        if (_read(os.path.join(folder, name)) or "").startswith("enabled"):
            return name
    return None


def emulation(machine=None, environ=None, proc="/proc"):
    """(emulated, emulator): does this process run under a user-mode emulator?

    A run under qemu-user reports the guest's `uname -m`, but the kernel
    underneath still names its own architecture (/proc/sys/kernel/arch) and
    qemu passes the host's /proc/cpuinfo through. Either disagreeing with the
    instruction-set family of `machine` means emulation; agreeing signals can
    never mark a real device emulated. BNNBENCH_EMULATED (set by `make
    arm-verify`) can add the verdict where those traces are hidden, never
    remove it.
    """
    machine = machine or platform.machine()
    environ = os.environ if environ is None else environ
    declared = environ.get("BNNBENCH_EMULATED", "").strip()
    if declared.lower() in ("0", "false", "no", "off"):
        declared = ""
    mine = _isa_family(machine)
    kernel = (_read(os.path.join(proc, "sys", "kernel", "arch")) or "").strip()
    described = _cpuinfo_family(_read(os.path.join(proc, "cpuinfo")))
    reasons = []
    if mine and _isa_family(kernel) not in (None, mine):
        reasons.append(f"kernel is {kernel}")
    if mine and described not in (None, mine):
        reasons.append(f"cpuinfo describes {described}")
    if declared and declared.lower() not in ("1", "true", "yes", "on"):
        return True, declared
    if reasons:
        return True, _binfmt_emulator(machine, proc) or f"unknown ({reasons[0]})"
    return (True, "unknown") if declared else (False, None)


def fingerprint(label=None):
    info = _cpuinfo()
    flags = set(info.get("flags", []))
    hostname = socket.gethostname()
    emulated, emulator = emulation()
    return {
        "label": label or hostname,
        "hostname": hostname,
        "arch": platform.machine(),
        "emulated": emulated,
        "emulator": emulator,
        "os": platform.platform(),
        "cpu_brand": info.get("brand_raw") or platform.processor() or "unknown",
        "cpu_vendor": info.get("vendor_id_raw"),
        "cpu_flags": sorted(f for f in RELEVANT_FLAGS if f in flags),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_bytes": psutil.virtual_memory().total,
        "frequency_mhz": _frequency_mhz(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "build": dict(BUILD),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
    }


def default_threads():
    """1 and every core: the two ends of the thread-scaling question."""
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return sorted({1, cores})
