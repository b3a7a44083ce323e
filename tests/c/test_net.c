/* test_net.c: networks (docs/model.md): presets, layer lists and parameter counts (888,192, docs/model.md),
 * common-random-number initialisation, clone, weights I/O, and the whole forward pass against an
 * independent naive reference written here with plain loops (forward and backward cells, train
 * and eval BN, dense and event-driven convs), and the memory the LIF sharing saves. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "neuronas/nn.h"
#include "neuronas/nn_net.h"
#include "neuronas/nn_safetensors.h"
#include "nn_scratch.h"
#include "nn_test.h"

#define TOL_OUT 1e-5 /* relative to the largest output */

/* ================================================================ naive reference */

typedef struct ref {
  nn_net *net; /* weights are read by name; the reference never writes the net */
  const nn_net_params *p;
  int train;
  int64_t S;
  float *v[2][4][4]; /* LIF state per cell edge */
  float *bx[2][3];
  float *vdown, *vlast, *vcls;
  /* spike totals per (LIF name, step) */
  char names[64][48];
  int64_t counts[64][16];
  int nnames;
} ref;

static const float *W(ref *r, const char *name) {
  nn_tensor *t = nn_net_tensor_find(r->net, name);
  if (!t) fprintf(stderr, "reference: missing tensor %s\n", name);
  return t ? nn_tensor_data(t) : NULL;
}

static void count(ref *r, const char *name, int t, const float *s, int64_t n) {
  int i;
  for (i = 0; i < r->nnames && strcmp(r->names[i], name); i++) {}
  if (i == r->nnames) snprintf(r->names[r->nnames++], 48, "%s", name);
  for (int64_t j = 0; j < n; j++) r->counts[i][t] += s[j] != 0;
}

/* y[S][o][ho][wo], zero padding, double accumulation */
static float *rconv(const float *x, int64_t S, int64_t c, int64_t h, int64_t w, const float *wt, int64_t o,
                    int64_t k, int64_t st, int64_t *ho, int64_t *wo) {
  int64_t pad = k / 2, H = (h + 2 * pad - k) / st + 1, Wd = (w + 2 * pad - k) / st + 1;
  float *y = calloc((size_t)(S * o * H * Wd), sizeof *y);
  for (int64_t s = 0; s < S; s++)
    for (int64_t a = 0; a < o; a++)
      for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < Wd; j++) {
          double acc = 0;
          for (int64_t b = 0; b < c; b++)
            for (int64_t u = 0; u < k; u++)
              for (int64_t v = 0; v < k; v++) {
                int64_t ii = i * st + u - pad, jj = j * st + v - pad;
                if (ii >= 0 && ii < h && jj >= 0 && jj < w)
                  acc += (double)wt[((a * c + b) * k + u) * k + v] * x[((s * c + b) * h + ii) * w + jj];
              }
          y[((s * o + a) * H + i) * Wd + j] = (float)acc;
        }
  *ho = H, *wo = Wd;
  return y;
}

/* in place; train: batch stats (biased var); eval: running stats of the net */
static void rbn(ref *r, const char *path, float *x, int64_t c, int64_t hw) {
  char n[96];
  snprintf(n, sizeof n, "%s.weight", path);
  const float *g = W(r, n);
  snprintf(n, sizeof n, "%s.bias", path);
  const float *b = W(r, n);
  snprintf(n, sizeof n, "%s.running_mean", path);
  const float *rm = W(r, n);
  snprintf(n, sizeof n, "%s.running_var", path);
  const float *rv = W(r, n);
  for (int64_t ch = 0; ch < c; ch++) {
    double mean = 0, var = 0, m = (double)(r->S * hw);
    if (r->train) {
      for (int64_t s = 0; s < r->S; s++)
        for (int64_t i = 0; i < hw; i++) mean += x[(s * c + ch) * hw + i];
      mean /= m;
      for (int64_t s = 0; s < r->S; s++)
        for (int64_t i = 0; i < hw; i++) var += pow(x[(s * c + ch) * hw + i] - mean, 2);
      var /= m;
    } else {
      mean = rm[ch], var = rv[ch];
    }
    for (int64_t s = 0; s < r->S; s++)
      for (int64_t i = 0; i < hw; i++) {
        float *q = &x[(s * c + ch) * hw + i];
        *q = (float)((*q - mean) / sqrt(var + 1e-5) * g[ch] + b[ch]);
      }
  }
}

/* LIF in float32, spikes into a new array; v lazily zeroed */
static float *rlif(ref *r, float **v, const char *name, int t, const float *x, int64_t n) {
  if (!*v) *v = calloc((size_t)n, sizeof **v);
  float *s = malloc((size_t)n * sizeof *s);
  float tau = (float)r->p->tau, thr = (float)r->p->threshold;
  for (int64_t i = 0; i < n; i++) {
    float vv = (*v)[i];
    vv = vv + (x[i] - vv) / tau;
    s[i] = vv >= thr ? 1.0f : 0.0f;
    (*v)[i] = vv >= thr ? 0.0f : vv;
  }
  count(r, name, t, s, n);
  return s;
}

static float *rpool(const float *x, int64_t planes, int64_t h, int64_t w, int64_t k) {
  int64_t H = h / k, Wd = w / k;
  float *y = calloc((size_t)(planes * H * Wd), sizeof *y);
  for (int64_t p = 0; p < planes; p++)
    for (int64_t i = 0; i < H; i++)
      for (int64_t j = 0; j < Wd; j++) {
        double a = 0;
        for (int64_t u = 0; u < k; u++)
          for (int64_t v = 0; v < k; v++) a += x[(p * h + i * k + u) * w + j * k + v];
        y[(p * H + i) * Wd + j] = (float)(a / (double)(k * k));
      }
  return y;
}

