/* nn_net_forward.c: the spiking forward pass (docs/model.md), a walk over the net's plan
 * (include/neuronas/nn_plan.h): the prefix runs part 0 (its `once` steps, then its other steps
 * at every timestep), the suffix part 1 at every timestep. One switch on the step's op
 * (step_run); the arithmetic is in nn_ops.c, split over the pass's threads here. */
#include <math.h>
#include <string.h>

#include "nn_net_impl.h"
#include "nn_par.h"
#include "nn_scratch.h"

/* One forward call's scratch. Every buffer comes from nn_scratch (recycled across calls: no
 * page faults in a search's steady state) and goes back in run_free. */
typedef struct run {
  nn_net *net;
  const nn_plan *pl;
  const nn_forward_opts *o;
  int64_t S;
  int step;
  nn_par *par;             /* the pass's worker team (NULL: the calling thread only) */
  float *v[NN_PLAN_MAXLIF]; /* LIF states, S * neurons each, lazily allocated (0 = fresh) */
  /* Edges leaving the same node of a cell each own a LIF, but all of them read that node's map
   * at every timestep from a zero state with the same tau and threshold: their states, spikes
   * and counts are the same. Only the first (in run order) computes, into kept[] instead of
   * bits; same[li] >= 0 names the LIF whose spikes li repeats (and their count, kept_fired). */
  int same[NN_PLAN_MAXLIF];
  uint64_t *kept[NN_PLAN_MAXLIF];
  int64_t kept_fired[NN_PLAN_MAXLIF];
  const float *kept_x[NN_PLAN_MAXLIF]; /* the input and timestep of that call (checked) */
  int kept_step[NN_PLAN_MAXLIF];
  /* A map that only a LIF would read is not written (docs/performance.md, "Tenth round"): a
   * BatchNorm (or node 0's sum) feeds the LIF as it makes it (fed_lif_run). fuse[cell][node]
   * is the LIF that a cell's node feeds so (-1: none; run_init); pre_step[li] the timestep whose
   * spikes pre_bits[li] already holds that way, for the LIF's call (lif_call). */
  int fuse[2][4];
  int pre_step[NN_PLAN_MAXLIF];
  uint64_t *pre_bits[NN_PLAN_MAXLIF]; /* where those spikes are: kept[li], or bits */
  float *s;                /* spikes of the current LIF call as floats, when asked (run_spikes_f) */
  int64_t s_floats;        /* capacity of s (allocated on first use: event-driven convs never need it) */
  uint64_t *bits;          /* spikes of a LIF call, bit-packed (those no other LIF repeats) */
  const uint64_t *spk;     /* the current LIF call's spikes: bits or a kept[] */
  int64_t lif_neurons;     /* neurons per sample of the current LIF call */
  float *tmp;              /* conv and BN outputs (the largest per-timestep map) */
  float *wcl[NN_PLAN_MAXSTEP]; /* channels-last weights of conv steps, made at their first
                                * event-driven call of the pass */
  float *wlt[NN_PLAN_MAXSTEP];  /* transposed weights of Linear steps (nn_linear_wt), made at
                                 * their first sparse call of the pass */
  signed char wlt_ok[NN_PLAN_MAXSTEP]; /* 1: wlt[i] made and finite, -1: a weight is not finite */
  /* The channel sums of the last event-driven conv whose sums ran in integers
   * (nn_conv2d_events_sums): the exact values of its output's sequential double sums, csum_d,
   * for the BatchNorm that reads it next (bn_given). csum_y is that output, csum_step the conv's
   * step; NULL: none. */
  int64_t *csum;
  double *csum_d;
  int64_t csum_n;          /* capacity of csum and csum_d */
  const float *csum_y;
  int csum_step;
} run;

static void run_free(run *r) {
  for (int i = 0; i < NN_PLAN_MAXLIF; i++) nn_scratch_put(r->v[i]), nn_scratch_put(r->kept[i]);
  nn_scratch_put(r->s), nn_scratch_put(r->bits), nn_scratch_put(r->tmp);
  for (int i = 0; i < NN_PLAN_MAXSTEP; i++) nn_scratch_put(r->wcl[i]), nn_scratch_put(r->wlt[i]);
  nn_scratch_put(r->csum), nn_scratch_put(r->csum_d);
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
  nn_linear_term *tm;  /* a sparse Linear's terms, where each row's start and how many */
  const int64_t *at;
  int64_t *cnt;
  nn_conv_geom g;
  int64_t a, b, c;    /* per-kind sizes */
  float tau, thr;
  int flag;
  nn_tensor *const *bn; /* a BN's weight, bias, running mean, running variance */
  int train;
  int64_t fired;      /* summed atomically (integers: order-free) */
  int64_t *sums;      /* an event conv's channel sums (nn_conv2d_events_sums), summed atomically */
  int64_t covered;    /* samples whose sums ran in integers */
  uint32_t unit;      /* their unit's bits (the same for every piece: the weights decide it) */
  const double *dsum; /* a BatchNorm's given channel sums (bn_given) */
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
  if (j->flag) { /* this piece's channel sums, when the job wants them and scratch allows */
    int64_t *sums = j->sums ? nn_scratch_get((size_t)g.o * sizeof *sums) : NULL;
    float unit = 0;
    if (sums) memset(sums, 0, (size_t)g.o * sizeof *sums);
    st = nn_conv2d_events_sums(&g, j->bits + lo * j->b, j->w, j->y + lo * j->c, sums, &unit, &e);
    if (st == NN_OK && sums && unit > 0) {
      for (int64_t o = 0; o < g.o; o++) __atomic_fetch_add(&j->sums[o], sums[o], __ATOMIC_RELAXED);
      uint32_t u;
      memcpy(&u, &unit, sizeof u);
      __atomic_store_n(&j->unit, u, __ATOMIC_RELAXED);
      __atomic_fetch_add(&j->covered, g.n, __ATOMIC_RELAXED);
    }
    nn_scratch_put(sums);
  } else {
    st = nn_conv2d(&g, j->x + lo * j->a, j->w, j->y + lo * j->c, &e);
  }
  job_fail(j, st, &e);
}

/* channels [lo, hi) of a BatchNorm of c channels over a samples of hw = b */
static void bn_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_tensor *const *t = j->bn;
  nn_bn_forward_channels(j->x, j->a, j->c, j->b, lo, hi, t[0]->data, t[1]->data, t[2]->data, t[3]->data, j->train,
                         NN_BN_MOMENTUM, NN_BN_EPS, j->y, j->x2, j->dsum);
}

/* channels [lo, hi) of a BatchNorm's terms (y = a, v = b) */
static void bn_terms_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_tensor *const *t = j->bn;
  nn_bn_terms_channels(j->x, j->a, j->c, j->b, lo, hi, t[0]->data, t[1]->data, t[2]->data, t[3]->data, j->train,
                       NN_BN_MOMENTUM, NN_BN_EPS, j->y, j->v, j->dsum);
}

/* samples [lo, hi) of a BatchNorm fed to a LIF: x = the BN's input, x2 = what its output adds
 * to (or NULL), w = its terms (c of a, then c of b; NULL: the LIF reads x + x2), y = the LIF's
 * state, bout its spikes; c channels of b = hw */
