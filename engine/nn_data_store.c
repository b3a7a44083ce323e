/* nn_data_store.c: the records a format reader fills and a dataset holds (nn_data_store.h), and
 * the path helpers the readers share. */
#include "nn_data_store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int nn_data_is_dir(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int nn_data_is_file(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *nn_data_basename(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

nn_data_store *nn_data_store_new(int64_t n, int c, int h, int w, int is_float, nn_error *err) {
  if (n < 1 || c < 1 || h < 1 || w < 1 || c > NN_DATA_MAX_CHANNELS || h > NN_DATA_MAX_SIDE ||
      w > NN_DATA_MAX_SIDE || (int64_t)c * h * w > NN_DATA_MAX_IMAGE) {
    nn_fail(err, NN_EFORMAT, "unsupported dataset shape %lld x %d x %d x %d (records x channels x height x "
            "width: at least 1 each; at most %d channels, sides of %d and %d values an image)", (long long)n, c, h, w,
            NN_DATA_MAX_CHANNELS, NN_DATA_MAX_SIDE, NN_DATA_MAX_IMAGE);
    return NULL;
  }
  size_t img = (size_t)c * h * w, esz = is_float ? sizeof(float) : 1;
  if ((uint64_t)n > SIZE_MAX / img / esz / 2) {
    nn_fail(err, NN_ENOMEM, "dataset of %lld records of %zu values is too large", (long long)n, img);
    return NULL;
  }
  nn_data_store *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  s->refs = 1;
  s->n = n;
  s->c = c;
  s->h = h;
  s->w = w;
  s->labels = calloc((size_t)n, sizeof *s->labels);
  if (is_float)
    s->f32 = malloc((size_t)n * img * sizeof(float));
  else
    s->u8 = malloc((size_t)n * img);
  if (!s->labels || (!s->f32 && !s->u8)) goto oom;
  return s;
oom:
  nn_data_store_release(s);
  nn_fail(err, NN_ENOMEM, "out of memory for %lld records of %zu values", (long long)n, img);
  return NULL;
}

void nn_data_store_release(nn_data_store *s) {
  if (!s || --s->refs > 0) return;
  free(s->u8);
  free(s->f32);
  free(s->labels);
  free(s);
}

