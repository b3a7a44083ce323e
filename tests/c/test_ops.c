/* test_ops.c: layer kernels (docs/model.md) against their naive *_ref twins and hand-computed values. */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_rng.h"
#include "nn_ops.h"
#include "nn_test.h"

#define TOL_CONV 1e-4 /* float sgemm vs double reference, |values| ~ 1..10 */
#define TOL_F 1e-6

static float *randv(int64_t n, nn_rng *r, float lo, float hi) {
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * nn_rng_uniformf(r);
  return p;
}

static double maxdiff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (!(d <= m)) m = d; /* NaN propagates as a failure */
  }
  return m;
}

static void conv_vs_ref(void) {
  static const nn_conv_geom G[] = {
      {1, 1, 4, 4, 1, 3, 1, 1},   {2, 3, 8, 8, 4, 3, 1, 1},  {3, 5, 7, 9, 6, 1, 1, 0},
      {2, 4, 9, 9, 5, 3, 2, 1},   {2, 2, 6, 6, 3, 5, 1, 2},  {2, 3, 10, 10, 2, 7, 1, 3},
      {64, 2, 12, 12, 3, 3, 1, 1}, /* several chunks? (no: small) */
      {5, 16, 16, 16, 8, 3, 1, 1}, {3, 3, 32, 32, 16, 3, 1, 1}, {1, 3, 5, 5, 2, 3, 2, 0},
  };
  nn_rng r = nn_rng_seed(7);
  for (size_t i = 0; i < sizeof G / sizeof *G; i++) {
    const nn_conv_geom *g = &G[i];
    int64_t nx = g->n * g->c * g->h * g->w, nw = g->o * g->c * g->k * g->k;
    int64_t ny = g->n * g->o * nn_conv_ho(g) * nn_conv_wo(g);
    float *x = randv(nx, &r, -1, 1), *w = randv(nw, &r, -1, 1);
    float *y = randv(ny, &r, 5, 6), *yr = randv(ny, &r, 7, 8);
    nn_error err;
    CHECK(nn_conv2d(g, x, w, y, &err) == NN_OK);
    nn_conv2d_ref(g, x, w, yr);
    CHECK_NEAR(maxdiff(y, yr, ny), 0, TOL_CONV);
    free(x), free(w), free(y), free(yr);
  }
}

/* a big batch forces several im2col chunks (CONV_CHUNK_FLOATS) */
static void conv_chunks(void) {
  nn_conv_geom g = {40, 16, 32, 32, 16, 3, 1, 1};
  nn_rng r = nn_rng_seed(8);
  int64_t nx = g.n * g.c * g.h * g.w, nw = g.o * g.c * 9, ny = g.n * g.o * 32 * 32;
  float *x = randv(nx, &r, -1, 1), *w = randv(nw, &r, -1, 1), *y = randv(ny, &r, 0, 1),
        *yr = randv(ny, &r, 0, 1);
  nn_error err;
  CHECK(nn_conv2d(&g, x, w, y, &err) == NN_OK);
  nn_conv2d_ref(&g, x, w, yr);
  CHECK_NEAR(maxdiff(y, yr, ny), 0, TOL_CONV);
  free(x), free(w), free(y), free(yr);
}

/* hand value: 1x1x3x3 input 1..9, 3x3 kernel of ones, pad 1: centre = 45, corner = 1+2+4+5 */
static void conv_hand(void) {
  nn_conv_geom g = {1, 1, 3, 3, 1, 3, 1, 1};
  float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9], y[9];
  for (int i = 0; i < 9; i++) w[i] = 1;
  nn_error err;
  CHECK(nn_conv2d(&g, x, w, y, &err) == NN_OK);
  CHECK_NEAR(y[4], 45, TOL_F);
  CHECK_NEAR(y[0], 12, TOL_F);
  CHECK_NEAR(y[8], 5 + 6 + 8 + 9, TOL_F);
  CHECK_NEAR(y[1], 1 + 2 + 3 + 4 + 5 + 6, TOL_F);
  CHECK(nn_conv_out(32, 3, 2, 1) == 16 && nn_conv_out(28, 7, 1, 3) == 28);
}

