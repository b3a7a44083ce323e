/* nn_train.c: BPTT training with the ATan surrogate and QAT (docs/model.md network, docs/training.md
 * training). The forward pass mirrors docs/model.md step by step and records a tape (per
 * timestep: LIF pre-reset potentials and spikes, conv inputs, BN inputs and statistics,
 * dropout mask); the backward pass walks the timesteps in reverse, carrying each LIF's
 * membrane gradient and each backward cell's bx0..bx2 gradient from step t+1 to step t. */
#include "nn_train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "neuronas/nn_quant.h"
#include "nn_grad_impl.h"
#include "nn_tensor_impl.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ arena
 * Tape and gradient buffers of one step come from blocks that are kept between steps, so a
 * steady-state step allocates nothing (and touches no fresh pages). */
#define ARENA_BLOCK ((size_t)8 << 20) /* floats per block (32 MiB) */

static float *arena_alloc(nn_arena *a, size_t n, nn_error *err) {
  n = (n + 15) & ~(size_t)15;
  while (a->cur < a->nb && a->blk[a->cur].used + n > a->blk[a->cur].cap) a->cur++;
  if (a->cur == a->nb) {
    if (a->nb == NN_ARENA_MAXBLK) {
      nn_fail(err, NN_ENOMEM, "training tape: too many blocks");
      return NULL;
    }
    size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    float *p = malloc(cap * sizeof *p);
    if (!p) {
      nn_fail(err, NN_ENOMEM, "out of memory (training tape block of %zu MiB)",
              cap * sizeof *p >> 20);
      return NULL;
    }
    a->blk[a->nb].p = p;
    a->blk[a->nb].cap = cap;
    a->blk[a->nb].used = 0;
    a->nb++;
  }
  float *p = a->blk[a->cur].p + a->blk[a->cur].used;
  a->blk[a->cur].used += n;
  return p;
}

static float *arena_zalloc(nn_arena *a, size_t n, nn_error *err) {
  float *p = arena_alloc(a, n, err);
  if (p) memset(p, 0, n * sizeof *p);
  return p;
}

static void arena_reset(nn_arena *a) {
  for (int i = 0; i < a->nb; i++) a->blk[i].used = 0;
  a->cur = 0;
}

static void arena_free(nn_arena *a) {
  for (int i = 0; i < a->nb; i++) free(a->blk[i].p);
  a->nb = a->cur = 0;
}

#define TRY(e)                        \
  do {                                \
    nn_status st_ = (e);              \
    if (st_ != NN_OK) return st_;     \
  } while (0)
#define ALLOC(p, n)                                    \
  do {                                                 \
    if (!((p) = arena_alloc(&tr->arena, (size_t)(n), err))) return NN_ENOMEM; \
  } while (0)
#define ZALLOC(p, n)                                   \
  do {                                                 \
    if (!((p) = arena_zalloc(&tr->arena, (size_t)(n), err))) return NN_ENOMEM; \
  } while (0)

/* ------------------------------------------------------------------ parameters */

nn_train_params nn_train_params_default(void) {
  nn_train_params p = {.optimizer = NN_OPT_SGD,
                       .lr = 0.1,
                       .lr_min = 0.001,
                       .momentum = 0.9,
                       .weight_decay = 5e-4,
                       .beta1 = 0.9,
                       .beta2 = 0.999,
                       .adam_eps = 1e-8,
                       .total_steps = 0,
                       .bits = 32,
                       .dropout = 0.5,
                       .seed = 1};
  return p;
}

nn_status nn_train_params_check(const nn_train_params *p, nn_error *err) {
  if (p->optimizer != NN_OPT_SGD && p->optimizer != NN_OPT_ADAM)
    return nn_fail(err, NN_EINVAL, "optimizer: expected sgd or adam");
  if (!(isfinite(p->lr) && p->lr > 0))
    return nn_fail(err, NN_EINVAL, "lr=%g: expected a finite number > 0", p->lr);
  if (!(isfinite(p->lr_min) && p->lr_min >= 0 && p->lr_min <= p->lr))
    return nn_fail(err, NN_EINVAL, "lr_min=%g: expected a number in 0..lr", p->lr_min);
  if (!(p->momentum >= 0 && p->momentum < 1))
    return nn_fail(err, NN_EINVAL, "momentum=%g: expected a number in [0, 1)", p->momentum);
  if (!(isfinite(p->weight_decay) && p->weight_decay >= 0))
    return nn_fail(err, NN_EINVAL, "weight_decay=%g: expected a finite number >= 0",
                   p->weight_decay);
  if (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1) ||
      !(p->adam_eps > 0))
    return nn_fail(err, NN_EINVAL, "adam betas must be in [0, 1) and eps > 0");
  if (p->total_steps < 0)
    return nn_fail(err, NN_EINVAL, "total_steps=%lld: expected >= 0", (long long)p->total_steps);
  if (p->bits < 2 || p->bits > 32)
    return nn_fail(err, NN_EINVAL, "bits=%d outside 2..32", p->bits);
  if (!(p->dropout >= 0 && p->dropout < 1))
    return nn_fail(err, NN_EINVAL, "dropout=%g: expected a number in [0, 1)", p->dropout);
  return NN_OK;
}

