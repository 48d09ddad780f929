/* x86 kernels: xnor tiles for AVX2 or AVX-512 and the sign + bit-pack band
 * both use. Included by bnn_simd.h when bnn_config.h selected an x86 path.
 *
 * AVX2 has no vector popcount, so bytes are counted with two 16-entry
 * lookups (vpshufb) on the low and high nibbles (Mula's method). The A
 * operand arrives pre-split into nibbles (bnn_xnor_split_a, once per GEMM
 * call) and so does B (bnn_xnor_split_b, once per block of panels, shared by
 * all row tiles), so popcount(a ^ b) costs per 256 bits: 2 xor, 2 vpshufb,
 * 2 add, and the tile's loop nothing else but loads. Byte counters
 * absorb at most 8 per step, so they are widened every 31 steps. Hosts with
 * VPOPCNTDQ count in hardware instead (bnn_avx512.h). */
#ifndef BNN_X86_H
#define BNN_X86_H
#ifdef BNN_EMULATE_AVX512
/* Test build: the AVX-512 code compiled against SIMDe's portable versions of
 * the intrinsics, so its exactness is checked on hosts without AVX-512. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#if defined(BNN_PATH_AVX512)
#include "bnn_avx512.h"
#else
#define BNN_XNOR_A_SPLIT 1
/* Splitting each panel row per tile call cost 6 of the 4-row step's ~60
 * vector operations; split once per block the tile ran 1.04-1.10x as fast
 * (AMD Zen 4, AVX2 build: docs/measurements.md). */
#define BNN_XNOR_B_SPLIT 1
#define BNN_BYTE_STEPS 31

static inline __m256i bnn_nibble_lut(void)
{
    return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
}

/* Widen byte counts to 64-bit lanes (u64 words) or 32-bit lanes (u32 words). */
static inline __m256i bnn_widen_u64(__m256i bytes)
{
    return _mm256_sad_epu8(bytes, _mm256_setzero_si256());
}

static inline __m256i bnn_widen_u32(__m256i bytes)
{
    __m256i pairs = _mm256_maddubs_epi16(bytes, _mm256_set1_epi8(1));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* c[j] = k - 2 * count[j] for j < nr; full panels in vector stores, which
 * matters when K is a few words and the tile is mostly epilogue. */
static inline void bnn_store_lanes(__m256i lo8, __m256i hi8, int32_t k, int32_t *c, int nr)
{
    const __m256i kk = _mm256_set1_epi32(k);
    __m256i r0 = _mm256_sub_epi32(kk, _mm256_slli_epi32(lo8, 1));
    __m256i r1 = _mm256_sub_epi32(kk, _mm256_slli_epi32(hi8, 1));
    if (nr >= 16) {
        _mm256_storeu_si256((__m256i *)c, r0);
        _mm256_storeu_si256((__m256i *)(c + 8), r1);
        return;
    }
    int32_t tmp[16];
    _mm256_storeu_si256((__m256i *)tmp, r0);
    _mm256_storeu_si256((__m256i *)(tmp + 8), r1);
    for (int j = 0; j < nr; ++j) c[j] = tmp[j];
}

static inline void bnn_store_u32(__m256i t0, __m256i t1, int32_t k, int32_t *c, int nr)
{
    bnn_store_lanes(t0, t1, k, c, nr);
}

static inline void bnn_store_u64(__m256i t0, __m256i t1, int32_t k, int32_t *c, int nr)
{
    /* counts sit in the low halves of 64-bit lanes: gather them into 8 x i32 */
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    __m256i both = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(t0, even),
                                      _mm256_permutevar8x32_epi32(t1, even), 0xF0);
    if (nr >= 8) {
        const __m256i kk = _mm256_set1_epi32(k);
        _mm256_storeu_si256((__m256i *)c, _mm256_sub_epi32(kk, _mm256_slli_epi32(both, 1)));
        return;
    }
    bnn_store_lanes(both, _mm256_setzero_si256(), k, c, nr);
}

