"""Resource arguments: the one place that decides how many threads, which
seeds and how much memory a command line or an API call may ask for.

Everything here is checked before anything is allocated, started or
written, so a bad value costs one line and leaves no file behind:

- threads: an integer (Python or numpy) from 1 to max_threads(). OpenMP
  starts a stack per thread, and a count in the tens of thousands crashes
  the interpreter; the kernels never see an unchecked value.
- seeds: an integer from 0 to 2**63 - 1 (what numpy's generators accept).
- memory: a planned allocation must fit in MEMORY_HEADROOM of the memory
  available now (the sweep's guard, shared by every command that sizes
  arrays from an argument).
"""
import numbers
import os

import psutil

from .errors import BnnbenchError

MEMORY_HEADROOM = 0.8      # never plan to use more than this share of free memory
MIN_THREAD_CAP = 64        # oversubscription studies on small hosts stay possible
THREADS_PER_CORE_CAP = 4
MAX_SEED = 2**63 - 1


def max_threads():
    """The most threads a run may ask for: 4 per logical core, at least 64."""
    return max(MIN_THREAD_CAP, THREADS_PER_CORE_CAP * (os.cpu_count() or 1))


def _as_int(value, what):
    """A plain int from an int or numpy integer; BnnbenchError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BnnbenchError(f"{what} must be an integer, got {value!r:.40}")
    return int(value)


def check_threads(value, what="threads"):
    """`value` as a plain int in 1..max_threads(), or a one-line BnnbenchError."""
    n = _as_int(value, what)
    top = max_threads()
    if not 1 <= n <= top:
        raise BnnbenchError(f"{what} must be an integer >= 1 and <= {top} on this host "
                            f"(4 per logical core, at least 64), got {n}")
    return n


def check_seed(value, what="seed"):
    n = _as_int(value, what)
    if not 0 <= n <= MAX_SEED:
        raise BnnbenchError(f"{what} must be between 0 and 2**63-1, got {n}")
    return n


def check_memory(nbytes, what, hint=""):
    """BnnbenchError unless `nbytes` fits in the memory available now."""
    available = psutil.virtual_memory().available
    if nbytes > MEMORY_HEADROOM * available:
        raise BnnbenchError(f"{what} needs {nbytes / 2**30:.1f} GiB but only "
                            f"{available / 2**30:.1f} GiB is available"
                            + (f"; {hint}" if hint else ""))
