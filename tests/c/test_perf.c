/* test_perf.c: the speed-ups of the forward kernels (docs/model.md) change no bit. Each fast kernel
 * is compared for exact equality with (a) its naive _ref twin where the arithmetic is exact
 * (spike packing) and (b) the plain loops it replaced, kept here verbatim as the specification
 * of PyTorch's rounding order (BatchNorm statistics: one sequential double sum per channel;
 * average pools: window sum from 0.0f row by row, then divided by the window size; event-driven
 * conv: every output element sums its spikes' weights from 0.0f in the order ci, kh, kw
 * ascending, i.e. the spikes' NCHW order). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_cell.h"
#include "neuronas/nn_fitness.h"
#include "neuronas/nn_net.h"
#include "neuronas/nn_plan.h"
#include "neuronas/nn_quant.h"
#include "neuronas/nn_rng.h"
#include "nn_tensor_impl.h"
#include "nn_ops.h"
#include "nn_test.h"

#define TOL_POOL 1e-6 /* 9 float32 additions: < 9 * 2^-24 relative to the absolute sum */

#if defined(__clang__)
#define SEQ_NO_CONTRACT _Pragma("clang fp contract(off)")
#define SEQ_ATTR
#elif defined(__GNUC__)
#define SEQ_NO_CONTRACT
#define SEQ_ATTR __attribute__((optimize("fp-contract=off")))
#else
#define SEQ_NO_CONTRACT
#define SEQ_ATTR
#endif

/* The BatchNorm forward before the speed-up: channel by channel, PyTorch 1.13's loops and
 * roundings (update_stats in float, the affine terms fused as GCC compiles them with -mfma). */
SEQ_ATTR static void bn_seq(const float *x, int64_t n, int64_t c, int64_t hw, const float *gamma,
                            const float *beta, float *rm, float *rv, int train, double momentum,
                            double eps, float *y, float *save_mean, float *save_invstd) {
  SEQ_NO_CONTRACT
  const int64_t m = n * hw;
  for (int64_t ch = 0; ch < c; ch++) {
    float mean, invstd;
    if (train) {
      double sum = 0, vs = 0;
      for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < hw; i++) sum += x[(j * c + ch) * hw + i];
      mean = m > 0 ? (float)(sum / (double)m) : 0.0f;
      for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < hw; i++) {
          float d = x[(j * c + ch) * hw + i] - mean;
          vs += (double)(d * d);
        }
      float var_sum = (float)vs;
      const float mom = (float)momentum;
      invstd = m > 0 ? (float)(1.0 / sqrt((double)(var_sum / (float)m) + eps)) : 0.0f;
      if (rm) rm[ch] = mom * mean + (1 - mom) * rm[ch];
      if (rv && m > 1) rv[ch] = (float)(mom * (double)(var_sum / (float)(m - 1)) + (1 - mom) * rv[ch]);
    } else {
      mean = rm ? rm[ch] : 0.0f;
      invstd = 1.0f / sqrtf((rv ? rv[ch] : 1.0f) + (float)eps);
    }
    const float a = invstd * (gamma ? gamma[ch] : 1.0f), b = fmaf(-mean, a, beta ? beta[ch] : 0.0f);
    for (int64_t j = 0; j < n; j++)
      for (int64_t i = 0; i < hw; i++) y[(j * c + ch) * hw + i] = fmaf(x[(j * c + ch) * hw + i], a, b);
    if (save_mean) save_mean[ch] = mean;
    if (save_invstd) save_invstd[ch] = invstd;
  }
}

/* The avgpool 3x3 before the speed-up. */
static void pool3_seq(const float *x, int64_t planes, int64_t h, int64_t w, float *y) {
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t i = 0; i < h; i++)
      for (int64_t j = 0; j < w; j++) {
        int64_t i0 = i > 0 ? i - 1 : 0, i1 = i + 1 < h ? i + 1 : h - 1;
        int64_t j0 = j > 0 ? j - 1 : 0, j1 = j + 1 < w ? j + 1 : w - 1;
        float sum = 0;
        for (int64_t u = i0; u <= i1; u++)
          for (int64_t v = j0; v <= j1; v++) sum += x[(pl * h + u) * w + v];
        y[(pl * h + i) * w + j] = sum / 9.0f;
      }
}

/* AvgPool2d(k, k) before the speed-up. */
static void pool_seq(const float *x, int64_t planes, int64_t h, int64_t w, int64_t k, float *y) {
  const int64_t ho = h / k, wo = w / k;
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t i = 0; i < ho; i++)
      for (int64_t j = 0; j < wo; j++) {
        float sum = 0;
        for (int64_t u = 0; u < k; u++)
          for (int64_t v = 0; v < k; v++) sum += x[(pl * h + i * k + u) * w + j * k + v];
        y[(pl * ho + i) * wo + j] = sum / (float)(k * k);
      }
}

/* The event-driven conv before the banded kernel (one tile loop, runtime tile width; the inner
 * loops verbatim): per sample, spikes decoded in NCHW order, and per tile of ot output channels every
 * spike adds its taps' weight vectors to a channels-last accumulator of the whole output map. */
typedef struct spike_ev_seq {
  int32_t wofs;
  int16_t ih, iw;
} spike_ev_seq;

static void events_tile_seq(const nn_conv_geom *g, const spike_ev_seq *sp, int64_t nsp, const float *wcl,
                            int64_t o0, int64_t OT, float *restrict acc) {
  const int64_t ho = nn_conv_ho(g), wo = nn_conv_wo(g), O = g->o, k = g->k, s = g->stride;
  const int64_t p = g->pad;
  for (int64_t e = 0; e < nsp; e++) {
    const int64_t ih = sp[e].ih, iw = sp[e].iw;
    const float *wc = wcl + sp[e].wofs + o0;
    if (s == 1 && ih + p - k + 1 >= 0 && ih + p < ho && iw + p - k + 1 >= 0 && iw + p < wo) {
      if (k == 3) { /* the common case, fully unrolled */
        float *restrict a0 = acc + ((ih + p) * wo + iw + p) * OT;
        for (int64_t kh = 0; kh < 3; kh++) {
          float *restrict ar = a0 - kh * wo * OT;
          const float *restrict w0 = wc + kh * 3 * O;
          for (int64_t i = 0; i < OT; i++) ar[i] += w0[i];
          for (int64_t i = 0; i < OT; i++) ar[i - OT] += w0[O + i];
          for (int64_t i = 0; i < OT; i++) ar[i - 2 * OT] += w0[2 * O + i];
        }
        continue;
      }
      for (int64_t kh = 0; kh < k; kh++) {
        float *restrict arow = acc + ((ih + p - kh) * wo + iw + p) * OT;
        const float *wr = wc + kh * k * O;
        for (int64_t kw = 0; kw < k; kw++) {
          float *restrict a = arow - kw * OT;
          const float *restrict wv = wr + kw * O;
          for (int64_t i = 0; i < OT; i++) a[i] += wv[i];
        }
      }
      continue;
    }
    for (int64_t kh = 0; kh < k; kh++) {
      int64_t th = ih + p - kh;
      if (th < 0 || th % s) continue;
      int64_t oh = th / s;
      if (oh >= ho) continue;
      for (int64_t kw = 0; kw < k; kw++) {
        int64_t tw = iw + p - kw;
        if (tw < 0 || tw % s) continue;
        int64_t ow = tw / s;
        if (ow >= wo) continue;
        float *restrict a = acc + (oh * wo + ow) * OT;
        const float *restrict wv = wc + (kh * k + kw) * O;
        for (int64_t i = 0; i < OT; i++) a[i] += wv[i];
      }
    }
  }
}

