/* Roofline probe loops: the practical peaks of this CPU for what the
 * kernels do, built with the kernels' own flags and code path.
 *
 * popcount: xor + popcount + accumulate over L1-resident operands with the
 *   best popcount this build has (AVX-512 vpopcntq; on AVX2 several loops,
 *   the nibble lookup on operands already split into nibbles, scalar POPCNT
 *   and mixes of both, of which the probe takes the fastest; NEON or scalar
 *   popcount otherwise). bnn_probe_popcount_method(m, ...) runs method m of
 *   bnn_probe_method_names (one entry outside AVX2). Returns the bit-MACs
 *   done.
 * fma: independent float32 multiply-add chains, enough of them to cover
 *   the FMA latency, in the float tile's vectors (bnn_simd.h): zmm on
 *   AVX-512, where Intel cores with two 512-bit FMA units do twice the ymm
 *   rate (Zen 4 the same). Returns the multiply-adds done.
 * read: one streaming pass over a buffer far larger than the caches, its
 *   words folded by xor (which the compiler vectorises): what a kernel that
 *   only reads, such as sign + bit-pack, can reach.
 * Each returns a checksum through *sink so the compiler cannot drop it. */
#ifndef BNN_PROBE_H
#define BNN_PROBE_H
#include <stdint.h>
#include <string.h>
#include "bnn_simd.h"

#define BNN_PROBE_WORDS 512   /* 4 KiB of operand words: stays in L1 */

#if defined(BNN_PATH_AVX512)
#ifdef BNN_EMULATE_AVX512
#define BNN_PROBE_METHOD "avx512 vpopcntq, emulated by SIMDe"
#else
#define BNN_PROBE_METHOD "avx512 vpopcntq"
#endif
/* Shaped like the xnor tile's steady state (bnn_avx512.h): two panel
 * registers held, one word of A broadcast per row, 2 x ROWS independent
 * accumulators. A loop of one load + xor + popcount + add per register and
 * four accumulators left the vector ports unevenly used and ran below the
 * tile itself: no ceiling (figures: docs/measurements.md). */
static inline int64_t bnn_probe_popcount(int64_t rounds, const uint64_t *x, uint64_t *sink)
{
    enum { ROWS = 8 };
    __m512i acc[ROWS][2];
    __m512i b0 = _mm512_loadu_si512((const void *)x);
    __m512i b1 = _mm512_loadu_si512((const void *)(x + 8));
    for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (int64_t n = 0; n < rounds; ++n) {
        for (int i = 0; i < BNN_PROBE_WORDS; i += ROWS) {
            BNN_IN_REGISTER(b0);
            BNN_IN_REGISTER(b1);
            for (int r = 0; r < ROWS; ++r) {
                const __m512i a = _mm512_set1_epi64((long long)x[i + r]);
                acc[r][0] = _mm512_add_epi64(acc[r][0], _mm512_popcnt_epi64(_mm512_xor_si512(b0, a)));
                acc[r][1] = _mm512_add_epi64(acc[r][1], _mm512_popcnt_epi64(_mm512_xor_si512(b1, a)));
            }
        }
    }
    __m512i total = _mm512_setzero_si512();
    for (int r = 0; r < ROWS; ++r)
        total = _mm512_add_epi64(total, _mm512_add_epi64(acc[r][0], acc[r][1]));
    uint64_t t[8];
    _mm512_storeu_si512((void *)t, total);
    *sink = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
    /* per A word: two registers of 8 u64 words */
    return rounds * BNN_PROBE_WORDS * 16 * 64;
}
/* One method on this path: the table the probe reads has one entry. */
#define BNN_PROBE_N_METHODS 1
static const char *const bnn_probe_method_names[BNN_PROBE_N_METHODS] = {"vpopcntq"};
static const char *const bnn_probe_method_texts[BNN_PROBE_N_METHODS] = {BNN_PROBE_METHOD};
static inline int64_t bnn_probe_popcount_method(int method, int64_t rounds, const uint64_t *x,
                                                uint64_t *sink)
{
    (void)method;
    return bnn_probe_popcount(rounds, x, sink);
}
#elif defined(BNN_PATH_AVX2)
/* AVX2 has no vector popcount, and which of its ways to count is fastest
 * depends on the core: the nibble lookup (vpshufb) runs on the vector
 * ports, scalar POPCNT on the integer ALUs (four a cycle on AMD Zen 3, one
 * port on Intel cores, shared there with vector work). So the probe times
 * each loop below and takes the best as the ceiling (measure/probe.py); a
 * kernel that uses a slower method shows as below it. All hold several
 * independent accumulators over L1-resident operands and return the bit-MACs
 * done; *sink is the sum of all their popcounts, so it depends on the
 * operands and the compiler cannot drop the work. */
