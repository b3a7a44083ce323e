/* The Linear layer's arithmetic (engine/nn_linear.c): every output is the chain
 * acc = fmaf(x[j][i], w[o][i], acc) over i ascending from +0, then + b[o]. Checked byte for byte
 * against that loop written out here, on shapes that hit every register tile and tail, with
 * inputs for which a different order or an unfused multiply-add shows; pieces of any size give
 * the same bytes; and the values are near a double-precision sum. The sparse path (the chains
 * without the terms of x == 0) gives the same bytes at every level, also in the forward. */
#include <stdlib.h>

#include "neuronas/nn_net.h"
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

/* The sparse path (nn_linear_wt, nn_linear_count, nn_linear_terms, nn_linear_sparse) on x, w,
 * b: out in y, computed in pieces of uneven sizes (the rows' lists last piece first, so that a
 * row writing past its terms would spoil a list already made); returns nn_linear_wt's verdict. */
static int sparse_run(const float *x, int64_t n, int64_t in, const float *w, const float *b, int64_t out, float *y) {
  const int64_t tiles = (out + NN_LINEAR_WT_TILE - 1) / NN_LINEAR_WT_TILE;
  float *wt = malloc((size_t)nn_linear_wt_floats(in, out) * sizeof *wt);
  int64_t *cnt = malloc((size_t)n * sizeof *cnt), *at = malloc((size_t)n * sizeof *at), counted = 0, nonzero = 0;
  nn_error err;
  int finite = 1;
  for (int64_t t0 = 0, step = 1; t0 < tiles; t0 += step, step++) /* tiles in pieces */
    finite &= nn_linear_wt(w, in, out, t0, t0 + step < tiles ? t0 + step : tiles, wt);
  for (int64_t j0 = 0, step = 1; j0 < n; j0 += step, step = step * 2 + 1) /* rows in pieces */
    counted += nn_linear_count(x, in, j0, j0 + step < n ? j0 + step : n, cnt);
  for (int64_t i = 0; i < n * in; i++) nonzero += x[i] != 0.0f;
  CHECK(counted == nonzero);
  const int64_t room = nn_linear_terms_at(cnt, n, at);
  CHECK(room == nonzero + n * NN_LINEAR_TERMS_SLACK);
  nn_linear_term *tm = malloc((size_t)room * sizeof *tm);
  for (int64_t j0 = n, step = 1; j0 > 0; j0 -= step, step = step * 2 + 1) /* rows in pieces, last first */
    nn_linear_terms(x, in, j0 - step > 0 ? j0 - step : 0, j0, at, tm);
  for (int64_t j = 0; j < n; j++) /* the lists: every nonzero input, ascending, with its value */
    for (int64_t k = 0; k < cnt[j]; k++) {
      const nn_linear_term *e = &tm[at[j] + k];
      if (!(e->i >= 0 && e->i < in && x[j * in + e->i] != 0.0f && e->x == x[j * in + e->i] && (k == 0 || e[-1].i < e->i)))
        CHECK(!"term listed wrong");
    }
  for (int64_t o0 = 0, step = 1; o0 < out; o0 += step, step = step * 3 + 2)
    CHECK(nn_linear_sparse(x, n, in, tm, at, cnt, wt, b, out, o0, o0 + step < out ? o0 + step : out, y, &err) == NN_OK);
  free(wt), free(tm), free(cnt), free(at);
  return finite;
}

/* inputs as pooled spikes (k/4) or signed values at a given density, some rows all zero */
static float *sparse_inputs(int64_t n, int64_t in, double density, int pooled, nn_rng *r) {
  float *v = malloc((size_t)(n * in) * sizeof *v);
  for (int64_t j = 0; j < n; j++)
    for (int64_t i = 0; i < in; i++) {
      float a = 0.0f;
      if (j % 7 != 3 && nn_rng_uniform(r) < density)
        a = pooled ? (float)(1 + (int)(nn_rng_uniform(r) * 4)) / 4.0f : (float)(nn_rng_uniform(r) * 2.0 - 1.0) * 3.1f;
      v[j * in + i] = a;
    }
  return v;
}

/* The sparse path gives the chain's bytes: shapes that are not multiples of the tiles or the
 * input blocks, densities from 0 to 1, rows all zero, weights of mixed magnitudes. */