static int add_param(nn_trainer *tr, const char *name, int64_t n, int quant, nn_error *err) {
  if (tr->np == NN_TRAIN_MAXPARAM) {
    nn_fail(err, NN_EINVAL, "too many parameters");
    return -1;
  }
  tparam *p = &tr->p[tr->np];
  snprintf(p->name, sizeof p->name, "%s", name);
  p->n = n;
  p->quant = quant;
  p->w = calloc((size_t)n, sizeof *p->w);
  p->g = calloc((size_t)n, sizeof *p->g);
  p->m1 = calloc((size_t)n, sizeof *p->m1);
  p->m2 = tr->tp.optimizer == NN_OPT_ADAM ? calloc((size_t)n, sizeof *p->m2) : NULL;
  p->q = quant ? calloc((size_t)n, sizeof *p->q) : NULL;
  if (!p->w || !p->g || !p->m1 || (tr->tp.optimizer == NN_OPT_ADAM && !p->m2) ||
      (quant && !p->q)) {
    free(p->w), free(p->g), free(p->m1), free(p->m2), free(p->q);
    nn_fail(err, NN_ENOMEM, "out of memory (parameter %s)", name);
    return -1;
  }
  return tr->np++;
}

/* Weights the forward pass uses: the FxP copy under QAT, else the masters. */
static const float *fw(const nn_trainer *tr, int i) {
  return tr->p[i].q && tr->tp.bits < 32 ? tr->p[i].q : tr->p[i].w;
}

static int new_conv(nn_trainer *tr, const char *path, int64_t cin, int64_t cout, int64_t k,
                    int64_t stride, int64_t h, int64_t w, nn_error *err) {
  char nm[96];
  if (tr->nconv == NN_TRAIN_MAXMOD) return nn_fail(err, NN_EINVAL, "too many convs"), -1;
  tconv *c = &tr->conv[tr->nconv];
  snprintf(nm, sizeof nm, "%s.weight", path);
  if ((c->w = add_param(tr, nm, cout * cin * k * k, 1, err)) < 0) return -1;
  snprintf(c->path, sizeof c->path, "%s", path);
  c->cin = cin, c->cout = cout, c->k = k, c->stride = stride, c->pad = k / 2, c->h = h, c->wd = w;
  c->ho = (h + 2 * c->pad - k) / stride + 1;
  c->wo = (w + 2 * c->pad - k) / stride + 1;
  return tr->nconv++;
}

static int new_bn(nn_trainer *tr, const char *path, int64_t ch, int64_t hw, nn_error *err) {
  char nm[96];
  if (tr->nbn == NN_TRAIN_MAXMOD) return nn_fail(err, NN_EINVAL, "too many BNs"), -1;
  tbn *b = &tr->bn[tr->nbn];
  snprintf(b->path, sizeof b->path, "%s", path);
  b->c = ch, b->hw = hw;
  snprintf(nm, sizeof nm, "%s.weight", path);
  if ((b->g = add_param(tr, nm, ch, 0, err)) < 0) return -1;
  snprintf(nm, sizeof nm, "%s.bias", path);
  if ((b->b = add_param(tr, nm, ch, 0, err)) < 0) return -1;
  b->rm = calloc((size_t)ch, sizeof *b->rm);
  b->rv = malloc((size_t)ch * sizeof *b->rv);
  b->mean = calloc((size_t)(ch * tr->T), sizeof *b->mean);
  b->istd = calloc((size_t)(ch * tr->T), sizeof *b->istd);
  b->x = calloc((size_t)tr->T, sizeof *b->x);
  if (!b->rm || !b->rv || !b->mean || !b->istd || !b->x) {
    free(b->rm), free(b->rv), free(b->mean), free(b->istd), free(b->x);
    return nn_fail(err, NN_ENOMEM, "out of memory (%s)", path), -1;
  }
  for (int64_t i = 0; i < ch; i++) b->rv[i] = 1, tr->p[b->g].w[i] = 1;
  return tr->nbn++;
}

static int new_lif(nn_trainer *tr, int64_t m, nn_error *err) {
  if (tr->nlif == NN_TRAIN_MAXMOD) return nn_fail(err, NN_EINVAL, "too many LIFs"), -1;
  tlif *l = &tr->lif[tr->nlif];
  l->m = m;
  l->h = calloc((size_t)tr->T, sizeof *l->h);
  l->s = calloc((size_t)tr->T, sizeof *l->s);
  if (!l->h || !l->s) {
    free(l->h), free(l->s);
    return nn_fail(err, NN_ENOMEM, "out of memory (LIF tape)"), -1;
  }
  return tr->nlif++;
}


static nn_status build_cell(nn_trainer *tr, tcell *cell, const char *name, const nn_cell *g,
                            int64_t ch, int64_t h, int64_t w, nn_error *err) {
  char path[64];
  cell->ch = ch, cell->h = h, cell->w = w;
  cell->has_back = 0;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      tedge *e = &cell->e[i][j];
      memset(e, 0, sizeof *e);
      e->op = i == j ? NN_OP_ZERO : g->m[i][j];
      if (e->op >= NN_OP_COUNT)
        return nn_fail(err, NN_EINVAL, "%s: edge %d%d has unknown op code %d", name, i, j, e->op);
      if (e->op == NN_OP_ZERO) continue;
      if (i > j && (j == 3 || i == 0)) continue; /* unreachable */
      if (i > j) cell->has_back = 1;
      int k = nn_op_kernel((nn_op)e->op);
      if (k > 0) {
        snprintf(path, sizeof path, "%s.e%d%d.lif", name, i, j);
        if ((e->lif = new_lif(tr, ch * h * w, err)) < 0) return err ? err->code : NN_EINVAL;
        snprintf(path, sizeof path, "%s.e%d%d.conv", name, i, j);
        if ((e->conv = new_conv(tr, path, ch, ch, k, 1, h, w, err)) < 0)
          return err ? err->code : NN_EINVAL;
        snprintf(path, sizeof path, "%s.e%d%d.bn", name, i, j);
        if ((e->bn = new_bn(tr, path, ch, h * w, err)) < 0) return err ? err->code : NN_EINVAL;
      }
    }
  cell->bx = calloc((size_t)tr->T * 3, sizeof *cell->bx);
  if (!cell->bx) return nn_fail(err, NN_ENOMEM, "out of memory (cell state)");
  return NN_OK;
}