/* op on edge i->j of cell ci; returns a new S x c x h x w array, or NULL for zero */
static float *rop(ref *r, int ci, int i, int j, const float *in, int64_t c, int64_t h, int64_t w, int t) {
  const nn_cell *cell = ci ? &r->p->cell_b : &r->p->cell_a;
  int op = cell->m[i][j];
  int64_t n = r->S * c * h * w, ho, wo;
  char name[64];
  const char *cn = ci ? "cellB" : "cellA";
  if (op == NN_OP_ZERO) return NULL;
  float *y = malloc((size_t)n * sizeof *y);
  if (op == NN_OP_SKIP) {
    memcpy(y, in, (size_t)n * sizeof *y);
    return y;
  }
  if (op == NN_OP_AVGPOOL3X3) {
    for (int64_t pl = 0; pl < r->S * c; pl++)
      for (int64_t a = 0; a < h; a++)
        for (int64_t b = 0; b < w; b++) {
          double sum = 0;
          for (int64_t u = a - 1; u <= a + 1; u++)
            for (int64_t v = b - 1; v <= b + 1; v++)
              if (u >= 0 && u < h && v >= 0 && v < w) sum += in[(pl * h + u) * w + v];
          y[(pl * h + a) * w + b] = (float)(sum / 9); /* count_include_pad */
        }
    return y;
  }
  int k = op == NN_OP_CONV1X1 ? 1 : op == NN_OP_CONV3X3 ? 3 : op == NN_OP_CONV5X5 ? 5 : 7;
  snprintf(name, sizeof name, "%s.e%d%d.lif", cn, i, j);
  float *s = rlif(r, &r->v[ci][i][j], name, t, in, n);
  snprintf(name, sizeof name, "%s.e%d%d.conv.weight", cn, i, j);
  free(y);
  y = rconv(s, r->S, c, h, w, W(r, name), c, k, 1, &ho, &wo);
  free(s);
  snprintf(name, sizeof name, "%s.e%d%d.bn", cn, i, j);
  rbn(r, name, y, c, h * w);
  return y;
}

static void addto(float *a, const float *b, int64_t n) {
  if (b)
    for (int64_t i = 0; i < n; i++) a[i] += b[i];
}

/* One timestep of cell ci on x0 (docs/model.md, written from the formulas); returns x3 (new). */
static float *rcell(ref *r, int ci, const float *x0, int64_t c, int64_t h, int64_t w, int t) {
  int64_t n = r->S * c * h * w;
  float *x[4], *y[4], *o;
  for (int i = 0; i < 3; i++)
    if (!r->bx[ci][i]) r->bx[ci][i] = calloc((size_t)n, sizeof(float));
  y[0] = malloc((size_t)n * sizeof(float));
  for (int64_t q = 0; q < n; q++) y[0][q] = x0[q] + r->bx[ci][0][q];
  x[0] = NULL;
  for (int j = 1; j < 4; j++) {
    x[j] = calloc((size_t)n, sizeof(float));
    for (int i = 0; i < j; i++) {
      addto(x[j], o = rop(r, ci, i, j, y[i], c, h, w, t), n);
      free(o);
    }
    y[j] = malloc((size_t)n * sizeof(float));
    for (int64_t q = 0; q < n; q++) y[j][q] = x[j][q] + (j < 3 ? r->bx[ci][j][q] : 0.0f);
  }
  /* backward edges j -> i, SNASNet order: bx0 = b10 + b20 + b30, bx1 = b21 + b31, bx2 = b32 */
  float *nb[3];
  for (int i = 0; i < 3; i++) {
    nb[i] = calloc((size_t)n, sizeof(float));
    for (int j = i + 1; j < 4; j++) {
      addto(nb[i], o = rop(r, ci, j, i, y[j], c, h, w, t), n);
      free(o);
    }
  }
  for (int i = 0; i < 3; i++) free(r->bx[ci][i]), r->bx[ci][i] = nb[i];
  for (int j = 0; j < 4; j++) free(y[j]);
  free(x[1]), free(x[2]);
  return x[3];
}

