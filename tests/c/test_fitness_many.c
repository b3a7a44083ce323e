/* test_fitness_many.c: nn_fitness_many (docs/fitness.md; docs/search.md) scores several nets on threads exactly as
 * sequential nn_fitness_eval calls do: bit-identical scores and kernels' diagnostics, the same
 * cache hits, misses, evictions and entries; BLAS threads restored; errors of the first
 * failing net. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_blas.h"
#include "neuronas/nn_cell.h"
#include "neuronas/nn_fitness.h"
#include "neuronas/nn_quant.h"
#include "neuronas/nn_rng.h"
#include "nn_net_impl.h"
#include "nn_test.h"

#define NNETS 7

static nn_tensor *rand_batch(int64_t S, uint64_t seed) {
  nn_rng r = nn_rng_seed(seed);
  nn_tensor *x = nn_tensor_new4(4, S, 1, 28, 28, NULL);
  if (x) nn_tensor_normal(x, &r, 0, 1);
  return x;
}

static nn_net *fm_qnet(const char *a, const char *b, uint64_t seed) {
  nn_error err;
  nn_net_params p = nn_net_params_default(); /* fashion-mnist preset */
  nn_quant_params qp = nn_quant_params_default(); /* FxP8 */
  p.seed = seed;
  if (nn_cell_parse(a, NN_CELL_FORM_AUTO, &p.cell_a, &err) != NN_OK) return NULL;
  if (nn_cell_parse(b, NN_CELL_FORM_AUTO, &p.cell_b, &err) != NN_OK) return NULL;
  nn_net *raw = nn_net_new(&p, &err), *q = raw ? nn_quant_net(&qp, raw, NULL, &err) : NULL;
  nn_net_free(raw);
  return q;
}

static int same_diag(const nn_fitness_diag *a, const nn_fitness_diag *b) {
  int ok = a->repeats == b->repeats && a->samples == b->samples && a->lif_calls == b->lif_calls &&
           a->cache_hits == b->cache_hits && a->cache_misses == b->cache_misses &&
           a->modules == b->modules &&
           memcmp(a->scores, b->scores, (size_t)a->repeats * sizeof(double)) == 0 &&
           memcmp(a->signs, b->signs, (size_t)a->repeats * sizeof(int)) == 0;
  for (int m = 0; ok && m < a->modules; m++)
    ok = !strcmp(a->module[m].name, b->module[m].name) && a->module[m].calls == b->module[m].calls &&
         a->module[m].fired == b->module[m].fired &&
         memcmp(&a->module[m].firing_rate, &b->module[m].firing_rate, sizeof(double)) == 0;
  return ok;
}

static int same_stats(nn_fitness_cache_stats a, nn_fitness_cache_stats b) {
  return a.hits == b.hits && a.misses == b.misses && a.evictions == b.evictions &&
         a.entries == b.entries && a.bytes == b.bytes;
}

/* Stage-2-like candidates (two cell A values, so the cache hits, misses and evicts) with 2
 * repeats, for 1, 2 and 3 threads, with and without a cache. */