#define FAILR(e)                       \
  do {                                 \
    if ((e) < 0) goto fail;            \
  } while (0)

nn_trainer *nn_trainer_build(const nn_net_params *np, const nn_train_params *p, nn_error *err) {
  nn_trainer *tr;
  int64_t C, H1, W1, H2, W2, H3, W3;
  if (nn_train_params_check(p, err) != NN_OK) return NULL;
  if (np->timesteps < 1 || np->timesteps > 1000 || np->channels < 1 || np->in_ch < 1 ||
      np->in_h < 1 || np->in_w < 1 || np->stem_stride < 1 || np->second_pool < 1 ||
      np->fc_width < 1 || np->classes < 1 || np->cluster < 1 || !(np->tau > 1) ||
      !(np->threshold > 0)) {
    nn_fail(err, NN_EINVAL, "network fields out of range for training");
    return NULL;
  }
  tr = calloc(1, sizeof *tr);
  if (!tr) {
    nn_fail(err, NN_ENOMEM, "out of memory (trainer)");
    return NULL;
  }
  tr->np_net = *np;
  tr->tp = *p;
  tr->T = np->timesteps;
  C = np->channels;
  H1 = (np->in_h + 2 - 3) / np->stem_stride + 1;
  W1 = (np->in_w + 2 - 3) / np->stem_stride + 1;
  H2 = H1 / 2, W2 = W1 / 2;
  H3 = H2 / np->second_pool, W3 = W2 / np->second_pool;
  if (H2 < 1 || W2 < 1 || H3 < 1 || W3 < 1) {
    nn_fail(err, NN_EINVAL, "input %lldx%lld too small for the pools (stem stride %lld, p=%lld)",
            (long long)np->in_h, (long long)np->in_w, (long long)np->stem_stride,
            (long long)np->second_pool);
    free(tr);
    return NULL;
  }
  tr->H1 = H1, tr->W1 = W1, tr->H2 = H2, tr->W2 = W2, tr->H3 = H3, tr->W3 = W3;
  tr->D = 2 * C * H3 * W3;
  FAILR(tr->stem_conv = new_conv(tr, "stem.conv", np->in_ch, C, 3, np->stem_stride, np->in_h,
                                 np->in_w, err));
  FAILR(tr->stem_bn = new_bn(tr, "stem.bn", C, H1 * W1, err));
  if (build_cell(tr, &tr->cell[0], "cellA", &np->cell_a, C, H1, W1, err) != NN_OK) goto fail;
  FAILR(tr->dc_bn1 = new_bn(tr, "downconv.bn1", C, H1 * W1, err));
  FAILR(tr->dc_lif = new_lif(tr, C * H1 * W1, err));
  FAILR(tr->dc_conv = new_conv(tr, "downconv.conv", C, 2 * C, 3, 1, H1, W1, err));
  FAILR(tr->dc_bn2 = new_bn(tr, "downconv.bn2", 2 * C, H1 * W1, err));
  if (build_cell(tr, &tr->cell[1], "cellB", &np->cell_b, 2 * C, H2, W2, err) != NN_OK) goto fail;
  FAILR(tr->last_bn = new_bn(tr, "last.bn", 2 * C, H2 * W2, err));
  FAILR(tr->last_lif = new_lif(tr, 2 * C * H2 * W2, err));
  FAILR(tr->fc1 = add_param(tr, "classifier.fc1.weight", np->fc_width * tr->D, 1, err));
  FAILR(tr->cls_lif = new_lif(tr, np->fc_width, err));
  FAILR(tr->fc2 = add_param(tr, "classifier.fc2.weight",
                            np->classes * np->cluster * np->fc_width, 1, err));
  FAILR(tr->fc2b = add_param(tr, "classifier.fc2.bias", np->classes * np->cluster, 0, err));
  tr->mask = calloc((size_t)tr->T, sizeof *tr->mask);
  tr->fcin = calloc((size_t)tr->T, sizeof *tr->fcin);
  if (!tr->mask || !tr->fcin) {
    nn_fail(err, NN_ENOMEM, "out of memory (trainer)");
    goto fail;
  }
  {
    nn_rng s0 = nn_rng_seed(p->seed);
    tr->mask_root = nn_rng_split(&s0, "dropout");
  }
  return tr;
fail:
  nn_trainer_free(tr);
  return NULL;
}

