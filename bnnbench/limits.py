"""Resource arguments: the one place that decides how many threads, which
seeds and how much memory a command line or an API call may ask for.

Everything here is checked before anything is allocated, started or
written, so a bad value costs one line and leaves no file behind:

- threads: an integer (Python or numpy) from 1 to max_threads(). OpenMP
  starts a stack per thread, and a count in the tens of thousands crashes
  the interpreter; the kernels never see an unchecked value.
- seeds: an integer from 0 to 2**63 - 1 (what numpy's generators accept).
- every other numeric argument of a public entry point (strides, padding,
  word sizes, batch, widths): check_int(name, value, low, high). One rule:
  Python ints and numpy integer scalars are accepted and handed on as plain
  ints; bools, floats (even 2.0), strings and values outside low..high are
  one BnnbenchError line (a ValueError) naming the argument and the range.
- memory: a planned allocation must fit in MEMORY_HEADROOM of the memory
  available now (the sweep's guard, shared by every command that sizes
  arrays from an argument).
"""
import numbers
import os

import numpy as np
import psutil

from .errors import BnnbenchError

MEMORY_HEADROOM = 0.8      # never plan to use more than this share of free memory
MIN_THREAD_CAP = 64        # oversubscription studies on small hosts stay possible
THREADS_PER_CORE_CAP = 4
MAX_SEED = 2**63 - 1


def max_threads():
    """The most threads a run may ask for: 4 per logical core, at least 64."""
    return max(MIN_THREAD_CAP, THREADS_PER_CORE_CAP * (os.cpu_count() or 1))


MAX_DIMENSION = 2**31 - 1    # a size, stride or padding the kernels index with int32/Py_ssize_t


def _as_int(value, what, expected="an integer"):
    """A plain int from an int or numpy integer; BnnbenchError otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise BnnbenchError(f"{what} must be {expected}, got {type(value).__name__} "
                            f"{value!r:.40}")
    return int(value)


def _range(low, high):
    if high is None:
        return f">= {low}"
    return f">= {low} and <= {high}"


def check_int(name, value, low=0, high=MAX_DIMENSION, choices=None):
    """`value` as a plain int in low..high (or one of `choices`), or one
    BnnbenchError line naming `name` and what is allowed."""
    if choices is not None:
        allowed = " or ".join(str(c) for c in choices)
        n = _as_int(value, name, allowed)
        if n not in choices:
            raise BnnbenchError(f"{name} must be {allowed}, got {n}")
        return n
    expected = f"an integer {_range(low, high)}"
    n = _as_int(value, name, expected)
    if n < low or (high is not None and n > high):
        raise BnnbenchError(f"{name} must be {expected}, got {_short(n)}")
    return n


def _short(n):
    """A huge integer as its order of magnitude, so the line stays one line."""
    text = str(n)
    return text if len(text) <= 24 else f"about 10**{len(text.lstrip('-')) - 1}"


def check_threads(value, what="threads"):
    """`value` as a plain int in 1..max_threads(), or a one-line BnnbenchError."""
    top = max_threads()
    n = _as_int(value, what, f"an integer >= 1 and <= {top}")
    if not 1 <= n <= top:
        raise BnnbenchError(f"{what} must be an integer >= 1 and <= {top} on this host "
                            f"(4 per logical core, at least 64), got {_short(n)}")
    return n


def check_seed(value, what="seed"):
    n = _as_int(value, what, "an integer between 0 and 2**63-1")
    if not 0 <= n <= MAX_SEED:
        raise BnnbenchError(f"{what} must be between 0 and 2**63-1, got {_short(n)}")
    return n


def check_memory(nbytes, what, hint=""):
    """BnnbenchError unless `nbytes` fits in the memory available now
    (`nbytes` may be a Python int of any size: a terabyte layer is refused,
    never overflowed)."""
    available = psutil.virtual_memory().available
    if nbytes > MEMORY_HEADROOM * available:
        raise BnnbenchError(f"{what} needs {nbytes / 2**30:.1f} GiB but only "
                            f"{available / 2**30:.1f} GiB is available"
                            + (f"; {hint}" if hint else ""))