static void events_seq(const nn_conv_geom *g, const uint64_t *bits, const float *wcl, float *y, int64_t ot) {
  const int64_t ho = nn_conv_ho(g), wo = nn_conv_wo(g), P = ho * wo, O = g->o;
  const int64_t neurons = g->c * g->h * g->w, words = nn_spike_words(neurons);
  const int64_t hw = g->h * g->w, kkO = g->k * g->k * O;
  float *acc = malloc((size_t)(P * ot) * sizeof *acc);
  spike_ev_seq *sp = malloc((size_t)(neurons > 0 ? neurons : 1) * sizeof *sp);
  for (int64_t j = 0; j < g->n; j++) {
    const uint64_t *bw = bits + j * words;
    int64_t nsp = 0;
    for (int64_t wi = 0; wi < words; wi++)
      for (uint64_t word = bw[wi]; word; word &= word - 1) {
        int64_t idx = wi * 64 + __builtin_ctzll(word), ci = idx / hw, r = idx - ci * hw;
        sp[nsp].wofs = (int32_t)(ci * kkO);
        sp[nsp].ih = (int16_t)(r / g->w);
        sp[nsp].iw = (int16_t)(r % g->w);
        nsp++;
      }
    float *yj = y + j * O * P;
    for (int64_t o0 = 0; o0 < O; o0 += ot) {
      memset(acc, 0, (size_t)(P * ot) * sizeof *acc);
      events_tile_seq(g, sp, nsp, wcl, o0, ot, acc);
      for (int64_t oc = 0; oc < ot; oc++) {
        float *dst = yj + (o0 + oc) * P;
        for (int64_t q = 0; q < P; q++) dst[q] = acc[q * ot + oc];
      }
    }
  }
  free(acc), free(sp);
}

/* values of mixed magnitudes (so that double sums do round) and a few exact zeros */
static float *mixed(int64_t n, nn_rng *r) {
  float *p = malloc((size_t)n * sizeof *p);
  for (int64_t i = 0; i < n; i++) {
    float u = nn_rng_uniformf(r);
    p[i] = (float)ldexp(2.0 * nn_rng_uniformf(r) - 1.0, (int)(nn_rng_below(r, 40)) - 20);
    if (u < 0.05f) p[i] = 0.0f;
  }
  return p;
}

static void bn_bit_identical(void) {
  static const int64_t C[] = {1, 3, 8, 13, 16, 20, 32, 40}; /* 16-channel AVX2 / AVX-512 blocks + scalar rest */
  static const int64_t HW[] = {1, 5, 49, 196};
  nn_rng r = nn_rng_seed(21);
  for (size_t a = 0; a < sizeof C / sizeof *C; a++)
    for (size_t b = 0; b < sizeof HW / sizeof *HW; b++)
      for (int train = 0; train <= 1; train++) {
        int64_t n = 3, c = C[a], hw = HW[b], nx = n * c * hw;
        float *x = mixed(nx, &r), *g = mixed(c, &r), *be = mixed(c, &r);
        float *y = malloc((size_t)nx * sizeof *y), *ys = malloc((size_t)nx * sizeof *ys);
        float *st = malloc((size_t)c * 8 * sizeof *st);
        float *rm = st, *rv = st + c, *rm2 = st + 2 * c, *rv2 = st + 3 * c;
        float *sm = st + 4 * c, *si = st + 5 * c, *sm2 = st + 6 * c, *si2 = st + 7 * c;
        for (int64_t i = 0; i < c; i++) rm[i] = rm2[i] = 0.25f * (float)i, rv[i] = rv2[i] = 1.0f + (float)i;
        nn_bn_forward(x, n, c, hw, g, be, rm, rv, train, 0.1, 1e-5, y, sm, si);
        bn_seq(x, n, c, hw, g, be, rm2, rv2, train, 0.1, 1e-5, ys, sm2, si2);
        CHECK(memcmp(y, ys, (size_t)nx * sizeof *y) == 0);
        CHECK(memcmp(rm, rm2, (size_t)c * sizeof *rm) == 0 && memcmp(rv, rv2, (size_t)c * sizeof *rv) == 0);
        CHECK(memcmp(sm, sm2, (size_t)c * sizeof *sm) == 0 && memcmp(si, si2, (size_t)c * sizeof *si) == 0);
        /* in place (y == x): channels of a block are read before any of them is written */
        /* adding into y (the cell's edge sum): y + BN(x), the BN output rounded first */
        float *acc = mixed(nx, &r), *acc2 = malloc((size_t)nx * sizeof *acc2);
        for (int64_t i = 0; i < nx; i++) acc2[i] = acc[i] + ys[i];
        nn_bn_forward_add(x, n, c, hw, g, be, NULL, NULL, train, 0.1, 1e-5, acc);
        CHECK(train == 0 || memcmp(acc, acc2, (size_t)nx * sizeof *acc) == 0);
        free(acc), free(acc2);
        nn_bn_forward(x, n, c, hw, g, be, NULL, NULL, train, 0.1, 1e-5, x, NULL, NULL);
        CHECK(train == 0 || memcmp(x, ys, (size_t)nx * sizeof *y) == 0);
        free(x), free(g), free(be), free(y), free(ys), free(st);
      }
}

/* Statistics whose double sums depend on the order of the positions (2^60 + 1 - 2^60 is 0, but
 * 2^60 - 2^60 + 1 is 1): the vectorised blocks must add each channel's values position after
 * position, as the plain loop, whatever their transposes do. The pattern is shifted per channel
 * and per sample, and hw = 35 leaves a tail after two 16-position blocks. */
static void bn_order_kept(void) {
  static const int64_t HW[] = {16, 32, 35}, C[] = {16, 32, 40, 48, 64}; /* 16- and 32-channel blocks, a rest */
  const float big = 1152921504606846976.0f; /* 2^60 */
  for (size_t a = 0; a < sizeof HW / sizeof *HW; a++)
    for (size_t ci = 0; ci < sizeof C / sizeof *C; ci++) {
      const int64_t n = 2, hw = HW[a], c = C[ci], nx = n * c * hw;
      float *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)nx * sizeof *y);
      float *ys = malloc((size_t)nx * sizeof *ys);
      float st[4 * 64];
      for (int64_t j = 0; j < n; j++)
        for (int64_t ch = 0; ch < c; ch++)
          for (int64_t i = 0; i < hw; i++) {
            const int64_t k = (i + ch + j) % 4;
            x[(j * c + ch) * hw + i] = k == 0 ? big : k == 1 ? 1.0f : k == 2 ? -big : 0.0f;
          }
      nn_bn_forward(x, n, c, hw, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, y, st, st + 64);
      bn_seq(x, n, c, hw, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, ys, st + 128, st + 192);
      CHECK(memcmp(st, st + 128, (size_t)c * sizeof *st) == 0);
      CHECK(memcmp(st + 64, st + 192, (size_t)c * sizeof *st) == 0);
      CHECK(memcmp(y, ys, (size_t)nx * sizeof *y) == 0);
      free(x), free(y), free(ys);
    }
}

/* The affine step runs per block of channels, sample by sample: in eval mode (running
 * statistics), in place (x is y) and in the adding form (y += BN(x)), over channel counts of
 * several blocks and a rest, every element is the sequential loop's, byte for byte. */
static void bn_blocks_affine(void) {
  static const int64_t C[] = {5, 16, 17, 40, 64};
  nn_rng r = nn_rng_seed(31);
  for (size_t ci = 0; ci < sizeof C / sizeof *C; ci++) {
    const int64_t n = 3, c = C[ci], hw = 37, nx = n * c * hw;
    float *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)nx * sizeof *y);
    float *ys = malloc((size_t)nx * sizeof *ys), *z = malloc((size_t)nx * sizeof *z);
    float g[64], b[64], rm[64], rv[64], rm2[64], rv2[64];
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(nn_rng_uniform(&r) * 6 - 2);
    for (int64_t k = 0; k < c; k++)
      g[k] = (float)(0.5 + nn_rng_uniform(&r)), b[k] = (float)(nn_rng_uniform(&r) - 0.5),
      rm[k] = rm2[k] = (float)(nn_rng_uniform(&r) - 0.5), rv[k] = rv2[k] = (float)(0.5 + nn_rng_uniform(&r));
    for (int train = 0; train <= 1; train++) {
      nn_bn_forward(x, n, c, hw, g, b, rm, rv, train, 0.1, 1e-5, y, NULL, NULL);
      bn_seq(x, n, c, hw, g, b, rm2, rv2, train, 0.1, 1e-5, ys, NULL, NULL);
      CHECK(memcmp(y, ys, (size_t)nx * sizeof *y) == 0);
      CHECK(memcmp(rm, rm2, (size_t)c * sizeof *rm) == 0 && memcmp(rv, rv2, (size_t)c * sizeof *rv) == 0);
      memcpy(z, x, (size_t)nx * sizeof *z); /* in place: the same values */
      nn_bn_forward(z, n, c, hw, g, b, NULL, NULL, train, 0.1, 1e-5, z, NULL, NULL);
      nn_bn_forward(x, n, c, hw, g, b, NULL, NULL, train, 0.1, 1e-5, y, NULL, NULL);
      CHECK(memcmp(z, y, (size_t)nx * sizeof *z) == 0);
      /* the adding form over channels [0, c): z = x, then z += BN(x) is x + (the sequential BN) */
      memcpy(z, x, (size_t)nx * sizeof *z);
      nn_bn_forward_channels(x, n, c, hw, 0, c, g, b, NULL, NULL, train, 0.1, 1e-5, z, z, NULL);
      bn_seq(x, n, c, hw, g, b, NULL, NULL, train, 0.1, 1e-5, ys, NULL, NULL);
      int64_t bad = 0;
      for (int64_t i = 0; i < nx; i++) {
        const float want = x[i] + ys[i];
        bad += memcmp(&want, z + i, sizeof want) != 0;
      }
      CHECK(bad == 0);
    }
    free(x), free(y), free(ys), free(z);
  }
}

