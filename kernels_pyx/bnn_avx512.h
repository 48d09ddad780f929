/* AVX-512 xnor tiles, for hosts with VPOPCNTDQ (Ice Lake and later Xeons,
 * Zen 4). Included by bnn_x86.h when bnn_config.h selected BNN_PATH_AVX512.
 *
 * A panel row is one zmm register: 8 columns of u64 words or 16 of u32.
 * vpopcntq / vpopcntd count every lane at once, so popcount(a ^ b) over 512
 * bit-MACs is one xor (A's word broadcast straight from memory), one
 * popcount and one add: the same three instructions as the probe's loop,
 * which makes that loop the right ceiling for this tile. Counts accumulate in
 * lanes of the word's own width, so no widening step is needed; A is used as
 * packed (no nibble split). */
#ifndef BNN_AVX512_H
#define BNN_AVX512_H

/* c[j] = k - 2 * count[j] for j < nr. A partial panel goes through a small
 * buffer rather than a masked store: SIMDe 0.8 emulates _mm512_mask_storeu_*
 * as a full store of zeros in the masked lanes, which would clobber the next
 * row of C in the emulated test build. */
static inline void bnn_store_avx512_u64(__m512i count, int32_t k, int32_t *c, int nr)
{
    __m256i r = _mm256_sub_epi32(_mm256_set1_epi32(k),
                                 _mm256_slli_epi32(_mm512_cvtepi64_epi32(count), 1));
    if (nr >= 8) {
        _mm256_storeu_si256((__m256i *)c, r);
        return;
    }
    int32_t tmp[8];
    _mm256_storeu_si256((__m256i *)tmp, r);
    for (int j = 0; j < nr; ++j) c[j] = tmp[j];
}

static inline void bnn_store_avx512_u32(__m512i count, int32_t k, int32_t *c, int nr)
{
    __m512i r = _mm512_sub_epi32(_mm512_set1_epi32(k), _mm512_slli_epi32(count, 1));
    if (nr >= 16) {
        _mm512_storeu_si512((void *)c, r);
        return;
    }
    int32_t tmp[16];
    _mm512_storeu_si512((void *)tmp, r);
    for (int j = 0; j < nr; ++j) c[j] = tmp[j];
}

/* Full tiles hold BNN_XNOR_MR accumulators, one per row, so each panel row
 * loaded is used BNN_XNOR_MR times; a row tail (mr < BNN_XNOR_MR, only when
 * M is not a multiple of it) runs the same loop one row at a time. */
#define BNN_DEFINE_XNOR_TILE_AVX512(WT, SUFFIX, SET1, POPCNT, ADD)                   \
static inline void bnn_xnor_tile_##SUFFIX(                                           \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,               \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k)                                \
{                                                                                    \
    enum { NRW = BNN_PANEL_BITS / (8 * (int)sizeof(WT)) };                           \
    _Static_assert(NRW * sizeof(WT) == 64, "a panel row must be one zmm register");  \
    if (mr == BNN_XNOR_MR) {                                                         \
        __m512i acc[BNN_XNOR_MR];                                                    \
        for (int r = 0; r < BNN_XNOR_MR; ++r) acc[r] = _mm512_setzero_si512();       \
        for (ptrdiff_t w = 0; w < kw; ++w) {                                         \
            const __m512i b = _mm512_loadu_si512((const void *)(p + w * NRW));       \
            for (int r = 0; r < BNN_XNOR_MR; ++r)                                    \
                acc[r] = ADD(acc[r], POPCNT(_mm512_xor_si512(b, SET1(a[r * lda + w])))); \
        }                                                                            \
        for (int r = 0; r < BNN_XNOR_MR; ++r)                                        \
            bnn_store_avx512_##SUFFIX(acc[r], k, c + r * ldc, nr);                   \
        return;                                                                      \
    }                                                                                \
    for (int r = 0; r < mr; ++r) {                                                   \
        __m512i acc = _mm512_setzero_si512();                                        \
        for (ptrdiff_t w = 0; w < kw; ++w)                                           \
            acc = ADD(acc, POPCNT(_mm512_xor_si512(                                  \
                _mm512_loadu_si512((const void *)(p + w * NRW)), SET1(a[r * lda + w])))); \
        bnn_store_avx512_##SUFFIX(acc, k, c + r * ldc, nr);                          \
    }                                                                                \
}

#define bnn_set1_u32(x) _mm512_set1_epi32((int)(x))
#define bnn_set1_u64(x) _mm512_set1_epi64((long long)(x))
BNN_DEFINE_XNOR_TILE_AVX512(uint32_t, u32, bnn_set1_u32, _mm512_popcnt_epi32, _mm512_add_epi32)
BNN_DEFINE_XNOR_TILE_AVX512(uint64_t, u64, bnn_set1_u64, _mm512_popcnt_epi64, _mm512_add_epi64)

#endif