/* the whole net; returns S x classes */
static float *ref_forward(nn_net *net, const float *x, int64_t S, int train, ref *r) {
  memset(r, 0, sizeof *r);
  r->net = net, r->p = nn_net_params_of(net), r->train = train, r->S = S;
  const nn_net_params *p = r->p;
  int64_t C = p->channels, h0, w0, h1, w1, K = p->classes, CL = p->cluster, F = p->fc_width;
  float *x0 = rconv(x, S, p->in_ch, p->in_h, p->in_w, W(r, "stem.conv.weight"), C, 3, p->stem_stride, &h0, &w0);
  rbn(r, "stem.bn", x0, C, h0 * w0);
  float *out = calloc((size_t)(S * K), sizeof *out);
  for (int t = 0; t < p->timesteps; t++) {
    float *a = rcell(r, 0, x0, C, h0, w0, t);
    rbn(r, "downconv.bn1", a, C, h0 * w0);
    float *s = rlif(r, &r->vdown, "downconv.lif", t, a, S * C * h0 * w0), *d;
    int64_t hh, ww;
    d = rconv(s, S, C, h0, w0, W(r, "downconv.conv.weight"), 2 * C, 3, 1, &hh, &ww);
    rbn(r, "downconv.bn2", d, 2 * C, h0 * w0);
    float *b_in = rpool(d, S * 2 * C, h0, w0, 2);
    h1 = h0 / 2, w1 = w0 / 2;
    float *b = rcell(r, 1, b_in, 2 * C, h1, w1, t);
    rbn(r, "last.bn", b, 2 * C, h1 * w1);
    float *s2 = rlif(r, &r->vlast, "last.lif", t, b, S * 2 * C * h1 * w1);
    float *pooled = rpool(s2, S * 2 * C, h1, w1, p->second_pool);
    int64_t fin = 2 * C * (h1 / p->second_pool) * (w1 / p->second_pool);
    float *f1 = malloc((size_t)(S * F) * sizeof *f1), *f2 = malloc((size_t)(S * K * CL) * sizeof *f2);
    const float *w1t = W(r, "classifier.fc1.weight"), *w2t = W(r, "classifier.fc2.weight"),
                *b2 = W(r, "classifier.fc2.bias");
    for (int64_t j = 0; j < S; j++)
      for (int64_t o = 0; o < F; o++) {
        double acc = 0;
        for (int64_t i = 0; i < fin; i++) acc += (double)pooled[j * fin + i] * w1t[o * fin + i];
        f1[j * F + o] = (float)acc;
      }
    float *s3 = rlif(r, &r->vcls, "classifier.lif", t, f1, S * F);
    for (int64_t j = 0; j < S; j++)
      for (int64_t o = 0; o < K * CL; o++) {
        double acc = b2[o];
        for (int64_t i = 0; i < F; i++) acc += (double)s3[j * F + i] * w2t[o * F + i];
        f2[j * K * CL + o] = (float)acc;
      }
    for (int64_t j = 0; j < S; j++)
      for (int64_t k = 0; k < K; k++) {
        double m = 0;
        for (int64_t q = 0; q < CL; q++) m += f2[j * K * CL + k * CL + q];
        out[j * K + k] += (float)(m / (double)CL);
      }
    free(a), free(s), free(d), free(b_in), free(b), free(s2), free(pooled), free(f1), free(f2), free(s3);
  }
  for (int64_t i = 0; i < S * K; i++) out[i] /= (float)p->timesteps;
  free(x0);
  for (int c = 0; c < 2; c++) {
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) free(r->v[c][i][j]);
    for (int i = 0; i < 3; i++) free(r->bx[c][i]);
  }
  free(r->vdown), free(r->vlast), free(r->vcls);
  return out;
}

/* ================================================================ engine side observer */

typedef struct rec {
  char names[64][48];
  int64_t counts[64][16];
  int nnames, calls, suffix_seen, order_ok;
  int64_t fired_total[64];
} rec;

static void on_spikes(void *ud, const nn_spike_call *c) {
  rec *k = ud;
  int i;
  for (i = 0; i < k->nnames && strcmp(k->names[i], c->module); i++) {}
  if (i == k->nnames) snprintf(k->names[k->nnames++], 48, "%s", c->module);
  int64_t n = 0;
  for (int64_t s = 0; s < c->samples; s++) {
    for (int64_t w = 0; w < c->words; w++) n += __builtin_popcountll(c->bits[s * c->words + w]);
    if (c->neurons % 64) /* tail bits are zero */
      if (c->bits[s * c->words + c->words - 1] >> (c->neurons % 64)) k->order_ok = 0;
  }
  if (n != c->fired || c->words != (c->neurons + 63) / 64) k->order_ok = 0;
  k->counts[i][c->step] += n;
  k->calls++;
  /* prefix (stem..downconv) calls all come before suffix calls */
  int is_suffix = !strncmp(c->module, "cellB", 5) || !strncmp(c->module, "last", 4) || !strncmp(c->module, "classifier", 10);
  if (is_suffix) k->suffix_seen = 1;
  else if (k->suffix_seen) k->order_ok = 0;
}

static int64_t ref_count(const ref *r, const char *name, int t) {
  for (int i = 0; i < r->nnames; i++)
    if (!strcmp(r->names[i], name)) return r->counts[i][t];
  return -1;
}

static nn_net_params small_params(const char *cell_a, const char *cell_b, int64_t stem_stride, int64_t side) {
  nn_net_params p = nn_net_params_default();
  p.cell_a = nn_test_cell(cell_a);
  p.cell_b = nn_test_cell(cell_b);
  p.in_ch = 2, p.in_h = side, p.in_w = side, p.channels = 4, p.stem_stride = stem_stride;
  p.second_pool = 2, p.fc_width = 10, p.classes = 3, p.cluster = 2, p.timesteps = 4;
  p.seed = 42;
  return p;
}

