/* nn_train.c: BPTT training with the ATan surrogate and QAT (docs/model.md network, docs/training.md
 * training). The trainer walks the net's plan (nn_plan.h), the one the scoring forward walks:
 * the forward runs its steps in order at each timestep and records a tape (per timestep: LIF
 * pre-reset potentials and bit-packed spikes, BN inputs and statistics, dropout mask); the
 * backward runs them in reverse over the timesteps in reverse, carrying each LIF's membrane
 * gradient and each backward cell's bx0..bx2 gradient from timestep t+1 to t. Threads, the
 * tape's memory and the event-driven backward: docs/training.md. */
#include "nn_train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "neuronas/nn_blas.h"
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

/* Position of a, to release everything allocated after it (arena_release). */
typedef struct arena_mark {
  int cur;
  size_t used;
} arena_mark;

static arena_mark arena_pos(const nn_arena *a) {
  arena_mark m = {a->cur, a->cur < a->nb ? a->blk[a->cur].used : 0};
  return m;
}

static void arena_release(nn_arena *a, arena_mark m) {
  for (int i = m.cur; i < a->nb; i++) a->blk[i].used = 0;
  if (m.cur < a->nb) a->blk[m.cur].used = m.used;
  a->cur = m.cur;
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
/* The public entry points run their pass between pass_enter and pass_leave (OpenBLAS's
 * thread count is restored even when the pass fails). */
#define IN_PASS(call)                   \
  do {                                  \
    TRY(pass_enter(tr, err));           \
    nn_status st_pass_ = (call);        \
    pass_leave(tr);                     \
    return st_pass_;                    \
  } while (0)
/* p = fn(arena, n) or return NN_ENOMEM; ALLOC/ZALLOC: the tape and whole-pass buffers
 * (tr->arena); TALLOC/TZALLOC: short-lived buffers (a timestep's intermediate maps, the
 * backward's per-step gradients) from tr->tmp, released at the end of the cell or timestep that
 * made them. */
#define ARENA_GET(fn, a, p, n)                                       \
  do {                                                               \
    if (!((p) = fn(&tr->a, (size_t)(n), err))) return NN_ENOMEM;     \
  } while (0)
#define ALLOC(p, n) ARENA_GET(arena_alloc, arena, p, n)
#define ZALLOC(p, n) ARENA_GET(arena_zalloc, arena, p, n)
#define TALLOC(p, n) ARENA_GET(arena_alloc, tmp, p, n)
#define TZALLOC(p, n) ARENA_GET(arena_zalloc, tmp, p, n)

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
                       .bits = NN_WEIGHT_BITS_FLOAT,
                       .dropout = 0.5,
                       .seed = 1,
                       .threads = 1};
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
  if (p->bits < NN_WEIGHT_BITS_MIN || p->bits > NN_WEIGHT_BITS_MAX)
    return nn_fail(err, NN_EINVAL, "bits=%d outside %d..%d", p->bits, NN_WEIGHT_BITS_MIN, NN_WEIGHT_BITS_MAX);
  if (p->threads < 0 || p->threads > NN_TRAIN_MAX_THREADS)
    return nn_fail(err, NN_EINVAL, "threads=%d: expected 0..%d", p->threads, NN_TRAIN_MAX_THREADS);
  if (!(p->dropout >= 0 && p->dropout < 1))
    return nn_fail(err, NN_EINVAL, "dropout=%g: expected a number in [0, 1)", p->dropout);
  return NN_OK;
}

static int add_param(nn_trainer *tr, const nn_plan_param *q, nn_error *err) {
  const int64_t n = q->numel;
  tparam *p = &tr->p[tr->np];
  snprintf(p->name, sizeof p->name, "%s", q->name);
  p->n = n;
  p->quant = q->crossbar;
  p->w = calloc((size_t)n, sizeof *p->w);
  p->g = calloc((size_t)n, sizeof *p->g);
  p->m1 = calloc((size_t)n, sizeof *p->m1);
  p->m2 = tr->tp.optimizer == NN_OPT_ADAM ? calloc((size_t)n, sizeof *p->m2) : NULL;
  p->q = p->quant ? calloc((size_t)n, sizeof *p->q) : NULL;
  if (!p->w || !p->g || !p->m1 || (tr->tp.optimizer == NN_OPT_ADAM && !p->m2) ||
      (p->quant && !p->q)) {
    free(p->w), free(p->g), free(p->m1), free(p->m2), free(p->q);
    nn_fail(err, NN_ENOMEM, "out of memory (parameter %s)", q->name);
    return -1;
  }
  return tr->np++;
}

/* Weights the forward pass uses: the FxP copy under QAT, else the masters. */
static const float *fw(const nn_trainer *tr, int i) {
  return tr->p[i].q && tr->tp.bits < NN_WEIGHT_BITS_FLOAT ? tr->p[i].q : tr->p[i].w;
}

/* 1 when the backward of step c reads its input from the forward's tape (a dropout passes its
 * input on, in place, to the next step). */
static int reads_input(const nn_plan *pl, int c) {
  if (c >= pl->nsteps) return 0;
  switch (pl->steps[c].op) {
  case NN_STEP_BN:
  case NN_STEP_CONV:
  case NN_STEP_LINEAR:
    return 1;
  case NN_STEP_DROPOUT:
    return reads_input(pl, c + 1);
  default:
    return 0;
  }
}

/* The runtime of step s (tensors already made): tape slots and whether its output is kept. The
 * output of a step inside an edge goes to the next step of the edge (the last one's is added
 * into a node); a cell's to the step after its edges; a once step's is read at every timestep. */
static nn_status step_runtime(nn_trainer *tr, int s, nn_error *err) {
  const nn_plan *pl = &tr->plan;
  const nn_plan_step *ps = &pl->steps[s];
  tstep *r = &tr->rt[s];
  const size_t T = (size_t)tr->T;
  int edge = -1; /* the edge that s belongs to */
  if (ps->cell >= 0 && ps->op != NN_STEP_CELL && ps->op != NN_STEP_EDGE)
    for (edge = s - 1; pl->steps[edge].op != NN_STEP_EDGE; edge--) continue;
  const int last_in_edge = edge >= 0 && s == edge + pl->steps[edge].nsub;
  const int consumer = ps->op == NN_STEP_CELL ? s + 1 + ps->nsub : s + 1;
  r->keep = ps->once || (!last_in_edge && reads_input(pl, consumer));
  r->src = (ps->op == NN_STEP_CONV || ps->op == NN_STEP_LINEAR) && s > 0 && pl->steps[s - 1].op == NN_STEP_LIF
               ? s - 1 : -1;
  int fail = 0;
  if (ps->op == NN_STEP_BN || (r->src < 0 && (ps->op == NN_STEP_CONV || ps->op == NN_STEP_LINEAR)))
    fail |= !(r->x = calloc(T, sizeof *r->x));
  if (ps->op == NN_STEP_BN) {
    fail |= !(r->mean = calloc(T * (size_t)ps->in_c, sizeof *r->mean));
    fail |= !(r->istd = calloc(T * (size_t)ps->in_c, sizeof *r->istd));
  }
  if (ps->op == NN_STEP_DROPOUT) fail |= !(r->mask = calloc(T, sizeof *r->mask));
  if (ps->op == NN_STEP_LIF) {
    tlif *l = &r->lif;
    l->m = ps->in_c * ps->in_h * ps->in_w;
    fail |= !(l->h = calloc(T, sizeof *l->h));
    fail |= !(l->s = calloc(T, sizeof *l->s));
    fail |= !(l->bits = calloc(T, sizeof *l->bits));
    fail |= !(l->fired = calloc(T, sizeof *l->fired));
  }
  if (ps->op == NN_STEP_CELL) {
    tcell *c = &r->cell;
    for (int e = s + 1; e <= s + ps->nsub; e += 1 + pl->steps[e].nsub) c->edge[c->nedge++] = e;
    fail |= !(c->bx = calloc(T * 3, sizeof *c->bx));
  }
  return fail ? nn_fail(err, NN_ENOMEM, "out of memory (%s)", ps->path) : NN_OK;
}

