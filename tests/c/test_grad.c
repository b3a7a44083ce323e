/* test_grad.c: training kernels (docs/model.md; docs/training.md): fast kernels against their naive
 * twins, backward passes against central finite differences, hand-computed values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_rng.h"
#include "nn_grad_impl.h"
#include "nn_test.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Tolerances. Kernels run in float32, so finite differences use a step of FD_EPS on O(1)
 * values and are compared relatively with FD_REL (plus FD_ABS for near-zero gradients). */
#define FD_EPS 1e-2
#define FD_REL 2e-2
#define FD_ABS 2e-3
#define REF_TOL 1e-4 /* fast kernel vs naive twin, absolute, on O(1) values */

static void fill(float *p, int64_t n, nn_rng *r, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * nn_rng_uniform(r));
}
static double dot(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}
static double maxdiff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}
#define CHECK_GRAD(an, fd) CHECK(fabs((an) - (fd)) <= FD_ABS + FD_REL * fabs(fd))

/* ---- conv2d ---- */
static double conv_loss(const nn_conv_geom *g, const float *x, const float *w, const float *r) {
  int64_t ny = g->n * g->o * nn_conv_ho(g) * nn_conv_wo(g);
  float *y = malloc((size_t)ny * sizeof *y);
  nn_conv2d_ref(g, x, w, y);
  double l = dot(y, r, ny);
  free(y);
  return l;
}

static void conv_case(int64_t n, int64_t c, int64_t h, int64_t f, int64_t k, int64_t s, int64_t p) {
  nn_rng r = nn_rng_seed(7 + (uint64_t)(k * 10 + s));
  nn_conv_geom g = {n, c, h, h + 1, f, k, s, p}; /* non-square on purpose */
  int64_t nx = n * c * g.h * g.w, nw = f * c * k * k, ny = n * f * nn_conv_ho(&g) * nn_conv_wo(&g);
  float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *y = malloc(ny * sizeof *y),
        *yr = malloc(ny * sizeof *y), *dy = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *x),
        *dxr = malloc(nx * sizeof *x), *dw = calloc(nw, sizeof *w), *dwr = malloc(nw * sizeof *w);
  nn_ws ws = {0};
  nn_error err;
  fill(x, nx, &r, -1, 1);
  fill(w, nw, &r, -1, 1);
  fill(dy, ny, &r, -1, 1);
  CHECK(nn_conv2d(&g, x, w, y, &err) == NN_OK);
  nn_conv2d_ref(&g, x, w, yr);
  CHECK_NEAR(maxdiff(y, yr, ny), 0, REF_TOL);
  CHECK(nn_conv2d_bwd(&g, x, w, dy, dx, 0, dw, &ws, &err) == NN_OK);
  nn_conv2d_bwd_ref(&g, x, w, dy, dxr, dwr);
  CHECK_NEAR(maxdiff(dx, dxr, nx), 0, REF_TOL);
  CHECK_NEAR(maxdiff(dw, dwr, nw), 0, REF_TOL);
  /* accumulate mode adds */
  CHECK(nn_conv2d_bwd(&g, x, w, dy, dx, 1, dw, &ws, &err) == NN_OK);
  CHECK_NEAR(dx[nx / 2], 2 * dxr[nx / 2], REF_TOL);
  CHECK_NEAR(dw[nw / 3], 2 * dwr[nw / 3], REF_TOL);
  /* finite differences on a spread of entries */
  for (int64_t i = 0; i < nx; i += nx / 7 + 1) {
    float o = x[i];
    x[i] = o + (float)FD_EPS;
    double lp = conv_loss(&g, x, w, dy);
    x[i] = o - (float)FD_EPS;
    double lm = conv_loss(&g, x, w, dy);
    x[i] = o;
    CHECK_GRAD(dxr[i], (lp - lm) / (2 * FD_EPS));
  }
  for (int64_t i = 0; i < nw; i += nw / 7 + 1) {
    float o = w[i];
    w[i] = o + (float)FD_EPS;
    double lp = conv_loss(&g, x, w, dy);
    w[i] = o - (float)FD_EPS;
    double lm = conv_loss(&g, x, w, dy);
    w[i] = o;
    CHECK_GRAD(dwr[i], (lp - lm) / (2 * FD_EPS));
  }
  nn_ws_free(&ws);
  free(x), free(w), free(y), free(yr), free(dy), free(dx), free(dxr), free(dw), free(dwr);
}

