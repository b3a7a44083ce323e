/* nn_fitness.h: the training-free fitness score (docs/fitness.md, SNASNet's Hamming kernel) and the
 * stage-2 prefix cache (docs/search.md).
 *
 * For each LIF call (one module, one timestep) with spikes b in {0,1}^(S x N):
 *   s_i = |b_i| / N;  normK_ij = (s_i (1 - s_j) + (1 - s_i) s_j) N;  H_ij = Hamming(b_i, b_j)
 *   K_ij += N - 0.5 / (normK_ij + 1e-3) * H_ij          (per call and sum in double)
 * score = log|det(K / calls)| (LU with partial pivoting); with R repeats, the mean over R
 * batches. A singular K gives -inf, never NaN. Hamming distances come from popcounts of the
 * bit-packed rows nn_spike_call hands out, so memory is O(S^2) plus one call's spikes. */
#ifndef NEURONAS_NN_FITNESS_H
#define NEURONAS_NN_FITNESS_H

#include "nn.h"
#include "nn_net.h"
#include "nn_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the kernel accumulator (usable without a net: feed it nn_spike_call records) ---- */
typedef struct nn_kernel nn_kernel;

/* S x S accumulator, all zero, 0 calls. Caller owns it (nn_kernel_free, NULL ok). */
nn_kernel *nn_kernel_new(int64_t samples, nn_error *err);
void nn_kernel_free(nn_kernel *k);
void nn_kernel_reset(nn_kernel *k);
/* dst = src (same S). */
nn_status nn_kernel_copy(nn_kernel *dst, const nn_kernel *src, nn_error *err);
int64_t nn_kernel_samples(const nn_kernel *k);
int64_t nn_kernel_calls(const nn_kernel *k);
/* The running sum of per-call kernels, S x S row-major (not divided by the call count). */
const double *nn_kernel_values(const nn_kernel *k);

/* Adds one LIF call. NN_EINVAL when c->samples != S, words != ceil(neurons/64) or
 * neurons < 1. Fast path: blocked popcount over the packed rows (POPCNT/AVX2 clones chosen
 * at run time on x86-64, portable __builtin_popcountll elsewhere). */
nn_status nn_kernel_add(nn_kernel *k, const nn_spike_call *c, nn_error *err);
/* Naive twin: unpacks to 0/1 doubles and evaluates
 * N - 0.5/(normK+1e-3) * (x(1-x)^T + (1-x)x^T)_ij with plain loops. */
nn_status nn_kernel_add_ref(nn_kernel *k, const nn_spike_call *c, nn_error *err);

/* log|det(K / calls)| in *score (double, nn_logdet); -inf when singular or when no call
 * was added. *sign (may be NULL) gets +1, -1 or 0. */
nn_status nn_kernel_score(const nn_kernel *k, double *score, int *sign, nn_error *err);

/* ---- the prefix cache (docs/search.md stage 2) ----
 * Entries are keyed by everything the prefix (stem, cell A, downconv, pool) depends on:
 * cell A, the macro parameters (all but cell B), the weight precision, a 128-bit hash of
 * every stored prefix tensor (stem, cell A, downconv: conv weights, BN parameters and
 * running statistics; so the quantizer, the seed and loaded weights are covered) and
 * a 128-bit hash of the input batch (shape and values). An entry holds the cell-B inputs for
 * all T steps, the kernel summed over the prefix LIF calls and their diagnostics. Least
 * recently used entries are evicted past max_entries or max_bytes. */
typedef struct nn_fitness_cache nn_fitness_cache;
typedef struct nn_fitness_cache_params {
  int64_t max_entries; /* >= 1 */
  int64_t max_bytes;   /* >= 0; an entry bigger than this is not stored */
} nn_fitness_cache_params;
nn_fitness_cache_params nn_fitness_cache_params_default(void); /* 8 entries, 1 GiB */
nn_fitness_cache *nn_fitness_cache_new(const nn_fitness_cache_params *p, nn_error *err);
void nn_fitness_cache_free(nn_fitness_cache *c);
void nn_fitness_cache_clear(nn_fitness_cache *c);
typedef struct nn_fitness_cache_stats {
  int64_t hits, misses, evictions, entries, bytes;
  nn_fitness_cache_params params;
} nn_fitness_cache_stats;
nn_fitness_cache_stats nn_fitness_cache_stats_of(const nn_fitness_cache *c);

/* ---- scoring a net ---- */
#define NN_FITNESS_MAX_MODULES 64
#define NN_FITNESS_MAX_THREADS 64
#define NN_FITNESS_MAX_REPEAT 64

