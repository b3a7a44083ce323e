/* nn_data_impl.h: the dataset structs shared by nn_data.c and the format readers
 * (nn_data_idx.c, nn_data_cifar.c, nn_data_npy.c); docs/data.md. */
#ifndef NEURONAS_NN_DATA_IMPL_H
#define NEURONAS_NN_DATA_IMPL_H

#include "neuronas/nn_data.h"

/* Upper bounds that keep every size computation far from overflow (also for fuzzed input). */
#define NN_DATA_MAX_CHANNELS 64
#define NN_DATA_MAX_SIDE 65536
#define NN_DATA_MAX_PAD 1024
#define NN_DATA_MAX_CLASSES (1 << 24) /* labels of sets without a known class count */
#define NN_DATA_MAX_IMAGE (1 << 26)   /* bytes of one record's pixels */

/* The records: pixels N x C x H x W (uint8, or float32 for float .npy input) and labels.
 * Shared by a dataset and its views; freed when the last reference goes. */
typedef struct nn_data_store {
  int refs;
  int64_t n;
  int c, h, w;
  uint8_t *u8;      /* n*c*h*w bytes, or NULL */
  float *f32;       /* n*c*h*w floats, or NULL */
  int32_t *labels;  /* n labels */
} nn_data_store;

struct nn_data {
  nn_data_store *s;
  int64_t n;         /* records in this view */
  int64_t *idx;      /* view -> store record, or NULL for the identity */
  int classes;
  char *name, *path, *source;
  double *mean, *std; /* c each */
  float *lut;         /* uint8 store: c*256 normalised values, lut[c*256 + v] */
};

/* New store with room for n records (labels zeroed); NULL on failure. */
nn_data_store *nn_data_store_new(int64_t n, int c, int h, int w, int is_float, nn_error *err);
void nn_data_store_release(nn_data_store *s); /* NULL is a no-op */

/* Wraps a filled store (ownership passes to the dataset, also on failure). classes: 0 = max
 * label + 1, else labels are checked against it. mean/std: NULL = computed over the store.
 * `what` names the source in errors. */
nn_data *nn_data_from_store(nn_data_store *s, int classes, const char *name, const char *path,
                            const char *source, const double *mean, const double *std,
                            const char *what, nn_error *err);

nn_data *nn_data_open_idx(const nn_data_params *p, nn_error *err);
nn_data *nn_data_open_cifar(const nn_data_params *p, nn_error *err);
nn_data *nn_data_open_npy(const nn_data_params *p, nn_error *err);

/* Path helpers: 1 when path is a directory / a regular file. */
int nn_data_is_dir(const char *path);
int nn_data_is_file(const char *path);
/* Last path component (pointer into path). */
const char *nn_data_basename(const char *path);

#endif