static void sparse_matches_chain(void) {
  static const int64_t N[] = {1, 3, 16, 33};
  static const int64_t IN[] = {1, 5, 63, 64, 65, 200, 1100};
  static const int64_t OUT[] = {1, 7, 127, 128, 129, 300};
  static const double D[] = {0.0, 0.03, 0.3, 1.0};
  nn_rng r = nn_rng_seed(77);
  int64_t cases = 0, zeros = 0;
  for (size_t a = 0; a < sizeof N / sizeof *N; a++)
    for (size_t c = 0; c < sizeof IN / sizeof *IN; c++)
      for (size_t d = 0; d < sizeof OUT / sizeof *OUT; d++)
        for (size_t e = 0; e < sizeof D / sizeof *D; e++) {
          const int64_t n = N[a], in = IN[c], out = OUT[d];
          float *x = sparse_inputs(n, in, D[e], (int)((a + c + e) % 2), &r), *w = mixed(out * in, &r), *b = mixed(out, &r);
          float *y = malloc((size_t)(n * out) * sizeof *y), *want = malloc((size_t)(n * out) * sizeof *want);
          const float *bias = (c + d) % 2 ? b : NULL;
          chain(x, n, in, w, bias, out, want);
          memset(y, 0xff, (size_t)(n * out) * sizeof *y);
          CHECK(sparse_run(x, n, in, w, bias, out, y) == 1);
          CHECK(memcmp(y, want, (size_t)(n * out) * sizeof *y) == 0);
          for (int64_t i = 0; i < n * in; i++) zeros += x[i] == 0.0f;
          cases++;
          free(x), free(w), free(b), free(y), free(want);
        }
  CHECK(cases == 672 && zeros > 0);
}

/* The sign of a zero: a product that underflows to -0 leaves the shortened chain at -0, where
 * the full one comes back to +0 through a zero term with a positive weight (and stays at -0
 * with a negative one). x = (2^-100, 0), w = (-2^-100, +-1): fma(2^-100, -2^-100, +0) = -0,
 * then fma(0, 1, -0) = +0 but fma(0, -1, -0) = -0. */
static void sparse_zero_sign(void) {
  const float tiny = ldexpf(1.0f, -100);
  float x[4] = {tiny, 0.0f, 0.0f, tiny}, w[2 * 2] = {-tiny, 1.0f, -tiny, -1.0f}, y[4], want[4];
  chain(x, 2, 2, w, NULL, 2, want);
  CHECK(want[0] == 0.0f && !signbit(want[0]) && signbit(want[1])); /* row 0: +0 and -0 */
  CHECK(sparse_run(x, 2, 2, w, NULL, 2, y) == 1);
  CHECK(memcmp(y, want, sizeof y) == 0);
}

/* A weight that is Inf or NaN: nn_linear_wt says so for the tiles that hold it (the sparse
 * path must not be taken: 0 * Inf is NaN in the chain). */
static void sparse_nonfinite(void) {
  const int64_t in = 40, out = 300;
  nn_rng r = nn_rng_seed(5);
  float *w = mixed(in * out, &r), *wt = malloc((size_t)nn_linear_wt_floats(in, out) * sizeof *wt);
  const float bad[3] = {INFINITY, -INFINITY, NAN};
  for (int k = 0; k < 3; k++)
    for (int64_t at = 0; at < in * out; at += 1237) {
      const float keep = w[at];
      const int64_t tile = at / in / NN_LINEAR_WT_TILE;
      w[at] = bad[k];
      CHECK(nn_linear_wt(w, in, out, 0, 3, wt) == 0);
      CHECK(nn_linear_wt(w, in, out, tile, tile + 1, wt) == 0);
      CHECK(nn_linear_wt(w, in, out, (tile + 1) % 3, (tile + 1) % 3 + 1, wt) == 1);
      w[at] = keep;
    }
  CHECK(nn_linear_wt(w, in, out, 0, 3, wt) == 1);
  /* the layout: tile t, input i, lane u holds w[t * TILE + u][i], 0 past the outputs */
  for (int64_t t = 0; t < 3; t++)
    for (int64_t i = 0; i < in; i++)
      for (int64_t u = 0; u < NN_LINEAR_WT_TILE; u++) {
        const int64_t o = t * NN_LINEAR_WT_TILE + u;
        if (wt[(t * in + i) * NN_LINEAR_WT_TILE + u] != (o < out ? w[o * in + i] : 0.0f)) CHECK(!"wt layout");
      }
  free(w), free(wt);
}

/* when the forward takes the sparse path: the default density limit (docs/model.md) and the size
 * of the transposed copy (64 MB: the paper size's 16384 -> 1024 classifier just fits; one more
 * output adds a tile of 128 and goes over) */