/* One row of the lookup tile for one K-word: per byte, c0 += popcount(a ^ b)
 * over the panel row's first register, c1 over its second, with A's word in
 * nibbles (al, ah; BC broadcasts them from memory) and the panel's registers
 * too (b0l, b0h, b1l, b1h). In asm for the register allocation, not for the
 * instructions: the tile's 8 byte counters, 4 B nibbles, table and mask plus
 * a row's 2 temporaries need all 16 ymm registers, and written in intrinsics
 * gcc kept 6 counters on the stack instead (a load, add and store each per
 * K-word). Here the temporaries are ymm14 and ymm15, declared clobbered, and
 * the rest is left to the compiler: the tile ran 1.09-1.11x as fast
 * (docs/measurements.md). AT&T syntax, gcc's and clang's default; x86-64
 * only, as ymm14/15 are (bnn_config.h). */
#define BNN_AVX2_NIBBLE_ROW(BC, C0, C1, LUT, B0L, B0H, B1L, B1H, AL, AH)             \
    __asm__(BC " %[al], %%ymm14\n\t"                                                   \
            "vpxor %%ymm14, %[b0l], %%ymm15\n\t"                                       \
            "vpshufb %%ymm15, %[lut], %%ymm15\n\t"                                     \
            "vpaddb %%ymm15, %[c0], %[c0]\n\t"                                         \
            "vpxor %%ymm14, %[b1l], %%ymm14\n\t"                                       \
            "vpshufb %%ymm14, %[lut], %%ymm14\n\t"                                     \
            "vpaddb %%ymm14, %[c1], %[c1]\n\t"                                         \
            BC " %[ah], %%ymm14\n\t"                                                   \
            "vpxor %%ymm14, %[b0h], %%ymm15\n\t"                                       \
            "vpshufb %%ymm15, %[lut], %%ymm15\n\t"                                     \
            "vpaddb %%ymm15, %[c0], %[c0]\n\t"                                         \
            "vpxor %%ymm14, %[b1h], %%ymm14\n\t"                                       \
            "vpshufb %%ymm14, %[lut], %%ymm14\n\t"                                     \
            "vpaddb %%ymm14, %[c1], %[c1]"                                              \
            : [c0] "+x"(C0), [c1] "+x"(C1)                                           \
            : [lut] "x"(LUT), [b0l] "x"(B0L), [b0h] "x"(B0H), [b1l] "x"(B1L),        \
              [b1h] "x"(B1H), [al] "m"(AL), [ah] "m"(AH)                             \
            : "xmm14", "xmm15")

/* Scalar POPCNT rows of the AVX2 tile for K-word w (see below). */
#define BNN_AVX2_POPCNT_ROWS_STEP(WT, SROWS, VROWS, POPCNT, a, lda, kw, w, pw, s)    \
    for (int r = 0; r < (SROWS); ++r) {                                              \
        const WT x = a[(VROWS + r) * lda + w] | (WT)(a[(VROWS + r) * lda + kw + w] << 4); \
        for (int j = 0; j < NRW; ++j) {                                              \
            const WT *b = pw + (j / LANES) * 2 * LANES + j % LANES;                  \
            s[r][j] += (uint64_t)POPCNT(x ^ (b[0] | (WT)(b[LANES] << 4)));           \
        }                                                                            \
    }

/* The AVX2 tile: BNN_XNOR_MR rows of A against one split panel (four
 * registers of nibbles per K-word: low and high of each 32-byte half),
 * counted by the nibble lookup on the vector ports; the last SROWS rows may
 * be counted by scalar POPCNT instead, on the integer ALUs, from raw words
 * (both operands' halves rejoined: lo | hi << 4). Only u64 tiles offer that
 * (POPCNT on a u32 word counts half as much). With `half` (u64 only: a
 * half-word tail in the split layout of bnn_xnor_split_b) the last word's
 * high-nibble registers, all padding, are skipped. */