static void bn_lif_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  float *tmp = nn_scratch_get((size_t)nn_bn_lif_tmp_floats(j->c, j->b) * sizeof(float));
  if (!tmp) {
    nn_error e;
    job_fail(j, nn_fail(&e, NN_ENOMEM, "forward: out of memory for a LIF's input"), &e);
    return;
  }
  int64_t f = nn_bn_lif_bits(j->x, j->x2, lo, hi, j->c, j->b, j->w, j->w ? j->w + j->c : NULL, tmp, j->y, j->tau,
                             j->thr, j->flag, j->bout);
  nn_scratch_put(tmp);
  __atomic_fetch_add(&j->fired, f, __ATOMIC_RELAXED);
}

/* samples [lo, hi) of a BatchNorm fed to a k x k pool (nn_bn_pool): x its input, w its terms, y
 * the pool's output; c channels of a x b, k = flag */
static void bn_pool_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  float *tmp = nn_scratch_get((size_t)nn_bn_pool_tmp_floats(j->c, j->a * j->b) * sizeof(float));
  if (!tmp) {
    nn_error e;
    job_fail(j, nn_fail(&e, NN_ENOMEM, "forward: out of memory for a pool's input"), &e);
    return;
  }
  nn_bn_pool(j->x, lo, hi, j->c, j->a, j->b, j->flag, j->w, j->w + j->c, tmp, j->y);
  nn_scratch_put(tmp);
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

/* inputs [lo, hi) of a Linear's input x transposed into y (a samples, b inputs) */
static void linear_xt_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_linear_xt(j->x, j->a, j->b, lo, hi, j->y);
}

/* outputs [lo, hi) of a Linear from the transposed input x (a samples, b inputs, c outputs) */
static void linear_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_error e;
  job_fail(j, nn_linear_outputs(j->x, j->a, j->b, j->w, j->x2, j->c, lo, hi, j->y, &e), &e);
}

/* rows [lo, hi) of a Linear's input x (b inputs): nonzeros counted into cnt and fired */
static void linear_count_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  __atomic_fetch_add(&j->fired, nn_linear_count(j->x, j->b, lo, hi, j->cnt), __ATOMIC_RELAXED);
}

/* tiles [lo, hi) of a Linear's weights w (b inputs, c outputs) transposed into y; a weight
 * that is not finite sets flag */
static void linear_wt_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  if (!nn_linear_wt(j->w, j->b, j->c, lo, hi, j->y)) __atomic_store_n(&j->flag, 1, __ATOMIC_RELAXED);
}

/* rows [lo, hi) of a Linear's input x (b inputs) listed as terms */
static void linear_terms_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_linear_terms(j->x, j->b, lo, hi, j->at, j->tm);
}

/* tiles [lo, hi) of a sparse Linear's outputs (a rows, b inputs, c outputs; weights w
 * transposed, bias x2) from x and its terms */
