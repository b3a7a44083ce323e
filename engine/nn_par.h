/* nn_par.h: a fixed team of worker threads for splitting one candidate's work (the forward's
 * layers, the fitness kernel) over cores, with results that do not depend on the thread count.
 *
 * nn_par_for(p, n, grain, fn, ctx) cuts [0, n) into one contiguous range per thread (range
 * starts are multiples of `grain`, except 0) and runs fn(ctx, lo, hi) on each, the calling
 * thread taking the first; it returns when all are done. Callers only split work whose pieces
 * write disjoint outputs and compute each output exactly as the whole loop would (samples of a
 * conv, channels of a BatchNorm, planes of a pool, rows of the kernel), so every bit is the
 * same for any number of threads. A NULL team, or one of one thread, runs fn(ctx, 0, n) on the
 * caller. Teams are not reentrant: one nn_par_for at a time per team. */
#ifndef NEURONAS_NN_PAR_H
#define NEURONAS_NN_PAR_H

#include <stdint.h>

typedef struct nn_par nn_par;
typedef void (*nn_par_fn)(void *ctx, int64_t lo, int64_t hi);

#define NN_PAR_MAX_THREADS 64

/* A team of `threads` (1..NN_PAR_MAX_THREADS; the caller counts as one, so threads - 1 workers
 * are started). Returns NULL for threads <= 1 and when no worker could be started (callers then
 * run everything themselves: same results). Free with nn_par_free (NULL ok). */
nn_par *nn_par_new(int threads);
void nn_par_free(nn_par *p);
/* Threads of the team (1 for NULL). */
int nn_par_threads(const nn_par *p);
void nn_par_for(nn_par *p, int64_t n, int64_t grain, nn_par_fn fn, void *ctx);
/* The same with explicit range starts: piece t is [cut[t], cut[t+1]) for t < nn_par_threads(p),
 * cut[0] = 0 and cut[threads] = the end (for work that is not uniform per index). */
void nn_par_run(nn_par *p, const int64_t *cut, nn_par_fn fn, void *ctx);

/* Runs fn(ctx, task, worker) for task = 0..ntasks-1, every thread pulling the next task from a
 * shared counter until none is left: for work cut into more tasks than threads, of uneven cost
 * (the trainer's sample groups and reductions). worker is the thread's number (the caller is 0,
 * all are below nn_par_threads(p)), for per-thread scratch. Which worker runs a task must not
 * change what the task computes (each writes its own outputs; sums are reduced afterwards in a
 * fixed order), so the results are the same for any number of threads. */
typedef void (*nn_par_task_fn)(void *ctx, int64_t task, int worker);
void nn_par_tasks(nn_par *p, int64_t ntasks, nn_par_task_fn fn, void *ctx);

#endif
