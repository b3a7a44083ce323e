/* test_fitness.c: the docs/fitness.md Hamming kernel against hand-computed values, a naive float
 * implementation and naive elimination; properties of the score. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_blas.h"
#include "neuronas/nn_fitness.h"
#include "nn_test.h"

/* Random spikes: S rows of N neurons, each firing with probability p (per row p may vary:
 * row r uses p * (r % 3) / 2, so some rows are silent when p*0 = 0). */
static uint64_t *rand_bits(nn_rng *r, int64_t S, int64_t N, double p, int vary) {
  int64_t W = (N + 63) / 64;
  uint64_t *b = calloc((size_t)(S * W), sizeof *b);
  for (int64_t s = 0; s < S; s++) {
    double ps = vary ? p * (double)(s % 3) / 2 : p;
    for (int64_t n = 0; n < N; n++)
      if (nn_rng_uniform(r) < ps) b[s * W + n / 64] |= 1ull << (n % 64);
  }
  return b;
}

static nn_spike_call call_of(const uint64_t *b, int64_t S, int64_t N) {
  int64_t fired = 0, W = (N + 63) / 64;
  for (int64_t i = 0; i < S * W; i++) fired += __builtin_popcountll(b[i]);
  nn_spike_call c = {"test.lif", 0, S, N, W, b, fired};
  return c;
}

/* S = 2, N = 4: b0 = 1100, b1 = 1010 -> s = 1/2, 1/2; normK = (1/4 + 1/4) 4 = 2; H = 2;
 * K01 = 4 - 0.5/2.001 * 2; K00 = K11 = 4. det = 16 - K01^2. */
static void hand_computed(void) {
  nn_error err;
  uint64_t b[2] = {0x3, 0x5};
  nn_kernel *k = nn_kernel_new(2, &err);
  nn_spike_call c = call_of(b, 2, 4);
  CHECK(nn_kernel_add(k, &c, &err) == NN_OK);
  const double *K = nn_kernel_values(k);
  double k01 = 4 - 0.5 / 2.001 * 2;
  CHECK_NEAR(K[0], 4, 0);
  CHECK_NEAR(K[1], k01, 1e-15);
  CHECK_NEAR(K[2], k01, 1e-15);
  double score;
  int sign;
  CHECK(nn_kernel_score(k, &score, &sign, &err) == NN_OK);
  CHECK_NEAR(score, log(16 - k01 * k01), 1e-12);
  CHECK(sign == 1);
  /* a second call with the same spikes: K doubles, K / calls unchanged */
  CHECK(nn_kernel_add(k, &c, &err) == NN_OK);
  CHECK(nn_kernel_calls(k) == 2 && K[1] == 2 * k01);
  double s2;
  CHECK(nn_kernel_score(k, &s2, NULL, &err) == NN_OK);
  CHECK_NEAR(s2, score, 1e-12);
  nn_kernel_free(k);
}

/* The packed popcount path equals the naive double twin exactly (the Hamming counts are
 * integers and both evaluate the same term), for S not a multiple of 4, N with a tail word,
 * silent and saturated rows. */
static void fast_matches_ref(void) {
  nn_error err;
  nn_rng r = nn_rng_seed(3);
  const int64_t Ss[] = {1, 3, 4, 13, 32};
  const int64_t Ns[] = {1, 63, 64, 200, 1000, 200000}; /* at S = 32: two 2048-word chunks */
  for (size_t a = 0; a < 5; a++)
    for (size_t b = 0; b < 6; b++) {
      if (b == 5 && a != 4) continue; /* the naive twin is O(S^2 N) */
      int64_t S = Ss[a], N = Ns[b];
      nn_kernel *k1 = nn_kernel_new(S, &err), *k2 = nn_kernel_new(S, &err);
      for (int rep = 0; rep < 3; rep++) {
        uint64_t *bits = rand_bits(&r, S, N, rep == 2 ? 1.0 : 0.1 * (rep + 1), rep != 1);
        nn_spike_call c = call_of(bits, S, N);
        CHECK(nn_kernel_add(k1, &c, &err) == NN_OK);
        CHECK(nn_kernel_add_ref(k2, &c, &err) == NN_OK);
        free(bits);
      }
      CHECK(memcmp(nn_kernel_values(k1), nn_kernel_values(k2),
                   (size_t)(S * S) * sizeof(double)) == 0);
      nn_kernel_free(k1);
      nn_kernel_free(k2);
    }
}

