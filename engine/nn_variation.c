/* nn_variation.c: device variation of RRAM cells on FxP weights (include/neuronas/nn_variation.h,
 * docs/variation.md). */
#include <math.h>
#include <string.h>

#include "neuronas/nn_rng.h"
#include "neuronas/nn_tensor.h"
#include "neuronas/nn_variation.h"

nn_variation_params nn_variation_params_default(void) {
  nn_variation_params p = {.sigma = 0, .stuck = 0, .stuck_high = 0.5, .device_bits = 1, .seed = 1};
  return p;
}

nn_status nn_variation_params_check(const nn_variation_params *p, nn_error *err) {
  if (!(p->sigma >= 0 && p->sigma <= 10))
    return nn_fail(err, NN_EINVAL, "variation: sigma=%g outside 0..10", p->sigma);
  if (!(p->stuck >= 0 && p->stuck <= 1))
    return nn_fail(err, NN_EINVAL, "variation: stuck=%g outside 0..1", p->stuck);
  if (!(p->stuck_high >= 0 && p->stuck_high <= 1))
    return nn_fail(err, NN_EINVAL, "variation: stuck_high=%g outside 0..1", p->stuck_high);
  if (p->device_bits < 1 || p->device_bits > 16)
    return nn_fail(err, NN_EINVAL, "variation: device_bits=%d outside 1..16", p->device_bits);
  return NN_OK;
}

/* Whether every w/step is an integer code in -2^(bits-1)..2^(bits-1) (within tol of one). */
static int on_grid(const float *w, int64_t n, int bits, double step, double tol) {
  const double lim = ldexp(1.0, bits - 1);
  for (int64_t i = 0; i < n; i++) {
    double c = (double)w[i] / step, r = nearbyint(c);
    if (fabs(c - r) > tol || fabs(r) > lim) return 0;
  }
  return 1;
}

nn_status nn_variation_grid(const float *w, int64_t n, int bits, const char *label, double *step,
                            nn_error *err) {
  if (bits < 2 || bits > 24)
    return nn_fail(err, NN_EINVAL, "variation: %s: weight bits %d outside 2..24 (quantize the net first)",
                   label, bits);
  double mx = 0;
  for (int64_t i = 0; i < n; i++) {
    double a = fabs((double)w[i]);
    if (!(a <= 3.4e38)) return nn_fail(err, NN_EINVAL, "variation: %s: weight %lld is not finite", label, (long long)i);
    if (a > mx) mx = a;
  }
  if (mx == 0) {
    *step = 0;
    return NN_OK;
  }
  int e;
  (void)frexp(mx, &e);                 /* mx = m 2^e, m in [0.5, 1): floor(log2 mx) = e - 1 */
  int f = bits - (e - 1 + 2);          /* docs/quantizer.md: i = floor(log2 max|w|) + 2, f = n - i;
                                        * one finer when max|w| is the most negative code (below) */
  for (int extra = 0; extra <= 1; extra++) {
    double s = ldexp(1.0, -(f + extra));
    if (on_grid(w, n, bits, s, 0.0)) {
      *step = s;
      return NN_OK;
    }
  }
  double s = mx / (ldexp(1.0, bits - 1) - 1);
  if (on_grid(w, n, bits, s, 1e-3)) {
    *step = s;
    return NN_OK;
  }
  return nn_fail(err, NN_EINVAL, "variation: %s: weights are not on an FxP-%d grid (quantize the net to %d bits first)",
                 label, bits, bits);
}

nn_status nn_variation_array(const nn_variation_params *p, int bits, const char *label,
                             uint64_t draw, float *w, int64_t n, nn_variation_stats *stats,
                             nn_error *err) {
  nn_status st = nn_variation_params_check(p, err);
  double step = 0;
  if (st == NN_OK) st = nn_variation_grid(w, n, bits, label, &step, err);
  if (st != NN_OK) return st;
  const int d = p->device_bits, cells = (bits + d - 1) / d;
  const uint64_t mask = ((uint64_t)1 << d) - 1;
  const double top = (double)mask;
  nn_rng base = nn_rng_seed(p->seed);
  nn_rng lr = nn_rng_split(&base, label);
  nn_rng r = nn_rng_split_u64(&lr, draw);
  int64_t nstuck = 0;
  /* an all-zero tensor has no grid (no scale for a stuck-high cell): it stays zero */
  for (int64_t i = 0; step > 0 && i < n; i++) {
    double c = nearbyint((double)w[i] / step);
    uint64_t mag = (uint64_t)fabs(c);
    double m = 0;
    for (int k = 0; k < cells; k++) {
      double level = (double)((mag >> (k * d)) & mask);
      double u = nn_rng_uniform(&r), v = nn_rng_uniform(&r), z = nn_rng_normal(&r);
      if (u < p->stuck) {
        level = v < p->stuck_high ? top : 0.0;
        nstuck++;
      } else {
        level = level * (1.0 + p->sigma * z);
        if (level < 0) level = 0;
      }
      m += ldexp(level, k * d);
    }
    w[i] = (float)((c < 0 ? -m : m) * step);
  }
  if (stats) {
    stats->weights = n;
    stats->cells = n * cells;
    stats->stuck = nstuck;
    stats->step = step;
  }
  return NN_OK;
}

nn_net *nn_variation_net(const nn_variation_params *p, const nn_net *net, uint64_t draw,
                         nn_error *err) {
  if (nn_variation_params_check(p, err) != NN_OK) return NULL;
  int bits = nn_net_weight_bits(net);
  if (bits < 2 || bits > 24) {
    nn_fail(err, NN_EINVAL, "variation: the net's weight_bits() is %d; FxP 2..24 expected (quantize the net first)",
            bits);
    return NULL;
  }
  nn_net *copy = nn_net_clone(net, err);
  if (!copy) return NULL;
  size_t nl = nn_net_layer_count(copy);
  for (size_t i = 0; i < nl; i++) {
    nn_tensor *t = nn_net_layer_weight(copy, i);
    if (nn_variation_array(p, bits, nn_net_layer(copy, i)->name, draw, nn_tensor_data(t),
                           nn_tensor_numel(t), NULL, err) != NN_OK) {
      nn_net_free(copy);
      return NULL;
    }
  }
  return copy;
}