void nn_trainer_free(nn_trainer *tr) {
  if (!tr) return;
  for (int i = 0; i < tr->np; i++) {
    tparam *p = &tr->p[i];
    free(p->w), free(p->g), free(p->m1), free(p->m2), free(p->q);
  }
  for (int i = 0; i < tr->nbn; i++) {
    tbn *b = &tr->bn[i];
    free(b->rm), free(b->rv), free(b->mean), free(b->istd), free(b->x);
  }
  for (int i = 0; i < tr->nlif; i++) free(tr->lif[i].h), free(tr->lif[i].s);
  for (int c = 0; c < 2; c++) free(tr->cell[c].bx);
  free(tr->mask), free(tr->fcin);
  arena_free(&tr->arena);
  nn_ws_free(&tr->ws);
  free(tr);
}

const nn_train_params *nn_trainer_params(const nn_trainer *tr) { return &tr->tp; }
const nn_net_params *nn_trainer_net_params(const nn_trainer *tr) { return &tr->np_net; }
int64_t nn_trainer_steps(const nn_trainer *tr) { return tr->steps; }
void nn_trainer_set_conv_mode(nn_trainer *tr, nn_conv_mode mode) { tr->conv_mode = mode; }
void nn_trainer_set_total_steps(nn_trainer *tr, int64_t total) {
  tr->tp.total_steps = total < 0 ? 0 : total;
}
double nn_trainer_lr(const nn_trainer *tr) {
  return nn_cosine_lr(tr->tp.lr, tr->tp.lr_min, tr->steps, tr->tp.total_steps);
}
size_t nn_trainer_param_count(const nn_trainer *tr) { return (size_t)tr->np; }
const char *nn_trainer_param_name(const nn_trainer *tr, size_t i) { return tr->p[i].name; }
int64_t nn_trainer_param_size(const nn_trainer *tr, size_t i) { return tr->p[i].n; }
float *nn_trainer_param_data(nn_trainer *tr, size_t i) { return tr->p[i].w; }
const float *nn_trainer_param_grad(const nn_trainer *tr, size_t i) { return tr->p[i].g; }

/* ------------------------------------------------------------------ module passes */

static nn_status conv_f(nn_trainer *tr, int ci, const float *x, float *y, nn_error *err) {
  tconv *c = &tr->conv[ci];
  nn_conv_geom g = {tr->n, c->cin, c->h, c->wd, c->cout, c->k, c->stride, c->pad};
  return nn_conv2d(&g, x, fw(tr, c->w), y, err);
}

/* A conv on the spikes s of a LIF that fired `fired` times: event-driven on the bit-packed
 * spikes when the conv mode says so (AUTO: nn_conv2d_prefer_events, the per-kernel rate
 * threshold), exactly as nn_net_forward decides, so both give the same floats; dense in smooth
 * mode (s not binary). */
static nn_status conv_fs(nn_trainer *tr, int ci, const float *s, int64_t fired, float *y,
                         nn_error *err) {
  tconv *c = &tr->conv[ci];
  nn_conv_geom g = {tr->n, c->cin, c->h, c->wd, c->cout, c->k, c->stride, c->pad};
  const int64_t per = g.c * g.h * g.w;
  int events = !tr->smooth && (tr->conv_mode == NN_CONV_EVENTS ||
                               (tr->conv_mode == NN_CONV_AUTO && nn_conv2d_prefer_events(&g, fired)));
  if (!events) return nn_conv2d(&g, s, fw(tr, c->w), y, err);
  float *wcl, *bitsf;
  ALLOC(wcl, g.o * g.c * g.k * g.k);
  ALLOC(bitsf, 2 * g.n * nn_spike_words(per)); /* uint64 words in float storage */
  uint64_t *bits = (uint64_t *)(void *)bitsf;
  nn_spikes_pack(s, g.n, per, bits);
  nn_conv2d_weight_cl(&g, fw(tr, c->w), wcl);
  return nn_conv2d_events(&g, bits, wcl, y, err);
}

/* dx may be NULL (input gradient not needed) */
static nn_status conv_b(nn_trainer *tr, int ci, const float *x, const float *dy, float *dx,
                        int acc, nn_error *err) {
  tconv *c = &tr->conv[ci];
  nn_conv_geom g = {tr->n, c->cin, c->h, c->wd, c->cout, c->k, c->stride, c->pad};
  return nn_conv2d_bwd(&g, x, fw(tr, c->w), dy, dx, acc, tr->p[c->w].g, &tr->ws, err);
}

static void bn_f(nn_trainer *tr, int bi, int t, const float *x, float *y) {
  tbn *b = &tr->bn[bi];
  const float *g = tr->p[b->g].w, *be = tr->p[b->b].w;
  if (tr->mode_train) {
    b->x[t] = x;
    nn_bn_forward(x, tr->n, b->c, b->hw, g, be, tr->update_running ? b->rm : NULL,
                  tr->update_running ? b->rv : NULL, 1, NN_BN_MOMENTUM, NN_BN_EPS, y,
                  b->mean + t * b->c, b->istd + t * b->c);
  } else {
    nn_bn_forward(x, tr->n, b->c, b->hw, g, be, b->rm, b->rv, 0, NN_BN_MOMENTUM, NN_BN_EPS, y,
                  NULL, NULL);
  }
}

static void bn_b(nn_trainer *tr, int bi, int t, const float *dy, float *dx, int acc) {
  tbn *b = &tr->bn[bi];
  nn_bn2d_bwd(tr->n, b->c, b->hw, b->x[t], tr->p[b->g].w, b->mean + t * b->c, b->istd + t * b->c,
              dy, dx, acc, tr->p[b->g].g, tr->p[b->b].g);
}

