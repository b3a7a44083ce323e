/* bench_forward.c: speed and memory of the spiking forward pass:
 * sgemm GFLOP/s on this machine, dense conv GFLOP/s on the cells' shapes, event-driven vs dense
 * conv at several firing rates, whole-network images/s and GFLOP/s (fashion-mnist with an
 * all-conv3x3 cell, cifar100 with SNASNet's published cell), and the peak RSS of a cifar100
 * forward at batch 256 (measured in a child process). Run by scripts/bench-forward.
 * Usage: bench_forward [--quick | --conv | --events | --linear | --pool | --bn | --fed]
 *   --fed: a BatchNorm's output read by a LIF or the 2x2 pool at the paper's sizes, stored and
 *   read back (nn_bn_forward_channels, then nn_lif_step_bits / nn_avgpool) against made and
 *   consumed a chunk at a time (nn_bn_terms_channels, then nn_bn_lif_bits / nn_bn_pool), on 2
 *   threads as the forward splits them (alternating, medians of 5); checks the same bits.
 *   --events: nn_conv2d_events alone on the paper cells' 3x3 and 1x1 shapes and on the SNASNet setting's
 *   16- and 32-channel 3x3 and 1x1 shapes, the scatter band kernel against the output-stationary
 *   one in the same run (alternating, medians of 9).
 *   --linear: the classifier's Linear alone, the dense kernel against the sparse one at several
 *   input densities (the SNASNet setting's and the paper size's shapes), then whole SNASNet-
 *   setting candidates scored with the sparse path on and off.
 *   --pool: the 3x3 average pool of the cell edges on the presets' maps, the general AVX-512
 *   kernel against the one for rows of at most 32 floats, and the downconv's 2x2 pool, the plain
 *   loop against the AVX-512 kernel (alternating, medians of 9).
 *   --bn: BatchNorm with batch statistics on the paper-size maps, on one and two threads, next to
 *   a copy of the same map on two threads (what the memory takes for one read and one write). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "neuronas/nn_blas.h"
#include "neuronas/nn_fitness.h"
#include "neuronas/nn_net.h"
#include "nn_ops.h"

/* CPU time of this process: with OpenBLAS on one thread, rates are per core and robust to other
 * processes sharing the machine (wall time is printed for whole forwards too). */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *randv(int64_t n, unsigned seed) {
  float *p = malloc((size_t)n * sizeof *p);
  nn_rng r = nn_rng_seed(seed);
  for (int64_t i = 0; i < n; i++) p[i] = nn_rng_uniformf(&r) * 2 - 1;
  return p;
}

/* best-of-reps seconds of one sgemm M x N x K */
static double sgemm_gflops(int64_t M, int64_t N, int64_t K, int reps) {
  float *a = randv(M * K, 1), *b = randv(K * N, 2), *c = randv(M * N, 3);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = now();
    nn_sgemm(0, 0, M, N, K, 1, a, K, b, N, 0, c, N, NULL);
    t = now() - t;
    if (t < best) best = t;
  }
  free(a), free(b), free(c);
  return 2.0 * (double)M * (double)N * (double)K / best / 1e9;
}

typedef struct conv_case {
  const char *what;
  nn_conv_geom g;
} conv_case;

static double conv_seconds(const nn_conv_geom *g, const float *x, const float *w, float *y, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = now();
    nn_conv2d(g, x, w, y, NULL);
    t = now() - t;
    if (t < best) best = t;
  }
  return best;
}

static void conv_bench(const conv_case *cc, int reps, double sgemm_rate) {
  const nn_conv_geom *g = &cc->g;
  int64_t neurons = g->c * g->h * g->w, nx = g->n * neurons, nw = g->o * g->c * g->k * g->k;
  int64_t ny = g->n * g->o * nn_conv_ho(g) * nn_conv_wo(g);
  double flop = 2.0 * (double)nw * (double)(nn_conv_ho(g) * nn_conv_wo(g)) * (double)g->n;
  float *x = malloc((size_t)nx * sizeof *x), *w = randv(nw, 5), *y = malloc((size_t)ny * sizeof *y);
  float *wcl = malloc((size_t)nw * sizeof *wcl);
  uint64_t *bits = malloc((size_t)(g->n * nn_spike_words(neurons)) * sizeof *bits);
  nn_rng r = nn_rng_seed(9);
  for (int64_t i = 0; i < nx; i++) x[i] = nn_rng_uniform(&r) < 0.5 ? 1.0f : 0.0f;
  double td = conv_seconds(g, x, w, y, reps);
  printf("  %-38s dense %7.2f ms  %6.1f GFLOP/s  (%3.0f%% of sgemm)\n", cc->what, td * 1e3, flop / td / 1e9,
         100.0 * flop / td / 1e9 / sgemm_rate);
  static const double rates[] = {0.02, 0.05, 0.10, 0.20, 0.30};
  for (size_t k = 0; k < sizeof rates / sizeof *rates; k++) {
    for (int64_t i = 0; i < nx; i++) x[i] = nn_rng_uniform(&r) < rates[k] ? 1.0f : 0.0f;
    nn_spikes_pack(x, g->n, neurons, bits);
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
      double t = now();
      nn_conv2d_weight_cl(g, w, wcl);
      nn_conv2d_events(g, bits, wcl, y, NULL);
      t = now() - t;
      if (t < best) best = t;
    }
    printf("  %-38s events at %4.0f%% firing %7.2f ms  = %5.2fx dense\n", "", 100 * rates[k], best * 1e3, td / best);
  }
  free(x), free(w), free(y), free(wcl), free(bits);
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* --events: the two band kernels of nn_conv2d_events on one shape and firing rate, called
 * alternately (the machine may be shared: medians of 9 calls each); checks the outputs agree */