static void compare_with_ref(const char *cell_a, const char *cell_b, int64_t stride, int64_t side,
                             nn_conv_mode mode) {
  nn_error err;
  nn_net_params p = small_params(cell_a, cell_b, stride, side);
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;
  nn_net_set_conv_mode(net, mode);
  /* at initialisation the classifier LIF never fires (fc1 ~ N(0, 0.01)) and the output is the
   * zero bias: scale fc1 and set a bias so that the whole classifier is exercised */
  nn_tensor *fc1 = nn_net_tensor_find(net, "classifier.fc1.weight"), *b2 = nn_net_tensor_find(net, "classifier.fc2.bias");
  for (int64_t i = 0; i < nn_tensor_numel(fc1); i++) nn_tensor_data(fc1)[i] *= 200.0f;
  for (int64_t i = 0; i < nn_tensor_numel(b2); i++) nn_tensor_data(b2)[i] = 0.01f * (float)(i % 5) - 0.02f;
  const int64_t S = 5;
  nn_tensor *x = nn_tensor_new4(4, S, p.in_ch, p.in_h, p.in_w, &err);
  nn_rng rng = nn_rng_seed(3);
  nn_tensor_normal(x, &rng, 0.0f, 1.0f);
  for (int train = 1; train >= 0; train--) { /* train first: it moves the running stats eval uses */
    static ref r;
    if (!train) /* let the running statistics settle so that eval mode still spikes */
      for (int i = 0; i < 12; i++) {
        nn_forward_opts ot = {.train = 1};
        nn_tensor *o2 = NULL;
        CHECK(nn_net_forward(net, x, &ot, &o2, &err) == NN_OK);
        nn_tensor_free(o2);
      }
    static rec k;
    memset(&k, 0, sizeof k);
    k.order_ok = 1;
    float *want = ref_forward(net, nn_tensor_data(x), S, train, &r);
    nn_forward_opts o = {.train = train, .on_spikes = on_spikes, .ud = &k};
    nn_tensor *out = NULL;
    float stem_rm_before = nn_tensor_data(nn_net_tensor_find(net, "stem.bn.running_mean"))[0];
    CHECK(nn_net_forward(net, x, &o, &out, &err) == NN_OK);
    if (!out) break;
    CHECK(nn_tensor_dim(out, 0) == S && nn_tensor_dim(out, 1) == p.classes);
    double mx = 0, md = 0;
    for (int64_t i = 0; i < S * p.classes; i++) {
      mx = fmax(mx, fabs(want[i]));
      double d = fabs(nn_tensor_data(out)[i] - want[i]);
      if (!(d <= md)) md = d;
    }
    CHECK(mx > 0);
    CHECK_NEAR(md / mx, 0, TOL_OUT);
    /* spike totals per (module, step) */
    CHECK(k.order_ok);
    CHECK(k.nnames == r.nnames);
    CHECK(k.nnames == (int)nn_net_lif_count(net));
    int64_t total = 0;
    for (int i = 0; i < k.nnames; i++)
      for (int t = 0; t < p.timesteps; t++) {
        CHECK(k.counts[i][t] == ref_count(&r, k.names[i], t));
        total += k.counts[i][t];
      }
    CHECK(total > 0);
    for (int i = 0; i < k.nnames; i++)
      if (!strcmp(k.names[i], "classifier.lif")) CHECK(k.counts[i][1] + k.counts[i][2] + k.counts[i][3] > 0);
    /* firing rates reported per module = observer totals / (S * neurons * T) */
    for (size_t l = 0; l < nn_net_lif_count(net); l++) {
      int64_t f = 0;
      for (int i = 0; i < k.nnames; i++)
        if (!strcmp(k.names[i], nn_net_lif_name(net, l)))
          for (int t = 0; t < p.timesteps; t++) f += k.counts[i][t];
      CHECK_NEAR(nn_net_lif_rate(net, l), (double)f / (double)(S * nn_net_lif_neurons(net, l) * p.timesteps), 1e-12);
    }
    if (train) {
      /* stem BN ran once on the batch: running_mean moved 10 % of the way to the batch mean */
      int64_t h0 = (side + 2 - 3) / stride + 1, ho, wo;
      float *st = rconv(nn_tensor_data(x), S, p.in_ch, side, side, nn_tensor_data(nn_net_tensor_find(net, "stem.conv.weight")),
                        p.channels, 3, stride, &ho, &wo);
      double mean = 0;
      for (int64_t s = 0; s < S; s++)
        for (int64_t i = 0; i < h0 * h0; i++) mean += st[(s * p.channels) * h0 * h0 + i];
      mean /= (double)(S * h0 * h0);
      CHECK_NEAR(nn_tensor_data(nn_net_tensor_find(net, "stem.bn.running_mean"))[0], 0.9 * stem_rm_before + 0.1 * mean, 1e-5);
      free(st);
      /* spikes_only (the fitness score's forward): the same spikes in the same calls, no output */
      static rec k2;
      memset(&k2, 0, sizeof k2);
      k2.order_ok = 1;
      nn_forward_opts so = {.train = 1, .on_spikes = on_spikes, .ud = &k2, .spikes_only = 1};
      nn_tensor *none = out;
      CHECK(nn_net_forward(net, x, &so, &none, &err) == NN_OK);
      CHECK(none == NULL && k2.order_ok && k2.calls == k.calls && k2.nnames == k.nnames);
      CHECK(memcmp(k2.counts, k.counts, sizeof k.counts) == 0 && memcmp(k2.names, k.names, sizeof k.names) == 0);
    }
    nn_tensor_free(out);
    free(want);
  }
  nn_tensor_free(x);
  nn_net_free(net);
}

static const char *const FWD_CELL = "conv3x3 conv1x1 avgpool3x3 skip conv5x5 conv3x3";
static const char *const FWD_CELL2 = "conv3x3 zero skip conv7x7 avgpool3x3 conv1x1";
/* backward cell: forward 01 02 03 12 13 23 | backward 10 20 30 21 31 32 */
static const char *const BWD_CELL = "conv3x3 zero conv3x3 conv3x3 zero conv1x1|zero conv1x1 zero zero conv1x1 zero";
static const char *const BWD_CELL2 = "skip conv3x3 avgpool3x3 zero conv3x3 skip|conv3x3 zero skip avgpool3x3 zero conv1x1";