static nn_status lif_f(nn_trainer *tr, int li, int t, const float *x, float **s, int64_t *fired,
                       nn_error *err) {
  tlif *l = &tr->lif[li];
  int64_t m = tr->n * l->m;
  if (!l->v) ZALLOC(l->v, m);
  ALLOC(l->h[t], m);
  ALLOC(l->s[t], m);
  int64_t f = nn_lif_step(l->v, x, m, (float)tr->np_net.tau, (float)tr->np_net.threshold, l->s[t], l->h[t]);
  if (fired) *fired = f;
  if (tr->smooth) {
    for (int64_t i = 0; i < m; i++)
      if (l->s[t][i] != 0) tr->reset_hash = nn_rng_mix64(tr->reset_hash ^ (uint64_t)(i * 131 + t));
    const double za = M_PI / 2 * NN_ATAN_ALPHA;
    for (int64_t i = 0; i < m; i++)
      l->s[t][i] = (float)(atan(za * (l->h[t][i] - tr->np_net.threshold)) / M_PI + 0.5);
  }
  *s = l->s[t];
  return NN_OK;
}

/* ds may be NULL (no gradient reached the spikes at this step) */
static nn_status lif_b(nn_trainer *tr, int li, int t, const float *ds, float *dx, int acc,
                       nn_error *err) {
  tlif *l = &tr->lif[li];
  int64_t m = tr->n * l->m;
  if (!l->dv) ZALLOC(l->dv, m);
  nn_lif_bwd_step(m, tr->np_net.tau, tr->np_net.threshold, NN_ATAN_ALPHA, l->h[t], ds, l->dv, dx,
                  acc);
  return NN_OK;
}

static void addto(int64_t m, float *y, const float *x) {
  for (int64_t i = 0; i < m; i++) y[i] += x[i];
}

/* One edge's op on u; the result is added into y (all ch x h x w per sample). */
static nn_status edge_f(nn_trainer *tr, tcell *cell, tedge *e, int t, const float *u, float *y,
                        nn_error *err) {
  int64_t m = tr->n * cell->ch * cell->h * cell->w, fired;
  float *s, *c, *o;
  switch (e->op) {
  case NN_OP_SKIP:
    addto(m, y, u);
    return NN_OK;
  case NN_OP_AVGPOOL3X3:
    ALLOC(o, m);
    nn_avgpool3x3(u, tr->n * cell->ch, cell->h, cell->w, o);
    addto(m, y, o);
    return NN_OK;
  default:
    TRY(lif_f(tr, e->lif, t, u, &s, &fired, err));
    ALLOC(c, m);
    TRY(conv_fs(tr, e->conv, s, fired, c, err));
    ALLOC(o, m);
    bn_f(tr, e->bn, t, c, o);
    addto(m, y, o);
    return NN_OK;
  }
}

/* dy -> du (+=) */
static nn_status edge_b(nn_trainer *tr, tcell *cell, tedge *e, int t, const float *dy, float *du,
                        nn_error *err) {
  int64_t m = tr->n * cell->ch * cell->h * cell->w;
  float *dc, *ds;
  switch (e->op) {
  case NN_OP_SKIP:
    addto(m, du, dy);
    return NN_OK;
  case NN_OP_AVGPOOL3X3:
    nn_avgpool_bwd(tr->n * cell->ch, cell->h, cell->w, 3, 1, 1, dy, du, 1);
    return NN_OK;
  default:
    ALLOC(dc, m);
    bn_b(tr, e->bn, t, dy, dc, 0);
    ALLOC(ds, m);
    TRY(conv_b(tr, e->conv, tr->lif[e->lif].s[t], dc, ds, 0, err));
    return lif_b(tr, e->lif, t, ds, du, 1, err);
  }
}

static int edge_on(const tcell *cell, int i, int j) { return cell->e[i][j].op != NN_OP_ZERO &&
                                                             !(i > j && (j == 3 || i == 0)); }

/* docs/model.md cell at step t: u_i = x_i + bx_i (bx = 0 for forward cells);
 * x_j = sum_{i<j} e_ij(u_i); bx_i(next) = sum_{j>i} e_ji(u_j). *out = x3 (arena). */
static nn_status cell_f(nn_trainer *tr, tcell *cell, int t, const float *x0, float **out,
                        nn_error *err) {
  int64_t m = tr->n * cell->ch * cell->h * cell->w;
  float *u[4];
  const float *prev[3] = {NULL, NULL, NULL};
  if (cell->has_back && t > 0)
    for (int i = 0; i < 3; i++) prev[i] = cell->bx[(t - 1) * 3 + i];
  for (int j = 0; j < 4; j++) {
    float *x;
    if (j == 0) {
      if (!prev[0]) {
        u[0] = (float *)x0;
        continue;
      }
      ALLOC(x, m);
      memcpy(x, x0, (size_t)m * sizeof *x);
    } else {
      ZALLOC(x, m);
      for (int i = 0; i < j; i++)
        if (edge_on(cell, i, j)) TRY(edge_f(tr, cell, &cell->e[i][j], t, u[i], x, err));
    }
    if (j < 3 && prev[j]) addto(m, x, prev[j]);
    u[j] = x;
  }
  if (cell->has_back) {
    for (int i = 0; i < 3; i++) {
      float *b;
      ZALLOC(b, m);
      for (int j = i + 1; j < 4; j++)
        if (edge_on(cell, j, i)) TRY(edge_f(tr, cell, &cell->e[j][i], t, u[j], b, err));
      cell->bx[t * 3 + i] = b;
    }
  }
  *out = u[3];
  return NN_OK;
}