#define BNN_DEFINE_XNOR_TILE_AVX2(WT, SUFFIX, BCAST, SET1, ADDW, SROWS, POPCNT)     \
static inline __attribute__((always_inline)) void bnn_xnor_tile_half_##SUFFIX(       \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,               \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k, int half)                      \
{                                                                                    \
    enum { NRW = BNN_PANEL_BITS / (8 * (int)sizeof(WT)), LANES = 32 / sizeof(WT),    \
           VROWS = BNN_XNOR_MR - (SROWS), SR = (SROWS) > 0 ? (SROWS) : 1 };          \
    _Static_assert(NRW == 2 * LANES, "a panel row must be two AVX2 registers");      \
    if (mr != BNN_XNOR_MR) {                                                         \
        bnn_xnor_tile_c_##SUFFIX##_split(a, lda, mr, p, kw, c, ldc, nr, k);          \
        return;                                                                      \
    }                                                                                \
    const __m256i lut = bnn_nibble_lut();                                            \
    __m256i tot[BNN_XNOR_MR][2];  /* zeroed for the compiler; read when w0 > 0 */    \
    for (int r = 0; r < BNN_XNOR_MR; ++r)                                            \
        tot[r][0] = tot[r][1] = _mm256_setzero_si256();                              \
    uint64_t s[SR][NRW] = {{0}};                                                     \
    for (ptrdiff_t w0 = 0; w0 < kw; w0 += BNN_BYTE_STEPS) {                          \
        const int last = kw - w0 <= BNN_BYTE_STEPS;                                  \
        const ptrdiff_t w1 = last ? kw : w0 + BNN_BYTE_STEPS;                        \
        /* words [w0, wfull) whole; the half word, if any, is w1 - 1 */              \
        const ptrdiff_t wfull = half && last ? w1 - 1 : w1;                          \
        __m256i acc[BNN_XNOR_MR][2];                                                 \
        for (int r = 0; r < BNN_XNOR_MR; ++r)                                        \
            acc[r][0] = acc[r][1] = _mm256_setzero_si256();                          \
        for (ptrdiff_t w = w0; w < wfull; ++w) {                                     \
            const WT *pw = p + w * 2 * NRW;                                          \
            __m256i b0l = _mm256_loadu_si256((const __m256i *)pw);                   \
            __m256i b0h = _mm256_loadu_si256((const __m256i *)(pw + LANES));         \
            __m256i b1l = _mm256_loadu_si256((const __m256i *)(pw + 2 * LANES));     \
            __m256i b1h = _mm256_loadu_si256((const __m256i *)(pw + 3 * LANES));     \
            for (int r = 0; r < VROWS; ++r)                                          \
                BNN_AVX2_NIBBLE_ROW(BCAST, acc[r][0], acc[r][1], lut, b0l, b0h, b1l, b1h, \
                                    a[r * lda + w], a[r * lda + kw + w]);            \
            BNN_AVX2_POPCNT_ROWS_STEP(WT, SROWS, VROWS, POPCNT, a, lda, kw, w, pw, s) \
        }                                                                            \
        if (wfull < w1) {                                                            \
            const WT *pw = p + wfull * 2 * NRW;                                      \
            const __m256i b0l = _mm256_loadu_si256((const __m256i *)pw);             \
            const __m256i b1l = _mm256_loadu_si256((const __m256i *)(pw + 2 * LANES)); \
            for (int r = 0; r < VROWS; ++r) {                                        \
                const __m256i x = SET1(a[r * lda + wfull]);                          \
                acc[r][0] = _mm256_add_epi8(acc[r][0],                               \
                    _mm256_shuffle_epi8(lut, _mm256_xor_si256(x, b0l)));             \
                acc[r][1] = _mm256_add_epi8(acc[r][1],                               \
                    _mm256_shuffle_epi8(lut, _mm256_xor_si256(x, b1l)));             \
            }                                                                        \
            BNN_AVX2_POPCNT_ROWS_STEP(WT, SROWS, VROWS, POPCNT, a, lda, kw, wfull, pw, s) \
        }                                                                            \
        /* Byte counts widened once per block. The last block's go straight to  \
         * the stores, unrolled apart for a full panel: kept in tot, or the     \
         * stores in one loop with the partial-panel path, they went through    \
         * the stack, which cost 10 % at K = 13 words (docs/measurements.md). */ \
        __m256i t[BNN_XNOR_MR][2];                                                   \
        for (int r = 0; r < VROWS; ++r)                                              \
            for (int h = 0; h < 2; ++h) {                                            \
                t[r][h] = bnn_widen_##SUFFIX(acc[r][h]);                             \
                if (w0) t[r][h] = ADDW(t[r][h], tot[r][h]);                          \
            }                                                                        \
        if (!last) {                                                                 \
            for (int r = 0; r < VROWS; ++r)                                          \
                tot[r][0] = t[r][0], tot[r][1] = t[r][1];                            \
        } else if (nr == NRW) {                                                      \
            for (int r = 0; r < VROWS; ++r)                                          \
                bnn_store_##SUFFIX(t[r][0], t[r][1], k, c + r * ldc, NRW);           \
        } else {                                                                     \
            for (int r = 0; r < VROWS; ++r)                                          \
                bnn_store_##SUFFIX(t[r][0], t[r][1], k, c + r * ldc, nr);            \
        }                                                                            \
    }                                                                                \
    for (int r = 0; r < (SROWS); ++r)                                                \
        for (int j = 0; j < nr; ++j)                                                 \
            c[(VROWS + r) * ldc + j] = k - 2 * (int32_t)s[r][j];                     \
}                                                                                    \
static inline void bnn_xnor_tile_##SUFFIX(                                           \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,               \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k)                                \
{                                                                                    \
    bnn_xnor_tile_half_##SUFFIX(a, lda, mr, p, kw, c, ldc, nr, k, 0);                \
}

