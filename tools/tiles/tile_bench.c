/* Times the u64 xnor tile selected by bnn_config.h on its own: 64 rows of A
 * (BMXNet's filters, so a split panel serves as many row tiles as in its
 * GEMM) against 8 panels, every tile call hot in L1/L2, one thread pinned to the
 * first CPU it may use. No GEMM driver, packing or Python around it, so tile
 * variants (a -D knob, another -m flag) can be told apart within a percent or
 * two; tools/tiles/compare.py builds several and runs them in alternation.
 *
 *   cc -O3 -march=native -Ikernels_pyx tools/tiles/tile_bench.c -o tile_bench
 *   ./tile_bench [--quick]
 *
 * K per row is 800, 3200 and 12800 bits (the 5x5 layers of 32, 128 and 512
 * channels), packed as the GEMM packs them: the bits above K in the last
 * word are 0 in both operands, and where that word holds at most 32 bits
 * the tile gets tail_half, as in the GEMM. Every result is checked against
 * a plain popcount after it is timed; a mismatch exits 1. One line per K:
 *   path=avx2 k_bits=3200 gbit_mac_per_s=381.2
 * A bit-MAC is one xnor + count of one bit pair (BMXNet's "binary op" is
 * two). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sched.h>
#endif
#include "bnn_simd.h"
#include "tile_rng.h"

enum { ROWS = 64, PANELS = 8, NRW = BNN_PANEL_BITS / 64, TRIALS = 7 };
_Static_assert(ROWS % BNN_XNOR_MR == 0, "ROWS must be whole tiles");

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *alloc(size_t bytes)
{
    /* aligned_alloc wants a multiple of the alignment */
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "tile_bench: out of memory\n");
        exit(2);
    }
    return p;
}

static void pin_to_first_cpu(void)
{
#ifdef __linux__
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &allowed)) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
#endif
}

/* Best of TRIALS timings of every tile of the block; 0 after a mismatch. */
static double bench(int32_t k, int64_t bit_macs_per_trial)
{
    const ptrdiff_t kw = (k + 63) / 64;
    const ptrdiff_t lda = kw, ldt = BNN_XNOR_A_SPLIT ? 2 * kw : kw, ldc = PANELS * NRW;
    const int tail_bits = (int)(k - 64 * (kw - 1));
    const uint64_t last_mask = tail_bits == 64 ? ~UINT64_C(0) : (UINT64_C(1) << tail_bits) - 1;
    const int tail_half = tail_bits <= 32;
    uint64_t *a = alloc(sizeof(uint64_t) * ROWS * lda);
    uint64_t *at = alloc(sizeof(uint64_t) * ROWS * ldt);
    uint64_t *p = alloc(sizeof(uint64_t) * PANELS * kw * NRW);
    /* The panels as the tile reads them: split into nibbles where the path
     * asks (twice the words), once per pass as the GEMM driver does per
     * block of panels, so the split's cost is timed with the tiles. */
    const ptrdiff_t psplit = kw * NRW * (BNN_XNOR_B_SPLIT ? 2 : 1);
    uint64_t *pt = BNN_XNOR_B_SPLIT ? alloc(sizeof(uint64_t) * PANELS * psplit) : p;
    int32_t *c = alloc(sizeof(int32_t) * ROWS * ldc);
    for (ptrdiff_t i = 0; i < ROWS * lda; ++i) a[i] = rnd();
    for (ptrdiff_t i = 0; i < PANELS * kw * NRW; ++i) p[i] = rnd();
    for (int r = 0; r < ROWS; ++r) a[r * lda + kw - 1] &= last_mask;
    for (int q = 0; q < PANELS; ++q)
        for (int j = 0; j < NRW; ++j) p[(q * kw + kw - 1) * NRW + j] &= last_mask;
    for (int r = 0; r < ROWS; ++r) {
        if (BNN_XNOR_A_SPLIT)
            bnn_xnor_split_a_u64(a + r * lda, kw, at + r * ldt);
        else
            memcpy(at + r * ldt, a + r * lda, sizeof(uint64_t) * lda);
    }
    const int64_t one_pass = (int64_t)ROWS * PANELS * NRW * k;
    const int64_t reps = bit_macs_per_trial / one_pass > 0 ? bit_macs_per_trial / one_pass : 1;
    double best = 0;
    for (int trial = 0; trial < TRIALS; ++trial) {
        const double t0 = now();
        for (int64_t it = 0; it < reps; ++it) {
            if (BNN_XNOR_B_SPLIT)
                for (int q = 0; q < PANELS; ++q)
                    bnn_xnor_split_b(p + q * kw * NRW, kw, pt + q * psplit, 1);
            for (int r = 0; r < ROWS; r += BNN_XNOR_MR)
                for (int q = 0; q < PANELS; ++q)
                    /* the drivers' entry (no prefetch here): on AVX2 it is inlined
                     * into them, and timed inlined the tile's epilogue is theirs */
                    bnn_xnor_tile_pf_u64(at + r * ldt, ldt, BNN_XNOR_MR, pt + q * psplit, kw,
                                         c + r * ldc + q * NRW, ldc, NRW, k, NULL, 0,
                                         tail_half);
        }
        const double rate = (double)reps * one_pass / (now() - t0) / 1e9;
        if (rate > best) best = rate;
    }
    for (int r = 0; r < ROWS; ++r)
        for (int q = 0; q < PANELS; ++q)
            for (int j = 0; j < NRW; ++j) {
                int32_t n = 0;
                for (ptrdiff_t w = 0; w < kw; ++w)
                    n += (int32_t)BNN_POPCNT64(a[r * lda + w] ^ p[(q * kw + w) * NRW + j]);
                if (c[r * ldc + q * NRW + j] != k - 2 * n) {
                    fprintf(stderr, "tile_bench: path %s, K=%ld bits: row %d column %d is %ld, "
                            "want %ld\n", BNN_PATH, (long)k, r, q * NRW + j,
                            (long)c[r * ldc + q * NRW + j], (long)(k - 2 * n));
                    best = 0;
                    goto done;
                }
            }
done:
    free(a); free(at); free(p); free(c);
    if (pt != p) free(pt);
    return best;
}

int main(int argc, char **argv)
{
    int quick = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: tile_bench [--quick]   (got %s)\n", argv[i]);
            return 2;
        }
    }
    pin_to_first_cpu();
    static const long k_bits[] = {800, 3200, 12800};
    for (size_t i = 0; i < sizeof k_bits / sizeof k_bits[0]; ++i) {
        const double rate = bench((int32_t)k_bits[i],
                                  quick ? INT64_C(20000000) : INT64_C(8000000000));
        if (rate == 0) return 1;
        printf("path=%s k_bits=%ld gbit_mac_per_s=%.1f\n", BNN_PATH, k_bits[i], rate);
        fflush(stdout);
    }
    return 0;
}