static void events_kernels(const char *what, const nn_conv_geom *g, double rate) {
  const int64_t neurons = g->c * g->h * g->w, nw = g->o * g->c * g->k * g->k, ny = g->n * g->o * g->h * g->w;
  float *x = malloc((size_t)(g->n * neurons) * sizeof *x), *w = randv(nw, 5), *wcl = malloc((size_t)nw * sizeof *wcl);
  float *y0 = malloc((size_t)ny * sizeof *y0), *y1 = malloc((size_t)ny * sizeof *y1);
  uint64_t *bits = malloc((size_t)(g->n * nn_spike_words(neurons)) * sizeof *bits);
  nn_rng r = nn_rng_seed(11);
  for (int64_t i = 0; i < g->n * neurons; i++) x[i] = nn_rng_uniform(&r) < rate ? 1.0f : 0.0f;
  nn_spikes_pack(x, g->n, neurons, bits);
  nn_conv2d_weight_cl(g, w, wcl);
  enum { REPS = 9 };
  double t0[REPS], t1[REPS];
  for (int rep = 0; rep < REPS; rep++) {
    nn_conv2d_events_set_kernel(NN_EVENTS_SCATTER);
    double t = now();
    nn_conv2d_events(g, bits, wcl, y0, NULL);
    t0[rep] = now() - t;
    nn_conv2d_events_set_kernel(NN_EVENTS_GATHER);
    t = now();
    nn_conv2d_events(g, bits, wcl, y1, NULL);
    t1[rep] = now() - t;
  }
  nn_conv2d_events_set_kernel(NN_EVENTS_AUTO);
  qsort(t0, REPS, sizeof *t0, cmp_double), qsort(t1, REPS, sizeof *t1, cmp_double);
  printf("  %-34s %3.0f%% firing: scatter %7.2f ms (%.2f-%.2f), gather %7.2f ms (%.2f-%.2f): %.2fx%s\n", what,
         100 * rate, t0[REPS / 2] * 1e3, t0[0] * 1e3, t0[REPS - 1] * 1e3, t1[REPS / 2] * 1e3, t1[0] * 1e3,
         t1[REPS - 1] * 1e3, t0[REPS / 2] / t1[REPS / 2],
         memcmp(y0, y1, (size_t)ny * sizeof *y0) ? "  OUTPUTS DIFFER" : "");
  free(x), free(w), free(wcl), free(y0), free(y1), free(bits);
}

/* --pool, the downconv's 2x2 pool: nn_avgpool (k = 2) with the plain loop and with the AVX-512
 * kernel (nn_ops_set_avx512), alternately, medians of 9; checks that the outputs agree */
static void pool2_kernels(const char *what, int64_t planes, int64_t h, int64_t w) {
  const int64_t n = planes * h * w, m = planes * (h / 2) * (w / 2);
  float *x = randv(n, 7), *y[2];
  for (int k = 0; k < 2; k++) y[k] = malloc((size_t)m * sizeof(float));
  enum { REPS = 9 };
  double t[2][REPS];
  for (int rep = 0; rep < REPS; rep++)
    for (int k = 0; k < 2; k++) {
      nn_ops_set_avx512(k);
      double t0 = now();
      nn_avgpool(x, planes, h, w, 2, y[k]);
      t[k][rep] = now() - t0;
    }
  nn_ops_set_avx512(1);
  for (int k = 0; k < 2; k++) qsort(t[k], REPS, sizeof(double), cmp_double);
  const double per = 1e9 / (double)m * 16; /* ns per 16 outputs */
  printf("  %-30s 2x2: %6.2f -> %6.2f ns per 16 outputs (%.2fx)%s\n", what, t[0][REPS / 2] * per,
         t[1][REPS / 2] * per, t[0][REPS / 2] / t[1][REPS / 2],
         memcmp(y[0], y[1], (size_t)m * sizeof(float)) ? "  OUTPUTS DIFFER" : "");
  free(x), free(y[0]), free(y[1]);
}

/* --bn: wall-clock seconds (the two-thread figures run two threads) */
static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct bn_part {
  const float *x;
  float *y;
  int64_t n, c, hw, c0, c1;
  float *gamma, *beta, *rmean, *rvar;
} bn_part;