#define BNN_PROBE_METHOD "avx2 nibble lookup (vpshufb)"
#define BNN_PROBE_N_METHODS 4
static const char *const bnn_probe_method_names[BNN_PROBE_N_METHODS] = {
    "nibble", "popcnt", "mix4", "mix8"};  /* mixN: N scalar words per 16 vector words */
static const char *const bnn_probe_method_texts[BNN_PROBE_N_METHODS] = {
    "avx2 nibble lookup (vpshufb)",
    "scalar popcnt, 8 accumulators",
    "avx2 nibble lookup + scalar popcnt on 1/5 of the words",
    "avx2 nibble lookup + scalar popcnt on 1/3 of the words"};

/* Makes the compiler forget what it knows about p (so a round's loads and
 * popcounts cannot be hoisted out of the rounds loop). */
#define BNN_PROBE_OPAQUE(p) __asm__("" : "+r"(p))

/* The nibble lookup, shaped like the AVX2 xnor tile's steady state
 * (bnn_x86.h): per step its 4 rows, each one A word (low and high nibbles,
 * broadcast from L1) against one panel row (two registers, nibble-split and
 * held in registers) into 2 byte counters, in the tile's own asm row
 * (BNN_AVX2_NIBBLE_ROW); per 256 bit-MACs 2 xor, 2 vpshufb, 2 add. It leaves
 * out only what the tile adds around that: loading and splitting the panel
 * row each K-word, and the tile's epilogue, so the tile stays a little below
 * it. Byte counters are widened every BNN_BYTE_STEPS steps. SCALAR words per
 * step (0, 8 or 16) also go through scalar popcnt, interleaved, so both port
 * groups work at once: per step the vectors do 32 words, the ALUs SCALAR (a
 * raw A word against B words read from L1, 8 accumulators). */
static inline __attribute__((always_inline)) int64_t bnn_probe_nibble_mix(int64_t rounds, const uint64_t *x, uint64_t *sink,
                                           const int SCALAR)
{
    enum { W = BNN_PROBE_WORDS, ROWS = 4, STEPS = BNN_PROBE_WORDS / 2 / ROWS };
    const __m256i lut = bnn_nibble_lut(), low = _mm256_set1_epi8(0x0f);
    uint64_t split[BNN_PROBE_WORDS];
    for (int i = 0; i < W; ++i) split[i] = x[i] & 0x0f0f0f0f0f0f0f0fULL;
    const uint64_t *lo = split, *hi = split + W / 2;
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)x);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(x + 4));
    const __m256i b0l = _mm256_and_si256(b0, low), b0h = _mm256_and_si256(_mm256_srli_epi16(b0, 4), low);
    const __m256i b1l = _mm256_and_si256(b1, low), b1h = _mm256_and_si256(_mm256_srli_epi16(b1, 4), low);
    __m256i tot = _mm256_setzero_si256();
    uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t r = 0; r < rounds; ++r) {
        const uint64_t *xs = x;
        BNN_PROBE_OPAQUE(xs);
        for (int blk = 0; blk < STEPS; blk += BNN_BYTE_STEPS) {
            int end = blk + BNN_BYTE_STEPS < STEPS ? blk + BNN_BYTE_STEPS : STEPS;
            __m256i acc[ROWS][2];
            for (int u = 0; u < ROWS; ++u) acc[u][0] = acc[u][1] = _mm256_setzero_si256();
            for (int i = blk; i < end; ++i) {
                for (int u = 0; u < ROWS; ++u)
                    BNN_AVX2_NIBBLE_ROW("vpbroadcastq", acc[u][0], acc[u][1], lut, b0l, b0h, b1l,
                                        b1h, lo[ROWS * i + u], hi[ROWS * i + u]);
                if (SCALAR) {
                    const uint64_t a = xs[W - 1 - i], *b = xs + ((i * SCALAR) & (W - 1));
                    for (int k = 0; k < SCALAR; ++k)
                        s[k & 7] += (uint64_t)__builtin_popcountll(a ^ b[k]);
                }
            }
            for (int u = 0; u < ROWS; ++u)
                tot = _mm256_add_epi64(tot, _mm256_add_epi64(bnn_widen_u64(acc[u][0]),
                                                             bnn_widen_u64(acc[u][1])));
        }
    }
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)t, tot);
    *sink = t[0] + t[1] + t[2] + t[3] + s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    /* per step: 4 rows x 2 vectors x 4 lanes of 64-bit words, plus SCALAR words */
    return rounds * (int64_t)STEPS * (ROWS * 8 + SCALAR) * 64;
}

