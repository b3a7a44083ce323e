/* nn_plan.c: the one builder of the network's plan (include/neuronas/nn_plan.h; docs/model.md
 * "The plan" for the macro-architecture, initialisation and SNASNet's names). */
#include "neuronas/nn_plan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "neuronas/nn_tensor.h"

static const char *const STEP_NAMES[NN_STEP_OP_COUNT] = {"conv",    "bn",     "lif",  "pool", "dropout",
                                                         "linear",  "boost",  "cell", "edge"};

const char *nn_step_op_name(nn_step_op op) {
  return (unsigned)op < NN_STEP_OP_COUNT ? STEP_NAMES[op] : "?";
}

/* Cell edges in SNASNet's execution order: forward edges by (to, from), then backward edges;
 * SNASNet indexes them cell_architecture.0..5 and cell_architecture_back.0..5 in this order. */
static const int EDGE_ORDER[12][2] = {{0, 1}, {0, 2}, {1, 2}, {0, 3}, {1, 3}, {2, 3},
                                      {1, 0}, {2, 0}, {3, 0}, {2, 1}, {3, 1}, {3, 2}};

typedef struct builder {
  nn_plan *plan;
  nn_error *err;
  int part, once, cell;
  int64_t total; /* stored values so far */
  int failed;
} builder;

static int fail(builder *b, const char *fmt, const char *what) {
  if (!b->failed) nn_fail(b->err, NN_EINVAL, fmt, what);
  b->failed = 1;
  return -1;
}

/* Appends a step with input shape (c, h, w); output = input until the caller changes it. */
static nn_plan_step *step(builder *b, nn_step_op op, const char *snasnet, int64_t c, int64_t h, int64_t w,
                          const char *fmt, ...) {
  nn_plan *pl = b->plan;
  if (b->failed) return NULL;
  if (pl->nsteps == NN_PLAN_MAXSTEP) return fail(b, "net: more than %s steps", "128"), NULL;
  nn_plan_step *s = &pl->steps[pl->nsteps++];
  memset(s, 0, sizeof *s);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->path, sizeof s->path, fmt, ap);
  va_end(ap);
  snprintf(s->snasnet, sizeof s->snasnet, "%s", snasnet);
  s->op = op, s->part = b->part, s->once = b->once, s->cell = b->cell;
  s->in_c = s->out_c = c, s->in_h = s->out_h = h, s->in_w = s->out_w = w;
  s->layer = s->lif = -1;
  s->param0 = pl->nparams;
  return s;
}

static void param(builder *b, nn_plan_step *s, const char *leaf, int ndim, const int64_t *shape,
                  nn_init_kind init, float lo, float hi) {
  nn_plan *pl = b->plan;
  if (b->failed) return;
  if (pl->nparams == NN_PLAN_MAXPARAM) {
    fail(b, "net: more than %s tensors", "192");
    return;
  }
  nn_plan_param *q = &pl->params[pl->nparams];
  memset(q, 0, sizeof *q);
  snprintf(q->name, sizeof q->name, "%s.%s", s->path, leaf);
  q->leaf = leaf, q->step = (int)(s - pl->steps), q->ndim = ndim, q->init = init, q->a = lo, q->b = hi;
  q->numel = 1;
  for (int d = 0; d < ndim; d++) q->shape[d] = shape[d], q->numel *= shape[d];
  q->crossbar = !strcmp(leaf, "weight") && (s->op == NN_STEP_CONV || s->op == NN_STEP_LINEAR);
  q->buffer = !strncmp(leaf, "running_", 8);
  /* the sum of all stored values is bounded like one tensor (docs/reliability.md "Bounds");
   * the sizes are checked before they are multiplied, so nothing overflows */
  b->total += q->numel;
  if (b->total > NN_TENSOR_MAX_NUMEL) {
    char what[NN_PLAN_NAME_LEN + 32];
    snprintf(what, sizeof what, "%lld stored values (%s)", (long long)NN_TENSOR_MAX_NUMEL, q->name);
    fail(b, "net: more than %s, the bound; smaller channels, fc_width, classes or input expected", what);
    return;
  }
  pl->nparams++;
  s->nparam++;
}