/* Row tails (mr < BNN_XNOR_MR) use plain C on the split operands: popcounts
 * of the two nibble halves add up to the popcount of the word. */
#define BNN_DEFINE_XNOR_TILE_SPLIT_C(WT, SUFFIX, POPCNT)                             \
static inline void bnn_xnor_tile_c_##SUFFIX##_split(                                 \
        const WT *a, ptrdiff_t lda, int mr, const WT *p, ptrdiff_t kw,               \
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k)                                \
{                                                                                    \
    enum { NRW = BNN_PANEL_BITS / (8 * (int)sizeof(WT)), LANES = 32 / sizeof(WT) };  \
    for (int r = 0; r < mr; ++r)                                                     \
        for (int j = 0; j < nr; ++j) {                                               \
            int32_t n = 0;                                                           \
            for (ptrdiff_t w = 0; w < kw; ++w) {                                     \
                const WT *b = p + w * 2 * NRW + (j / LANES) * 2 * LANES + j % LANES; \
                n += POPCNT(a[r * lda + w] ^ b[0]);                                  \
                n += POPCNT(a[r * lda + kw + w] ^ b[LANES]);                         \
            }                                                                        \
            c[r * ldc + j] = k - 2 * n;                                              \
        }                                                                            \
}

BNN_DEFINE_XNOR_TILE_SPLIT_C(uint32_t, u32, BNN_POPCNT32)
BNN_DEFINE_XNOR_TILE_SPLIT_C(uint64_t, u64, BNN_POPCNT64)
/* Rows of the u64 tile counted by scalar POPCNT (0 .. BNN_XNOR_MR; a build
 * knob, BNNBENCH_CFLAGS=-DBNN_AVX2_POPCNT_ROWS=1). 0 (all by lookup) is the
 * default: 1 row ran at 0.93-0.99 of 0 on an Intel core (POPCNT shares a
 * port with the shuffles) and at 0.85-0.87 on an AMD Zen 4 (four integer
 * ALUs, which llvm-mca's Zen 3 model expected to gain 12 %), and since B
 * comes split, such a row also rejoins its nibbles (0.64-0.66 there).
 * `make tile-bench` times the variants on another core (docs/measurements.md). */
