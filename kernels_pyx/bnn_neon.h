/* ARM NEON xnor tiles (aarch64 and 32-bit ARMv7 with NEON). Included by
 * bnn_simd.h when bnn_config.h selected the NEON path. */
#ifndef BNN_NEON_H
#define BNN_NEON_H
#include <arm_neon.h>

#define bnn_xnor_tile_u32 bnn_xnor_tile_c_u32
#define bnn_xnor_tile_u64 bnn_xnor_tile_c_u64

#endif