/* SNASNet's own arithmetic: float32 0/1 matrices and products per call,
 * K = N - 0.5/(normK+1e-3) * (x(1-x)^T + (1-x)x^T), accumulated in double. */
static void matches_naive_float(void) {
  nn_error err;
  nn_rng r = nn_rng_seed(5);
  const int64_t S = 16, N = 777;
  nn_kernel *k = nn_kernel_new(S, &err);
  double *ref = calloc((size_t)(S * S), sizeof *ref);
  float *x = malloc((size_t)(S * N) * sizeof *x);
  for (int call = 0; call < 6; call++) {
    uint64_t *bits = rand_bits(&r, S, N, 0.05 + 0.1 * call, call % 2);
    nn_spike_call c = call_of(bits, S, N);
    CHECK(nn_kernel_add(k, &c, &err) == NN_OK);
    float s[16];
    for (int64_t i = 0; i < S; i++) {
      float sum = 0;
      for (int64_t n = 0; n < N; n++) {
        x[i * N + n] = (float)((bits[i * c.words + n / 64] >> (n % 64)) & 1);
        sum += x[i * N + n];
      }
      s[i] = sum / (float)N;
    }
    for (int64_t i = 0; i < S; i++)
      for (int64_t j = 0; j < S; j++) {
        float a = 0, b2 = 0;
        for (int64_t n = 0; n < N; n++) {
          a += x[i * N + n] * (1 - x[j * N + n]);
          b2 += (1 - x[i * N + n]) * x[j * N + n];
        }
        float normK = (s[i] * (1 - s[j]) + (1 - s[i]) * s[j]) * (float)N;
        ref[i * S + j] += (double)((float)N - 0.5f / (normK + 1e-3f) * (a + b2));
      }
    free(bits);
  }
  const double *K = nn_kernel_values(k);
  for (int64_t i = 0; i < S * S; i++) CHECK_REL(K[i], ref[i], 1e-5);
  nn_kernel_free(k);
  free(ref);
  free(x);
}

/* score (LAPACK) vs naive elimination on the same K / calls; permuting the samples permutes
 * K symmetrically and leaves the score unchanged. */