#ifndef BNN_AVX2_POPCNT_ROWS
#define BNN_AVX2_POPCNT_ROWS 0
#endif
_Static_assert(BNN_AVX2_POPCNT_ROWS >= 0 && BNN_AVX2_POPCNT_ROWS <= BNN_XNOR_MR,
               "BNN_AVX2_POPCNT_ROWS counts rows of the tile");
#define BNN_SET1_U32(x) _mm256_set1_epi32((int)(x))
#define BNN_SET1_U64(x) _mm256_set1_epi64x((long long)(x))
BNN_DEFINE_XNOR_TILE_AVX2(uint32_t, u32, "vpbroadcastd", BNN_SET1_U32, _mm256_add_epi32, 0,
                          BNN_POPCNT32)
BNN_DEFINE_XNOR_TILE_AVX2(uint64_t, u64, "vpbroadcastq", BNN_SET1_U64, _mm256_add_epi64,
                          BNN_AVX2_POPCNT_ROWS, BNN_POPCNT64)

/* The tiles with a prefetch (contract: bnn_simd.h), in one burst before the
 * tile; the u64 tile takes the half-word tail (u32 splits have no such
 * layout, and their tail_half is never set). */
#define BNN_HAVE_XNOR_TILE_PF 1
BNN_DEFINE_XNOR_TILE_PF(uint32_t, u32, __attribute__((always_inline)))

static inline __attribute__((always_inline)) void bnn_xnor_tile_pf_u64(
        const uint64_t *a, ptrdiff_t lda, int mr, const uint64_t *p, ptrdiff_t kw,
        int32_t *c, ptrdiff_t ldc, int nr, int32_t k,
        const char *pf, ptrdiff_t pf_lines, int tail_half)
{
    bnn_prefetch_lines(pf, pf_lines);
    bnn_xnor_tile_half_u64(a, lda, mr, p, kw, c, ldc, nr, k, tail_half != 0);
}
#endif  /* BNN_PATH_AVX512 */

/* Sign + bit-pack of one band of krows <= W rows of x over `npanels` whole
 * panels, into out[p * pstride + j] (the band's word of column j of panel
 * p). Rows are read BNN_PACK_ROWS at a time in runs of BNN_PACK_CHUNK
 * columns, so memory streams sequentially; each row's sign bits go to a
 * buffer of masks (row k, column group g), which is then transposed into
 * one word per column. */
#define BNN_HAVE_PACK_BAND 1
#ifndef BNN_PACK_CHUNK
#define BNN_PACK_CHUNK 8192  /* columns per run: 64 KiB of row masks, L2-resident */
#endif
/* Rows read together: the masks are larger than L1, so one row at a time
 * would pull a line of them back per byte stored; four rows fill four bytes
 * per line visit and still leave few enough streams for the prefetchers
 * (four was the fastest of 1, 2, 4 and 8 on an AVX2 host and near a plain
 * read; the AVX-512 form does not mind: docs/measurements.md). */
#define BNN_PACK_ROWS 4

/* The band packer, shared by the SIMD forms below: SIGN(p) gives the sign
 * bits of GROUP floats at p as a MASK_T (bit j: column j); the masks of
 * BNN_PACK_ROWS rows are stored with one write. TRANSPOSE(m, dst) turns a
 * column group's BITS masks (row k in m[k]) into its GROUP words. */
