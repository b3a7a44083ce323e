/* The Linear layer's arithmetic (engine/nn_linear.c): every output is the chain
 * acc = fmaf(x[j][i], w[o][i], acc) over i ascending from +0, then + b[o]. Checked byte for byte
 * against that loop written out here, on shapes that hit every register tile and tail, with
 * inputs for which a different order or an unfused multiply-add shows; pieces of any size give
 * the same bytes; and the values are near a double-precision sum. */
#include <stdlib.h>

#include "neuronas/nn_rng.h"
#include "nn_ops.h"
#include "nn_test.h"

static void chain(const float *x, int64_t n, int64_t in, const float *w, const float *b, int64_t out, float *y) {
  for (int64_t j = 0; j < n; j++)
    for (int64_t o = 0; o < out; o++) {
      float acc = 0.0f;
      for (int64_t i = 0; i < in; i++) acc = fmaf(x[j * in + i], w[o * in + i], acc);
      y[j * out + o] = b ? acc + b[o] : acc;
    }
}

/* weights of mixed magnitudes (1e-4 .. 1e3, both signs): sums in another order round differently */
static float *mixed(int64_t n, nn_rng *r) {
  float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++) {
    const double m = pow(10.0, -4.0 + 7.0 * nn_rng_uniform(r));
    v[i] = (float)((nn_rng_uniform(r) < 0.5 ? -m : m) * (1.0 + nn_rng_uniform(r)));
  }
  return v;
}

/* classifier-like inputs: pooled spikes (0, 1/4, 1/2, 3/4, 1; mostly 0) or plain values */
static float *inputs(int64_t n, nn_rng *r, int pooled) {
  float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++)
    v[i] = pooled ? (nn_rng_uniform(r) < 0.7 ? 0.0f : (float)(1 + (int)(nn_rng_uniform(r) * 4)) / 4.0f)
                  : (float)(nn_rng_uniform(r) * 2.0 - 1.0) * 3.1f;
  return v;
}

static void matches_chain(void) {
  static const int64_t N[] = {1, 5, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 130, 256};
  static const int64_t IN[] = {1, 3, 37, 511, 512, 513, 1100};
  static const int64_t OUT[] = {1, 2, 5, 6, 7, 11, 12, 13, 25, 100};
  nn_rng r = nn_rng_seed(31);
  nn_error err;
  int64_t cases = 0, differ = 0;
  for (size_t a = 0; a < sizeof N / sizeof *N; a++)
    for (size_t c = 0; c < sizeof IN / sizeof *IN; c++)
      for (size_t d = 0; d < sizeof OUT / sizeof *OUT; d += (a + c) % 3 ? 3 : 1) {
        const int64_t n = N[a], in = IN[c], out = OUT[d];
        float *x = inputs(n * in, &r, (int)((a + d) % 2)), *w = mixed(out * in, &r), *b = mixed(out, &r);
        float *y = malloc((size_t)(n * out) * sizeof *y), *want = malloc((size_t)(n * out) * sizeof *want);
        const float *bias = d % 2 ? b : NULL;
        chain(x, n, in, w, bias, out, want);
        CHECK(nn_linear(x, n, in, w, bias, out, y, &err) == NN_OK);
        CHECK(memcmp(y, want, (size_t)(n * out) * sizeof *y) == 0);
        /* the same from pieces of outputs of uneven sizes */
        memset(y, 0xff, (size_t)(n * out) * sizeof *y);
        float *xt = malloc((size_t)(nn_linear_xt_stride(n) * in) * sizeof *xt);
        for (int64_t i0 = 0, step = 1; i0 < in; i0 += step, step = step * 3 + 1) /* in pieces, too */
          nn_linear_xt(x, n, in, i0, i0 + step < in ? i0 + step : in, xt);
        for (int64_t o0 = 0, step = 1; o0 < out; o0 += step, step = step * 2 + 1)
          CHECK(nn_linear_outputs(xt, n, in, w, bias, out, o0, o0 + step < out ? o0 + step : out, y, &err) == NN_OK);
        CHECK(memcmp(y, want, (size_t)(n * out) * sizeof *y) == 0);
        /* the order is visible in these inputs: a sum in double rounds differently somewhere */
        float *ref = malloc((size_t)(n * out) * sizeof *ref);
        nn_linear_ref(x, n, in, w, bias, out, ref);
        for (int64_t j = 0; j < n; j++)
          for (int64_t o = 0; o < out; o++) {
            double mag = bias ? fabs(bias[o]) : 0; /* float rounding is relative to the terms' sizes */
            for (int64_t i = 0; i < in; i++) mag += fabs((double)x[j * in + i] * w[o * in + i]);
            CHECK_NEAR(y[j * out + o], ref[j * out + o], 1e-5 * mag + 1e-30);
            differ += y[j * out + o] != ref[j * out + o];
          }
        cases += n * out;
        free(x), free(w), free(b), free(y), free(want), free(xt), free(ref);
      }
  CHECK(differ > cases / 100); /* the comparison above is not between order-free sums */
}

static void hand(void) {
  /* 1*1 + 2*0 + 3*(-1) = -2, + 10; 0.5 * (-1 + 0 + 1) = 0, + 20 */
  float x[2 * 3] = {1, 2, 3, -1, 0, 1}, w[2 * 3] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, b[2] = {10, 20}, y[4];
  nn_error err;
  CHECK(nn_linear(x, 2, 3, w, b, 2, y, &err) == NN_OK);
  CHECK(y[0] == 8 && y[1] == 23 && y[2] == 8 && y[3] == 20);
  /* one rounding per term, in ascending order: with a = 1 + 2^-12, a*a = 1 + 2^-11 + 2^-24 rounds
   * to r = 1 + 2^-11, and fma(a, -a, r) = r - a*a = -2^-24 exactly; an unfused multiply and add
   * gives 0, the other order +2^-24 */
  const float a = 1.0f + ldexpf(1.0f, -12);
  float x2[2] = {a, a}, w2[2] = {a, -a}, y2;
  CHECK(nn_linear(x2, 1, 2, w2, NULL, 1, &y2, &err) == NN_OK);
  CHECK(y2 == -ldexpf(1.0f, -24));
  /* inputs 0 and empty batches */
  CHECK(nn_linear(x, 0, 3, w, b, 2, y, &err) == NN_OK);
}

/* every kernel level this CPU has gives the chain's bytes (the plain chain everywhere) */
static void levels(void) {
  const int top = nn_linear_level();
  CHECK(top >= 0 && top <= 2);
  for (int level = top - 1; level >= 0; level--) {
    nn_linear_set_level(level);
    CHECK(nn_linear_level() == level);
    hand();
    matches_chain();
  }
  nn_linear_set_level(2);
  CHECK(nn_linear_level() == top);
}

int main(void) {
  NN_TEST_RUN(hand);
  NN_TEST_RUN(matches_chain);
  NN_TEST_RUN(levels);
  return NN_TEST_END();
}
