/* nn_activity.c: active crossbar reads from measured spikes (include/neuronas/nn_activity.h,
 * docs/hardware.md "Activity-aware energy"). */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_activity.h"

nn_status nn_activity_reads(const nn_activity_geom *g, int64_t *out_h, int64_t *out_w,
                            int64_t *reads, nn_error *err) {
  if (g->channels < 1 || g->height < 1 || g->width < 1 || g->k < 1 || g->stride < 1 || g->xbar < 1)
    return nn_fail(err, NN_EINVAL, "activity: channels, height, width, k, stride and xbar must be >= 1");
  if (g->channels > ((int64_t)1 << 30) || g->height > ((int64_t)1 << 20) || g->width > ((int64_t)1 << 20) ||
      g->k > 1024 || g->stride > 1024)
    return nn_fail(err, NN_EINVAL, "activity: geometry too large");
  int64_t pad = g->k / 2;
  int64_t oh = (g->height + 2 * pad - g->k) / g->stride + 1;
  int64_t ow = (g->width + 2 * pad - g->k) / g->stride + 1;
  if (g->height + 2 * pad < g->k || g->width + 2 * pad < g->k || oh < 1 || ow < 1)
    return nn_fail(err, NN_EINVAL, "activity: kernel %lld larger than the padded input", (long long)g->k);
  *out_h = oh;
  *out_w = ow;
  *reads = oh * ow * ((g->channels + g->xbar - 1) / g->xbar);
  return NN_OK;
}

static nn_status check(const nn_activity_geom *g, int64_t samples, int64_t words, int64_t *oh,
                       int64_t *ow, nn_error *err) {
  int64_t reads;
  nn_status st = nn_activity_reads(g, oh, ow, &reads, err);
  if (st != NN_OK) return st;
  if (samples < 1) return nn_fail(err, NN_EINVAL, "activity: samples=%lld < 1", (long long)samples);
  if (words * 64 < g->channels * g->height * g->width)
    return nn_fail(err, NN_EINVAL, "activity: %lld words per sample hold fewer than C H W = %lld spikes",
                   (long long)words, (long long)(g->channels * g->height * g->width));
  return NN_OK;
}

static inline int bit_at(const uint64_t *row, int64_t n) { return (int)((row[n >> 6] >> (n & 63)) & 1u); }

nn_status nn_activity_count(const nn_activity_geom *g, const uint64_t *bits, int64_t samples,
                            int64_t words, int64_t *active, nn_error *err) {
  int64_t oh, ow;
  nn_status st = check(g, samples, words, &oh, &ow, err);
  if (st != NN_OK) return st;
  const int64_t H = g->height, W = g->width, C = g->channels, hw = H * W;
  const int64_t groups = (C + g->xbar - 1) / g->xbar, pad = g->k / 2;
  /* occ: the group's OR map; pre: (H+1) x (W+1) prefix sums of occ */
  unsigned char *occ = malloc((size_t)hw);
  int64_t *pre = malloc(sizeof(int64_t) * (size_t)((H + 1) * (W + 1)));
  if (!occ || !pre) {
    free(occ);
    free(pre);
    return nn_fail(err, NN_ENOMEM, "activity: out of memory for a %lld x %lld map", (long long)H, (long long)W);
  }
  int64_t count = 0;
  for (int64_t s = 0; s < samples; s++) {
    const uint64_t *row = bits + s * words;
    for (int64_t gi = 0; gi < groups; gi++) {
      int64_t c0 = gi * g->xbar, c1 = c0 + g->xbar < C ? c0 + g->xbar : C;
      memset(occ, 0, (size_t)hw);
      for (int64_t c = c0; c < c1; c++) {
        int64_t base = c * hw;
        for (int64_t j = 0; j < hw; j++) occ[j] |= (unsigned char)bit_at(row, base + j);
      }
      for (int64_t x = 0; x <= W; x++) pre[x] = 0;
      for (int64_t y = 0; y < H; y++) {
        int64_t acc = 0;
        pre[(y + 1) * (W + 1)] = 0;
        for (int64_t x = 0; x < W; x++) {
          acc += occ[y * W + x];
          pre[(y + 1) * (W + 1) + x + 1] = pre[y * (W + 1) + x + 1] + acc;
        }
      }
      for (int64_t oy = 0; oy < oh; oy++) {
        int64_t y0 = oy * g->stride - pad, y1 = y0 + g->k;
        if (y0 < 0) y0 = 0;
        if (y1 > H) y1 = H;
        for (int64_t ox = 0; ox < ow; ox++) {
          int64_t x0 = ox * g->stride - pad, x1 = x0 + g->k;
          if (x0 < 0) x0 = 0;
          if (x1 > W) x1 = W;
          if (y1 <= y0 || x1 <= x0) continue;
          int64_t sum = pre[y1 * (W + 1) + x1] - pre[y0 * (W + 1) + x1] - pre[y1 * (W + 1) + x0] +
                        pre[y0 * (W + 1) + x0];
          count += sum > 0;
        }
      }
    }
  }
  free(occ);
  free(pre);
  *active = count;
  return NN_OK;
}