/* A BatchNorm fed straight to a LIF or a pool (nn_bn_terms_channels, then nn_bn_lif_bits or
 * nn_bn_pool, the output made a chunk at a time and never stored) against the same steps on a
 * stored map: nn_bn_forward_channels (compared with the sequential BN above), then
 * nn_lif_step_bits or nn_avgpool over the whole map. Byte for byte: running averages, the
 * LIF's state and spikes, the pool's output; shapes with one chunk per sample, several, a
 * short last one, and maps whose rows fill no whole word (the whole sample at once), with the
 * samples cut in two calls as the threads cut them. */
static void bn_fed_bit_identical(void) {
  static const int64_t SH[][4] = {{3, 5, 7, 7},    {2, 40, 32, 32}, {3, 300, 7, 7}, {2, 3, 100, 100},
                                  {4, 16, 16, 16}, {2, 9, 6, 10},   {1, 1, 1, 1}};
  nn_rng r = nn_rng_seed(77);
  for (size_t si = 0; si < sizeof SH / sizeof *SH; si++) {
    const int64_t n = SH[si][0], c = SH[si][1], h = SH[si][2], w = SH[si][3], hw = h * w, nx = n * c * hw;
    const int64_t words = nn_spike_words(c * hw), cut = n / 2;
    float *x = malloc((size_t)nx * sizeof *x), *src = malloc((size_t)nx * sizeof *src);
    float *y = malloc((size_t)nx * sizeof *y), *v0 = malloc((size_t)nx * sizeof *v0);
    float *v1 = malloc((size_t)nx * sizeof *v1), *v2 = malloc((size_t)nx * sizeof *v2);
    float *tmp = malloc((size_t)(nn_bn_lif_tmp_floats(c, hw) > nn_bn_pool_tmp_floats(c, hw)
                                      ? nn_bn_lif_tmp_floats(c, hw)
                                      : nn_bn_pool_tmp_floats(c, hw)) * sizeof *tmp);
    float *p1 = malloc((size_t)nx * sizeof *p1), *p2 = malloc((size_t)nx * sizeof *p2);
    uint64_t *b1 = malloc((size_t)(n * words) * sizeof *b1), *b2 = malloc((size_t)(n * words) * sizeof *b2);
    float *g = malloc((size_t)c * sizeof *g), *be = malloc((size_t)c * sizeof *be), *ta = malloc((size_t)c * sizeof *ta),
          *tb = malloc((size_t)c * sizeof *tb), *rm1 = malloc((size_t)c * sizeof *rm1), *rv1 = malloc((size_t)c * sizeof *rv1),
          *rm2 = malloc((size_t)c * sizeof *rm2), *rv2 = malloc((size_t)c * sizeof *rv2);
    for (int64_t i = 0; i < nx; i++) {
      x[i] = (float)(nn_rng_uniform(&r) * 6 - 2), src[i] = (float)(nn_rng_uniform(&r) * 2 - 0.5);
      v0[i] = (float)(nn_rng_uniform(&r) * 1.2 - 0.1);
    }
    for (int64_t k = 0; k < c; k++)
      g[k] = (float)(0.5 + nn_rng_uniform(&r)), be[k] = (float)(nn_rng_uniform(&r) * 2 - 0.5),
      rm1[k] = rm2[k] = (float)(nn_rng_uniform(&r) - 0.5), rv1[k] = rv2[k] = (float)(0.5 + nn_rng_uniform(&r));
    const float tau = 4.0f / 3.0f, thr = 1.0f;
    for (int kind = 0; kind < 3; kind++)     /* 0: BN, 1: src + BN, 2: x + src (a node's sum) */
      for (int fresh = 0; fresh <= 1; fresh++) {
        /* stored: the map, then the LIF on it */
        if (kind == 2) {
          for (int64_t i = 0; i < nx; i++) y[i] = x[i] + src[i];
        } else {
          if (kind == 1) memcpy(y, src, (size_t)nx * sizeof *y);
          nn_bn_forward_channels(x, n, c, hw, 0, c, g, be, rm1, rv1, 1, 0.1, 1e-5, y, kind == 1 ? y : NULL, NULL);
        }
        memcpy(v1, v0, (size_t)nx * sizeof *v1), memcpy(v2, v0, (size_t)nx * sizeof *v2);
        memset(b1, 0xa5, (size_t)(n * words) * sizeof *b1), memset(b2, 0x5a, (size_t)(n * words) * sizeof *b2);
        const int64_t f1 = nn_lif_step_bits(v1, y, n, c * hw, tau, thr, fresh, b1);
        /* fed: the terms, then two calls over the samples */
        if (kind < 2) nn_bn_terms_channels(x, n, c, hw, 0, c, g, be, rm2, rv2, 1, 0.1, 1e-5, ta, tb, NULL);
        const float *sa = kind < 2 ? ta : NULL, *sb = kind < 2 ? tb : NULL, *ss = kind ? src : NULL;
        const int64_t f2 = nn_bn_lif_bits(x, ss, 0, cut, c, hw, sa, sb, tmp, v2, tau, thr, fresh, b2) +
                           nn_bn_lif_bits(x, ss, cut, n, c, hw, sa, sb, tmp, v2, tau, thr, fresh, b2);
        CHECK(f1 == f2);
        CHECK(nx < 16 || (f1 > 0 && f1 < nx)); /* some spikes, not all (a single neuron may do either) */
        CHECK(memcmp(b1, b2, (size_t)(n * words) * sizeof *b1) == 0);
        CHECK(memcmp(v1, v2, (size_t)nx * sizeof *v1) == 0);
        CHECK(memcmp(rm1, rm2, (size_t)c * sizeof *rm1) == 0 && memcmp(rv1, rv2, (size_t)c * sizeof *rv1) == 0);
      }
    /* a BN pooled: 2 x 2 (the downconv's) and 3 x 3 windows */
    for (int64_t k = 2; k <= 3; k++) {
      const int64_t out = n * c * (h / k) * (w / k);
      if (out == 0) continue;
      nn_bn_forward_channels(x, n, c, hw, 0, c, g, be, rm1, rv1, 1, 0.1, 1e-5, y, NULL, NULL);
      nn_avgpool(y, n * c, h, w, k, p1);
      nn_bn_terms_channels(x, n, c, hw, 0, c, g, be, rm2, rv2, 1, 0.1, 1e-5, ta, tb, NULL);
      memset(p2, 0xff, (size_t)out * sizeof *p2);
      nn_bn_pool(x, 0, cut, c, h, w, k, ta, tb, tmp, p2);
      nn_bn_pool(x, cut, n, c, h, w, k, ta, tb, tmp, p2);
      CHECK(memcmp(p1, p2, (size_t)out * sizeof *p1) == 0);
      CHECK(memcmp(rm1, rm2, (size_t)c * sizeof *rm1) == 0 && memcmp(rv1, rv2, (size_t)c * sizeof *rv1) == 0);
    }
    free(x), free(src), free(y), free(v0), free(v1), free(v2), free(tmp), free(p1), free(p2), free(b1), free(b2);
    free(g), free(be), free(ta), free(tb), free(rm1), free(rv1), free(rm2), free(rv2);
  }
}

