/* AVX-512 xnor tiles, for hosts with VPOPCNTDQ (Ice Lake and later Xeons,
 * Zen 4). Included by bnn_x86.h when bnn_config.h selected BNN_PATH_AVX512.
 *
 * A panel row is two zmm registers: 16 columns of u64 words or 32 of u32.
 * vpopcntq / vpopcntd count every lane at once, so popcount(a ^ b) over 512
 * bit-MACs is one xor (A's word broadcast once per row into a register),
 * one popcount and one add: the same three instructions as the probe's loop,
 * which makes that loop the right ceiling for this tile. Counts accumulate in
 * lanes of the word's own width, so no widening step is needed; A is used as
 * packed (no nibble split). */
#ifndef BNN_AVX512_H
#define BNN_AVX512_H
#define BNN_HAVE_XNOR_TILE_PF 1

/* c[j] = k - 2 * count[j] for j < nr, 16 int32 lanes. A partial panel takes
 * a masked store: a call to memcpy there would make gcc keep the tile's
 * registers on the stack around it, on the full panels' path too. The
 * emulated build goes through a small buffer instead: SIMDe 0.8 emulates
 * _mm512_mask_storeu_* as a full store of zeros in the masked lanes, which
 * would clobber the next row of C. */
static inline void bnn_store_avx512(__m512i count, int32_t k, int32_t *c, int nr)
{
    __m512i r = _mm512_sub_epi32(_mm512_set1_epi32(k), _mm512_slli_epi32(count, 1));
    if (nr >= 16) {
        _mm512_storeu_si512((void *)c, r);
        return;
    }
    if (nr <= 0) return;
#ifdef BNN_EMULATE_AVX512
    int32_t tmp[16];
    _mm512_storeu_si512((void *)tmp, r);
    for (int j = 0; j < nr; ++j) c[j] = tmp[j];
#else
    _mm512_mask_storeu_epi32((void *)c, (__mmask16)((1u << nr) - 1), r);
#endif
}

/* One row of a tile's counts as int32 lanes in column order, for full
 * 64-byte stores: u32 counts already are; the 2 x 8 u64 counts (each fits
 * in 32 bits) are gathered into one register by vpermt2d, which halves the
 * stores of the u64 epilogue, the bulk of the work when K is a few words.
 * Returns the number of registers written to out. */
static inline int bnn_row_counts_u32(const __m512i *acc, __m512i *out)
{
    out[0] = acc[0];
    out[1] = acc[1];
    return 2;
}

/* The low 32-bit halves of 2 x 8 u64 lanes, as 16 int32 lanes in order. */
static inline __m512i bnn_low_halves(__m512i first8, __m512i next8)
{
    const __m512i low_halves = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14,
                                                 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_epi32(first8, low_halves, next8);
}

static inline int bnn_row_counts_u64(const __m512i *acc, __m512i *out)
{
    out[0] = bnn_low_halves(acc[0], acc[1]);
    return 1;
}

static inline void bnn_store_row_avx512(const __m512i *counts, int n, int32_t k,
                                        int32_t *c, int nr)
{
    for (int i = 0; i < n; ++i) bnn_store_avx512(counts[i], k, c + 16 * i, nr - 16 * i);
}

/* Keep a loaded panel row in its register. Left alone, gcc folds the load
 * into every xor that uses it, so each popcount also costs a 64-byte load
 * on top of the broadcasts of A. Loading each row once per K-word measured
 * faster at small and medium K and no slower at large K (figures:
 * docs/measurements.md). */
#ifdef BNN_EMULATE_AVX512
#define BNN_IN_REGISTER(v) ((void)0)
#else
#define BNN_IN_REGISTER(v) __asm__("" : "+v"(v))
#endif

/* A half-word tail (tail_half: the caller knows that the last K-word holds
 * at most 32 bits of K, in its low half, and that the high half is the
 * same padding in both operands). The u64 tile then counts that word in
 * u32 lanes: the panel's 16 low halves are gathered into one register (one
 * vpermt2d per tile) and each row pays one xor, one popcount and one add
 * instead of two each. At K = 800 (12.5 words: the BMXNet sweep's 32
 * channels) the skipped halves are 4 % of the tile's popcounts, all of
 * them padding; skipping them measured faster there (figures:
 * docs/measurements.md). */
