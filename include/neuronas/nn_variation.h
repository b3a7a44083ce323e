/* nn_variation.h: device variation of RRAM cells on FxP weights (docs/variation.md).
 *
 * A weight of an FxP-n tensor is an integer code q times the tensor's step. Its magnitude
 * |q| <= 2^(n-1) sits in w = ceil(n / device_bits) cells of device_bits bits each (least
 * significant first: level L_k = (|q| >> (k d)) mod 2^d); the sign is applied by the periphery.
 * Each cell is perturbed independently:
 *   with probability `stuck` it is stuck: level 2^d - 1 with probability `stuck_high`, else 0;
 *   otherwise L'_k = max(0, L_k (1 + sigma z)), z standard normal;
 * and the weight becomes sign(q) step sum_k L'_k 2^(k d) (double, stored as float32).
 * Every cell takes four draws (stuck test, stuck level, two for z) from the stream
 * nn_rng_split_u64(nn_rng_split(nn_rng_seed(seed), label), draw), elements in storage order,
 * cells least significant first: the noise is a function of (seed, layer path, draw) only. */
#ifndef NEURONAS_NN_VARIATION_H
#define NEURONAS_NN_VARIATION_H

#include "nn.h"
#include "nn_net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_variation_params {
  double sigma;      /* relative standard deviation of a cell's level, 0..10 */
  double stuck;      /* probability that a cell is stuck, 0..1 */
  double stuck_high; /* fraction of stuck cells at the top level (the rest at 0), 0..1 */
  int device_bits;   /* bits per cell d, 1..16 */
  uint64_t seed;
} nn_variation_params;

/* sigma 0, stuck 0, stuck_high 0.5, device_bits 1, seed 1 */
nn_variation_params nn_variation_params_default(void);
/* NN_EINVAL naming the field when out of range. */
nn_status nn_variation_params_check(const nn_variation_params *p, nn_error *err);

typedef struct nn_variation_stats {
  int64_t weights, cells, stuck; /* cells = weights * ceil(bits / device_bits) */
  double step;                   /* the grid step the codes were read on (0: all-zero tensor) */
} nn_variation_stats;

/* The step of the FxP-`bits` grid w[0..n-1] lies on: the pow2 quantizer's 2^-f (f from max|w|,
 * or one finer when the maximum is the code -2^(n-1)), else the maxabs step max|w|/(2^(n-1)-1).
 * NN_EINVAL (naming label) when the values are on neither grid: not quantized to `bits`. */
nn_status nn_variation_grid(const float *w, int64_t n, int bits, const char *label, double *step,
                            nn_error *err);

/* Perturbs w[0..n-1] (an FxP-`bits` tensor, bits 2..24) in place for one draw; stats may be NULL. */
nn_status nn_variation_array(const nn_variation_params *p, int bits, const char *label,
                             uint64_t draw, float *w, int64_t n, nn_variation_stats *stats,
                             nn_error *err);

/* A perturbed copy of a quantized net: every crossbar-mapped layer's weight (nn_net_layer)
 * perturbed with label = layer path; BN, biases and buffers untouched. The caller owns it.
 * NN_EINVAL when the net's weight_bits() is outside 2..24 (float weights: quantize first). */
nn_net *nn_variation_net(const nn_variation_params *p, const nn_net *net, uint64_t draw,
                         nn_error *err);

#ifdef __cplusplus
}
#endif
#endif