/* The trainer's parameters and runtime from the plan: its trainable tensors (crossbar weights
 * quantized under QAT), BN running statistics, per-step tapes. Constant inits are applied (BN
 * weight and running variance 1); nn_trainer_new fills in the rest from a net. */
static nn_status build_from_plan(nn_trainer *tr, nn_error *err) {
  const nn_plan *pl = &tr->plan;
  for (int s = 0; s < pl->nsteps; s++) {
    tstep *r = &tr->rt[s];
    r->w = r->b = r->src = -1;
    if (pl->steps[s].cell < 0 || pl->steps[s].op == NN_STEP_CELL) tr->top[tr->ntop++] = s;
    if (pl->steps[s].once) tr->nonce = tr->ntop;
  }
  for (int k = 0; k < pl->nparams; k++) {
    const nn_plan_param *q = &pl->params[k];
    tstep *r = &tr->rt[q->step];
    float *v;
    if (q->buffer) {
      tr->pidx[k] = -1;
      if (!(v = calloc((size_t)q->numel, sizeof *v)))
        return nn_fail(err, NN_ENOMEM, "out of memory (%s)", q->name);
      *(q->leaf[8] == 'm' ? &r->rm : &r->rv) = v; /* "running_mean" / "running_var" */
    } else {
      if ((tr->pidx[k] = add_param(tr, q, err)) < 0) return err ? err->code : NN_ENOMEM;
      v = tr->p[tr->pidx[k]].w;
      *(strcmp(q->leaf, "bias") ? &r->w : &r->b) = tr->pidx[k];
    }
    if (q->init == NN_INIT_ONES)
      for (int64_t i = 0; i < q->numel; i++) v[i] = 1;
  }
  for (int s = 0; s < pl->nsteps; s++) TRY(step_runtime(tr, s, err));
  return NN_OK;
}

/* Training needs more of the net's fields than scoring does: a leak (tau > 1) and a threshold
 * above the reset potential 0. */
static nn_status check_for_training(const nn_net_params *np, nn_error *err) {
  if (!(np->tau > 1))
    return nn_fail(err, NN_EINVAL, "net: tau=%g, expected a number > 1 for training", np->tau);
  if (!(np->threshold > 0))
    return nn_fail(err, NN_EINVAL, "net: threshold=%g, expected a number > 0 for training",
                   np->threshold);
  return NN_OK;
}

nn_trainer *nn_trainer_build(const nn_net_params *np, const nn_train_params *p, nn_error *err) {
  if (nn_train_params_check(p, err) != NN_OK) return NULL;
  nn_trainer *tr = calloc(1, sizeof *tr);
  if (!tr) {
    nn_fail(err, NN_ENOMEM, "out of memory (trainer)");
    return NULL;
  }
  tr->tp = *p;
  if (nn_plan_build(&tr->plan, np, err) != NN_OK || check_for_training(np, err) != NN_OK) {
    free(tr);
    return NULL;
  }
  tr->T = (int)np->timesteps;
  if (build_from_plan(tr, err) != NN_OK) {
    nn_trainer_free(tr);
    return NULL;
  }
  nn_rng s0 = nn_rng_seed(p->seed);
  tr->mask_root = nn_rng_split(&s0, "dropout");
  return tr;
}

void nn_trainer_free(nn_trainer *tr) {
  if (!tr) return;
  for (int i = 0; i < tr->np; i++) {
    tparam *p = &tr->p[i];
    free(p->w), free(p->g), free(p->m1), free(p->m2), free(p->q);
  }
  for (int s = 0; s < tr->plan.nsteps; s++) {
    tstep *r = &tr->rt[s];
    free(r->x), free(r->rm), free(r->rv), free(r->mean), free(r->istd), free(r->mask);
    free(r->lif.h), free(r->lif.s), free(r->lif.bits), free(r->lif.fired);
    free(r->cell.bx);
  }
  arena_free(&tr->arena);
  arena_free(&tr->tmp);
  nn_par_free(tr->pool);
  for (int i = 0; tr->wws && i < tr->nworkers; i++) nn_ws_free(&tr->wws[i]);
  free(tr->wws), free(tr->part);
  free(tr);
}

float *nn_trainer_tensor(nn_trainer *tr, int k) {
  const nn_plan_param *q = &tr->plan.params[k];
  if (!q->buffer) return tr->p[tr->pidx[k]].w;
  return q->leaf[8] == 'm' ? tr->rt[q->step].rm : tr->rt[q->step].rv;
}

const nn_train_params *nn_trainer_params(const nn_trainer *tr) { return &tr->tp; }
const nn_net_params *nn_trainer_net_params(const nn_trainer *tr) { return &tr->plan.p; }
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

/* ------------------------------------------------------------------ parallel regions
 * Work on a batch is split into sample groups (group_range): per-sample work (convs, LIF,
 * pools, sums) writes disjoint slices, so any thread may run any group; weight gradients go to
 * one buffer per group (tr->part) added in group order (reduce_parts); BN's per-channel work is
 * split by channels. OpenBLAS runs on one thread meanwhile (two levels of threads on a few
 * cores only get in each other's way): pass_enter / pass_leave. */

static int64_t ngroups(int64_t n) { return n < NN_TRAIN_GROUPS ? n : NN_TRAIN_GROUPS; }

static void group_range(int64_t n, int64_t g, int64_t *s0, int64_t *s1) {
  int64_t G = ngroups(n);
  *s0 = n * g / G;
  *s1 = n * (g + 1) / G;
}

typedef nn_status (*group_fn)(nn_trainer *tr, void *a, int64_t s0, int64_t s1, int64_t g,
                              int worker, nn_error *err);

typedef struct group_run {
  nn_trainer *tr;
  group_fn fn;
  void *a;
  int64_t n;
  nn_status st[NN_TRAIN_GROUPS];
  nn_error err[NN_TRAIN_GROUPS];
} group_run;

static void group_task(void *ctx, int64_t g, int worker) {
  group_run *r = ctx;
  int64_t s0, s1;
  group_range(r->n, g, &s0, &s1);
  r->st[g] = r->fn(r->tr, r->a, s0, s1, g, worker, &r->err[g]);
}

/* fn over the groups of n samples; the first failing group's error (in group order). */
static nn_status par_groups(nn_trainer *tr, int64_t n, group_fn fn, void *a, nn_error *err) {
  group_run r;
  int64_t G = ngroups(n);
  r.tr = tr, r.fn = fn, r.a = a, r.n = n;
  nn_par_tasks(tr->pool, G, group_task, &r);
  for (int64_t g = 0; g < G; g++)
    if (r.st[g] != NN_OK) {
      if (err) *err = r.err[g];
      return r.st[g];
    }
  return NN_OK;
}

/* Element-wise work on [n][m] arrays: which op, its operands. */
typedef enum { EW_ADD, EW_COPY, EW_POOL3, EW_POOL3_BWD, EW_POOL, EW_POOL_BWD } ew_op;
typedef struct ew_args {
  ew_op op;
  int64_t m;              /* floats per sample of y (EW_POOL: of x) */
  int64_t planes, h, w, k; /* pools: planes per sample, input h x w, k */
  const float *x;
  float *y;
  int acc;
} ew_args;