/* the pool's s / 9 as a double multiply (nn_ops.c div9) is the float division, bit for bit:
 * random floats over the whole exponent range, subnormals, and the extremes */
static void div9_is_division(void) {
  nn_rng r = nn_rng_seed(24);
  int64_t bad = 0;
  for (int64_t i = 0; i < 4000000; i++) {
    uint32_t u = (uint32_t)nn_rng_u64(&r);
    if ((u & 0x7f800000u) == 0x7f800000u) continue; /* inf/NaN: below */
    float s;
    memcpy(&s, &u, sizeof s);
    volatile float q = s / 9.0f;
    float m = (float)((double)s * (1.0 / 9.0));
    bad += memcmp(&m, (const void *)&q, sizeof m) != 0;
  }
  CHECK(bad == 0);
  const float ext[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1.17549435e-38f, 3.4028235e38f, -3.4028235e38f, 9.0f, 1.0f};
  for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
    volatile float q = ext[i] / 9.0f;
    float m = (float)((double)ext[i] * (1.0 / 9.0));
    CHECK(memcmp(&m, (const void *)&q, sizeof m) == 0);
  }
  float inf = INFINITY, nan = NAN;
  CHECK(isinf((float)((double)inf * (1.0 / 9.0))) && isnan((float)((double)nan * (1.0 / 9.0))));
}

/* Both dispatch levels (the AVX-512 kernel where the CPU has it, and the AVX2 / baseline loops),
 * on maps whose rows are shorter than, exactly, and a few columns more than one or two 16-float
 * vectors (SNASNet's 32x32 and 16x16 among them), and with infinities and NaNs in the input (the
 * padding's +0.0f must leave them as the loop that skips it does). */
static void pool3_shapes(nn_rng *rng) {
  static const int64_t H[] = {1, 2, 3, 4, 7, 14, 16, 28, 32};
  static const int64_t W[] = {1, 2, 3, 5, 14, 15, 16, 17, 28, 31, 32, 33, 47};
  nn_rng r = *rng;
  for (size_t a = 0; a < sizeof H / sizeof *H; a++)
    for (size_t b = 0; b < sizeof W / sizeof *W; b++) {
      int64_t planes = 3, n = planes * H[a] * W[b];
      float *x = mixed(n, &r), *y = malloc((size_t)n * sizeof *y), *ys = malloc((size_t)n * sizeof *ys);
      float *yr = malloc((size_t)n * sizeof *yr);
      nn_avgpool3x3(x, planes, H[a], W[b], y);
      pool3_seq(x, planes, H[a], W[b], ys);
      nn_avgpool3x3_ref(x, planes, H[a], W[b], yr);
      CHECK(memcmp(y, ys, (size_t)n * sizeof *y) == 0);
      /* adding into a cell's node: node + pool, the pooled value rounded first */
      float *acc = mixed(n, &r), *acc2 = malloc((size_t)n * sizeof *acc2);
      for (int64_t i = 0; i < n; i++) acc2[i] = acc[i] + ys[i];
      nn_avgpool3x3_add(x, planes, H[a], W[b], acc);
      CHECK(memcmp(acc, acc2, (size_t)n * sizeof *acc) == 0);
      free(acc), free(acc2);
      /* float32 vs double sums: within a few ulps of the window's absolute sum */
      for (int64_t i = 0; i < n; i++) x[i] = fabsf(x[i]);
      nn_avgpool3x3_ref(x, planes, H[a], W[b], ys);
      for (int64_t i = 0; i < n; i++) CHECK_NEAR(y[i], yr[i], TOL_POOL * ys[i]);
      free(x), free(y), free(ys), free(yr);
    }
  /* 16 and 32 channels of 32 samples at 32x32 and 16x16 (the SNASNet setting's pools); a few
   * infinities and NaNs, whose sums must stay as the loop leaves them, and a plane of -0.0f (a
   * sum not started from +0.0f would keep its sign) */
  static const int64_t S[][3] = {{32 * 16, 32, 32}, {32 * 32, 16, 16}, {5 * 16, 9, 11}};
  for (size_t a = 0; a < sizeof S / sizeof *S; a++) {
    const int64_t planes = S[a][0], h = S[a][1], w = S[a][2], n = planes * h * w;
    float *x = mixed(n, &r), *y = malloc((size_t)n * sizeof *y), *ys = malloc((size_t)n * sizeof *ys);
    for (int64_t i = 0; i < n; i += 997) x[i] = i % 3 == 0 ? INFINITY : i % 3 == 1 ? -INFINITY : NAN;
    for (int64_t i = h * w; i < 2 * h * w; i++) x[i] = -0.0f; /* a plane of -0.0f pools to +0.0f */
    nn_avgpool3x3(x, planes, h, w, y);
    pool3_seq(x, planes, h, w, ys);
    CHECK(memcmp(y, ys, (size_t)n * sizeof *y) == 0);
    float *acc = mixed(n, &r), *acc2 = malloc((size_t)n * sizeof *acc2);
    for (int64_t i = 0; i < n; i++) acc2[i] = acc[i] + ys[i];
    nn_avgpool3x3_add(x, planes, h, w, acc);
    CHECK(memcmp(acc, acc2, (size_t)n * sizeof *acc) == 0);
    free(x), free(y), free(ys), free(acc), free(acc2);
  }
}

static void pool3_bit_identical(void) {
  nn_rng r = nn_rng_seed(22);
  for (int avx512 = 1; avx512 >= 0; avx512--) {
    nn_ops_set_avx512(avx512);
    pool3_shapes(&r);
  }
  nn_ops_set_avx512(1);
}

/* nn_avgpool (k = 2: the AVX-512 kernel where the CPU has it, and the plain loop; k = 3) ==
 * the sequential loop, byte for byte: widths below, at and above the AVX-512 kernel's 16
 * outputs (32 inputs) per vector, odd ones (the last column unused), and inputs with -0.0f,
 * infinities, NaNs and subnormals, whose sums and quarters must round and propagate alike; the
 * output's element after the last stays untouched (masked stores). */
static void pool_bit_identical(void) {
  static const int64_t H[] = {2, 3, 7, 14, 28};
  static const int64_t W[] = {2, 5, 14, 28, 31, 32, 33, 34, 64, 67};
  nn_rng r = nn_rng_seed(24);
  for (int avx512 = 1; avx512 >= 0; avx512--) {
    nn_ops_set_avx512(avx512);
    for (int64_t k = 2; k <= 3; k++)
      for (size_t a = 0; a < sizeof H / sizeof *H; a++)
        for (size_t b = 0; b < sizeof W / sizeof *W; b++) {
          int64_t planes = 3, n = planes * H[a] * W[b], m = planes * (H[a] / k) * (W[b] / k);
          float *x = mixed(n, &r), *y = calloc((size_t)m + 1, sizeof *y), *ys = calloc((size_t)m + 1, sizeof *ys);
          for (int64_t i = 0; i < n; i++) {
            const float u = nn_rng_uniformf(&r);
            if (u < 0.02f) x[i] = -0.0f;
            else if (u < 0.03f) x[i] = u < 0.025f ? INFINITY : -INFINITY;
            else if (u < 0.035f) x[i] = NAN;
            else if (u < 0.05f) x[i] = (u < 0.04f ? -1.0f : 1.0f) * 0x1p-148f * (float)(1 + (int)(u * 1e4f) % 7);
          }
          y[m] = ys[m] = 7.0f;
          nn_avgpool(x, planes, H[a], W[b], k, y);
          pool_seq(x, planes, H[a], W[b], k, ys);
          CHECK(memcmp(y, ys, (size_t)(m + 1) * sizeof *y) == 0);
          free(x), free(y), free(ys);
        }
  }
  nn_ops_set_avx512(1);
}

