/* nn_fitness.c: the Hamming-kernel accumulator of the fitness score (docs/fitness.md): per LIF call,
 * popcount Hamming distances between bit-packed sample rows, K summed in double, log|det|
 * through nn_logdet. Scoring whole nets and the prefix cache: nn_fitness_eval.c. */
#include "neuronas/nn_fitness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_blas.h"
#include "nn_fitness_impl.h"

struct nn_kernel {
  int64_t S, calls;
  double *K;    /* S x S running sum */
  int64_t *H;   /* S x S scratch: Hamming distances of the current call (upper triangle) */
  int64_t *cnt; /* S spikes per sample of the current call */
};

nn_kernel *nn_kernel_new(int64_t samples, nn_error *err) {
  nn_kernel *k;
  if (samples < 1 || samples > 65536) {
    nn_fail(err, NN_EINVAL, "kernel: samples=%lld outside 1..65536", (long long)samples);
    return NULL;
  }
  k = calloc(1, sizeof *k);
  if (k) {
    k->S = samples;
    k->K = calloc((size_t)(samples * samples), sizeof *k->K);
    k->H = calloc((size_t)(samples * samples), sizeof *k->H);
    k->cnt = calloc((size_t)samples, sizeof *k->cnt);
  }
  if (!k || !k->K || !k->H || !k->cnt) {
    nn_kernel_free(k);
    nn_fail(err, NN_ENOMEM, "kernel: out of memory for %lld samples", (long long)samples);
    return NULL;
  }
  return k;
}

void nn_kernel_free(nn_kernel *k) {
  if (!k) return;
  free(k->K);
  free(k->H);
  free(k->cnt);
  free(k);
}

void nn_kernel_reset(nn_kernel *k) {
  if (!k) return;
  memset(k->K, 0, (size_t)(k->S * k->S) * sizeof *k->K);
  k->calls = 0;
}

nn_status nn_kernel_copy(nn_kernel *dst, const nn_kernel *src, nn_error *err) {
  if (!dst || !src || dst->S != src->S)
    return nn_fail(err, NN_EINVAL, "kernel: copy between different sample counts");
  memcpy(dst->K, src->K, (size_t)(src->S * src->S) * sizeof *dst->K);
  dst->calls = src->calls;
  return NN_OK;
}

int64_t nn_kernel_samples(const nn_kernel *k) { return k ? k->S : 0; }
int64_t nn_kernel_calls(const nn_kernel *k) { return k ? k->calls : 0; }
const double *nn_kernel_values(const nn_kernel *k) { return k ? k->K : NULL; }

static nn_status check_call(const nn_kernel *k, const nn_spike_call *c, nn_error *err) {
  const char *m = c && c->module ? c->module : "?";
  if (!k || !c) return nn_fail(err, NN_EINVAL, "kernel: kernel and spike call expected");
  if (c->samples != k->S)
    return nn_fail(err, NN_EINVAL, "kernel: %s has %lld samples, the kernel %lld", m,
                   (long long)c->samples, (long long)k->S);
  if (c->neurons < 1 || c->words != (c->neurons + 63) / 64 || !c->bits)
    return nn_fail(err, NN_EINVAL, "kernel: %s: %lld neurons in %lld words", m,
                   (long long)c->neurons, (long long)c->words);
  if (c->neurons % 64) {
    uint64_t tail = ~0ull << (c->neurons % 64);
    for (int64_t s = 0; s < c->samples; s++)
      if (c->bits[s * c->words + c->words - 1] & tail)
        return nn_fail(err, NN_EINVAL, "kernel: %s: sample %lld has bits past neuron %lld", m,
                       (long long)s, (long long)c->neurons);
  }
  return NN_OK;
}

/* Function multiversioning: the popcount loops are compiled for AVX2+POPCNT, POPCNT and the
 * baseline; the loader picks the best the CPU has. Results are identical (integers). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NN_CLONES __attribute__((target_clones("avx2", "popcnt", "default")))
#else
#define NN_CLONES
#endif

/* cnt[i] = spikes of row i. bits is S rows of W words. */
NN_CLONES static void row_counts(const uint64_t *bits, int64_t S, int64_t W, int64_t *cnt) {
  for (int64_t i = 0; i < S; i++) {
    const uint64_t *a = bits + i * W;
    int64_t h = 0;
    for (int64_t w = 0; w < W; w++) h += __builtin_popcountll(a[w]);
    cnt[i] = h;
  }
}

