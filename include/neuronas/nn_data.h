/* nn_data.h: datasets (docs/data.md, docs/training.md augmentation): IDX, CIFAR-10/100 and .npy readers, a uint8
 * (or float32 for float .npy) image store N x C x H x W, per-batch decoding with per-channel
 * normalisation, train/validation views and deterministic shuffled, augmented iteration.
 *
 * Ownership: nn_data_open returns a dataset the caller frees with nn_data_free. Views made by
 * nn_data_subset / nn_data_split share the parent's store (reference counted), so the parent
 * may be freed first. Nothing here keeps a whole-dataset float copy of uint8 data: images are
 * decoded batch by batch into caller tensors. */
#ifndef NEURONAS_NN_DATA_H
#define NEURONAS_NN_DATA_H

#include "nn.h"
#include "nn_rng.h"
#include "nn_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_data nn_data;

typedef enum nn_data_format {
  NN_DATA_IDX = 0,   /* MNIST / Fashion-MNIST IDX files, plain or .gz */
  NN_DATA_CIFAR10,   /* data_batch_1..5.bin / test_batch.bin, folder or .tar.gz */
  NN_DATA_CIFAR100,  /* train.bin / test.bin (coarse + fine label), folder or .tar.gz */
  NN_DATA_NPY        /* images .npy + labels .npy */
} nn_data_format;

typedef enum nn_data_split_kind { NN_DATA_TRAIN = 0, NN_DATA_TEST } nn_data_split_kind;
typedef enum nn_data_layout { NN_DATA_NCHW = 0, NN_DATA_NHWC } nn_data_layout;
typedef enum nn_data_label_kind { NN_DATA_FINE = 0, NN_DATA_COARSE } nn_data_label_kind;

typedef struct nn_data_params {
  nn_data_format format;
  const char *path;          /* folder, file or archive (see the README "Data" section) */
  const char *labels;        /* IDX/npy: labels file when path is an images file (else NULL) */
  nn_data_split_kind split;  /* which split to read from a folder or archive */
  nn_data_layout layout;     /* npy: axis order of 4-d image arrays */
  nn_data_label_kind label;  /* CIFAR-100: fine (100 classes) or coarse (20) */
  int classes;               /* 0 = known (CIFAR) or max label + 1; else labels must be < it */
  int64_t limit;             /* 0 = all records, else at most this many (the first ones) */
  const char *name;          /* NULL = derived ("cifar10", folder or file name) */
  const char *source;        /* free label of where the data came from; NULL = "user" */
} nn_data_params;

nn_data_params nn_data_params_default(void);

/* Opens a dataset; NULL on failure with err naming the file and what was wrong. */
nn_data *nn_data_open(const nn_data_params *p, nn_error *err);
void nn_data_free(nn_data *d); /* NULL is a no-op */

/* A probe: NN_OK when nn_data_open would succeed for this format (it opens and frees; for .npy,
 * which needs a second file, it checks the header and dtype of the images file); sets err
 * otherwise. fmt < 0 guesses the format from the file name ("cifar-100"/"cifar100",
 * "cifar", ".npy", else IDX). */
nn_status nn_data_probe(const char *path, int fmt, nn_error *err);

int64_t nn_data_size(const nn_data *d);
int nn_data_channels(const nn_data *d);
int nn_data_height(const nn_data *d);
int nn_data_width(const nn_data *d);
int nn_data_classes(const nn_data *d);
int nn_data_is_float(const nn_data *d); /* 1 when the store is float32 (.npy float input) */
const char *nn_data_name(const nn_data *d);
const char *nn_data_path(const nn_data *d);
const char *nn_data_source(const nn_data *d);
/* Per-channel mean/std used for normalisation (published for CIFAR, else computed once over
 * the opened store and cached; views inherit their parent's). Never fails. */
double nn_data_mean(const nn_data *d, int c);
double nn_data_std(const nn_data *d, int c);
/* Overrides mean/std (c channels). NN_EINVAL when a std <= 0, a value is not finite, or a
 * normalised value would leave +-NN_DATA_MAX_VALUE ("std[1] = 1e-300 (mean[1] = 0) normalises
 * pixel values in [0, 1] to [0, 1e+300], outside +-1e+30"); the dataset is then unchanged. */
nn_status nn_data_set_norm(nn_data *d, const double *mean, const double *std, nn_error *err);
/* Every value a dataset hands out lies within +-NN_DATA_MAX_VALUE, far inside float32's range:
 * a float32 file's pixel values (refused when read) and each normalised value (v - mean) / std
 * of a pixel value or of the padding (v = 0), checked whenever the normalisation is set. */
#define NN_DATA_MAX_VALUE 1e30

/* Label of record i (0 <= i < size) and its raw pixels (uint8 store: C*H*W bytes, NCHW;
 * NULL for a float store). For tests and tools. */
int nn_data_label(const nn_data *d, int64_t i);
const uint8_t *nn_data_pixels(const nn_data *d, int64_t i);
const float *nn_data_pixels_f32(const nn_data *d, int64_t i);

/* Augmentation (docs/training.md): random crop with zero padding `pad` (pixels set to raw 0 before
 * normalisation, like torchvision's RandomCrop(padding)) and random horizontal flip. */