static void pack_bit_identical(void) {
  static const int64_t N[] = {1, 63, 64, 65, 127, 128, 200, 784, 1568};
  nn_rng r = nn_rng_seed(23);
  for (size_t a = 0; a < sizeof N / sizeof *N; a++) {
    int64_t S = 5, n = N[a], words = nn_spike_words(n);
    float *s = malloc((size_t)(S * n) * sizeof *s);
    uint64_t *b1 = malloc((size_t)(S * words) * sizeof *b1), *b2 = malloc((size_t)(S * words) * sizeof *b2);
    for (int64_t i = 0; i < S * n; i++) {
      float u = nn_rng_uniformf(&r);
      s[i] = u < 0.1f ? 1.0f : u < 0.12f ? -0.0f : u < 0.14f ? NAN : u < 0.16f ? 0.5f : 0.0f;
    }
    int64_t f1 = nn_spikes_pack(s, S, n, b1), f2 = nn_spikes_pack_ref(s, S, n, b2);
    CHECK(f1 == f2 && f1 > 0);
    CHECK(memcmp(b1, b2, (size_t)(S * words) * sizeof *b1) == 0);
    free(s), free(b1), free(b2);
  }
  /* hand-made: neurons 0, 4 and 69 of sample 0 (70 neurons, two words), none in sample 1 */
  float s[140] = {0};
  uint64_t bits[4];
  s[0] = s[4] = s[69] = 1;
  CHECK(nn_spikes_pack(s, 2, 70, bits) == 3);
  CHECK(bits[0] == 0x11u && bits[1] == ((uint64_t)1 << 5) && bits[2] == 0 && bits[3] == 0);
}

/* nn_conv2d_events == the kernel it replaced, byte for byte: shapes with odd sizes, rows of
 * fewer, exactly and more than 64 columns, strides 1 to 3, k = 1, 3, 5, 7, paddings 0 .. k,
 * output channel counts that are and are not multiples of 8 (and small and large enough to
 * split into several tiles and bands), rates 0 to 100 %. Each call runs with both band kernels
 * (the scatter and, where it fits, the output-stationary gather) and with the automatic choice;
 * the gather's shapes (3x3, stride 1, pad 1, o a multiple of 64, maps up to 62 wide) include
 * input channel counts that are and are not multiples of its 7-channel chunks, 64-channel tail
 * tiles (o = 64, 192, 320), several bands (maps of more than 256 positions) and widths 61, 62
 * and 63 (just above its limit). Some weights are -0.0f, so a sum not started from +0.0f shows.
 * The narrow shapes (SNASNet's scaled-down setting: 16 and 32 channels on 32x32 and 16x16 maps,
 * and odd ones) run the scatter's 16- and 32-channel tiles and, for o = 32, the lockstep
 * output-stationary kernel: input channel counts below, at and above its 7-channel chunks, maps
 * whose positions are not a multiple of its 8 lanes, and a whole band of exhausted masks (0 %);
 * their 1x1 convs the masked-add kernel: maps of fewer and more than 16 positions and not a
 * multiple of 16 (a channel's 16 bits then straddle two words), and 1x1 shapes it must not take
 * (stride 2, padding 1). The wide 1x1 convs (o a multiple of 64) take the output-stationary gather
 * too, with 63 input channels per chunk (see the shapes below). */
static int expect_gather(const nn_conv_geom *g) {
#if defined(__x86_64__) && defined(__GNUC__)
  const int avx512 = __builtin_cpu_supports("avx512f") != 0;
#else
  const int avx512 = 0;
#endif
  if (g->k == 1 && g->stride == 1 && g->pad == 0 && (g->o == 16 || g->o == 32 || g->o % 64 == 0)) return avx512;
  return avx512 && g->k == 3 && g->stride == 1 && g->pad == 1 && g->w <= 62 && (g->o % 64 == 0 || g->o == 32);
}

/* the narrow output-stationary kernels, taken at every firing rate */
static int expect_always(const nn_conv_geom *g) { return expect_gather(g) && g->o <= 32; }

static void events_bit_identical(void) {
  static const nn_conv_geom G[] = {
      {3, 16, 28, 28, 16, 3, 1, 1}, {2, 8, 10, 10, 16, 3, 1, 1},   {2, 5, 9, 9, 7, 1, 1, 0},
      {2, 4, 9, 8, 6, 3, 2, 1},     {2, 3, 8, 8, 4, 5, 1, 2},      {2, 3, 11, 13, 10, 7, 1, 3},
      {2, 6, 13, 11, 5, 7, 2, 3},   {1, 9, 7, 9, 136, 3, 1, 1},    {1, 16, 32, 32, 128, 3, 1, 1},
      {2, 8, 15, 17, 24, 3, 2, 0},  {2, 4, 6, 5, 3, 1, 2, 0},      {1, 8, 33, 33, 64, 3, 1, 1},
      {1, 7, 12, 12, 48, 5, 2, 2},  {1, 5, 20, 21, 300, 3, 1, 1},  {2, 6, 9, 10, 8, 3, 1, 0},
      {2, 3, 5, 6, 8, 3, 1, 2},     {1, 4, 1, 1, 8, 1, 1, 0},      {1, 3, 1, 7, 16, 3, 1, 1},
      {1, 8, 16, 16, 256, 1, 1, 0}, {1, 12, 32, 32, 128, 1, 1, 0}, {1, 4, 40, 40, 32, 3, 1, 1},
      {2, 5, 10, 10, 40, 3, 2, 1},  {1, 3, 5, 70, 16, 3, 1, 1},   {1, 3, 4, 64, 8, 3, 1, 1},
      {1, 2, 6, 6, 8, 3, 1, 3},     {1, 4, 11, 10, 16, 3, 3, 1},  {1, 2, 3, 130, 8, 5, 2, 2},
      {1, 4, 64, 64, 128, 3, 2, 1}, {1, 3, 40, 40, 128, 5, 1, 2},
      /* the gather's shapes */
      {2, 10, 32, 32, 128, 3, 1, 1}, {1, 20, 16, 16, 256, 3, 1, 1}, {2, 9, 8, 8, 64, 3, 1, 1},
      {1, 10, 17, 13, 192, 3, 1, 1}, {1, 8, 13, 17, 320, 3, 1, 1},  {1, 14, 6, 7, 64, 3, 1, 1},
      {1, 7, 5, 62, 128, 3, 1, 1},   {1, 5, 6, 61, 64, 3, 1, 1},    {1, 5, 4, 63, 64, 3, 1, 1},
      {1, 3, 1, 1, 64, 3, 1, 1},     {2, 1, 3, 2, 128, 3, 1, 1},    {1, 15, 9, 30, 64, 3, 1, 1},
      /* narrow tiles */
      {2, 16, 32, 32, 16, 3, 1, 1},  {2, 16, 32, 32, 32, 3, 1, 1},  {2, 32, 16, 16, 32, 3, 1, 1},
      {2, 16, 32, 32, 16, 1, 1, 0},  {2, 32, 16, 16, 32, 1, 1, 0},  {1, 5, 7, 9, 32, 3, 1, 1},
      {1, 7, 13, 11, 32, 3, 1, 1},   {1, 8, 5, 61, 32, 3, 1, 1},    {1, 3, 1, 3, 32, 3, 1, 1},
      {1, 16, 9, 7, 16, 3, 1, 1},    {1, 32, 16, 16, 32, 3, 2, 1},  {1, 16, 6, 63, 32, 3, 1, 1},
      {1, 16, 5, 7, 16, 1, 1, 0},    {2, 3, 9, 9, 32, 1, 1, 0},     {1, 20, 1, 3, 16, 1, 1, 0},
      {1, 16, 8, 8, 32, 1, 2, 0},    {1, 16, 8, 8, 16, 1, 1, 1},
      /* the wide 1x1 gather: 63-channel chunks (input channels below, at, just above and well
       * above 63 and 126), one tile and several (o = 64, 128, 192, 256, 320), maps whose rows
       * straddle words, one and several bands, positions not a multiple of 16, rows wider than
       * the 3x3 gather's limit, and 1x1 shapes it must not take */
      {2, 1, 5, 7, 64, 1, 1, 0},     {1, 62, 9, 9, 128, 1, 1, 0},   {2, 63, 8, 8, 64, 1, 1, 0},
      {1, 64, 7, 5, 192, 1, 1, 0},   {1, 127, 4, 4, 256, 1, 1, 0},  {1, 130, 3, 11, 320, 1, 1, 0},
      {1, 40, 17, 19, 128, 1, 1, 0}, {1, 9, 3, 100, 64, 1, 1, 0},   {1, 70, 16, 16, 256, 1, 1, 0},
      {1, 20, 8, 8, 128, 1, 2, 0},   {1, 20, 8, 8, 128, 1, 1, 1},   {1, 20, 8, 8, 96, 1, 1, 0},
  };
  static const double rates[] = {0.0, 0.02, 0.1, 0.2, 0.3, 1.0};
  static const nn_events_kernel kernels[] = {NN_EVENTS_SCATTER, NN_EVENTS_GATHER, NN_EVENTS_AUTO};
  nn_rng r = nn_rng_seed(25);
  int64_t gathered = 0;
  for (size_t gi = 0; gi < sizeof G / sizeof *G; gi++) {
    CHECK(nn_conv2d_events_gather_fits(&G[gi]) == expect_gather(&G[gi]));
    for (size_t ri = 0; ri < sizeof rates / sizeof *rates; ri++) {
      const nn_conv_geom *g = &G[gi];
      const int64_t neurons = g->c * g->h * g->w, words = nn_spike_words(neurons);
      const int64_t nw = g->o * g->c * g->k * g->k, ny = g->n * g->o * nn_conv_ho(g) * nn_conv_wo(g);
      float *x = malloc((size_t)(g->n * neurons) * sizeof *x), *w = mixed(nw, &r);
      float *wcl = malloc((size_t)nw * sizeof *wcl);
      float *y = malloc((size_t)ny * sizeof *y), *ys = malloc((size_t)ny * sizeof *ys);
      uint64_t *bits = malloc((size_t)(g->n * words) * sizeof *bits);
      for (int64_t i = 0; i < g->n * neurons; i++) x[i] = nn_rng_uniform(&r) < rates[ri] ? 1.0f : 0.0f;
      for (int64_t i = 7; i < nw; i += 41) w[i] = -0.0f;
      nn_spikes_pack(x, g->n, neurons, bits);
      nn_conv2d_weight_cl(g, w, wcl);
      events_seq(g, bits, wcl, ys, g->o); /* one tile: the tile width changes no bit */
      if (g->o % 8 == 0) {
        events_seq(g, bits, wcl, y, 8);
        CHECK(memcmp(y, ys, (size_t)ny * sizeof *y) == 0);
      }
      for (size_t ki = 0; ki < sizeof kernels / sizeof *kernels; ki++) {
        nn_error err;
        nn_conv2d_events_set_kernel(kernels[ki]);
        const int64_t before = nn_conv2d_events_gathered();
        memset(y, 0xff, (size_t)ny * sizeof *y); /* NaNs: every output must be written */
        CHECK(nn_conv2d_events(g, bits, wcl, y, &err) == NN_OK);
        CHECK(memcmp(y, ys, (size_t)ny * sizeof *y) == 0);
        const int64_t took = nn_conv2d_events_gathered() - before;
        gathered += took;
        if (kernels[ki] == NN_EVENTS_SCATTER) CHECK(took == 0);
        if (kernels[ki] == NN_EVENTS_GATHER) CHECK(took == (expect_gather(g) ? g->n : 0));
        /* the automatic choice: the gather at 100 % firing where it fits, at 0 % only the narrow ones */
        if (kernels[ki] == NN_EVENTS_AUTO && rates[ri] == 1.0) CHECK(took == (expect_gather(g) ? g->n : 0));
        if (kernels[ki] == NN_EVENTS_AUTO && rates[ri] == 0.0) CHECK(took == (expect_always(g) ? g->n : 0));
      }
      nn_conv2d_events_set_kernel(NN_EVENTS_AUTO);
      free(x), free(w), free(wcl), free(y), free(ys), free(bits);
    }
  }
  int any = 0;
  for (size_t gi = 0; gi < sizeof G / sizeof *G; gi++) any |= expect_gather(&G[gi]);
  CHECK(any == (gathered > 0)); /* on an AVX-512 machine the gather did run */
}

