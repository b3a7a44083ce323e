/* nn_safetensors.h: reading and writing the safetensors format (weights I/O and the test
 * fixtures; docs/interop.md). Format: 8-byte little-endian header length n, n bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the raw little-endian data (offsets relative to the end of the header).
 *
 * Reading: nn_st_open parses the header only; tensors are read on demand and converted from
 * F32, F64, I64, I32, I16, I8 or U8 to float or double. Errors name the file and the tensor. */
#ifndef NEURONAS_NN_SAFETENSORS_H
#define NEURONAS_NN_SAFETENSORS_H

#include "nn.h"
#include "nn_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_st_file nn_st_file;

/* Opens and parses path's header; caller owns the result (nn_st_close, NULL ok).
 * NN_EIO when the file cannot be read, NN_EFORMAT when it is not valid safetensors
 * (truncated data, offsets out of range, unknown dtype, shape/size mismatch). */
nn_st_file *nn_st_open(const char *path, nn_error *err);
void nn_st_close(nn_st_file *f);
const char *nn_st_path(const nn_st_file *f);

size_t nn_st_count(const nn_st_file *f);          /* tensors in the file (metadata excluded) */
const char *nn_st_name(const nn_st_file *f, size_t i); /* in file order */
int nn_st_find(const nn_st_file *f, const char *name); /* index or -1 */
/* Shape and dtype ("F32", "F64", "I64", "I32", "U8", ...) of tensor i. */
int nn_st_ndim(const nn_st_file *f, size_t i);
const int64_t *nn_st_shape(const nn_st_file *f, size_t i);
int64_t nn_st_numel(const nn_st_file *f, size_t i);
const char *nn_st_dtype(const nn_st_file *f, size_t i);
/* Value of a "__metadata__" key, or NULL. */
const char *nn_st_meta(const nn_st_file *f, const char *key);

/* Reads tensor `name` converted to float / double into dst, which holds `numel` values;
 * NN_EINVAL when the tensor is missing ("<file>: no tensor 'x'") or has a different element
 * count ("<file>: tensor 'x' has 12 elements (shape 3x4), expected 16"). */
nn_status nn_st_read_f32(nn_st_file *f, const char *name, float *dst, int64_t numel, nn_error *err);
nn_status nn_st_read_f64(nn_st_file *f, const char *name, double *dst, int64_t numel, nn_error *err);
/* Reads tensor `name` as a new float tensor of its stored shape; caller owns it. */
nn_tensor *nn_st_read_tensor(nn_st_file *f, const char *name, nn_error *err);
/* NN_EFORMAT when one of the n values x read from tensor `name` of f is not finite (NaN, an
 * infinity, or an F64 value beyond float32's range that the read turned into one), naming the
 * file, the tensor and the element (1-based): "<file>: tensor 'x' element 2 is not finite", for
 * F64 "... is not finite as float32 (F64 values must lie within +-3.40282e+38)". Used wherever a
 * file's values enter a tensor (nn.tensor.load, net and trainer loading). */
nn_status nn_st_check_finite(const nn_st_file *f, const char *name, const float *x, int64_t n,
                             nn_error *err);

/* Writes tensors as F32 to path (atomically: path.tmp then rename). meta is NULL or a
 * NULL-terminated list of key, value, key, value, ... strings for "__metadata__". NN_EINVAL,
 * nothing written, for a tensor named "__metadata__" (the format reserves the name). */
typedef struct nn_st_entry {
  const char *name;
  const nn_tensor *t;
} nn_st_entry;
nn_status nn_st_write(const char *path, const nn_st_entry *entries, size_t n,
                      const char *const *meta, nn_error *err);

/* Writes typed arrays (integer codes, PyTorch's int64 counters), atomically as nn_st_write.
 * dtype is "F32", "F64", "I64", "I32", "I16", "I8" or "U8"; data holds prod(shape) elements of
 * it in host (little-endian) order; ndim 0 is a scalar. NN_EINVAL for another dtype. */
typedef struct nn_st_raw {
  const char *name;
  const char *dtype;
  int ndim;
  const int64_t *shape;
  const void *data;
} nn_st_raw;
nn_status nn_st_write_raw(const char *path, const nn_st_raw *entries, size_t n,
                          const char *const *meta, nn_error *err);

#ifdef __cplusplus
}
#endif
#endif
