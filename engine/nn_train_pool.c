/* nn_train_pool.c: the trainer's worker threads (nn_train_impl.h). Workers sleep on a condition
 * variable between parallel regions (a step runs a few hundred of them: creating threads per
 * region would cost more than the small ones take); tasks are pulled from an atomic counter,
 * the calling thread takes part as worker 0. Which worker runs a task never changes what it
 * computes: every task writes its own outputs, and reductions happen afterwards in a fixed order
 * (nn_train.c), so results are the same for any number of threads. */
#include <pthread.h>
#include <stdlib.h>

#include "nn_train_impl.h"

struct nn_pool {
  pthread_t tid[NN_TRAIN_MAX_THREADS];
  int started; /* worker threads besides the caller */
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  uint64_t gen;
  int stop, active;
  nn_pool_fn fn;
  void *ctx;
  int64_t ntasks, next;
};

typedef struct wstart {
  nn_pool *p;
  int id;
} wstart;

static void run_tasks(nn_pool *p, int id) {
  for (;;) {
    int64_t t = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
    if (t >= p->ntasks) return;
    p->fn(p->ctx, t, id);
  }
}

static void *worker(void *arg) {
  wstart *w = arg;
  nn_pool *p = w->p;
  int id = w->id;
  uint64_t seen = 0;
  free(w);
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->gen == seen && !p->stop) pthread_cond_wait(&p->go, &p->mu);
    if (p->stop) break;
    seen = p->gen;
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, id);
    pthread_mutex_lock(&p->mu);
    if (--p->active == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

nn_pool *nn_pool_new(int threads) {
  nn_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p);
    return NULL;
  }
  pthread_cond_init(&p->go, NULL);
  pthread_cond_init(&p->done, NULL);
  if (threads > NN_TRAIN_MAX_THREADS) threads = NN_TRAIN_MAX_THREADS;
  for (int i = 1; i < threads; i++) { /* a thread that cannot start leaves its share to others */
    wstart *w = malloc(sizeof *w);
    if (!w) break;
    w->p = p, w->id = p->started + 1;
    if (pthread_create(&p->tid[p->started], NULL, worker, w) != 0) {
      free(w);
      break;
    }
    p->started++;
  }
  return p;
}

int nn_pool_threads(const nn_pool *p) { return p ? p->started + 1 : 1; }

void nn_pool_run(nn_pool *p, int64_t ntasks, nn_pool_fn fn, void *ctx) {
  if (!p || p->started == 0 || ntasks <= 1) {
    for (int64_t t = 0; t < ntasks; t++) fn(ctx, t, 0);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn, p->ctx = ctx, p->ntasks = ntasks, p->next = 0;
  p->active = p->started;
  p->gen++;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  run_tasks(p, 0);
  pthread_mutex_lock(&p->mu);
  while (p->active > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

void nn_pool_free(nn_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->started; i++) pthread_join(p->tid[i], NULL);
  pthread_cond_destroy(&p->go);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
