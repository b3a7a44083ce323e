/* nn_net.c: the SNASNet/NeuroNAS macro-architecture and its spiking forward pass
 * (docs/model.md: macro-architecture and presets, neuron/layer semantics and initialisation,
 * accounting). Structure in nn_net_impl.h; kernels in nn_ops.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_rng.h"
#include "neuronas/nn_safetensors.h"
#include "nn_net_impl.h"
#include "nn_par.h"
#include "nn_scratch.h"

const char *const NN_NET_PRESETS[] = {"cifar10", "cifar100", "tinyimagenet", "fashion-mnist", NULL};

/* docs/model.md preset table (SNASNet's code; fashion-mnist is our [choice]). */
static const struct preset {
  const char *name;
  int64_t in_ch, in_h, in_w, channels, stem_stride, second_pool, fc_width, classes, cluster;
} PRESETS[] = {
    {"cifar10", 3, 32, 32, 256, 1, 2, 1024, 10, 10},
    {"cifar100", 3, 32, 32, 128, 1, 2, 1024, 100, 5},
    {"tinyimagenet", 3, 64, 64, 128, 2, 2, 4096, 200, 5},
    {"fashion-mnist", 1, 28, 28, 16, 1, 2, 256, 10, 10},
};

nn_net_params nn_net_params_default(void) {
  nn_net_params p;
  memset(&p, 0, sizeof p);
  for (int k = 0; k < NN_CELL_EDGES; k++) {
    p.cell_a.m[NN_CELL_EDGE_FROM[k]][NN_CELL_EDGE_TO[k]] = NN_OP_SKIP;
    p.cell_b.m[NN_CELL_EDGE_FROM[k]][NN_CELL_EDGE_TO[k]] = NN_OP_SKIP;
  }
  p.seed = 1;
  nn_net_params_preset(&p, "fashion-mnist", NULL);
  return p;
}

nn_status nn_net_params_preset(nn_net_params *p, const char *preset, nn_error *err) {
  for (size_t i = 0; i < sizeof PRESETS / sizeof *PRESETS; i++) {
    const struct preset *q = &PRESETS[i];
    if (strcmp(q->name, preset) != 0) continue;
    p->in_ch = q->in_ch, p->in_h = q->in_h, p->in_w = q->in_w;
    p->channels = q->channels, p->stem_stride = q->stem_stride, p->second_pool = q->second_pool;
    p->fc_width = q->fc_width, p->classes = q->classes, p->cluster = q->cluster;
    p->timesteps = 5;          /* docs/model.md */
    p->tau = 4.0 / 3.0;        /* docs/model.md */
    p->threshold = 1.0;        /* docs/model.md */
    return NN_OK;
  }
  return nn_fail(err, NN_EINVAL,
                 "unknown preset '%s' (expected: cifar10, cifar100, tinyimagenet, fashion-mnist)",
                 preset);
}

/* ---------------------------------------------------------------- construction */

static nn_tensor *add_param(nn_net *net, const char *path, const char *suffix, int ndim,
                            const int64_t *shape, nn_error *err) {
  if (net->nparams >= NN_NET_MAXPARAM) {
    nn_fail(err, NN_EINVAL, "net: too many parameters");
    return NULL;
  }
  /* the sum of all stored values is bounded like one tensor (docs/reliability.md "Bounds") */
  int64_t total = 1;
  for (int d = 0; d < ndim; d++) total = shape[d] > 0 && total <= NN_TENSOR_MAX_NUMEL ? total * shape[d] : 0;
  for (size_t i = 0; i < net->nparams && total <= NN_TENSOR_MAX_NUMEL; i++) total += nn_tensor_numel(net->params[i].t);
  if (total > NN_TENSOR_MAX_NUMEL) {
    nn_fail(err, NN_EINVAL, "net: more than %lld stored values (%s.%s), the bound; smaller channels, "
            "fc_width, classes or input expected", (long long)NN_TENSOR_MAX_NUMEL, path, suffix);
    return NULL;
  }
  nn_tensor *t = nn_tensor_new(ndim, shape, err);
  if (!t) return NULL;
  nn_param *pp = &net->params[net->nparams++];
  snprintf(pp->name, sizeof pp->name, "%s.%s", path, suffix);
  pp->t = t;
  return t;
}

static int add_bn(nn_net *net, nn_bn_mod *bn, const char *path, int64_t c, nn_error *err) {
  int64_t s[1] = {c};
  bn->c = c;
  if (!(bn->weight = add_param(net, path, "weight", 1, s, err))) return 0;
  if (!(bn->bias = add_param(net, path, "bias", 1, s, err))) return 0;
  if (!(bn->running_mean = add_param(net, path, "running_mean", 1, s, err))) return 0;
  if (!(bn->running_var = add_param(net, path, "running_var", 1, s, err))) return 0;
  nn_tensor_fill(bn->weight, 1.0f);   /* docs/model.md: BN weight 1, bias 0 */
  nn_tensor_fill(bn->running_var, 1.0f);
  return 1;
}

/* ---- the initial-weight store ---- */
typedef struct init_entry {
  char path[NN_NET_MAXNAME_LEN];
  uint64_t seed;
  int kind;            /* 0 uniform(a, b), 1 normal(mean a, std b) */
  float a, b;
  int ndim;
  int64_t shape[4];
  float *data;
  struct init_entry *next;
} init_entry;

struct nn_init_cache {
  init_entry *head;
  int64_t hits, misses, entries, bytes, max_bytes;
};

nn_init_cache *nn_init_cache_new(int64_t max_bytes, nn_error *err) {
  nn_init_cache *c;
  if (max_bytes < 0) return nn_fail(err, NN_EINVAL, "init cache: max_bytes=%lld is negative", (long long)max_bytes), NULL;
  if (!(c = calloc(1, sizeof *c))) return nn_fail(err, NN_ENOMEM, "init cache: out of memory"), NULL;
  c->max_bytes = max_bytes;
  return c;
}

void nn_init_cache_free(nn_init_cache *c) {
  if (!c) return;
  for (init_entry *e = c->head, *n; e; e = n) {
    n = e->next;
    free(e->data);
    free(e);
  }
  free(c);
}

nn_init_cache_stats nn_init_cache_stats_of(const nn_init_cache *c) {
  nn_init_cache_stats s = {0, 0, 0, 0, 0};
  if (c) s.hits = c->hits, s.misses = c->misses, s.entries = c->entries, s.bytes = c->bytes, s.max_bytes = c->max_bytes;
  return s;
}

/* Fills t with the (seed, path) stream's draws (kind 0: uniform(a, b), 1: normal(a, b)), from
 * the net's init cache when it holds them (stored there after a miss when they fit). */