static void many_equals_sequential(void) {
  static const char *A[NNETS] = {"120111", "120111", "120111", "201120", "201120", "120111", "120111"};
  static const char *B[NNETS] = {"101021", "111111", "000000", "222222", "012012", "210210", "101010"};
  nn_error err;
  nn_net *nets[NNETS];
  nn_tensor *x1 = rand_batch(12, 5), *x2 = rand_batch(12, 6);
  const nn_tensor *b[2] = {x1, x2};
  double want[NNETS], got[NNETS];
  nn_fitness_diag *wd = calloc(NNETS, sizeof *wd), *gd = calloc(NNETS, sizeof *gd);
  for (int i = 0; i < NNETS; i++) CHECK((nets[i] = fm_qnet(A[i], B[i], 3)) != NULL);
  for (int use_cache = 0; use_cache <= 1; use_cache++)
    for (int threads = 1; threads <= 3; threads++) {
      nn_fitness_cache_params cp = nn_fitness_cache_params_default();
      cp.max_entries = 3; /* 2 batches x 2 cell A values: evictions happen */
      nn_fitness_cache *c1 = use_cache ? nn_fitness_cache_new(&cp, &err) : NULL;
      nn_fitness_cache *c2 = use_cache ? nn_fitness_cache_new(&cp, &err) : NULL;
      nn_fitness_opts so = {.cache = c1};
      for (int i = 0; i < NNETS; i++) CHECK(nn_fitness_eval(nets[i], b, 2, &so, &want[i], &wd[i], &err) == NN_OK);
      nn_blas_set_threads(2);
      nn_fitness_many_opts mo = {threads, c2};
      CHECK(nn_fitness_many(nets, NNETS, b, 2, &mo, got, gd, &err) == NN_OK);
      CHECK(nn_blas_get_threads() == 2); /* restored */
      for (int i = 0; i < NNETS; i++) {
        CHECK(memcmp(&want[i], &got[i], sizeof want[i]) == 0);
        CHECK(isfinite(got[i]));
        CHECK(same_diag(&wd[i], &gd[i]));
      }
      if (use_cache) {
        nn_fitness_cache_stats s1 = nn_fitness_cache_stats_of(c1), s2 = nn_fitness_cache_stats_of(c2);
        CHECK(same_stats(s1, s2));
        CHECK(s2.hits == 8 && s2.misses == 6 && s2.evictions > 0 && s2.entries == 3);
        /* the entries left behind are the same: another round hits them alike */
        CHECK(nn_fitness_eval(nets[0], b, 2, &so, &want[0], &wd[0], &err) == NN_OK);
        CHECK(nn_fitness_many(nets, 1, b, 2, &mo, got, gd, &err) == NN_OK);
        CHECK(memcmp(&want[0], &got[0], sizeof want[0]) == 0 && same_diag(&wd[0], &gd[0]));
        CHECK(same_stats(nn_fitness_cache_stats_of(c1), nn_fitness_cache_stats_of(c2)));
      }
      nn_fitness_cache_free(c1);
      nn_fitness_cache_free(c2);
    }
  for (int i = 0; i < NNETS; i++) nn_net_free(nets[i]);
  nn_tensor_free(x1);
  nn_tensor_free(x2);
  free(wd);
  free(gd);
}

/* At batch 64 with dense convs OpenBLAS would split the sgemms over 2 threads, which rounds
 * differently from 1 (a flipped spike is rare: spec.fitness_many has a candidate where it
 * happens): scores with either BLAS setting and from fitness_many agree, and the setting is
 * restored. */
static void many_equals_sequential_dense_batch64(void) {
  nn_error err;
  nn_net *nets[2] = {fm_qnet("111111", "111111", 1), fm_qnet("212121", "212121", 1)};
  nn_tensor *x = rand_batch(64, 9);
  const nn_tensor *b[1] = {x};
  double want[2], want1[2], got[2];
  for (int i = 0; i < 2; i++) {
    CHECK(nets[i] != NULL);
    if (!nets[i]) return;
    nn_net_set_conv_mode(nets[i], NN_CONV_DENSE);
  }
  for (int i = 0; i < 2; i++) {
    nn_blas_set_threads(2);
    CHECK(nn_fitness_eval(nets[i], b, 1, NULL, &want[i], NULL, &err) == NN_OK);
    CHECK(nn_blas_get_threads() == 2);
    nn_blas_set_threads(1);
    CHECK(nn_fitness_eval(nets[i], b, 1, NULL, &want1[i], NULL, &err) == NN_OK);
    CHECK(memcmp(&want[i], &want1[i], sizeof want[i]) == 0);
  }
  nn_blas_set_threads(2);
  nn_fitness_many_opts mo = {2, NULL};
  CHECK(nn_fitness_many(nets, 2, b, 1, &mo, got, NULL, &err) == NN_OK);
  CHECK(memcmp(want, got, sizeof want) == 0);
  for (int i = 0; i < 2; i++) nn_net_free(nets[i]);
  nn_tensor_free(x);
}

