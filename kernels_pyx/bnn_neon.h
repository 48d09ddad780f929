/* ARM NEON xnor tiles (aarch64 and 32-bit ARMv7 with NEON). Included by
 * bnn_simd.h when bnn_config.h selected the NEON path; same contract as the
 * plain C tiles there.
 *
 * NEON counts bits per byte (vcnt), so popcount(a ^ b) over 128 bits is one
 * xor and one vcnt. Byte counters gain at most 8 per K-word, so they add up
 * BNN_NEON_BYTE_STEPS words before being widened with pairwise adds
 * (vpaddl, vpadal) into 32-bit lanes; each lane then holds the count of
 * 4 bytes, which is one column for 32-bit words and half a column for
 * 64-bit words. Everything between load and widening is byte-wise, so one
 * body serves both word types and either byte order. */
#ifndef BNN_NEON_H
#define BNN_NEON_H
#include <arm_neon.h>

#if BNN_PANEL_BITS % 128 != 0
/* A panel row that is not whole q registers: keep the plain C tiles. */
#define bnn_xnor_tile_u32 bnn_xnor_tile_c_u32
#define bnn_xnor_tile_u64 bnn_xnor_tile_c_u64
#else

#define BNN_NEON_MIN(x, y) ((x) < (y) ? (x) : (y))
#define BNN_NEON_MAX(x, y) ((x) > (y) ? (x) : (y))

/* Byte counters per row pass (rows x q registers), kept in registers next to
 * the panel row (NQ) and the broadcast word: aarch64 has 32 q registers,
 * ARMv7 16, so ARMv7 walks the rows of a tile in more passes. */
#ifdef __aarch64__
#define BNN_NEON_COUNTERS 16
#else
#define BNN_NEON_COUNTERS 8
#endif

enum {
    BNN_NEON_NQ = BNN_PANEL_BITS / 128,
    BNN_NEON_ROWS = BNN_NEON_MAX(1, BNN_NEON_MIN(BNN_XNOR_MR, BNN_NEON_COUNTERS / BNN_NEON_NQ)),
    BNN_NEON_BYTE_STEPS = 31    /* 31 * 8 = 248 fits a byte */
};

static inline uint8x16_t bnn_neon_dup_u32(const uint32_t *x)
{
    return vreinterpretq_u8_u32(vld1q_dup_u32(x));
}

static inline uint8x16_t bnn_neon_dup_u64(const uint64_t *x)
{
    return vreinterpretq_u8_u64(vld1q_dup_u64(x));
}

/* Counts per 32-bit lane -> counts per column. */
static inline void bnn_neon_columns_u32(uint32x4_t lanes, uint32_t *cols)
{
    vst1q_u32(cols, lanes);
}

static inline void bnn_neon_columns_u64(uint32x4_t lanes, uint32_t *cols)
{
    vst1_u32(cols, vmovn_u64(vpaddlq_u32(lanes)));
}

#define BNN_DEFINE_XNOR_TILE_NEON(WT, SUFFIX)                                          \
static inline void bnn_xnor_tile_##SUFFIX(                                             \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,                 \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k)                                  \
{                                                                                      \
    enum { NRW = BNN_PANEL_BITS / (8 * (int)sizeof(WT)), COLS_PER_Q = 16 / sizeof(WT) }; \
    for (int r0 = 0; r0 < mr; r0 += BNN_NEON_ROWS) {                                   \
        /* Rows past mr repeat the last row: the hot loop keeps a fixed shape   \
         * and never reads outside A; their results are not stored. */          \
        const WT *row[BNN_NEON_ROWS];                                                  \
        for (int rr = 0; rr < BNN_NEON_ROWS; ++rr)                                     \
            row[rr] = a + (ptrdiff_t)BNN_NEON_MIN(r0 + rr, mr - 1) * lda;              \
        uint32x4_t sums[BNN_NEON_ROWS][BNN_NEON_NQ];                                   \
        for (int rr = 0; rr < BNN_NEON_ROWS; ++rr)                                     \
            for (int q = 0; q < BNN_NEON_NQ; ++q) sums[rr][q] = vdupq_n_u32(0);        \
        for (ptrdiff_t w0 = 0; w0 < kw; w0 += BNN_NEON_BYTE_STEPS) {                   \
            const ptrdiff_t w1 = BNN_NEON_MIN(kw, w0 + BNN_NEON_BYTE_STEPS);           \
            uint8x16_t bytes[BNN_NEON_ROWS][BNN_NEON_NQ];                              \
            for (int rr = 0; rr < BNN_NEON_ROWS; ++rr)                                 \
                for (int q = 0; q < BNN_NEON_NQ; ++q) bytes[rr][q] = vdupq_n_u8(0);    \
            for (ptrdiff_t w = w0; w < w1; ++w) {                                      \
                const uint8_t *b = (const uint8_t *)(p + w * NRW);                     \
                uint8x16_t bv[BNN_NEON_NQ];                                            \
                _Pragma("GCC unroll 16")                                               \
                for (int q = 0; q < BNN_NEON_NQ; ++q) bv[q] = vld1q_u8(b + 16 * q);    \
                _Pragma("GCC unroll 16")                                               \
                for (int rr = 0; rr < BNN_NEON_ROWS; ++rr) {                           \
                    const uint8x16_t x = bnn_neon_dup_##SUFFIX(row[rr] + w);           \
                    _Pragma("GCC unroll 16")                                           \
                    for (int q = 0; q < BNN_NEON_NQ; ++q)                              \
                        bytes[rr][q] = vaddq_u8(bytes[rr][q],                          \
                                                vcntq_u8(veorq_u8(x, bv[q])));         \
                }                                                                      \
            }                                                                          \
            for (int rr = 0; rr < BNN_NEON_ROWS; ++rr)                                 \
                for (int q = 0; q < BNN_NEON_NQ; ++q)                                  \
                    sums[rr][q] = vpadalq_u16(sums[rr][q], vpaddlq_u8(bytes[rr][q]));  \
        }                                                                              \
        for (int rr = 0; rr < BNN_NEON_ROWS && r0 + rr < mr; ++rr) {                   \
            uint32_t cols[NRW];                                                        \
            for (int q = 0; q < BNN_NEON_NQ; ++q)                                      \
                bnn_neon_columns_##SUFFIX(sums[rr][q], cols + q * COLS_PER_Q);         \
            int32_t *out = c + (ptrdiff_t)(r0 + rr) * ldc;                             \
            for (int j = 0; j < nr; ++j) out[j] = k - 2 * (int32_t)cols[j];            \
        }                                                                              \
    }                                                                                  \
}

BNN_DEFINE_XNOR_TILE_NEON(uint32_t, u32)
BNN_DEFINE_XNOR_TILE_NEON(uint64_t, u64)

#endif /* BNN_PANEL_BITS % 128 */
#endif
