/* Checks the SIMD xnor tiles selected by bnn_config.h against the plain C
 * tiles, cell for cell, on random and worst-case words: every mr <= MR, every
 * nr <= panel width, K-word counts around the byte-counter widening step, and
 * strides wider than the tile. Cells outside the tile must stay untouched.
 * Built by a cross compiler and run under qemu-user it proves the ARM tiles,
 * built natively with other flags (-mno-avx512f, a tile variant's -D) the x86
 * ones, in seconds and without Python.
 *
 *   cc -O2 -march=native -Ikernels_pyx tools/tiles/tile_check.c -o tile_check
 *   ./tile_check [PATH]
 *
 * With PATH given, fails unless bnn_config.h selected that code path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bnn_simd.h"
#include "tile_rng.h"

enum { FILL_RANDOM, FILL_WORST };
static const ptrdiff_t KWS[] = {1, 2, 3, 7, 30, 31, 32, 33, 62, 63, 64, 65, 200, 1000};
#define SENTINEL ((int32_t)0x5A5A5A5A)

#define BNN_DEFINE_CHECK(WT, SUFFIX)                                                     \
static long check_##SUFFIX(int fill)                                                     \
{                                                                                        \
    enum { NRW = BNN_PANEL_BITS / (8 * (int)sizeof(WT)) };                               \
    long failures = 0;                                                                   \
    for (size_t t = 0; t < sizeof(KWS) / sizeof(KWS[0]); ++t) {                          \
        const ptrdiff_t kw = KWS[t], lda = kw + 3, ldc = NRW + 5;                        \
        const int32_t k = (int32_t)(kw * 8 * (ptrdiff_t)sizeof(WT));                     \
        WT *a = malloc(sizeof(WT) * BNN_XNOR_MR * lda);                                  \
        /* the tile's own operand: A split into nibble halves where the path asks */   \
        const ptrdiff_t ldt = BNN_XNOR_A_SPLIT ? 2 * kw + 3 : lda;                       \
        WT *at = malloc(sizeof(WT) * BNN_XNOR_MR * ldt);                                 \
        WT *p = malloc(sizeof(WT) * NRW * kw);                                           \
        /* and the panel split into nibbles where it asks (twice the words) */          \
        WT *pt = malloc(sizeof(WT) * NRW * kw * (BNN_XNOR_B_SPLIT ? 2 : 1));             \
        int32_t *want = malloc(sizeof(int32_t) * BNN_XNOR_MR * ldc);                     \
        int32_t *got = malloc(sizeof(int32_t) * BNN_XNOR_MR * ldc);                      \
        if (!a || !at || !p || !pt || !want || !got) { fprintf(stderr, "tile_check: out of memory\n"); exit(2); } \
        for (ptrdiff_t i = 0; i < BNN_XNOR_MR * lda; ++i)                                \
            a[i] = fill == FILL_WORST ? (WT)~(WT)0 : (WT)rnd();                          \
        for (ptrdiff_t i = 0; i < NRW * kw; ++i)                                         \
            p[i] = fill == FILL_WORST ? (WT)0 : (WT)rnd();                               \
        /* tail 1 (u64): the last word's high half is padding, equal in both,            \
         * and the tile is told so (tail_half), as the GEMM drivers do */                \
        for (int tail = 0; tail <= (sizeof(WT) == 8); ++tail) {                          \
            const int32_t kt = tail ? k - 32 : k;                                        \
            if (tail) {                                                                  \
                for (int r = 0; r < BNN_XNOR_MR; ++r)                                    \
                    a[r * lda + kw - 1] = (WT)((uint64_t)a[r * lda + kw - 1] & 0xffffffffu); \
                for (int j = 0; j < NRW; ++j)                                            \
                    p[(kw - 1) * NRW + j] = (WT)((uint64_t)p[(kw - 1) * NRW + j] & 0xffffffffu); \
            }                                                                            \
            if (BNN_XNOR_B_SPLIT)                                                        \
                bnn_xnor_split_b(p, kw, pt, sizeof(WT) == 8);                            \
            else                                                                         \
                memcpy(pt, p, sizeof(WT) * NRW * kw);                                    \
            for (int r = 0; r < BNN_XNOR_MR; ++r) {                                      \
                if (BNN_XNOR_A_SPLIT)                                                    \
                    bnn_xnor_split_a_##SUFFIX(a + r * lda, kw, at + r * ldt);            \
                else                                                                     \
                    memcpy(at + r * ldt, a + r * lda, sizeof(WT) * lda);                 \
            }                                                                            \
            for (int mr = 1; mr <= BNN_XNOR_MR; ++mr) {                                  \
                for (int nr = 1; nr <= NRW; ++nr) {                                      \
                    for (ptrdiff_t i = 0; i < BNN_XNOR_MR * ldc; ++i) want[i] = got[i] = SENTINEL; \
                    bnn_xnor_tile_c_##SUFFIX(a, lda, mr, p, kw, want, ldc, nr, kt);      \
                    if (tail)                                                            \
                        bnn_xnor_tile_pf_##SUFFIX(at, ldt, mr, pt, kw, got, ldc, nr, kt, \
                                                  NULL, 0, 1);                           \
                    else                                                                 \
                        bnn_xnor_tile_##SUFFIX(at, ldt, mr, pt, kw, got, ldc, nr, kt);   \
                    for (ptrdiff_t i = 0; i < BNN_XNOR_MR * ldc; ++i) {                  \
                        if (got[i] == want[i]) continue;                                 \
                        if (failures++ < 10)                                             \
                            fprintf(stderr, "tile_check: " #SUFFIX "%s %s kw=%ld mr=%d nr=%d " \
                                    "cell (%ld, %ld): got %ld, want %ld\n",              \
                                    tail ? " half-tail" : "", fill == FILL_WORST ? "worst-case" : "random", (long)kw, \
                                    mr, nr, (long)(i / ldc), (long)(i % ldc),            \
                                    (long)got[i], (long)want[i]);                        \
                    }                                                                    \
                }                                                                        \
            }                                                                            \
        }                                                                                \
        free(a); free(at); free(p); free(pt); free(want); free(got);                     \
    }                                                                                    \
    return failures;                                                                     \
}

BNN_DEFINE_CHECK(uint32_t, u32)
BNN_DEFINE_CHECK(uint64_t, u64)

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], BNN_PATH) != 0) {
        fprintf(stderr, "tile_check: built for code path %s, expected %s\n", BNN_PATH, argv[1]);
        return 2;
    }
    long failures = 0;
    for (int fill = FILL_RANDOM; fill <= FILL_WORST; ++fill)
        failures += check_u32(fill) + check_u64(fill);
    if (failures) {
        fprintf(stderr, "tile_check: %ld cells differ from the C tiles (path %s)\n", failures, BNN_PATH);
        return 1;
    }
    printf("tile_check: path %s xnor tiles match the C tiles (u32 and u64, MR=%d, "
           "PANEL_BITS=%d)\n", BNN_PATH, BNN_XNOR_MR, BNN_PANEL_BITS);
    return 0;
}