static void conv2d_forward_backward(void) {
  conv_case(2, 3, 6, 4, 3, 1, 1);
  conv_case(2, 3, 5, 2, 1, 1, 0);
  conv_case(1, 2, 7, 3, 3, 2, 1);
  conv_case(2, 2, 6, 2, 5, 1, 2);
  /* hand value: 1 channel 3x3, 3x3 kernel all ones, pad 1, dy all ones: dx counts the
   * windows covering each pixel (centre 9, corner 4), dw sums x over each tap's window */
  nn_conv_geom g = {1, 1, 3, 3, 1, 3, 1, 1};
  float x[9], w[9], dy[9], dx[9], dw[9] = {0};
  nn_ws ws = {0};
  nn_error err;
  for (int i = 0; i < 9; i++) x[i] = w[i] = dy[i] = 1;
  CHECK(nn_conv2d_bwd(&g, x, w, dy, dx, 0, dw, &ws, &err) == NN_OK);
  CHECK(dx[4] == 9 && dx[0] == 4 && dx[1] == 6);
  CHECK(dw[4] == 9 && dw[0] == 4 && dw[1] == 6);
  nn_ws_free(&ws);
}

/* ---- BatchNorm2d ---- */
static double bn_loss(int64_t n, int64_t c, int64_t hw, const float *x, const float *g,
                      const float *b, const float *r) {
  int64_t m = n * c * hw;
  float *y = malloc(m * sizeof *y), mean[8], is[8];
  nn_bn_forward(x, n, c, hw, g, b, NULL, NULL, 1, NN_BN_MOMENTUM, NN_BN_EPS, y, mean, is);
  double l = dot(y, r, m);
  free(y);
  return l;
}

