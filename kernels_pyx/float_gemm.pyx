"""Blocked float32 GEMM in the BLIS layering: pack A into row panels once,
pack blocks of B into column panels per thread, and let a register-tiled
micro-kernel (bnn_simd.h) run over cache-sized blocks. Threads split the
columns of C."""
from cython.parallel cimport prange, threadid
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
# (MR x KC, from L2) streams past it.
cdef enum:
    KC = 256
    NC = 256
    CACHE_LINE = 64


# For tests: shapes that straddle every tile and block edge of this build.
TILE = (BNN_FLOAT_MR, BNN_FLOAT_NR)
BLOCK = (KC, NC)


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


cdef void _column_block(const float *ap, const float[:, ::1] b, Py_ssize_t j0,
                        float[:, ::1] c, float *bp) noexcept nogil:
    # B is packed even though with a small M (64 filters) each of its
    # elements feeds only M multiply-adds: read in place, a micro-panel's rows
    # lie N floats apart, which for N a multiple of 512 puts all of them in a
    # few L1 sets (and a page each), so it never stays in L1 across the row
    # panels of A. The packing pass reads B once, as the product must anyway.
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k = b.shape[0]
    cdef Py_ssize_t nc = min(<Py_ssize_t>NC, n - j0), kb, k0, kc, q, i, jp, col, nr
    cdef Py_ssize_t mpanels = (m + BNN_FLOAT_MR - 1) // BNN_FLOAT_MR
    cdef Py_ssize_t npanels = (nc + BNN_FLOAT_NR - 1) // BNN_FLOAT_NR
    for kb in range((k + KC - 1) // KC):
        k0 = kb * KC
        kc = min(<Py_ssize_t>KC, k - k0)
        _pack_b(b, k0, kc, j0, nc, bp)
        for jp in range(npanels):
            col = j0 + jp * BNN_FLOAT_NR
            nr = min(<Py_ssize_t>BNN_FLOAT_NR, nc - jp * BNN_FLOAT_NR)
            for q in range(mpanels):
                i = q * BNN_FLOAT_MR
                bnn_float_tile(ap + (q * k + k0) * BNN_FLOAT_MR, bp + jp * kc * BNN_FLOAT_NR,
                               BNN_FLOAT_NR, kc, &c[i, col], n, <int>min(BNN_FLOAT_MR, m - i),
                               <int>nr, k0 > 0)


def float_gemm(const float[:, ::1] a, const float[:, ::1] b, float[:, ::1] c, int threads=1):
    """c (M, N) = a (M, K) @ b (K, N), all float32."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1], j
    cdef Py_ssize_t mpanels = (m + BNN_FLOAT_MR - 1) // BNN_FLOAT_MR
    cdef Py_ssize_t nblocks = (n + NC - 1) // NC
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
    with nogil:
        _pack_a(a, ap)
        if threads > 1:
            for j in prange(nblocks, num_threads=threads, schedule="static"):
                _column_block(ap, b, j * NC, c, bp + threadid() * bp_size)
        else:
            for j in range(nblocks):
                _column_block(ap, b, j * NC, c, bp)
    free(ap_mem)
    free(bp_mem)