/* Scalar POPCNT on 64-bit words, shaped like a scalar tile's steady state:
 * one word of A held per step against 8 words of B read from L1, xor +
 * popcnt + add into 8 independent accumulators (popcnt has a latency of 3
 * cycles on Intel cores, 1 on Zen 3, which issues 4 a cycle). */
static inline int64_t bnn_probe_popcnt(int64_t rounds, const uint64_t *x, uint64_t *sink)
{
    enum { W = BNN_PROBE_WORDS };
    uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t r = 0; r < rounds; ++r) {
        const uint64_t *xs = x;
        BNN_PROBE_OPAQUE(xs);
        for (int i = 0; i < W; i += 8) {
            const uint64_t a = xs[W - 1 - i / 8];
            for (int k = 0; k < 8; ++k) s[k] += (uint64_t)__builtin_popcountll(a ^ xs[i + k]);
        }
    }
    *sink = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    return rounds * (int64_t)W * 64;
}

static inline int64_t bnn_probe_popcount_method(int method, int64_t rounds, const uint64_t *x,
                                                uint64_t *sink)
{
    switch (method) {
    case 1: return bnn_probe_popcnt(rounds, x, sink);
    case 2: return bnn_probe_nibble_mix(rounds, x, sink, 8);
    case 3: return bnn_probe_nibble_mix(rounds, x, sink, 16);
    default: return bnn_probe_nibble_mix(rounds, x, sink, 0);
    }
}
#else
#define BNN_PROBE_METHOD "scalar popcount"
static inline int64_t bnn_probe_popcount(int64_t rounds, const uint64_t *x, uint64_t *sink)
{
    uint64_t acc[4] = {0, 0, 0, 0}, a = x[0] ^ 0x5555555555555555ULL;
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < BNN_PROBE_WORDS; i += 4)
            for (int u = 0; u < 4; ++u) acc[u] += (uint64_t)__builtin_popcountll(a ^ x[i + u]);
    *sink = acc[0] + acc[1] + acc[2] + acc[3];
    return rounds * BNN_PROBE_WORDS * 64;
}
#define BNN_PROBE_N_METHODS 1
static const char *const bnn_probe_method_names[BNN_PROBE_N_METHODS] = {"popcount"};
static const char *const bnn_probe_method_texts[BNN_PROBE_N_METHODS] = {BNN_PROBE_METHOD};
static inline int64_t bnn_probe_popcount_method(int method, int64_t rounds, const uint64_t *x,
                                                uint64_t *sink)
{
    (void)method;
    return bnn_probe_popcount(rounds, x, sink);
}
#endif

/* Name (the probe result's key) and description of popcount method m. */
static inline const char *bnn_probe_method_name(int m)
{
    return m >= 0 && m < BNN_PROBE_N_METHODS ? bnn_probe_method_names[m] : "";
}

static inline const char *bnn_probe_method_text(int m)
{
    return m >= 0 && m < BNN_PROBE_N_METHODS ? bnn_probe_method_texts[m] : "";
}

#define BNN_PROBE_CHAINS 12
static inline int64_t bnn_probe_fma(int64_t rounds, float seed, float *sink)
{
    bnn_vf acc[BNN_PROBE_CHAINS];
    const bnn_vf mul = seed - (bnn_vf){0};
    const bnn_vf add = mul * 1e-7f;
    for (int i = 0; i < BNN_PROBE_CHAINS; ++i) acc[i] = mul * (float)i;
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < BNN_PROBE_CHAINS; ++i) acc[i] = acc[i] * mul + add;
    float s = 0;
    for (int i = 0; i < BNN_PROBE_CHAINS; ++i) s += acc[i][0];
    *sink = s;
    return rounds * BNN_PROBE_CHAINS * BNN_FLOAT_VEC;
}

/* Several accumulators so the xor chain never waits on its own latency. */
static inline uint64_t bnn_probe_read(const uint64_t *x, int64_t n)
{
    uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; ++u) acc[u] ^= x[i + u];
    for (; i < n; ++i) acc[0] ^= x[i];
    return acc[0] ^ acc[1] ^ acc[2] ^ acc[3] ^ acc[4] ^ acc[5] ^ acc[6] ^ acc[7];
}

#endif