static void init_draw(nn_net *net, nn_tensor *t, const char *path, int kind, float a, float b) {
  nn_init_cache *c = net->init_cache;
  init_entry key;
  memset(&key, 0, sizeof key);
  if (c && strlen(path) >= sizeof key.path) c = NULL; /* never key on a truncated path */
  if (c) {
    snprintf(key.path, sizeof key.path, "%s", path);
    key.seed = net->p.seed, key.kind = kind, key.a = a, key.b = b, key.ndim = t->ndim;
    for (int d = 0; d < t->ndim && d < 4; d++) key.shape[d] = t->shape[d];
    for (init_entry *e = c->head; e; e = e->next)
      if (e->seed == key.seed && e->kind == kind && !memcmp(&e->a, &a, sizeof a) &&
          !memcmp(&e->b, &b, sizeof b) && e->ndim == key.ndim &&
          !memcmp(e->shape, key.shape, sizeof key.shape) && !strcmp(e->path, key.path)) {
        memcpy(t->data, e->data, (size_t)t->numel * sizeof *t->data);
        c->hits++;
        return;
      }
    c->misses++;
  }
  nn_rng root = nn_rng_seed(net->p.seed), r = nn_rng_split(&root, path);
  if (kind == 0) nn_tensor_uniform(t, &r, a, b);
  else nn_tensor_normal(t, &r, a, b);
  int64_t bytes = t->numel * (int64_t)sizeof(float) + (int64_t)sizeof(init_entry);
  if (!c || t->ndim > 4 || c->bytes + bytes > c->max_bytes) return;
  init_entry *e = malloc(sizeof *e);
  float *data = malloc((size_t)t->numel * sizeof *data);
  if (!e || !data) { /* only a speed-up: keep going without storing */
    free(e), free(data);
    return;
  }
  *e = key;
  e->data = data;
  memcpy(data, t->data, (size_t)t->numel * sizeof *data);
  e->next = c->head;
  c->head = e;
  c->entries++;
  c->bytes += bytes;
}

/* Adds a conv layer `path` (weights Kaiming-uniform a=2 from the (seed, path) stream when init). */
static int add_conv(nn_net *net, nn_conv_mod *cv, const char *path, int64_t cin, int64_t cout,
                    int64_t k, int64_t stride, int64_t h, int64_t w, int features, int init,
                    nn_error *err) {
  int64_t s[4] = {cout, cin, k, k};
  if (net->nlayers >= NN_NET_MAXLAYER) return nn_fail(err, NN_EINVAL, "net: too many layers"), 0;
  if (!(cv->weight = add_param(net, path, "weight", 4, s, err))) return 0;
  cv->g = (nn_conv_geom){0, cin, h, w, cout, k, stride, k / 2};
  if (init) {
    double bound = sqrt(6.0 / ((1.0 + 2.0 * 2.0) * (double)(cin * k * k))); /* docs/model.md, a = 2 */
    init_draw(net, cv->weight, path, 0, (float)-bound, (float)bound);
  }
  nn_layer_desc *d = &net->layers[net->nlayers];
  memset(d, 0, sizeof *d);
  d->kind = NN_LAYER_CONV;
  snprintf(d->name, sizeof d->name, "%s", path);
  d->in_ch = cin, d->out_ch = cout, d->in_dim = h, d->out_dim = nn_conv_ho(&cv->g);
  d->k = k, d->stride = stride, d->weights = cout * cin * k * k, d->features = features;
  cv->layer = (int)net->nlayers;
  net->layer_w[net->nlayers++] = cv->weight;
  return 1;
}

static int add_linear(nn_net *net, nn_conv_mod *cv, const char *path, int64_t in, int64_t out,
                      int init, nn_error *err) {
  int64_t s[2] = {out, in};
  if (!(cv->weight = add_param(net, path, "weight", 2, s, err))) return 0;
  if (init) init_draw(net, cv->weight, path, 1, 0.0f, 0.01f); /* docs/model.md: N(0, 0.01) */
  nn_layer_desc *d = &net->layers[net->nlayers];
  memset(d, 0, sizeof *d);
  d->kind = NN_LAYER_LINEAR;
  snprintf(d->name, sizeof d->name, "%s", path);
  d->in_ch = in, d->out_ch = out, d->in_dim = d->out_dim = d->k = d->stride = 1;
  d->weights = in * out, d->features = 0;
  cv->layer = (int)net->nlayers;
  net->layer_w[net->nlayers++] = cv->weight;
  return 1;
}

static int add_lif(nn_net *net, const char *path, int64_t neurons) {
  nn_lif_mod *l = &net->lifs[net->nlifs];
  memset(l, 0, sizeof *l);
  snprintf(l->path, sizeof l->path, "%s", path);
  l->neurons = neurons;
  return (int)net->nlifs++;
}

static int add_cell(nn_net *net, nn_cell_mod *cm, const char *name, const nn_cell *cell, int64_t c,
                    int64_t h, int64_t w, int init, nn_error *err) {
  /* execution order (SNASNet's): forward edges by (to, from), then backward edges by (to, from) */
  static const int ORDER[12][2] = {{0, 1}, {0, 2}, {1, 2}, {0, 3}, {1, 3}, {2, 3},
                                   {1, 0}, {2, 0}, {3, 0}, {2, 1}, {3, 1}, {3, 2}};
  char path[NN_NET_MAXNAME_LEN];
  cm->cell = *cell;
  snprintf(cm->name, sizeof cm->name, "%s", name);
  cm->c = c, cm->h = h, cm->w = w;
  cm->nedges = cm->nfwd = 0;
  for (int e = 0; e < 12; e++) {
    int from = ORDER[e][0], to = ORDER[e][1];
    nn_op op = (nn_op)cell->m[from][to];
    if (e == 6) cm->nfwd = cm->nedges;
    if (op == NN_OP_ZERO) continue;
    nn_edge_mod *em = &cm->edges[cm->nedges++];
    memset(em, 0, sizeof *em);
    em->from = from, em->to = to, em->op = op, em->lif = -1;
    snprintf(em->path, sizeof em->path, "%s.e%d%d", name, from, to);
    int k = nn_op_kernel(op);
    if (k > 0) {
      snprintf(path, sizeof path, "%s.lif", em->path);
      em->lif = add_lif(net, path, c * h * w);
      snprintf(path, sizeof path, "%s.conv", em->path);
      if (!add_conv(net, &em->conv, path, c, c, k, 1, h, w, 1, init, err)) return 0;
      snprintf(path, sizeof path, "%s.bn", em->path);
      if (!add_bn(net, &em->bn, path, c, err)) return 0;
    }
  }
  return 1;
}