/* <im2col(x), c> == <x, col2im(c)> (col2im is the adjoint used by the conv backward) */
static void im2col_adjoint(void) {
  nn_conv_geom g = {1, 3, 7, 6, 1, 3, 2, 1};
  nn_rng r = nn_rng_seed(9);
  int64_t K = g.c * 9, P = nn_conv_ho(&g) * nn_conv_wo(&g), nx = g.c * g.h * g.w;
  float *x = randv(nx, &r, -1, 1), *c = randv(K * P, &r, -1, 1), *cols = randv(K * P, &r, 0, 1);
  float *dx = calloc((size_t)nx, sizeof *dx);
  nn_im2col(&g, x, cols, P);
  nn_col2im(&g, c, P, dx);
  double a = 0, b = 0;
  for (int64_t i = 0; i < K * P; i++) a += (double)cols[i] * c[i];
  for (int64_t i = 0; i < nx; i++) b += (double)x[i] * dx[i];
  CHECK_NEAR(a, b, 1e-4);
  free(x), free(c), free(cols), free(dx);
}

static void spikes_pack(void) {
  float s[2 * 70];
  uint64_t bits[4];
  memset(s, 0, sizeof s);
  s[0] = 1, s[63] = 1, s[64] = 1, s[69] = 1; /* sample 0 */
  s[70 + 5] = 1;                             /* sample 1 */
  memset(bits, 0xff, sizeof bits);
  CHECK(nn_spike_words(70) == 2 && nn_spike_words(64) == 1 && nn_spike_words(65) == 2);
  CHECK(nn_spikes_pack(s, 2, 70, bits) == 5);
  CHECK(bits[0] == (1ull | (1ull << 63)));
  CHECK(bits[1] == (1ull | (1ull << 5))); /* tail bits 6..63 are 0 */
  CHECK(bits[2] == (1ull << 5) && bits[3] == 0);
}

/* event-driven conv == dense conv on 0/1 inputs at several firing rates */
static void events_vs_dense(void) {
  static const nn_conv_geom G[] = {
      {3, 8, 10, 10, 16, 3, 1, 1}, {2, 5, 9, 9, 7, 1, 1, 0}, {2, 4, 9, 8, 6, 3, 2, 1},
      {2, 3, 8, 8, 4, 5, 1, 2},
  };
  static const double rates[] = {0.0, 0.1, 0.5, 1.0};
  nn_rng r = nn_rng_seed(10);
  for (size_t gi = 0; gi < sizeof G / sizeof *G; gi++)
    for (size_t ri = 0; ri < 4; ri++) {
      const nn_conv_geom *g = &G[gi];
      int64_t neurons = g->c * g->h * g->w, nx = g->n * neurons, nw = g->o * g->c * g->k * g->k;
      int64_t ny = g->n * g->o * nn_conv_ho(g) * nn_conv_wo(g);
      float *x = malloc((size_t)nx * sizeof *x), *w = randv(nw, &r, -1, 1);
      float *wcl = malloc((size_t)nw * sizeof *wcl);
      float *y = randv(ny, &r, 3, 4), *yd = randv(ny, &r, 5, 6), *ya = randv(ny, &r, 5, 6);
      uint64_t *bits = malloc((size_t)(g->n * nn_spike_words(neurons)) * sizeof *bits);
      int64_t cnt = 0;
      for (int64_t i = 0; i < nx; i++) cnt += (x[i] = nn_rng_uniform(&r) < rates[ri] ? 1.0f : 0.0f) != 0;
      nn_error err;
      CHECK(nn_spikes_pack(x, g->n, neurons, bits) == cnt);
      nn_conv2d_weight_cl(g, w, wcl);
      CHECK(nn_conv2d_events(g, bits, wcl, y, &err) == NN_OK);
      CHECK(nn_conv2d(g, x, w, yd, &err) == NN_OK);
      CHECK_NEAR(maxdiff(y, yd, ny), 0, TOL_CONV);
      CHECK(nn_conv2d_spikes(g, x, bits, cnt, w, NULL, ya, &err) == NN_OK);
      CHECK_NEAR(maxdiff(ya, yd, ny), 0, TOL_CONV);
      if (rates[ri] == 0.0) CHECK(maxdiff(y, yd, ny) == 0);
      free(x), free(w), free(wcl), free(y), free(yd), free(ya), free(bits);
    }
}

