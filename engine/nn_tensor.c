/* nn_tensor.c: dense float32 tensors (the engine's array type). */
#include "nn_tensor_impl.h"
#include "nn_scratch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int shape_numel(int ndim, const int64_t *shape, int64_t *numel, nn_error *err) {
  int64_t n = 1;
  if (ndim < 0 || ndim > NN_TENSOR_MAXDIM) {
    nn_fail(err, NN_EINVAL, "tensor: %d dimensions, expected 0..%d", ndim, NN_TENSOR_MAXDIM);
    return 0;
  }
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      nn_fail(err, NN_EINVAL, "tensor: dimension %d is %lld, expected >= 0", i + 1,
              (long long)shape[i]);
      return 0;
    }
    if (shape[i] != 0 && n > INT64_MAX / 4 / shape[i]) {
      nn_fail(err, NN_EINVAL, "tensor: shape too large");
      return 0;
    }
    n *= shape[i];
  }
  if (n > NN_TENSOR_MAX_NUMEL) {
    nn_fail(err, NN_EINVAL, "tensor: %lld elements, more than the bound of %lld", (long long)n,
            (long long)NN_TENSOR_MAX_NUMEL);
    return 0;
  }
  *numel = n;
  return 1;
}

nn_tensor *nn_tensor_new_unfilled(int ndim, const int64_t *shape, nn_error *err) {
  int64_t numel;
  nn_tensor *t;
  if (!shape_numel(ndim, shape, &numel, err)) return NULL;
  t = calloc(1, sizeof *t);
  if (!t) goto oom;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->numel = numel;
  {
    const size_t used = (size_t)numel * sizeof(float), bytes = ((size_t)(numel ? numel : 1) * sizeof(float) + 63) & ~(size_t)63;
    t->data = nn_scratch_get(bytes); /* 64-byte aligned; recycled per thread (nn_scratch.h) */
    if (!t->data) goto oom;
    memset((char *)t->data + used, 0, bytes - used); /* the padding: never left undefined */
  }
  return t;
oom:
  free(t);
  nn_fail(err, NN_ENOMEM, "tensor: out of memory for %lld floats", (long long)numel);
  return NULL;
}

nn_tensor *nn_tensor_new(int ndim, const int64_t *shape, nn_error *err) {
  nn_tensor *t = nn_tensor_new_unfilled(ndim, shape, err);
  if (t) memset(t->data, 0, (size_t)t->numel * sizeof(float));
  return t;
}

nn_tensor *nn_tensor_new4(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, nn_error *err) {
  int64_t s[4] = {d0, d1, d2, d3};
  if (ndim > 4) {
    nn_fail(err, NN_EINVAL, "nn_tensor_new4: ndim %d > 4", ndim);
    return NULL;
  }
  return nn_tensor_new(ndim, s, err);
}

nn_tensor *nn_tensor_clone(const nn_tensor *t, nn_error *err) {
  nn_tensor *c = nn_tensor_new_unfilled(t->ndim, t->shape, err);
  if (c) memcpy(c->data, t->data, (size_t)t->numel * sizeof(float));
  return c;
}

void nn_tensor_free(nn_tensor *t) {
  if (!t) return;
  nn_scratch_put(t->data);
  free(t);
}

int nn_tensor_ndim(const nn_tensor *t) { return t->ndim; }
const int64_t *nn_tensor_shape(const nn_tensor *t) { return t->shape; }
int64_t nn_tensor_dim(const nn_tensor *t, int i) { return i < t->ndim ? t->shape[i] : 1; }
int64_t nn_tensor_numel(const nn_tensor *t) { return t->numel; }
float *nn_tensor_data(nn_tensor *t) { return t->data; }
const float *nn_tensor_cdata(const nn_tensor *t) { return t->data; }

nn_status nn_tensor_reshape(nn_tensor *t, int ndim, const int64_t *shape, nn_error *err) {
  int64_t numel;
  if (!shape_numel(ndim, shape, &numel, err)) return err ? err->code : NN_EINVAL;
  if (numel != t->numel)
    return nn_fail(err, NN_EINVAL, "reshape: %lld elements cannot take a shape of %lld",
                   (long long)t->numel, (long long)numel);
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  return NN_OK;
}

nn_status nn_tensor_copy(nn_tensor *dst, const nn_tensor *src, nn_error *err) {
  if (dst->numel != src->numel)
    return nn_fail(err, NN_EINVAL, "copy: %lld elements into %lld", (long long)src->numel,
                   (long long)dst->numel);
  memmove(dst->data, src->data, (size_t)src->numel * sizeof(float));
  return NN_OK;
}

void nn_tensor_fill(nn_tensor *t, float v) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
}

void nn_tensor_uniform(nn_tensor *t, nn_rng *r, float lo, float hi) {
  for (int64_t i = 0; i < t->numel; i++)
    t->data[i] = (float)(lo + (double)(hi - lo) * nn_rng_uniform(r));
}

void nn_tensor_normal(nn_tensor *t, nn_rng *r, float mean, float std) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(mean + std * nn_rng_normal(r));
}

double nn_tensor_sum(const nn_tensor *t) {
  double s = 0;
  for (int64_t i = 0; i < t->numel; i++) s += t->data[i];
  return s;
}

double nn_tensor_min(const nn_tensor *t) {
  double m = INFINITY;
  for (int64_t i = 0; i < t->numel; i++)
    if (t->data[i] < m) m = t->data[i];
  return m;
}

double nn_tensor_max(const nn_tensor *t) {
  double m = -INFINITY;
  for (int64_t i = 0; i < t->numel; i++)
    if (t->data[i] > m) m = t->data[i];
  return m;
}

int nn_tensor_same_shape(const nn_tensor *a, const nn_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

char *nn_tensor_shape_str(const nn_tensor *t, char *buf, size_t n) {
  size_t used = 0;
  if (n == 0) return buf;
  buf[0] = 0;
  if (t->ndim == 0) {
    snprintf(buf, n, "scalar");
    return buf;
  }
  for (int i = 0; i < t->ndim && used < n; i++) {
    int w = snprintf(buf + used, n - used, i ? "x%lld" : "%lld", (long long)t->shape[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
  return buf;
}