static nn_status ew_group(nn_trainer *tr, void *va, int64_t s0, int64_t s1, int64_t g, int worker,
                          nn_error *err) {
  const ew_args *a = va;
  const int64_t lo = s0 * a->m, cnt = (s1 - s0) * a->m, ns = s1 - s0;
  const int64_t hw = a->h * a->w, ohw = (a->h / (a->k ? a->k : 1)) * (a->w / (a->k ? a->k : 1));
  (void)tr, (void)g, (void)worker, (void)err;
  switch (a->op) {
  case EW_ADD:
    for (int64_t i = lo; i < lo + cnt; i++) a->y[i] += a->x[i];
    break;
  case EW_COPY:
    memcpy(a->y + lo, a->x + lo, (size_t)cnt * sizeof *a->y);
    break;
  case EW_POOL3: /* y = avgpool3x3(x) */
    nn_avgpool3x3(a->x + lo, ns * a->planes, a->h, a->w, a->y + lo);
    break;
  case EW_POOL3_BWD:
    nn_avgpool_bwd(ns * a->planes, a->h, a->w, 3, 1, 1, a->x + lo, a->y + lo, a->acc);
    break;
  case EW_POOL: /* x [planes][h][w] -> y [planes][h/k][w/k]; m counts x */
    nn_avgpool(a->x + s0 * a->planes * hw, ns * a->planes, a->h, a->w, a->k,
               a->y + s0 * a->planes * ohw);
    break;
  case EW_POOL_BWD: /* x = dy [planes][h/k][w/k] -> y = dx [planes][h][w] */
    nn_avgpool_bwd(ns * a->planes, a->h, a->w, a->k, a->k, 0, a->x + s0 * a->planes * ohw,
                   a->y + s0 * a->planes * hw, a->acc);
    break;
  }
  return NN_OK;
}

static void ew(nn_trainer *tr, ew_args a) { par_groups(tr, tr->n, ew_group, &a, NULL); }

static void addto(nn_trainer *tr, int64_t m, float *y, const float *x) {
  ew(tr, (ew_args){.op = EW_ADD, .m = m / tr->n, .x = x, .y = y});
}

/* dw += part[0] + part[1] + ... (in group order), split over ranges of dw. */
typedef struct red_args {
  float *dw;
  const float *part;
  int64_t size, stride, G;
} red_args;
#define RED_CHUNK 16384

static void red_task(void *ctx, int64_t t, int worker) {
  const red_args *a = ctx;
  int64_t i0 = t * RED_CHUNK, i1 = i0 + RED_CHUNK < a->size ? i0 + RED_CHUNK : a->size;
  (void)worker;
  for (int64_t g = 0; g < a->G; g++) {
    const float *p = a->part + g * a->stride;
    for (int64_t i = i0; i < i1; i++) a->dw[i] += p[i];
  }
}

static void reduce_parts(nn_trainer *tr, float *dw, int64_t size) {
  red_args a = {dw, tr->part, size, tr->part_n, ngroups(tr->n)};
  nn_par_tasks(tr->pool, (size + RED_CHUNK - 1) / RED_CHUNK, red_task, &a);
}

/* The same for group buffers in channels-last order [ckk][o]: dw[o][ckk] += sum of them. */
typedef struct redcl_args {
  float *dw;
  const float *part;
  int64_t O, CKK, stride, G;
} redcl_args;

static void redcl_task(void *ctx, int64_t t, int worker) {
  const redcl_args *a = ctx;
  int64_t size = a->O * a->CKK, i0 = t * RED_CHUNK, i1 = i0 + RED_CHUNK < size ? i0 + RED_CHUNK : size;
  (void)worker;
  for (int64_t i = i0; i < i1; i++) {
    int64_t o = i / a->CKK, r = i % a->CKK;
    float acc = a->dw[i];
    for (int64_t g = 0; g < a->G; g++) acc += a->part[g * a->stride + r * a->O + o];
    a->dw[i] = acc;
  }
}

static void reduce_parts_cl(nn_trainer *tr, float *dw, int64_t O, int64_t CKK) {
  redcl_args a = {dw, tr->part, O, CKK, tr->part_n, ngroups(tr->n)};
  nn_par_tasks(tr->pool, (O * CKK + RED_CHUNK - 1) / RED_CHUNK, redcl_task, &a);
}

/* Starts a pass: the pool (first time), per-worker scratch, group buffers for the largest conv
 * weight; OpenBLAS on one thread. */
static nn_status pass_enter(nn_trainer *tr, nn_error *err) {
  if (!tr->wws) {
    int want = tr->tp.threads;
    if (want == 0) want = nn_train_default_threads();
    tr->pool = nn_par_new(want); /* NULL (one thread, or none could start): the caller runs all */
    tr->nworkers = nn_par_threads(tr->pool);
    if (!(tr->wws = calloc((size_t)tr->nworkers, sizeof *tr->wws)))
      return nn_fail(err, NN_ENOMEM, "out of memory (training threads)");
    int64_t mx = 1;
    for (int s = 0; s < tr->plan.nsteps; s++)
      if (tr->plan.steps[s].op == NN_STEP_CONV && tr->p[tr->rt[s].w].n > mx) mx = tr->p[tr->rt[s].w].n;
    tr->part_n = (mx + 15) & ~(int64_t)15;
    if (!(tr->part = malloc((size_t)(tr->part_n * NN_TRAIN_GROUPS) * sizeof *tr->part)))
      return nn_fail(err, NN_ENOMEM, "out of memory (training gradient buffers)");
  }
  tr->blas_saved = nn_blas_get_threads();
  nn_blas_set_threads(1);
  return NN_OK;
}

static void pass_leave(nn_trainer *tr) {
  if (tr->blas_saved > 0) nn_blas_set_threads(tr->blas_saved);
}

/* One per core that other jobs leave idle (cores minus the 1-minute load average, rounded
 * down), at least 1: on a machine busier than its cores the threads of a step wait for each
 * other at the end of every parallel region, and two were measured 8 % slower than one (2 cores,
 * load 12). The thread count never changes the results. */
int nn_train_default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  double load[1];
  if (n < 1) n = 1;
  if (getloadavg(load, 1) == 1 && load[0] >= 0) n -= (long)load[0];
  if (n < 1) n = 1;
  if (n > NN_TRAIN_MAX_THREADS) n = NN_TRAIN_MAX_THREADS;
  return (int)n;
}

/* ------------------------------------------------------------------ module passes */

typedef struct conv_args {
  nn_conv_geom g;
  const float *x, *w, *wcl, *dy;
  const uint64_t *bits; /* event path: the input spikes, bit-packed */
  float *y, *dx;
  int acc;
} conv_args;

static nn_status conv_group(nn_trainer *tr, void *va, int64_t s0, int64_t s1, int64_t grp,
                            int worker, nn_error *err) {
  const conv_args *a = va;
  nn_conv_geom g = a->g;
  const int64_t in = g.c * g.h * g.w, out = g.o * nn_conv_ho(&g) * nn_conv_wo(&g);
  (void)tr, (void)grp, (void)worker;
  g.n = s1 - s0;
  if (!a->bits) return nn_conv2d(&g, a->x + s0 * in, a->w, a->y + s0 * out, err);
  return nn_conv2d_events(&g, a->bits + s0 * nn_spike_words(in), a->wcl, a->y + s0 * out, err);
}

static nn_conv_geom conv_geom(const nn_trainer *tr, int s) {
  const nn_plan_step *ps = &tr->plan.steps[s];
  nn_conv_geom g = {tr->n, ps->in_c, ps->in_h, ps->in_w, ps->out_c, ps->k, ps->stride, ps->pad};
  return g;
}