static nn_status check_params(const nn_net_params *p, nn_error *err) {
#define NEED(cond, ...) \
  if (!(cond)) return nn_fail(err, NN_EINVAL, __VA_ARGS__)
  NEED(p->in_ch >= 1 && p->in_ch <= 4096, "net: in_ch=%lld, expected 1..4096", (long long)p->in_ch);
  NEED(p->in_h >= 1 && p->in_w >= 1 && p->in_h <= 4096 && p->in_w <= 4096,
       "net: input %lldx%lld, expected sides in 1..4096", (long long)p->in_h, (long long)p->in_w);
  NEED(p->channels >= 1 && p->channels <= 4096, "net: channels=%lld, expected 1..4096", (long long)p->channels);
  NEED(p->stem_stride >= 1 && p->stem_stride <= 8, "net: stem_stride=%lld, expected 1..8", (long long)p->stem_stride);
  NEED(p->second_pool >= 1, "net: second_pool=%lld, expected >= 1", (long long)p->second_pool);
  NEED(p->fc_width >= 1 && p->fc_width <= 1 << 20, "net: fc_width=%lld, expected 1..1048576", (long long)p->fc_width);
  NEED(p->classes >= 1 && p->classes <= 1 << 20, "net: classes=%lld, expected 1..1048576", (long long)p->classes);
  NEED(p->cluster >= 1 && p->cluster <= 1024, "net: cluster=%lld, expected 1..1024", (long long)p->cluster);
  NEED(p->timesteps >= 1 && p->timesteps <= 1024, "net: timesteps=%lld, expected 1..1024", (long long)p->timesteps);
  NEED(isfinite(p->tau) && p->tau > 0, "net: tau=%g, expected a finite number > 0", p->tau);
  NEED(isfinite(p->threshold), "net: threshold=%g, expected a finite number", p->threshold);
#undef NEED
  return NN_OK;
}

static void net_free_tensors(nn_net *net) {
  for (size_t i = 0; i < net->nparams; i++) nn_tensor_free(net->params[i].t);
}

/* Builds the net; init = 0 leaves weights zero (clone copies them afterwards). */
static nn_net *net_build(const nn_net_params *p, int init, nn_init_cache *ic, nn_error *err) {
  nn_error e2;
  if (!err) err = &e2;
  if (check_params(p, err) != NN_OK) return NULL;
  if (nn_cell_check(&p->cell_a, err) != NN_OK || nn_cell_check(&p->cell_b, err) != NN_OK) return NULL;
  nn_net *net = calloc(1, sizeof *net);
  if (!net) return nn_fail(err, NN_ENOMEM, "net: out of memory"), NULL;
  net->p = *p;
  net->weight_bits = 32;
  net->conv_mode = NN_CONV_AUTO;
  net->init_cache = ic;
  const int64_t C = p->channels;
  net->h0 = nn_conv_out(p->in_h, 3, p->stem_stride, 1);
  net->w0 = nn_conv_out(p->in_w, 3, p->stem_stride, 1);
  net->h1 = net->h0 / 2, net->w1 = net->w0 / 2;
  net->h2 = net->h1 / p->second_pool, net->w2 = net->w1 / p->second_pool;
  if (net->h2 < 1 || net->w2 < 1) {
    nn_fail(err, NN_EINVAL,
            "net: input %lldx%lld is too small: cell B maps are %lldx%lld, second_pool=%lld leaves nothing",
            (long long)p->in_h, (long long)p->in_w, (long long)net->h1, (long long)net->w1,
            (long long)p->second_pool);
    free(net);
    return NULL;
  }
  net->fc_in = 2 * C * net->h2 * net->w2;
  int ok = add_conv(net, &net->stem, "stem.conv", p->in_ch, C, 3, p->stem_stride, p->in_h, p->in_w, 1, init, err) &&
           add_bn(net, &net->stem_bn, "stem.bn", C, err) &&
           add_cell(net, &net->cell[0], "cellA", &p->cell_a, C, net->h0, net->w0, init, err);
  if (ok) ok = add_bn(net, &net->down_bn1, "downconv.bn1", C, err);
  if (ok) {
    net->down_lif = add_lif(net, "downconv.lif", C * net->h0 * net->w0);
    ok = add_conv(net, &net->down_conv, "downconv.conv", C, 2 * C, 3, 1, net->h0, net->w0, 1, init, err) &&
         add_bn(net, &net->down_bn2, "downconv.bn2", 2 * C, err) &&
         add_cell(net, &net->cell[1], "cellB", &p->cell_b, 2 * C, net->h1, net->w1, init, err);
  }
  if (ok) ok = add_bn(net, &net->last_bn, "last.bn", 2 * C, err);
  if (ok) {
    net->last_lif = add_lif(net, "last.lif", 2 * C * net->h1 * net->w1);
    ok = add_linear(net, &net->fc1, "classifier.fc1", net->fc_in, p->fc_width, init, err);
  }
  if (ok) {
    net->cls_lif = add_lif(net, "classifier.lif", p->fc_width);
    ok = add_linear(net, &net->fc2, "classifier.fc2", p->fc_width, p->classes * p->cluster, init, err);
  }
  if (ok) {
    int64_t s[1] = {p->classes * p->cluster};
    ok = (net->fc2_bias = add_param(net, "classifier.fc2", "bias", 1, s, err)) != NULL; /* bias 0 */
  }
  net->init_cache = NULL;
  if (!ok) {
    net_free_tensors(net);
    free(net);
    return NULL;
  }
  return net;
}

nn_net *nn_net_new(const nn_net_params *p, nn_error *err) { return net_build(p, 1, NULL, err); }

nn_net *nn_net_new_cached(const nn_net_params *p, nn_init_cache *c, nn_error *err) {
  return net_build(p, 1, c, err);
}

nn_net *nn_net_clone(const nn_net *net, nn_error *err) {
  nn_net *c = net_build(&net->p, 0, NULL, err);
  if (!c) return NULL;
  for (size_t i = 0; i < net->nparams; i++) nn_tensor_copy(c->params[i].t, net->params[i].t, NULL);
  c->weight_bits = net->weight_bits;
  c->conv_mode = net->conv_mode;
  memcpy(c->lifs, net->lifs, sizeof c->lifs);
  return c;
}

void nn_net_free(nn_net *net) {
  if (!net) return;
  net_free_tensors(net);
  free(net);
}

const nn_net_params *nn_net_params_of(const nn_net *net) { return &net->p; }
size_t nn_net_layer_count(const nn_net *net) { return net->nlayers; }
const nn_layer_desc *nn_net_layer(const nn_net *net, size_t i) {
  return i < net->nlayers ? &net->layers[i] : NULL;
}
nn_tensor *nn_net_layer_weight(nn_net *net, size_t i) { return i < net->nlayers ? net->layer_w[i] : NULL; }

int64_t nn_net_param_count(const nn_net *net, int features_only) {
  int64_t n = 0;
  for (size_t i = 0; i < net->nlayers; i++)
    if (!features_only || net->layers[i].features) n += net->layers[i].weights;
  return n;
}

int nn_net_weight_bits(const nn_net *net) { return net->weight_bits; }
void nn_net_set_weight_bits(nn_net *net, int bits) { net->weight_bits = bits; }
void nn_net_set_conv_mode(nn_net *net, nn_conv_mode mode) { net->conv_mode = mode; }