/* H[i*S+j] += Hamming of words [w0, w1) of rows i and j, for rows i in [i0, i1) and j > i.
 * Four rows i..i+3 share each load of row j (a quarter of the memory traffic of the
 * pair-by-pair loop); the pairs inside a block that are not needed (j <= i+r) are computed and
 * dropped. */
NN_CLONES static void hamming_chunk(const uint64_t *bits, int64_t S, int64_t W, int64_t w0,
                                    int64_t w1, int64_t i0, int64_t i1, int64_t *H) {
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    const uint64_t *a0 = bits + i * W, *a1 = a0 + W, *a2 = a1 + W, *a3 = a2 + W;
    for (int64_t j = i + 1; j < S; j++) {
      const uint64_t *b = bits + j * W;
      int64_t h0 = 0, h1 = 0, h2 = 0, h3 = 0;
      for (int64_t w = w0; w < w1; w++) {
        uint64_t x = b[w];
        h0 += __builtin_popcountll(a0[w] ^ x);
        h1 += __builtin_popcountll(a1[w] ^ x);
        h2 += __builtin_popcountll(a2[w] ^ x);
        h3 += __builtin_popcountll(a3[w] ^ x);
      }
      H[i * S + j] += h0;
      if (j > i + 1) H[(i + 1) * S + j] += h1;
      if (j > i + 2) H[(i + 2) * S + j] += h2;
      if (j > i + 3) H[(i + 3) * S + j] += h3;
    }
  }
  for (; i < i1; i++) {
    const uint64_t *a = bits + i * W;
    for (int64_t j = i + 1; j < S; j++) {
      const uint64_t *b = bits + j * W;
      int64_t h = 0;
      for (int64_t w = w0; w < w1; w++) h += __builtin_popcountll(a[w] ^ b[w]);
      H[i * S + j] += h;
    }
  }
}

/* Words per chunk: S rows of a chunk stay in a 1 MiB L2 while all pairs are visited
 * (large batches: 256 samples x 131072 neurons is 4 MiB of spikes per call). */
#define HAMMING_CHUNK_BYTES (512 * 1024)

/* H[i*S+j] = Hamming(row i, row j) for rows i in [i0, i1) and j > i, word range by word range. */
static void hamming_upper(const uint64_t *bits, int64_t S, int64_t W, int64_t i0, int64_t i1, int64_t *H) {
  int64_t cw = HAMMING_CHUNK_BYTES / 8 / S;
  if (cw < 64) cw = 64;
  for (int64_t i = i0; i < i1; i++)
    for (int64_t j = i + 1; j < S; j++) H[i * S + j] = 0;
  for (int64_t w0 = 0; w0 < W; w0 += cw)
    hamming_chunk(bits, S, W, w0, w0 + cw < W ? w0 + cw : W, i0, i1, H);
}

/* K_ij += N - 0.5/(normK_ij + 1e-3) * H_ij, the formula as docs/fitness.md writes it (shared by the
 * fast path and its twin so both round the same way). */
static inline double kernel_term(double N, double si, double sj, double h) {
  double normK = (si * (1 - sj) + (1 - si) * sj) * N;
  return N - (0.5 / (normK + 1e-3)) * h;
}

/* Rows [i0, i1) of one call: Hamming distances to every later row, then K's entries (i, j) and
 * (j, i) for j >= i (each entry gets exactly one addition per call, whoever computes it). */
typedef struct add_job {
  nn_kernel *k;
  const nn_spike_call *c;
} add_job;

static void add_rows(void *ctx, int64_t i0, int64_t i1) {
  add_job *a = ctx;
  nn_kernel *k = a->k;
  const int64_t S = k->S, W = a->c->words;
  const double N = (double)a->c->neurons;
  hamming_upper(a->c->bits, S, W, i0, i1, k->H);
  for (int64_t i = i0; i < i1; i++) {
    double si = (double)k->cnt[i] / N;
    k->K[i * S + i] += kernel_term(N, si, si, 0);
    for (int64_t j = i + 1; j < S; j++) {
      double v = kernel_term(N, si, (double)k->cnt[j] / N, (double)k->H[i * S + j]);
      k->K[i * S + j] += v;
      k->K[j * S + i] += v;
    }
  }
}