static void ref_forward_cells(void) {
  compare_with_ref(FWD_CELL, FWD_CELL2, 1, 12, NN_CONV_DENSE);
  compare_with_ref(FWD_CELL2, FWD_CELL, 2, 16, NN_CONV_DENSE);
}
static void ref_backward_cells(void) {
  compare_with_ref(BWD_CELL, BWD_CELL2, 1, 12, NN_CONV_DENSE);
  compare_with_ref(BWD_CELL2, FWD_CELL, 1, 10, NN_CONV_DENSE);
}
static void ref_event_driven(void) {
  compare_with_ref(BWD_CELL, FWD_CELL, 1, 12, NN_CONV_EVENTS);
  compare_with_ref(FWD_CELL2, BWD_CELL2, 2, 16, NN_CONV_AUTO);
}

/* Skip edges: a node reached by one skip edge only is that input itself (node 1 of SKIP_CELL),
 * a skip edge's input is added to the next edge's term in one pass (skip + skip, skip + conv,
 * skip + avgpool), a node no edge reaches is zero (node 1 of SKIP_CELL2), and a skip-only node
 * of a backward cell gets the backward state added (node 1 of SKIP_BWD). */
static const char *const SKIP_CELL = "skip skip skip skip conv3x3 avgpool3x3";
static const char *const SKIP_CELL2 = "zero skip skip conv3x3 skip conv1x1";
static const char *const SKIP_BWD = "skip zero zero conv3x3 zero skip|zero zero zero conv3x3 zero zero";
static void ref_skip_sums(void) {
  compare_with_ref(SKIP_CELL, SKIP_CELL2, 1, 12, NN_CONV_EVENTS);
  compare_with_ref(SKIP_BWD, SKIP_CELL, 1, 10, NN_CONV_AUTO);
  compare_with_ref(SKIP_CELL2, SKIP_BWD, 2, 16, NN_CONV_DENSE);
}

/* A node that only LIFs read (every edge out of it starts with one) is not written: its last
 * edge's BatchNorm feeds the first of those LIFs as it is made. The reference knows nothing of
 * that; these cells take each way into it: a node the BatchNorm writes first (node 1 of both),
 * one it adds to after another conv edge (node 2 of FUSE_CELL and FUSE_BWD), one whose sum so
 * far is a skip edge's input (node 2 of SKIP_CELL2), one a backward edge also reads (node 2 of
 * FUSE_BWD), and one that gets a backward state added from the second step on, where the map
 * is written again (node 1 of BWD_CELL). */
static const char *const FUSE_CELL = "conv3x3 conv3x3 skip conv1x1 zero conv3x3";
static const char *const FUSE_BWD = "conv3x3 conv1x1 zero conv3x3 zero conv3x3|zero conv3x3 zero zero zero zero";

/* The same output bytes and spikes per call with 1 and 2 threads (train mode). */
static void same_with_threads(const char *cell_a, const char *cell_b) {
  nn_error err;
  nn_net_params p = small_params(cell_a, cell_b, 1, 12);
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;
  nn_tensor *fc1 = nn_net_tensor_find(net, "classifier.fc1.weight");
  for (int64_t i = 0; i < nn_tensor_numel(fc1); i++) nn_tensor_data(fc1)[i] *= 200.0f;
  nn_tensor *x = nn_tensor_new4(4, 7, p.in_ch, p.in_h, p.in_w, &err);
  nn_rng rng = nn_rng_seed(11);
  nn_tensor_normal(x, &rng, 0.0f, 1.0f);
  static rec k[2];
  nn_tensor *out[2] = {NULL, NULL};
  for (int t = 0; t < 2; t++) {
    memset(&k[t], 0, sizeof k[t]);
    k[t].order_ok = 1;
    nn_forward_opts o = {.train = 1, .on_spikes = on_spikes, .ud = &k[t], .threads = t + 1};
    CHECK(nn_net_forward(net, x, &o, &out[t], &err) == NN_OK);
  }
  CHECK(out[0] && out[1] && k[0].order_ok && k[1].order_ok);
  if (out[0] && out[1])
    CHECK(memcmp(nn_tensor_data(out[0]), nn_tensor_data(out[1]), (size_t)nn_tensor_numel(out[0]) * sizeof(float)) == 0);
  CHECK(k[0].nnames == k[1].nnames && memcmp(k[0].counts, k[1].counts, sizeof k[0].counts) == 0);
  nn_tensor_free(out[0]), nn_tensor_free(out[1]), nn_tensor_free(x);
  nn_net_free(net);
}

static void ref_bn_into_lif(void) {
  compare_with_ref(FUSE_CELL, FUSE_BWD, 1, 12, NN_CONV_EVENTS);
  compare_with_ref(FUSE_BWD, FUSE_CELL, 1, 10, NN_CONV_DENSE);
  compare_with_ref(SKIP_CELL2, FUSE_BWD, 2, 16, NN_CONV_AUTO);
  same_with_threads(FUSE_CELL, FUSE_BWD);
  same_with_threads(SKIP_CELL2, BWD_CELL);
}

/* ================================================================ structure and accounting */

static void presets(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  CHECK(p.in_ch == 1 && p.in_h == 28 && p.channels == 16 && p.fc_width == 256 && p.cluster == 10);
  CHECK(p.timesteps == 5 && fabs(p.tau - 4.0 / 3.0) < 1e-15 && p.threshold == 1.0);
  CHECK(nn_net_params_preset(&p, "cifar10", &err) == NN_OK && p.channels == 256 && p.cluster == 10 && p.classes == 10);
  CHECK(nn_net_params_preset(&p, "tinyimagenet", &err) == NN_OK && p.in_h == 64 && p.stem_stride == 2 &&
        p.fc_width == 4096 && p.classes == 200);
  CHECK(nn_net_params_preset(&p, "cifar-100", &err) == NN_EINVAL);
  CHECK(!strcmp(err.msg, "unknown preset 'cifar-100' (expected: cifar10, cifar100, tinyimagenet, fashion-mnist)"));
  p = nn_net_params_default();
  p.timesteps = 0;
  CHECK(nn_net_new(&p, &err) == NULL && !strcmp(err.msg, "net: timesteps=0, expected 1..1024"));
  p = nn_net_params_default();
  p.in_h = p.in_w = 3;
  CHECK(nn_net_new(&p, &err) == NULL && strstr(err.msg, "too small"));
  p = nn_net_params_default();
  p.cell_a.m[1][1] = NN_OP_CONV3X3;
  CHECK(nn_net_new(&p, &err) == NULL);
}