static void layer(builder *b, nn_plan_step *s, nn_layer_kind kind, int features) {
  nn_plan *pl = b->plan;
  if (b->failed) return;
  if (pl->nlayers == NN_PLAN_MAXLAYER) {
    fail(b, "net: more than %s crossbar layers", "32");
    return;
  }
  nn_layer_desc *d = &pl->layers[pl->nlayers];
  memset(d, 0, sizeof *d);
  d->kind = kind;
  snprintf(d->name, sizeof d->name, "%s", s->path);
  if (kind == NN_LAYER_CONV) {
    d->in_ch = s->in_c, d->out_ch = s->out_c, d->in_dim = s->in_h, d->out_dim = s->out_h;
    d->k = s->k, d->stride = s->stride;
  } else {
    d->in_ch = s->in_c, d->out_ch = s->out_c, d->in_dim = d->out_dim = d->k = d->stride = 1;
  }
  d->weights = d->out_ch * d->in_ch * d->k * d->k;
  d->features = features;
  pl->layer_step[pl->nlayers] = (int)(s - pl->steps);
  s->layer = pl->nlayers++;
}

/* Conv2d c -> o, k x k, stride, padding k/2, no bias; Kaiming-uniform with a = 2 (docs/model.md). */
static void conv(builder *b, const char *path, const char *snasnet, int64_t c, int64_t h, int64_t w, int64_t o,
                 int64_t k, int64_t stride) {
  nn_plan_step *s = step(b, NN_STEP_CONV, snasnet, c, h, w, "%s", path);
  if (!s) return;
  s->k = k, s->stride = stride, s->pad = k / 2;
  s->out_c = o, s->out_h = (h + 2 * s->pad - k) / stride + 1, s->out_w = (w + 2 * s->pad - k) / stride + 1;
  double bound = sqrt(6.0 / ((1.0 + 2.0 * 2.0) * (double)(c * k * k)));
  int64_t shape[4] = {o, c, k, k};
  param(b, s, "weight", 4, shape, NN_INIT_UNIFORM, (float)-bound, (float)bound);
  layer(b, s, NN_LAYER_CONV, 1);
}

/* BatchNorm2d(c): weight 1, bias 0, running mean 0, running variance 1. */
static void bn(builder *b, const char *path, const char *snasnet, int64_t c, int64_t h, int64_t w) {
  nn_plan_step *s = step(b, NN_STEP_BN, snasnet, c, h, w, "%s", path);
  if (!s) return;
  int64_t shape[1] = {c};
  param(b, s, "weight", 1, shape, NN_INIT_ONES, 0, 0);
  param(b, s, "bias", 1, shape, NN_INIT_ZEROS, 0, 0);
  param(b, s, "running_mean", 1, shape, NN_INIT_ZEROS, 0, 0);
  param(b, s, "running_var", 1, shape, NN_INIT_ONES, 0, 0);
}

static void lif(builder *b, const char *path, const char *snasnet, int64_t c, int64_t h, int64_t w) {
  nn_plan *pl = b->plan;
  nn_plan_step *s = step(b, NN_STEP_LIF, snasnet, c, h, w, "%s", path);
  if (!s) return;
  if (pl->nlifs == NN_PLAN_MAXLIF) {
    fail(b, "net: more than %s LIF modules", "32");
    return;
  }
  pl->lif_step[pl->nlifs] = (int)(s - pl->steps);
  s->lif = pl->nlifs++;
}

static void pool(builder *b, const char *path, int64_t c, int64_t h, int64_t w, int64_t k) {
  nn_plan_step *s = step(b, NN_STEP_POOL, "", c, h, w, "%s", path);
  if (!s) return;
  s->k = s->stride = k;
  s->out_h = h / k, s->out_w = w / k;
}

/* Linear in -> out: weights N(0, 0.01), bias 0 (docs/model.md). */
static void linear(builder *b, const char *path, const char *snasnet, int64_t in, int64_t out, int bias) {
  nn_plan_step *s = step(b, NN_STEP_LINEAR, snasnet, in, 1, 1, "%s", path);
  if (!s) return;
  s->out_c = out, s->bias = bias;
  int64_t shape[2] = {out, in};
  param(b, s, "weight", 2, shape, NN_INIT_NORMAL, 0.0f, 0.01f);
  if (bias) param(b, s, "bias", 1, shape, NN_INIT_ZEROS, 0, 0);
  layer(b, s, NN_LAYER_LINEAR, 0);
}