nn_status nn_kernel_add_par(nn_kernel *k, const nn_spike_call *c, nn_par *par, nn_error *err) {
  nn_status st;
  if ((st = check_call(k, c, err)) != NN_OK) return st;
  const int64_t S = k->S;
  const int T = nn_par_threads(par);
  add_job a = {k, c};
  row_counts(c->bits, S, c->words, k->cnt);
  if (T == 1) {
    add_rows(&a, 0, S);
  } else {
    /* row i has S-1-i pairs: cut the triangle into pieces of about equal pair counts, at
     * multiples of 4 (the row block of hamming_chunk) */
    int64_t cut[NN_PAR_MAX_THREADS + 1], i = 0;
    const double total = (double)S * (double)(S - 1) / 2;
    double done = 0;
    cut[0] = 0;
    for (int t = 1; t < T; t++) {
      while (i < S && done < total * t / T) done += (double)(S - 1 - i), i++;
      int64_t ci = (i + 3) / 4 * 4;
      cut[t] = ci < S ? ci : S;
      if (cut[t] < cut[t - 1]) cut[t] = cut[t - 1];
    }
    cut[T] = S;
    nn_par_run(par, cut, add_rows, &a);
  }
  k->calls++;
  return NN_OK;
}

nn_status nn_kernel_add(nn_kernel *k, const nn_spike_call *c, nn_error *err) {
  return nn_kernel_add_par(k, c, NULL, err);
}

nn_status nn_kernel_add_ref(nn_kernel *k, const nn_spike_call *c, nn_error *err) {
  nn_status st;
  if ((st = check_call(k, c, err)) != NN_OK) return st;
  const int64_t S = k->S, Nn = c->neurons;
  const double N = (double)Nn;
  double *x = malloc((size_t)(S * Nn) * sizeof *x), *s = malloc((size_t)S * sizeof *s);
  if (!x || !s) {
    free(x);
    free(s);
    return nn_fail(err, NN_ENOMEM, "kernel: out of memory");
  }
  for (int64_t i = 0; i < S; i++) {
    s[i] = 0;
    for (int64_t n = 0; n < Nn; n++) {
      x[i * Nn + n] = (double)((c->bits[i * c->words + n / 64] >> (n % 64)) & 1);
      s[i] += x[i * Nn + n];
    }
    s[i] /= N;
  }
  for (int64_t i = 0; i < S; i++)
    for (int64_t j = 0; j < S; j++) {
      double h = 0; /* (x (1-x)^T + (1-x) x^T)_ij */
      for (int64_t n = 0; n < Nn; n++)
        h += x[i * Nn + n] * (1 - x[j * Nn + n]) + (1 - x[i * Nn + n]) * x[j * Nn + n];
      k->K[i * S + j] += kernel_term(N, s[i], s[j], h);
    }
  free(x);
  free(s);
  k->calls++;
  return NN_OK;
}

nn_status nn_kernel_score(const nn_kernel *k, double *score, int *sign, nn_error *err) {
  int sg = 0;
  nn_status st;
  if (!k || !score) return nn_fail(err, NN_EINVAL, "kernel: kernel and score expected");
  if (k->calls == 0) {
    *score = -INFINITY;
    if (sign) *sign = 0;
    return NN_OK;
  }
  const int64_t n = k->S * k->S;
  double *A = malloc((size_t)n * sizeof *A);
  if (!A) return nn_fail(err, NN_ENOMEM, "kernel: out of memory");
  for (int64_t i = 0; i < n; i++) A[i] = k->K[i] / (double)k->calls;
  st = nn_logdet(k->S, A, score, &sg, err);
  free(A);
  if (st != NN_OK) return st;
  if (isnan(*score)) *score = -INFINITY; /* cannot happen for finite K; never hand out NaN */
  if (sign) *sign = sg;
  return NN_OK;
}