static void batchnorm_train_backward(void) {
  const int64_t n = 3, c = 2, hw = 5, m = n * c * hw;
  nn_rng r = nn_rng_seed(11);
  float x[30], dy[30], dx[30], dxr[30], y[30], g[2] = {1.5f, -0.7f}, b[2] = {0.2f, 0.1f};
  float mean[2], is[2], dg[2] = {0, 0}, db[2] = {0, 0}, dgr[2], dbr[2];
  float rm[2] = {0, 0}, rv[2] = {1, 1};
  fill(x, m, &r, -2, 2);
  fill(dy, m, &r, -1, 1);
  nn_bn_forward(x, n, c, hw, g, b, rm, rv, 1, NN_BN_MOMENTUM, NN_BN_EPS, y, mean, is);
  /* normalised output has zero mean and (biased) unit variance per channel, before affine */
  double s = 0, ss = 0, mu = 0, var = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < hw; j++) {
      double v = (y[(i * c + 1) * hw + j] - b[1]) / g[1];
      s += v, ss += v * v;
      mu += x[(i * c + 1) * hw + j];
    }
  mu /= n * hw;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < hw; j++) var += pow(x[(i * c + 1) * hw + j] - mu, 2);
  CHECK_NEAR(s / (n * hw), 0, 1e-5);
  CHECK_NEAR(ss / (n * hw), 1, 1e-3); /* eps 1e-5 shrinks it slightly */
  /* running stats: momentum 0.1, unbiased variance */
  CHECK_NEAR(rm[1], 0.1 * mu, 1e-6);
  CHECK_NEAR(rv[1], 0.9 + 0.1 * var / (n * hw - 1), 1e-5);
  nn_bn2d_bwd(n, c, hw, x, g, mean, is, dy, dx, 0, dg, db);
  nn_bn2d_bwd_ref(n, c, hw, x, g, dy, dxr, dgr, dbr);
  CHECK_NEAR(maxdiff(dx, dxr, m), 0, REF_TOL);
  CHECK_NEAR(maxdiff(dg, dgr, 2), 0, REF_TOL);
  CHECK_NEAR(maxdiff(db, dbr, 2), 0, REF_TOL);
  for (int64_t i = 0; i < m; i += 3) {
    float o = x[i];
    x[i] = o + (float)FD_EPS;
    double lp = bn_loss(n, c, hw, x, g, b, dy);
    x[i] = o - (float)FD_EPS;
    double lm = bn_loss(n, c, hw, x, g, b, dy);
    x[i] = o;
    CHECK_GRAD(dx[i], (lp - lm) / (2 * FD_EPS));
  }
  for (int ch = 0; ch < 2; ch++) {
    float o = g[ch];
    g[ch] = o + (float)FD_EPS;
    double lp = bn_loss(n, c, hw, x, g, b, dy);
    g[ch] = o - (float)FD_EPS;
    double lm = bn_loss(n, c, hw, x, g, b, dy);
    g[ch] = o;
    CHECK_GRAD(dg[ch], (lp - lm) / (2 * FD_EPS));
    o = b[ch];
    b[ch] = o + (float)FD_EPS;
    lp = bn_loss(n, c, hw, x, g, b, dy);
    b[ch] = o - (float)FD_EPS;
    lm = bn_loss(n, c, hw, x, g, b, dy);
    b[ch] = o;
    CHECK_GRAD(db[ch], (lp - lm) / (2 * FD_EPS));
  }
  /* eval mode with running stats mean 0 var 1 is gamma * x / sqrt(1+eps) + beta */
  float rm0[2] = {0, 0}, rv0[2] = {1, 1};
  nn_bn_forward(x, n, c, hw, g, b, rm0, rv0, 0, NN_BN_MOMENTUM, NN_BN_EPS, y, NULL, NULL);
  CHECK_NEAR(y[2], g[0] * x[2] / sqrt(1 + NN_BN_EPS) + b[0], 1e-6);
}

/* ---- LIF with the ATan surrogate ----
 * The surrogate gradient is the exact gradient of a network whose spike output is the ATan
 * primitive s~(h) = atan(pi/2*alpha*(h-thr))/pi + 1/2 while the reset stays the hard mask
 * (h >= thr): that mask is piecewise constant, so its derivative is 0, which is what
 * "reset detached" means. Finite differences of that smooth twin check nn_lif_bwd_step. */
#define LIF_T 6
#define LIF_M 5
static double lif_smooth_loss(const float *x, const float *r, double tau, double thr) {
  double l = 0;
  for (int i = 0; i < LIF_M; i++) {
    double v = 0;
    for (int t = 0; t < LIF_T; t++) {
      double h = v + (x[t * LIF_M + i] - v) / tau;
      double s = atan(M_PI / 2 * NN_ATAN_ALPHA * (h - thr)) / M_PI + 0.5;
      l += r[t * LIF_M + i] * s;
      v = h >= thr ? 0 : h;
    }
  }
  return l;
}