size_t nn_net_tensor_count(const nn_net *net) { return net->nparams; }
const char *nn_net_tensor_name(const nn_net *net, size_t i) { return i < net->nparams ? net->params[i].name : NULL; }
nn_tensor *nn_net_tensor(nn_net *net, size_t i) { return i < net->nparams ? net->params[i].t : NULL; }
nn_tensor *nn_net_tensor_find(nn_net *net, const char *name) {
  for (size_t i = 0; i < net->nparams; i++)
    if (!strcmp(net->params[i].name, name)) return net->params[i].t;
  return NULL;
}

size_t nn_net_lif_count(const nn_net *net) { return net->nlifs; }
const char *nn_net_lif_name(const nn_net *net, size_t i) { return i < net->nlifs ? net->lifs[i].path : NULL; }
int64_t nn_net_lif_neurons(const nn_net *net, size_t i) { return i < net->nlifs ? net->lifs[i].neurons : 0; }
double nn_net_lif_rate(const nn_net *net, size_t i) {
  if (i >= net->nlifs || net->lifs[i].seen == 0) return 0;
  return (double)net->lifs[i].fired / (double)net->lifs[i].seen;
}

/* ---------------------------------------------------------------- forward */

/* One forward call's scratch. Every buffer comes from nn_scratch (recycled across calls: no
 * page faults in a search's steady state) and goes back in run_free. */
typedef struct run {
  nn_net *net;
  const nn_forward_opts *o;
  int64_t S;
  int step;
  nn_par *par;             /* the pass's worker team (NULL: the calling thread only) */
  float *v[NN_NET_MAXLIF]; /* LIF states, S * neurons each, lazily allocated (0 = fresh) */
  float *s;                /* spikes of the current LIF call as floats, when asked (run_spikes_f) */
  int64_t s_floats;        /* capacity of s (allocated on first use: event-driven convs never need it) */
  uint64_t *bits;          /* spikes of the current LIF call, bit-packed (always) */
  int64_t lif_neurons;     /* neurons per sample of the current LIF call */
  float *tmp;              /* conv output / pooled maps (largest map) */
  float *wcl;              /* channels-last weights of the current event-driven conv */
  int64_t map_floats;
} run;

static void run_free(run *r) {
  for (int i = 0; i < NN_NET_MAXLIF; i++) nn_scratch_put(r->v[i]);
  nn_scratch_put(r->s), nn_scratch_put(r->bits), nn_scratch_put(r->tmp), nn_scratch_put(r->wcl);
  nn_par_free(r->par);
  r->par = NULL;
}

/* ---- work split over the pass's threads (nn_par.h). Each piece computes its outputs exactly as
 * the whole loop does (LIF, convs and unpacking per sample, BatchNorm per channel, pools per
 * plane, sums per element), so the bits do not depend on the thread count. ---- */
typedef struct par_job {
  const float *x, *x2;
  float *y, *v;
  const uint64_t *bits;
  uint64_t *bout;
  const float *w;
  nn_conv_geom g;
  int64_t a, b, c;    /* per-kind sizes */
  float tau, thr;
  int flag;
  nn_bn_mod *bn;
  int train;
  int64_t fired;      /* summed atomically (integers: order-free) */
  int failed;         /* the first failing piece fills st/err */
  nn_status st;
  nn_error err;
} par_job;

static void job_fail(par_job *j, nn_status st, const nn_error *e) {
  if (st != NN_OK && __atomic_exchange_n(&j->failed, 1, __ATOMIC_ACQ_REL) == 0) j->st = st, j->err = *e;
}

/* samples [lo, hi): v, x are a = neurons per sample, bout b = words per sample */
static void lif_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  int64_t f = nn_lif_step_bits(j->v + lo * j->a, j->x + lo * j->a, hi - lo, j->a, j->tau, j->thr, j->flag,
                               j->bout + lo * j->b);
  __atomic_fetch_add(&j->fired, f, __ATOMIC_RELAXED);
}

/* samples [lo, hi) of a conv: event-driven on bits (b words per sample) or dense on x (a floats
 * per sample); y has c floats per sample */
static void conv_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_conv_geom g = j->g;
  nn_error e;
  nn_status st;
  g.n = hi - lo;
  if (j->flag) st = nn_conv2d_events(&g, j->bits + lo * j->b, j->w, j->y + lo * j->c, &e);
  else st = nn_conv2d(&g, j->x + lo * j->a, j->w, j->y + lo * j->c, &e);
  job_fail(j, st, &e);
}

/* channels [lo, hi) of a BatchNorm over a samples of hw = b */
static void bn_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_bn_mod *bn = j->bn;
  nn_bn_forward_channels(j->x, j->a, bn->c, j->b, lo, hi, bn->weight->data, bn->bias->data, bn->running_mean->data,
                         bn->running_var->data, j->train, NN_BN_MOMENTUM, NN_BN_EPS, j->y, j->flag);
}

/* planes [lo, hi) of h = a, w = b: flag 0 avgpool3x3, 1 avgpool3x3_add, 2 avgpool(k = c) */
static void pool_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  const int64_t in = j->a * j->b, out = j->flag == 2 ? (j->a / j->c) * (j->b / j->c) : in;
  if (j->flag == 0) nn_avgpool3x3(j->x + lo * in, hi - lo, j->a, j->b, j->y + lo * out);
  else if (j->flag == 1) nn_avgpool3x3_add(j->x + lo * in, hi - lo, j->a, j->b, j->y + lo * out);
  else nn_avgpool(j->x + lo * in, hi - lo, j->a, j->b, j->c, j->y + lo * out);
}

/* elements [lo, hi): flag 0 y = x, 1 y += x, 2 y = x + x2, 3 y = 0 */
static void elem_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  float *restrict y = j->y + lo;
  const float *restrict x = j->x ? j->x + lo : NULL, *restrict x2 = j->x2 ? j->x2 + lo : NULL;
  const int64_t n = hi - lo;
  switch (j->flag) {
  case 0: memcpy(y, x, (size_t)n * sizeof *y); break;
  case 1: for (int64_t i = 0; i < n; i++) y[i] += x[i]; break;
  case 2: for (int64_t i = 0; i < n; i++) y[i] = x[i] + x2[i]; break;
  default: memset(y, 0, (size_t)n * sizeof *y); break;
  }
}

/* samples [lo, hi) of nn_spikes_unpack (a neurons, b words per sample) */
static void unpack_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_spikes_unpack(j->bits + lo * j->b, hi - lo, j->a, j->y + lo * j->a);
}

#define ELEM_GRAIN 4096 /* floats: 16 KB pieces keep cache lines unshared */

static void par_elem(run *r, int kind, float *y, const float *x, const float *x2, int64_t n) {
  par_job j;
  memset(&j, 0, sizeof j);
  j.y = y, j.x = x, j.x2 = x2, j.flag = kind;
  nn_par_for(r->par, n, ELEM_GRAIN, elem_piece, &j);
}

static void par_pool(run *r, int kind, const float *x, int64_t planes, int64_t h, int64_t w, int64_t k, float *y) {
  par_job j;
  memset(&j, 0, sizeof j);
  j.x = x, j.y = y, j.a = h, j.b = w, j.c = k, j.flag = kind;
  nn_par_for(r->par, planes, 1, pool_piece, &j);
}

