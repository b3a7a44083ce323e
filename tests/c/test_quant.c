/* test_quant.c: FxP-n quantizers (docs/quantizer.md) against hand-computed values and the naive twin. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_quant.h"
#include "nn_test.h"

static nn_quant_params P(int bits, nn_rounding r, nn_qscale s) {
  nn_quant_params p = nn_quant_params_default();
  p.bits = bits;
  p.rounding = r;
  p.scale = s;
  return p;
}

static void q_expect(nn_quant_params p, const float *w, const double *want, int n,
                     nn_quant_stats *st) {
  float out[16];
  nn_error err;
  CHECK(nn_quant_array(&p, "t", w, out, n, st, &err) == NN_OK);
  for (int i = 0; i < n; i++) CHECK_NEAR(out[i], want[i], 1e-7);
}

/* bits 4, dynamic pow2: max|w| = 0.7 -> i = floor(log2 0.7) + 2 = 1, f = 3, step 1/8,
 * integers -8..7. w*8 = 2.4, -5.6, 0.4, 2.5, -2.5, 0. */
static void pow2_hand_values(void) {
  const float w[6] = {0.3f, -0.7f, 0.05f, 0.3125f, -0.3125f, 0.0f};
  const double nearest[6] = {0.25, -0.75, 0, 0.375, -0.375, 0};
  const double flo[6] = {0.25, -0.75, 0, 0.25, -0.375, 0};
  const double zero[6] = {0.25, -0.625, 0, 0.25, -0.25, 0};
  nn_quant_stats st;
  q_expect(P(4, NN_ROUND_NEAREST, NN_QSCALE_POW2), w, nearest, 6, &st);
  CHECK(st.int_bits == 1 && st.frac_bits == 3 && st.step == 0.125 && st.saturated == 0);
  CHECK_NEAR(st.max_abs, 0.7f, 0);
  double se = 0;
  for (int i = 0; i < 6; i++) se += (nearest[i] - w[i]) * (nearest[i] - w[i]);
  CHECK_REL(st.mse, se / 6, 1e-12);
  q_expect(P(4, NN_ROUND_FLOOR, NN_QSCALE_POW2), w, flo, 6, &st);
  q_expect(P(4, NN_ROUND_ZERO, NN_QSCALE_POW2), w, zero, 6, &st);
  /* initialization-sized weights at FxP8: max 0.03 -> i = -6 + 2 = -4, f = 12;
   * 0.03 * 4096 = 122.88 -> 123 / 4096 */
  const float w2[2] = {0.03f, -0.001f};
  const double n2[2] = {123.0 / 4096, -4.0 / 4096};
  q_expect(P(8, NN_ROUND_NEAREST, NN_QSCALE_POW2), w2, n2, 2, &st);
  CHECK(st.int_bits == -4 && st.frac_bits == 12);
}

/* The largest magnitude a power of two reached only by a negative weight: FxP4 of {-1, 0.3}:
 * -1 = -8 / 8 is the most negative code of i = 1 bits (f = 3), not i = 2 (f = 2); +1 needs
 * i = 2 (7/8 would saturate it). And quantizing a quantized tensor changes nothing, for every
 * width, rounding and the fast and naive twins, on random tensors that reach the low end. */