/* channels [c0, c1) of a training-mode BatchNorm, as the forward splits it over threads */
static void *bn_part_run(void *arg) {
  bn_part *b = arg;
  nn_bn_forward_channels(b->x, b->n, b->c, b->hw, b->c0, b->c1, b->gamma, b->beta, b->rmean, b->rvar, 1, 0.1,
                         1e-5, b->y, NULL, NULL);
  return NULL;
}

/* floats [c0, c1) of x copied into y */
static void *copy_part_run(void *arg) {
  bn_part *b = arg;
  memcpy(b->y + b->c0, b->x + b->c0, (size_t)(b->c1 - b->c0) * sizeof(float));
  return NULL;
}

/* median of 5 wall times of fn over [0, c) (one thread) or its halves (two, cut at a multiple
 * of `grain`) */
static double two_halves(void *(*fn)(void *), bn_part base, int64_t c, int64_t grain, int threads) {
  enum { REPS = 5 };
  double t[REPS];
  for (int r = 0; r < REPS; r++) {
    bn_part a = base, b = base;
    a.c0 = 0, a.c1 = threads == 1 ? c : c / 2 / grain * grain, b.c0 = a.c1, b.c1 = c;
    pthread_t th;
    const double t0 = wall_now();
    if (threads == 2 && pthread_create(&th, NULL, fn, &b) != 0) threads = 1, a.c1 = c;
    fn(&a);
    if (threads == 2) pthread_join(th, NULL);
    t[r] = wall_now() - t0;
  }
  qsort(t, REPS, sizeof *t, cmp_double);
  return t[REPS / 2];
}

static void bn_vs_copy(const char *what, int64_t n, int64_t c, int64_t hw) {
  const int64_t cnt = n * c * hw;
  float *x = randv(cnt, 11), *y = malloc((size_t)cnt * sizeof *y);
  float *gamma = malloc((size_t)c * sizeof *gamma), *beta = calloc((size_t)c, sizeof *beta);
  float *rm = calloc((size_t)c, sizeof *rm), *rv = malloc((size_t)c * sizeof *rv);
  for (int64_t i = 0; i < c; i++) gamma[i] = 1, rv[i] = 1;
  memset(y, 0, (size_t)cnt * sizeof *y); /* pages in */
  bn_part base = {x, y, n, c, hw, 0, c, gamma, beta, rm, rv};
  const double b1 = two_halves(bn_part_run, base, c, 16, 1), b2 = two_halves(bn_part_run, base, c, 16, 2);
  const double cp = two_halves(copy_part_run, base, cnt, 16, 2);
  printf("  %-34s %4.0f MB: BatchNorm %7.2f ms on 1 thread, %7.2f ms on 2; a copy on 2 threads %6.2f ms "
         "(%4.1f GB/s read + write): BatchNorm = %.1f copies\n",
         what, (double)cnt * 4 / 1e6, 1e3 * b1, 1e3 * b2, 1e3 * cp, 2 * (double)cnt * 4 / cp / 1e9, b2 / cp);
  free(x), free(y), free(gamma), free(beta), free(rm), free(rv);
}

/* --fed: one map x (n x c x h x w) through a BatchNorm into a LIF (pool = 0) or a 2x2 pool
 * (pool = 1), stored or fed. Each phase runs on 2 threads: the BatchNorm's channels cut at a
 * multiple of 16, the LIF's or the pool's samples in halves. */
typedef struct fed_job {
  int phase, pool;
  int64_t n, c, h, w, lo, hi;
  const float *x;
  float *y, *v, *ta, *tb, *tmp, *g, *b, *rm, *rv, *out;
  uint64_t *bits;
} fed_job;

static void *fed_part(void *arg) {
  fed_job *j = arg;
  const int64_t hw = j->h * j->w, words = nn_spike_words(j->c * hw);
  switch (j->phase) {
  case 0: /* stored: BatchNorm channels [lo, hi) */
    nn_bn_forward_channels(j->x, j->n, j->c, hw, j->lo, j->hi, j->g, j->b, j->rm, j->rv, 1, 0.1, 1e-5, j->y, NULL, NULL);
    break;
  case 1: /* stored: the LIF or the pool on samples [lo, hi) */
    if (j->pool) nn_avgpool(j->y + j->lo * j->c * hw, (j->hi - j->lo) * j->c, j->h, j->w, 2, j->out + j->lo * j->c * hw / 4);
    else nn_lif_step_bits(j->v + j->lo * j->c * hw, j->y + j->lo * j->c * hw, j->hi - j->lo, j->c * hw, 4.0f / 3, 1.0f, 0,
                          j->bits + j->lo * words);
    break;
  case 2: /* fed: the terms of channels [lo, hi) */
    nn_bn_terms_channels(j->x, j->n, j->c, hw, j->lo, j->hi, j->g, j->b, j->rm, j->rv, 1, 0.1, 1e-5, j->ta, j->tb, NULL);
    break;
  default: /* fed: samples [lo, hi) */
    if (j->pool) nn_bn_pool(j->x, j->lo, j->hi, j->c, j->h, j->w, 2, j->ta, j->tb, j->tmp, j->out);
    else nn_bn_lif_bits(j->x, NULL, j->lo, j->hi, j->c, hw, j->ta, j->tb, j->tmp, j->v, 4.0f / 3, 1.0f, 0, j->bits);
    break;
  }
  return NULL;
}

