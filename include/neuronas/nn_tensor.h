/* nn_tensor.h: dense float32 N-d tensors, row-major, contiguous (the engine's one array type).
 * A tensor owns its data. Shapes have 0..NN_TENSOR_MAXDIM dimensions, each >= 0. */
#ifndef NEURONAS_NN_TENSOR_H
#define NEURONAS_NN_TENSOR_H

#include "nn.h"
#include "nn_rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NN_TENSOR_MAXDIM 8
/* Elements of one tensor at most (docs/reliability.md "Bounds"): 2^28 float32 values, 1 GiB,
 * above a whole CIFAR-10 training split in one batch (153.6M values). A larger shape fails with
 * NN_EINVAL before anything is allocated. */
#define NN_TENSOR_MAX_NUMEL ((int64_t)1 << 28)

typedef struct nn_tensor nn_tensor;

/* New zero-filled tensor; caller owns it (nn_tensor_free). NULL on failure (err set). */
nn_tensor *nn_tensor_new(int ndim, const int64_t *shape, nn_error *err);
/* Convenience for up to 4 dims: nn_tensor_new4(2, 3, 4, 0, 0, err) makes a 3x4. */
nn_tensor *nn_tensor_new4(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, nn_error *err);
nn_tensor *nn_tensor_clone(const nn_tensor *t, nn_error *err);
void nn_tensor_free(nn_tensor *t); /* NULL is a no-op */

int nn_tensor_ndim(const nn_tensor *t);
const int64_t *nn_tensor_shape(const nn_tensor *t);
int64_t nn_tensor_dim(const nn_tensor *t, int i); /* 1 for i >= ndim */
int64_t nn_tensor_numel(const nn_tensor *t);
float *nn_tensor_data(nn_tensor *t);
const float *nn_tensor_cdata(const nn_tensor *t);

/* Same numel, new shape (no copy). NN_EINVAL when numel differs. */
nn_status nn_tensor_reshape(nn_tensor *t, int ndim, const int64_t *shape, nn_error *err);
/* dst and src must have equal numel. */
nn_status nn_tensor_copy(nn_tensor *dst, const nn_tensor *src, nn_error *err);
void nn_tensor_fill(nn_tensor *t, float v);
/* Fill with U[lo,hi) / N(mean,std) from the stream r (advances r). */
void nn_tensor_uniform(nn_tensor *t, nn_rng *r, float lo, float hi);
void nn_tensor_normal(nn_tensor *t, nn_rng *r, float mean, float std);

/* Reductions in double; min/max of an empty tensor are +inf/-inf, sum 0, mean NaN-free 0. */
double nn_tensor_sum(const nn_tensor *t);
double nn_tensor_min(const nn_tensor *t);
double nn_tensor_max(const nn_tensor *t);
int nn_tensor_same_shape(const nn_tensor *a, const nn_tensor *b);
/* Formats the shape as "2x3x4" into buf; returns buf. */
char *nn_tensor_shape_str(const nn_tensor *t, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