/* A conv of geometry g (g.n set) on r's spikes (events) or on dense x. Dense pieces start at
 * multiples of nn_conv2d's sample chunk, so every sgemm call is the one the whole call makes. */
static nn_status par_conv(run *r, const nn_conv_geom *g, int events, const float *x, const float *w, float *y,
                          nn_error *err) {
  par_job j;
  memset(&j, 0, sizeof j);
  j.g = *g, j.flag = events, j.x = x, j.w = w, j.y = y, j.bits = r->bits;
  j.a = g->c * g->h * g->w, j.b = nn_spike_words(j.a), j.c = g->o * nn_conv_ho(g) * nn_conv_wo(g);
  nn_par_for(r->par, g->n, events ? 1 : nn_conv2d_chunk(g), conv_piece, &j);
  if (j.failed) {
    if (err) *err = j.err;
    return j.st;
  }
  return NN_OK;
}

static nn_status run_init(run *r, nn_net *net, const nn_forward_opts *o, int64_t S, nn_error *err) {
  memset(r, 0, sizeof *r);
  r->net = net, r->o = o, r->S = S;
  if (o && (o->threads < 0 || o->threads > NN_PAR_MAX_THREADS))
    return nn_fail(err, NN_EINVAL, "forward: threads=%d outside 0..%d", o->threads, NN_PAR_MAX_THREADS);
  const int64_t C = net->p.channels;
  int64_t m = C * net->h0 * net->w0 * 2; /* downconv output: 2C at cell A size */
  int64_t m2 = net->fc_in > net->p.fc_width ? net->fc_in : net->p.fc_width;
  if (m2 < net->p.classes * net->p.cluster) m2 = net->p.classes * net->p.cluster;
  if (m < m2) m = m2;
  r->map_floats = m;
  int64_t wmax = 0;
  for (size_t i = 0; i < net->nlayers; i++)
    if (net->layers[i].kind == NN_LAYER_CONV && net->layers[i].weights > wmax) wmax = net->layers[i].weights;
  int64_t smax = 1; /* the largest LIF map */
  for (size_t i = 0; i < net->nlifs; i++)
    if (net->lifs[i].neurons > smax) smax = net->lifs[i].neurons;
  r->tmp = nn_scratch_get((size_t)(S * m) * sizeof *r->tmp);
  r->bits = nn_scratch_get((size_t)(S * nn_spike_words(smax)) * sizeof *r->bits);
  r->wcl = nn_scratch_get((size_t)wmax * sizeof *r->wcl);
  if (!r->tmp || !r->bits || !r->wcl) {
    run_free(r);
    return nn_fail(err, NN_ENOMEM, "forward: out of memory for batch %lld", (long long)S);
  }
  /* a team that cannot start leaves the pass to the calling thread (the same bits, slower) */
  if (o && o->threads > 1) r->par = nn_par_new(o->threads);
  return NN_OK;
}

/* LIF module `li` on x (S x neurons): spikes into r->s and r->bits, observer, statistics. */
static nn_status lif_call(run *r, int li, const float *x, int64_t *fired, nn_error *err) {
  nn_lif_mod *l = &r->net->lifs[li];
  const int64_t n = r->S * l->neurons;
  const int fresh = !r->v[li]; /* first call of this module in the pass: state 0 */
  if (fresh && !(r->v[li] = nn_scratch_get((size_t)n * sizeof(float))))
    return nn_fail(err, NN_ENOMEM, "forward: out of memory for %s state", l->path);
  par_job j;
  memset(&j, 0, sizeof j);
  j.v = r->v[li], j.x = x, j.a = l->neurons, j.b = nn_spike_words(l->neurons), j.bout = r->bits;
  j.tau = (float)r->net->p.tau, j.thr = (float)r->net->p.threshold, j.flag = fresh;
  nn_par_for(r->par, r->S, 1, lif_piece, &j);
  const int64_t f = j.fired;
  r->lif_neurons = l->neurons;
  l->fired += f;
  l->seen += n;
  if (r->o && r->o->on_spikes) {
    nn_spike_call c = {l->path, r->step, r->S, l->neurons, nn_spike_words(l->neurons), r->bits, f};
    r->o->on_spikes(r->o->ud, &c);
  }
  *fired = f;
  return NN_OK;
}

/* The current LIF call's spikes as 0/1 floats (for the dense conv and the classifier) in *s. */
static nn_status run_spikes_f(run *r, const float **s, nn_error *err) {
  const int64_t need = r->S * r->lif_neurons;
  if (need > r->s_floats) {
    nn_scratch_put(r->s);
    r->s_floats = 0;
    if (!(r->s = nn_scratch_get((size_t)need * sizeof *r->s)))
      return nn_fail(err, NN_ENOMEM, "forward: out of memory for %lld spikes", (long long)need);
    r->s_floats = need;
  }
  par_job j;
  memset(&j, 0, sizeof j);
  j.bits = r->bits, j.y = r->s, j.a = r->lif_neurons, j.b = nn_spike_words(r->lif_neurons);
  nn_par_for(r->par, r->S, 1, unpack_piece, &j);
  *s = r->s;
  return NN_OK;
}

static int train_mode(const run *r) { return r->o ? r->o->train : 0; } /* NULL opts: eval */

/* y = BN(x), or y += BN(x) when add (a cell edge adding into its node). */
static void bn_run(run *r, nn_bn_mod *bn, const float *x, int64_t hw, float *y, int add) {
  par_job j;
  memset(&j, 0, sizeof j);
  j.x = x, j.y = y, j.a = r->S, j.b = hw, j.bn = bn, j.train = train_mode(r), j.flag = add;
  nn_par_for(r->par, bn->c, 16, bn_piece, &j); /* 16: the AVX2 statistics block */
}
static void bn_apply(run *r, nn_bn_mod *bn, const float *x, int64_t hw, float *y) { bn_run(r, bn, x, hw, y, 0); }

/* Conv on the spikes in r->s / r->bits (fired of them) into y. */
static nn_status conv_spikes(run *r, nn_conv_mod *cv, int64_t fired, float *y, nn_error *err) {
  nn_conv_geom g = cv->g;
  g.n = r->S;
  nn_conv_mode mode = r->net->conv_mode;
  int events = mode == NN_CONV_EVENTS || (mode == NN_CONV_AUTO && nn_conv2d_prefer_events(&g, fired));
  if (events) {
    nn_conv2d_weight_cl(&g, cv->weight->data, r->wcl);
    return par_conv(r, &g, 1, NULL, r->wcl, y, err);
  }
  const float *s = NULL;
  nn_status st = run_spikes_f(r, &s, err);
  return st != NN_OK ? st : par_conv(r, &g, 0, s, cv->weight->data, y, err);
}

/* out += op(in) for one cell edge; in/out are S x c x h x w. While *fresh (no edge has written
 * out yet), out is written instead of added to (0 + y is y; only the sign of a zero could
 * differ, which nothing downstream can tell), and *fresh is cleared; a zero edge writes nothing. */
