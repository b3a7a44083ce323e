/* nn_quant.h: fixed-point weight quantizers FxP-n, n in 2..32 (docs/quantizer.md, QaFE).
 *
 * Scale "pow2" (the default, dynamic fixed point): one power-of-two exponent per tensor,
 *   integer bits (sign included) i = floor(log2(max|w|)) + 2 (i - 1 when max|w| is a power of
 *   two that only negative weights reach: -2^(i-2) is then the most negative code of i - 1 bits,
 *   so quantizing a quantized tensor changes nothing), or i = int_bits when fixed;
 *   fraction bits f = n - i;  q = clamp(round(w * 2^f), -2^(n-1), 2^(n-1)-1) / 2^f.
 * Scale "maxabs": uniform symmetric, step s = max|w| / (2^(n-1)-1),
 *   q = clamp(round(w / s), -(2^(n-1)-1), 2^(n-1)-1) * s.
 * An all-zero tensor stays zero. Rounding: nearest (half away from zero), floor (toward
 * -inf), zero (toward zero), stochastic (floor(x + u), u ~ U[0,1) from a seeded stream).
 * Arithmetic is double; results are stored back as float32 (so n > 24 is ~identity).
 * A weight is "saturated" when its rounded integer fell outside the range and was clamped.
 * pow2 with max|w| >= 2^127: the range is narrowed to the codes whose value is a finite float32
 * (-2^(n-1) 2^-f = -2^128 is not), so every output is finite (docs/quantizer.md). */
#ifndef NEURONAS_NN_QUANT_H
#define NEURONAS_NN_QUANT_H

#include "nn.h"
#include "nn_layer.h"
#include "nn_rng.h"
#include "nn_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nn_rounding {
  NN_ROUND_NEAREST = 0,
  NN_ROUND_FLOOR,
  NN_ROUND_ZERO,
  NN_ROUND_STOCHASTIC
} nn_rounding;

typedef enum nn_qscale { NN_QSCALE_POW2 = 0, NN_QSCALE_MAXABS } nn_qscale;

#define NN_QUANT_INT_BITS_DYNAMIC (-1000) /* int_bits value meaning "per tensor, from max|w|" */
#define NN_QUANT_INT_BITS_MIN (-64)
#define NN_QUANT_INT_BITS_MAX 64

typedef struct nn_quant_params {
  int bits;             /* n, NN_WEIGHT_BITS_MIN..MAX (2..32, nn_layer.h) */
  nn_rounding rounding;
  nn_qscale scale;
  int int_bits;         /* NN_QUANT_INT_BITS_DYNAMIC, or a fixed Qm.f (pow2 scale only) */
  uint64_t seed;        /* stochastic rounding: stream nn_rng_split(seed, label) per tensor */
} nn_quant_params;

/* bits 8, nearest, pow2, dynamic int bits, seed 1 */
nn_quant_params nn_quant_params_default(void);
/* NN_EINVAL naming the field when out of range (e.g. "bits=40 outside 2..32"). */
nn_status nn_quant_params_check(const nn_quant_params *p, nn_error *err);

const char *nn_rounding_str(nn_rounding r); /* "nearest", "floor", "zero", "stochastic" */
const char *nn_qscale_str(nn_qscale s);     /* "pow2", "maxabs" */

/* What quantizing one tensor did. For maxabs, int_bits/frac_bits are 0 and step is s. */
typedef struct nn_quant_stats {
  int64_t count;     /* weights */
  int64_t saturated; /* weights clamped at the range ends */
  double mse;        /* mean (q - w)^2 */
  double max_abs;    /* max |w| before quantization */
  double step;       /* 2^-f (pow2) or s (maxabs); 0 for an all-zero tensor under maxabs */
  int int_bits, frac_bits;
} nn_quant_stats;

/* Quantizes n floats from src into dst (dst == src allowed). label names the tensor's
 * stochastic stream (layer path; "tensor" for a lone tensor). stats may be NULL.
 * NN_EINVAL for bad params or a non-finite weight (message names label and index). */
nn_status nn_quant_array(const nn_quant_params *p, const char *label, const float *src, float *dst,
                         int64_t n, nn_quant_stats *stats, nn_error *err);
/* Naive per-element twin of nn_quant_array (same results bit for bit; for tests). */
nn_status nn_quant_array_ref(const nn_quant_params *p, const char *label, const float *src,
                             float *dst, int64_t n, nn_quant_stats *stats, nn_error *err);
/* In place on a tensor. */
nn_status nn_quant_tensor(const nn_quant_params *p, const char *label, nn_tensor *t,
                          nn_quant_stats *stats, nn_error *err);

/* ---- networks (crossbar-mapped weights only; BN parameters and biases stay float) ---- */
struct nn_net;
typedef struct nn_quant_layer_report {
  char name[64]; /* layer path, e.g. "cellA.e01.conv" */
  nn_quant_stats stats;
} nn_quant_layer_report;

/* Returns a quantized clone of net (caller owns it, nn_net_free): every layer of
 * nn_net_layer() quantized with label = layer path, weight bits set to p->bits.
 * report (may be NULL) gets nn_net_layer_count(net) entries. NULL on failure (err set). */
struct nn_net *nn_quant_net(const nn_quant_params *p, const struct nn_net *net,
                            nn_quant_layer_report *report, nn_error *err);
/* The same report without building the clone (net is untouched). */
nn_status nn_quant_net_report(const nn_quant_params *p, const struct nn_net *net,
                              nn_quant_layer_report *report, nn_error *err);

#ifdef __cplusplus
}
#endif
#endif
