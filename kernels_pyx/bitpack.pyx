"""Sign + bit-pack: float32 values -> words whose bits are 1 where x >= 0.

Bit k % W of word k // W holds element k; padding bits are 0, so an xor of
two packed rows never counts them.
"""
from cython.parallel cimport prange
from libc.string cimport memset
from libc.stdint cimport uint32_t, uint64_t
from words cimport word_t

cdef extern from "bnn_config.h":
    int BNN_PANEL_BITS

cdef extern from "bnn_simd.h" nogil:
    void bnn_pack_signs_u32(const float *x, Py_ssize_t n, uint32_t *out)
    void bnn_pack_signs_u64(const float *x, Py_ssize_t n, uint64_t *out)
    int BNN_HAVE_PACK_BAND
    void bnn_pack_band_u32(const float *x, Py_ssize_t ldx, Py_ssize_t krows,
                           Py_ssize_t npanels, uint32_t *out, Py_ssize_t pstride)
    void bnn_pack_band_u64(const float *x, Py_ssize_t ldx, Py_ssize_t krows,
                           Py_ssize_t npanels, uint64_t *out, Py_ssize_t pstride)

# Columns handled together when packing along K: wide enough that each
# cache line of the input is used whole before it is evicted.
cdef enum:
    COL_BLOCK = 64


cdef inline void _pack_row(const float *x, Py_ssize_t k, word_t *out) noexcept nogil:
    if word_t is uint64_t:
        bnn_pack_signs_u64(x, k, out)
    else:
        bnn_pack_signs_u32(x, k, out)


def pack_rows(const float[:, ::1] x, word_t[:, ::1] out, int threads=1):
    """Pack each row of x (M, K) into out (M, ceil(K / W)): the weights of a
    GEMM, and a feature map's pixels (rows of C channels) for bconv_layer."""
    cdef Py_ssize_t i, m = x.shape[0], k = x.shape[1]
    cdef Py_ssize_t bits = sizeof(word_t) * 8
    if out.shape[0] != m or out.shape[1] != (k + bits - 1) // bits:
        raise ValueError(f"out is {tuple(out.shape)[:2]}, packing {m} rows of {k} "
                         f"needs ({m}, {(k + bits - 1) // bits})")
    if m == 0 or k == 0:
        return
    with nogil:
        if threads > 1:
            for i in prange(m, num_threads=threads, schedule="static"):
                _pack_row(&x[i, 0], k, &out[i, 0])
        else:
            for i in range(m):
                _pack_row(&x[i, 0], k, &out[i, 0])


cdef void _pack_col_block(const float[:, ::1] x, Py_ssize_t n0, word_t[:, :, ::1] out) noexcept nogil:
    """Pack columns n0 .. n0+COL_BLOCK of x (K, N) along K into panel layout."""
    cdef Py_ssize_t bits = sizeof(word_t) * 8
    cdef Py_ssize_t nrw = out.shape[2]
    cdef Py_ssize_t k = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t nb = min(<Py_ssize_t>COL_BLOCK, n - n0)
    cdef Py_ssize_t kw = out.shape[1]
    cdef Py_ssize_t w, bit, j, kk, kend
    cdef word_t acc[COL_BLOCK]
    cdef const float *row
    for w in range(kw):
        memset(acc, 0, sizeof(acc))
        kend = min(bits, k - w * bits)
        for bit in range(kend):
            row = &x[w * bits + bit, n0]
            for j in range(nb):
                acc[j] = acc[j] | ((<word_t>(row[j] >= 0)) << bit)
        for j in range(nb):
            out[(n0 + j) // nrw, w, (n0 + j) % nrw] = acc[j]


cdef void _pack_band(const float[:, ::1] x, Py_ssize_t w, Py_ssize_t npanels,
                     word_t[:, :, ::1] out) noexcept nogil:
    """Band w (rows w*W .. w*W+W-1) of the first npanels whole panels."""
    cdef Py_ssize_t bits = sizeof(word_t) * 8
    cdef Py_ssize_t krows = min(bits, x.shape[0] - w * bits)
    if npanels == 0:
        return
    if word_t is uint64_t:
        bnn_pack_band_u64(&x[w * bits, 0], x.shape[1], krows, npanels, &out[0, w, 0],
                          out.shape[1] * out.shape[2])
    else:
        bnn_pack_band_u32(&x[w * bits, 0], x.shape[1], krows, npanels, &out[0, w, 0],
                          out.shape[1] * out.shape[2])


def pack_panels(const float[:, ::1] x, word_t[:, :, ::1] out, int threads=1):
    """Pack x (K, N) along K into panels out (ceil(N/NR), ceil(K/W), NR).

    NR = BNN_PANEL_BITS / W columns per panel; columns past N stay zero
    (out must arrive zeroed there).
    """
    cdef Py_ssize_t n = x.shape[1], nblocks = (n + COL_BLOCK - 1) // COL_BLOCK, b
    cdef Py_ssize_t kw = out.shape[1], nrw = out.shape[2], full = n // nrw
    if x.shape[0] == 0 or n == 0:
        return
    if BNN_HAVE_PACK_BAND:
        with nogil:
            if threads > 1:
                for b in prange(kw, num_threads=threads, schedule="static"):
                    _pack_band(x, b, full, out)
            else:
                for b in range(kw):
                    _pack_band(x, b, full, out)
            if full * nrw < n:  # a last, partial panel
                _pack_col_block(x, full * nrw, out)
        return
    with nogil:
        if threads > 1:
            for b in prange(nblocks, num_threads=threads, schedule="static"):
                _pack_col_block(x, b * COL_BLOCK, out)
        else:
            for b in range(nblocks):
                _pack_col_block(x, b * COL_BLOCK, out)


def panel_width(int word_bits):
    return BNN_PANEL_BITS // word_bits