static nn_status edge_apply(run *r, nn_cell_mod *cm, nn_edge_mod *em, const float *in, float *out, int *fresh,
                            nn_error *err) {
  const int64_t hw = cm->h * cm->w, n = r->S * cm->c * hw;
  const int add = !*fresh;
  nn_status st;
  int64_t fired;
  if (em->op == NN_OP_ZERO) return NN_OK;
  *fresh = 0;
  switch (em->op) {
  case NN_OP_SKIP:
    par_elem(r, add ? 1 : 0, out, in, NULL, n);
    return NN_OK;
  case NN_OP_AVGPOOL3X3:
    par_pool(r, add ? 1 : 0, in, r->S * cm->c, cm->h, cm->w, 3, out);
    return NN_OK;
  default:
    if ((st = lif_call(r, em->lif, in, &fired, err)) != NN_OK) return st;
    if ((st = conv_spikes(r, &em->conv, fired, r->tmp, err)) != NN_OK) return st;
    bn_run(r, &em->bn, r->tmp, hw, out, add);
    return NN_OK;
  }
}

/* Per-cell state across the timesteps of one forward: x[1..3] hold the node values (x1, x2
 * replaced in place by y_i = x_i + bx_i once complete, since only y_i feeds later edges), y0 =
 * x0 + bx0, bx[0..2] the backward state. A forward cell needs x[1..3] only. */
typedef struct cell_run {
  float *x[4], *y0, *bx[3];
  int back;
} cell_run;

static void cell_run_free(cell_run *c) {
  for (int i = 0; i < 4; i++) nn_scratch_put(c->x[i]);
  for (int i = 0; i < 3; i++) nn_scratch_put(c->bx[i]);
  nn_scratch_put(c->y0);
}

static nn_status cell_run_init(cell_run *c, const nn_cell_mod *cm, int64_t S, nn_error *err) {
  size_t n = (size_t)(S * cm->c * cm->h * cm->w);
  memset(c, 0, sizeof *c);
  c->back = cm->nedges > cm->nfwd;
  int ok = 1;
  for (int i = 1; i < 4; i++) ok &= (c->x[i] = nn_scratch_get(n * sizeof(float))) != NULL;
  if (c->back) {
    ok &= (c->y0 = nn_scratch_get(n * sizeof(float))) != NULL;
    for (int i = 0; i < 3; i++) ok &= (c->bx[i] = nn_scratch_zeroed(n * sizeof(float))) != NULL;
  }
  if (!ok) {
    cell_run_free(c);
    return nn_fail(err, NN_ENOMEM, "forward: out of memory for %s state", cm->name);
  }
  return NN_OK;
}

/* One timestep of a cell (docs/model.md): x0 in, returns x3 (owned by c). */
static nn_status cell_step(run *r, nn_cell_mod *cm, cell_run *c, const float *x0, const float **x3,
                           nn_error *err) {
  const int64_t n = r->S * cm->c * cm->h * cm->w;
  const float *in[4];
  nn_status st;
  int e = 0;
  in[0] = x0;
  if (c->back) {
    par_elem(r, 2, c->y0, x0, c->bx[0], n);
    in[0] = c->y0;
  }
  for (int j = 1; j <= 3; j++) {
    int fresh = 1;
    for (; e < cm->nfwd && cm->edges[e].to == j; e++)
      if ((st = edge_apply(r, cm, &cm->edges[e], in[cm->edges[e].from], c->x[j], &fresh, err)) != NN_OK) return st;
    if (fresh) par_elem(r, 3, c->x[j], NULL, NULL, n);
    if (c->back && j < 3) par_elem(r, 1, c->x[j], c->bx[j], NULL, n); /* x_j -> y_j */
    in[j] = c->x[j];
  }
  if (c->back) {
    /* every edge input (y0, y1, y2, x3) is computed: the old backward state is no longer needed */
    int fresh[3] = {1, 1, 1};
    for (; e < cm->nedges; e++) {
      const int to = cm->edges[e].to;
      if ((st = edge_apply(r, cm, &cm->edges[e], in[cm->edges[e].from], c->bx[to], &fresh[to], err)) != NN_OK)
        return st;
    }
    for (int i = 0; i < 3; i++)
      if (fresh[i]) par_elem(r, 3, c->bx[i], NULL, NULL, n);
  }
  *x3 = c->x[3];
  return NN_OK;
}

static void reset_stats(nn_net *net, int lo, int hi) {
  for (int i = lo; i < hi; i++) net->lifs[i].fired = net->lifs[i].seen = 0;
}

static nn_status check_finite(const nn_tensor *x, const char *what, nn_error *err) {
  for (int64_t i = 0; i < x->numel; i++)
    if (!isfinite(x->data[i]))
      return nn_fail(err, NN_EINVAL, "forward: %s element %lld is not finite", what, (long long)i + 1);
  return NN_OK;
}

nn_status nn_net_forward_prefix(nn_net *net, const nn_tensor *x, const nn_forward_opts *o,
                                nn_tensor **cellb_in, nn_error *err) {
  const nn_net_params *p = &net->p;
  const int64_t C = p->channels, T = p->timesteps;
  nn_status st;
  *cellb_in = NULL;
  if (x->ndim != 4 || x->shape[0] < 1 || x->shape[1] != p->in_ch || x->shape[2] != p->in_h ||
      x->shape[3] != p->in_w) {
    char buf[64];
    return nn_fail(err, NN_EINVAL, "forward: input has shape %s, expected Sx%lldx%lldx%lld (S >= 1)",
                   nn_tensor_shape_str(x, buf, sizeof buf), (long long)p->in_ch, (long long)p->in_h,
                   (long long)p->in_w);
  }
  if ((st = check_finite(x, "input", err)) != NN_OK) return st;
  const int64_t S = x->shape[0], hw0 = net->h0 * net->w0, hw1 = net->h1 * net->w1;
  nn_tensor *out = nn_tensor_new4(4, T, S, 2 * C, hw1, err);
  if (!out) return err ? err->code : NN_ENOMEM;
  int64_t shp[5] = {T, S, 2 * C, net->h1, net->w1};
  nn_tensor_reshape(out, 5, shp, NULL);
  run r;
  cell_run cr;
  float *x0 = NULL, *d;
  if ((st = run_init(&r, net, o, S, err)) != NN_OK) {
    nn_tensor_free(out);
    return st;
  }
  memset(&cr, 0, sizeof cr);
  reset_stats(net, 0, net->down_lif + 1);
  st = cell_run_init(&cr, &net->cell[0], S, err);
  x0 = nn_scratch_get((size_t)(S * C * hw0) * sizeof *x0);
  /* the downconv's BN output lives in the first half of r.tmp: the LIF reads it before the
   * conv writes r.tmp (one map less alive: 134 MB at the cifar presets' batch 256) */
  d = r.tmp;
  if (st == NN_OK && !x0) st = nn_fail(err, NN_ENOMEM, "forward: out of memory");
  /* stem: once (docs/model.md) */
  if (st == NN_OK) {
    nn_conv_geom g = net->stem.g;
    g.n = S;
    st = par_conv(&r, &g, 0, x->data, net->stem.weight->data, x0, err);
  }
  if (st == NN_OK) bn_apply(&r, &net->stem_bn, x0, hw0, x0);
  for (int t = 0; t < T && st == NN_OK; t++) {
    const float *h;
    int64_t fired;
    r.step = t;
    if (nn_cancelled()) {
      st = nn_fail(err, NN_EINTR, "forward: interrupted");
      break;
    }
    if ((st = cell_step(&r, &net->cell[0], &cr, x0, &h, err)) != NN_OK) break;
    bn_apply(&r, &net->down_bn1, h, hw0, d);
    if ((st = lif_call(&r, net->down_lif, d, &fired, err)) != NN_OK) break;
    if ((st = conv_spikes(&r, &net->down_conv, fired, r.tmp, err)) != NN_OK) break;
    bn_apply(&r, &net->down_bn2, r.tmp, hw0, r.tmp);
    par_pool(&r, 2, r.tmp, S * 2 * C, net->h0, net->w0, 2, out->data + t * S * 2 * C * hw1);
  }
  cell_run_free(&cr);
  run_free(&r);
  nn_scratch_put(x0);
  if (st != NN_OK) {
    nn_tensor_free(out);
    return st;
  }
  *cellb_in = out;
  return NN_OK;
}

