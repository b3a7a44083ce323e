/* nn_rng.h: counter-based, splittable random streams (docs/model.md weight streams).
 *
 * A stream is a 64-bit key and a 64-bit counter. Draw i of a stream is
 *   mix64(key + (i + 1) * 0x9E3779B97F4A7C15)
 * with mix64 the SplitMix64 finaliser, so the stream with key = seed is exactly
 * Vigna's SplitMix64 seeded with `seed` (seed 1 starts 0x910A2DEC89025CC1).
 * Splitting by a label hashes the label (FNV-1a 64) into a new key:
 *   child.key = mix64(parent.key ^ fnv1a64(label)), counter 0.
 * Identical on every platform (integer arithmetic only until the final float). */
#ifndef NEURONAS_NN_RNG_H
#define NEURONAS_NN_RNG_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A plain value type: copy it freely; no allocation. */
typedef struct nn_rng {
  uint64_t key;
  uint64_t counter;
} nn_rng;

nn_rng nn_rng_seed(uint64_t seed);
/* Independent child stream named by label (e.g. a layer path "cellA.e01.conv"). */
nn_rng nn_rng_split(const nn_rng *r, const char *label);
/* Independent child stream numbered by an integer. */
nn_rng nn_rng_split_u64(const nn_rng *r, uint64_t n);

uint64_t nn_rng_mix64(uint64_t z);
uint64_t nn_rng_fnv1a64(const char *s);

uint64_t nn_rng_u64(nn_rng *r);
/* [0,1) with 53 random bits */
double nn_rng_uniform(nn_rng *r);
/* [0,1) float with 24 random bits */
float nn_rng_uniformf(nn_rng *r);
/* Standard normal (Box-Muller on two uniform draws, one value per call). */
double nn_rng_normal(nn_rng *r);
/* Uniform integer in [0, n), n >= 1, unbiased (Lemire's multiply with rejection). */
uint64_t nn_rng_below(nn_rng *r, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif
