/* Micro-kernels: the innermost register-blocked loops, one tile of output at
 * a time. Everything around them (packing, cache blocking, threads) is in
 * the Cython modules. Each tile exists in a plain C form that any gcc/clang
 * builds; faster forms replace it where bnn_config.h selected a SIMD path. */
#ifndef BNN_SIMD_H
#define BNN_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "bnn_config.h"

/* A read hint into L2 (gcc and clang, every target; a no-op elsewhere):
 * the xnor kernels fetch what comes next (the GEMM's next block of panels,
 * the binary layer's next image) while they compute. */
static inline void bnn_prefetch_l2(const void *p)
{
#if defined(__GNUC__)
    __builtin_prefetch(p, 0, 2);
#else
    (void)p;
#endif
}

static inline void bnn_prefetch_lines(const char *p, ptrdiff_t lines)
{
    for (ptrdiff_t i = 0; i < lines; ++i) bnn_prefetch_l2(p + 64 * i);
}

/* Where `calls` tile calls share the prefetch of `lines` cache lines from
 * p, call number `call` takes an equal share: returns its count and sets
 * *start to its first line (NULL when it has none). */
static inline ptrdiff_t bnn_prefetch_share(const char *p, ptrdiff_t lines, ptrdiff_t calls,
                                           ptrdiff_t call, const char **start)
{
    const ptrdiff_t per_call = calls > 0 ? (lines + calls - 1) / calls : 0;
    const ptrdiff_t first = per_call * call < lines ? per_call * call : lines;
    const ptrdiff_t n = per_call < lines - first ? per_call : lines - first;
    *start = n > 0 ? p + 64 * first : NULL;
    return n;
}

/* ---------------------------------------------------------------- xnor */

/* Plain C xnor tile, stamped out once per word type: rows a[r*lda + w]
 * (r < mr <= BNN_XNOR_MR) against one packed panel p[w*NRW + j]; writes
 * c[r*ldc + j] = k - 2*popcount(a ^ b) for j < nr. Padding bits are zero in
 * both operands, so they never count. */
#define BNN_DEFINE_XNOR_TILE_C(WT, SUFFIX, POPCNT)                                  \
static inline void bnn_xnor_tile_c_##SUFFIX(                                        \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,              \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k)                               \
{                                                                                   \
    enum { NRW = BNN_PANEL_BITS / (8 * (int)sizeof(WT)) };                          \
    int32_t acc[BNN_XNOR_MR][NRW];                                                  \
    memset(acc, 0, sizeof(acc));                                                    \
    if (mr == BNN_XNOR_MR) {                                                        \
        for (ptrdiff_t w = 0; w < kw; ++w) {                                        \
            const WT *b = p + w * NRW;                                              \
            for (int r = 0; r < BNN_XNOR_MR; ++r) {                                 \
                WT x = a[r * lda + w];                                              \
                for (int j = 0; j < NRW; ++j) acc[r][j] += POPCNT(x ^ b[j]);        \
            }                                                                       \
        }                                                                           \
    } else {                                                                        \
        for (ptrdiff_t w = 0; w < kw; ++w) {                                        \
            const WT *b = p + w * NRW;                                              \
            for (int r = 0; r < mr; ++r) {                                          \
                WT x = a[r * lda + w];                                              \
                for (int j = 0; j < NRW; ++j) acc[r][j] += POPCNT(x ^ b[j]);        \
            }                                                                       \
        }                                                                           \
    }                                                                               \
    for (int r = 0; r < mr; ++r)                                                    \
        for (int j = 0; j < nr; ++j) c[r * ldc + j] = k - 2 * acc[r][j];            \
}

#define BNN_POPCNT32(x) __builtin_popcount(x)
#define BNN_POPCNT64(x) __builtin_popcountll(x)
BNN_DEFINE_XNOR_TILE_C(uint32_t, u32, BNN_POPCNT32)
BNN_DEFINE_XNOR_TILE_C(uint64_t, u64, BNN_POPCNT64)