/* Conv step s on x. */
static nn_status conv_f(nn_trainer *tr, int s, const float *x, float *y, nn_error *err) {
  conv_args a = {conv_geom(tr, s), x, fw(tr, tr->rt[s].w), NULL, NULL, NULL, y, NULL, 0};
  return par_groups(tr, tr->n, conv_group, &a, err);
}

/* Conv step s on the spikes of LIF l at timestep t: event-driven on the bit-packed spikes when
 * the conv mode says so (AUTO: nn_conv2d_prefer_events, the per-kernel rate threshold), exactly
 * as nn_net_forward decides, so both give the same floats; dense in smooth mode (s not binary). */
static nn_status conv_fs(nn_trainer *tr, int s, const tlif *l, int t, float *y, nn_error *err) {
  nn_conv_geom g = conv_geom(tr, s);
  int events = !tr->smooth && (tr->conv_mode == NN_CONV_EVENTS ||
                               (tr->conv_mode == NN_CONV_AUTO && nn_conv2d_prefer_events(&g, l->fired[t])));
  if (!events) return conv_f(tr, s, l->s[t], y, err);
  float *wcl;
  TALLOC(wcl, g.o * g.c * g.k * g.k);
  nn_conv2d_weight_cl(&g, fw(tr, tr->rt[s].w), wcl);
  conv_args a = {g, NULL, NULL, wcl, NULL, l->bits[t], y, NULL, 0};
  return par_groups(tr, tr->n, conv_group, &a, err);
}

static nn_status spikes_f(nn_trainer *tr, tlif *l, int t, const float **s, nn_error *err);

static nn_status conv_b_group(nn_trainer *tr, void *va, int64_t s0, int64_t s1, int64_t grp,
                              int worker, nn_error *err) {
  const conv_args *a = va;
  nn_conv_geom g = a->g;
  const int64_t in = g.c * g.h * g.w, out = g.o * nn_conv_ho(&g) * nn_conv_wo(&g);
  float *part = tr->part + grp * tr->part_n;
  g.n = s1 - s0;
  memset(part, 0, (size_t)(g.o * g.c * g.k * g.k) * sizeof *part);
  if (!a->bits)
    return nn_conv2d_bwd(&g, a->x + s0 * in, a->w, a->dy + s0 * out,
                         a->dx ? a->dx + s0 * in : NULL, a->acc, part, &tr->wws[worker], err);
  TRY(nn_conv2d_bwd_w_events(&g, a->bits + s0 * nn_spike_words(in), a->dy + s0 * out, part,
                             &tr->wws[worker], err));
  if (!a->dx) return NN_OK;
  return nn_conv2d_bwd(&g, NULL, a->w, a->dy + s0 * out, a->dx + s0 * in, a->acc, NULL,
                       &tr->wws[worker], err);
}

/* dx may be NULL (input gradient not needed). x: the conv's float input; for a conv on the
 * spikes of a LIF, pass x = NULL and the LIF and step instead (l = NULL otherwise): the weight
 * gradient is then event-driven (nn_conv2d_bwd_w_events) on the bit-packed spikes when their
 * rate is at most NN_TRAIN_EVENT_BWD_RATE, else dense on the unpacked spikes. */
static nn_status conv_b(nn_trainer *tr, int s, const float *x, tlif *l, int t, const float *dy,
                        float *dx, int acc, nn_error *err) {
  const tparam *w = &tr->p[tr->rt[s].w];
  conv_args a = {conv_geom(tr, s), x, fw(tr, tr->rt[s].w), NULL, dy, NULL, NULL, dx, acc};
  const int64_t in = tr->n * a.g.c * a.g.h * a.g.w;
  if (l && l->bits[t] && a.g.stride == 1 && a.g.pad <= a.g.k - 1 &&
      (double)l->fired[t] <= NN_TRAIN_EVENT_BWD_RATE * (double)in) {
    a.bits = l->bits[t];
    TRY(par_groups(tr, tr->n, conv_b_group, &a, err));
    reduce_parts_cl(tr, w->g, a.g.o, w->n / a.g.o);
    return NN_OK;
  }
  if (l) TRY(spikes_f(tr, l, t, &a.x, err));
  TRY(par_groups(tr, tr->n, conv_b_group, &a, err));
  reduce_parts(tr, w->g, w->n);
  return NN_OK;
}

/* BN step s at timestep t; in training it records its input and statistics on the tape. */
static void bn_f(nn_trainer *tr, int s, int t, const float *x, float *y) {
  const nn_plan_step *ps = &tr->plan.steps[s];
  tstep *b = &tr->rt[s];
  const int64_t c = ps->in_c, hw = ps->in_h * ps->in_w;
  const float *g = tr->p[b->w].w, *be = tr->p[b->b].w;
  if (tr->mode_train) {
    b->x[t] = x;
    nn_bn_forward(x, tr->n, c, hw, g, be, tr->update_running ? b->rm : NULL,
                  tr->update_running ? b->rv : NULL, 1, NN_BN_MOMENTUM, NN_BN_EPS, y,
                  b->mean + t * c, b->istd + t * c);
  } else {
    nn_bn_forward(x, tr->n, c, hw, g, be, b->rm, b->rv, 0, NN_BN_MOMENTUM, NN_BN_EPS, y, NULL, NULL);
  }
}

typedef struct bnb_args {
  nn_trainer *tr;
  const tstep *b;
  int64_t c, hw;
  int t, acc;
  const float *dy;
  float *dx;
  int64_t chunk;
} bnb_args;

static void bn_b_task(void *ctx, int64_t k, int worker) {
  const bnb_args *a = ctx;
  const tstep *b = a->b;
  const nn_trainer *tr = a->tr;
  int64_t c0 = k * a->chunk, c1 = c0 + a->chunk < a->c ? c0 + a->chunk : a->c;
  (void)worker;
  nn_bn2d_bwd_channels(tr->n, a->c, a->hw, c0, c1, b->x[a->t], tr->p[b->w].w, b->mean + a->t * a->c,
                       b->istd + a->t * a->c, a->dy, a->dx, a->acc, tr->p[b->w].g, tr->p[b->b].g);
}

/* Backward of BN step s. Channels are independent: any split gives the same floats; dx may be
 * dy (each channel's sums are taken before its dx is written). */
static void bn_b(nn_trainer *tr, int s, int t, const float *dy, float *dx, int acc) {
  const nn_plan_step *ps = &tr->plan.steps[s];
  const int64_t c = ps->in_c, chunk = (c + 4 * tr->nworkers - 1) / (4 * tr->nworkers);
  bnb_args a = {tr, &tr->rt[s], c, ps->in_h * ps->in_w, t, acc, dy, dx, chunk};
  nn_par_tasks(tr->pool, (c + chunk - 1) / chunk, bn_b_task, &a);
}

typedef struct lif_args {
  tlif *l;
  const float *x, *ds;
  float *dx;
  int t, acc;
  int64_t fired[NN_TRAIN_GROUPS];
} lif_args;

static nn_status lif_f_group(nn_trainer *tr, void *va, int64_t s0, int64_t s1, int64_t g,
                             int worker, nn_error *err) {
  lif_args *a = va;
  tlif *l = a->l;
  const int64_t lo = s0 * l->m;
  (void)worker, (void)err;
  a->fired[g] = nn_lif_step(l->v + lo, a->x + lo, (s1 - s0) * l->m, (float)tr->plan.p.tau,
                            (float)tr->plan.p.threshold, l->s[a->t] + lo, l->h[a->t] + lo);
  if (l->bits[a->t]) {
    const int64_t words = nn_spike_words(l->m);
    nn_spikes_pack(l->s[a->t] + lo, s1 - s0, l->m, l->bits[a->t] + s0 * words);
  }
  return NN_OK;
}