nn_status nn_net_forward_suffix(nn_net *net, const nn_tensor *cellb_in, const nn_forward_opts *o,
                                nn_tensor **out, nn_error *err) {
  const nn_net_params *p = &net->p;
  const int64_t C2 = 2 * p->channels, T = p->timesteps, hw1 = net->h1 * net->w1;
  const int64_t F = p->fc_width, K = p->classes, CL = p->cluster;
  nn_status st;
  *out = NULL;
  if (cellb_in->ndim != 5 || cellb_in->shape[0] != T || cellb_in->shape[1] < 1 ||
      cellb_in->shape[2] != C2 || cellb_in->shape[3] != net->h1 || cellb_in->shape[4] != net->w1) {
    char buf[64];
    return nn_fail(err, NN_EINVAL, "forward: cell B input has shape %s, expected %lldxSx%lldx%lldx%lld",
                   nn_tensor_shape_str(cellb_in, buf, sizeof buf), (long long)T, (long long)C2,
                   (long long)net->h1, (long long)net->w1);
  }
  const int64_t S = cellb_in->shape[1];
  const int spikes_only = o && o->spikes_only;
  nn_tensor *res = spikes_only ? NULL : nn_tensor_new4(2, S, K, 0, 0, err);
  if (!res && !spikes_only) return err ? err->code : NN_ENOMEM;
  run r;
  cell_run cr;
  if ((st = run_init(&r, net, o, S, err)) != NN_OK) {
    nn_tensor_free(res);
    return st;
  }
  memset(&cr, 0, sizeof cr);
  reset_stats(net, net->down_lif + 1, (int)net->nlifs);
  st = cell_run_init(&cr, &net->cell[1], S, err);
  float *a = nn_scratch_get((size_t)(S * C2 * hw1) * sizeof *a);
  float *pooled = nn_scratch_get((size_t)(S * net->fc_in) * sizeof *pooled);
  float *f1 = nn_scratch_get((size_t)(S * F) * sizeof *f1);
  float *f2 = nn_scratch_get((size_t)(S * K * CL) * sizeof *f2);
  if (st == NN_OK && (!a || !pooled || !f1 || !f2)) st = nn_fail(err, NN_ENOMEM, "forward: out of memory");
  for (int t = 0; t < T && st == NN_OK; t++) {
    const float *h;
    int64_t fired;
    r.step = t;
    if (nn_cancelled()) {
      st = nn_fail(err, NN_EINTR, "forward: interrupted");
      break;
    }
    if ((st = cell_step(&r, &net->cell[1], &cr, cellb_in->data + t * S * C2 * hw1, &h, err)) != NN_OK) break;
    bn_apply(&r, &net->last_bn, h, hw1, a);
    if ((st = lif_call(&r, net->last_lif, a, &fired, err)) != NN_OK) break;
    const float *sp;
    if ((st = run_spikes_f(&r, &sp, err)) != NN_OK) break;
    par_pool(&r, 2, sp, S * C2, net->h1, net->w1, p->second_pool, pooled);
    /* dropout: off during scoring and evaluation (docs/model.md [choice]) */
    if ((st = nn_linear(pooled, S, net->fc_in, net->fc1.weight->data, NULL, F, f1, err)) != NN_OK) break;
    if ((st = lif_call(&r, net->cls_lif, f1, &fired, err)) != NN_OK) break;
    if (spikes_only) continue;
    if ((st = run_spikes_f(&r, &sp, err)) != NN_OK ||
        (st = nn_linear(sp, S, F, net->fc2.weight->data, net->fc2_bias->data, K * CL, f2, err)) != NN_OK)
      break;
    /* boost: AvgPool1d(cluster) over the classes*cluster outputs, accumulated over steps */
    for (int64_t j = 0; j < S; j++)
      for (int64_t k = 0; k < K; k++) {
        float sum = 0;
        for (int64_t q = 0; q < CL; q++) sum += f2[j * K * CL + k * CL + q];
        res->data[j * K + k] += sum / (float)CL;
      }
  }
  for (int64_t i = 0; res && i < res->numel; i++) res->data[i] /= (float)T;
  cell_run_free(&cr);
  run_free(&r);
  nn_scratch_put(a), nn_scratch_put(pooled), nn_scratch_put(f1), nn_scratch_put(f2);
  if (st != NN_OK) {
    nn_tensor_free(res);
    return st;
  }
  *out = res;
  return NN_OK;
}

nn_status nn_net_forward(nn_net *net, const nn_tensor *x, const nn_forward_opts *o, nn_tensor **out,
                         nn_error *err) {
  nn_tensor *mid = NULL;
  *out = NULL;
  nn_status st = nn_net_forward_prefix(net, x, o, &mid, err);
  if (st != NN_OK) return st;
  st = nn_net_forward_suffix(net, mid, o, out, err);
  nn_tensor_free(mid);
  return st;
}

/* ---------------------------------------------------------------- weights I/O */

nn_status nn_net_save(const nn_net *net, const char *path, nn_error *err) {
  nn_st_entry e[NN_NET_MAXPARAM];
  char ca[NN_CELL_TEXT_MAX], cb[NN_CELL_TEXT_MAX], bits[16];
  for (size_t i = 0; i < net->nparams; i++) e[i].name = net->params[i].name, e[i].t = net->params[i].t;
  nn_cell_format(&net->p.cell_a, ca, sizeof ca);
  nn_cell_format(&net->p.cell_b, cb, sizeof cb);
  snprintf(bits, sizeof bits, "%d", net->weight_bits);
  const char *meta[] = {"format", "neuronas.net", "cellA", ca, "cellB", cb, "weight_bits", bits, NULL};
  return nn_st_write(path, e, net->nparams, meta, err);
}