/* The plain prefetching tile (contract below): the prefetches in one burst,
 * then the tile, which counts a half-word tail like any other word. ATTR:
 * extra function attributes (a path that needs it inlined says so). */
#define BNN_DEFINE_XNOR_TILE_PF(WT, SUFFIX, ATTR)                                    \
static inline ATTR void bnn_xnor_tile_pf_##SUFFIX(                                   \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,               \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k, const char *pf,                \
        ptrdiff_t pf_lines, int tail_half)                                           \
{                                                                                    \
    (void)tail_half;                                                                 \
    bnn_prefetch_lines(pf, pf_lines);                                                \
    bnn_xnor_tile_##SUFFIX(a, lda, mr, p, kw, c, ldc, nr, k);                        \
}

/* Each SIMD path header defines bnn_xnor_tile_u32 and bnn_xnor_tile_u64 with
 * the signature and contract of the plain C tiles above. A path may set
 * BNN_XNOR_A_SPLIT to 1: then each row of A reaches the tile as its low
 * nibbles (words 0..kw-1) followed by its high nibbles (kw..2kw-1), made by
 * bnn_xnor_split_a_* once per GEMM call. */
#if defined(BNN_PATH_AVX512) || defined(BNN_PATH_AVX2)
#include "bnn_x86.h"
#elif defined(BNN_PATH_NEON)
#include "bnn_neon.h"
#else
#define bnn_xnor_tile_u32 bnn_xnor_tile_c_u32
#define bnn_xnor_tile_u64 bnn_xnor_tile_c_u64
#endif

/* bnn_xnor_tile_pf_*: a tile that also prefetches pf_lines cache lines
 * from pf into L2. A path whose tile can issue them one per K-word, spread
 * over its loop, defines BNN_HAVE_XNOR_TILE_PF (AVX-512; AVX2 defines it to
 * pass tail_half on); elsewhere they go out in one burst before the tile.
 * tail_half says the last K-word holds at most 32 bits of K, in its low
 * half, with equal padding above in both operands: a tile may skip that
 * high half (the AVX-512 and AVX2 u64 tiles do) or count it (these do; it
 * adds nothing). */
#ifndef BNN_HAVE_XNOR_TILE_PF
BNN_DEFINE_XNOR_TILE_PF(uint32_t, u32, )
BNN_DEFINE_XNOR_TILE_PF(uint64_t, u64, )
#endif

/* bnn_pack_band_*: sign + bit-pack of a band of rows into whole panels (see
 * bnn_x86.h); a path without one leaves packing to the loops in bitpack.pyx. */
#ifndef BNN_HAVE_PACK_BAND
#define BNN_HAVE_PACK_BAND 0
#define BNN_DEFINE_PACK_BAND_NONE(WT, SUFFIX)                                        \
static inline void bnn_pack_band_##SUFFIX(const float *x, ptrdiff_t ldx,             \
        ptrdiff_t krows, ptrdiff_t npanels, WT *out, ptrdiff_t pstride)              \
{ (void)x; (void)ldx; (void)krows; (void)npanels; (void)out; (void)pstride; }
BNN_DEFINE_PACK_BAND_NONE(uint32_t, u32)
BNN_DEFINE_PACK_BAND_NONE(uint64_t, u64)
#endif

#ifndef BNN_XNOR_A_SPLIT
#define BNN_XNOR_A_SPLIT 0
#endif

/* A path may also set BNN_XNOR_B_SPLIT to 1: then each panel reaches the
 * tile split into nibbles too, each K-word's panel row (BNN_PANEL_BITS / 8
 * bytes) as twice as many: for each 32-byte half, its low nibbles, then its
 * high nibbles. bnn_xnor_split_b makes that form of kw panel rows; the
 * drivers run it once per block of panels, for all row tiles of A to share
 * (docs/kernels.md). */