/* The gather's integer sums (weights k U, |k| <= 128, U a power of two: what FxP-8 and narrower
 * quantizers make) == the sequential float sums, byte for byte: 3x3 and 1x1 shapes with one, four
 * and five chunks (a group of four and a lone one), a 64-channel tail tile, an odd number of
 * positions, and firing from 0 to 100 %. Weight kinds: random k (some -0.0f) at scales 2^-3 to
 * 2^-20; all +128 U or all -128 U at 100 % firing (the int16 group sums at their bound, 4 x 63 x
 * 128); |k| <= 64, so U is half the quantizer's step. Kinds that must keep the float sums (and so
 * must not count as integer): a weight that is half a step, one of 129 steps (U doubles, odd k's
 * are no multiples), a unit below FLT_MIN, one above 2^100 (sums that could overflow), a NaN
 * weight's neighbours (the NaN is in the sums either way). The float kernel (integer sums off) gives the same bytes too. */
static void events_integer_bit_identical(void) {
  static const nn_conv_geom G[] = {
      {2, 10, 32, 32, 128, 3, 1, 1}, {1, 20, 16, 16, 256, 3, 1, 1}, {1, 10, 17, 13, 192, 3, 1, 1},
      {1, 30, 9, 9, 64, 3, 1, 1},    {1, 29, 7, 5, 128, 3, 1, 1},    {1, 3, 1, 1, 64, 3, 1, 1},
      {1, 130, 3, 11, 320, 1, 1, 0}, {2, 260, 4, 4, 128, 1, 1, 0},  {1, 7, 5, 9, 64, 1, 1, 0},
  };
  enum { RANDOM, MAX_POS, MAX_NEG, HALF_RANGE, HALF_STEP, K129, TINY, HUGE, NAN_W, KINDS };
  static const double rates[] = {0.0, 0.1, 0.3, 1.0};
#if defined(__x86_64__) && defined(__GNUC__)
  const int bw = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#else
  const int bw = 0;
#endif
  nn_rng r = nn_rng_seed(27);
  int64_t integer = 0;
  nn_conv2d_events_set_kernel(NN_EVENTS_GATHER);
  for (size_t gi = 0; gi < sizeof G / sizeof *G; gi++)
    for (int kind = 0; kind < KINDS; kind++)
      for (size_t ri = 0; ri < sizeof rates / sizeof *rates; ri++) {
        const nn_conv_geom *g = &G[gi];
        const double rate = kind == MAX_POS || kind == MAX_NEG ? 1.0 : rates[ri];
        if ((kind == MAX_POS || kind == MAX_NEG) && ri > 0) continue;
        const int64_t neurons = g->c * g->h * g->w, words = nn_spike_words(neurons);
        const int64_t nw = g->o * g->c * g->k * g->k, ny = g->n * g->o * nn_conv_ho(g) * nn_conv_wo(g);
        const int f = kind == TINY ? 140 : kind == HUGE ? -110 : 3 + (int)nn_rng_below(&r, 18); /* the step 2^-f */
        float *x = malloc((size_t)(g->n * neurons) * sizeof *x), *w = malloc((size_t)nw * sizeof *w);
        float *wcl = malloc((size_t)nw * sizeof *wcl);
        float *y = malloc((size_t)ny * sizeof *y), *ys = malloc((size_t)ny * sizeof *ys);
        uint64_t *bits = malloc((size_t)(g->n * words) * sizeof *bits);
        for (int64_t i = 0; i < g->n * neurons; i++) x[i] = nn_rng_uniform(&r) < rate ? 1.0f : 0.0f;
        for (int64_t i = 0; i < nw; i++) {
          const int k = kind == MAX_POS ? 128 : kind == MAX_NEG ? -128 : (int)nn_rng_below(&r, 257) - 128;
          w[i] = ldexpf((float)(kind == HALF_RANGE ? k / 2 : k), -f);
          if (k == 0 && i % 2) w[i] = -0.0f;
        }
        if (kind == HALF_STEP) w[nw / 2] = ldexpf(0.5f, -f);
        if (kind == K129) w[nw - 1] = ldexpf(129.0f, -f);
        if (kind == NAN_W) w[nw / 3] = NAN;
        nn_spikes_pack(x, g->n, neurons, bits);
        nn_conv2d_weight_cl(g, w, wcl);
        events_seq(g, bits, wcl, ys, g->o);
        for (int on = 1; on >= 0; on--) {
          nn_error err;
          nn_conv2d_events_set_integer(on);
          const int64_t before = nn_conv2d_events_integer();
          memset(y, 0xff, (size_t)ny * sizeof *y);
          CHECK(nn_conv2d_events(g, bits, wcl, y, &err) == NN_OK);
          CHECK(memcmp(y, ys, (size_t)ny * sizeof *y) == 0);
          const int exact = kind < HALF_STEP;
          const int64_t took = nn_conv2d_events_integer() - before;
          CHECK(took == (on && exact && bw ? g->n : 0));
          integer += took;
          /* the channel sums: each channel's sequential double sum of its outputs, in units; and a
           * BatchNorm given them makes the same bytes as one that sums its input itself */
          int64_t *sums = calloc((size_t)g->o, sizeof *sums);
          float unit = -1;
          memset(y, 0xff, (size_t)ny * sizeof *y);
          CHECK(nn_conv2d_events_sums(g, bits, wcl, y, sums, &unit, &err) == NN_OK);
          CHECK(memcmp(y, ys, (size_t)ny * sizeof *y) == 0);
          CHECK((unit > 0) == (took > 0));
          const int64_t P = nn_conv_ho(g) * nn_conv_wo(g);
          double *dsum = malloc((size_t)g->o * sizeof *dsum);
          for (int64_t o = 0; o < g->o; o++) {
            double seq = 0;
            for (int64_t j = 0; j < g->n; j++)
              for (int64_t q = 0; q < P; q++) seq += ys[(j * g->o + o) * P + q];
            CHECK(unit > 0 ? (double)sums[o] * unit == seq : sums[o] == 0);
            dsum[o] = (double)sums[o] * unit;
          }
          if (unit > 0) {
            float *gam = malloc((size_t)g->o * 2 * sizeof *gam), *z1 = malloc((size_t)ny * sizeof *z1),
                  *z2 = malloc((size_t)ny * sizeof *z2);
            for (int64_t o = 0; o < 2 * g->o; o++) gam[o] = 0.5f + nn_rng_uniformf(&r);
            nn_bn_forward_channels(ys, g->n, g->o, P, 0, g->o, gam, gam + g->o, NULL, NULL, 1, 0.1, 1e-5, z1, NULL, NULL);
            nn_bn_forward_channels(ys, g->n, g->o, P, 0, g->o, gam, gam + g->o, NULL, NULL, 1, 0.1, 1e-5, z2, NULL, dsum);
            CHECK(memcmp(z1, z2, (size_t)ny * sizeof *z1) == 0);
            free(gam), free(z1), free(z2);
          }
          free(sums), free(dsum);
        }
        nn_conv2d_events_set_integer(1);
        free(x), free(w), free(wcl), free(y), free(ys), free(bits);
      }
  nn_conv2d_events_set_kernel(NN_EVENTS_AUTO);
  CHECK(integer > 0 || !bw); /* on an AVX-512BW machine the integer sums did run */
}