static void paper_888192(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  nn_net_params_preset(&p, "cifar100", &err);
  /* docs/model.md: 888,192 = stem 3,456 + 4 x 147,456 (conv3x3 at 128 channels) + downconv 294,912 */
  p.cell_a = nn_test_cell("conv3x3 conv3x3 conv3x3 conv3x3 skip skip");
  p.cell_b = nn_test_cell("skip avgpool3x3 skip skip skip skip");
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;
  CHECK(nn_net_param_count(net, 1) == 888192);
  CHECK(nn_net_param_count(net, 0) == 888192 + 16384 * 1024 + 1024 * 500);
  CHECK(nn_net_layer_count(net) == 1 + 4 + 1 + 2);
  const nn_layer_desc *d = nn_net_layer(net, 0);
  CHECK(!strcmp(d->name, "stem.conv") && d->weights == 3456 && d->in_ch == 3 && d->out_ch == 128 &&
        d->in_dim == 32 && d->out_dim == 32 && d->k == 3 && d->stride == 1 && d->features);
  d = nn_net_layer(net, 5);
  CHECK(!strcmp(d->name, "downconv.conv") && d->weights == 294912 && d->out_ch == 256);
  d = nn_net_layer(net, 6);
  CHECK(!strcmp(d->name, "classifier.fc1") && d->kind == NN_LAYER_LINEAR && d->in_ch == 16384 &&
        d->out_ch == 1024 && d->in_dim == 1 && d->k == 1 && !d->features);
  CHECK(nn_net_layer(net, 8) == NULL);
  nn_net_free(net);
}

/* SNASNet's published CIFAR-10 cell (fixture cell) at the cifar10 preset, counted by hand */
static void snasnet_cell_counts(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  nn_net_params_preset(&p, "cifar10", &err);
  CHECK(nn_cell_parse("0303 0030 2002 0200", NN_CELL_FORM_SNASNET, &p.cell_a, &err) == NN_OK);
  p.cell_b = p.cell_a;
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;
  /* C = 256: stem 3*256*9; cell A 3 conv3x3 256*256*9 + 3 conv1x1 256*256; downconv 256*512*9;
   * cell B 3 conv3x3 512*512*9 + 3 conv1x1 512*512 */
  int64_t want = 3 * 256 * 9 + 3 * 589824 + 3 * 65536 + 1179648 + 3 * 2359296 + 3 * 262144;
  CHECK(nn_net_param_count(net, 1) == want);
  CHECK(nn_net_param_count(net, 0) == want + 512 * 8 * 8 * 1024 + 1024 * 100);
  static const char *const names[] = {
      "stem.conv",     "cellA.e01.conv", "cellA.e12.conv", "cellA.e03.conv", "cellA.e23.conv",
      "cellA.e20.conv", "cellA.e31.conv", "downconv.conv", "cellB.e01.conv", "cellB.e12.conv",
      "cellB.e03.conv", "cellB.e23.conv", "cellB.e20.conv", "cellB.e31.conv", "classifier.fc1",
      "classifier.fc2"};
  CHECK(nn_net_layer_count(net) == 16);
  for (size_t i = 0; i < 16 && i < nn_net_layer_count(net); i++) CHECK(!strcmp(nn_net_layer(net, i)->name, names[i]));
  CHECK(nn_net_layer(net, 4)->k == 1 && nn_net_layer(net, 8)->in_dim == 16);
  CHECK(nn_net_lif_count(net) == 15 && !strcmp(nn_net_lif_name(net, 6), "downconv.lif") &&
        !strcmp(nn_net_lif_name(net, 14), "classifier.lif"));
  CHECK(nn_net_weight_bits(net) == 32);
  nn_net_free(net);
}

