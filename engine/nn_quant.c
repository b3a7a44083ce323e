/* nn_quant.c: FxP-n weight quantizers on arrays and tensors (docs/quantizer.md, QaFE); nets in
 * nn_quant_net.c. Formulas in include/neuronas/nn_quant.h. */
#include "neuronas/nn_quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "nn_simd.h"
#include "nn_tensor_impl.h"

static const char *const rounding_names[] = {"nearest", "floor", "zero", "stochastic"};
static const char *const scale_names[] = {"pow2", "maxabs"};

const char *nn_rounding_str(nn_rounding r) {
  return (unsigned)r < 4 ? rounding_names[r] : "?";
}
const char *nn_qscale_str(nn_qscale s) { return (unsigned)s < 2 ? scale_names[s] : "?"; }

nn_quant_params nn_quant_params_default(void) {
  nn_quant_params p = {.bits = NN_WEIGHT_BITS_DEFAULT,
                       .rounding = NN_ROUND_NEAREST,
                       .scale = NN_QSCALE_POW2,
                       .int_bits = NN_QUANT_INT_BITS_DYNAMIC,
                       .seed = 1};
  return p;
}

nn_status nn_quant_params_check(const nn_quant_params *p, nn_error *err) {
  if (!p) return nn_fail(err, NN_EINVAL, "quantizer: params expected");
  if (p->bits < NN_WEIGHT_BITS_MIN || p->bits > NN_WEIGHT_BITS_MAX)
    return nn_fail(err, NN_EINVAL, "quantizer: bits=%d outside %d..%d", p->bits, NN_WEIGHT_BITS_MIN,
                   NN_WEIGHT_BITS_MAX);
  if ((unsigned)p->rounding > NN_ROUND_STOCHASTIC)
    return nn_fail(err, NN_EINVAL, "quantizer: unknown rounding %d", (int)p->rounding);
  if ((unsigned)p->scale > NN_QSCALE_MAXABS)
    return nn_fail(err, NN_EINVAL, "quantizer: unknown scale %d", (int)p->scale);
  if (p->int_bits != NN_QUANT_INT_BITS_DYNAMIC) {
    if (p->scale != NN_QSCALE_POW2)
      return nn_fail(err, NN_EINVAL, "quantizer: int_bits needs scale \"pow2\"");
    if (p->int_bits < NN_QUANT_INT_BITS_MIN || p->int_bits > NN_QUANT_INT_BITS_MAX)
      return nn_fail(err, NN_EINVAL, "quantizer: int_bits=%d outside %d..%d", p->int_bits,
                     NN_QUANT_INT_BITS_MIN, NN_QUANT_INT_BITS_MAX);
  }
  return NN_OK;
}

/* max |src[i]| and max src[i] (0 when none is positive); NN_EINVAL naming label and the
 * (0-based) index of a non-finite weight */
static nn_status scan(const char *label, const float *src, int64_t n, double *max_abs, double *max_pos,
                      nn_error *err) {
  float m = 0, mp = 0;
  for (int64_t i = 0; i < n; i++) {
    float a = fabsf(src[i]);
    if (!(a <= 3.4028235e38f))
      return nn_fail(err, NN_EINVAL, "quantizer: %s: weight %lld is not finite", label,
                     (long long)i);
    if (a > m) m = a;
    if (src[i] > mp) mp = src[i];
  }
  *max_abs = m;
  *max_pos = mp;
  return NN_OK;
}

/* The per-tensor format: scale factor applied before rounding (mul = 2^f for pow2; for
 * maxabs the step s, divided by), integer range [qmin, qmax]. */
typedef struct fmt {
  double qmin, qmax;
  double mul;  /* pow2: 2^f */
  double step; /* pow2: 2^-f; maxabs: s */
  int int_bits, frac_bits;
  int zero;    /* all-zero tensor under maxabs (s = 0): output zeros */
} fmt;