/* phase over [0, total) on 2 threads, the cut at a multiple of grain; the second thread's
 * chunk buffer is tmp2 */
static void fed_phase(fed_job base, int phase, int64_t total, int64_t grain, float *tmp2) {
  fed_job a = base, b = base;
  a.phase = b.phase = phase, b.tmp = tmp2;
  a.lo = 0, a.hi = total / 2 / grain * grain, b.lo = a.hi, b.hi = total;
  pthread_t th;
  const int two = pthread_create(&th, NULL, fed_part, &b) == 0;
  fed_part(&a);
  if (two) pthread_join(th, NULL);
  else fed_part(&b);
}

static void bn_fed(const char *what, int64_t n, int64_t c, int64_t h, int64_t w, int pool) {
  const int64_t hw = h * w, cnt = n * c * hw, words = nn_spike_words(c * hw), outn = pool ? cnt / 4 : 1;
  float *x = randv(cnt, 21), *y = malloc((size_t)cnt * sizeof *y), *v[2], *out[2];
  uint64_t *bits[2];
  float *g = malloc((size_t)c * sizeof *g), *b = calloc((size_t)c, sizeof *b), *rm = calloc((size_t)c, sizeof *rm),
        *rv = malloc((size_t)c * sizeof *rv), *ta = malloc((size_t)c * sizeof *ta), *tb = malloc((size_t)c * sizeof *tb);
  const int64_t tf = pool ? nn_bn_pool_tmp_floats(c, hw) : nn_bn_lif_tmp_floats(c, hw);
  float *tmp[2] = {malloc((size_t)tf * sizeof(float)), malloc((size_t)tf * sizeof(float))};
  for (int64_t i = 0; i < c; i++) g[i] = 1.5f, b[i] = 0.5f, rv[i] = 1;
  for (int k = 0; k < 2; k++) {
    v[k] = calloc((size_t)cnt, sizeof(float)), out[k] = calloc((size_t)outn, sizeof(float));
    bits[k] = calloc((size_t)(n * words), sizeof(uint64_t));
  }
  memset(y, 0, (size_t)cnt * sizeof *y);
  enum { REPS = 5 };
  double t[2][REPS];
  for (int r = 0; r < REPS; r++)
    for (int k = 0; k < 2; k++) {
      fed_job base = {0, pool, n, c, h, w, 0, 0, x, y, v[k], ta, tb, tmp[0], g, b, rm, rv, out[k], bits[k]};
      const double t0 = wall_now();
      fed_phase(base, k ? 2 : 0, c, 16, tmp[1]); /* the BatchNorm, or its terms */
      fed_phase(base, k ? 3 : 1, n, 1, tmp[1]);  /* the LIF or the pool, stored or fed */
      t[k][r] = wall_now() - t0;
    }
  qsort(t[0], REPS, sizeof(double), cmp_double), qsort(t[1], REPS, sizeof(double), cmp_double);
  const int same = pool ? memcmp(out[0], out[1], (size_t)outn * sizeof(float)) == 0
                        : memcmp(v[0], v[1], (size_t)cnt * sizeof(float)) == 0 &&
                              memcmp(bits[0], bits[1], (size_t)(n * words) * sizeof(uint64_t)) == 0;
  printf("  %-40s %4.0f MB: stored %7.2f ms, fed %7.2f ms (%.2fx); same bits: %s\n", what, (double)cnt * 4 / 1e6,
         1e3 * t[0][REPS / 2], 1e3 * t[1][REPS / 2], t[0][REPS / 2] / t[1][REPS / 2], same ? "yes" : "NO");
  for (int k = 0; k < 2; k++) free(v[k]), free(out[k]), free(bits[k]), free(tmp[k]);
  free(x), free(y), free(g), free(b), free(rm), free(rv), free(ta), free(tb);
}

/* --pool: nn_avgpool3x3 and nn_avgpool3x3_add on planes x h x w (the presets' cell maps), the
 * general AVX-512 kernel and the one for short rows called alternately (medians of 9 calls
 * each); checks that their outputs agree */