static void many_errors(void) {
  nn_error err;
  nn_net *n1 = fm_qnet("120111", "101021", 3), *n2 = fm_qnet("120111", "111111", 3);
  nn_tensor *x = rand_batch(6, 7), *one = rand_batch(1, 7);
  const nn_tensor *b[1] = {x};
  double s[3];
  nn_fitness_many_opts mo = {2, NULL};
  nn_net *dup[2] = {n1, n1}, *pair[2] = {n1, n2};
  CHECK(nn_fitness_many(dup, 2, b, 1, &mo, s, NULL, &err) == NN_EINVAL);
  CHECK(!strcmp(err.msg, "fitness_many: net 2 is net 1 again (score it once)"));
  mo.threads = NN_FITNESS_MAX_THREADS + 1;
  CHECK(nn_fitness_many(pair, 2, b, 1, &mo, s, NULL, &err) == NN_EINVAL);
  mo.threads = 2;
  CHECK(nn_fitness_many(pair, 2, b, 0, &mo, s, NULL, &err) == NN_EINVAL);
  b[0] = one;
  CHECK(nn_fitness_many(pair, 2, b, 1, &mo, s, NULL, &err) == NN_EINVAL);
  CHECK(!strcmp(err.msg, "fitness: batch of 1 samples (at least 2 expected)"));
  /* a net whose forward fails (another input size) fails the call with its message */
  nn_net_params p = nn_net_params_default();
  p.in_h = p.in_w = 32;
  nn_net *other = nn_net_new(&p, &err);
  nn_net *mixed[3] = {n1, other, n2};
  nn_fitness_cache *c = nn_fitness_cache_new(NULL, &err);
  mo.cache = c;
  b[0] = x;
  CHECK(nn_fitness_many(mixed, 3, b, 1, &mo, s, NULL, &err) == NN_EINVAL);
  CHECK(strstr(err.msg, "input has shape 6x1x28x28") != NULL);
  /* the cache keeps only computed prefixes: n1's prefix is there and hits */
  nn_fitness_cache_stats st = nn_fitness_cache_stats_of(c);
  CHECK(st.entries == 1);
  nn_fitness_diag d;
  CHECK(nn_fitness_many(pair, 1, b, 1, &mo, s, &d, &err) == NN_OK && d.cache_hits == 1);
  CHECK(nn_fitness_many(pair, 0, b, 1, &mo, s, NULL, &err) == NN_OK); /* nothing to do */
  nn_fitness_cache_free(c);
  nn_net_free(other);
  nn_net_free(n1);
  nn_net_free(n2);
  nn_tensor_free(x);
  nn_tensor_free(one);
}

/* Nets whose once steps (the stem: a conv and its BatchNorm) read the same tensors compute the
 * same stem output: nn_fitness_many computes it once for them. Checked here: the prefix from a
 * given stem output is the prefix that runs the stem (cell-B inputs bit for bit); nets that
 * differ in any tensor the stem reads are told apart, those that differ elsewhere (cell A, the
 * BN's running statistics in training mode) are not; and a list mixing such nets scores exactly
 * as sequential calls do (a stem shared with the wrong nets changes their scores). */