static void lif_surrogate_bptt(void) {
  const double tau = 4.0 / 3.0, thr = 1.0;
  /* hand values: constant input 1.2 -> v 0.9 (no spike), 1.125 (spike, reset), 0.9, ... */
  float v[1] = {0}, h[1], s[1], x1[1] = {1.2f};
  int pattern[5] = {0, 1, 0, 1, 0};
  for (int t = 0; t < 5; t++) {
    nn_lif_step(v, x1, 1, (float)tau, (float)thr, s, h);
    CHECK(s[0] == pattern[t]);
    CHECK_NEAR(h[0], t % 2 ? 1.125 : 0.9, 1e-6);
  }
  /* surrogate at the threshold is alpha/2 = 1, and 1/(1+pi^2) one unit of 1/(pi/2*alpha) away */
  CHECK_NEAR(nn_atan_surrogate(1.0, 1.0, 2.0), 1.0, 1e-12);
  CHECK_NEAR(nn_atan_surrogate(1.0 + 1.0 / M_PI, 1.0, 2.0), 1.0 / 2.0, 1e-12);
  /* BPTT over T steps against finite differences of the smooth twin */
  nn_rng r = nn_rng_seed(3);
  float x[LIF_T * LIF_M], ds[LIF_T * LIF_M], hs[LIF_T * LIF_M], ss[LIF_T * LIF_M], dx[LIF_T * LIF_M];
  float vs[LIF_M], dv[LIF_M];
  int checked = 0;
  for (int trial = 0; trial < 4; trial++) {
    fill(x, LIF_T * LIF_M, &r, 0.2, 2.2);
    fill(ds, LIF_T * LIF_M, &r, -1, 1);
    memset(vs, 0, sizeof vs);
    for (int t = 0; t < LIF_T; t++)
      nn_lif_step(vs, x + t * LIF_M, LIF_M, (float)tau, (float)thr, ss + t * LIF_M, hs + t * LIF_M);
    memset(dv, 0, sizeof dv);
    for (int t = LIF_T - 1; t >= 0; t--)
      nn_lif_bwd_step(LIF_M, tau, thr, NN_ATAN_ALPHA, hs + t * LIF_M, ds + t * LIF_M, dv,
                      dx + t * LIF_M, 0);
    for (int q = 0; q < LIF_T * LIF_M; q++) {
      /* skip inputs whose perturbation could flip a reset (any h within 5 eps of thr) */
      int near = 0;
      for (int p = 0; p < LIF_T * LIF_M; p++) near |= fabs(hs[p] - thr) < 5 * 1e-3;
      if (near) break;
      float o = x[q];
      x[q] = o + 1e-3f;
      double lp = lif_smooth_loss(x, ds, tau, thr);
      x[q] = o - 1e-3f;
      double lm = lif_smooth_loss(x, ds, tau, thr);
      x[q] = o;
      CHECK_GRAD(dx[q], (lp - lm) / 2e-3);
      checked++;
    }
  }
  CHECK(checked >= 2 * LIF_T * LIF_M); /* most trials are usable */
}

/* ---- average pooling ---- */
/* nn_ops' forward pools: 3x3 stride 1 pad 1, or k x k stride k */
static void pool_f(int64_t nc, int64_t h, int64_t w, int64_t k, int64_t s, const float *x, float *y) {
  if (s == 1)
    nn_avgpool3x3(x, nc, h, w, y);
  else
    nn_avgpool(x, nc, h, w, k, y);
}
static void avgpool_forward_backward(void) {
  nn_rng r = nn_rng_seed(5);
  struct { int64_t h, w, k, s, p; } cs[] = {{5, 6, 3, 1, 1}, {6, 6, 2, 2, 0}, {8, 8, 4, 4, 0}};
  for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
    int64_t nc = 3, h = cs[ci].h, w = cs[ci].w, k = cs[ci].k, s = cs[ci].s, p = cs[ci].p;
    int64_t ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1;
    float *x = malloc(nc * h * w * sizeof *x), *y = malloc(nc * ho * wo * sizeof *y),
          *yr = malloc(nc * ho * wo * sizeof *y), *dy = malloc(nc * ho * wo * sizeof *y),
          *dx = malloc(nc * h * w * sizeof *x);
    fill(x, nc * h * w, &r, -1, 1);
    fill(dy, nc * ho * wo, &r, -1, 1);
    pool_f(nc, h, w, k, s, x, y);
    nn_avgpool_bwd(nc, h, w, k, s, p, dy, dx, 0);
    /* linear map: <dy, pool(x)> = <pool^T(dy), x> */
    CHECK_NEAR(dot(dy, y, nc * ho * wo), dot(dx, x, nc * h * w), 1e-4);
    for (int64_t i = 0; i < nc * h * w; i += 5) {
      float o = x[i];
      x[i] = o + (float)FD_EPS;
      pool_f(nc, h, w, k, s, x, yr);
      double lp = dot(yr, dy, nc * ho * wo);
      x[i] = o - (float)FD_EPS;
      pool_f(nc, h, w, k, s, x, yr);
      double lm = dot(yr, dy, nc * ho * wo);
      x[i] = o;
      CHECK_GRAD(dx[i], (lp - lm) / (2 * FD_EPS));
    }
    free(x), free(y), free(yr), free(dy), free(dx);
  }
  /* count_include_pad: a 3x3 map's corner pixel is in 4 windows of weight 1/9 */
  float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, g9[9];
  nn_avgpool_bwd(1, 3, 3, 3, 1, 1, ones, g9, 0);
  CHECK_NEAR(g9[0], 4.0 / 9, 1e-7);
  CHECK_NEAR(g9[4], 1.0, 1e-7);
}

