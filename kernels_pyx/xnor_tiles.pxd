# The xnor GEMM micro-kernels (bnn_simd.h), declared once for every module
# that drives them (xnor_gemm.pyx: GEMMs; bconv.pyx: whole binary layers).
from libc.stdint cimport int32_t, uint32_t, uint64_t

cdef extern from "bnn_simd.h" nogil:
    int BNN_XNOR_A_SPLIT
    int BNN_XNOR_B_SPLIT
    void bnn_xnor_split_b(const void *panel, Py_ssize_t kw, void *out, int u64_words)
    void bnn_xnor_split_a_u32(const uint32_t *a, Py_ssize_t kw, uint32_t *out)
    void bnn_xnor_split_a_u64(const uint64_t *a, Py_ssize_t kw, uint64_t *out)
    void bnn_xnor_tile_u32(const uint32_t *a, Py_ssize_t lda, int mr, const uint32_t *p,
                           Py_ssize_t kw, int32_t *c, Py_ssize_t ldc, int nr, int32_t k)
    void bnn_xnor_tile_u64(const uint64_t *a, Py_ssize_t lda, int mr, const uint64_t *p,
                           Py_ssize_t kw, int32_t *c, Py_ssize_t ldc, int nr, int32_t k)
    # The same tiles, also prefetching pf_lines cache lines from pf into L2,
    # and the share of such a prefetch that one of `calls` tile calls takes.
    # tail_half: the last K-word holds at most 32 bits of K, in its low half
    # (GEMM operands packed along K); a tile may then skip its high half.
    Py_ssize_t bnn_prefetch_share(const char *p, Py_ssize_t lines, Py_ssize_t calls,
                                  Py_ssize_t call, const char **start)
    void bnn_xnor_tile_pf_u32(const uint32_t *a, Py_ssize_t lda, int mr, const uint32_t *p,
                              Py_ssize_t kw, int32_t *c, Py_ssize_t ldc, int nr, int32_t k,
                              const char *pf, Py_ssize_t pf_lines, int tail_half)
    void bnn_xnor_tile_pf_u64(const uint64_t *a, Py_ssize_t lda, int mr, const uint64_t *p,
                              Py_ssize_t kw, int32_t *c, Py_ssize_t ldc, int nr, int32_t k,
                              const char *pf, Py_ssize_t pf_lines, int tail_half)