static void logdet_and_permutation(void) {
  nn_error err;
  nn_rng r = nn_rng_seed(9);
  const int64_t S = 24, N = 500, W = (N + 63) / 64;
  nn_kernel *k = nn_kernel_new(S, &err), *kp = nn_kernel_new(S, &err);
  int64_t perm[24];
  for (int64_t i = 0; i < S; i++) perm[i] = i;
  for (int64_t i = S - 1; i > 0; i--) { /* Fisher-Yates */
    int64_t j = (int64_t)nn_rng_below(&r, (uint64_t)i + 1), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  for (int call = 0; call < 5; call++) {
    uint64_t *bits = rand_bits(&r, S, N, 0.1 * (call + 1), 0);
    uint64_t *pb = malloc((size_t)(S * W) * sizeof *pb);
    for (int64_t i = 0; i < S; i++) memcpy(pb + i * W, bits + perm[i] * W, (size_t)W * 8);
    nn_spike_call c = call_of(bits, S, N), cp = call_of(pb, S, N);
    CHECK(nn_kernel_add(k, &c, &err) == NN_OK);
    CHECK(nn_kernel_add(kp, &cp, &err) == NN_OK);
    free(bits);
    free(pb);
  }
  double score, sp, naive;
  int sign, sg;
  CHECK(nn_kernel_score(k, &score, &sign, &err) == NN_OK);
  CHECK(nn_kernel_score(kp, &sp, NULL, &err) == NN_OK);
  double *A = malloc((size_t)(S * S) * sizeof *A);
  for (int64_t i = 0; i < S * S; i++) A[i] = nn_kernel_values(k)[i] / 5;
  nn_logdet_ref(S, A, &naive, &sg);
  CHECK(isfinite(score) && sign == sg);
  CHECK_NEAR(score, naive, 1e-9 * fabs(naive) + 1e-9);
  CHECK_NEAR(score, sp, 1e-9 * fabs(score) + 1e-9);
  free(A);
  nn_kernel_free(k);
  nn_kernel_free(kp);
}

/* Silent calls add N everywhere (a rank-one term): finite with other calls, -inf alone.
 * Two identical samples make K exactly singular: -inf, never NaN. No call: -inf. */
static void degenerate(void) {
  nn_error err;
  nn_rng r = nn_rng_seed(12);
  const int64_t S = 8, N = 300, W = (N + 63) / 64;
  nn_kernel *k = nn_kernel_new(S, &err);
  double score;
  int sign;
  CHECK(nn_kernel_score(k, &score, &sign, &err) == NN_OK);
  CHECK(score == -INFINITY && sign == 0);
  uint64_t *silent = calloc((size_t)(S * W), 8);
  nn_spike_call cs = call_of(silent, S, N);
  CHECK(nn_kernel_add(k, &cs, &err) == NN_OK);
  CHECK(nn_kernel_score(k, &score, &sign, &err) == NN_OK);
  CHECK(score == -INFINITY && sign == 0);
  uint64_t *bits = rand_bits(&r, S, N, 0.2, 0);
  nn_spike_call c = call_of(bits, S, N);
  CHECK(nn_kernel_add(k, &c, &err) == NN_OK);
  CHECK(nn_kernel_add(k, &cs, &err) == NN_OK);
  CHECK(nn_kernel_score(k, &score, &sign, &err) == NN_OK);
  CHECK(isfinite(score));
  /* duplicate sample 3 into 5 */
  memcpy(bits + 5 * W, bits + 3 * W, (size_t)W * 8);
  nn_kernel_reset(k);
  CHECK(nn_kernel_add(k, &c, &err) == NN_OK);
  CHECK(nn_kernel_score(k, &score, &sign, &err) == NN_OK);
  CHECK(score == -INFINITY && !isnan(score));
  free(silent);
  free(bits);
  nn_kernel_free(k);
}

static void bad_calls(void) {
  nn_error err;
  uint64_t b[4] = {1, 2, 3, 1ull << 40};
  nn_kernel *k = nn_kernel_new(4, &err);
  nn_spike_call c = {"cellA.e01.lif", 0, 3, 10, 1, b, 0};
  CHECK(nn_kernel_add(k, &c, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "kernel: cellA.e01.lif has 3 samples, the kernel 4") == 0);
  c.samples = 4;
  CHECK(nn_kernel_add(k, &c, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "kernel: cellA.e01.lif: sample 3 has bits past neuron 10") == 0);
  c.words = 2;
  CHECK(nn_kernel_add(k, &c, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "kernel: cellA.e01.lif: 10 neurons in 2 words") == 0);
  CHECK(nn_kernel_calls(k) == 0);
  CHECK(nn_kernel_new(0, &err) == NULL);
  CHECK(strcmp(err.msg, "kernel: samples=0 outside 1..65536") == 0);
  nn_kernel_free(k);
  nn_kernel_free(NULL);
}

int main(void) {
  NN_TEST_RUN(hand_computed);
  NN_TEST_RUN(fast_matches_ref);
  NN_TEST_RUN(matches_naive_float);
  NN_TEST_RUN(logdet_and_permutation);
  NN_TEST_RUN(degenerate);
  NN_TEST_RUN(bad_calls);
  return NN_TEST_END();
}