/* dout = dL/dx3 at step t; *dx0 (arena) gets dL/dx0. cell->dbx carries dL/dbx_i(t) in and
 * leaves with dL/dbx_i(t-1). */
static nn_status cell_b(nn_trainer *tr, tcell *cell, int t, const float *dout, float **dx0,
                        nn_error *err) {
  int64_t m = tr->n * cell->ch * cell->h * cell->w;
  float *du[4];
  for (int j = 0; j < 4; j++) ZALLOC(du[j], m);
  if (cell->has_back && t < tr->T - 1)
    for (int i = 0; i < 3; i++)
      for (int j = i + 1; j < 4; j++)
        if (edge_on(cell, j, i)) TRY(edge_b(tr, cell, &cell->e[j][i], t, cell->dbx[i], du[j], err));
  addto(m, du[3], dout);
  for (int j = 3; j >= 1; j--)
    for (int i = 0; i < j; i++)
      if (edge_on(cell, i, j)) TRY(edge_b(tr, cell, &cell->e[i][j], t, du[j], du[i], err));
  if (cell->has_back)
    for (int i = 0; i < 3; i++) cell->dbx[i] = du[i]; /* u_i = x_i + bx_i(t-1) */
  *dx0 = du[0];
  return NN_OK;
}

/* ------------------------------------------------------------------ whole network */

static nn_status check_batch(const nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                             nn_error *err) {
  const nn_net_params *np = &tr->np_net;
  if (x->ndim != 4 || x->shape[1] != np->in_ch || x->shape[2] != np->in_h ||
      x->shape[3] != np->in_w || x->shape[0] < 1) {
    char b[64];
    return nn_fail(err, NN_EINVAL, "x: expected a tensor S x %lld x %lld x %lld, got %s",
                   (long long)np->in_ch, (long long)np->in_h, (long long)np->in_w,
                   nn_tensor_shape_str(x, b, sizeof b));
  }
  for (int64_t i = 0; i < x->numel; i++)
    if (!isfinite(x->data[i]))
      return nn_fail(err, NN_EINVAL, "x: element %lld is not finite", (long long)(i + 1));
  if (y && y->numel != x->shape[0])
    return nn_fail(err, NN_EINVAL, "y: expected %lld labels, got %lld", (long long)x->shape[0],
                   (long long)y->numel);
  return NN_OK;
}

static nn_status quantize_weights(nn_trainer *tr, nn_error *err) {
  if (tr->tp.bits >= 32) return NN_OK;
  nn_quant_params qp = nn_quant_params_default();
  qp.bits = tr->tp.bits;
  for (int i = 0; i < tr->np; i++) {
    tparam *p = &tr->p[i];
    if (!p->quant) continue;
    char label[96];
    snprintf(label, sizeof label, "%.*s", (int)(strlen(p->name) - strlen(".weight")), p->name);
    TRY(nn_quant_array(&qp, label, p->w, p->q, p->n, NULL, err));
  }
  return NN_OK;
}

/* Forward with tape; *out (arena) gets the T-averaged output, n x classes. */
static nn_status net_f(nn_trainer *tr, const nn_tensor *xin, uint64_t mask_id, float **out,
                       nn_error *err) {
  const nn_net_params *np = &tr->np_net;
  const int64_t n = xin->shape[0], C = np->channels, K = np->classes, F = np->fc_width;
  const int64_t m1 = n * C * tr->H1 * tr->W1, m2 = n * 2 * C * tr->H2 * tr->W2;
  const int64_t KC = K * np->cluster;
  float *stem_c, *x0, *avg;
  arena_reset(&tr->arena);
  for (int i = 0; i < tr->nlif; i++) tr->lif[i].v = tr->lif[i].dv = NULL;
  tr->n = n;
  tr->x_in = xin->data;
  ALLOC(stem_c, m1);
  TRY(conv_f(tr, tr->stem_conv, xin->data, stem_c, err));
  ALLOC(x0, m1);
  bn_f(tr, tr->stem_bn, 0, stem_c, x0);
  ZALLOC(avg, n * K);
  nn_rng mrng = nn_rng_split_u64(&tr->mask_root, mask_id);
  for (int t = 0; t < tr->T; t++) {
    if (nn_cancelled()) return nn_fail(err, NN_EINTR, "training interrupted");
    float *a3, *d1, *ds, *dc, *d2, *bin, *b3, *l1, *ls, *pooled, *f1, *fs, *f2, *bo;
    TRY(cell_f(tr, &tr->cell[0], t, x0, &a3, err));
    ALLOC(d1, m1);
    bn_f(tr, tr->dc_bn1, t, a3, d1);
    int64_t fired;
    TRY(lif_f(tr, tr->dc_lif, t, d1, &ds, &fired, err));
    ALLOC(dc, n * 2 * C * tr->H1 * tr->W1);
    TRY(conv_fs(tr, tr->dc_conv, ds, fired, dc, err));
    ALLOC(d2, n * 2 * C * tr->H1 * tr->W1);
    bn_f(tr, tr->dc_bn2, t, dc, d2);
    ALLOC(bin, m2);
    nn_avgpool(d2, n * 2 * C, tr->H1, tr->W1, 2, bin);
    TRY(cell_f(tr, &tr->cell[1], t, bin, &b3, err));
    ALLOC(l1, m2);
    bn_f(tr, tr->last_bn, t, b3, l1);
    TRY(lif_f(tr, tr->last_lif, t, l1, &ls, NULL, err));
    ALLOC(pooled, n * tr->D);
    nn_avgpool(ls, n * 2 * C, tr->H2, tr->W2, np->second_pool, pooled);
    if (tr->mode_train && tr->tp.dropout > 0) {
      ALLOC(tr->mask[t], n * tr->D);
      if (t == 0) nn_dropout_mask(n * tr->D, tr->tp.dropout, &mrng, tr->mask[0]);
      else memcpy(tr->mask[t], tr->mask[0], (size_t)(n * tr->D) * sizeof(float));
      nn_mul(n * tr->D, pooled, tr->mask[t], pooled);
    } else {
      tr->mask[t] = NULL;
    }
    tr->fcin[t] = pooled;
    ALLOC(f1, n * F);
    TRY(nn_linear(pooled, n, tr->D, fw(tr, tr->fc1), NULL, F, f1, err));
    TRY(lif_f(tr, tr->cls_lif, t, f1, &fs, NULL, err));
    ALLOC(f2, n * KC);
    TRY(nn_linear(fs, n, F, fw(tr, tr->fc2), tr->p[tr->fc2b].w, KC, f2, err));
    ALLOC(bo, n * K);
    nn_boost_fwd(n, K, np->cluster, f2, bo);
    for (int64_t i = 0; i < n * K; i++) avg[i] += bo[i];
  }
  for (int64_t i = 0; i < n * K; i++) avg[i] /= (float)tr->T; /* as nn_net_forward_suffix */
  *out = avg;
  return NN_OK;
}

