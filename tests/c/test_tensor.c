/* test_tensor.c: tensors and the BLAS/LAPACK wrapper against naive twins. */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_blas.h"
#include "neuronas/nn_tensor.h"
#include "nn_test.h"

static void create_and_reduce(void) {
  nn_error err;
  nn_tensor *t = nn_tensor_new4(2, 3, 4, 0, 0, &err);
  CHECK(t != NULL);
  if (!t) return;
  CHECK(nn_tensor_numel(t) == 12);
  CHECK(nn_tensor_dim(t, 0) == 3 && nn_tensor_dim(t, 1) == 4 && nn_tensor_dim(t, 2) == 1);
  CHECK(nn_tensor_sum(t) == 0);
  for (int i = 0; i < 12; i++) nn_tensor_data(t)[i] = (float)(i - 5);
  CHECK(nn_tensor_sum(t) == 6);   /* sum of -5..6 */
  CHECK(nn_tensor_min(t) == -5);
  CHECK(nn_tensor_max(t) == 6);
  int64_t s[3] = {2, 2, 3};
  CHECK(nn_tensor_reshape(t, 3, s, &err) == NN_OK);
  int64_t bad[1] = {5};
  CHECK(nn_tensor_reshape(t, 1, bad, &err) == NN_EINVAL);
  CHECK(strstr(err.msg, "12 elements") != NULL);
  char buf[32];
  CHECK(strcmp(nn_tensor_shape_str(t, buf, sizeof buf), "2x2x3") == 0);
  nn_tensor *c = nn_tensor_clone(t, &err);
  CHECK(c && nn_tensor_same_shape(c, t) && nn_tensor_data(c)[11] == 6);
  nn_tensor_free(c);
  nn_tensor_free(t);
  nn_tensor_free(NULL);
}

static void rejects_bad_shapes(void) {
  nn_error err;
  int64_t neg[2] = {3, -1};
  CHECK(nn_tensor_new(2, neg, &err) == NULL && err.code == NN_EINVAL);
  CHECK(strstr(err.msg, "dimension 2") != NULL);
  int64_t huge[2] = {INT64_MAX / 2, 8};
  CHECK(nn_tensor_new(2, huge, &err) == NULL);
  CHECK(nn_tensor_new(9, neg, &err) == NULL);
}

#define GEMM_TOL 1e-4

static void sgemm_vs_ref(void) {
  nn_rng r = nn_rng_seed(11);
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int64_t M = 17, N = 23, K = 31;
      float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
      float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
      for (int64_t i = 0; i < M * K; i++) A[i] = (float)nn_rng_normal(&r);
      for (int64_t i = 0; i < K * N; i++) B[i] = (float)nn_rng_normal(&r);
      for (int64_t i = 0; i < M * N; i++) C[i] = R[i] = (float)nn_rng_normal(&r);
      CHECK(nn_sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 2.0f, C, N, NULL) == NN_OK);
      nn_sgemm_ref(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 2.0f, R, N);
      double worst = 0;
      for (int64_t i = 0; i < M * N; i++) worst = fmax(worst, fabs(C[i] - R[i]));
      CHECK_NEAR(worst, 0, GEMM_TOL);
      free(A), free(B), free(C), free(R);
    }
  /* hand-computed 2x2: [1 2;3 4] * [5 6;7 8] = [19 22;43 50] */
  float A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8}, C[4];
  nn_sgemm(0, 0, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2, NULL);
  CHECK(C[0] == 19 && C[1] == 22 && C[2] == 43 && C[3] == 50);
  nn_error err;
  CHECK(nn_sgemm(0, 0, (int64_t)1 << 32, 1, 1, 1, A, 1, B, 1, 0, C, 1, &err) == NN_EINVAL);
}

static void logdet_cases(void) {
  double ld;
  int sign;
  /* det [[4,1],[2,3]] = 10 */
  double A[4] = {4, 1, 2, 3};
  CHECK(nn_logdet(2, A, &ld, &sign, NULL) == NN_OK);
  CHECK_NEAR(ld, log(10.0), 1e-12);
  CHECK(sign == 1);
  /* det [[0,1],[1,0]] = -1 (needs a pivot) */
  double P[4] = {0, 1, 1, 0};
  nn_logdet(2, P, &ld, &sign, NULL);
  CHECK_NEAR(ld, 0, 1e-12);
  CHECK(sign == -1);
  /* singular -> -inf, sign 0, never NaN */
  double S[4] = {1, 2, 2, 4};
  nn_logdet(2, S, &ld, &sign, NULL);
  CHECK(isinf(ld) && ld < 0 && sign == 0);
  /* random 40x40 vs the naive twin */
  nn_rng r = nn_rng_seed(5);
  double X[1600], Y[1600], l1, l2;
  int s1, s2;
  for (int i = 0; i < 1600; i++) X[i] = Y[i] = nn_rng_normal(&r);
  nn_logdet(40, X, &l1, &s1, NULL);
  nn_logdet_ref(40, Y, &l2, &s2);
  CHECK_REL(l1, l2, 1e-10);
  CHECK(s1 == s2);
  /* NaN input is rejected, not propagated */
  double N[4] = {1, NAN, 0, 1};
  nn_error err;
  CHECK(nn_logdet(2, N, &ld, &sign, &err) == NN_EINVAL);
}

int main(void) {
  NN_TEST_RUN(create_and_reduce);
  NN_TEST_RUN(rejects_bad_shapes);
  NN_TEST_RUN(sgemm_vs_ref);
  NN_TEST_RUN(logdet_cases);
  return NN_TEST_END();
}