nn_status nn_activity_count_ref(const nn_activity_geom *g, const uint64_t *bits, int64_t samples,
                                int64_t words, int64_t *active, nn_error *err) {
  int64_t oh, ow;
  nn_status st = check(g, samples, words, &oh, &ow, err);
  if (st != NN_OK) return st;
  const int64_t H = g->height, W = g->width, C = g->channels, pad = g->k / 2;
  int64_t count = 0;
  for (int64_t s = 0; s < samples; s++)
    for (int64_t oy = 0; oy < oh; oy++)
      for (int64_t ox = 0; ox < ow; ox++)
        for (int64_t c0 = 0; c0 < C; c0 += g->xbar) {
          int any = 0;
          for (int64_t c = c0; c < C && c < c0 + g->xbar && !any; c++)
            for (int64_t ky = 0; ky < g->k && !any; ky++)
              for (int64_t kx = 0; kx < g->k && !any; kx++) {
                int64_t y = oy * g->stride - pad + ky, x = ox * g->stride - pad + kx;
                if (y >= 0 && y < H && x >= 0 && x < W) any = bit_at(bits + s * words, (c * H + y) * W + x);
              }
          count += any;
        }
  *active = count;
  return NN_OK;
}

/* ---- a net's layers ---- */
struct nn_activity_counter {
  size_t n;
  nn_activity_layer *layers;
  nn_activity_geom *geom;
  char (*lif)[NN_NET_MAXNAME_LEN + 8]; /* per layer: the LIF path feeding it, "" when none */
  nn_status st;
  nn_error err;
};

void nn_activity_observe(void *ud, const nn_spike_call *c) {
  nn_activity_counter *a = ud;
  if (a->st != NN_OK) return;
  for (size_t i = 0; i < a->n; i++) {
    if (!a->layers[i].measured || strcmp(a->lif[i], c->module) != 0) continue;
    const nn_activity_geom *g = &a->geom[i];
    if (c->neurons != g->channels * g->height * g->width) continue;
    int64_t act = 0, oh, ow, reads;
    a->st = nn_activity_count(g, c->bits, c->samples, c->words, &act, &a->err);
    if (a->st == NN_OK) a->st = nn_activity_reads(g, &oh, &ow, &reads, &a->err);
    if (a->st != NN_OK) return;
    a->layers[i].active += act;
    a->layers[i].reads += reads * c->samples;
  }
}

/* "P.conv" / "P.fc2" -> "P.lif" when that LIF exists; the classifier's fc1 reads the pooled
 * output of "last.lif" (not binary), so it is left unmeasured. */
static int lif_name(const nn_net *net, const char *layer, char *out, size_t cap) {
  const char *dot = strrchr(layer, '.');
  if (!dot || (strcmp(dot, ".conv") != 0 && strcmp(dot, ".fc2") != 0)) return 0;
  size_t plen = (size_t)(dot - layer);
  if (plen + 5 > cap) return 0;
  memcpy(out, layer, plen);
  memcpy(out + plen, ".lif", 5);
  for (size_t i = 0; i < nn_net_lif_count(net); i++)
    if (strcmp(nn_net_lif_name(net, i), out) == 0) return 1;
  return 0;
}