/* Whole nets: a cifar100-shaped net with 64 and 128 channels (its convs take the wide gather),
 * quantized to FxP-8 and FxP-4, scores the same bits with the integer sums on and off, on one
 * and two threads; the integer sums did run, and the BatchNorms after them took their means from
 * the conv's channel sums (and neither at FxP-16, whose steps are too fine). */
static void integer_net_bit_identical(void) {
  static const int bits[] = {8, 4, 16};
  nn_error err;
  nn_net_params p = nn_net_params_default();
  CHECK(nn_net_params_preset(&p, "cifar100", &err) == NN_OK);
  p.channels = 64, p.fc_width = 64;
  CHECK(nn_cell_parse("0302 0030 3003 0000", NN_CELL_FORM_AUTO, &p.cell_a, &err) == NN_OK);
  p.cell_b = p.cell_a;
  nn_tensor *x = nn_tensor_new4(4, 6, 3, 32, 32, &err);
  nn_rng r = nn_rng_seed(28);
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)(2.0 * nn_rng_uniform(&r) - 1.0);
  const nn_tensor *batch[1] = {x};
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  for (size_t bi = 0; bi < sizeof bits / sizeof *bits && net; bi++) {
    nn_quant_params qp = nn_quant_params_default();
    qp.bits = bits[bi];
    nn_net *q = nn_quant_net(&qp, net, NULL, &err);
    CHECK(q != NULL);
    if (!q) continue;
    double score[2][2];
    int64_t took[2] = {0, 0}, given[2] = {0, 0};
    for (int on = 0; on <= 1; on++)
      for (int threads = 1; threads <= 2; threads++) {
        nn_fitness_opts o = {.threads = threads};
        nn_fitness_diag d;
        nn_conv2d_events_set_integer(on);
        const int64_t before = nn_conv2d_events_integer(), gb = nn_bn_given_sums();
        CHECK(nn_fitness_eval(q, batch, 1, &o, &score[on][threads - 1], &d, &err) == NN_OK);
        took[on] += nn_conv2d_events_integer() - before;
        given[on] += nn_bn_given_sums() - gb;
      }
    nn_conv2d_events_set_integer(1);
    CHECK(isfinite(score[0][0]));
    CHECK(memcmp(score[0], score[1], sizeof score[0]) == 0 && score[0][0] == score[0][1]);
    CHECK(took[0] == 0 && given[0] == 0);
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
      CHECK((took[1] > 0) == (bits[bi] <= 8));
      CHECK((given[1] > 0) == (bits[bi] <= 8)); /* the BatchNorms after those convs took their sums */
    }
#endif
    nn_net_free(q);
  }
  nn_net_free(net);
  nn_tensor_free(x);
}

/* A BatchNorm given its channels' sums (exact: every value K 2^-10, |K| < 2^20, so any order of
 * double additions is exact) writes the same bytes and running statistics as one that sums
 * them itself: channel counts below, at and above the 16-channel blocks (the scalar 8-channel
 * statistics included), a channel range that starts inside a block, with and without a base. */
static void bn_given_sums(void) {
  static const int64_t C[] = {1, 3, 8, 13, 16, 20, 40};
  nn_rng r = nn_rng_seed(29);
  for (size_t a = 0; a < sizeof C / sizeof *C; a++)
    for (int based = 0; based <= 1; based++) {
      const int64_t n = 3, c = C[a], hw = 49, nx = n * c * hw, ch0 = c > 4 ? 3 : 0;
      float *x = malloc((size_t)nx * sizeof *x), *y1 = malloc((size_t)nx * sizeof *y1),
            *y2 = malloc((size_t)nx * sizeof *y2), *st = malloc((size_t)c * 6 * sizeof *st);
      double *sum = calloc((size_t)c, sizeof *sum);
      for (int64_t i = 0; i < nx; i++) x[i] = ldexpf((float)((int64_t)nn_rng_below(&r, 1 << 21) - (1 << 20)), -10);
      for (int64_t j = 0; j < n; j++)
        for (int64_t ch = 0; ch < c; ch++)
          for (int64_t i = 0; i < hw; i++) sum[ch] += x[(j * c + ch) * hw + i];
      for (int64_t i = 0; i < 6 * c; i++) st[i] = 0.5f + nn_rng_uniformf(&r);
      float *g = st, *b = st + c, *rm1 = st + 2 * c, *rv1 = st + 3 * c, *rm2 = st + 4 * c, *rv2 = st + 5 * c;
      memcpy(rm2, rm1, (size_t)(2 * c) * sizeof *rm1);
      for (int64_t i = 0; i < nx; i++) y1[i] = y2[i] = (float)i;
      nn_bn_forward_channels(x, n, c, hw, ch0, c, g, b, rm1, rv1, 1, 0.1, 1e-5, y1, based ? y1 : NULL, NULL);
      const int64_t before = nn_bn_given_sums();
      nn_bn_forward_channels(x, n, c, hw, ch0, c, g, b, rm2, rv2, 1, 0.1, 1e-5, y2, based ? y2 : NULL, sum);
      CHECK(nn_bn_given_sums() > before);
      CHECK(memcmp(y1, y2, (size_t)nx * sizeof *y1) == 0);
      CHECK(memcmp(rm1, rm2, (size_t)(2 * c) * sizeof *rm1) == 0);
      free(x), free(y1), free(y2), free(st), free(sum);
    }
}

/* nn_net_new_cached: every tensor bit-identical to nn_net_new's, across cells, seeds and presets
 * (hits come from other cells with the same layer paths and shapes); a full store still works. */
