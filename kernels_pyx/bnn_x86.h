/* x86 xnor tiles (AVX2, AVX-512). Included by bnn_simd.h when
 * bnn_config.h selected an x86 SIMD path. */
#ifndef BNN_X86_H
#define BNN_X86_H
#include <immintrin.h>

#define bnn_xnor_tile_u32 bnn_xnor_tile_c_u32
#define bnn_xnor_tile_u64 bnn_xnor_tile_c_u64

#endif
