"""The host fingerprint: everything that would explain a number.

CPU model and the flags that matter for popcount and float throughput,
cores, memory, frequency, OS and Python, the BLAS library and its threads,
and how the kernels were built.
"""
import functools
import os
import platform
import socket

import numpy as np
import psutil
from threadpoolctl import threadpool_info

from .kernels import BUILD

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


def fingerprint(label=None):
    info = _cpuinfo()
    flags = set(info.get("flags", []))
    hostname = socket.gethostname()
    return {
        "label": label or hostname,
        "hostname": hostname,
        "arch": platform.machine(),
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