typedef struct nn_data_aug {
  int crop;  /* 0/1 */
  int pad;   /* < 0: 4, or 2 for 28x28 images */
  int flip;  /* 0/1 */
} nn_data_aug;

/* Decodes records idx[0..n-1] into x (n x C x H x W float32, normalised) and y (n floats,
 * the class indices). aug may be NULL (no augmentation); rng is then unused. With aug, record
 * k's crop offsets and flip come from nn_rng_split_u64(rng, idx[k]), so results do not depend
 * on batch size or order. x and y must have the right numel (NN_EINVAL otherwise). */
nn_status nn_data_decode(const nn_data *d, const int64_t *idx, int64_t n, const nn_data_aug *aug,
                         const nn_rng *rng, nn_tensor *x, nn_tensor *y, nn_error *err);
/* Naive twin of nn_data_decode (per-pixel formula, explicit padded image); same contract. */
nn_status nn_data_decode_ref(const nn_data *d, const int64_t *idx, int64_t n,
                             const nn_data_aug *aug, const nn_rng *rng, nn_tensor *x,
                             nn_tensor *y, nn_error *err);

/* The record order for a seed: a permutation of 0..size-1 (forward Fisher-Yates: step i swaps
 * position i with i + nn_rng_below(size - i) drawn from the stream rng). perm has size entries.
 * The _prefix variant stops after k steps: its first k entries equal the full permutation's. */
void nn_data_permutation(int64_t size, nn_rng rng, int64_t *perm);
void nn_data_permutation_prefix(int64_t size, nn_rng rng, int64_t *perm, int64_t k);

/* Epoch iteration: batches of the view in order (shuffle = 0) or in the order of
 * nn_data_permutation(size, split(split_u64(seed(seed), epoch), "order")); augmentation draws
 * from split(split_u64(seed(seed), epoch), "augment"). The iterator keeps its own reference to
 * the store (d may be freed first). The last batch is short unless drop_last. */
typedef struct nn_data_iter nn_data_iter;
typedef struct nn_data_iter_params {
  int64_t batch;     /* >= 1 */
  int shuffle;       /* 0/1 */
  uint64_t seed;
  uint64_t epoch;
  int augment;       /* 0/1: use aug */
  nn_data_aug aug;
  int drop_last;     /* 0/1 */
} nn_data_iter_params;
nn_data_iter_params nn_data_iter_params_default(void);
nn_data_iter *nn_data_iter_new(const nn_data *d, const nn_data_iter_params *p, nn_error *err);
void nn_data_iter_free(nn_data_iter *it); /* NULL is a no-op */
/* Next batch as new tensors (caller owns both); at the end *x = *y = NULL and NN_OK. */
nn_status nn_data_iter_next(nn_data_iter *it, nn_tensor **x, nn_tensor **y, nn_error *err);
int64_t nn_data_iter_batches(const nn_data_iter *it);

/* A view of records idx[0..n-1] of d (each in 0..size-1), sharing the store. */
nn_data *nn_data_subset(const nn_data *d, const int64_t *idx, int64_t n, nn_error *err);
/* Splits d into train and validation views: the shuffled order of `seed`, its first
 * round(validation * size) records go to *val, the rest to *train. 0 < validation < 1 and
 * both parts non-empty, else NN_EINVAL. */
nn_status nn_data_split(const nn_data *d, double validation, uint64_t seed, nn_data **train,
                        nn_data **val, nn_error *err);

/* ---- parsers on memory buffers (used by the readers and the fuzz targets) ---- */
/* IDX: images (magic 0x00000803, N x H x W ubyte) or labels (0x00000801, N ubyte). `what`
 * names the buffer in errors. On success dims[0..want_ndim-1] hold the shape and *payload points into
 * buf. */
nn_status nn_idx_parse(const uint8_t *buf, size_t n, int want_ndim, const char *what,
                       int64_t *dims, const uint8_t **payload, nn_error *err);

/* .npy header: on success fills dtype (a copy of 'descr'), shape, ndim and the data offset;
 * checks that the file holds the whole array. */
typedef struct nn_npy_info {
  char descr[16];
  int fortran;
  int ndim;
  int64_t shape[8];
  size_t offset;    /* of the array data */
  size_t itemsize;
  int64_t count;    /* product of shape */
} nn_npy_info;
nn_status nn_npy_parse(const uint8_t *buf, size_t n, const char *what, nn_npy_info *info,
                       nn_error *err);

/* tar stream (ustar/GNU/pax): calls fn for every regular member; fn returns NN_OK to go on. */
typedef nn_status (*nn_tar_fn)(void *ud, const char *name, const uint8_t *data, size_t size,
                               nn_error *err);
nn_status nn_tar_parse(const uint8_t *buf, size_t n, const char *what, nn_tar_fn fn, void *ud,
                       nn_error *err);

/* Bound of a file read whole, and of what a gzip stream inflates to, when the caller gives none
 * (docs/reliability.md "Bounds"): 4 GiB, above every supported dataset file. */
#define NN_FILE_MAX_BYTES ((size_t)4 << 30)

#ifdef __cplusplus
}
#endif
#endif