static void pool_kernels(const char *what, int64_t planes, int64_t h, int64_t w) {
  const int64_t n = planes * h * w;
  float *x = randv(n, 7), *y[2], *a[2];
  for (int k = 0; k < 2; k++) y[k] = malloc((size_t)n * sizeof(float)), a[k] = randv(n, 9);
  enum { REPS = 9 };
  double t[2][2][REPS];
  for (int rep = 0; rep < REPS; rep++)
    for (int k = 0; k < 2; k++) {
      nn_avgpool3x3_set_narrow(k);
      double t0 = now();
      nn_avgpool3x3(x, planes, h, w, y[k]);
      t[k][0][rep] = now() - t0;
      t0 = now();
      nn_avgpool3x3_add(x, planes, h, w, a[k]);
      t[k][1][rep] = now() - t0;
    }
  nn_avgpool3x3_set_narrow(1);
  for (int k = 0; k < 2; k++)
    for (int m = 0; m < 2; m++) qsort(t[k][m], REPS, sizeof(double), cmp_double);
  const double per = 1e9 / (double)n * 16; /* ns per 16 outputs */
  printf("  %-30s pool: %6.2f -> %6.2f ns per 16 outputs (%.2fx), pool-and-add: %6.2f -> %6.2f (%.2fx)%s\n", what,
         t[0][0][REPS / 2] * per, t[1][0][REPS / 2] * per, t[0][0][REPS / 2] / t[1][0][REPS / 2],
         t[0][1][REPS / 2] * per, t[1][1][REPS / 2] * per, t[0][1][REPS / 2] / t[1][1][REPS / 2],
         memcmp(y[0], y[1], (size_t)n * sizeof(float)) || memcmp(a[0], a[1], (size_t)n * sizeof(float))
             ? "  OUTPUTS DIFFER"
             : "");
  free(x);
  for (int k = 0; k < 2; k++) free(y[k]), free(a[k]);
}

/* --linear: the classifier's first Linear alone, one call as the forward makes it per timestep:
 * the dense kernel (input transposed, then the outputs) against the sparse one (nonzeros
 * counted and listed, then the outputs) on pooled-spike inputs (k/4, k = 1..4) of a given
 * density, alternating, medians of `reps` calls; the transposed weights the sparse path builds
 * once per pass are timed apart and charged to a pass of T = 5 calls */
static void linear_paths(int64_t n, int64_t in, int64_t out, double density, int reps) {
  float *x = malloc((size_t)(n * in) * sizeof *x), *w = randv(in * out, 7), *b = randv(out, 8);
  float *y0 = malloc((size_t)(n * out) * sizeof *y0), *y1 = malloc((size_t)(n * out) * sizeof *y1);
  float *xt = malloc((size_t)(nn_linear_xt_stride(n) * in) * sizeof *xt);
  float *wt = aligned_alloc(64, ((size_t)nn_linear_wt_floats(in, out) * sizeof *wt + 63) / 64 * 64); /* as nn_scratch gives */
  nn_linear_term *tm = malloc((size_t)(n * (in + NN_LINEAR_TERMS_SLACK)) * sizeof *tm);
  int64_t *cnt = malloc((size_t)n * sizeof *cnt), *at = malloc((size_t)n * sizeof *at), nonzeros = 0;
  nn_rng r = nn_rng_seed(13);
  for (int64_t i = 0; i < n * in; i++)
    x[i] = nn_rng_uniform(&r) < density ? (float)(1 + (int)(nn_rng_uniform(&r) * 4)) / 4.0f : 0.0f;
  double *td = malloc((size_t)reps * sizeof *td), *ts = malloc((size_t)reps * sizeof *ts);
  double *tw = malloc((size_t)reps * sizeof *tw);
  for (int rep = 0; rep < reps; rep++) {
    double t = now();
    nn_linear_xt(x, n, in, 0, in, xt);
    nn_linear_outputs(xt, n, in, w, b, out, 0, out, y0, NULL);
    td[rep] = now() - t;
    t = now();
    nn_linear_wt(w, in, out, 0, (out + NN_LINEAR_WT_TILE - 1) / NN_LINEAR_WT_TILE, wt);
    tw[rep] = now() - t;
    t = now();
    nonzeros = nn_linear_count(x, in, 0, n, cnt);
    nn_linear_terms_at(cnt, n, at);
    nn_linear_terms(x, in, 0, n, at, tm);
    nn_linear_sparse(x, n, in, tm, at, cnt, wt, b, out, 0, out, y1, NULL);
    ts[rep] = now() - t;
  }
  qsort(td, (size_t)reps, sizeof *td, cmp_double), qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
  qsort(tw, (size_t)reps, sizeof *tw, cmp_double);
  const double d = td[reps / 2], sp = ts[reps / 2], wtm = tw[reps / 2];
  printf("  %3lld x %5lld -> %4lld at %4.1f%% nonzero: dense %7.3f ms (%.3f-%.3f), sparse %7.3f ms (%.3f-%.3f) = "
         "%5.2fx; weights transposed %6.3f ms; a pass of 5 calls %6.2f -> %6.2f ms = %5.2fx%s\n",
         (long long)n, (long long)in, (long long)out, 100.0 * (double)nonzeros / (double)(n * in), d * 1e3,
         td[0] * 1e3, td[reps - 1] * 1e3, sp * 1e3, ts[0] * 1e3, ts[reps - 1] * 1e3, d / sp, wtm * 1e3, 5 * d * 1e3,
         (wtm + 5 * sp) * 1e3, 5 * d / (wtm + 5 * sp), memcmp(y0, y1, (size_t)(n * out) * sizeof *y0) ? "  OUTPUTS DIFFER" : "");
  free(x), free(w), free(b), free(y0), free(y1), free(xt), free(wt), free(tm), free(cnt), free(at), free(td), free(ts), free(tw);
}