/* docs/model.md: weights from streams keyed by (seed, layer path): same layer, same weights */
static void common_random_numbers(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  p.cell_a = nn_test_cell(FWD_CELL);
  p.cell_b = nn_test_cell(FWD_CELL2);
  nn_net *a = nn_net_new(&p, &err);
  p.cell_b = nn_test_cell(BWD_CELL);
  nn_net *b = nn_net_new(&p, &err);
  p.seed = 2;
  nn_net *c = nn_net_new(&p, &err);
  CHECK(a && b && c);
  if (!a || !b || !c) return;
  static const char *const same[] = {"stem.conv.weight", "cellA.e01.conv.weight", "cellA.e13.conv.weight",
                                     "downconv.conv.weight", "cellB.e01.conv.weight", "classifier.fc1.weight"};
  for (int i = 0; i < 6; i++) {
    nn_tensor *ta = nn_net_tensor_find(a, same[i]), *tb = nn_net_tensor_find(b, same[i]), *tc = nn_net_tensor_find(c, same[i]);
    CHECK(ta && tb && tc);
    if (!ta || !tb || !tc) continue;
    CHECK(memcmp(nn_tensor_data(ta), nn_tensor_data(tb), nn_tensor_numel(ta) * sizeof(float)) == 0);
    CHECK(memcmp(nn_tensor_data(ta), nn_tensor_data(tc), nn_tensor_numel(ta) * sizeof(float)) != 0);
  }
  /* Kaiming-uniform a = 2: bound sqrt(6 / (5 fan_in)); fan_in of cellA.e13 (conv5x5, C=16) = 400 */
  nn_tensor *w = nn_net_tensor_find(a, "cellA.e13.conv.weight");
  double bound = sqrt(6.0 / (5.0 * 400.0));
  CHECK(nn_tensor_max(w) <= bound && nn_tensor_min(w) >= -bound);
  CHECK(nn_tensor_max(w) > 0.95 * bound && nn_tensor_min(w) < -0.95 * bound);
  /* linear N(0, 0.01) */
  nn_tensor *f = nn_net_tensor_find(a, "classifier.fc1.weight");
  double s2 = 0, m = nn_tensor_sum(f) / (double)nn_tensor_numel(f);
  for (int64_t i = 0; i < nn_tensor_numel(f); i++) s2 += pow(nn_tensor_data(f)[i] - m, 2);
  CHECK_NEAR(sqrt(s2 / (double)nn_tensor_numel(f)), 0.01, 0.0002);
  CHECK(fabs(m) < 0.0002);
  CHECK(nn_tensor_sum(nn_net_tensor_find(a, "classifier.fc2.bias")) == 0);
  CHECK(nn_tensor_min(nn_net_tensor_find(a, "stem.bn.weight")) == 1 && nn_tensor_max(nn_net_tensor_find(a, "stem.bn.bias")) == 0);
  CHECK(nn_tensor_min(nn_net_tensor_find(a, "stem.bn.running_var")) == 1);
  nn_net_free(a), nn_net_free(b), nn_net_free(c);
}

static int nets_equal(nn_net *a, nn_net *b) {
  if (nn_net_tensor_count(a) != nn_net_tensor_count(b)) return 0;
  for (size_t i = 0; i < nn_net_tensor_count(a); i++) {
    nn_tensor *x = nn_net_tensor(a, i), *y = nn_net_tensor(b, i);
    if (strcmp(nn_net_tensor_name(a, i), nn_net_tensor_name(b, i)) || !nn_tensor_same_shape(x, y) ||
        memcmp(nn_tensor_data(x), nn_tensor_data(y), nn_tensor_numel(x) * sizeof(float)))
      return 0;
  }
  return 1;
}

static void clone_and_io(void) {
  nn_error err;
  nn_net_params p = small_params(BWD_CELL, FWD_CELL, 1, 12);
  nn_net *a = nn_net_new(&p, &err), *c = nn_net_clone(a, &err);
  CHECK(a && c && nets_equal(a, c));
  nn_net_set_weight_bits(a, 8);
  nn_tensor_data(nn_net_layer_weight(c, 1))[0] += 1; /* the clone is independent */
  CHECK(!nets_equal(a, c));
  nn_net_free(c);
  c = nn_net_clone(a, &err);
  CHECK(nn_net_weight_bits(c) == 8);
  nn_net_free(c);

  char path[] = "/tmp/nn_test_net_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  CHECK(nn_net_save(a, path, &err) == NN_OK);
  p.seed = 99;
  nn_net *b = nn_net_new(&p, &err);
  CHECK(!nets_equal(a, b));
  CHECK(nn_net_load(b, path, &err) == NN_OK);
  CHECK(nets_equal(a, b));
  CHECK(nn_net_weight_bits(b) == 8);
  /* the file is plain safetensors with our names */
  nn_st_file *f = nn_st_open(path, &err);
  CHECK(f && nn_st_count(f) == nn_net_tensor_count(a));
  if (f) {
    int i = nn_st_find(f, "cellA.e01.conv.weight");
    CHECK(i >= 0 && !strcmp(nn_st_dtype(f, (size_t)i), "F32") && nn_st_ndim(f, (size_t)i) == 4 &&
          nn_st_shape(f, (size_t)i)[0] == 4 && nn_st_shape(f, (size_t)i)[2] == 3);
    CHECK(nn_st_find(f, "cellA.e01.bn.running_mean") >= 0 && nn_st_find(f, "classifier.fc2.bias") >= 0);
    char canon[NN_CELL_TEXT_MAX];
    nn_cell_format(&p.cell_a, canon, sizeof canon);
    CHECK(nn_st_meta(f, "cellA") && !strcmp(nn_st_meta(f, "cellA"), canon));
  }
  nn_st_close(f);
  /* a different architecture: clear error naming file and tensor, net untouched */
  nn_net_params q = p;
  q.channels = 6;
  nn_net *d = nn_net_new(&q, &err), *d0 = nn_net_clone(d, &err);
  CHECK(nn_net_load(d, path, &err) == NN_EINVAL);
  char want[512];
  snprintf(want, sizeof want, "%s: tensor 'stem.conv.weight' has shape 4x2x3x3, expected 6x2x3x3", path);
  CHECK(!strcmp(err.msg, want));
  CHECK(nets_equal(d, d0));
  nn_net_free(d), nn_net_free(d0);
  q = p;
  q.cell_a = nn_test_cell(FWD_CELL);
  d = nn_net_new(&q, &err);
  CHECK(nn_net_load(d, path, &err) == NN_EINVAL);
  snprintf(want, sizeof want, "%s: unexpected tensor 'cellA.e12.conv.weight' (the net has no such parameter)", path);
  CHECK(!strcmp(err.msg, want));
  nn_net_free(d);
  CHECK(nn_net_load(b, "/nonexistent/w.safetensors", &err) == NN_EIO);
  CHECK(!strncmp(err.msg, "/nonexistent/w.safetensors: cannot open", 38));
  /* garbage file */
  FILE *g = fopen(path, "wb");
  fputs("hello world, not safetensors", g);
  fclose(g);
  CHECK(nn_net_load(b, path, &err) == NN_EFORMAT && strstr(err.msg, path));
  remove(path);
  nn_net_free(a), nn_net_free(b);
}