static void make_fmt(const nn_quant_params *p, double max_abs, double max_pos, fmt *F) {
  memset(F, 0, sizeof *F);
  F->qmax = ldexp(1.0, p->bits - 1) - 1;
  if (p->scale == NN_QSCALE_MAXABS) {
    F->qmin = -F->qmax;
    F->step = max_abs / F->qmax;
    F->zero = max_abs == 0;
    return;
  }
  F->qmin = -ldexp(1.0, p->bits - 1);
  if (p->int_bits != NN_QUANT_INT_BITS_DYNAMIC) {
    F->int_bits = p->int_bits;
  } else if (max_abs > 0) {
    int e;
    const double m = frexp(max_abs, &e); /* max_abs = m 2^e, m in [0.5, 1): floor(log2 max_abs) = e - 1 */
    F->int_bits = e + 1;   /* floor(log2(max|w|)) + 2 */
    /* the fewest integer bits that hold the largest weight: -2^(e-1), the most negative code of
     * e bits, needs no more (a quantized tensor holds it; quantizing again must not add a bit) */
    if (m == 0.5 && max_pos < max_abs) F->int_bits = e;
  } else {
    F->int_bits = 1;       /* all zero: any format keeps zeros; report Q1.(n-1) */
  }
  F->frac_bits = p->bits - F->int_bits;
  F->mul = ldexp(1.0, F->frac_bits);
  F->step = ldexp(1.0, -F->frac_bits);
  /* max|w| >= 2^127 (i >= 129): the range's ends, -2^(n-1) 2^-f = -2^(i-1) and for n >= 26 also
   * (2^(n-1)-1) 2^-f, round to +-inf as float32. Narrow the codes to the largest whose value
   * is a finite float32, so such a weight saturates there; any smaller max|w| keeps its range. */
  double lim = floor(FLT_MAX / F->step);
  if (-F->qmin > lim) F->qmin = -lim;
  if (F->qmax > lim) F->qmax = lim;
}

static void stats_init(nn_quant_stats *s, const fmt *F, int64_t n, double max_abs) {
  memset(s, 0, sizeof *s);
  s->count = n;
  s->max_abs = max_abs;
  s->step = F->step;
  s->int_bits = F->int_bits;
  s->frac_bits = F->frac_bits;
}

/* round(x), half away from zero, without libm's call and without a branch on the fraction
 * (half the weights go either way: a branch there mispredicted so often that the loop was
 * several times slower than with libm's): for |x| < 2^52 the truncation is an integer conversion (exact), x - t
 * the exact fraction, the step +-1 a comparison's 0 or 1, and the sign of x put back on the
 * result (which never has the other sign), so that -0.3 gives -0.0 as round() does. Larger
 * doubles, infinities and NaN are returned as they are, as round() returns them. */
static inline double round_away(double x) {
  if (!(fabs(x) < 4503599627370496.0)) return x;
  const double t = (double)(int64_t)x, f = x - t;
  return copysign(t + (double)((f >= 0.5) - (f <= -0.5)), x);
}

/* ---- fast path: one loop per rounding mode, the format hoisted ---- */
#define QLOOP(ROUND)                                                                       \
  for (int64_t i = 0; i < n; i++) {                                                        \
    double w = src[i];                                                                     \
    double x = maxabs ? w / F.step : w * F.mul;                                            \
    double v = ROUND;                                                                      \
    if (v > F.qmax) {                                                                      \
      v = F.qmax;                                                                          \
      sat++;                                                                               \
    } else if (v < F.qmin) {                                                               \
      v = F.qmin;                                                                          \
      sat++;                                                                               \
    }                                                                                      \
    float q = (float)(v * F.step); /* pow2: v / 2^f exactly */                                   \
    double d = (double)q - w;                                                              \
    se += d * d;                                                                           \
    dst[i] = q;                                                                            \
  }

/* Without stats: the same values, no error sum or saturation count (the search quantizes every
 * candidate's weights and reads neither) */
#define QLOOP_VALUES(ROUND)                                                                \
  for (int64_t i = done; i < n; i++) {                                                     \
    double w = src[i];                                                                     \
    double x = maxabs ? w / F.step : w * F.mul;                                            \
    double v = ROUND;                                                                      \
    v = v > F.qmax ? F.qmax : v < F.qmin ? F.qmin : v;                                     \
    dst[i] = (float)(v * F.step);                                                          \
  }