/* LIF step s at timestep t on x: *s gets its spikes. */
static nn_status lif_f(nn_trainer *tr, int s_, int t, const float *x, float **s, nn_error *err) {
  tlif *l = &tr->rt[s_].lif;
  int64_t m = tr->n * l->m, f = 0;
  if (!l->v) ZALLOC(l->v, m);
  ALLOC(l->h[t], m);
  if (tr->smooth) {
    ALLOC(l->s[t], m);
    l->bits[t] = NULL;
  } else {
    TALLOC(l->s[t], m);
    float *b;
    ALLOC(b, 2 * tr->n * nn_spike_words(l->m)); /* uint64 words in float storage */
    l->bits[t] = (uint64_t *)(void *)b;
  }
  lif_args a = {.l = l, .x = x, .t = t};
  TRY(par_groups(tr, tr->n, lif_f_group, &a, err));
  for (int64_t g = 0; g < ngroups(tr->n); g++) f += a.fired[g];
  l->fired[t] = f;
  if (tr->smooth) {
    for (int64_t i = 0; i < m; i++)
      if (l->s[t][i] != 0) tr->reset_hash = nn_rng_mix64(tr->reset_hash ^ (uint64_t)(i * 131 + t));
    const double za = M_PI / 2 * NN_ATAN_ALPHA;
    for (int64_t i = 0; i < m; i++)
      l->s[t][i] = (float)(atan(za * (l->h[t][i] - tr->plan.p.threshold)) / M_PI + 0.5);
  }
  *s = l->s[t];
  return NN_OK;
}

static nn_status unpack_group(nn_trainer *tr, void *va, int64_t s0, int64_t s1, int64_t g,
                              int worker, nn_error *err) {
  lif_args *a = va;
  const int64_t words = nn_spike_words(a->l->m);
  (void)tr, (void)g, (void)worker, (void)err;
  nn_spikes_unpack(a->l->bits[a->t] + s0 * words, s1 - s0, a->l->m, a->dx + s0 * a->l->m);
  return NN_OK;
}

/* The spikes of LIF l at timestep t as floats: the smooth pass's tape, else unpacked from the
 * bits into a short-lived buffer. */
static nn_status spikes_f(nn_trainer *tr, tlif *l, int t, const float **s, nn_error *err) {
  float *d;
  if (!l->bits[t]) {
    *s = l->s[t];
    return NN_OK;
  }
  TALLOC(d, tr->n * l->m);
  lif_args a = {.l = l, .dx = d, .t = t};
  TRY(par_groups(tr, tr->n, unpack_group, &a, err));
  *s = d;
  return NN_OK;
}

static nn_status lif_b_group(nn_trainer *tr, void *va, int64_t s0, int64_t s1, int64_t g,
                             int worker, nn_error *err) {
  lif_args *a = va;
  tlif *l = a->l;
  const int64_t lo = s0 * l->m;
  (void)g, (void)worker, (void)err;
  nn_lif_bwd_step((s1 - s0) * l->m, tr->plan.p.tau, tr->plan.p.threshold, NN_ATAN_ALPHA,
                  l->h[a->t] + lo, a->ds ? a->ds + lo : NULL, l->dv + lo, a->dx + lo, a->acc);
  return NN_OK;
}

/* ds may be NULL (no gradient reached the spikes at this step) */
static nn_status lif_b(nn_trainer *tr, int s, int t, const float *ds, float *dx, int acc,
                       nn_error *err) {
  tlif *l = &tr->rt[s].lif;
  int64_t m = tr->n * l->m;
  if (!l->dv) ZALLOC(l->dv, m);
  lif_args a = {.l = l, .ds = ds, .dx = dx, .t = t, .acc = acc};
  return par_groups(tr, tr->n, lif_b_group, &a, err);
}

typedef struct lin_args {
  int64_t in, out;
  const float *x, *w, *b, *dy;
  float *y, *dx, *dw;
} lin_args;

static nn_status lin_f_group(nn_trainer *tr, void *va, int64_t s0, int64_t s1, int64_t g,
                             int worker, nn_error *err) {
  const lin_args *a = va;
  (void)tr, (void)g, (void)worker;
  return nn_linear(a->x + s0 * a->in, s1 - s0, a->in, a->w, a->b, a->out, a->y + s0 * a->out, err);
}

/* y = x w^T + b over sample groups */
static nn_status linear_f(nn_trainer *tr, const float *x, int64_t in, const float *w,
                          const float *b, int64_t out, float *y, nn_error *err) {
  lin_args a = {.in = in, .out = out, .x = x, .w = w, .b = b, .y = y};
  return par_groups(tr, tr->n, lin_f_group, &a, err);
}

static nn_status lin_dx_group(nn_trainer *tr, void *va, int64_t s0, int64_t s1, int64_t g,
                              int worker, nn_error *err) {
  const lin_args *a = va;
  (void)tr, (void)g, (void)worker;
  return nn_linear_bwd(s1 - s0, a->in, a->out, a->x + s0 * a->in, a->w, a->dy + s0 * a->out,
                       a->dx + s0 * a->in, NULL, NULL, err);
}

/* dw rows [r0, r1) += dy[:, r0:r1]^T x: the output rows split like samples (par_groups over
 * out), each row's sum over the whole batch in one call, so no group buffers are needed. */
static nn_status lin_dw_group(nn_trainer *tr, void *va, int64_t r0, int64_t r1, int64_t g,
                              int worker, nn_error *err) {
  const lin_args *a = va;
  (void)g, (void)worker;
  return nn_sgemm(1, 0, r1 - r0, a->in, tr->n, 1.0f, a->dy + r0, a->out, a->x, a->in, 1.0f,
                  a->dw + r0 * a->in, a->in, err);
}

/* dx = dy w (NULL: skipped), dw += dy^T x, db += column sums of dy (NULL: skipped) */
static nn_status linear_b(nn_trainer *tr, const float *x, int64_t in, const float *w,
                          int64_t out, const float *dy, float *dx, float *dw, float *db,
                          nn_error *err) {
  lin_args a = {.in = in, .out = out, .x = x, .w = w, .dy = dy, .dx = dx, .dw = dw};
  if (dx) TRY(par_groups(tr, tr->n, lin_dx_group, &a, err));
  TRY(par_groups(tr, out, lin_dw_group, &a, err));
  if (db)
    for (int64_t i = 0; i < tr->n; i++)
      for (int64_t o = 0; o < out; o++) db[o] += dy[i * out + o];
  return NN_OK;
}

/* ------------------------------------------------------------------ the plan's steps
 * The forward and the backward walk the plan (nn_plan.h): step_f runs one step forward,
 * step_b one step backward, each with one case per step op; a CELL runs its edges (cell_f,
 * cell_b) and a conv EDGE its LIF, CONV and BN steps through them. */

static nn_status step_f(nn_trainer *tr, int s, int t, const float *x, float **y, nn_error *err);
static nn_status step_b(nn_trainer *tr, int s, int t, const float *dy, float **dx, int acc,
                        nn_error *err);

/* A step op the trainer has no case for (one added to the plan but not here). */
static nn_status not_trained(const nn_plan_step *ps, nn_error *err) {
  return nn_fail(err, NN_EINVAL, "training: step %s has op %s, which the trainer does not run", ps->path,
                 nn_step_op_name(ps->op));
}

/* docs/model.md cell at timestep t: u_i = x_i + bx_i (bx = 0 for forward cells);
 * x_j = sum_{i<j} e_ij(u_i); bx_i(next) = sum_{j>i} e_ji(u_j). *out = x3 (arena: the next
 * step's input, which a BN keeps); u0..u2 are short-lived, the bx_i kept for the next timestep. */
