"""Roofline probe loops (see bnn_probe.h), run on `threads` threads at once.

Each function returns (work done, seconds); work is bit-MACs, multiply-adds
or bytes moved. Every thread runs the same loop on its own data.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
import time

cdef extern from "bnn_probe.h" nogil:
    const char *BNN_PROBE_METHOD
    int BNN_PROBE_WORDS
    int BNN_PROBE_N_METHODS
    const char *bnn_probe_method_name(int m)
    const char *bnn_probe_method_text(int m)
    int64_t bnn_probe_popcount_method(int method, int64_t rounds, const uint64_t *x,
                                      uint64_t *sink)
    int64_t bnn_probe_fma(int64_t rounds, float seed, float *sink)
    uint64_t bnn_probe_read(const uint64_t *x, int64_t n)

METHOD = BNN_PROBE_METHOD.decode()
# The popcount loops this build has, by name (the probe result's keys), the
# first the default; one outside AVX2, where the probe times several and
# takes the fastest as the ceiling (bnn_probe.h).
METHODS = tuple(bnn_probe_method_name(m).decode() for m in range(BNN_PROBE_N_METHODS))
METHOD_TEXTS = {METHODS[m]: bnn_probe_method_text(m).decode()
                for m in range(BNN_PROBE_N_METHODS)}


def _method_index(method):
    if method is None:
        return 0
    try:
        return METHODS.index(method)
    except ValueError:
        raise ValueError(f"probe: no popcount method {method!r} in this build "
                         f"(it has {', '.join(METHODS)})") from None


def popcount(int64_t rounds, int threads=1, method=None):
    """xor + popcount + accumulate with popcount method `method` (a name in
    METHODS; None: the first) on `threads` threads."""
    cdef int t, m = _method_index(method)
    cdef int64_t total = 0
    cdef uint64_t *data = <uint64_t *>malloc(threads * BNN_PROBE_WORDS * sizeof(uint64_t))
    cdef uint64_t sinks[256]
    if data == NULL or threads > 256:
        free(data)
        raise MemoryError("probe: cannot allocate operands")
    for t in range(threads * BNN_PROBE_WORDS):
        data[t] = <uint64_t>(t + 1) * 0x9E3779B97F4A7C15ULL
    start = time.perf_counter()
    with nogil:
        for t in prange(threads, num_threads=threads, schedule="static"):
            total += bnn_probe_popcount_method(m, rounds, data + t * BNN_PROBE_WORDS, &sinks[t])
    seconds = time.perf_counter() - start
    free(data)
    return total, seconds


def popcount_checksum(const uint64_t[::1] words, int64_t rounds=1, method=None):
    """One thread of popcount method `method` over `words` (PROBE_WORDS of
    them): (bit-MACs it counts as done, the sum of its popcounts). For tests:
    the sum depends on every word, so the compiler cannot drop the work."""
    cdef int m = _method_index(method)
    cdef uint64_t sink = 0
    cdef int64_t ops
    if words.shape[0] != BNN_PROBE_WORDS:
        raise ValueError(f"probe: {BNN_PROBE_WORDS} words expected")
    with nogil:
        ops = bnn_probe_popcount_method(m, rounds, &words[0], &sink)
    return ops, sink


PROBE_WORDS = BNN_PROBE_WORDS


def fma(int64_t rounds, int threads=1):
    cdef int t
    cdef int64_t total = 0
    cdef float sinks[256]
    if threads > 256:
        raise ValueError("probe: at most 256 threads")
    start = time.perf_counter()
    with nogil:
        for t in prange(threads, num_threads=threads, schedule="static"):
            total += bnn_probe_fma(rounds, 0.999999 + t * 1e-9, &sinks[t])
    return total, time.perf_counter() - start


def copy(unsigned char[::1] dst, const unsigned char[::1] src, int threads=1):
    """Copy src to dst in one chunk per thread; returns bytes moved (read +
    written) and seconds."""
    cdef Py_ssize_t n = src.shape[0], chunk = (n + threads - 1) // threads, lo, length
    cdef int t
    start = time.perf_counter()
    with nogil:
        for t in prange(threads, num_threads=threads, schedule="static"):
            lo = t * chunk
            length = min(chunk, n - lo)
            if length > 0:
                memcpy(&dst[lo], &src[lo], length)
    return 2 * n, time.perf_counter() - start


def read(const uint64_t[::1] src, int threads=1):
    """Read src in one chunk per thread; returns bytes read, seconds and a
    checksum (so the reads cannot be dropped)."""
    cdef Py_ssize_t n = src.shape[0], chunk = (n + threads - 1) // threads, lo
    cdef int t
    cdef uint64_t sums[256]
    if threads > 256:
        raise ValueError("probe: at most 256 threads")
    start = time.perf_counter()
    with nogil:
        for t in prange(threads, num_threads=threads, schedule="static"):
            lo = t * chunk
            sums[t] = bnn_probe_read(&src[lo], min(chunk, n - lo)) if lo < n else 0
    seconds = time.perf_counter() - start
    total = 0
    for t in range(threads):
        total ^= sums[t]
    return 8 * n, seconds, total