#ifndef BNN_XNOR_B_SPLIT
#define BNN_XNOR_B_SPLIT 0
#endif
/* A half-word tail in split form: of u64 words, the last one's low nibbles
 * and high nibbles swap halves, so its low-nibble word holds the nibbles of
 * the word's low 32 bits and its high-nibble word those of the high 32.
 * Both operands move the same nibbles to the same places, so a tile that
 * counts both words still counts exactly the word; and when those high 32
 * bits are padding (tail_half), a tile may skip the high-nibble word, half
 * of the last word's lookups. At K = 800 (the BMXNet sweep's 32 channels,
 * 12.5 words) that is 4 % of a tile's work. */
static inline void bnn_swap_tail_halves(uint8_t *lo, uint8_t *hi, int words)
{
    for (int w = 0; w < words; ++w)
        for (int i = 0; i < 4; ++i) {
            const uint8_t t = lo[8 * w + 4 + i];
            lo[8 * w + 4 + i] = hi[8 * w + i];
            hi[8 * w + i] = t;
        }
}

/* u64_words: the panel holds u64 words, whose last one gets the layout above. */
static inline void bnn_xnor_split_b(const void *panel, ptrdiff_t kw, void *out, int u64_words)
{
    enum { HALF = 32, ROW = BNN_PANEL_BITS / 8 };
    const uint8_t *src = (const uint8_t *)panel;
    uint8_t *dst = (uint8_t *)out;
    for (ptrdiff_t h = 0; h < kw * ROW; h += HALF, src += HALF, dst += 2 * HALF)
        for (int i = 0; i < HALF; ++i) {
            dst[i] = src[i] & 0x0f;
            dst[HALF + i] = src[i] >> 4;
        }
    if (u64_words && kw > 0)
        for (uint8_t *last = (uint8_t *)out + 2 * (kw - 1) * ROW; last < dst; last += 2 * HALF)
            bnn_swap_tail_halves(last, last + HALF, HALF / 8);
}

/* bnn_pack_signs_*: sign + bit-pack of n consecutive floats (one pixel's
 * channels, NHWC) into ceil(n / W) words, bit j of word w for x[w*W + j];
 * padding bits 0. Where a path offers bnn_sign_group (the sign bits of
 * BNN_SIGN_GROUP floats from one compare), whole groups go through it, and
 * where it also offers bnn_sign_group_wide (BNN_SIGN_GROUP_WIDE floats at
 * once, from several compares), runs of those go first. */
#define BNN_DEFINE_PACK_SIGNS(WT, SUFFIX)                                           \
static inline void bnn_pack_signs_##SUFFIX(const float *x, ptrdiff_t n, WT *out)    \
{                                                                                   \
    enum { BITS = 8 * (int)sizeof(WT) };                                            \
    for (ptrdiff_t w = 0; w * BITS < n; ++w) {                                      \
        const float *p = x + w * BITS;                                              \
        const ptrdiff_t m = n - w * BITS < BITS ? n - w * BITS : BITS;              \
        WT word = 0;                                                                \
        ptrdiff_t j = 0;                                                            \
        BNN_PACK_SIGNS_GROUPS(WT)                                                   \
        for (; j < m; ++j) word |= (WT)(p[j] >= 0) << j;                            \
        out[w] = word;                                                              \
    }                                                                               \
}
#ifdef BNN_SIGN_GROUP_WIDE
#define BNN_PACK_SIGNS_WIDE(WT)                                                     \
        for (; j + BNN_SIGN_GROUP_WIDE <= m; j += BNN_SIGN_GROUP_WIDE)              \
            word |= (WT)bnn_sign_group_wide(p + j) << j;