static nn_status cell_f(nn_trainer *tr, int s, int t, const float *x0, float **out, nn_error *err) {
  const nn_plan_step *cs = &tr->plan.steps[s];
  tcell *cell = &tr->rt[s].cell;
  const int64_t m = tr->n * cs->in_c * cs->in_h * cs->in_w;
  const int has_back = cs->nfwd < cs->nedges;
  float *u[4], *o;
  const float *prev[3] = {NULL, NULL, NULL};
  arena_mark mk = arena_pos(&tr->tmp);
  if (has_back && t > 0)
    for (int i = 0; i < 3; i++) prev[i] = cell->bx[(t - 1) * 3 + i];
  for (int j = 0; j < 4; j++) {
    float *x;
    if (j == 0) {
      if (!prev[0]) {
        u[0] = (float *)x0;
        continue;
      }
      TALLOC(x, m);
      ew(tr, (ew_args){.op = EW_COPY, .m = m / tr->n, .x = x0, .y = x});
    } else {
      if (j < 3) TZALLOC(x, m);
      else ZALLOC(x, m); /* outlives the cell's short-lived maps */
      for (int k = 0; k < cs->nfwd; k++) {
        const nn_plan_step *e = &tr->plan.steps[cell->edge[k]];
        if (e->to != j) continue;
        TRY(step_f(tr, cell->edge[k], t, u[e->from], &o, err));
        addto(tr, m, x, o);
      }
    }
    if (j < 3 && prev[j]) addto(tr, m, x, prev[j]);
    u[j] = x;
  }
  if (has_back) {
    for (int i = 0; i < 3; i++) {
      float *b = NULL;
      for (int k = cs->nfwd; k < cs->nedges; k++) {
        const nn_plan_step *e = &tr->plan.steps[cell->edge[k]];
        if (e->to != i) continue;
        if (!b) ZALLOC(b, m);
        TRY(step_f(tr, cell->edge[k], t, u[e->from], &o, err));
        addto(tr, m, b, o);
      }
      cell->bx[t * 3 + i] = b;
    }
  }
  arena_release(&tr->tmp, mk);
  *out = u[3];
  return NN_OK;
}

/* dout = dL/dx3 at timestep t; *dx0 gets dL/dx0 (short-lived, or the carry buffer). The cell's
 * dbx carries dL/dbx_i(t) in and leaves with dL/dbx_i(t-1), in the buffers dub[t & 1] (the
 * previous timestep's carry is read from the other pair while these are written). */
static nn_status cell_b(nn_trainer *tr, int s, int t, const float *dout, float **dx0, nn_error *err) {
  const nn_plan_step *cs = &tr->plan.steps[s];
  tcell *cell = &tr->rt[s].cell;
  const int64_t m = tr->n * cs->in_c * cs->in_h * cs->in_w;
  const int has_back = cs->nfwd < cs->nedges;
  float *du[4];
  for (int j = 0; j < 4; j++) {
    if (has_back && j < 3) {
      float **slot = &cell->dub[t & 1][j];
      if (!*slot) ALLOC(*slot, m);
      memset(*slot, 0, (size_t)m * sizeof **slot);
      du[j] = *slot;
    } else {
      TZALLOC(du[j], m);
    }
  }
  if (has_back && t < tr->T - 1)
    for (int k = cs->nfwd; k < cs->nedges; k++) {
      const nn_plan_step *e = &tr->plan.steps[cell->edge[k]];
      TRY(step_b(tr, cell->edge[k], t, cell->dbx[e->to], &du[e->from], 1, err));
    }
  addto(tr, m, du[3], dout);
  for (int j = 3; j >= 1; j--)
    for (int k = 0; k < cs->nfwd; k++) {
      const nn_plan_step *e = &tr->plan.steps[cell->edge[k]];
      if (e->to == j) TRY(step_b(tr, cell->edge[k], t, du[j], &du[e->from], 1, err));
    }
  if (has_back)
    for (int i = 0; i < 3; i++) cell->dbx[i] = du[i]; /* u_i = x_i + bx_i(t-1) */
  *dx0 = du[0];
  return NN_OK;
}

/* Step s forward at timestep t (once steps: t = 0) on x; *y gets its output: on the tape when
 * the step's consumer reads it in the backward (tstep.keep), else short-lived. An EDGE's
 * output is its op's; the cell adds it into the node. */
static nn_status step_f(nn_trainer *tr, int s, int t, const float *x, float **y, nn_error *err) {
  const nn_plan_step *ps = &tr->plan.steps[s];
  tstep *r = &tr->rt[s];
  const int64_t n = tr->n, m = n * ps->in_c * ps->in_h * ps->in_w;
  const int64_t mo = n * ps->out_c * ps->out_h * ps->out_w;
  float *o = NULL;
  if (ps->op == NN_STEP_CONV || ps->op == NN_STEP_BN || ps->op == NN_STEP_POOL ||
      ps->op == NN_STEP_LINEAR || ps->op == NN_STEP_BOOST) {
    if (r->keep) ALLOC(o, mo);
    else TALLOC(o, mo);
  }
  switch (ps->op) {
  case NN_STEP_CONV:
    if (r->src >= 0) {
      TRY(conv_fs(tr, s, &tr->rt[r->src].lif, t, o, err));
    } else {
      r->x[t] = x;
      TRY(conv_f(tr, s, x, o, err));
    }
    break;
  case NN_STEP_BN:
    bn_f(tr, s, t, x, o);
    break;
  case NN_STEP_LIF:
    TRY(lif_f(tr, s, t, x, &o, err));
    break;
  case NN_STEP_POOL:
    ew(tr, (ew_args){.op = EW_POOL, .planes = ps->in_c, .h = ps->in_h, .w = ps->in_w, .k = ps->k,
                     .x = x, .y = o});
    break;
  case NN_STEP_DROPOUT: /* in place: x is the previous step's own buffer */
    o = (float *)x;
    if (tr->mode_train && tr->tp.dropout > 0) {
      ALLOC(r->mask[t], m);
      if (t == 0) nn_dropout_mask(m, tr->tp.dropout, &tr->mask_rng, r->mask[0]);
      else memcpy(r->mask[t], r->mask[0], (size_t)m * sizeof(float));
      nn_mul(m, o, r->mask[t], o);
    } else {
      r->mask[t] = NULL;
    }
    break;
  case NN_STEP_LINEAR:
    if (r->src < 0) r->x[t] = x;
    TRY(linear_f(tr, x, ps->in_c, fw(tr, r->w), ps->bias ? tr->p[r->b].w : NULL, ps->out_c, o, err));
    break;
  case NN_STEP_BOOST:
    nn_boost_fwd(n, ps->out_c, ps->k, x, o);
    break;
  case NN_STEP_CELL:
    TRY(cell_f(tr, s, t, x, &o, err));
    break;
  case NN_STEP_EDGE:
    switch (ps->edge_op) {
    case NN_OP_SKIP:
      o = (float *)x; /* the cell only reads it */
      break;
    case NN_OP_AVGPOOL3X3:
      TALLOC(o, m);
      ew(tr, (ew_args){.op = EW_POOL3, .m = m / n, .planes = ps->in_c, .h = ps->in_h, .w = ps->in_w,
                       .x = x, .y = o});
      break;
    default: /* its steps in order (LIF, conv, BN) */
      for (int k = 1; k <= ps->nsub; k++, x = o) TRY(step_f(tr, s + k, t, x, &o, err));
      break;
    }
    break;
  default:
    return not_trained(ps, err);
  }
  *y = o;
  return NN_OK;
}