#define BNN_DEFINE_PACK_BAND(WT, SUFFIX, BITS, MASK_T, GROUP, SIGN, TRANSPOSE)       \
static inline void bnn_pack_band_##SUFFIX(const float *x, ptrdiff_t ldx,             \
        ptrdiff_t krows, ptrdiff_t npanels, WT *out, ptrdiff_t pstride)              \
{                                                                                    \
    enum { NRW = BNN_PANEL_BITS / BITS, GROUPS = BNN_PACK_CHUNK / GROUP };           \
    _Static_assert(NRW % GROUP == 0, "panels must hold whole column groups");        \
    MASK_T masks[GROUPS][BITS] __attribute__((aligned(64)));  /* <= 64 KiB of stack */ \
    const ptrdiff_t ncols = npanels * NRW;                                           \
    for (ptrdiff_t c0 = 0; c0 < ncols; c0 += BNN_PACK_CHUNK) {                       \
        const int ng = (int)((ncols - c0 < BNN_PACK_CHUNK ? ncols - c0               \
                                                         : BNN_PACK_CHUNK) / GROUP); \
        ptrdiff_t k = 0;                                                             \
        for (; k + BNN_PACK_ROWS <= krows; k += BNN_PACK_ROWS) {                     \
            const float *row = x + k * ldx + c0;                                     \
            for (int g = 0; g < ng; ++g) {                                           \
                MASK_T b[BNN_PACK_ROWS];                                             \
                for (int r = 0; r < BNN_PACK_ROWS; ++r)                              \
                    b[r] = SIGN(row + r * ldx + GROUP * g);                          \
                memcpy(&masks[g][k], b, sizeof(b));                                  \
            }                                                                        \
        }                                                                            \
        for (; k < krows; ++k)                                                       \
            for (int g = 0; g < ng; ++g)                                             \
                masks[g][k] = SIGN(x + k * ldx + c0 + GROUP * g);                    \
        for (int g = 0; g < ng; ++g) {                                               \
            for (ptrdiff_t r = krows; r < BITS; ++r) masks[g][r] = 0;                \
            const ptrdiff_t col = c0 + GROUP * g;                                    \
            TRANSPOSE(masks[g], out + (col / NRW) * pstride + col % NRW);            \
        }                                                                            \
    }                                                                                \
}

#if defined(BNN_PATH_AVX512) && (defined(__AVX512BW__) || defined(BNN_EMULATE_AVX512))
/* AVX-512 (needs AVX512BW, which every VPOPCNTDQ CPU but Knights Mill has):
 * one compare gives the sign bits of 16 columns of a row as a 16-bit mask.
 * The transpose tests one bit position in all W rows' masks at once
 * (vptestmw), which yields column j's packed word directly. Per 16 floats
 * that is one load-and-compare and one mask store, half the instructions
 * of the AVX2 form. It measured closer to a plain read of the same rows
 * than the AVX2 form, from memory and from cache (docs/measurements.md). */
static inline uint16_t bnn_sign_mask16(const float *x)
{
    return (uint16_t)_mm512_cmp_ps_mask(_mm512_loadu_ps(x), _mm512_setzero_ps(), _CMP_GE_OQ);
}