/* ---- linear, dropout, boost ---- */
static void linear_dropout_boost(void) {
  nn_rng r = nn_rng_seed(9);
  enum { N = 3, I = 5, O = 4 };
  float x[N * I], w[O * I], b[O], y[N * O], dy[N * O], dx[N * I], dw[O * I] = {0}, db[O] = {0};
  nn_error err;
  fill(x, N * I, &r, -1, 1);
  fill(w, O * I, &r, -1, 1);
  fill(b, O, &r, -1, 1);
  fill(dy, N * O, &r, -1, 1);
  CHECK(nn_linear(x, N, I, w, b, O, y, &err) == NN_OK);
  double yy = b[2];
  for (int i = 0; i < I; i++) yy += (double)x[1 * I + i] * w[2 * I + i];
  CHECK_NEAR(y[1 * O + 2], yy, 1e-5);
  CHECK(nn_linear_bwd(N, I, O, x, w, dy, dx, dw, db, &err) == NN_OK);
  for (int i = 0; i < N * I; i++) { /* dx = dy w */
    double e = 0;
    for (int o = 0; o < O; o++) e += (double)dy[(i / I) * O + o] * w[o * I + i % I];
    CHECK_NEAR(dx[i], e, 1e-5);
  }
  for (int q = 0; q < O * I; q++) { /* dw = dy^T x */
    double e = 0;
    for (int n = 0; n < N; n++) e += (double)dy[n * O + q / I] * x[n * I + q % I];
    CHECK_NEAR(dw[q], e, 1e-5);
  }
  CHECK_NEAR(db[1], dy[1] + dy[O + 1] + dy[2 * O + 1], 1e-6);

  /* dropout: p = 0.5 keeps about half, scaled by 2 */
  float mask[4000];
  nn_rng dr = nn_rng_seed(1);
  nn_dropout_mask(4000, 0.5, &dr, mask);
  int kept = 0, bad = 0;
  for (int i = 0; i < 4000; i++) {
    kept += mask[i] != 0;
    bad += !(mask[i] == 0 || mask[i] == 2);
  }
  CHECK(bad == 0);
  CHECK(kept > 1800 && kept < 2200);
  nn_dropout_mask(10, 0.0, &dr, mask);
  CHECK(mask[3] == 1 && mask[9] == 1);

  /* boost: 2 classes x cluster 3 */
  float z[12] = {1, 2, 3, 4, 5, 6, -1, -2, -3, 0, 0, 3}, out[4], dz[12];
  nn_boost_fwd(2, 2, 3, z, out);
  CHECK(out[0] == 2 && out[1] == 5 && out[2] == -2 && out[3] == 1);
  float dout[4] = {3, 6, 9, 12};
  nn_boost_bwd(2, 2, 3, dout, dz, 0);
  CHECK(dz[0] == 1 && dz[5] == 2 && dz[8] == 3 && dz[11] == 4);
}

