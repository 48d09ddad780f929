"""Blocked float32 GEMM in the BLIS layering: pack A into row panels once,
pack blocks of B into column panels per thread, and let a register-tiled
micro-kernel (bnn_simd.h) run over cache-sized blocks. Threads split the
columns of C."""
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.stdint cimport uintptr_t
from libc.string cimport memcpy, memset

cdef extern from "bnn_config.h":
    int BNN_FLOAT_MR
    int BNN_FLOAT_NR

cdef extern from "bnn_simd.h" nogil:
    void bnn_float_tile(const float *ap, const float *bp, Py_ssize_t ldb, Py_ssize_t kc,
                        float *c, Py_ssize_t ldc, int mr, int nr, int accumulate)

# Cache blocking: B is packed KC x NC at a time (per thread, L2-resident);
# each KC x NR micro-panel of it then stays in L1 while every row panel of A
# (MR x KC, from L2) streams past it. The K loop runs outside the blocks of
# NC in a group of columns. Where packed A fits in L2 (A_L2_BYTES) a group
# is one block, so its C block stays in L2 across K. Where it does not, a
# group is up to GROUP columns, so that a KC slice of A, once in L2, serves
# them all before the next slice: one block per group brought all of A
# (3.3 MB at K = 12800) back from L3 every NC columns, which cost 10-15 % at
# K = 12800 on 1 and 2 threads (docs/measurements.md).
cdef enum:
    KC = 256
    NC = 256
    GROUP = 2048
    A_L2_BYTES = 262144
    CACHE_LINE = 64


# For tests: shapes that straddle every tile and block edge of this build.
TILE = (BNN_FLOAT_MR, BNN_FLOAT_NR)
BLOCK = (KC, NC, GROUP)
A_L2 = A_L2_BYTES   # packed A larger than this runs in groups of columns


cdef inline void *_line_aligned(void *p) noexcept nogil:
    # malloc aligns to 16 bytes; a zmm row of a packed panel that straddles
    # two cache lines costs two L1 accesses per load.
    return <void *>((<uintptr_t>p + CACHE_LINE - 1) & ~(<uintptr_t>CACHE_LINE - 1))