static void pow2_idempotent(void) {
  nn_quant_stats st;
  const float w[2] = {-1.0f, 0.3f};
  const double want[2] = {-1.0, 0.25};
  q_expect(P(4, NN_ROUND_NEAREST, NN_QSCALE_POW2), w, want, 2, &st);
  CHECK(st.int_bits == 1 && st.frac_bits == 3 && st.saturated == 0);
  const float wp[2] = {1.0f, -0.3f};
  const double wantp[2] = {1.0, -0.25};
  q_expect(P(4, NN_ROUND_NEAREST, NN_QSCALE_POW2), wp, wantp, 2, &st);
  CHECK(st.int_bits == 2 && st.frac_bits == 2);
  const float both[2] = {1.0f, -1.0f};
  const double wantb[2] = {1.0, -1.0};
  q_expect(P(4, NN_ROUND_NEAREST, NN_QSCALE_POW2), both, wantb, 2, &st);
  CHECK(st.int_bits == 2);
  unsigned seed = 7;
  float a[64], b[64], c[64];
  nn_error err;
  int checked = 0, low_end = 0;
  for (int trial = 0; trial < 400; trial++) {
    const int bits = 2 + trial % 15;
    const nn_rounding r = (nn_rounding)(trial % 4);
    for (int i = 0; i < 64; i++) {
      seed = seed * 1103515245u + 12345u;
      a[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
    a[trial % 64] = -0.1f - 0.05f * (float)(trial % 3); /* a negative weight of the largest magnitude */
    for (int ref = 0; ref < 2; ref++) {
      nn_quant_params p = P(bits, r, NN_QSCALE_POW2);
      nn_status (*q)(const nn_quant_params *, const char *, const float *, float *, int64_t, nn_quant_stats *,
                     nn_error *) = ref ? nn_quant_array_ref : nn_quant_array;
      CHECK(q(&p, "t", a, b, 64, NULL, &err) == NN_OK);
      CHECK(q(&p, "t", b, c, 64, NULL, &err) == NN_OK);
      if (!ref) CHECK(memcmp(b, c, sizeof b) == 0); /* the same bits */
      for (int i = 0; ref && i < 64; i++) CHECK(b[i] == c[i]); /* the naive twin: -0 may come back as +0 */
      float mn = 0, mx = 0;
      for (int i = 0; i < 64; i++) mn = b[i] < mn ? b[i] : mn, mx = b[i] > mx ? b[i] : mx;
      low_end += -mn > mx && frexpf(-mn, &(int){0}) == 0.5f; /* the case the rule is for */
      checked++;
    }
  }
  CHECK(checked == 800 && low_end > 20);
}

/* bits 4, maxabs: max 0.875 -> s = 0.875 / 7 = 0.125; w/s = 7, -3.5, 1.5, 0.4, -7 */
static void maxabs_hand_values(void) {
  const float w[5] = {0.875f, -0.4375f, 0.1875f, 0.05f, -0.875f};
  const double nearest[5] = {0.875, -0.5, 0.25, 0, -0.875};
  const double flo[5] = {0.875, -0.5, 0.125, 0, -0.875};
  const double zero[5] = {0.875, -0.375, 0.125, 0, -0.875};
  nn_quant_stats st;
  q_expect(P(4, NN_ROUND_NEAREST, NN_QSCALE_MAXABS), w, nearest, 5, &st);
  CHECK(st.step == 0.125 && st.saturated == 0);
  q_expect(P(4, NN_ROUND_FLOOR, NN_QSCALE_MAXABS), w, flo, 5, &st);
  q_expect(P(4, NN_ROUND_ZERO, NN_QSCALE_MAXABS), w, zero, 5, &st);
  /* non-dyadic: bits 3 -> 3 levels a side, s = 1/3: 0.5*3 = 1.5 -> 2; -0.2*3 = -0.6 -> -1 */
  const float w3[3] = {1.0f, 0.5f, -0.2f};
  const double n3[3] = {1.0, 2.0 / 3, -1.0 / 3};
  q_expect(P(3, NN_ROUND_NEAREST, NN_QSCALE_MAXABS), w3, n3, 3, &st);
}

/* Range ends: dynamic max 0.99 at FxP4 -> f = 3, 0.99*8 = 7.92 rounds to 8 > 7: clamped;
 * -7.92 -> -8 fits. Fixed Q1.3: 2.0 -> 16 -> 7, -3 -> -24 -> -8, both saturated. */
static void saturation(void) {
  nn_quant_stats st;
  const float w[2] = {0.99f, -0.99f};
  const double want[2] = {0.875, -1.0};
  q_expect(P(4, NN_ROUND_NEAREST, NN_QSCALE_POW2), w, want, 2, &st);
  CHECK(st.saturated == 1);
  const double wantf[2] = {0.875, -1.0}; /* floor: 7.92 -> 7, -7.92 -> -8 */
  q_expect(P(4, NN_ROUND_FLOOR, NN_QSCALE_POW2), w, wantf, 2, &st);
  CHECK(st.saturated == 0);
  nn_quant_params p = P(4, NN_ROUND_NEAREST, NN_QSCALE_POW2);
  p.int_bits = 1;
  const float w2[3] = {2.0f, -3.0f, 0.5f};
  const double want2[3] = {0.875, -1.0, 0.5};
  q_expect(p, w2, want2, 3, &st);
  CHECK(st.saturated == 2 && st.int_bits == 1 && st.frac_bits == 3);
  /* maxabs never saturates under nearest: the extremes map to +-(2^(n-1)-1) */
  const float w3[2] = {0.3f, -0.3f};
  const double want3[2] = {0.3f, -0.3f};
  q_expect(P(2, NN_ROUND_NEAREST, NN_QSCALE_MAXABS), w3, want3, 2, &st);
  CHECK(st.saturated == 0);
}

static void zeros_and_identity(void) {
  nn_error err;
  nn_quant_stats st;
  float z[4] = {0, 0, 0, 0}, o[4];
  for (int s = 0; s < 2; s++) {
    CHECK(nn_quant_array(&(nn_quant_params){8, NN_ROUND_NEAREST, (nn_qscale)s,
                                            NN_QUANT_INT_BITS_DYNAMIC, 1},
                         "z", z, o, 4, &st, &err) == NN_OK);
    CHECK(o[0] == 0 && o[3] == 0 && st.mse == 0 && st.saturated == 0);
  }
  /* bits = 32: |q - w| <= step/2 = 2^-(f+1), f = 32 - i */
  enum { N = 4096 };
  float *w = malloc(N * sizeof *w), *q = malloc(N * sizeof *q);
  nn_rng r = nn_rng_seed(7);
  for (int i = 0; i < N; i++) w[i] = (float)(0.05 * nn_rng_normal(&r));
  nn_quant_params p = P(32, NN_ROUND_NEAREST, NN_QSCALE_POW2);
  CHECK(nn_quant_array(&p, "w", w, q, N, &st, &err) == NN_OK);
  int same = 0;
  double worst = 0;
  for (int i = 0; i < N; i++) {
    same += q[i] == w[i];
    worst = fmax(worst, fabs((double)q[i] - w[i]));
  }
  CHECK(worst <= st.step / 2);
  CHECK(same >= N * 95 / 100); /* weights far below max|w| lose mantissa bits; 98.5 % exact */
  CHECK(st.mse < 1e-20);
  free(w);
  free(q);
}

/* Stochastic rounding is unbiased: 200000 copies of 0.3 at FxP4 (max 0.3 -> i = 0, f = 4,
 * 0.3*16 = 4.8: 5 with p = 0.8, 4 with 0.2). Per-draw error std = step*sqrt(p(1-p)) = 0.025,
 * so the mean error's std is 0.025/sqrt(200000) = 5.6e-5: we allow 6 sigma, 3.4e-4. */
static void stochastic_unbiased(void) {
  enum { N = 200000 };
  float *w = malloc(N * sizeof *w), *q = malloc(N * sizeof *q), *q2 = malloc(N * sizeof *q2);
  nn_error err;
  for (int i = 0; i < N; i++) w[i] = 0.3f;
  nn_quant_params p = P(4, NN_ROUND_STOCHASTIC, NN_QSCALE_POW2);
  CHECK(nn_quant_array(&p, "w", w, q, N, NULL, &err) == NN_OK);
  double sum = 0;
  int64_t fives = 0;
  for (int i = 0; i < N; i++) {
    sum += (double)q[i] - w[i];
    fives += q[i] == 0.3125f;
    CHECK(q[i] == 0.3125f || q[i] == 0.25f);
  }
  CHECK_NEAR(sum / N, 0, 6 * 0.025 / sqrt((double)N));
  CHECK_NEAR((double)fives / N, 0.8, 6 * 0.4 / sqrt((double)N));
  /* seeded: same seed and label -> same draws; another seed or label -> others */
  CHECK(nn_quant_array(&p, "w", w, q2, N, NULL, &err) == NN_OK);
  CHECK(memcmp(q, q2, N * sizeof *q) == 0);
  p.seed = 2;
  CHECK(nn_quant_array(&p, "w", w, q2, N, NULL, &err) == NN_OK);
  CHECK(memcmp(q, q2, N * sizeof *q) != 0);
  free(w);
  free(q);
  free(q2);
}

/* Fast loops == naive twin, bit for bit, over modes, scales and widths. */
static void fast_matches_ref(void) {
  enum { N = 3000 };
  float w[N], a[N], b[N];
  nn_rng r = nn_rng_seed(11);
  nn_error err;
  const int widths[] = {2, 3, 5, 8, 12, 16, 24, 31, 32};
  for (int i = 0; i < N; i++) w[i] = (float)(0.04 * nn_rng_normal(&r));
  w[5] = 0.0625f; /* exact halves at some widths */
  w[6] = -0.09375f;
  for (int s = 0; s < 2; s++)
    for (int m = 0; m < 4; m++)
      for (size_t k = 0; k < sizeof widths / sizeof *widths; k++)
        for (int ib = 0; ib < 2; ib++) {
          nn_quant_params p = P(widths[k], (nn_rounding)m, (nn_qscale)s);
          nn_quant_stats sa, sb;
          if (ib && s) continue;
          if (ib) p.int_bits = -2;
          CHECK(nn_quant_array(&p, "L", w, a, N, &sa, &err) == NN_OK);
          CHECK(nn_quant_array_ref(&p, "L", w, b, N, &sb, &err) == NN_OK);
          CHECK(memcmp(a, b, sizeof a) == 0);
          CHECK(sa.saturated == sb.saturated && sa.int_bits == sb.int_bits);
          CHECK_REL(sa.mse, sb.mse, 1e-12);
          /* without stats (the search's loop: no error sum, no count): the same values, also
           * for a count that leaves a tail after the 8-wide vector loop */
          CHECK(nn_quant_array(&p, "L", w, a, N, NULL, &err) == NN_OK);
          CHECK(memcmp(a, b, sizeof a) == 0);
          CHECK(nn_quant_array(&p, "L", w, a, N - 5, NULL, &err) == NN_OK);
          CHECK(nn_quant_array_ref(&p, "L", w, b, N - 5, &sb, &err) == NN_OK);
          CHECK(memcmp(a, b, (N - 5) * sizeof *a) == 0);
        }
}

/* Weights near FLT_MAX: max|w| >= 2^127 gives i = 129, whose range ends -2^(n-1) 2^-f = -2^128
 * (and for n >= 26 the top) are not float32. The codes are narrowed to the largest finite ones:
 * every output is finite, a weight beyond them saturates, fast and naive agree bit for bit, and
 * a max|w| just below 2^127 keeps the whole range (its -2^(n-1) code is reached unclamped). */
static void huge_weights_saturate_finite(void) {
  enum { N = 21 };
  float w[N], a[N], b[N];
  nn_error err;
  w[0] = FLT_MAX, w[1] = -FLT_MAX, w[2] = 3.4e38f, w[3] = -3.4e38f, w[4] = 1, w[5] = 0;
  w[6] = -1.7014118e38f; /* -2^127 */
  for (int i = 7; i < N; i++) w[i] = (float)ldexp(i % 2 ? -1.0 : 1.0, 100 + i);
  const int widths[] = {2, 8, 24, 25, 26, 32};
  for (int m = 0; m < 4; m++)
    for (size_t k = 0; k < sizeof widths / sizeof *widths; k++) {
      nn_quant_params p = P(widths[k], (nn_rounding)m, NN_QSCALE_POW2);
      nn_quant_stats sa, sb;
      CHECK(nn_quant_array(&p, "L", w, a, N, &sa, &err) == NN_OK);
      CHECK(nn_quant_array_ref(&p, "L", w, b, N, &sb, &err) == NN_OK);
      CHECK(memcmp(a, b, sizeof a) == 0);
      CHECK(sa.saturated == sb.saturated && sa.int_bits == 129 && isfinite(sa.mse));
      for (int i = 0; i < N; i++) CHECK(isfinite(a[i]));
      CHECK(a[1] < 0 && a[1] == -a[0]); /* symmetric: both ends at the largest finite code */
      CHECK(nn_quant_array(&p, "L", w, a, N, NULL, &err) == NN_OK); /* the loop without stats */
      CHECK(memcmp(a, b, sizeof a) == 0);
    }
  /* max|w| = 2^127 - 2^103 (< 2^127): i = 128, f = -120 at FxP8, codes -128..127 as before */
  const float v[2] = {-1.7014117e38f, 1.0f};
  float o[2];
  nn_quant_stats st;
  nn_quant_params p = P(8, NN_ROUND_NEAREST, NN_QSCALE_POW2);
  CHECK(nn_quant_array(&p, "t", v, o, 2, &st, &err) == NN_OK);
  CHECK(st.int_bits == 128 && st.saturated == 0);
  CHECK(o[0] == -(float)ldexp(1.0, 127)); /* code -128: -2^127, rounded from -(2^127 - 2^103) */
}

static void bad_input(void) {
  nn_error err;
  float w[2] = {1, NAN}, o[2];
  nn_quant_params p = P(40, NN_ROUND_NEAREST, NN_QSCALE_POW2);
  CHECK(nn_quant_array(&p, "t", w, o, 1, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "quantizer: bits=40 outside 2..32") == 0);
  p.bits = 8;
  CHECK(nn_quant_array(&p, "cellA.e01.conv", w, o, 2, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "quantizer: cellA.e01.conv: weight 1 is not finite") == 0);
  p.scale = NN_QSCALE_MAXABS;
  p.int_bits = 2;
  CHECK(nn_quant_params_check(&p, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "quantizer: int_bits needs scale \"pow2\"") == 0);
}

int main(void) {
  NN_TEST_RUN(pow2_hand_values);
  NN_TEST_RUN(pow2_idempotent);
  NN_TEST_RUN(maxabs_hand_values);
  NN_TEST_RUN(saturation);
  NN_TEST_RUN(zeros_and_identity);
  NN_TEST_RUN(stochastic_unbiased);
  NN_TEST_RUN(fast_matches_ref);
  NN_TEST_RUN(huge_weights_saturate_finite);
  NN_TEST_RUN(bad_input);
  return NN_TEST_END();
}