static void linear_sparse_piece(void *ctx, int64_t lo, int64_t hi) {
  par_job *j = ctx;
  nn_error e;
  const int64_t o1 = hi * NN_LINEAR_WT_TILE < j->c ? hi * NN_LINEAR_WT_TILE : j->c;
  job_fail(j, nn_linear_sparse(j->x, j->a, j->b, j->tm, j->at, j->cnt, j->w, j->x2, j->c, lo * NN_LINEAR_WT_TILE, o1, j->y, &e),
           &e);
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

static nn_status job_status(const par_job *j, nn_error *err) {
  if (!j->failed) return NN_OK;
  if (err) *err = j->err;
  return j->st;
}

/* The sparse path of Linear step i (docs/model.md) on x, whose rows have cnt[j] nonzeros: the
 * weights transposed once per pass (and checked: one that is not finite keeps the step dense
 * for the pass, *taken = 0), x's nonzero terms listed per row, the output tiles split over the
 * threads. */
static nn_status linear_sparse(run *r, int i, const float *x, int64_t in, const float *w, const float *b,
                               int64_t out, float *y, int64_t *cnt, int *taken, nn_error *err) {
  const int64_t n = r->S, tiles = (out + NN_LINEAR_WT_TILE - 1) / NN_LINEAR_WT_TILE;
  const nn_plan_step *s = &r->pl->steps[i];
  par_job j;
  *taken = 0;
  if (!r->wlt_ok[i]) {
    if (!(r->wlt[i] = nn_scratch_get((size_t)nn_linear_wt_floats(in, out) * sizeof(float))))
      return nn_fail(err, NN_ENOMEM, "forward: out of memory for the weights of %s", s->path);
    memset(&j, 0, sizeof j);
    j.w = w, j.y = r->wlt[i], j.b = in, j.c = out;
    nn_par_for(r->par, tiles, 1, linear_wt_piece, &j);
    r->wlt_ok[i] = j.flag ? -1 : 1;
  }
  if (r->wlt_ok[i] < 0) return NN_OK;
  int64_t *at = nn_scratch_get((size_t)n * sizeof *at);
  const int64_t room = at ? nn_linear_terms_at(cnt, n, at) : 0, cap = nn_linear_terms_cap(n, in);
  nn_linear_term *tm = at ? nn_scratch_get((size_t)(room > cap ? room : cap) * sizeof *tm) : NULL;
  if (!tm) {
    nn_scratch_put(at);
    return nn_fail(err, NN_ENOMEM, "forward: out of memory for the terms of %s", s->path);
  }
  memset(&j, 0, sizeof j);
  j.x = x, j.b = in, j.tm = tm, j.at = at;
  nn_par_for(r->par, n, 1, linear_terms_piece, &j);
  memset(&j, 0, sizeof j);
  j.x = x, j.x2 = b, j.w = r->wlt[i], j.y = y, j.a = n, j.b = in, j.c = out, j.tm = tm, j.at = at, j.cnt = cnt;
  nn_par_for(r->par, tiles, 1, linear_sparse_piece, &j);
  nn_scratch_put(tm), nn_scratch_put(at);
  *taken = 1;
  return job_status(&j, err);
}

/* Linear step i (nn_linear's arithmetic: one FMA chain per output, so any split gives the same
 * bits): on a sparse input (nn_linear_prefer_sparse) the chains without x's zero terms, else x
 * transposed once and the outputs split over the threads. */
static nn_status par_linear(run *r, int i, const float *x, int64_t in, const float *w, const float *b, int64_t out,
                            float *y, nn_error *err) {
  const int64_t n = r->S;
  par_job j;
  /* the nonzeros are counted only where the sparse path can be taken at all (with none of them:
   * the step's weights finite so far, the transposed copy within its bound) */
  if (r->wlt_ok[i] >= 0 && nn_linear_prefer_sparse(0, n, in, out)) {
    int64_t *cnt = nn_scratch_get((size_t)n * sizeof *cnt);
    if (!cnt) return nn_fail(err, NN_ENOMEM, "forward: out of memory for batch %lld", (long long)n);
    memset(&j, 0, sizeof j);
    j.x = x, j.b = in, j.cnt = cnt;
    nn_par_for(r->par, n, 1, linear_count_piece, &j);
    int taken = 0;
    nn_status st = nn_linear_prefer_sparse(j.fired, n, in, out) ? linear_sparse(r, i, x, in, w, b, out, y, cnt, &taken, err)
                                                                : NN_OK;
    nn_scratch_put(cnt);
    if (st != NN_OK || taken) return st;
  }
  float *xt = nn_scratch_get((size_t)(nn_linear_xt_stride(n) * (in > 0 ? in : 1)) * sizeof *xt);
  if (!xt) return nn_fail(err, NN_ENOMEM, "forward: out of memory for a %lld x %lld Linear input", (long long)n, (long long)in);
  memset(&j, 0, sizeof j);
  j.x = x, j.y = xt, j.a = n, j.b = in;
  nn_par_for(r->par, in, 64, linear_xt_piece, &j);
  memset(&j, 0, sizeof j);
  j.x = xt, j.x2 = b, j.w = w, j.y = y, j.a = n, j.b = in, j.c = out;
  nn_par_for(r->par, out, 48, linear_piece, &j);
  nn_scratch_put(xt);
  return job_status(&j, err);
}

/* A conv of geometry g (g.n set) on r's spikes (events) or on dense x. Dense pieces start at
 * multiples of nn_conv2d's sample chunk, so every sgemm call is the one the whole call makes.
 * An event-driven conv whose sums all ran in integers leaves its channel sums in r (csum_y = y;
 * the caller names the step), for the BatchNorm that reads y next. */
static nn_status par_conv(run *r, const nn_conv_geom *g, int events, const float *x, const float *w, float *y,
                          nn_error *err) {
  par_job j;
  memset(&j, 0, sizeof j);
  j.g = *g, j.flag = events, j.x = x, j.w = w, j.y = y, j.bits = r->spk;
  j.a = g->c * g->h * g->w, j.b = nn_spike_words(j.a), j.c = g->o * nn_conv_ho(g) * nn_conv_wo(g);
  r->csum_y = NULL;
  if (events && g->o > r->csum_n) { /* at most the widest conv's channels, once per pass */
    nn_scratch_put(r->csum), nn_scratch_put(r->csum_d);
    r->csum = nn_scratch_get((size_t)g->o * sizeof *r->csum);
    r->csum_d = nn_scratch_get((size_t)g->o * sizeof *r->csum_d);
    r->csum_n = r->csum && r->csum_d ? g->o : 0;
  }
  if (events && g->o <= r->csum_n) {
    memset(r->csum, 0, (size_t)g->o * sizeof *r->csum);
    j.sums = r->csum;
  }
  nn_par_for(r->par, g->n, events ? 1 : nn_conv2d_chunk(g), conv_piece, &j);
  if (j.failed) {
    if (err) *err = j.err;
    return j.st;
  }
  /* every output an integer times unit, fewer than 2^29 per channel: the sums are exact */
  if (j.sums && j.covered == g->n && (double)g->n * (double)(nn_conv_ho(g) * nn_conv_wo(g)) < 0x1p29) {
    float unit;
    memcpy(&unit, &j.unit, sizeof unit);
    for (int64_t o = 0; o < g->o; o++) r->csum_d[o] = (double)r->csum[o] * (double)unit;
    r->csum_y = y;
  }
  return NN_OK;
}


/* Scratch for a pass over the whole plan: r.tmp holds the largest per-timestep output of any
 * step, r.bits the largest LIF call. */
static nn_status run_init(run *r, nn_net *net, const nn_forward_opts *o, int64_t S, nn_error *err) {
  const nn_plan *pl = &net->plan;
  memset(r, 0, sizeof *r);
  r->net = net, r->pl = pl, r->o = o, r->S = S;
  if (o && (o->threads < 0 || o->threads > NN_PAR_MAX_THREADS))
    return nn_fail(err, NN_EINVAL, "forward: threads=%d outside 0..%d", o->threads, NN_PAR_MAX_THREADS);
  int64_t m = 1, smax = 1;
  for (int i = 0; i < pl->nsteps; i++) {
    const nn_plan_step *s = &pl->steps[i];
    if (!s->once && nn_plan_step_out_numel(s) > m) m = nn_plan_step_out_numel(s);
    if (s->op == NN_STEP_LIF && nn_plan_step_out_numel(s) > smax) smax = nn_plan_step_out_numel(s);
  }
  r->tmp = nn_scratch_get((size_t)(S * m) * sizeof *r->tmp);
  r->bits = nn_scratch_get((size_t)(S * nn_spike_words(smax)) * sizeof *r->bits);
  int ok = r->tmp && r->bits;
  /* LIFs that repeat another's spikes: the LIF sub-steps of EDGE steps of the same cell and
   * from the same node (the edges' plan order is their run order, docs/model.md) */
  for (int li = 0; li < NN_PLAN_MAXLIF; li++) r->same[li] = -1;
  for (int i = 0; i < pl->nsteps && ok; i++) {
    const nn_plan_step *e = &pl->steps[i];
    if (e->op != NN_STEP_EDGE || e->nsub < 1 || pl->steps[i + 1].op != NN_STEP_LIF) continue;
    for (int k = 0; k < i; k++) {
      const nn_plan_step *f = &pl->steps[k];
      if (f->op != NN_STEP_EDGE || f->nsub < 1 || pl->steps[k + 1].op != NN_STEP_LIF || f->cell != e->cell ||
          f->from != e->from)
        continue;
      const int src = pl->steps[k + 1].lif, li = pl->steps[i + 1].lif;
      r->same[li] = src;
      if (!r->kept[src]) {
        const int64_t words = S * nn_spike_words(nn_plan_step_out_numel(&pl->steps[k + 1]));
        ok = (r->kept[src] = nn_scratch_get((size_t)words * sizeof(uint64_t))) != NULL;
      }
      break;
    }
  }
  if (!ok) {
    run_free(r);
    return nn_fail(err, NN_ENOMEM, "forward: out of memory for batch %lld", (long long)S);
  }
  /* Nodes 1 and 2 of a cell whose last edge in ends in a BatchNorm and whose every edge out
   * (forward or backward) starts with a LIF: the first of those LIFs reads the BatchNorm's
   * output as it is made. Node 0 of a backward cell likewise, where its input and backward state
   * are summed (y0 = x0 + bx0). Node 3, the cell's output, is always written. */
  for (int li = 0; li < NN_PLAN_MAXLIF; li++) r->pre_step[li] = -1;
  for (int cl = 0; cl < 2; cl++)
    for (int j = 0; j < 4; j++) r->fuse[cl][j] = -1;
  for (int cl = 0; cl < 2 && ok; cl++) {
    const int ci = pl->cell_step[cl];
    if (ci < 0 || ci >= pl->nsteps || pl->steps[ci].op != NN_STEP_CELL) continue;
    const nn_plan_step *cs = &pl->steps[ci];
    for (int j = 0; j <= 2 && ok; j++) {
      int last_in = -1, first_out = -1, outs_ok = 1, k = 0;
      for (int i = ci + 1; i <= ci + cs->nsub; i += 1 + pl->steps[i].nsub, k++) {
        const nn_plan_step *e = &pl->steps[i];
        if (k < cs->nfwd && e->to == j) last_in = i;
        if (e->from == j) {
          if (e->nsub < 1 || pl->steps[i + 1].op != NN_STEP_LIF) outs_ok = 0;
          else if (first_out < 0) first_out = i;
        }
      }
      if (j == 0 ? cs->nsub == 0 || k == cs->nfwd /* no backward state */ || first_out < 0 || !outs_ok
                 : last_in < 0 || first_out < 0 || !outs_ok || pl->steps[last_in].nsub < 1 ||
                       pl->steps[last_in + pl->steps[last_in].nsub].op != NN_STEP_BN)
        continue;
      const int li = pl->steps[first_out + 1].lif;
      if (r->same[li] >= 0) continue; /* cannot happen: the first LIF from a node repeats none */
      r->fuse[cl][j] = li;
      if (!r->kept[li]) {
        const int64_t words = S * nn_spike_words(nn_plan_step_out_numel(&pl->steps[first_out + 1]));
        ok = (r->kept[li] = nn_scratch_get((size_t)words * sizeof(uint64_t))) != NULL;
      }
    }
  }
  if (!ok) {
    run_free(r);
    return nn_fail(err, NN_ENOMEM, "forward: out of memory for batch %lld", (long long)S);
  }
  /* a team that cannot start leaves the pass to the calling thread (the same bits, slower) */
  if (o && o->threads > 1) r->par = nn_par_new(o->threads);
  return NN_OK;
}

/* LIF `li` (plan.lif_step[li]) on x (S x neurons): spikes into r->spk, observer, statistics. */
static nn_status lif_call(run *r, int li, const float *x, int64_t *fired, nn_error *err) {
  const nn_plan_step *s = &r->pl->steps[r->pl->lif_step[li]];
  const int64_t neurons = nn_plan_step_out_numel(s), n = r->S * neurons;
  const int src = r->same[li];
  int64_t f;
  if (src < 0 && r->pre_step[li] == r->step) { /* made with the BatchNorm that wrote x (bn_lif_run) */
    if (r->kept_x[li] != x)
      return nn_fail(err, NN_EINVAL, "forward: %s does not read the map its spikes were made from", s->path);
    r->spk = r->pre_bits[li];
    f = r->kept_fired[li];
    r->pre_step[li] = -1; /* used */
  } else if (src >= 0) { /* the spikes of LIF src, which read the same map earlier in this timestep */
    if (r->kept_x[src] != x || r->kept_step[src] != r->step)
      return nn_fail(err, NN_EINVAL, "forward: %s does not follow the LIF whose spikes it repeats", s->path);
    r->spk = r->kept[src];
    f = r->kept_fired[src];
  } else {
    const int fresh = !r->v[li]; /* first call of this LIF in the pass: state 0 */
    if (fresh && !(r->v[li] = nn_scratch_get((size_t)n * sizeof(float))))
      return nn_fail(err, NN_ENOMEM, "forward: out of memory for %s state", s->path);
    par_job j;
    memset(&j, 0, sizeof j);
    uint64_t *out = r->kept[li] ? r->kept[li] : r->bits;
    j.v = r->v[li], j.x = x, j.a = neurons, j.b = nn_spike_words(neurons), j.bout = out;
    j.tau = (float)r->pl->p.tau, j.thr = (float)r->pl->p.threshold, j.flag = fresh;
    nn_par_for(r->par, r->S, 1, lif_piece, &j);
    f = j.fired;
    r->spk = out;
    if (r->kept[li]) r->kept_fired[li] = f, r->kept_x[li] = x, r->kept_step[li] = r->step;
  }
  r->lif_neurons = neurons;
  r->net->lifs[li].fired += f;
  r->net->lifs[li].seen += n;
  if (r->o && r->o->on_spikes) {
    nn_spike_call c = {s->path, r->step, r->S, neurons, nn_spike_words(neurons), r->spk, f};
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
  j.bits = r->spk, j.y = r->s, j.a = r->lif_neurons, j.b = nn_spike_words(r->lif_neurons);
  nn_par_for(r->par, r->S, 1, unpack_piece, &j);
  *s = r->s;
  return NN_OK;
}

/* The value passed from step to step: dense floats x, or the spikes of the last LIF call (in
 * r->spk, `fired` of them). */
typedef struct val {
  const float *x;
  int spikes;
  int64_t fired;
} val;

static nn_status floats_of(run *r, const val *v, const float **x, nn_error *err) {
  if (!v->spikes) return *x = v->x, NN_OK;
  return run_spikes_f(r, x, err);
}

static int train_mode(const run *r) { return r->o ? r->o->train : 0; } /* NULL opts: eval */

/* The channel sums a BatchNorm at step i may take for its input x (train mode only): those of
 * the conv at step i - 1, if x is its output (par_conv). Taken once. */
static const double *bn_given(run *r, int i, const float *x) {
  const double *d = r->csum_y && r->csum_y == x && r->csum_step == i - 1 && train_mode(r) ? r->csum_d : NULL;
  r->csum_y = NULL;
  return d;
}

/* BN step i: y = BN(x), or y = base + BN(x) when base (a cell edge adding into its node: base
 * = y, or the node's deferred skip input). */
static void bn_run(run *r, int i, const float *x, float *y, const float *base) {
  const nn_plan_step *s = &r->pl->steps[i];
  par_job j;
  memset(&j, 0, sizeof j);
  j.x = x, j.y = y, j.a = r->S, j.b = s->in_h * s->in_w, j.c = s->in_c, j.bn = &r->net->t[s->param0];
  j.train = train_mode(r), j.x2 = base, j.dsum = bn_given(r, i, x);
  nn_par_for(r->par, s->in_c, 16, bn_piece, &j); /* 16: the AVX2 statistics block */
}

/* BN step i's terms a (c floats), then b, in ab, its statistics taken on x as bn_run takes them */
static void bn_terms(run *r, int i, const float *x, float *ab) {
  const nn_plan_step *s = &r->pl->steps[i];
  par_job j;
  memset(&j, 0, sizeof j);
  j.x = x, j.a = r->S, j.b = s->in_h * s->in_w, j.c = s->in_c, j.bn = &r->net->t[s->param0], j.train = train_mode(r);
  j.y = ab, j.v = ab + s->in_c, j.dsum = bn_given(r, i, x);
  nn_par_for(r->par, s->in_c, 16, bn_terms_piece, &j); /* 16: the AVX2 statistics block */
}

/* LIF li on node = src + BN_i(x) (BN step i >= 0; src NULL: BN_i(x)) or on node = x + src (i < 0),
 * the map it would read next, which is not written: the BN's statistics as bn_run takes them,
 * then per sample the LIF on that map as it is made in L1 (nn_bn_lif_bits), its spikes kept for
 * the LIF's call (lif_call). c channels of hw: the LIF's shape. */
static nn_status fed_lif_run(run *r, int i, const float *x, const float *src, int li, const float *node, int64_t c,
                             int64_t hw, nn_error *err) {
  const nn_plan_step *ls = &r->pl->steps[r->pl->lif_step[li]];
  const int64_t neurons = nn_plan_step_out_numel(ls);
  if (neurons != c * hw || (i < 0 && !src))
    return nn_fail(err, NN_EINVAL, "forward: %s cannot be fed directly", ls->path);
  uint64_t *out = r->kept[li] ? r->kept[li] : r->bits; /* bits: the LIF runs next, nothing between */
  float *ab = i >= 0 ? nn_scratch_get((size_t)(2 * c) * sizeof(float)) : NULL;
  const int fresh = !r->v[li]; /* first call of this LIF in the pass: state 0 */
  if ((i >= 0 && !ab) || (fresh && !(r->v[li] = nn_scratch_get((size_t)(r->S * neurons) * sizeof(float))))) {
    nn_scratch_put(ab);
    return nn_fail(err, NN_ENOMEM, "forward: out of memory for %s state", ls->path);
  }
  if (ab) bn_terms(r, i, x, ab);
  par_job j;
  memset(&j, 0, sizeof j);
  j.x = x, j.x2 = src, j.w = ab, j.y = r->v[li], j.bout = out, j.b = hw, j.c = c;
  j.tau = (float)r->pl->p.tau, j.thr = (float)r->pl->p.threshold, j.flag = fresh;
  nn_par_for(r->par, r->S, 1, bn_lif_piece, &j);
  nn_scratch_put(ab);
  if (j.failed) return job_status(&j, err);
  r->pre_bits[li] = out, r->kept_fired[li] = j.fired, r->kept_x[li] = node, r->kept_step[li] = r->step;
  r->pre_step[li] = r->step;
  return NN_OK;
}

static nn_status bn_lif_run(run *r, int i, const float *x, const float *src, int li, const float *node,
                            nn_error *err) {
  const nn_plan_step *s = &r->pl->steps[i];
  return fed_lif_run(r, i, x, src, li, node, s->in_c, s->in_h * s->in_w, err);
}

/* CONV step i on v into y: event-driven or dense on spikes (by the net's conv mode and the
 * firing rate), dense on floats. */
static nn_status conv_run(run *r, int i, const val *v, float *y, nn_error *err) {
  const nn_plan_step *s = &r->pl->steps[i];
  const float *w = nn_net_step_tensor(r->net, i, 0)->data;
  nn_conv_geom g = nn_plan_step_geom(s, r->S);
  if (!v->spikes) return par_conv(r, &g, 0, v->x, w, y, err);
  nn_conv_mode mode = r->net->conv_mode;
  if (mode == NN_CONV_EVENTS || (mode == NN_CONV_AUTO && nn_conv2d_prefer_events(&g, v->fired))) {
    if (!r->wcl[i]) { /* once per pass: the weights do not change between timesteps */
      const size_t bytes = (size_t)(g.o * g.c * g.k * g.k) * sizeof(float);
      if (!(r->wcl[i] = nn_scratch_get(bytes)))
        return nn_fail(err, NN_ENOMEM, "forward: out of memory for the weights of %s", s->path);
      nn_conv2d_weight_cl(&g, w, r->wcl[i]);
    }
    const nn_status st = par_conv(r, &g, 1, NULL, r->wcl[i], y, err);
    r->csum_step = i;
    return st;
  }
  const float *x = NULL;
  nn_status st = run_spikes_f(r, &x, err);
  return st != NN_OK ? st : par_conv(r, &g, 0, x, w, y, err);
}

/* Per-cell state across the timesteps of one forward: x[1..3] hold the node values (x1, x2
 * replaced in place by y_i = x_i + bx_i once complete, since only y_i feeds later edges), y0 =
 * x0 + bx0, bx[0..2] the backward state. A forward cell needs x[1..3] only. edge[] are the
 * cell's EDGE steps in plan order (forward edges first). */
typedef struct cell_run {
  float *x[4], *y0, *bx[3], *zero; /* zero: an all-zero map, made at the first node no edge reaches */
  int bx_zero[3]; /* bx[i] is all zero (not stored): no backward edge wrote it last timestep */
  int back;
  int cell, nedges, nfwd, edge[12];
} cell_run;

/* One part's walk: steps [lo, hi) per timestep, after the once steps [lo0, lo). Where the
 * values live: the once steps' output in keep, a CONV's or BN's in r.tmp (a BN in place when its
 * input is there already; a conv never reads r.tmp: the stem reads the input, the others
 * spikes), a POOL's, LINEAR's or BOOST's in buf[step], the last step's in slot when the part
 * has one (the prefix: this timestep's cell B input). A cell's maps are its own (cell_run). */
typedef struct walk {
  int lo0, lo, hi;
  float *keep, *slot;
  float *buf[NN_PLAN_MAXSTEP];
  cell_run cells[2];
} walk;

static nn_status step_run(run *r, walk *w, int i, val *v, nn_error *err);

/* A node's sum in the making: the edges into it add into out. While fresh, no edge has written
 * out yet; while base is set, the sum so far is the map base, not copied into out (a skip edge's
 * input, deferred when `defer`): the next edge adds base and its own term into out in one pass
 * (base + t: the same float sum as copying base first, then adding t), and a node that ends
 * with base set is that map itself (cell_step). */
typedef struct node_sum {
  float *out;
  const float *base;
  int fresh, defer;
  int lif; /* >= 0: this edge's BatchNorm feeds that LIF instead of writing out (bn_lif_run) */
} node_sum;

/* A map no step of the cell writes while its nodes are summed (r.tmp holds conv outputs, r.s
 * the spikes of dense convs as floats): a skip edge's input may stand for a node until the
 * timestep's cell outputs are used. */
static int stable_map(const run *r, const float *p) { return p != r->tmp && p != r->s; }

/* nd += op(in) for the cell edge at step ei; in and the sum are S x c x h x w. While nd->fresh
 * (no edge has written the sum yet), out is written instead of added to (0 + y is y; only the
 * sign of a zero could differ, which nothing downstream can tell), and fresh is cleared. A conv
 * edge runs its sub-steps (LIF, conv) as any step, the last one (BN) into out. */
static nn_status edge_apply(run *r, walk *w, int ei, const float *in, node_sum *nd, nn_error *err) {
  const nn_plan_step *e = &r->pl->steps[ei];
  const int64_t n = r->S * nn_plan_step_in_numel(e);
  float *out = nd->out;
  nn_status st = NN_OK;
  if (e->edge_op == NN_OP_ZERO) return NN_OK;
  if (e->edge_op == NN_OP_SKIP && nd->fresh && nd->defer && stable_map(r, in)) {
    nd->base = in, nd->fresh = 0;
    return NN_OK;
  }
  const int add = !nd->fresh;
  const float *base = nd->base;
  nd->fresh = 0, nd->base = NULL;
  switch (e->edge_op) {
  case NN_OP_SKIP:
    if (base) par_elem(r, 2, out, base, in, n);
    else par_elem(r, add ? 1 : 0, out, in, NULL, n);
    return NN_OK;
  case NN_OP_AVGPOOL3X3:
    if (base) par_elem(r, 0, out, base, NULL, n);
    par_pool(r, add ? 1 : 0, in, r->S * e->in_c, e->in_h, e->in_w, 3, out);
    return NN_OK;
  default: {
    val v = {in, 0, 0};
    const int last = ei + e->nsub;
    if (e->nsub < 1 || r->pl->steps[last].op != NN_STEP_BN)
      return nn_fail(err, NN_EINVAL, "forward: edge %s (%s) does not end in a BatchNorm", e->path, nn_op_name(e->edge_op));
    for (int k = ei + 1; k < last && st == NN_OK; k++) st = step_run(r, w, k, &v, err);
    if (st == NN_OK && nd->lif >= 0) st = bn_lif_run(r, last, v.x, base ? base : add ? out : NULL, nd->lif, out, err);
    else if (st == NN_OK) bn_run(r, last, v.x, out, base ? base : add ? out : NULL);
    return st;
  }
  }
}

static void cell_run_free(cell_run *c) {
  for (int i = 0; i < 4; i++) nn_scratch_put(c->x[i]), c->x[i] = NULL;
  for (int i = 0; i < 3; i++) nn_scratch_put(c->bx[i]), c->bx[i] = NULL;
  nn_scratch_put(c->y0), c->y0 = NULL;
  nn_scratch_put(c->zero), c->zero = NULL;
}

/* State for the CELL step ci. */
static nn_status cell_run_init(cell_run *c, const nn_plan *pl, int ci, int64_t S, nn_error *err) {
  const nn_plan_step *cs = &pl->steps[ci];
  size_t n = (size_t)(S * nn_plan_step_in_numel(cs));
  memset(c, 0, sizeof *c);
  c->cell = cs->cell, c->nfwd = cs->nfwd;
  for (int i = ci + 1; i <= ci + cs->nsub; i += 1 + pl->steps[i].nsub) c->edge[c->nedges++] = i;
  c->back = c->nedges > c->nfwd;
  int ok = 1;
  for (int i = 1; i < 4; i++) ok &= (c->x[i] = nn_scratch_get(n * sizeof(float))) != NULL;
  if (c->back) {
    ok &= (c->y0 = nn_scratch_get(n * sizeof(float))) != NULL;
    for (int i = 0; i < 3; i++) {
      ok &= (c->bx[i] = nn_scratch_get(n * sizeof(float))) != NULL;
      c->bx_zero[i] = 1; /* zero at the start of a pass, without being written */
    }
  }
  if (!ok) {
    cell_run_free(c);
    return nn_fail(err, NN_ENOMEM, "forward: out of memory for %s state", cs->path);
  }
  return NN_OK;
}

/* One timestep of the CELL step ci (docs/model.md): x0 in, returns x3 (a map of the cell's run, or
 * one of its inputs or x0 itself: read it before the next timestep). */
static nn_status cell_step(run *r, walk *w, int ci, const float *x0, const float **x3, nn_error *err) {
  const nn_plan_step *cs = &r->pl->steps[ci];
  cell_run *c = &w->cells[cs->cell];
  const nn_plan_step *st0 = r->pl->steps;
  const int64_t n = r->S * nn_plan_step_in_numel(cs);
  const float *in[4];
  nn_status st;
  int e = 0;
  /* A backward state that is all zero (the first timestep, or no backward edge into that node)
   * is not added: x + 0 is x (up to the sign of a zero, see edge_apply). */
  in[0] = x0;
  if (c->back && !c->bx_zero[0]) {
    const int li = r->fuse[c->cell][0];
    if (li >= 0) { /* every edge out of node 0 starts with a LIF: it reads x0 + bx0 as it is made */
      if ((st = fed_lif_run(r, -1, x0, c->bx[0], li, c->y0, cs->in_c, cs->in_h * cs->in_w, err)) != NN_OK) return st;
    } else {
      par_elem(r, 2, c->y0, x0, c->bx[0], n);
    }
    in[0] = c->y0;
  }
  /* A forward node's value may be a map it only points at (in[j]): a skip edge's input that no
   * other edge added to, or the cell's zero map for a node no edge reaches. Nothing writes those
   * maps before the timestep's cell output has been used. */
  for (int j = 1; j <= 3; j++) {
    node_sum nd = {c->x[j], NULL, 1, 1, -1};
    const int addb = c->back && j < 3 && !c->bx_zero[j]; /* x_j -> y_j = x_j + bx_j */
    for (; e < c->nfwd && st0[c->edge[e]].to == j; e++) {
      /* the node's last edge: its BatchNorm feeds the node's LIF directly, where one may */
      if (!addb && (e + 1 == c->nfwd || st0[c->edge[e + 1]].to != j)) nd.lif = r->fuse[c->cell][j];
      if ((st = edge_apply(r, w, c->edge[e], in[st0[c->edge[e]].from], &nd, err)) != NN_OK) return st;
    }
    in[j] = c->x[j];
    if (nd.base) {
      if (addb) par_elem(r, 2, c->x[j], nd.base, c->bx[j], n);
      else in[j] = nd.base;
    } else if (nd.fresh && addb) {
      par_elem(r, 0, c->x[j], c->bx[j], NULL, n);
    } else if (nd.fresh) {
      if (!c->zero) { /* once per pass */
        if (!(c->zero = nn_scratch_get((size_t)n * sizeof(float))))
          return nn_fail(err, NN_ENOMEM, "forward: out of memory for %s", cs->path);
        par_elem(r, 3, c->zero, NULL, NULL, n);
      }
      in[j] = c->zero;
    } else if (addb) {
      par_elem(r, 1, c->x[j], c->bx[j], NULL, n);
    }
  }
  if (c->back) {
    /* every edge input (y0, y1, y2, x3) is computed: the old backward state is no longer needed
     * (the backward sums are written out: their edges may read one another's targets) */
    node_sum nd[3];
    for (int i = 0; i < 3; i++) nd[i] = (node_sum){c->bx[i], NULL, 1, 0, -1};
    for (; e < c->nedges; e++) {
      const nn_plan_step *es = &st0[c->edge[e]];
      if ((st = edge_apply(r, w, c->edge[e], in[es->from], &nd[es->to], err)) != NN_OK) return st;
    }
    for (int i = 0; i < 3; i++) c->bx_zero[i] = nd[i].fresh;
  }
  *x3 = in[3];
  return NN_OK;
}

/* Where step i writes a new map: the part's slot for its last step, else the step's buffer. */
static float *out_of(walk *w, int i) { return i == w->hi - 1 && w->slot ? w->slot : w->buf[i]; }

/* Runs step i (not an EDGE: its CELL runs it) on *v, leaving its output in *v. */
static nn_status step_run(run *r, walk *w, int i, val *v, nn_error *err) {
  const nn_plan_step *s = &r->pl->steps[i];
  const float *x = NULL;
  nn_status st = NN_OK;
  float *y;
  switch (s->op) {
  case NN_STEP_CONV:
    y = s->once ? w->keep : r->tmp;
    st = conv_run(r, i, v, y, err);
    *v = (val){y, 0, 0};
    break;
  case NN_STEP_BN:
    if ((st = floats_of(r, v, &x, err)) != NN_OK) break;
    /* a once step's output is kept for every timestep; other BNs write r.tmp (in place when x
     * is there). So the downconv's first BN output lives in r.tmp: its LIF reads it before the
     * conv writes r.tmp, one map less alive (134 MB at the cifar presets' batch 256) */
    y = s->once ? w->keep : x == r->tmp ? (float *)x : r->tmp;
    /* a BN whose only reader is the next step's LIF (the downconv's first, the last one) feeds
     * it directly: y is not written, the LIF's call finds its spikes made (lif_call) */
    if (!s->once && i + 1 < w->hi && r->pl->steps[i + 1].op == NN_STEP_LIF && r->same[r->pl->steps[i + 1].lif] < 0)
      st = bn_lif_run(r, i, x, NULL, r->pl->steps[i + 1].lif, y, err);
    else bn_run(r, i, x, y, NULL);
    *v = (val){y, 0, 0};
    break;
  case NN_STEP_LIF:
    if ((st = floats_of(r, v, &x, err)) != NN_OK) break;
    v->x = NULL, v->spikes = 1;
    st = lif_call(r, s->lif, x, &v->fired, err);
    break;
  case NN_STEP_POOL:
    if ((st = floats_of(r, v, &x, err)) != NN_OK) break;
    y = out_of(w, i);
    par_pool(r, 2, x, r->S * s->in_c, s->in_h, s->in_w, s->k, y);
    *v = (val){y, 0, 0};
    break;
  case NN_STEP_DROPOUT: /* off during scoring and evaluation (docs/model.md [choice]) */
    break;
  case NN_STEP_LINEAR: {
    const float *b = s->bias ? nn_net_step_tensor(r->net, i, 1)->data : NULL;
    if ((st = floats_of(r, v, &x, err)) != NN_OK) break;
    y = out_of(w, i);
    st = par_linear(r, i, x, s->in_c, nn_net_step_tensor(r->net, i, 0)->data, b, s->out_c, y, err);
    *v = (val){y, 0, 0};
    break;
  }
  case NN_STEP_BOOST: { /* AvgPool1d(k) over the outputs: mean of each class's cluster */
    const int64_t K = s->out_c, CL = s->k;
    if ((st = floats_of(r, v, &x, err)) != NN_OK) break;
    y = out_of(w, i);
    for (int64_t j = 0; j < r->S; j++)
      for (int64_t k = 0; k < K; k++) {
        float sum = 0;
        for (int64_t q = 0; q < CL; q++) sum += x[j * K * CL + k * CL + q];
        y[j * K + k] = sum / (float)CL;
      }
    *v = (val){y, 0, 0};
    break;
  }
  case NN_STEP_CELL:
    if ((st = floats_of(r, v, &x, err)) != NN_OK) break;
    st = cell_step(r, w, i, x, &v->x, err);
    v->spikes = 0;
    break;
  default:
    st = nn_fail(err, NN_EINVAL, "forward: step %s (%s) cannot run on its own", s->path, nn_step_op_name(s->op));
    break;
  }
  return st;
}

static void walk_free(walk *w) {
  for (int i = 0; i < NN_PLAN_MAXSTEP; i++) nn_scratch_put(w->buf[i]);
  nn_scratch_put(w->keep);
  for (int c = 0; c < 2; c++) cell_run_free(&w->cells[c]);
}

/* Buffers of a walk over part `part`, its steps up to `end` (spikes only: the last LIF); with
 * `slotted`, the last step writes into w->slot (set per timestep by the caller) and gets no
 * buffer; with `once` = 0 the once steps get none either (their output is given). The caller
 * frees them with walk_free, also when this fails. */
static nn_status walk_init(walk *w, const nn_plan *pl, int part, int end, int slotted, int once, int64_t S,
                           nn_error *err) {
  nn_status st = NN_OK;
  int64_t keep = 0;
  memset(w, 0, sizeof *w);
  w->lo0 = part ? pl->boundary : 0, w->hi = end;
  for (w->lo = w->lo0; w->lo < w->hi && pl->steps[w->lo].once; w->lo++)
    if (once && nn_plan_step_out_numel(&pl->steps[w->lo]) > keep) keep = nn_plan_step_out_numel(&pl->steps[w->lo]);
  if (keep && !(w->keep = nn_scratch_get((size_t)(S * keep) * sizeof(float)))) st = NN_ENOMEM;
  for (int i = w->lo; i < w->hi && st == NN_OK; i++) {
    const nn_plan_step *s = &pl->steps[i];
    if (s->op == NN_STEP_CELL) st = cell_run_init(&w->cells[s->cell], pl, i, S, err);
    else if ((s->op == NN_STEP_POOL || s->op == NN_STEP_LINEAR || s->op == NN_STEP_BOOST) &&
             !(slotted && i == w->hi - 1) && !(w->buf[i] = nn_scratch_get((size_t)(S * nn_plan_step_out_numel(s)) * sizeof(float))))
      st = NN_ENOMEM;
  }
  if (st == NN_ENOMEM) nn_fail(err, NN_ENOMEM, "forward: out of memory for batch %lld", (long long)S);
  return st;
}

/* BN step i and the POOL step i + 1 that alone reads its output, on *v: the BN's output is
 * pooled as it is made (nn_bn_pool), never stored (the downconv's second BN: at the cifar
 * presets' batch 256, a 268 MB map). */
static nn_status bn_pool_run(run *r, walk *w, int i, val *v, nn_error *err) {
  const nn_plan_step *s = &r->pl->steps[i], *ps = &r->pl->steps[i + 1];
  const float *x = NULL;
  nn_status st = floats_of(r, v, &x, err);
  if (st != NN_OK) return st;
  float *ab = nn_scratch_get((size_t)(2 * s->in_c) * sizeof(float)), *y = out_of(w, i + 1);
  if (!ab) return nn_fail(err, NN_ENOMEM, "forward: out of memory for %s", s->path);
  bn_terms(r, i, x, ab);
  par_job j;
  memset(&j, 0, sizeof j);
  j.x = x, j.w = ab, j.y = y, j.a = s->in_h, j.b = s->in_w, j.c = s->in_c, j.flag = (int)ps->k;
  nn_par_for(r->par, r->S, 1, bn_pool_piece, &j);
  nn_scratch_put(ab);
  *v = (val){y, 0, 0};
  return job_status(&j, err);
}

/* Runs steps [lo, hi) of a walk on *v (a CELL runs its edges and steps over them). */
static nn_status walk_steps(run *r, walk *w, int lo, int hi, val *v, nn_error *err) {
  nn_status st = NN_OK;
  for (int i = lo; i < hi && st == NN_OK;) {
    const nn_plan_step *s = &r->pl->steps[i];
    if (s->op == NN_STEP_BN && !s->once && i + 1 < hi && r->pl->steps[i + 1].op == NN_STEP_POOL &&
        r->pl->steps[i + 1].in_c == s->in_c && r->pl->steps[i + 1].k >= 1) {
      st = bn_pool_run(r, w, i, v, err);
      i += 2;
      continue;
    }
    st = step_run(r, w, i, v, err);
    i += 1 + (s->op == NN_STEP_CELL ? s->nsub : 0);
  }
  return st;
}

static void reset_stats(nn_net *net, int part) {
  for (int i = 0; i < net->plan.nlifs; i++)
    if (net->plan.steps[net->plan.lif_step[i]].part == part) net->lifs[i].fired = net->lifs[i].seen = 0;
}

static nn_status check_finite(const nn_tensor *x, const char *what, nn_error *err) {
  for (int64_t i = 0; i < x->numel; i++)
    if (!isfinite(x->data[i]))
      return nn_fail(err, NN_EINVAL, "forward: %s element %lld is not finite", what, (long long)i + 1);
  return NN_OK;
}

/* The input's shape checked and its values finite. */
static nn_status check_input(const nn_plan *pl, const nn_tensor *x, nn_error *err) {
  const nn_net_params *p = &pl->p;
  if (x->ndim != 4 || x->shape[0] < 1 || x->shape[1] != p->in_ch || x->shape[2] != p->in_h ||
      x->shape[3] != p->in_w) {
    char buf[64];
    return nn_fail(err, NN_EINVAL, "forward: input has shape %s, expected Sx%lldx%lldx%lld (S >= 1)",
                   nn_tensor_shape_str(x, buf, sizeof buf), (long long)p->in_ch, (long long)p->in_h,
                   (long long)p->in_w);
  }
  return check_finite(x, "input", err);
}

/* The number of once steps at the start of the plan (the stem). */
static int once_steps(const nn_plan *pl) {
  int n = 0;
  while (n < pl->boundary && pl->steps[n].once) n++;
  return n;
}

nn_status nn_net_forward_stem(nn_net *net, const nn_tensor *x, const nn_forward_opts *o, nn_tensor **out,
                              nn_error *err) {
  const nn_plan *pl = &net->plan;
  const int n = once_steps(pl);
  nn_status st;
  *out = NULL;
  if (n == 0) return nn_fail(err, NN_EINVAL, "forward: the net has no once steps");
  if ((st = check_input(pl, x, err)) != NN_OK) return st;
  const nn_plan_step *last = &pl->steps[n - 1];
  const int64_t S = x->shape[0];
  nn_tensor *y = nn_tensor_new4(4, S, last->out_c, last->out_h, last->out_w, err);
  if (!y) return err ? err->code : NN_ENOMEM;
  run r;
  walk w;
  if ((st = run_init(&r, net, o, S, err)) != NN_OK) {
    nn_tensor_free(y);
    return st;
  }
  st = walk_init(&w, pl, 0, n, 0, 1, S, err);
  val v = {x->data, 0, 0};
  if (st == NN_OK) st = walk_steps(&r, &w, 0, n, &v, err);
  if (st == NN_OK) {
    const float *f;
    if ((st = floats_of(&r, &v, &f, err)) == NN_OK) memcpy(y->data, f, (size_t)y->numel * sizeof(float));
  }
  walk_free(&w);
  run_free(&r);
  if (st != NN_OK) {
    nn_tensor_free(y);
    return st;
  }
  *out = y;
  return NN_OK;
}

int nn_net_same_stem(const nn_net *a, const nn_net *b, int train) {
  const nn_plan *pa = &a->plan, *pb = &b->plan;
  const int n = once_steps(pa);
  if (n == 0 || n != once_steps(pb)) return 0;
  for (int i = 0; i < n; i++) {
    const nn_plan_step *s = &pa->steps[i], *u = &pb->steps[i];
    if (s->op != u->op || s->in_c != u->in_c || s->in_h != u->in_h || s->in_w != u->in_w || s->out_c != u->out_c ||
        s->out_h != u->out_h || s->out_w != u->out_w || s->k != u->k || s->stride != u->stride || s->pad != u->pad ||
        s->bias != u->bias || s->nparam != u->nparam)
      return 0;
    /* the tensors the step reads: all of them but, in training mode, a BN's running statistics */
    const int reads = s->op == NN_STEP_BN && train ? 2 : s->nparam;
    for (int k = 0; k < reads; k++) {
      const nn_tensor *ta = nn_net_step_tensor(a, i, k), *tb = nn_net_step_tensor(b, i, k);
      if (ta->numel != tb->numel || memcmp(ta->data, tb->data, (size_t)ta->numel * sizeof(float))) return 0;
    }
  }
  return 1;
}

nn_status nn_net_forward_prefix(nn_net *net, const nn_tensor *x, const nn_forward_opts *o,
                                nn_tensor **cellb_in, nn_error *err) {
  return nn_net_forward_prefix_stem(net, x, NULL, o, cellb_in, err);
}

nn_status nn_net_forward_prefix_stem(nn_net *net, const nn_tensor *x, const nn_tensor *stem, const nn_forward_opts *o,
                                     nn_tensor **cellb_in, nn_error *err) {
  const nn_plan *pl = &net->plan;
  const nn_plan_step *last = &pl->steps[pl->boundary - 1];
  const int64_t T = pl->p.timesteps;
  nn_status st;
  *cellb_in = NULL;
  if ((st = check_input(pl, x, err)) != NN_OK) return st;
  const int64_t S = x->shape[0], per = S * nn_plan_step_out_numel(last);
  const int n = once_steps(pl);
  if (stem && (n == 0 || stem->numel != S * nn_plan_step_out_numel(&pl->steps[n - 1])))
    return nn_fail(err, NN_EINVAL, "forward: the given stem output does not fit this net and batch");
  /* every timestep's slot is written below (and the tensor freed if one is not) */
  const int64_t shp[5] = {T, S, last->out_c, last->out_h, last->out_w};
  nn_tensor *out = nn_tensor_new_unfilled(5, shp, err);
  if (!out) return err ? err->code : NN_ENOMEM;
  run r;
  walk w;
  if ((st = run_init(&r, net, o, S, err)) != NN_OK) {
    nn_tensor_free(out);
    return st;
  }
  reset_stats(net, 0);
  st = walk_init(&w, pl, 0, pl->boundary, 1, !stem, S, err);
  val v0 = {stem ? stem->data : x->data, 0, 0};
  if (st == NN_OK && !stem) st = walk_steps(&r, &w, w.lo0, w.lo, &v0, err); /* the stem: once (docs/model.md) */
  for (int t = 0; t < T && st == NN_OK; t++) {
    val v = v0;
    r.step = t;
    if (nn_cancelled()) {
      st = nn_fail(err, NN_EINTR, "forward: interrupted");
      break;
    }
    w.slot = out->data + t * per;
    if ((st = walk_steps(&r, &w, w.lo, w.hi, &v, err)) != NN_OK) break;
    if (v.x != w.slot) { /* the last step is not one that writes a new map (a BN, a LIF, ...) */
      const float *y;
      if ((st = floats_of(&r, &v, &y, err)) != NN_OK) break;
      par_elem(&r, 0, w.slot, y, NULL, per);
    }
  }
  walk_free(&w);
  run_free(&r);
  if (st != NN_OK) {
    nn_tensor_free(out);
    return st;
  }
  *cellb_in = out;
  return NN_OK;
}

nn_status nn_net_forward_suffix(nn_net *net, const nn_tensor *cellb_in, const nn_forward_opts *o,
                                nn_tensor **out, nn_error *err) {
  const nn_plan *pl = &net->plan;
  const nn_plan_step *first = &pl->steps[pl->boundary], *last = &pl->steps[pl->nsteps - 1];
  const int64_t T = pl->p.timesteps;
  nn_status st;
  *out = NULL;
  if (cellb_in->ndim != 5 || cellb_in->shape[0] != T || cellb_in->shape[1] < 1 ||
      cellb_in->shape[2] != first->in_c || cellb_in->shape[3] != first->in_h || cellb_in->shape[4] != first->in_w) {
    char buf[64];
    return nn_fail(err, NN_EINVAL, "forward: cell B input has shape %s, expected %lldxSx%lldx%lldx%lld",
                   nn_tensor_shape_str(cellb_in, buf, sizeof buf), (long long)T, (long long)first->in_c,
                   (long long)first->in_h, (long long)first->in_w);
  }
  const int64_t S = cellb_in->shape[1], per = S * nn_plan_step_in_numel(first);
  /* spikes only: nothing after the last LIF makes spikes, so the walk stops there */
  const int spikes_only = o && o->spikes_only;
  const int end = spikes_only ? pl->lif_step[pl->nlifs - 1] + 1 : pl->nsteps;
  const int64_t K = nn_plan_step_out_numel(last);
  nn_tensor *res = spikes_only ? NULL : nn_tensor_new4(2, S, K, 0, 0, err);
  if (!res && !spikes_only) return err ? err->code : NN_ENOMEM;
  run r;
  walk w;
  if ((st = run_init(&r, net, o, S, err)) != NN_OK) {
    nn_tensor_free(res);
    return st;
  }
  reset_stats(net, 1);
  st = walk_init(&w, pl, 1, end, 0, 1, S, err);
  for (int t = 0; t < T && st == NN_OK; t++) {
    val v = {cellb_in->data + t * per, 0, 0};
    const float *y;
    r.step = t;
    if (nn_cancelled()) {
      st = nn_fail(err, NN_EINTR, "forward: interrupted");
      break;
    }
    if ((st = walk_steps(&r, &w, w.lo, w.hi, &v, err)) != NN_OK || spikes_only) continue;
    /* the output: the last step's, averaged over T */
    if ((st = floats_of(&r, &v, &y, err)) != NN_OK) break;
    for (int64_t i = 0; i < S * K; i++) res->data[i] += y[i];
  }
  for (int64_t i = 0; res && i < res->numel; i++) res->data[i] /= (float)T;
  walk_free(&w);
  run_free(&r);
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
