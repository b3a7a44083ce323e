/* nn_blas.h: the engine's only door to OpenBLAS and its LAPACK (nn_blas.c is the
 * sole BLAS user and the only place that narrows sizes to int, with a range check). */
#ifndef NEURONAS_NN_BLAS_H
#define NEURONAS_NN_BLAS_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Row-major C = alpha * op(A) * op(B) + beta * C; op(A) is M x K, op(B) K x N.
 * ta/tb: 0 = as stored, 1 = transposed. NN_EINVAL if a size exceeds INT_MAX. */
nn_status nn_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                   nn_error *err);
/* Naive triple loop twin of nn_sgemm (tests, and reference paths). */
void nn_sgemm_ref(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* log|det(A)| of the n x n row-major matrix A (overwritten by its LU factors), by LAPACK
 * dgetrf (partial pivoting). *sign gets +1/-1, or 0 with -INFINITY for a singular matrix;
 * never NaN for finite input. NN_EINVAL for non-finite entries. */
nn_status nn_logdet(int64_t n, double *A, double *logabsdet, int *sign, nn_error *err);
/* Naive Gaussian elimination with partial pivoting: the twin of nn_logdet. */
void nn_logdet_ref(int64_t n, double *A, double *logabsdet, int *sign);

/* Threads OpenBLAS may use (0 = its default). */
void nn_blas_set_threads(int n);
/* The thread count BLAS currently uses (to restore it after nn_blas_set_threads). */
int nn_blas_get_threads(void);
const char *nn_blas_config(void);

#ifdef __cplusplus
}
#endif
#endif
