/* nn_par.c: the worker team of nn_par.h. Workers sleep on a condition variable between jobs; a
 * job is a generation number, the function and the range starts; each worker runs its own
 * piece and counts itself done. */
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