static inline __m512i bnn_low_halves_u64(const uint64_t *p)
{
    return bnn_low_halves(_mm512_loadu_si512((const void *)p),
                          _mm512_loadu_si512((const void *)(p + 8)));
}

/* A panel row is two zmm registers (NZ). Full tiles hold BNN_XNOR_MR x NZ
 * accumulators, so each panel register loaded is used BNN_XNOR_MR times and
 * each broadcast word of A NZ times; a row tail (mr < BNN_XNOR_MR, only when
 * M is not a multiple of it) runs the same loop one row at a time.
 * At K = 800 (13 words) a full tile's fixed costs are a fifth of its time,
 * so they are kept small: the accumulators start as the first word's
 * counts (no zeroing, 16 fewer adds), and the tile is always inlined into
 * its caller's panel loop (gcc would otherwise call it and reload its
 * arguments from the stack each time). Both measured faster at K = 800
 * (figures: docs/measurements.md). */
#define BNN_DEFINE_XNOR_TILE_AVX512(WT, SUFFIX, SET1, POPCNT, ADD, HALF_TAIL)        \
enum { BNN_NRW_##SUFFIX = BNN_PANEL_BITS / (8 * (int)sizeof(WT)),                    \
       BNN_LANES_##SUFFIX = 64 / (int)sizeof(WT) };                                  \
_Static_assert(BNN_NRW_##SUFFIX == 2 * BNN_LANES_##SUFFIX,                           \
               "a panel row must be two zmm registers");                             \
/* A full tile over kfull >= 1 whole words, then the half word at kfull when     \
 * half is set. Whole panels call it with nr and half as constants (a copy      \
 * each, with no test in it and nothing spilled); the last, partial panel of    \
 * a GEMM with runtime ones. */                                                  \
static inline __attribute__((always_inline)) void bnn_xnor_full_tile_##SUFFIX(       \
        const WT *a, ptrdiff_t lda, const WT *p, ptrdiff_t kfull, int32_t *c,        \
        ptrdiff_t ldc, int nr, int32_t k, const char *pf, ptrdiff_t pf_lines,        \
        const int half)                                                              \
{                                                                                    \
    enum { NRW = BNN_NRW_##SUFFIX, NZ = 2, LANES = BNN_LANES_##SUFFIX };             \
    __m512i acc[BNN_XNOR_MR][NZ];                                                    \
    for (int z = 0; z < NZ; ++z) {                                                   \
        const __m512i b = _mm512_loadu_si512((const void *)(p + z * LANES));         \
        for (int r = 0; r < BNN_XNOR_MR; ++r)                                        \
            acc[r][z] = POPCNT(_mm512_xor_si512(b, SET1(a[r * lda])));               \
    }                                                                                \
    if (pf_lines > 0) bnn_prefetch_l2(pf);                                           \
    /* Unrolled: fewer loop instructions beside the 48 vector ones of a              \
     * word; a small gain at K <= 3200, none at large K (docs/measurements.md). */   \
    _Pragma("GCC unroll 4")                                                          \
    for (ptrdiff_t w = 1; w < kfull; ++w) {                                          \
        if (w < pf_lines) bnn_prefetch_l2(pf + 64 * w);                              \
        __m512i b[NZ];                                                               \
        for (int z = 0; z < NZ; ++z)                                                 \
            b[z] = _mm512_loadu_si512((const void *)(p + w * NRW + z * LANES));      \
        for (int z = 0; z < NZ; ++z) BNN_IN_REGISTER(b[z]);                          \
        for (int r = 0; r < BNN_XNOR_MR; ++r) {                                      \
            const __m512i x = SET1(a[r * lda + w]);                                  \
            for (int z = 0; z < NZ; ++z)                                             \
                acc[r][z] = ADD(acc[r][z], POPCNT(_mm512_xor_si512(b[z], x)));       \
        }                                                                            \
    }                                                                                \
    const ptrdiff_t kw = kfull + half;                                               \
    if (pf_lines > kw) bnn_prefetch_lines(pf + 64 * kw, pf_lines - kw);             \
    __m512i tail = _mm512_setzero_si512();                                           \
    if (half) tail = bnn_low_halves_u64((const uint64_t *)(p + kfull * NRW));        \
    _Pragma("GCC unroll 16")                                                         \
    for (int r = 0; r < BNN_XNOR_MR; ++r) {                                          \
        __m512i counts[NZ];                                                          \
        const int n = bnn_row_counts_##SUFFIX(acc[r], counts);                       \
        if (half)                                                                    \
            counts[0] = _mm512_add_epi32(counts[0], _mm512_popcnt_epi32(             \
                _mm512_xor_si512(tail, _mm512_set1_epi32((int)(uint32_t)a[r * lda + kfull]))));\
        bnn_store_row_avx512(counts, n, k, c + r * ldc, nr);                         \
    }                                                                                \
}                                                                                    \
static inline __attribute__((always_inline)) void bnn_xnor_tile_pf_##SUFFIX(         \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,               \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k, const char *pf,                \
        ptrdiff_t pf_lines, int tail_half)                                           \
{                                                                                    \
    enum { NRW = BNN_NRW_##SUFFIX, NZ = 2, LANES = BNN_LANES_##SUFFIX };             \
    if (mr == BNN_XNOR_MR && kw > 0) {                                               \
        /* Whole panels (all but the last) get copies with nr and half known    \
         * at compile time: no test per row and nothing spilled around the      \
         * partial store; measured faster at every K tried                      \
         * (docs/measurements.md). */                                           \
        const int half = HALF_TAIL && tail_half && kw > 1;                           \
        if (nr < NRW)                                                                \
            bnn_xnor_full_tile_##SUFFIX(a, lda, p, kw - half, c, ldc, nr, k, pf,     \
                                        pf_lines, half);                             \
        else if (half)                                                               \
            bnn_xnor_full_tile_##SUFFIX(a, lda, p, kw - 1, c, ldc, NRW, k, pf,       \
                                        pf_lines, 1);                                \
        else                                                                         \
            bnn_xnor_full_tile_##SUFFIX(a, lda, p, kw, c, ldc, NRW, k, pf, pf_lines, 0);\
        return;                                                                      \
    }                                                                                \
    bnn_prefetch_lines(pf, pf_lines);                                                \
    for (int r = 0; r < mr; ++r) {                                                   \
        __m512i acc[NZ];                                                             \
        for (int z = 0; z < NZ; ++z) acc[z] = _mm512_setzero_si512();                \
        for (ptrdiff_t w = 0; w < kw; ++w) {                                         \
            const __m512i x = SET1(a[r * lda + w]);                                  \
            for (int z = 0; z < NZ; ++z)                                             \
                acc[z] = ADD(acc[z], POPCNT(_mm512_xor_si512(_mm512_loadu_si512(     \
                    (const void *)(p + w * NRW + z * LANES)), x)));                  \
        }                                                                            \
        __m512i counts[NZ];                                                          \
        const int n = bnn_row_counts_##SUFFIX(acc, counts);                          \
        bnn_store_row_avx512(counts, n, k, c + r * ldc, nr);                         \
    }                                                                                \
}                                                                                    \
static inline void bnn_xnor_tile_##SUFFIX(                                           \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,               \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k)                                \
{                                                                                    \
    bnn_xnor_tile_pf_##SUFFIX(a, lda, mr, p, kw, c, ldc, nr, k, NULL, 0, 0);          \
}

#define bnn_set1_u32(x) _mm512_set1_epi32((int)(x))
#define bnn_set1_u64(x) _mm512_set1_epi64((long long)(x))
/* u32 words have no half-word tail to skip (HALF_TAIL 0 compiles it out). */
BNN_DEFINE_XNOR_TILE_AVX512(uint32_t, u32, bnn_set1_u32, _mm512_popcnt_epi32, _mm512_add_epi32, 0)
BNN_DEFINE_XNOR_TILE_AVX512(uint64_t, u64, bnn_set1_u64, _mm512_popcnt_epi64, _mm512_add_epi64, 1)

#endif
