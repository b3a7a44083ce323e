/* nn_data_store.h: the records of a dataset (docs/data.md) and what a format reader hands back.
 * Shared by the format readers (nn_data_idx.c, nn_data_cifar.c, nn_data_npy.c), which fill a
 * store, and nn_data.c, which wraps it into a dataset (views, normalisation, batches); neither
 * side sees the other's internals. */
#ifndef NEURONAS_NN_DATA_STORE_H
#define NEURONAS_NN_DATA_STORE_H

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

/* New store with room for n records (labels zeroed); NULL on failure. */
nn_data_store *nn_data_store_new(int64_t n, int c, int h, int w, int is_float, nn_error *err);
void nn_data_store_release(nn_data_store *s); /* NULL is a no-op */

/* How a reader's store becomes a dataset (nn_data_open): classes 0 = max label + 1, else the
 * labels are checked against it; mean/std NULL = computed over the store (else static tables of
 * c entries); name and what (the source named in errors) point at the caller's params, a
 * literal, or the buffers here. */
typedef struct nn_data_meta {
  int classes;
  const double *mean, *std;
  const char *name, *what;
  char name_buf[256], what_buf[4096];
} nn_data_meta;

/* The format readers: a filled store and *m, or NULL (err set). */
nn_data_store *nn_data_read_idx(const nn_data_params *p, nn_data_meta *m, nn_error *err);
nn_data_store *nn_data_read_cifar(const nn_data_params *p, nn_data_meta *m, nn_error *err);
nn_data_store *nn_data_read_npy(const nn_data_params *p, nn_data_meta *m, nn_error *err);

/* Path helpers: 1 when path is a directory / a regular file. */
int nn_data_is_dir(const char *path);
int nn_data_is_file(const char *path);
/* Last path component (pointer into path). */
const char *nn_data_basename(const char *path);

#endif