static void sparse_prefer(void) {
  const int64_t n = 32, in = 2048;
  const int64_t limit = (int64_t)(NN_LINEAR_SPARSE_DENSITY * (double)(n * in));
  CHECK(nn_linear_prefer_sparse(0, n, in, 1024) && nn_linear_prefer_sparse(limit, n, in, 1024));
  CHECK(!nn_linear_prefer_sparse(limit + 1, n, in, 1024));
  CHECK(nn_linear_prefer_sparse(0, 256, 16384, 1024) && nn_linear_prefer_sparse(0, 256, 8192, 1024));
  CHECK(!nn_linear_prefer_sparse(0, 256, 16384, 1025) && !nn_linear_prefer_sparse(0, 256, 32768, 1024));
  CHECK(nn_linear_terms_cap(n, in) == limit + n * NN_LINEAR_TERMS_SLACK);
  nn_linear_set_sparse(0);
  CHECK(!nn_linear_prefer_sparse(0, n, in, 1024));
  nn_linear_set_sparse(1);
  CHECK(nn_linear_prefer_sparse(n * in, n, in, 1024) && nn_linear_terms_cap(n, in) == n * (in + NN_LINEAR_TERMS_SLACK));
  nn_linear_set_sparse(NN_LINEAR_SPARSE_DENSITY);
}

/* nn_net_forward with the sparse path forced on (every Linear whose weights are finite) and off
 * gives the same bytes, on 1 and 2 threads; with an Inf weight in the classifier's first Linear
 * too (the forward keeps that step dense, so both give the chain's NaNs). */
static void sparse_forward(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  p.cell_a = nn_test_cell("0303 0030 2002 0200");
  p.cell_b = p.cell_a;
  p.in_ch = 2, p.in_h = 16, p.in_w = 16, p.channels = 4, p.stem_stride = 1;
  p.second_pool = 2, p.fc_width = 300, p.classes = 3, p.cluster = 2, p.timesteps = 3, p.seed = 9;
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;
  nn_tensor *fc1 = nn_net_tensor_find(net, "classifier.fc1.weight"), *b2 = nn_net_tensor_find(net, "classifier.fc2.bias");
  for (int64_t i = 0; i < nn_tensor_numel(fc1); i++) nn_tensor_data(fc1)[i] *= 200.0f; /* the LIF fires */
  for (int64_t i = 0; i < nn_tensor_numel(b2); i++) nn_tensor_data(b2)[i] = 0.01f * (float)(i % 5) - 0.02f;
  const int64_t S = 7;
  nn_tensor *x = nn_tensor_new4(4, S, p.in_ch, p.in_h, p.in_w, &err);
  nn_rng rng = nn_rng_seed(4);
  nn_tensor_normal(x, &rng, 0.0f, 1.0f);
  for (int inf = 0; inf < 2; inf++) {
    if (inf) nn_tensor_data(fc1)[nn_tensor_numel(fc1) / 3] = INFINITY;
    nn_tensor *ref = NULL;
    nn_forward_opts o = {.train = 1};
    nn_linear_set_sparse(0);
    int64_t calls = nn_linear_sparse_calls();
    CHECK(nn_net_forward(net, x, &o, &ref, &err) == NN_OK);
    CHECK(nn_linear_sparse_calls() == calls);
    if (!ref) break;
    int nan = 0;
    for (int64_t i = 0; i < nn_tensor_numel(ref); i++) nan += isnan(nn_tensor_data(ref)[i]);
    CHECK(nan == 0); /* an Inf weight gives NaN membranes, which never fire: the output stays finite */
    for (int threads = 1; threads <= 2; threads++) {
      nn_tensor *out = NULL;
      nn_forward_opts ot = {.train = 1, .threads = threads};
      nn_linear_set_sparse(1);
      calls = nn_linear_sparse_calls();
      CHECK(nn_net_forward(net, x, &ot, &out, &err) == NN_OK);
      /* both Linears at every timestep, but fc1 not with an Inf weight (fc2 in pieces on 2 threads) */
      CHECK(inf ? nn_linear_sparse_calls() > calls && nn_linear_sparse_calls() <= calls + 3 * threads
                : nn_linear_sparse_calls() >= calls + 6);
      CHECK(out && memcmp(nn_tensor_data(out), nn_tensor_data(ref), (size_t)nn_tensor_numel(ref) * sizeof(float)) == 0);
      nn_tensor_free(out);
    }
    nn_tensor_free(ref);
  }
  nn_linear_set_sparse(NN_LINEAR_SPARSE_DENSITY);
  nn_tensor_free(x);
  nn_net_free(net);
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
    sparse_matches_chain();
    sparse_zero_sign();
    sparse_nonfinite();
    sparse_forward();
  }
  nn_linear_set_level(2);
  CHECK(nn_linear_level() == top);
}

int main(void) {
  NN_TEST_RUN(hand);
  NN_TEST_RUN(matches_chain);
  NN_TEST_RUN(sparse_matches_chain);
  NN_TEST_RUN(sparse_zero_sign);
  NN_TEST_RUN(sparse_nonfinite);
  NN_TEST_RUN(sparse_prefer);
  NN_TEST_RUN(sparse_forward);
  NN_TEST_RUN(levels);
  return NN_TEST_END();
}