/* Step s backward at timestep t (once steps: t = 0): dy = dL/d(its output). *dx gets dL/d(its
 * input): a short-lived buffer, or dy itself for the steps that work in place (dropout; BN
 * outside the cells, whose dy is no other step's), or the cell's own; the first step writes
 * the net input's gradient (tr->dx_in, or nothing). With acc (an EDGE, or the LIF that starts
 * a conv edge) it adds into the caller's *dx instead. */
static nn_status step_b(nn_trainer *tr, int s, int t, const float *dy, float **dx, int acc,
                        nn_error *err) {
  const nn_plan_step *ps = &tr->plan.steps[s];
  tstep *r = &tr->rt[s];
  const int64_t n = tr->n, m = n * ps->in_c * ps->in_h * ps->in_w;
  float *d = acc ? *dx : NULL, *g;
  const float *x;
  switch (ps->op) {
  case NN_STEP_CONV:
    if (s == 0) d = tr->dx_in;
    else TALLOC(d, m);
    TRY(conv_b(tr, s, r->src < 0 ? r->x[t] : NULL, r->src < 0 ? NULL : &tr->rt[r->src].lif, t, dy, d,
               0, err));
    break;
  case NN_STEP_BN:
    if (ps->cell < 0) d = (float *)dy;
    else TALLOC(d, m);
    bn_b(tr, s, t, dy, d, 0);
    break;
  case NN_STEP_LIF:
    if (!acc) TALLOC(d, m);
    TRY(lif_b(tr, s, t, dy, d, acc, err));
    break;
  case NN_STEP_POOL:
    TALLOC(d, m);
    ew(tr, (ew_args){.op = EW_POOL_BWD, .planes = ps->in_c, .h = ps->in_h, .w = ps->in_w, .k = ps->k,
                     .x = dy, .y = d});
    break;
  case NN_STEP_DROPOUT:
    d = (float *)dy;
    if (r->mask[t]) nn_mul(m, d, r->mask[t], d);
    break;
  case NN_STEP_LINEAR:
    if (r->src >= 0) TRY(spikes_f(tr, &tr->rt[r->src].lif, t, &x, err));
    else x = r->x[t];
    TALLOC(d, m);
    TRY(linear_b(tr, x, ps->in_c, fw(tr, r->w), ps->out_c, dy, d, tr->p[r->w].g,
                 ps->bias ? tr->p[r->b].g : NULL, err));
    break;
  case NN_STEP_BOOST:
    TALLOC(d, m);
    nn_boost_bwd(n, ps->out_c, ps->k, dy, d, 0);
    break;
  case NN_STEP_CELL:
    TRY(cell_b(tr, s, t, dy, &d, err));
    break;
  case NN_STEP_EDGE:
    switch (ps->edge_op) {
    case NN_OP_SKIP:
      addto(tr, m, d, dy);
      break;
    case NN_OP_AVGPOOL3X3:
      ew(tr, (ew_args){.op = EW_POOL3_BWD, .m = m / n, .planes = ps->in_c, .h = ps->in_h, .w = ps->in_w,
                       .x = dy, .y = d, .acc = 1});
      break;
    default: /* its steps in reverse (BN, conv, LIF); the first adds into the node's gradient */
      for (int k = ps->nsub; k > 1; k--, dy = g) TRY(step_b(tr, s + k, t, dy, &g, 0, err));
      TRY(step_b(tr, s + 1, t, dy, &d, 1, err));
      break;
    }
    break;
  default:
    return not_trained(ps, err);
  }
  *dx = d;
  return NN_OK;
}

/* ------------------------------------------------------------------ whole network */

