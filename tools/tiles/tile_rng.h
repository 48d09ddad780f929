/* The random words of the tile tools: xorshift64, fixed seed, so a failure
 * or a timing repeats run to run. */
#ifndef TILE_RNG_H
#define TILE_RNG_H
#include <stdint.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
#endif