static void forward_api(void) {
  nn_error err;
  nn_net_params p = small_params(FWD_CELL, BWD_CELL, 1, 12);
  nn_net *net = nn_net_new(&p, &err);
  nn_tensor *x = nn_tensor_new4(4, 3, 2, 12, 12, &err), *out = NULL, *mid = NULL, *out2 = NULL;
  nn_rng r = nn_rng_seed(5);
  nn_tensor_normal(x, &r, 0, 1);
  nn_forward_opts o = {.train = 0};
  /* eval mode twice: identical (no state leaks between passes) */
  CHECK(nn_net_forward(net, x, &o, &out, &err) == NN_OK);
  CHECK(nn_net_forward_prefix(net, x, &o, &mid, &err) == NN_OK);
  CHECK(mid && nn_tensor_ndim(mid) == 5 && nn_tensor_dim(mid, 0) == 4 && nn_tensor_dim(mid, 1) == 3 &&
        nn_tensor_dim(mid, 2) == 8 && nn_tensor_dim(mid, 3) == 6 && nn_tensor_dim(mid, 4) == 6);
  CHECK(nn_net_forward_suffix(net, mid, &o, &out2, &err) == NN_OK);
  CHECK(out && out2 && memcmp(nn_tensor_data(out), nn_tensor_data(out2), 9 * sizeof(float)) == 0);
  nn_tensor_free(out2);
  /* bad shapes */
  nn_tensor *bad = nn_tensor_new4(4, 3, 1, 12, 12, &err);
  CHECK(nn_net_forward(net, bad, &o, &out2, &err) == NN_EINVAL && out2 == NULL);
  CHECK(!strcmp(err.msg, "forward: input has shape 3x1x12x12, expected Sx2x12x12 (S >= 1)"));
  CHECK(nn_net_forward_suffix(net, x, &o, &out2, &err) == NN_EINVAL);
  CHECK(!strcmp(err.msg, "forward: cell B input has shape 3x2x12x12, expected 4xSx8x6x6"));
  nn_tensor_data(x)[7] = NAN;
  CHECK(nn_net_forward(net, x, &o, &out2, &err) == NN_EINVAL);
  CHECK(!strcmp(err.msg, "forward: input element 8 is not finite"));
  nn_tensor_free(bad), nn_tensor_free(mid), nn_tensor_free(out), nn_tensor_free(x);
  nn_net_free(net);
  nn_net_free(NULL);
}


/* Edges leaving one node share their LIF's state (docs/model.md, "Cells"): cell A with conv
 * edges 01 and 02 (both from node 0) holds one state fewer than with 01 and 12 (from nodes 0 and
 * 1), the same ops otherwise. The engine's live heap, sampled at every LIF call of a forward
 * whose scratch starts empty, peaks about one membrane map (S x 4 x 32 x 32 floats) lower; the
 * spikes it keeps for the sharing edge are 1/32 of that. */
static int64_t peak_live;
static void sample_live(void *ud, const nn_spike_call *c) {
  (void)ud, (void)c;
  const int64_t b = nn_mem_live_bytes();
  if (b > peak_live) peak_live = b;
}

static int64_t forward_peak(const char *cell_a, int64_t S) {
  nn_error err;
  nn_net_params p = small_params(cell_a, "skip skip skip skip skip skip", 1, 32);
  nn_net *net = nn_net_new(&p, &err);
  nn_tensor *x = nn_tensor_new4(4, S, p.in_ch, 32, 32, &err), *out = NULL;
  nn_rng r = nn_rng_seed(9);
  nn_tensor_normal(x, &r, 0.0f, 1.0f);
  nn_forward_opts o = {.train = 1, .on_spikes = sample_live};
  nn_scratch_trim();
  peak_live = 0;
  const int64_t base = nn_mem_live_bytes();
  CHECK(nn_net_forward(net, x, &o, &out, &err) == NN_OK);
  nn_tensor_free(out), nn_tensor_free(x);
  nn_net_free(net);
  nn_scratch_trim();
  return peak_live - base;
}

static void shared_lif_memory(void) {
  const int64_t S = 16, map = S * 4 * 32 * 32 * (int64_t)sizeof(float);
  const int64_t shared = forward_peak("conv3x3 conv3x3 skip skip skip skip", S);
  const int64_t own = forward_peak("conv3x3 skip skip conv3x3 skip skip", S);
  CHECK(shared > 0 && own > 0);
  CHECK(own - shared >= map - map / 16 && own - shared <= map + map / 16);
}

int main(void) {
  NN_TEST_RUN(presets);
  NN_TEST_RUN(paper_888192);
  NN_TEST_RUN(snasnet_cell_counts);
  NN_TEST_RUN(common_random_numbers);
  NN_TEST_RUN(clone_and_io);
  NN_TEST_RUN(forward_api);
  NN_TEST_RUN(ref_forward_cells);
  NN_TEST_RUN(ref_backward_cells);
  NN_TEST_RUN(ref_event_driven);
  NN_TEST_RUN(ref_skip_sums);
  NN_TEST_RUN(ref_bn_into_lif);
  NN_TEST_RUN(shared_lif_memory);
  return NN_TEST_END();
}