/* QLOOP_VALUES(round_away(x)) eight weights at a time with AVX-512F, the same operations on each
 * (the product or quotient in double, the truncation by roundscale instead of the integer
 * conversion, both exact; the comparisons, the sign, the clamp as blends on the same
 * conditions; the product by the step rounded to float): the same values. Returns how many
 * weights it did (a multiple of 8; QLOOP_VALUES does the rest). */
#if NN_SIMD_X86
#define QUANT_AVX512 1
__attribute__((target("avx512f"))) static int64_t nearest_values_avx512(const float *src, float *dst, int64_t n,
                                                                         const fmt *F, int maxabs) {
  const __m512d mul = _mm512_set1_pd(F->mul), step = _mm512_set1_pd(F->step), qmin = _mm512_set1_pd(F->qmin),
                qmax = _mm512_set1_pd(F->qmax), big = _mm512_set1_pd(4503599627370496.0),
                half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
  const __m512i sign = _mm512_set1_epi64((long long)0x8000000000000000ULL);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d w = _mm512_cvtps_pd(_mm256_loadu_ps(src + i));
    const __m512d x = maxabs ? _mm512_div_pd(w, step) : _mm512_mul_pd(w, mul);
    const __mmask8 small = _mm512_cmp_pd_mask(_mm512_abs_pd(x), big, _CMP_LT_OQ);
    const __m512d xs = _mm512_mask_blend_pd(small, zero, x);
    const __m512d t = _mm512_roundscale_pd(xs, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512d f = _mm512_sub_pd(xs, t);
    __m512d r = _mm512_mask_add_pd(t, _mm512_cmp_pd_mask(f, half, _CMP_GE_OQ), t, one);
    r = _mm512_mask_sub_pd(r, _mm512_cmp_pd_mask(f, _mm512_sub_pd(zero, half), _CMP_LE_OQ), r, one);
    r = _mm512_castsi512_pd(_mm512_or_si512(_mm512_andnot_si512(sign, _mm512_castpd_si512(r)),
                                            _mm512_and_si512(sign, _mm512_castpd_si512(x))));
    __m512d v = _mm512_mask_blend_pd(small, x, r);
    v = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, qmax, _CMP_GT_OQ), v, qmax);
    v = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, qmin, _CMP_LT_OQ), v, qmin);
    _mm256_storeu_ps(dst + i, _mm512_cvtpd_ps(_mm512_mul_pd(v, step)));
  }
  return i;
}
#else
#define QUANT_AVX512 0
#endif

nn_status nn_quant_array(const nn_quant_params *p, const char *label, const float *src, float *dst,
                         int64_t n, nn_quant_stats *stats, nn_error *err) {
  double max_abs = 0, max_pos = 0, se = 0;
  int64_t sat = 0;
  fmt F;
  nn_status st;
  if ((st = nn_quant_params_check(p, err)) != NN_OK) return st;
  if (!label) label = "tensor";
  if (n < 0 || (n > 0 && (!src || !dst)))
    return nn_fail(err, NN_EINVAL, "quantizer: %s: bad array", label);
  if ((st = scan(label, src, n, &max_abs, &max_pos, err)) != NN_OK) return st;
  make_fmt(p, max_abs, max_pos, &F);
  const int maxabs = p->scale == NN_QSCALE_MAXABS;
  if (F.zero) {
    for (int64_t i = 0; i < n; i++) dst[i] = 0; /* all weights are +-0 */
  } else {
    nn_rng seed = nn_rng_seed(p->seed), rs = nn_rng_split(&seed, label);
    if (stats)
      switch (p->rounding) {
      case NN_ROUND_NEAREST: QLOOP(round_away(x)) break;
      case NN_ROUND_FLOOR: QLOOP(floor(x)) break;
      case NN_ROUND_ZERO: QLOOP(trunc(x)) break;
      case NN_ROUND_STOCHASTIC: QLOOP(floor(x + nn_rng_uniform(&rs))) break;
      }
    else {
      int64_t done = 0; /* weights the vector loop did */
      switch (p->rounding) {
      case NN_ROUND_NEAREST:
#if QUANT_AVX512
        if (__builtin_cpu_supports("avx512f")) done = nearest_values_avx512(src, dst, n, &F, maxabs);
#endif
        QLOOP_VALUES(round_away(x))
        break;
      case NN_ROUND_FLOOR: QLOOP_VALUES(floor(x)) break;
      case NN_ROUND_ZERO: QLOOP_VALUES(trunc(x)) break;
      case NN_ROUND_STOCHASTIC: QLOOP_VALUES(floor(x + nn_rng_uniform(&rs))) break;
      }
    }
  }
  if (stats) {
    stats_init(stats, &F, n, max_abs);
    stats->saturated = sat;
    stats->mse = n ? se / (double)n : 0;
  }
  return NN_OK;
}

