/* Build-time facts every kernel module shares: how it was compiled, which
 * code path the preprocessor selected, and the tile sizes the packed layouts
 * are built around. Tile sizes live here only, so packing and micro-kernels
 * cannot disagree. */
#ifndef BNN_CONFIG_H
#define BNN_CONFIG_H

#include <stdint.h>

#ifndef BNNBENCH_CFLAGS
#define BNNBENCH_CFLAGS "unknown"
#endif

#ifdef _OPENMP
#define BNN_HAVE_OPENMP 1
#else
#define BNN_HAVE_OPENMP 0
#endif

#if defined(__clang__)
#define BNN_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define BNN_COMPILER "gcc " __VERSION__
#else
#define BNN_COMPILER "unknown"
#endif

/* Code paths, best first. BNN_PORTABLE forces the plain C path so CI can
 * test what a compiler without these extensions would build;
 * BNN_EMULATE_AVX512 forces the AVX-512 path with its intrinsics emulated
 * (SIMDe), so CI checks that path's exactness on any x86 host. */
#if defined(BNN_EMULATE_AVX512)
#define BNN_PATH_AVX512 1
#define BNN_PATH "avx512-vpopcntdq-simde"
#elif !defined(BNN_PORTABLE) && defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__)
#define BNN_PATH_AVX512 1
#define BNN_PATH "avx512-vpopcntdq"
#elif !defined(BNN_PORTABLE) && defined(__AVX2__) && defined(__x86_64__)
/* x86-64 only: the AVX2 tile names ymm14 and ymm15 (bnn_x86.h) */
#define BNN_PATH_AVX2 1
#define BNN_PATH "avx2"
#elif !defined(BNN_PORTABLE) && (defined(__ARM_NEON) || defined(__ARM_NEON__))
#define BNN_PATH_NEON 1
#define BNN_PATH "neon"
#else
#define BNN_PATH "portable"
#endif

/* xnor GEMM: the activations (B) are packed into panels whose rows (one per
 * packed K-word) are BNN_PANEL_BITS wide: two AVX-512 registers, or two AVX2
 * or four NEON registers of 512 bits. AVX-512 takes two registers so that
 * each word of A, broadcast once, feeds two popcounts: with one, u64 tiles
 * read twice the A bytes per bit-op that u32 tiles do, and at large K A is
 * L2-resident (one register measured well below two at 512 channels:
 * docs/measurements.md). */
#if defined(BNN_PATH_AVX512)
#define BNN_PANEL_BITS 1024
#else
#define BNN_PANEL_BITS 512
#endif

/* Rows of A per xnor tile. AVX-512 has 32 vector registers: 8 rows x 2
 * accumulators + 2 panel registers + 1 broadcast fit, each panel register
 * loaded then feeds 8 popcounts, and the tile's fixed costs (call,
 * epilogue, prefetch) are shared by twice the work. Measured faster than
 * 4 rows, or within the noise, at every K tried (docs/measurements.md).
 * AVX2 (16 registers) and NEON keep 4. */
#if defined(BNN_PATH_AVX512)
#define BNN_XNOR_MR 8
#else
#define BNN_XNOR_MR 4
#endif

/* Binary conv (bconv.pyx): output pixels whose bit-level im2col rows are
 * built together into a per-thread buffer before every weight panel runs
 * over them. Small enough that the rows and one weight panel stay in L1/L2
 * (512 channels, 5x5, u64: 16 rows are 25 KiB); a multiple of BNN_XNOR_MR. */
#ifndef BNN_CONV_ROWS
#define BNN_CONV_ROWS 16
#endif

/* float GEMM register tile: BNN_FLOAT_MR rows x BNN_FLOAT_NR columns of C,
 * held in BNN_FLOAT_MR x (BNN_FLOAT_NR / BNN_FLOAT_VEC) vector accumulators
 * of BNN_FLOAT_VEC floats. Each step along K loads NR / VEC vectors of B and
 * broadcasts MR floats of A (both load-port work) for MR x NR / VEC FMAs.
 * AVX-512: 8 x 32 is 16 zmm accumulators + 2 of B + broadcasts, within the
 * 32 registers; 16 independent FMA chains cover two FMA ports x 4 cycles of
 * latency twice over, and 10 loads per 8 FMA cycles stay under the two
 * 512-bit load ports. MR = 8 divides the usual M (64 filters), where 12 x 32
 * (24 accumulators) would waste a third of its last row tile.
 * AVX2 / portable: 6 x 16 is 12 ymm accumulators + 2 of B + 1 broadcast of
 * the 16 registers. */
#if defined(BNN_PATH_AVX512)
#define BNN_FLOAT_VEC 16
#define BNN_FLOAT_MR 8
#define BNN_FLOAT_NR 32
#else
#define BNN_FLOAT_VEC 8
#define BNN_FLOAT_MR 6
#define BNN_FLOAT_NR 16
#endif

#endif