#define BNN_DEFINE_PACK_TRANSPOSE_AVX512(WT, SUFFIX, BITS)                           \
static inline void bnn_pack_transpose_##SUFFIX(const uint16_t *m, WT *dst)           \
{                                                                                    \
    enum { NV = BITS / 32 };  /* zmm registers of masks per column group */          \
    __m512i v[NV];                                                                   \
    for (int i = 0; i < NV; ++i) v[i] = _mm512_load_si512((const void *)(m + 32 * i)); \
    for (int j = 0; j < 16; ++j) {                                                   \
        const __m512i bit = _mm512_set1_epi16((short)(1u << j));                     \
        uint64_t word = 0;                                                           \
        for (int i = 0; i < NV; ++i)                                                 \
            word |= (uint64_t)_mm512_test_epi16_mask(v[i], bit) << (32 * i);         \
        dst[j] = (WT)word;                                                           \
    }                                                                                \
}
BNN_DEFINE_PACK_TRANSPOSE_AVX512(uint32_t, u32, 32)
BNN_DEFINE_PACK_TRANSPOSE_AVX512(uint64_t, u64, 64)
BNN_DEFINE_PACK_BAND(uint32_t, u32, 32, uint16_t, 16, bnn_sign_mask16, bnn_pack_transpose_u32)
BNN_DEFINE_PACK_BAND(uint64_t, u64, 64, uint16_t, 16, bnn_sign_mask16, bnn_pack_transpose_u64)
/* Signs of consecutive floats (a pixel's channels) straight into words. */
#define BNN_SIGN_GROUP 16
#define bnn_sign_group(x) bnn_sign_mask16(x)

#else
/* AVX2: per 8 floats, one compare + movemask gives a byte whose bit j is
 * column j; the bytes are transposed with movemask_epi8, which reads bit 7
 * of 32 bytes at once, doubling the bytes between reads to bring the next
 * column to bit 7. */
static inline uint8_t bnn_sign_byte(const float *x)
{
    return (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x), _mm256_setzero_ps(),
                                                     _CMP_GE_OQ));
}

#define BNN_DEFINE_PACK_TRANSPOSE_AVX2(WT, SUFFIX, BITS)                             \
static inline void bnn_pack_transpose_##SUFFIX(const uint8_t *m, WT *dst)            \
{                                                                                    \
    __m256i v0 = _mm256_load_si256((const __m256i *)m);                              \
    __m256i v1 = BITS > 32 ? _mm256_load_si256((const __m256i *)(m + 32))            \
                           : _mm256_setzero_si256();                                 \
    for (int j = 7; j >= 0; --j) {                                                   \
        uint64_t lo = (uint32_t)_mm256_movemask_epi8(v0);                            \
        uint64_t hi = BITS > 32 ? (uint32_t)_mm256_movemask_epi8(v1) : 0;            \
        dst[j] = (WT)(lo | (hi << 32));                                              \
        v0 = _mm256_add_epi8(v0, v0);                                                \
        v1 = _mm256_add_epi8(v1, v1);                                                \
    }                                                                                \
}
BNN_DEFINE_PACK_TRANSPOSE_AVX2(uint32_t, u32, 32)
BNN_DEFINE_PACK_TRANSPOSE_AVX2(uint64_t, u64, 64)
BNN_DEFINE_PACK_BAND(uint32_t, u32, 32, uint8_t, 8, bnn_sign_byte, bnn_pack_transpose_u32)
BNN_DEFINE_PACK_BAND(uint64_t, u64, 64, uint8_t, 8, bnn_sign_byte, bnn_pack_transpose_u64)
#define BNN_SIGN_GROUP 8
#define bnn_sign_group(x) bnn_sign_byte(x)
/* 32 floats' signs: four compares packed down to bytes (packs keep the 0 /
 * -1 masks), the 128-bit lanes put back in order, one vpmovmskb. Fewer
 * instructions than four bnn_sign_byte, whose shifts and ors gcc's own
 * vectorization of a plain loop beat for u32 words (docs/kernels.md). */
static inline uint32_t bnn_sign_mask32(const float *x)
{
    const __m256 z = _mm256_setzero_ps();
    __m256i m[4];
    for (int i = 0; i < 4; ++i)
        m[i] = _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(x + 8 * i), z, _CMP_GE_OQ));
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(m[0], m[1]),
                                             _mm256_packs_epi32(m[2], m[3]));
    return (uint32_t)_mm256_movemask_epi8(
        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}
#define BNN_SIGN_GROUP_WIDE 32
#define bnn_sign_group_wide(x) bnn_sign_mask32(x)
#endif

#endif