/* --linear, the whole candidate: SNASNet's scaled-down setting (cifar100 preset with 16
 * channels, batch 32, T 5, FxP32) scored by nn_fitness_eval with the sparse path on and off,
 * alternately on the same nets (each cell `reps` times each way), CPU time of this thread;
 * the scores must agree bit for bit */
static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void linear_candidates(int reps) {
  static const char *const cells[] = {"0302 0030 3003 0000", "0303 0030 2002 0200", "0101 0020 1002 0000",
                                      "0202 0030 0003 0000"};
  nn_error err;
  nn_net_params p = nn_net_params_default();
  nn_net_params_preset(&p, "cifar100", &err);
  p.channels = 16;
  nn_tensor *x = nn_tensor_new4(4, 32, 3, 32, 32, &err);
  nn_rng r = nn_rng_seed(5);
  nn_tensor_normal(x, &r, 0, 1);
  const nn_tensor *b[1] = {x};
  double t[2] = {0, 0};
  int same = 1, runs = 0;
  for (size_t c = 0; c < sizeof cells / sizeof *cells; c++) {
    if (nn_cell_parse(cells[c], NN_CELL_FORM_AUTO, &p.cell_a, &err) != NN_OK) {
      fprintf(stderr, "%s\n", err.msg);
      continue;
    }
    p.cell_b = p.cell_a;
    nn_net *net = nn_net_new(&p, &err);
    for (int rep = 0; rep < 2 * reps && net; rep++) {
      const int on = rep % 2 == (int)(c % 2); /* which goes first alternates */
      double s;
      nn_linear_set_sparse(on ? NN_LINEAR_SPARSE_DENSITY : 0);
      const double t0 = thread_cpu();
      if (nn_fitness_eval(net, b, 1, NULL, &s, NULL, &err) != NN_OK) fprintf(stderr, "%s\n", err.msg);
      t[on] += thread_cpu() - t0;
      static double first;
      if (rep == 0) first = s;
      same &= memcmp(&s, &first, sizeof s) == 0;
    }
    runs += reps;
    nn_net_free(net);
  }
  nn_linear_set_sparse(NN_LINEAR_SPARSE_DENSITY);
  if (runs)
    printf("  SNASNet setting, %d cells x %d scores each way: nn_fitness_eval %.2f ms CPU dense, %.2f ms sparse = %.3fx; "
           "scores bit-identical: %s\n",
           runs / reps, reps, 1e3 * t[0] / runs, 1e3 * t[1] / runs, t[0] / t[1], same ? "yes" : "NO");
  nn_tensor_free(x);
}

/* dense-equivalent FLOPs of one forward at batch S */
static double net_flop(nn_net *net, int64_t S) {
  const nn_net_params *p = nn_net_params_of(net);
  double f = 0;
  for (size_t i = 0; i < nn_net_layer_count(net); i++) {
    const nn_layer_desc *d = nn_net_layer(net, i);
    double per = 2.0 * (double)d->weights * (double)(d->out_dim * d->out_dim);
    f += per * (double)S * (strcmp(d->name, "stem.conv") ? (double)p->timesteps : 1.0);
  }
  return f;
}

static void net_bench(const char *preset, const char *cell, int64_t S, int reps, double sgemm_rate) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  nn_net_params_preset(&p, preset, &err);
  if (nn_cell_parse(cell, NN_CELL_FORM_AUTO, &p.cell_a, &err) != NN_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return;
  }
  p.cell_b = p.cell_a;
  nn_net *net = nn_net_new(&p, &err);
  nn_tensor *x = nn_tensor_new4(4, S, p.in_ch, p.in_h, p.in_w, &err);
  nn_rng r = nn_rng_seed(1);
  nn_tensor_normal(x, &r, 0, 1);
  double flop = net_flop(net, S);
  printf("%s, cell \"%s\", batch %lld, T=%lld (%.1f dense GFLOP per forward)\n", preset, cell, (long long)S,
         (long long)p.timesteps, flop / 1e9);
  static const char *const mode_names[] = {"auto (event-driven when sparse)", "dense only"};
  static const nn_conv_mode modes[] = {NN_CONV_AUTO, NN_CONV_DENSE};
  for (int m = 0; m < 2; m++) {
    nn_net_set_conv_mode(net, modes[m]);
    double best = 1e30;
    nn_forward_opts o = {.train = 1}; /* train mode: batch statistics, as the fitness score */
    for (int rep = 0; rep < reps; rep++) {
      nn_tensor *out = NULL;
      double t = now();
      if (nn_net_forward(net, x, &o, &out, &err) != NN_OK) fprintf(stderr, "%s\n", err.msg);
      t = now() - t;
      nn_tensor_free(out);
      if (t < best) best = t;
    }
    printf("  %-34s %8.1f images/s  %6.1f GFLOP/s dense-equivalent (%3.0f%% of sgemm)  %.2f s/forward\n",
           mode_names[m], (double)S / best, flop / best / 1e9, 100 * flop / best / 1e9 / sgemm_rate, best);
  }
  printf("  firing rates:");
  for (size_t i = 0; i < nn_net_lif_count(net); i++)
    if (i < 3 || !strcmp(nn_net_lif_name(net, i), "downconv.lif") || !strcmp(nn_net_lif_name(net, i), "last.lif"))
      printf(" %s %.3f", nn_net_lif_name(net, i), nn_net_lif_rate(net, i));
  printf("\n");
  nn_tensor_free(x);
  nn_net_free(net);
}