typedef struct nn_fitness_module {
  char name[64];      /* LIF path, e.g. "cellA.e01.lif" */
  int64_t calls;      /* over all repeats and timesteps */
  int64_t fired;      /* spikes */
  int64_t neurons;    /* N per sample */
  double firing_rate; /* fired / (calls * S * N) */
} nn_fitness_module;

typedef struct nn_fitness_diag {
  int repeats;
  int64_t samples;     /* S */
  int64_t lif_calls;   /* over all repeats (SNASNet's fixture: 75 per forward) */
  double scores[NN_FITNESS_MAX_REPEAT]; /* per repeat */
  int signs[NN_FITNESS_MAX_REPEAT];
  double forward_s, kernel_s, logdet_s, total_s; /* wall seconds; forward excludes kernel */
  int64_t cache_hits, cache_misses; /* this evaluation's prefix lookups */
  int modules;
  nn_fitness_module module[NN_FITNESS_MAX_MODULES];
} nn_fitness_diag;

typedef struct nn_fitness_opts {
  nn_fitness_cache *cache; /* NULL: no caching */
  nn_kernel **kernels;     /* optional out: R accumulated kernels, the caller's on success */
  int threads;             /* threads for this one net, 0..NN_FITNESS_MAX_THREADS (0 or 1: the
                              calling thread only): the forward's samples, channels and planes
                              and the kernel's rows split over them; the same bits for any count */
  nn_spike_fn on_spikes;   /* optional: also handed every LIF call of the first batch, after the
                              score has used it (e.g. nn_activity_observe, docs/hardware.md); that
                              batch's prefix is then run, never taken from the cache (a new
                              one is still stored there for calls without an observer) */
  void *spikes_ud;         /* on_spikes's first argument */
  int keep_memory;         /* 1: a big net's pass buffers stay cached on the calling thread after
                              the call, so that the next call's passes (a search's next
                              candidate) reuse their pages instead of faulting in fresh ones,
                              about 0.8 s per paper-size candidate; nn_fitness_release_memory
                              (or the end of a call without it) frees them */
} nn_fitness_opts;

/* Frees the pass buffers that calls with keep_memory left cached on the calling thread. */
void nn_fitness_release_memory(void);

/* Scores net on R = repeats batches (each S x in_ch x H x W, the same S): per batch one
 * full forward in training mode (BN on batch statistics, LIF state reset per forward), the
 * kernel from every LIF call, score = mean of log|det(K_r / calls_r)|. With opts->cache the
 * prefix comes from the cache when present (bit-identical results). The net is left as it
 * was: the BN running statistics a training-mode forward updates are saved and restored
 * (SNASNet keeps the updates; nothing downstream of the score reads them). diag may be NULL.
 * NN_EINVAL for repeats outside 1..NN_FITNESS_MAX_REPEAT or mismatched batch sizes. */
nn_status nn_fitness_eval(nn_net *net, const nn_tensor *const *batches, int repeats,
                          const nn_fitness_opts *opts, double *score, nn_fitness_diag *diag,
                          nn_error *err);

/* ---- scoring several nets concurrently (the search's hook for threads) ---- */
typedef struct nn_fitness_many_opts {
  int threads;             /* worker threads, 0..NN_FITNESS_MAX_THREADS; 0: one per online CPU */
  nn_fitness_cache *cache; /* NULL: no caching */
} nn_fitness_many_opts;

/* CPUs online, clamped to 1..NN_FITNESS_MAX_THREADS. */
int nn_fitness_default_threads(void);

/* scores[i] and diags[i] (diags may be NULL) for every net, exactly as `count` sequential
 * nn_fitness_eval(nets[i], batches, repeats, {cache}) calls in index order would give them
 * (bit-identical scores; the same cache hits and misses, the cache left in the same state);
 * only the wall-clock timings in diags differ. Nets are scored on opts->threads pthreads; the
 * cache is consulted and filled on the calling thread, and OpenBLAS runs single-threaded
 * until the call returns (its thread count is then restored). Every net must be distinct (a
 * net is mutable state: NN_EINVAL for a repeat). On failure the error of the first failing net
 * in order is returned and scores are unspecified. */
nn_status nn_fitness_many(nn_net *const *nets, size_t count, const nn_tensor *const *batches,
                          int repeats, const nn_fitness_many_opts *opts, double *scores,
                          nn_fitness_diag *diags, nn_error *err);

#ifdef __cplusplus
}
#endif
#endif