static void cell(builder *b, int index, const nn_cell *g, int64_t c, int64_t h, int64_t w) {
  nn_plan *pl = b->plan;
  const char *name = index ? "cellB" : "cellA", *sn = index ? "cell2" : "cell1";
  b->cell = index;
  nn_plan_step *cs = step(b, NN_STEP_CELL, "", c, h, w, "%s", name);
  if (!cs) return;
  int ci = (int)(cs - pl->steps);
  pl->cell_step[index] = ci;
  for (int e = 0; e < 12; e++) {
    const int from = EDGE_ORDER[e][0], to = EDGE_ORDER[e][1];
    const nn_op op = (nn_op)g->m[from][to];
    if (e == 6) pl->steps[ci].nfwd = pl->steps[ci].nedges;
    if (op == NN_OP_ZERO) continue;
    char path[NN_PLAN_PATH_LEN], snas[NN_PLAN_PATH_LEN], sub[NN_PLAN_PATH_LEN + 8], snsub[NN_PLAN_PATH_LEN + 8];
    snprintf(path, sizeof path, "%s.e%d%d", name, from, to);
    snprintf(snas, sizeof snas, "%s.cell_architecture%s.%d", sn, e < 6 ? "" : "_back", e % 6);
    nn_plan_step *es = step(b, NN_STEP_EDGE, snas, c, h, w, "%s", path);
    if (!es) return;
    int ei = (int)(es - pl->steps);
    es->from = from, es->to = to, es->edge_op = op;
    pl->steps[ci].nedges++;
    const int k = nn_op_kernel(op);
    if (k > 0) { /* Sequential(LIF, conv, BN) */
      snprintf(sub, sizeof sub, "%s.lif", path), snprintf(snsub, sizeof snsub, "%s.0", snas);
      lif(b, sub, snsub, c, h, w);
      snprintf(sub, sizeof sub, "%s.conv", path), snprintf(snsub, sizeof snsub, "%s.1", snas);
      conv(b, sub, snsub, c, h, w, c, k, 1);
      snprintf(sub, sizeof sub, "%s.bn", path), snprintf(snsub, sizeof snsub, "%s.2", snas);
      bn(b, sub, snsub, c, h, w);
      if (!b->failed) pl->steps[ei].nsub = 3;
    }
  }
  if (!b->failed) pl->steps[ci].nsub = pl->nsteps - ci - 1;
  b->cell = -1;
}

static nn_status check_params(const nn_net_params *p, nn_error *err) {
#define NEED(cond, ...) \
  if (!(cond)) return nn_fail(err, NN_EINVAL, __VA_ARGS__)
  NEED(p->in_ch >= 1 && p->in_ch <= 4096, "net: in_ch=%lld, expected 1..4096", (long long)p->in_ch);
  NEED(p->in_h >= 1 && p->in_w >= 1 && p->in_h <= 4096 && p->in_w <= 4096,
       "net: input %lldx%lld, expected sides in 1..4096", (long long)p->in_h, (long long)p->in_w);
  NEED(p->channels >= 1 && p->channels <= NN_NET_MAX_CHANNELS, "net: channels=%lld, expected 1..%d",
       (long long)p->channels, NN_NET_MAX_CHANNELS);
  NEED(p->stem_stride >= 1 && p->stem_stride <= 8, "net: stem_stride=%lld, expected 1..8", (long long)p->stem_stride);
  NEED(p->second_pool >= 1, "net: second_pool=%lld, expected >= 1", (long long)p->second_pool);
  NEED(p->fc_width >= 1 && p->fc_width <= 1 << 20, "net: fc_width=%lld, expected 1..1048576", (long long)p->fc_width);
  NEED(p->classes >= 1 && p->classes <= 1 << 20, "net: classes=%lld, expected 1..1048576", (long long)p->classes);
  NEED(p->cluster >= 1 && p->cluster <= 1024, "net: cluster=%lld, expected 1..1024", (long long)p->cluster);
  NEED(p->timesteps >= 1 && p->timesteps <= NN_NET_MAX_TIMESTEPS, "net: timesteps=%lld, expected 1..%d",
       (long long)p->timesteps, NN_NET_MAX_TIMESTEPS);
  NEED(isfinite(p->tau) && p->tau > 0, "net: tau=%g, expected a finite number > 0", p->tau);
  NEED(isfinite(p->threshold), "net: threshold=%g, expected a finite number", p->threshold);
#undef NEED
  return NN_OK;
}