/* Backward from dL/d(avg output); parameter gradients accumulate into p->g; dxin (optional)
 * gets dL/dx. */
static nn_status net_b(nn_trainer *tr, const float *dout, float *dxin, nn_error *err) {
  const nn_net_params *np = &tr->np_net;
  const int64_t n = tr->n, C = np->channels, K = np->classes, F = np->fc_width;
  const int64_t m1 = n * C * tr->H1 * tr->W1, m2 = n * 2 * C * tr->H2 * tr->W2;
  const int64_t KC = K * np->cluster, mh = n * 2 * C * tr->H1 * tr->W1;
  float *dbo, *df2, *dfs, *df1, *dpool, *dls, *dl1, *db3, *dbin, *dd2, *ddc, *dds, *dd1, *dx0;
  float *da3;
  for (int i = 0; i < tr->nlif; i++) tr->lif[i].dv = NULL;
  ZALLOC(dx0, m1);
  ALLOC(dbo, n * K);
  for (int64_t i = 0; i < n * K; i++) dbo[i] = dout[i] / (float)tr->T;
  ALLOC(df2, n * KC);
  ALLOC(dfs, n * F);
  ALLOC(df1, n * F);
  ALLOC(dpool, n * tr->D);
  ALLOC(dls, m2);
  ALLOC(dl1, m2);
  ALLOC(dd2, mh);
  ALLOC(ddc, mh);
  ALLOC(dds, m1);
  ALLOC(dd1, m1);
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < 3; i++) tr->cell[c].dbx[i] = NULL;
  for (int t = tr->T - 1; t >= 0; t--) {
    if (nn_cancelled()) return nn_fail(err, NN_EINTR, "training interrupted");
    nn_boost_bwd(n, K, np->cluster, dbo, df2, 0);
    TRY(nn_linear_bwd(n, F, KC, tr->lif[tr->cls_lif].s[t], fw(tr, tr->fc2), df2, dfs,
                      tr->p[tr->fc2].g, tr->p[tr->fc2b].g, err));
    TRY(lif_b(tr, tr->cls_lif, t, dfs, df1, 0, err));
    TRY(nn_linear_bwd(n, tr->D, F, tr->fcin[t], fw(tr, tr->fc1), df1, dpool, tr->p[tr->fc1].g,
                      NULL, err));
    if (tr->mask[t]) nn_mul(n * tr->D, dpool, tr->mask[t], dpool);
    nn_avgpool_bwd(n * 2 * C, tr->H2, tr->W2, np->second_pool, np->second_pool, 0, dpool, dls, 0);
    TRY(lif_b(tr, tr->last_lif, t, dls, dl1, 0, err));
    bn_b(tr, tr->last_bn, t, dl1, dl1, 0); /* in place: each channel's sums are taken first */
    db3 = dl1;
    TRY(cell_b(tr, &tr->cell[1], t, db3, &dbin, err));
    nn_avgpool_bwd(n * 2 * C, tr->H1, tr->W1, 2, 2, 0, dbin, dd2, 0);
    bn_b(tr, tr->dc_bn2, t, dd2, ddc, 0);
    TRY(conv_b(tr, tr->dc_conv, tr->lif[tr->dc_lif].s[t], ddc, dds, 0, err));
    TRY(lif_b(tr, tr->dc_lif, t, dds, dd1, 0, err));
    bn_b(tr, tr->dc_bn1, t, dd1, dd1, 0);
    da3 = dd1;
    float *dcx0;
    TRY(cell_b(tr, &tr->cell[0], t, da3, &dcx0, err));
    addto(m1, dx0, dcx0);
  }
  float *dstem;
  ALLOC(dstem, m1);
  bn_b(tr, tr->stem_bn, 0, dx0, dstem, 0);
  return conv_b(tr, tr->stem_conv, tr->x_in, dstem, dxin, 0, err);
}