/* BN on one channel [1 2 3 4]: mean 2.5, biased var 1.25, unbiased 5/3 */
static void bn_hand(void) {
  float x[4] = {1, 2, 3, 4}, y[4], rm = 0, rv = 1, sm, si;
  nn_bn_forward(x, 2, 1, 2, NULL, NULL, &rm, &rv, 1, NN_BN_MOMENTUM, NN_BN_EPS, y, &sm, &si);
  double inv = 1 / sqrt(1.25 + 1e-5);
  CHECK_NEAR(y[0], -1.5 * inv, TOL_F);
  CHECK_NEAR(y[3], 1.5 * inv, TOL_F);
  CHECK_NEAR(rm, 0.25, TOL_F);
  CHECK_NEAR(rv, 0.9 + 0.1 * 5.0 / 3.0, TOL_F);
  CHECK_NEAR(sm, 2.5, TOL_F);
  CHECK_NEAR(si, inv, TOL_F);
  /* eval mode: running stats, gamma/beta */
  float g = 2, b = 1, m = 1, v = 4;
  nn_bn_forward(x, 1, 1, 4, &g, &b, &m, &v, 0, NN_BN_MOMENTUM, NN_BN_EPS, y, NULL, NULL);
  CHECK_NEAR(y[2], (3 - 1) / sqrt(4 + 1e-5) * 2 + 1, TOL_F);
  CHECK(m == 1 && v == 4); /* eval leaves running stats alone */
}

static void bn_vs_ref(void) {
  nn_rng r = nn_rng_seed(11);
  int64_t n = 3, c = 5, hw = 17, nx = n * c * hw;
  float *x = randv(nx, &r, -2, 3), *g = randv(c, &r, 0.5f, 2), *b = randv(c, &r, -1, 1);
  float *y = malloc(nx * sizeof *y), *yr = malloc(nx * sizeof *yr);
  float rm[5] = {0}, rv[5] = {1, 1, 1, 1, 1}, rm2[5] = {0}, rv2[5] = {1, 1, 1, 1, 1};
  float sm[5], si[5], sm2[5], si2[5];
  for (int train = 1; train >= 0; train--) {
    nn_bn_forward(x, n, c, hw, g, b, rm, rv, train, 0.1, 1e-5, y, sm, si);
    nn_bn_forward_ref(x, n, c, hw, g, b, rm2, rv2, train, 0.1, 1e-5, yr, sm2, si2);
    CHECK_NEAR(maxdiff(y, yr, nx), 0, 1e-5);
    CHECK_NEAR(maxdiff(rm, rm2, c), 0, 1e-6);
    CHECK_NEAR(maxdiff(rv, rv2, c), 0, 1e-6);
    CHECK_NEAR(maxdiff(si, si2, c), 0, 1e-5);
  }
  /* in place */
  memcpy(yr, x, nx * sizeof *x);
  nn_bn_forward(yr, n, c, hw, g, b, NULL, NULL, 1, 0.1, 1e-5, yr, NULL, NULL);
  nn_bn_forward(x, n, c, hw, g, b, NULL, NULL, 1, 0.1, 1e-5, y, NULL, NULL);
  CHECK(maxdiff(y, yr, nx) == 0);
  free(x), free(g), free(b), free(y), free(yr);
}

/* LIF traces by hand, tau = 4/3 (1/tau = 0.75), threshold 1:
 * x = 1.2: v = 0.9, 0.9 + 0.3*0.75 = 1.125 -> spike, reset, 0.9, 1.125 -> spike, ...
 * x = 2: 1.5 -> spike every step; x = 0.5: 0.375, 0.46875, never fires;
 * x = 1: v = 1 - 0.25^t never reaches 1 in exact arithmetic, but in float32 step 13 rounds
 * 1 - 2^-24 + 0.75 * 2^-24 up to 1.0 and fires (as SpikingJelly in float32). */
static void lif_hand(void) {
  float v[4] = {0}, x[4] = {1.2f, 2.0f, 0.5f, 1.0f}, s[4], vp[4];
  const float tau = 4.0f / 3.0f;
  const float vp0[4] = {0.9f, 1.125f, 0.9f, 1.125f}, s0[4] = {0, 1, 0, 1};
  for (int t = 0; t < 4; t++) {
    int64_t f = nn_lif_step(v, x, 4, tau, 1.0f, s, vp);
    CHECK_NEAR(vp[0], vp0[t], 1e-6);
    CHECK(s[0] == s0[t]);
    CHECK(v[0] == (s0[t] ? 0.0f : vp[0])); /* hard reset to 0 */
    CHECK_NEAR(vp[1], 1.5, 1e-6);
    CHECK(s[1] == 1 && v[1] == 0);
    CHECK_NEAR(vp[2], 0.5 * (1 - pow(0.25, t + 1)), 1e-7); /* v_t = 0.5 (1 - 0.25^t) */
    CHECK(s[2] == 0 && s[3] == 0);
    CHECK(f == (int64_t)(s[0] + s[1]));
  }
  /* x = 1 alone */
  float v1 = 0, one = 1, s1 = 0;
  int first = -1;
  for (int t = 1; t <= 20 && first < 0; t++)
    if (nn_lif_step(&v1, &one, 1, tau, 1.0f, &s1, NULL)) first = t;
  CHECK(first == 13);
}