static void shape_str(int nd, const int64_t *s, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  if (nd == 0) snprintf(buf, n, "scalar");
  for (int i = 0; i < nd && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "x" : "", (long long)s[i]);
}

/* The index of the param stored under `name` (keys[i], or the param's own name), or -1. */
static int key_index(const nn_net *net, const char *const *keys, const char *name) {
  for (size_t i = 0; i < net->nparams; i++)
    if (!strcmp(keys ? keys[i] : net->params[i].name, name)) return (int)i;
  return -1;
}

/* A "<key>.exponent" tensor (integer-code files, docs/interop.md): its param's index, or -1. */
static int exponent_of(const nn_net *net, const char *const *keys, const char *name) {
  static const char suf[] = ".exponent";
  size_t n = strlen(name), k = sizeof suf - 1;
  char base[NN_NET_MAXNAME_LEN + 64];
  if (n <= k || n - k >= sizeof base || strcmp(name + n - k, suf)) return -1;
  memcpy(base, name, n - k);
  base[n - k] = 0;
  return key_index(net, keys, base);
}

/* Reads param i (stored as `key`) into dst: floats, or integer codes times 2^exponent. */
static nn_status read_param(nn_st_file *f, const char *path, const char *key, nn_tensor *dst, nn_error *err) {
  char ek[NN_NET_MAXNAME_LEN + 64];
  snprintf(ek, sizeof ek, "%s.exponent", key);
  int k = nn_st_find(f, ek);
  if (k < 0) return nn_st_read_f32(f, key, dst->data, dst->numel, err);
  double e;
  nn_status st;
  if (nn_st_numel(f, (size_t)k) != 1) return nn_fail(err, NN_EFORMAT, "%s: tensor '%s' must be one integer", path, ek);
  if ((st = nn_st_read_f64(f, ek, &e, 1, err)) != NN_OK) return st;
  if (e != floor(e) || e < -200 || e > 200)
    return nn_fail(err, NN_EFORMAT, "%s: tensor '%s' is %g, expected an integer in -200..200", path, ek, e);
  double *codes = malloc((size_t)(dst->numel ? dst->numel : 1) * sizeof *codes);
  if (!codes) return nn_fail(err, NN_ENOMEM, "%s: out of memory for '%s'", path, key);
  if ((st = nn_st_read_f64(f, key, codes, dst->numel, err)) == NN_OK)
    for (int64_t j = 0; j < dst->numel; j++) dst->data[j] = (float)ldexp(codes[j], (int)e);
  free(codes);
  return st;
}

nn_status nn_net_load_keys(nn_net *net, const char *path, const char *const *keys,
                           int (*extra)(const char *name), nn_error *err) {
  nn_st_file *f = nn_st_open(path, err);
  nn_tensor *tmp[NN_NET_MAXPARAM] = {0};
  nn_status st = NN_OK;
  if (!f) return err ? err->code : NN_EIO;
  /* every file tensor must be one of ours (a different architecture fails loudly) */
  for (size_t i = 0; i < nn_st_count(f) && st == NN_OK; i++) {
    const char *name = nn_st_name(f, i);
    if (key_index(net, keys, name) < 0 && exponent_of(net, keys, name) < 0 && !(extra && extra(name)))
      st = nn_fail(err, NN_EINVAL, "%s: unexpected tensor '%s' (the net has no such parameter)", path, name);
  }
  for (size_t i = 0; i < net->nparams && st == NN_OK; i++) {
    const nn_tensor *t = net->params[i].t;
    const char *key = keys ? keys[i] : net->params[i].name;
    int k = nn_st_find(f, key);
    if (k < 0) {
      st = nn_fail(err, NN_EINVAL, "%s: no tensor '%s'", path, key);
      break;
    }
    int nd = nn_st_ndim(f, (size_t)k), same = nd == t->ndim;
    for (int d = 0; same && d < nd; d++) same = nn_st_shape(f, (size_t)k)[d] == t->shape[d];
    if (!same) {
      char a[64], b[64];
      shape_str(nd, nn_st_shape(f, (size_t)k), a, sizeof a);
      shape_str(t->ndim, t->shape, b, sizeof b);
      st = nn_fail(err, NN_EINVAL, "%s: tensor '%s' has shape %s, expected %s", path, key, a, b);
      break;
    }
    /* integers would pass as huge weights: only integer codes with their KEY.exponent (a codes
     * file, read_param) are converted */
    const char *dt = nn_st_dtype(f, (size_t)k);
    char ek[NN_NET_MAXNAME_LEN + 64];
    snprintf(ek, sizeof ek, "%s.exponent", key);
    if (strcmp(dt, "F32") != 0 && strcmp(dt, "F64") != 0 && nn_st_find(f, ek) < 0) {
      st = nn_fail(err, NN_EFORMAT, "%s: tensor '%s' has dtype %s, expected F32 or F64 (or integer codes "
                   "with '%s')", path, key, dt, ek);
      break;
    }
    if (!(tmp[i] = nn_tensor_new(t->ndim, t->shape, err))) {
      st = err ? err->code : NN_ENOMEM;
      break;
    }
    if ((st = read_param(f, path, key, tmp[i], err)) != NN_OK) break;
    size_t nl = strlen(key);
    int var = nl >= 12 && strcmp(key + nl - 12, ".running_var") == 0;
    for (int64_t j = 0; j < t->numel && st == NN_OK; j++)
      if (!isfinite(tmp[i]->data[j]))
        st = nn_fail(err, NN_EFORMAT, "%s: tensor '%s' element %lld is not finite", path, key, (long long)j + 1);
      else if (var && !(tmp[i]->data[j] > 0))
        st = nn_fail(err, NN_EFORMAT, "%s: tensor '%s' element %lld is %g, a variance > 0 expected", path,
                     key, (long long)j + 1, (double)tmp[i]->data[j]);
  }
  int bits = net->weight_bits;
  const char *b = st == NN_OK ? nn_st_meta(f, "weight_bits") : NULL;
  if (b) {
    char *end;
    long v = strtol(b, &end, 10);
    if (end == b || *end || v < 1 || v > 32)
      st = nn_fail(err, NN_EFORMAT, "%s: __metadata__ weight_bits is \"%.40s\", an integer in 1..32 expected",
                   path, b);
    bits = (int)v;
  }
  if (st == NN_OK) {
    for (size_t i = 0; i < net->nparams; i++) nn_tensor_copy(net->params[i].t, tmp[i], NULL);
    net->weight_bits = bits;
  }
  for (size_t i = 0; i < net->nparams; i++) nn_tensor_free(tmp[i]);
  nn_st_close(f);
  return st;
}

nn_status nn_net_load(nn_net *net, const char *path, nn_error *err) {
  return nn_net_load_keys(net, path, NULL, NULL, err);
}