/* ---- naive twin: the docs/quantizer.md formula per element, no hoisting ---- */
static double round_ref(nn_rounding mode, double x, nn_rng *r) {
  switch (mode) {
  case NN_ROUND_NEAREST: { /* half away from zero, spelled out */
    double a = fabs(x), fl = floor(a);
    double v = (a - fl >= 0.5) ? fl + 1 : fl;
    return x < 0 ? -v : v;
  }
  case NN_ROUND_FLOOR: return floor(x);
  case NN_ROUND_ZERO: return x < 0 ? -floor(-x) : floor(x);
  case NN_ROUND_STOCHASTIC: return floor(x + nn_rng_uniform(r));
  }
  return x;
}

nn_status nn_quant_array_ref(const nn_quant_params *p, const char *label, const float *src,
                             float *dst, int64_t n, nn_quant_stats *stats, nn_error *err) {
  nn_status st;
  double max_abs = 0, max_pos = 0, se = 0;
  int64_t sat = 0;
  fmt F;
  if ((st = nn_quant_params_check(p, err)) != NN_OK) return st;
  if (!label) label = "tensor";
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(src[i]))
      return nn_fail(err, NN_EINVAL, "quantizer: %s: weight %lld is not finite", label,
                     (long long)i);
    if (fabs((double)src[i]) > max_abs) max_abs = fabs((double)src[i]);
    if ((double)src[i] > max_pos) max_pos = src[i];
  }
  make_fmt(p, max_abs, max_pos, &F);
  nn_rng seed = nn_rng_seed(p->seed), r = nn_rng_split(&seed, label);
  double lo = p->scale == NN_QSCALE_MAXABS ? -(pow(2, p->bits - 1) - 1) : -pow(2, p->bits - 1);
  double hi = pow(2, p->bits - 1) - 1;
  if (p->scale == NN_QSCALE_POW2) { /* codes whose value is a finite float32 (make_fmt) */
    double lim = floor(FLT_MAX / pow(2, -F.frac_bits));
    lo = lo < -lim ? -lim : lo;
    hi = hi > lim ? lim : hi;
  }
  for (int64_t i = 0; i < n; i++) {
    double w = src[i], q;
    if (p->scale == NN_QSCALE_MAXABS && max_abs == 0) {
      q = 0;
    } else {
      double x = p->scale == NN_QSCALE_MAXABS ? w / (max_abs / hi) : w * pow(2, F.frac_bits);
      double v = round_ref(p->rounding, x, &r);
      if (v < lo || v > hi) sat++;
      v = v < lo ? lo : v > hi ? hi : v;
      q = p->scale == NN_QSCALE_MAXABS ? v * (max_abs / hi) : v / pow(2, F.frac_bits);
    }
    dst[i] = (float)q;
    se += ((double)dst[i] - w) * ((double)dst[i] - w);
  }
  if (stats) {
    stats_init(stats, &F, n, max_abs);
    stats->saturated = sat;
    stats->mse = n ? se / (double)n : 0;
  }
  return NN_OK;
}

nn_status nn_quant_tensor(const nn_quant_params *p, const char *label, nn_tensor *t,
                          nn_quant_stats *stats, nn_error *err) {
  if (!t) return nn_fail(err, NN_EINVAL, "quantizer: tensor expected");
  return nn_quant_array(p, label, t->data, t->data, t->numel, stats, err);
}