#else
#define BNN_PACK_SIGNS_WIDE(WT)
#endif
#ifdef BNN_SIGN_GROUP
#define BNN_PACK_SIGNS_GROUPS(WT)                                                   \
        BNN_PACK_SIGNS_WIDE(WT)                                                     \
        for (; j + BNN_SIGN_GROUP <= m; j += BNN_SIGN_GROUP)                        \
            word |= (WT)bnn_sign_group(p + j) << j;
#else
#define BNN_PACK_SIGNS_GROUPS(WT)
#endif
BNN_DEFINE_PACK_SIGNS(uint32_t, u32)
BNN_DEFINE_PACK_SIGNS(uint64_t, u64)

/* A row of A in nibbles; u64 rows give their last word the tail layout of
 * bnn_xnor_split_b. */
#define BNN_DEFINE_SPLIT_A(WT, SUFFIX, U64)                                         \
static inline void bnn_xnor_split_a_##SUFFIX(const WT *a, ptrdiff_t kw, WT *out)    \
{                                                                                   \
    const WT low = (WT)0x0f0f0f0f0f0f0f0fULL;                                       \
    for (ptrdiff_t w = 0; w < kw; ++w) {                                            \
        out[w] = a[w] & low;                                                        \
        out[kw + w] = (a[w] >> 4) & low;                                            \
    }                                                                               \
    if (U64 && kw > 0)                                                              \
        bnn_swap_tail_halves((uint8_t *)&out[kw - 1], (uint8_t *)&out[2 * kw - 1], 1); \
}
BNN_DEFINE_SPLIT_A(uint32_t, u32, 0)
BNN_DEFINE_SPLIT_A(uint64_t, u64, 1)

/* --------------------------------------------------------------- float */

/* GCC/clang vector extensions of BNN_FLOAT_VEC floats: zmm FMA on AVX-512,
 * ymm on AVX2, pairs of NEON registers on ARM and scalar code elsewhere
 * (also under SIMDe emulation, where they stay exact). aligned(4) makes
 * unaligned loads and stores through the type legal. */
typedef float bnn_vf __attribute__((vector_size(4 * BNN_FLOAT_VEC), aligned(4)));

/* c[r*ldc + j] (+)= sum_k ap[k*MR + r] * bp[k*ldb + j] over one MR x NR tile:
 * bp is a packed panel (ldb = NR) or B itself (ldb = N). */
static inline void bnn_float_tile(const float *ap, const float *bp, ptrdiff_t ldb, ptrdiff_t kc,
                                  float *c, ptrdiff_t ldc, int mr, int nr, int accumulate)
{
    enum { NV = BNN_FLOAT_NR / BNN_FLOAT_VEC };
    bnn_vf acc[BNN_FLOAT_MR][NV];
    memset(acc, 0, sizeof(acc));
    for (ptrdiff_t k = 0; k < kc; ++k) {
        bnn_vf b[NV];
        for (int v = 0; v < NV; ++v) b[v] = *(const bnn_vf *)(bp + k * ldb + v * BNN_FLOAT_VEC);
        const float *a = ap + k * BNN_FLOAT_MR;
        for (int r = 0; r < BNN_FLOAT_MR; ++r)
            for (int v = 0; v < NV; ++v) acc[r][v] += a[r] * b[v];
    }
    if (mr == BNN_FLOAT_MR && nr == BNN_FLOAT_NR) {
        for (int r = 0; r < BNN_FLOAT_MR; ++r) {
            bnn_vf *row = (bnn_vf *)(c + r * ldc);
            for (int v = 0; v < NV; ++v) row[v] = accumulate ? row[v] + acc[r][v] : acc[r][v];
        }
        return;
    }
    for (int r = 0; r < mr; ++r) {
        float tmp[BNN_FLOAT_NR];
        memcpy(tmp, acc[r], sizeof(tmp));
        for (int j = 0; j < nr; ++j)
            c[r * ldc + j] = accumulate ? c[r * ldc + j] + tmp[j] : tmp[j];
    }
}

#endif