static void shared_stem(void) {
  nn_error err;
  enum { N = 6 };
  nn_net *n[N] = {fm_qnet("120111", "101021", 3), fm_qnet("201120", "111111", 3), fm_qnet("120111", "101021", 4),
                  fm_qnet("120111", "012012", 3), fm_qnet("222222", "210210", 3), fm_qnet("012012", "101010", 3)};
  nn_tensor *x1 = rand_batch(10, 21), *x2 = rand_batch(10, 22);
  const nn_tensor *b[2] = {x1, x2};
  for (int i = 0; i < N; i++) CHECK(n[i] != NULL);
  if (!n[0] || !n[N - 1]) return;
  CHECK(!strcmp(n[0]->plan.steps[0].path, "stem.conv") && n[0]->plan.steps[1].op == NN_STEP_BN &&
        n[0]->plan.steps[1].once && !n[0]->plan.steps[2].once);
  /* n3: one stem weight moved by an ulp; n4: the stem BN's gamma; n5: its running mean only */
  float *w3 = nn_tensor_data(nn_net_step_tensor(n[3], 0, 0));
  w3[7] = nextafterf(w3[7], 1.0f);
  nn_tensor_data(nn_net_step_tensor(n[4], 1, 0))[2] = 1.5f;
  nn_tensor_data(nn_net_step_tensor(n[5], 1, 2))[0] = 0.25f;
  CHECK(nn_net_same_stem(n[0], n[1], 1) && nn_net_same_stem(n[1], n[0], 0));
  CHECK(!nn_net_same_stem(n[0], n[2], 1)); /* another seed */
  CHECK(!nn_net_same_stem(n[0], n[3], 1) && !nn_net_same_stem(n[0], n[4], 1));
  CHECK(nn_net_same_stem(n[0], n[5], 1) && !nn_net_same_stem(n[0], n[5], 0));
  /* the prefix from a given stem output: the same cell-B inputs as running the stem */
  nn_forward_opts fo = {.train = 1, .spikes_only = 1};
  nn_tensor *stem = NULL, *want = NULL, *got = NULL;
  CHECK(nn_net_forward_stem(n[1], x1, &fo, &stem, &err) == NN_OK);
  CHECK(stem && nn_tensor_dim(stem, 0) == 10 && nn_tensor_numel(stem) == 10 * 16 * 28 * 28);
  CHECK(nn_net_forward_prefix(n[0], x1, &fo, &want, &err) == NN_OK);
  CHECK(nn_net_forward_prefix_stem(n[0], x1, stem, &fo, &got, &err) == NN_OK);
  CHECK(want && got && want->numel == got->numel &&
        !memcmp(want->data, got->data, (size_t)want->numel * sizeof(float)));
  nn_tensor_free(got);
  got = NULL;
  /* the stem output is what the prefix reads: x2's, given with x1, gives x2's prefix */
  nn_tensor *stem2 = NULL, *want2 = NULL;
  CHECK(nn_net_forward_stem(n[1], x2, &fo, &stem2, &err) == NN_OK);
  CHECK(nn_net_forward_prefix(n[0], x2, &fo, &want2, &err) == NN_OK);
  CHECK(nn_net_forward_prefix_stem(n[0], x1, stem2, &fo, &got, &err) == NN_OK);
  CHECK(want2 && got && !memcmp(want2->data, got->data, (size_t)want2->numel * sizeof(float)) &&
        memcmp(want->data, got->data, (size_t)want->numel * sizeof(float)));
  nn_tensor_free(got);
  nn_tensor_free(stem2);
  nn_tensor_free(want2);
  got = NULL;
  nn_tensor *half = rand_batch(5, 21);
  CHECK(nn_net_forward_prefix_stem(n[0], half, stem, &fo, &got, &err) == NN_EINVAL && !got);
  CHECK(strstr(err.msg, "stem output does not fit") != NULL);
  /* a list of them: as sequential calls, for 1 and 2 threads, 1 and 2 repeats */
  for (int threads = 1; threads <= 2; threads++)
    for (int reps = 1; reps <= 2; reps++) {
      double seq[N], many[N];
      for (int i = 0; i < N; i++) CHECK(nn_fitness_eval(n[i], b, reps, NULL, &seq[i], NULL, &err) == NN_OK);
      nn_fitness_many_opts mo = {threads, NULL};
      CHECK(nn_fitness_many(n, N, b, reps, &mo, many, NULL, &err) == NN_OK);
      CHECK(!memcmp(seq, many, sizeof seq));
      for (int i = 0; i < N; i++) CHECK(isfinite(many[i]));
    }
  /* and the stem's running statistics are the net's own again afterwards */
  CHECK(nn_tensor_data(nn_net_step_tensor(n[5], 1, 2))[0] == 0.25f);
  nn_tensor_free(half);
  nn_tensor_free(stem);
  nn_tensor_free(want);
  for (int i = 0; i < N; i++) nn_net_free(n[i]);
  nn_tensor_free(x1);
  nn_tensor_free(x2);
}

int main(void) {
  NN_TEST_RUN(many_equals_sequential);
  NN_TEST_RUN(many_equals_sequential_dense_batch64);
  NN_TEST_RUN(many_errors);
  NN_TEST_RUN(shared_stem);
  return NN_TEST_END();
}