/* Peak RSS (MiB) of a child that builds the net and runs one forward at batch S. */
static double child_rss_mib(const char *preset, const char *cell, int64_t S, double *seconds) {
  pid_t pid = fork();
  if (pid == 0) {
    nn_error err;
    nn_net_params p = nn_net_params_default();
    nn_net_params_preset(&p, preset, &err);
    nn_cell_parse(cell, NN_CELL_FORM_AUTO, &p.cell_a, &err);
    p.cell_b = p.cell_a;
    nn_net *net = nn_net_new(&p, &err);
    nn_tensor *x = nn_tensor_new4(4, S, p.in_ch, p.in_h, p.in_w, &err), *out = NULL;
    nn_rng r = nn_rng_seed(1);
    nn_tensor_normal(x, &r, 0, 1);
    nn_forward_opts o = {.train = 1};
    _exit(nn_net_forward(net, x, &o, &out, &err) == NN_OK ? 0 : 1);
  }
  int status;
  struct rusage ru;
  wait4(pid, &status, 0, &ru);
  *seconds = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec; /* child CPU time */
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return (double)ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
  int quick = argc > 1 && !strcmp(argv[1], "--quick");
  int conv_only = argc > 1 && !strcmp(argv[1], "--conv"); /* kernels only */
  if (argc > 1 && !strcmp(argv[1], "--events")) {
    if (!nn_conv2d_events_gather_fits(&(nn_conv_geom){1, 1, 32, 32, 128, 3, 1, 1})) {
      printf("the output-stationary event kernel does not run on this CPU (no AVX-512)\n");
      return 0;
    }
    printf("nn_conv2d_events, 64 samples, random spikes; CPU ms per call, median (min-max) of 9, alternating\n");
    static const double rates[] = {0.02, 0.05, 0.09, 0.16, 0.30};
    for (size_t k = 0; k < sizeof rates / sizeof *rates; k++) {
      events_kernels("cell A: 128->128 3x3 at 32x32", &(nn_conv_geom){64, 128, 32, 32, 128, 3, 1, 1}, rates[k]);
      events_kernels("cell B: 256->256 3x3 at 16x16", &(nn_conv_geom){64, 256, 16, 16, 256, 3, 1, 1}, rates[k]);
      events_kernels("cell A: 128->128 1x1 at 32x32", &(nn_conv_geom){64, 128, 32, 32, 128, 1, 1, 0}, rates[k]);
      events_kernels("cell B: 256->256 1x1 at 16x16", &(nn_conv_geom){64, 256, 16, 16, 256, 1, 1, 0}, rates[k]);
    }
    /* SNASNet's scaled-down setting (16 channels): the narrow output-stationary kernels */
    printf("SNASNet setting's narrow convs, 32 samples (gather: the lockstep 3x3 / masked-add 1x1 kernels)\n");
    static const double narrow_rates[] = {0.0, 0.02, 0.05, 0.10, 0.20};
    for (size_t k = 0; k < sizeof narrow_rates / sizeof *narrow_rates; k++) {
      events_kernels("16->32 3x3 at 32x32", &(nn_conv_geom){32, 16, 32, 32, 32, 3, 1, 1}, narrow_rates[k]);
      events_kernels("32->32 3x3 at 16x16", &(nn_conv_geom){32, 32, 16, 16, 32, 3, 1, 1}, narrow_rates[k]);
      events_kernels("16->16 1x1 at 32x32", &(nn_conv_geom){32, 16, 32, 32, 16, 1, 1, 0}, narrow_rates[k]);
      events_kernels("32->32 1x1 at 16x16", &(nn_conv_geom){32, 32, 16, 16, 32, 1, 1, 0}, narrow_rates[k]);
    }
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--pool")) {
    printf("avgpool3x3 (cell edges), the general AVX-512 kernel -> the short-row one; CPU, median of 9, alternating\n");
    pool_kernels("fashion cell A: 64x16 28x28", 64 * 16, 28, 28);
    pool_kernels("fashion cell B: 64x32 14x14", 64 * 32, 14, 14);
    pool_kernels("SNASNet cell A: 32x16 32x32", 32 * 16, 32, 32);
    pool_kernels("SNASNet cell B: 32x32 16x16", 32 * 32, 16, 16);
    pool_kernels("paper cell A: 256x128 32x32", 256 * 128, 32, 32);
    pool_kernels("paper cell B: 256x256 16x16", 256 * 256, 16, 16);
    printf("avgpool 2x2 (the downconv), the plain loop -> the AVX-512 kernel; CPU, median of 9, alternating\n");
    pool2_kernels("fashion downconv: 64x32 28x28", 64 * 32, 28, 28);
    pool2_kernels("SNASNet downconv: 32x32 32x32", 32 * 32, 32, 32);
    pool2_kernels("paper downconv: 256x256 32x32", 256 * 256, 32, 32);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--bn")) {
    printf("BatchNorm with batch statistics (two passes of double sums, then y = x * a + b), wall ms, median of 5\n");
    bn_vs_copy("paper cell A: 256 x 128 x 32x32", 256, 128, 1024);
    bn_vs_copy("paper cell B: 256 x 256 x 16x16", 256, 256, 256);
    bn_vs_copy("SNASNet cell A: 32 x 16 x 32x32", 32, 16, 1024);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--fed")) {
    printf("a BatchNorm's output stored and read back against fed (made a chunk at a time), 2 threads, wall ms, median of 5\n");
    bn_fed("paper cell A, BN -> LIF: 256 x 128 x 32x32", 256, 128, 32, 32, 0);
    bn_fed("paper cell B, BN -> LIF: 256 x 256 x 16x16", 256, 256, 16, 16, 0);
    bn_fed("paper downconv, BN -> 2x2 pool: 256 x 256 x 32x32", 256, 256, 32, 32, 1);
    bn_fed("SNASNet cell A, BN -> LIF: 32 x 16 x 32x32", 32, 16, 32, 32, 0);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--linear")) {
    printf("the classifier's first Linear, one call, pooled-spike inputs; CPU ms, median (min-max), alternating\n");
    static const double dens[] = {0.02, 0.1, 0.26, 0.4, 0.5, 0.6, 0.8};
    for (size_t k = 0; k < sizeof dens / sizeof *dens; k++) linear_paths(32, 2048, 1024, dens[k], 15);
    for (size_t k = 0; k < sizeof dens / sizeof *dens; k++) linear_paths(256, 16384, 1024, dens[k], 3);
    linear_candidates(25);
    return 0;
  }
  quick |= conv_only;
  int reps = quick ? 2 : 3;
  nn_blas_set_threads(1);
  printf("all figures per core: OpenBLAS on 1 thread, CPU time of this process\n");
  printf("OpenBLAS: %s\n", nn_blas_config());
  double s1 = sgemm_gflops(1024, 1024, 1024, reps + 1);
  double s2 = sgemm_gflops(128, 4096, 1152, reps + 1);
  double s3 = sgemm_gflops(16, 50176, 144, reps + 1);
  printf("sgemm: 1024^3 %.1f GFLOP/s; conv-shaped 128x4096x1152 %.1f GFLOP/s; 16x50176x144 %.1f GFLOP/s\n", s1, s2, s3);
  double ref = s1;

  printf("\nconv kernels (input 0/1, batch 64; dense on 50%% firing input, %% of sgemm 1024^3):\n");
  conv_case cases[] = {
      {"fashion cell A: 16->16 3x3 at 28x28", {64, 16, 28, 28, 16, 3, 1, 1}},
      {"cifar100 cell A: 128->128 3x3 at 32x32", {64, 128, 32, 32, 128, 3, 1, 1}},
      {"cifar100 cell B: 256->256 3x3 at 16x16", {64, 256, 16, 16, 256, 3, 1, 1}},
      {"cifar100 conv1x1: 128->128 at 32x32", {64, 128, 32, 32, 128, 1, 1, 0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    if (!quick || i != 2) conv_bench(&cases[i], reps, ref);

  if (conv_only) return 0;
  printf("\nwhole forward (train-mode BN, as the fitness score):\n");
  net_bench("fashion-mnist", "conv3x3 conv3x3 conv3x3 conv3x3 conv3x3 conv3x3", 64, reps, ref);
  net_bench("cifar100", "0303 0030 2002 0200", 64, quick ? 1 : 2, ref);
  if (!quick) net_bench("cifar100", "conv3x3 conv3x3 conv3x3 conv3x3 conv3x3 conv3x3", 64, 1, ref);

  double secs;
  double rss = child_rss_mib("cifar100", "0303 0030 2002 0200", 256, &secs);
  printf("\npeak RSS, cifar100 SNASNet cell, batch 256, one forward: %.0f MiB (%.1f s CPU)\n", rss, secs);
  if (!quick) {
    rss = child_rss_mib("cifar100", "conv3x3 conv3x3 conv3x3 conv3x3 conv3x3 conv3x3", 256, &secs);
    printf("peak RSS, cifar100 all-conv3x3 cell, batch 256, one forward: %.0f MiB (%.1f s CPU)\n", rss, secs);
  }
  return 0;
}