static void zero_grads(nn_trainer *tr) {
  for (int i = 0; i < tr->np; i++) memset(tr->p[i].g, 0, (size_t)tr->p[i].n * sizeof(float));
}

static nn_status forward_loss(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                              int train, int update_running, uint64_t mask_id, int smooth,
                              double *loss, int64_t *correct, float **dlogits, nn_error *err) {
  float *out;
  TRY(check_batch(tr, x, y, err));
  TRY(quantize_weights(tr, err));
  tr->mode_train = train;
  tr->update_running = update_running;
  tr->smooth = smooth;
  tr->reset_hash = 0;
  TRY(net_f(tr, x, mask_id, &out, err));
  if (dlogits) ALLOC(*dlogits, x->shape[0] * tr->np_net.classes);
  return nn_softmax_ce(x->shape[0], tr->np_net.classes, out, y->data, loss,
                       dlogits ? *dlogits : NULL, correct, err);
}

nn_status nn_trainer_step(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                          nn_train_result *res, nn_error *err) {
  double t0 = now_s(), t1, t2, loss;
  int64_t correct;
  float *dl;
  nn_train_result r = {0};
  TRY(forward_loss(tr, x, y, 1, 1, tr->steps, 0, &loss, &correct, &dl, err));
  if (!isfinite(loss))
    return nn_fail(err, NN_EINVAL, "training diverged at step %lld (loss is not finite); "
                   "lower lr", (long long)tr->steps + 1);
  t1 = now_s();
  zero_grads(tr);
  TRY(net_b(tr, dl, NULL, err));
  t2 = now_s();
  r.lr = nn_trainer_lr(tr);
  tr->steps++;
  for (int i = 0; i < tr->np; i++) {
    tparam *p = &tr->p[i];
    if (tr->tp.optimizer == NN_OPT_ADAM)
      nn_adam_step(p->n, p->w, p->g, p->m1, p->m2, r.lr, tr->tp.beta1, tr->tp.beta2,
                   tr->tp.adam_eps, tr->tp.weight_decay, tr->steps);
    else
      nn_sgd_step(p->n, p->w, p->g, p->m1, r.lr, tr->tp.momentum, tr->tp.weight_decay);
  }
  r.loss = loss;
  r.correct = correct;
  r.samples = x->shape[0];
  r.forward_s = t1 - t0;
  r.backward_s = t2 - t1;
  r.update_s = now_s() - t2;
  if (res) *res = r;
  return NN_OK;
}

nn_status nn_trainer_evaluate(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                              nn_train_result *res, nn_error *err) {
  double t0 = now_s(), loss;
  int64_t correct;
  nn_train_result r = {0};
  TRY(forward_loss(tr, x, y, 0, 0, 0, 0, &loss, &correct, NULL, err));
  r.loss = loss;
  r.correct = correct;
  r.samples = x->shape[0];
  r.lr = nn_trainer_lr(tr);
  r.forward_s = now_s() - t0;
  if (res) *res = r;
  return NN_OK;
}

nn_status nn_trainer_forward(nn_trainer *tr, const nn_tensor *x, int train, nn_tensor **out,
                             nn_error *err) {
  float *o;
  nn_tensor *t;
  double keep = tr->tp.dropout;
  TRY(check_batch(tr, x, NULL, err));
  TRY(quantize_weights(tr, err));
  tr->mode_train = train;
  tr->update_running = 0;
  tr->smooth = 0;
  tr->tp.dropout = 0;
  nn_status st = net_f(tr, x, 0, &o, err);
  tr->tp.dropout = keep;
  if (st != NN_OK) return st;
  if (!(t = nn_tensor_new4(2, x->shape[0], tr->np_net.classes, 0, 0, err))) return NN_ENOMEM;
  memcpy(t->data, o, (size_t)t->numel * sizeof *o);
  *out = t;
  return NN_OK;
}

nn_status nn_trainer_loss_grad(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                               uint64_t mask_id, int smooth, double *loss, nn_tensor *dx,
                               nn_error *err) {
  float *dl;
  if (dx && dx->numel != x->numel) return nn_fail(err, NN_EINVAL, "dx: expected x's shape");
  TRY(forward_loss(tr, x, y, 1, 0, mask_id, smooth, loss, NULL, &dl, err));
  zero_grads(tr);
  return net_b(tr, dl, dx ? dx->data : NULL, err);
}

nn_status nn_trainer_loss(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                          uint64_t mask_id, int smooth, double *loss, nn_error *err) {
  return forward_loss(tr, x, y, 1, 0, mask_id, smooth, loss, NULL, NULL, err);
}

tbn *nn_trainer_find_bn(nn_trainer *tr, const char *path, size_t len) {
  for (int i = 0; i < tr->nbn; i++)
    if (strlen(tr->bn[i].path) == len && memcmp(tr->bn[i].path, path, len) == 0) return &tr->bn[i];
  return NULL;
}

int nn_trainer_find_param(const nn_trainer *tr, const char *name) {
  for (int i = 0; i < tr->np; i++)
    if (strcmp(tr->p[i].name, name) == 0) return i;
  return -1;
}