cdef void _pack_a(const float[:, ::1] a, float *ap) noexcept nogil:
    """ap[panel][k][r] = a[panel*MR + r, k], zero past M."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], q, kk, r, i
    cdef Py_ssize_t npanels = (m + BNN_FLOAT_MR - 1) // BNN_FLOAT_MR
    for q in range(npanels):
        for kk in range(k):
            for r in range(BNN_FLOAT_MR):
                i = q * BNN_FLOAT_MR + r
                ap[(q * k + kk) * BNN_FLOAT_MR + r] = a[i, kk] if i < m else 0


cdef void _pack_b(const float[:, ::1] b, Py_ssize_t k0, Py_ssize_t kc, Py_ssize_t j0,
                  Py_ssize_t nc, float *bp) noexcept nogil:
    """bp[panel][k][j] = b[k0 + k, j0 + panel*NR + j], zero past the block.
    Reads each row of the block once, left to right."""
    # Whole panels copy a constant size, which the compiler turns into a few
    # vector moves instead of a call to memcpy per NR floats.
    cdef Py_ssize_t full = nc // BNN_FLOAT_NR, w = nc - full * BNN_FLOAT_NR, q, kk
    cdef const float *row
    cdef float *dst
    for kk in range(kc):
        row = &b[k0 + kk, j0]
        for q in range(full):
            memcpy(bp + (q * kc + kk) * BNN_FLOAT_NR, row + q * BNN_FLOAT_NR,
                   BNN_FLOAT_NR * sizeof(float))
        if w:
            dst = bp + (full * kc + kk) * BNN_FLOAT_NR
            memcpy(dst, row + full * BNN_FLOAT_NR, w * sizeof(float))
            memset(dst + w, 0, (BNN_FLOAT_NR - w) * sizeof(float))


cdef void _column_group(const float *ap, const float[:, ::1] b, Py_ssize_t j0, Py_ssize_t j1,
                        float[:, ::1] c, float *bp) noexcept nogil:
    # Columns j0 .. j1-1 of C, one group. B is packed even though
    # with a small M (64 filters) each of its elements feeds only M
    # multiply-adds: read in place, a micro-panel's rows lie N floats apart,
    # which for N a multiple of 512 puts all of them in a few L1 sets (and a
    # page each), so it never stays in L1 across the row panels of A. The
    # packing pass reads B once, as the product must anyway.
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k = b.shape[0]
    cdef Py_ssize_t kb, k0, kc, q, i, jb, nc, jp, col, nr, npanels
    cdef Py_ssize_t mpanels = (m + BNN_FLOAT_MR - 1) // BNN_FLOAT_MR
    for kb in range((k + KC - 1) // KC):
        k0 = kb * KC
        kc = min(<Py_ssize_t>KC, k - k0)
        jb = j0
        while jb < j1:
            nc = min(<Py_ssize_t>NC, j1 - jb)
            npanels = (nc + BNN_FLOAT_NR - 1) // BNN_FLOAT_NR
            _pack_b(b, k0, kc, jb, nc, bp)
            for jp in range(npanels):
                col = jb + jp * BNN_FLOAT_NR
                nr = min(<Py_ssize_t>BNN_FLOAT_NR, nc - jp * BNN_FLOAT_NR)
                for q in range(mpanels):
                    i = q * BNN_FLOAT_MR
                    bnn_float_tile(ap + (q * k + k0) * BNN_FLOAT_MR,
                                   bp + jp * kc * BNN_FLOAT_NR, BNN_FLOAT_NR, kc, &c[i, col], n,
                                   <int>min(BNN_FLOAT_MR, m - i), <int>nr, k0 > 0)
            jb += nc


cdef void _columns(const float *ap, const float[:, ::1] b, Py_ssize_t j0, Py_ssize_t j1,
                   Py_ssize_t group, float[:, ::1] c, float *bp) noexcept nogil:
    # One thread's columns j0 .. j1-1 in groups of equal width (whole
    # micro-panels, at most `group`): a short last group would read all of A
    # again for little work.
    cdef Py_ssize_t ngroups = (j1 - j0 + group - 1) // group, width
    cdef Py_ssize_t g = j0
    if ngroups <= 0:  # more threads than micro-panels
        return
    width = ((j1 - j0 + ngroups - 1) // ngroups + BNN_FLOAT_NR - 1) // BNN_FLOAT_NR * BNN_FLOAT_NR
    while g < j1:
        _column_group(ap, b, g, min(j1, g + width), c, bp)
        g += width


def float_gemm(const float[:, ::1] a, const float[:, ::1] b, float[:, ::1] c, int threads=1):
    """c (M, N) = a (M, K) @ b (K, N), all float32."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1], j
    cdef Py_ssize_t mpanels = (m + BNN_FLOAT_MR - 1) // BNN_FLOAT_MR
    cdef void *ap_mem
    cdef void *bp_mem
    cdef float *ap
    cdef float *bp
    # One packed block of B per thread, allocated up front so that a failed
    # allocation is an exception here, never a silent wrong result later.
    cdef Py_ssize_t bp_size = KC * ((NC + BNN_FLOAT_NR - 1) // BNN_FLOAT_NR) * BNN_FLOAT_NR
    if m == 0 or n == 0:
        return
    if k == 0:
        c[:, :] = 0
        return
    threads = max(1, threads)
    ap_mem = malloc(mpanels * k * BNN_FLOAT_MR * sizeof(float) + CACHE_LINE)
    bp_mem = malloc(threads * bp_size * sizeof(float) + CACHE_LINE)
    if ap_mem == NULL or bp_mem == NULL:
        free(ap_mem)
        free(bp_mem)
        raise MemoryError("float_gemm: cannot allocate the packed operands")
    ap = <float *>_line_aligned(ap_mem)
    bp = <float *>_line_aligned(bp_mem)
    # Each thread takes an equal run of whole micro-panels of columns, not a
    # share of whole groups: 12800 columns are 6.25 groups of 2048.
    cdef Py_ssize_t ncols = (n + BNN_FLOAT_NR - 1) // BNN_FLOAT_NR
    cdef Py_ssize_t group = NC if mpanels * BNN_FLOAT_MR * k * sizeof(float) <= A_L2_BYTES else GROUP
    with nogil:
        _pack_a(a, ap)
        if threads > 1:
            for j in prange(threads, num_threads=threads, schedule="static"):
                _columns(ap, b, min(n, j * ncols // threads * BNN_FLOAT_NR),
                         min(n, (j + 1) * ncols // threads * BNN_FLOAT_NR), group, c,
                         bp + j * bp_size)
        else:
            _columns(ap, b, 0, n, group, c, bp)
    free(ap_mem)
    free(bp_mem)
