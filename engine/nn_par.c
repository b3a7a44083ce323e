/* nn_par.c: the worker team of nn_par.h, the engine's one thread pool (the scoring forward, the
 * fitness kernel, the trainer). Workers sleep on a condition variable between jobs (a training
 * step runs a few hundred parallel regions: creating threads per region would cost more than the
 * small ones take); a job is a generation number, the function and the range starts; each
 * worker runs its own piece and counts itself done. */
#include "nn_par.h"

#include <pthread.h>
#include <stdlib.h>

struct nn_par {
  int threads;                   /* caller + workers */
  pthread_t tid[NN_PAR_MAX_THREADS];
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  uint64_t gen;                  /* job number; workers run a job once */
  int pending;                   /* workers still running the current job */
  int quit;
  nn_par_fn fn;
  void *ctx;
  int64_t cut[NN_PAR_MAX_THREADS + 1];
};

typedef struct worker_arg {
  nn_par *p;
  int t;
} worker_arg;

static void *worker(void *arg) {
  worker_arg *wa = arg;
  nn_par *p = wa->p;
  const int t = wa->t;
  uint64_t seen = 0;
  free(wa);
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->quit && p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
    if (p->quit) break;
    seen = p->gen;
    nn_par_fn fn = p->fn;
    void *ctx = p->ctx;
    int64_t lo = p->cut[t], hi = p->cut[t + 1];
    pthread_mutex_unlock(&p->mu);
    if (hi > lo) fn(ctx, lo, hi);
    pthread_mutex_lock(&p->mu);
    if (--p->pending == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

nn_par *nn_par_new(int threads) {
  if (threads <= 1) return NULL;
  if (threads > NN_PAR_MAX_THREADS) threads = NN_PAR_MAX_THREADS;
  nn_par *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p);
    return NULL;
  }
  pthread_cond_init(&p->go, NULL);
  pthread_cond_init(&p->done, NULL);
  p->threads = 1;
  for (int t = 1; t < threads; t++) {
    worker_arg *wa = malloc(sizeof *wa);
    if (!wa) break;
    wa->p = p, wa->t = t;
    if (pthread_create(&p->tid[t], NULL, worker, wa) != 0) {
      free(wa);
      break;
    }
    p->threads++;
  }
  if (p->threads == 1) {
    nn_par_free(p);
    return NULL;
  }
  return p;
}

void nn_par_free(nn_par *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  for (int t = 1; t < p->threads; t++) pthread_join(p->tid[t], NULL);
  pthread_cond_destroy(&p->go);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

int nn_par_threads(const nn_par *p) { return p ? p->threads : 1; }

void nn_par_run(nn_par *p, const int64_t *cut, nn_par_fn fn, void *ctx) {
  if (!p) {
    if (cut[1] > cut[0]) fn(ctx, cut[0], cut[1]);
    return;
  }
  pthread_mutex_lock(&p->mu);
  for (int t = 0; t <= p->threads; t++) p->cut[t] = cut[t];
  p->fn = fn, p->ctx = ctx;
  p->pending = p->threads - 1;
  p->gen++;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  if (cut[1] > cut[0]) fn(ctx, cut[0], cut[1]);
  pthread_mutex_lock(&p->mu);
  while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

void nn_par_for(nn_par *p, int64_t n, int64_t grain, nn_par_fn fn, void *ctx) {
  int64_t cut[NN_PAR_MAX_THREADS + 1];
  const int T = nn_par_threads(p);
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (T == 1 || n <= grain) {
    fn(ctx, 0, n);
    return;
  }
  const int64_t units = (n + grain - 1) / grain;
  for (int t = 0; t <= T; t++) {
    int64_t c = units * t / T * grain;
    cut[t] = c < n ? c : n;
  }
  cut[T] = n;
  nn_par_run(p, cut, fn, ctx);
}

typedef struct pull {
  nn_par_task_fn fn;
  void *ctx;
  int64_t ntasks, next;
} pull;

/* Thread `worker`'s piece of nn_par_tasks: [worker, worker + 1) */
static void pull_tasks(void *c, int64_t worker, int64_t end) {
  pull *q = c;
  (void)end;
  for (;;) {
    const int64_t t = __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED);
    if (t >= q->ntasks) return;
    q->fn(q->ctx, t, (int)worker);
  }
}

void nn_par_tasks(nn_par *p, int64_t ntasks, nn_par_task_fn fn, void *ctx) {
  const int T = nn_par_threads(p);
  if (T == 1 || ntasks <= 1) {
    for (int64_t t = 0; t < ntasks; t++) fn(ctx, t, 0);
    return;
  }
  int64_t cut[NN_PAR_MAX_THREADS + 1];
  for (int t = 0; t <= T; t++) cut[t] = t;
  pull q = {fn, ctx, ntasks, 0};
  nn_par_run(p, cut, pull_tasks, &q);
}