static nn_status check_batch(const nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                             nn_error *err) {
  const nn_net_params *np = &tr->plan.p;
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
  if (tr->tp.bits >= NN_WEIGHT_BITS_FLOAT) return NN_OK;
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

/* Forward with tape: the once steps (the stem), then at each timestep the other steps outside
 * the cells in plan order; *out (arena) gets the last step's output averaged over the
 * timesteps, n x classes. */
static nn_status net_f(nn_trainer *tr, const nn_tensor *xin, uint64_t mask_id, float **out,
                       nn_error *err) {
  const nn_plan *pl = &tr->plan;
  const int64_t n = xin->shape[0], K = pl->steps[pl->nsteps - 1].out_c;
  const float *x0 = xin->data;
  float *o, *avg;
  arena_reset(&tr->arena);
  arena_reset(&tr->tmp);
  for (int s = 0; s < pl->nsteps; s++) tr->rt[s].lif.v = tr->rt[s].lif.dv = NULL;
  tr->n = n;
  for (int i = 0; i < tr->nonce; i++) {
    TRY(step_f(tr, tr->top[i], 0, x0, &o, err));
    x0 = o;
  }
  ZALLOC(avg, n * K);
  tr->mask_rng = nn_rng_split_u64(&tr->mask_root, mask_id);
  for (int t = 0; t < tr->T; t++) {
    if (nn_cancelled()) return nn_fail(err, NN_EINTR, "training interrupted");
    arena_mark mk = arena_pos(&tr->tmp); /* the timestep's intermediate maps go at its end */
    const float *x = x0;
    for (int i = tr->nonce; i < tr->ntop; i++) {
      TRY(step_f(tr, tr->top[i], t, x, &o, err));
      x = o;
    }
    for (int64_t i = 0; i < n * K; i++) avg[i] += x[i];
    arena_release(&tr->tmp, mk);
  }
  for (int64_t i = 0; i < n * K; i++) avg[i] /= (float)tr->T; /* as nn_net_forward_suffix */
  *out = avg;
  return NN_OK;
}

/* Backward from dL/d(avg output): at each timestep in reverse the per-timestep steps in
 * reverse, their input gradients summed over the timesteps into the once steps' output
 * gradient, then the once steps in reverse. Parameter gradients accumulate into p->g; dxin
 * (optional) gets dL/dx. */
static nn_status net_b(nn_trainer *tr, const float *dout, float *dxin, nn_error *err) {
  const nn_plan *pl = &tr->plan;
  const int64_t n = tr->n, K = pl->steps[pl->nsteps - 1].out_c;
  const nn_plan_step *ps = &pl->steps[tr->top[tr->nonce]];
  const int64_t m0 = n * ps->in_c * ps->in_h * ps->in_w;
  float *dx0, *dbo, *d;
  for (int s = 0; s < pl->nsteps; s++) {
    tcell *c = &tr->rt[s].cell;
    tr->rt[s].lif.dv = NULL;
    for (int i = 0; i < 3; i++) c->dbx[i] = c->dub[0][i] = c->dub[1][i] = NULL;
  }
  tr->dx_in = dxin;
  ZALLOC(dx0, m0);
  ALLOC(dbo, n * K);
  for (int64_t i = 0; i < n * K; i++) dbo[i] = dout[i] / (float)tr->T;
  for (int t = tr->T - 1; t >= 0; t--) {
    if (nn_cancelled()) return nn_fail(err, NN_EINTR, "training interrupted");
    arena_mark mk = arena_pos(&tr->tmp); /* this timestep's gradient maps go at its end */
    const float *dy = dbo;
    for (int i = tr->ntop - 1; i >= tr->nonce; i--) {
      TRY(step_b(tr, tr->top[i], t, dy, &d, 0, err));
      dy = d;
    }
    addto(tr, m0, dx0, dy);
    arena_release(&tr->tmp, mk);
  }
  const float *dy = dx0;
  for (int i = tr->nonce - 1; i >= 0; i--) {
    TRY(step_b(tr, tr->top[i], 0, dy, &d, 0, err));
    dy = d;
  }
  return NN_OK;
}

/* Index of the first of v[0..n) that is not finite, or -1. */
static int64_t first_not_finite(const float *v, int64_t n) {
  for (int64_t j = 0; j < n; j++)
    if (!isfinite(v[j])) return j;
  return -1;
}

/* The first value of the trainer's state (what a checkpoint holds: master weights, optimizer
 * state, BN running statistics) that is not finite: 1 with its checkpoint name in name and its
 * 1-based index in *at, else 0. It reads the state once and computes nothing (0.4-0.7 ms for the
 * fashion-mnist net's 0.47M parameters with Adam, 0.1 % of its step; memory bound). */
static int state_not_finite(nn_trainer *tr, char *name, size_t nname, int64_t *at) {
  const int adam = tr->tp.optimizer == NN_OPT_ADAM;
  for (int i = 0; i < tr->np; i++) {
    const tparam *p = &tr->p[i];
    const float *v[3] = {p->w, p->m1, p->m2};
    const char *fmt[3] = {"%s", adam ? "optim.%s.exp_avg" : "optim.%s.momentum", "optim.%s.exp_avg_sq"};
    for (int k = 0; k < 3; k++) {
      int64_t j = v[k] ? first_not_finite(v[k], p->n) : -1;
      if (j >= 0) {
        snprintf(name, nname, fmt[k], p->name);
        *at = j + 1;
        return 1;
      }
    }
  }
  for (int i = 0; i < tr->plan.nparams; i++) {
    int64_t j = tr->plan.params[i].buffer ? first_not_finite(nn_trainer_tensor(tr, i), tr->plan.params[i].numel) : -1;
    if (j >= 0) {
      snprintf(name, nname, "%s", tr->plan.params[i].name);
      *at = j + 1;
      return 1;
    }
  }
  return 0;
}

nn_status nn_trainer_check_finite(const nn_trainer *tr, nn_error *err) {
  char name[NN_PLAN_NAME_LEN + 32];
  int64_t at;
  if (state_not_finite((nn_trainer *)tr, name, sizeof name, &at)) /* reads only */
    return nn_fail(err, NN_EINVAL, "trainer: tensor '%s' element %lld is not finite (training diverged at or "
                   "before step %lld); load a checkpoint or make a new trainer", name, (long long)at,
                   (long long)tr->steps);
  return NN_OK;
}

/* The calls that run the net refuse a diverged trainer: a flag set by the step that diverged
 * (the state changes nowhere else; a load checks what it reads), the whole state read for the
 * message only then. */
static nn_status check_not_diverged(const nn_trainer *tr, nn_error *err) {
  return tr->diverged ? nn_trainer_check_finite(tr, err) : NN_OK;
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
  if (dlogits) ALLOC(*dlogits, x->shape[0] * tr->plan.p.classes);
  return nn_softmax_ce(x->shape[0], tr->plan.p.classes, out, y->data, loss,
                       dlogits ? *dlogits : NULL, correct, err);
}

static nn_status pass_step(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                           nn_train_result *res, nn_error *err) {
  double t0 = now_s(), t1, t2, loss;
  int64_t correct;
  float *dl;
  nn_train_result r = {0};
  if (tr->steps >= NN_TRAIN_MAX_STEPS) /* only a checkpoint can bring a trainer this far */
    return nn_fail(err, NN_EINVAL, "trainer: %lld steps taken, the most a trainer takes", (long long)tr->steps);
  char bad[NN_PLAN_NAME_LEN + 32];
  int64_t at;
  TRY(check_not_diverged(tr, err)); /* a diverged trainer steps no further */
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
  /* a state that is not finite is kept (no copy to roll back to) but refused by every later
   * call except load: no NaN comes out of a trainer, and no checkpoint its load would refuse */
  if (state_not_finite(tr, bad, sizeof bad, &at)) {
    tr->diverged = 1;
    return nn_fail(err, NN_EINVAL, "training diverged at step %lld: tensor '%s' element %lld is not finite "
                   "after it; lower lr (the trainer now refuses to step, evaluate, export or save "
                   "until a checkpoint is loaded)", (long long)tr->steps, bad, (long long)at);
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

nn_status nn_trainer_step(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                          nn_train_result *res, nn_error *err) {
  IN_PASS(pass_step(tr, x, y, res, err));
}

static nn_status pass_evaluate(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                               nn_train_result *res, nn_error *err) {
  double t0 = now_s(), loss;
  int64_t correct;
  nn_train_result r = {0};
  TRY(check_not_diverged(tr, err));
  TRY(forward_loss(tr, x, y, 0, 0, 0, 0, &loss, &correct, NULL, err));
  r.loss = loss;
  r.correct = correct;
  r.samples = x->shape[0];
  r.lr = nn_trainer_lr(tr);
  r.forward_s = now_s() - t0;
  if (res) *res = r;
  return NN_OK;
}

nn_status nn_trainer_evaluate(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                              nn_train_result *res, nn_error *err) {
  IN_PASS(pass_evaluate(tr, x, y, res, err));
}

static nn_status pass_forward(nn_trainer *tr, const nn_tensor *x, int train, nn_tensor **out,
                              nn_error *err) {
  float *o;
  nn_tensor *t;
  double keep = tr->tp.dropout;
  TRY(check_batch(tr, x, NULL, err));
  TRY(check_not_diverged(tr, err));
  TRY(quantize_weights(tr, err));
  tr->mode_train = train;
  tr->update_running = 0;
  tr->smooth = 0;
  tr->tp.dropout = 0;
  nn_status st = net_f(tr, x, 0, &o, err);
  tr->tp.dropout = keep;
  if (st != NN_OK) return st;
  if (!(t = nn_tensor_new4(2, x->shape[0], tr->plan.p.classes, 0, 0, err))) return NN_ENOMEM;
  memcpy(t->data, o, (size_t)t->numel * sizeof *o);
  *out = t;
  return NN_OK;
}

nn_status nn_trainer_forward(nn_trainer *tr, const nn_tensor *x, int train, nn_tensor **out,
                             nn_error *err) {
  IN_PASS(pass_forward(tr, x, train, out, err));
}

static nn_status pass_loss_grad(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                                uint64_t mask_id, int smooth, double *loss, nn_tensor *dx,
                                nn_error *err) {
  float *dl;
  if (dx && dx->numel != x->numel) return nn_fail(err, NN_EINVAL, "dx: expected x's shape");
  TRY(check_not_diverged(tr, err));
  TRY(forward_loss(tr, x, y, 1, 0, mask_id, smooth, loss, NULL, &dl, err));
  zero_grads(tr);
  return net_b(tr, dl, dx ? dx->data : NULL, err);
}

nn_status nn_trainer_loss_grad(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                               uint64_t mask_id, int smooth, double *loss, nn_tensor *dx,
                               nn_error *err) {
  IN_PASS(pass_loss_grad(tr, x, y, mask_id, smooth, loss, dx, err));
}

static nn_status pass_loss(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                           uint64_t mask_id, int smooth, double *loss, nn_error *err) {
  TRY(check_not_diverged(tr, err));
  return forward_loss(tr, x, y, 1, 0, mask_id, smooth, loss, NULL, NULL, err);
}

nn_status nn_trainer_loss(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                          uint64_t mask_id, int smooth, double *loss, nn_error *err) {
  IN_PASS(pass_loss(tr, x, y, mask_id, smooth, loss, err));
}


int nn_trainer_find_param(const nn_trainer *tr, const char *name) {
  for (int i = 0; i < tr->np; i++)
    if (strcmp(tr->p[i].name, name) == 0) return i;
  return -1;
}