nn_activity_counter *nn_activity_counter_new(const nn_net *net, int64_t samples, int64_t xbar,
                                             nn_activity_layer *layers, nn_error *err) {
  if (xbar < 1) {
    nn_fail(err, NN_EINVAL, "activity: xbar=%lld < 1", (long long)xbar);
    return NULL;
  }
  if (samples < 1) {
    nn_fail(err, NN_EINVAL, "activity: samples=%lld < 1", (long long)samples);
    return NULL;
  }
  size_t n = nn_net_layer_count(net);
  nn_activity_counter *a = calloc(1, sizeof *a);
  if (a) {
    a->geom = calloc(n ? n : 1, sizeof *a->geom);
    a->lif = calloc(n ? n : 1, sizeof *a->lif);
  }
  if (!a || !a->geom || !a->lif) {
    nn_activity_counter_free(a);
    nn_fail(err, NN_ENOMEM, "activity: out of memory");
    return NULL;
  }
  a->n = n;
  a->layers = layers;
  a->st = NN_OK;
  int64_t T = nn_net_params_of(net)->timesteps;
  for (size_t i = 0; i < n; i++) {
    const nn_layer_desc *d = nn_net_layer(net, i);
    nn_activity_geom g = {.channels = d->in_ch, .height = d->in_dim, .width = d->in_dim,
                          .k = d->k, .stride = d->stride, .xbar = xbar};
    int64_t oh = 0, ow = 0, reads = 0;
    layers[i] = (nn_activity_layer){0};
    a->geom[i] = g;
    a->lif[i][0] = 0;
    int ok = nn_activity_reads(&g, &oh, &ow, &reads, NULL) == NN_OK && oh == d->out_dim && ow == d->out_dim;
    layers[i].measured = ok && lif_name(net, d->name, a->lif[i], sizeof a->lif[i]);
    if (!layers[i].measured) {
      /* every read of an unmeasured layer counts as active: out^2 ceil(C/X) per sample and step */
      int64_t all = d->out_dim * d->out_dim * ((d->in_ch + xbar - 1) / xbar) * samples * T;
      layers[i].active = layers[i].reads = all;
    }
  }
  return a;
}

nn_status nn_activity_counter_status(const nn_activity_counter *a, nn_error *err) {
  if (a->st != NN_OK && err) *err = a->err;
  return a->st;
}

void nn_activity_counter_free(nn_activity_counter *a) {
  if (!a) return;
  free(a->geom);
  free(a->lif);
  free(a);
}

nn_status nn_activity_net(const nn_net *net, const nn_tensor *const *batches, int repeats,
                          int64_t xbar, nn_activity_layer *layers, nn_error *err) {
  if (repeats < 1 || repeats > 64) return nn_fail(err, NN_EINVAL, "activity: repeats=%d outside 1..64", repeats);
  int64_t samples = 0;
  for (int r = 0; r < repeats; r++) samples += nn_tensor_dim(batches[r], 0);
  nn_error e;
  nn_activity_counter *a = nn_activity_counter_new(net, samples, xbar, layers, &e);
  if (!a) {
    if (err) *err = e;
    return e.code;
  }
  nn_net *clone = nn_net_clone(net, err);
  nn_status st = clone ? NN_OK : (err ? err->code : NN_ENOMEM);
  nn_forward_opts o = {.train = 1, .on_spikes = nn_activity_observe, .ud = a, .spikes_only = 1};
  for (int r = 0; st == NN_OK && r < repeats; r++) {
    nn_tensor *out = NULL;
    st = nn_net_forward(clone, batches[r], &o, &out, err);
    nn_tensor_free(out);
    if (st == NN_OK) st = nn_activity_counter_status(a, err);
  }
  nn_net_free(clone);
  nn_activity_counter_free(a);
  return st;
}