/* ---- softmax cross-entropy ---- */
static void softmax_cross_entropy(void) {
  float lg[6] = {0, 0, 0, 1, 2, 3}, lab[2] = {0, 2}, d[6];
  double loss;
  int64_t correct;
  nn_error err;
  CHECK(nn_softmax_ce(2, 3, lg, lab, &loss, d, &correct, &err) == NN_OK);
  double l2 = log(exp(1) + exp(2) + exp(3)) - 3;
  CHECK_NEAR(loss, (log(3.0) + l2) / 2, 1e-6);
  CHECK(correct == 2); /* a tie goes to the first class (label 0 of sample 1) */
  CHECK_NEAR(d[0], (1.0 / 3 - 1) / 2, 1e-6);
  for (int i = 0; i < 6; i++) {
    float o = lg[i];
    double lp, lm;
    lg[i] = o + 1e-2f;
    nn_softmax_ce(2, 3, lg, lab, &lp, NULL, NULL, &err);
    lg[i] = o - 1e-2f;
    nn_softmax_ce(2, 3, lg, lab, &lm, NULL, NULL, &err);
    lg[i] = o;
    CHECK_GRAD(d[i], (lp - lm) / 2e-2);
  }
  float badl[2] = {0, 3};
  CHECK(nn_softmax_ce(2, 3, lg, badl, &loss, d, &correct, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "label 2 is 3, expected an integer in 0..2") == 0);
}

/* ---- optimizers and schedule ---- */
static void optimizers(void) {
  float w[1] = {1}, g[1] = {0.5f}, buf[1] = {0};
  nn_sgd_step(1, w, g, buf, 0.1, 0.9, 5e-4);
  /* d = 0.5 + 5e-4 = 0.5005; buf = 0.5005; w = 1 - 0.05005 */
  CHECK_NEAR(buf[0], 0.5005, 1e-7);
  CHECK_NEAR(w[0], 0.94995, 1e-6);
  nn_sgd_step(1, w, g, buf, 0.1, 0.9, 0);
  CHECK_NEAR(buf[0], 0.9 * 0.5005 + 0.5, 1e-6);
  CHECK_NEAR(w[0], 0.94995 - 0.1 * (0.9 * 0.5005 + 0.5), 1e-6);
  /* Adam's first step moves each weight by lr (bias-corrected m/sqrt(v) = sign(g)) */
  float aw[2] = {1, -1}, ag[2] = {0.3f, -2}, m1[2] = {0}, m2[2] = {0};
  nn_adam_step(2, aw, ag, m1, m2, 0.01, 0.9, 0.999, 1e-8, 0, 1);
  CHECK_NEAR(aw[0], 0.99, 1e-6);
  CHECK_NEAR(aw[1], -0.99, 1e-6);
  CHECK_NEAR(nn_cosine_lr(0.1, 0.001, 0, 100), 0.1, 1e-12);
  CHECK_NEAR(nn_cosine_lr(0.1, 0.001, 50, 100), 0.0505, 1e-12);
  CHECK_NEAR(nn_cosine_lr(0.1, 0.001, 100, 100), 0.001, 1e-12);
}

int main(void) {
  NN_TEST_RUN(conv2d_forward_backward);
  NN_TEST_RUN(batchnorm_train_backward);
  NN_TEST_RUN(lif_surrogate_bptt);
  NN_TEST_RUN(avgpool_forward_backward);
  NN_TEST_RUN(linear_dropout_boost);
  NN_TEST_RUN(softmax_cross_entropy);
  NN_TEST_RUN(optimizers);
  return NN_TEST_END();
}