static void init_cache_bit_identical(void) {
  static const char *cells[] = {"101021", "111111", "000000", "212121", "120111", "101021"};
  static const char *presets[] = {"fashion-mnist", "cifar100"};
  nn_error err;
  nn_init_cache *c = nn_init_cache_new((int64_t)1 << 30, &err), *tiny = nn_init_cache_new(1000, &err);
  CHECK(c != NULL && tiny != NULL);
  CHECK(nn_init_cache_new(-1, &err) == NULL && err.code == NN_EINVAL);
  for (size_t pi = 0; pi < 2; pi++)
    for (uint64_t seed = 1; seed <= 2; seed++)
      for (size_t i = 0; i < sizeof cells / sizeof *cells; i++) {
        nn_net_params p = nn_net_params_default();
        p.seed = seed;
        CHECK(nn_net_params_preset(&p, presets[pi], &err) == NN_OK);
        if (pi == 1) p.channels = 8, p.fc_width = 32; /* small cifar100 */
        CHECK(nn_cell_parse(cells[i], NN_CELL_FORM_AUTO, &p.cell_a, &err) == NN_OK);
        CHECK(nn_cell_parse(cells[(i + 1) % 6], NN_CELL_FORM_AUTO, &p.cell_b, &err) == NN_OK);
        nn_net *a = nn_net_new(&p, &err), *b = nn_net_new_cached(&p, c, &err), *t = nn_net_new_cached(&p, tiny, &err);
        CHECK(a && b && t);
        if (!a || !b || !t) continue;
        CHECK(nn_net_tensor_count(a) == nn_net_tensor_count(b));
        for (size_t k = 0; k < nn_net_tensor_count(a); k++) {
          const nn_tensor *x = nn_net_tensor(a, k), *y = nn_net_tensor(b, k), *z = nn_net_tensor(t, k);
          CHECK(x->numel == y->numel && !memcmp(x->data, y->data, (size_t)x->numel * sizeof(float)));
          CHECK(x->numel == z->numel && !memcmp(x->data, z->data, (size_t)x->numel * sizeof(float)));
        }
        nn_net_free(a), nn_net_free(b), nn_net_free(t);
      }
  nn_init_cache_stats s = nn_init_cache_stats_of(c), st = nn_init_cache_stats_of(tiny);
  CHECK(s.hits > s.misses && s.entries == s.misses && s.bytes <= s.max_bytes);
  CHECK(st.bytes <= 1000 && st.entries < s.entries && st.hits + st.misses == s.hits + s.misses);
  nn_init_cache_free(c);
  nn_init_cache_free(tiny);
  nn_init_cache_free(NULL);
}

/* the params of net with random initial values (those the store keeps) */
static int64_t drawn_params(const nn_net *net) {
  const nn_plan *pl = nn_net_plan(net);
  int64_t k = 0;
  for (int i = 0; i < pl->nparams; i++) k += pl->params[i].init == NN_INIT_UNIFORM || pl->params[i].init == NN_INIT_NORMAL;
  return k;
}

/* nn_net_new_quantized: every tensor and the weight bits as nn_quant_net makes them from
 * nn_net_new's net, for each rounding, both scales, a fixed Qm.f, FxP2 to FxP32 and two seeds,
 * the quantizers taken in turn on one store (so a stored copy made under one must not serve
 * another), with no store and with a store too small to keep anything; a net built a second
 * time through the store is served whole by it (only hits, no new entries). */
static void init_cache_quantized(void) {
  static const char *cells[] = {"101021", "212121", "120111"};
  nn_quant_params qs[8];
  for (int i = 0; i < 8; i++) qs[i] = nn_quant_params_default();
  qs[1].bits = 4, qs[1].rounding = NN_ROUND_STOCHASTIC;
  qs[2].bits = 4, qs[2].rounding = NN_ROUND_STOCHASTIC, qs[2].seed = 2;
  qs[3].bits = 2, qs[3].rounding = NN_ROUND_FLOOR;
  qs[4].bits = 16, qs[4].rounding = NN_ROUND_ZERO;
  qs[5].bits = 32;
  qs[6].bits = 6, qs[6].scale = NN_QSCALE_MAXABS;
  qs[7].bits = 8, qs[7].int_bits = 1;
  nn_error err;
  nn_init_cache *c = nn_init_cache_new((int64_t)1 << 30, &err), *tiny = nn_init_cache_new(1000, &err);
  CHECK(c != NULL && tiny != NULL);
  for (int pi = 0; pi < 2; pi++)
    for (size_t i = 0; i < sizeof cells / sizeof *cells; i++)
      for (int qi = 0; qi < 8; qi++) {
        nn_net_params p = nn_net_params_default();
        CHECK(nn_net_params_preset(&p, pi ? "cifar100" : "fashion-mnist", &err) == NN_OK);
        if (pi) p.channels = 8, p.fc_width = 32;
        CHECK(nn_cell_parse(cells[i], NN_CELL_FORM_AUTO, &p.cell_a, &err) == NN_OK);
        CHECK(nn_cell_parse(cells[(i + 1) % 3], NN_CELL_FORM_AUTO, &p.cell_b, &err) == NN_OK);
        nn_net *f = nn_net_new(&p, &err), *ref = f ? nn_quant_net(&qs[qi], f, NULL, &err) : NULL;
        nn_net *got[3] = {nn_net_new_quantized(&p, c, &qs[qi], &err), nn_net_new_quantized(&p, NULL, &qs[qi], &err),
                          nn_net_new_quantized(&p, tiny, &qs[qi], &err)};
        CHECK(ref && got[0] && got[1] && got[2]);
        for (int g = 0; g < 3 && ref && got[g]; g++) {
          CHECK(nn_net_weight_bits(got[g]) == qs[qi].bits && nn_net_weight_bits(ref) == qs[qi].bits);
          CHECK(nn_net_tensor_count(got[g]) == nn_net_tensor_count(ref));
          for (size_t k = 0; k < nn_net_tensor_count(ref); k++) {
            const nn_tensor *x = nn_net_tensor(ref, k), *y = nn_net_tensor(got[g], k);
            CHECK(x->numel == y->numel && !memcmp(x->data, y->data, (size_t)x->numel * sizeof(float)));
          }
        }
        const nn_init_cache_stats before = nn_init_cache_stats_of(c);
        nn_net *again = nn_net_new_quantized(&p, c, &qs[qi], &err);
        const nn_init_cache_stats after = nn_init_cache_stats_of(c);
        CHECK(again && after.misses == before.misses && after.entries == before.entries);
        CHECK(after.hits - before.hits == drawn_params(ref));
        nn_net_free(again), nn_net_free(f), nn_net_free(ref);
        for (int g = 0; g < 3; g++) nn_net_free(got[g]);
      }
  const nn_init_cache_stats st = nn_init_cache_stats_of(tiny);
  CHECK(st.bytes <= 1000);
  nn_net_params p = nn_net_params_default();
  nn_quant_params bad = nn_quant_params_default();
  bad.bits = 40;
  CHECK(nn_net_new_quantized(&p, c, &bad, &err) == NULL && err.code == NN_EINVAL && strstr(err.msg, "bits"));
  CHECK(nn_net_new_quantized(&p, c, NULL, &err) == NULL && err.code == NN_EINVAL);
  nn_init_cache_free(c);
  nn_init_cache_free(tiny);
}

int main(void) {
  NN_TEST_RUN(bn_bit_identical);
  NN_TEST_RUN(bn_order_kept);
  NN_TEST_RUN(bn_blocks_affine);
  NN_TEST_RUN(bn_fed_bit_identical);
  NN_TEST_RUN(pool3_bit_identical);
  NN_TEST_RUN(div9_is_division);
  NN_TEST_RUN(pool_bit_identical);
  NN_TEST_RUN(pack_bit_identical);
  NN_TEST_RUN(events_bit_identical);
  NN_TEST_RUN(events_integer_bit_identical);
  NN_TEST_RUN(integer_net_bit_identical);
  NN_TEST_RUN(bn_given_sums);
  NN_TEST_RUN(init_cache_bit_identical);
  NN_TEST_RUN(init_cache_quantized);
  return NN_TEST_END();
}