static void lif_vs_ref(void) {
  nn_rng r = nn_rng_seed(12);
  int64_t n = 1000;
  float *x = randv(n, &r, -0.5f, 2.5f), *v = calloc(n, sizeof *v), *vr = calloc(n, sizeof *vr);
  float *s = malloc(n * sizeof *s), *sr = malloc(n * sizeof *sr);
  float *p = malloc(n * sizeof *p), *pr = malloc(n * sizeof *pr);
  for (int t = 0; t < 6; t++) {
    int64_t a = nn_lif_step(v, x, n, 4.0f / 3.0f, 1.0f, s, p);
    int64_t b = nn_lif_step_ref(vr, x, n, 4.0f / 3.0f, 1.0f, sr, pr);
    CHECK(a == b);
    CHECK(memcmp(v, vr, n * sizeof *v) == 0 && memcmp(s, sr, n * sizeof *s) == 0);
    CHECK(memcmp(p, pr, n * sizeof *p) == 0);
  }
  free(x), free(v), free(vr), free(s), free(sr), free(p), free(pr);
}

static void pools(void) {
  float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, y[9];
  nn_avgpool3x3(ones, 1, 3, 3, y);
  CHECK_NEAR(y[4], 1, TOL_F);
  CHECK_NEAR(y[0], 4.0 / 9, TOL_F); /* padding counted in the divisor */
  CHECK_NEAR(y[1], 6.0 / 9, TOL_F);
  float x[16], y2[4];
  for (int i = 0; i < 16; i++) x[i] = (float)i;
  nn_avgpool(x, 1, 4, 4, 2, y2);
  CHECK_NEAR(y2[0], (0 + 1 + 4 + 5) / 4.0, TOL_F);
  CHECK_NEAR(y2[3], (10 + 11 + 14 + 15) / 4.0, TOL_F);
  float y3[1];
  nn_avgpool(x, 1, 4, 4, 3, y3); /* floor: one 3x3 block */
  CHECK_NEAR(y3[0], (0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10) / 9.0, TOL_F);
  nn_rng r = nn_rng_seed(13);
  float *a = randv(3 * 7 * 6, &r, -1, 1), b[3 * 7 * 6], c[3 * 7 * 6];
  nn_avgpool3x3(a, 3, 7, 6, b);
  nn_avgpool3x3_ref(a, 3, 7, 6, c);
  CHECK_NEAR(maxdiff(b, c, 3 * 7 * 6), 0, 1e-6);
  nn_avgpool(a, 3, 7, 6, 2, b);
  nn_avgpool_ref(a, 3, 7, 6, 2, c);
  CHECK_NEAR(maxdiff(b, c, 3 * 3 * 3), 0, 1e-6);
  free(a);
}

static void linear(void) {
  float x[2 * 3] = {1, 2, 3, -1, 0, 1}, w[2 * 3] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, b[2] = {10, 20};
  float y[4];
  nn_error err;
  CHECK(nn_linear(x, 2, 3, w, b, 2, y, &err) == NN_OK);
  CHECK_NEAR(y[0], 1 - 3 + 10, TOL_F);
  CHECK_NEAR(y[1], 3 + 20, TOL_F);
  CHECK_NEAR(y[2], -2 + 10, TOL_F);
  CHECK_NEAR(y[3], 0 + 20, TOL_F);
  nn_rng r = nn_rng_seed(14);
  float *X = randv(5 * 37, &r, -1, 1), *W = randv(11 * 37, &r, -1, 1), Y[55], Yr[55];
  CHECK(nn_linear(X, 5, 37, W, NULL, 11, Y, &err) == NN_OK);
  nn_linear_ref(X, 5, 37, W, NULL, 11, Yr);
  CHECK_NEAR(maxdiff(Y, Yr, 55), 0, 1e-5);
  free(X), free(W);
}

int main(void) {
  NN_TEST_RUN(conv_vs_ref);
  NN_TEST_RUN(conv_chunks);
  NN_TEST_RUN(conv_hand);
  NN_TEST_RUN(im2col_adjoint);
  NN_TEST_RUN(spikes_pack);
  NN_TEST_RUN(events_vs_dense);
  NN_TEST_RUN(bn_hand);
  NN_TEST_RUN(bn_vs_ref);
  NN_TEST_RUN(lif_hand);
  NN_TEST_RUN(lif_vs_ref);
  NN_TEST_RUN(pools);
  NN_TEST_RUN(linear);
  return NN_TEST_END();
}