nn_status nn_plan_build(nn_plan *pl, const nn_net_params *p, nn_error *err) {
  nn_error e2;
  nn_status st;
  if (!err) err = &e2;
  memset(pl, 0, sizeof *pl);
  if ((st = check_params(p, err)) != NN_OK) return st;
  if ((st = nn_cell_check(&p->cell_a, err)) != NN_OK || (st = nn_cell_check(&p->cell_b, err)) != NN_OK) return st;
  pl->p = *p;
  const int64_t C = p->channels;
  pl->h0 = (p->in_h + 2 - 3) / p->stem_stride + 1, pl->w0 = (p->in_w + 2 - 3) / p->stem_stride + 1;
  pl->h1 = pl->h0 / 2, pl->w1 = pl->w0 / 2;
  pl->h2 = pl->h1 / p->second_pool, pl->w2 = pl->w1 / p->second_pool;
  if (pl->h2 < 1 || pl->w2 < 1)
    return nn_fail(err, NN_EINVAL,
                   "net: input %lldx%lld is too small: cell B maps are %lldx%lld, second_pool=%lld leaves nothing",
                   (long long)p->in_h, (long long)p->in_w, (long long)pl->h1, (long long)pl->w1,
                   (long long)p->second_pool);
  pl->fc_in = 2 * C * pl->h2 * pl->w2;
  builder b = {pl, err, 0, 1, -1, 0, 0};
  /* prefix: the stem once, then per timestep cell A, downconv (BN, LIF, conv, BN) and a 2x2 pool */
  conv(&b, "stem.conv", "stem.0", p->in_ch, p->in_h, p->in_w, C, 3, p->stem_stride);
  bn(&b, "stem.bn", "stem.1", C, pl->h0, pl->w0);
  b.once = 0;
  cell(&b, 0, &p->cell_a, C, pl->h0, pl->w0);
  bn(&b, "downconv.bn1", "downconv1.0", C, pl->h0, pl->w0);
  lif(&b, "downconv.lif", "downconv1.1", C, pl->h0, pl->w0);
  conv(&b, "downconv.conv", "downconv1.2", C, pl->h0, pl->w0, 2 * C, 3, 1);
  bn(&b, "downconv.bn2", "downconv1.3", 2 * C, pl->h0, pl->w0);
  pool(&b, "downconv.pool", 2 * C, pl->h0, pl->w0, 2);
  /* suffix: cell B, last BN and LIF, the second pool, the classifier (dropout, fc1, LIF, fc2),
   * the boost over each class's cluster outputs */
  b.part = 1;
  pl->boundary = pl->nsteps;
  cell(&b, 1, &p->cell_b, 2 * C, pl->h1, pl->w1);
  bn(&b, "last.bn", "last_act.0", 2 * C, pl->h1, pl->w1);
  lif(&b, "last.lif", "last_act.1", 2 * C, pl->h1, pl->w1);
  pool(&b, "last.pool", 2 * C, pl->h1, pl->w1, p->second_pool);
  nn_plan_step *d = step(&b, NN_STEP_DROPOUT, "classifier.0", pl->fc_in, 1, 1, "classifier.dropout");
  (void)d;
  linear(&b, "classifier.fc1", "classifier.1", pl->fc_in, p->fc_width, 0);
  lif(&b, "classifier.lif", "classifier.2", p->fc_width, 1, 1);
  linear(&b, "classifier.fc2", "classifier.3", p->fc_width, p->classes * p->cluster, 1);
  nn_plan_step *boost = step(&b, NN_STEP_BOOST, "", p->classes * p->cluster, 1, 1, "classifier.boost");
  if (boost) boost->k = p->cluster, boost->out_c = p->classes;
  if (b.failed) {
    nn_status code = err->code;
    memset(pl, 0, sizeof *pl);
    return code;
  }
  return NN_OK;
}

int nn_plan_find_step(const nn_plan *pl, const char *path) {
  for (int i = 0; i < pl->nsteps; i++)
    if (!strcmp(pl->steps[i].path, path)) return i;
  return -1;
}

int nn_plan_find_param(const nn_plan *pl, const char *name) {
  for (int i = 0; i < pl->nparams; i++)
    if (!strcmp(pl->params[i].name, name)) return i;
  return -1;
}
