/* fuzz_common.h: helpers of the libFuzzer targets: per-process scratch files and a
 * decode pass over an opened dataset (plain and augmented), so the whole path is exercised. */
#ifndef NN_FUZZ_COMMON_H
#define NN_FUZZ_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "neuronas/nn_data.h"

static const char *fz_path(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "/tmp/nn_fuzz_%d_%s", (int)getpid(), name);
  return buf[k];
}

static void fz_write(const char *path, const uint8_t *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (n) fwrite(d, 1, n, f);
  fclose(f);
}

/* Decodes up to 3 records plainly and with crop+flip; the data set is freed. */
static void fz_exercise(nn_data *d) {
  if (!d) return;
  int64_t n = nn_data_size(d) < 3 ? nn_data_size(d) : 3;
  int64_t idx[3] = {0, n > 1 ? 1 : 0, n - 1};
  nn_error err;
  size_t img = (size_t)nn_data_channels(d) * nn_data_height(d) * nn_data_width(d);
  if (img * n <= (1u << 24)) {
    nn_tensor *x = nn_tensor_new4(4, n, nn_data_channels(d), nn_data_height(d), nn_data_width(d), &err);
    nn_tensor *y = nn_tensor_new4(1, n, 0, 0, 0, &err);
    nn_data_aug aug = {1, -1, 1};
    nn_rng r = nn_rng_seed(1);
    if (x && y) {
      nn_data_decode(d, idx, n, NULL, NULL, x, y, &err);
      nn_data_decode(d, idx, n, &aug, &r, x, y, &err);
    }
    nn_tensor_free(x);
    nn_tensor_free(y);
  }
  nn_data_free(d);
}
#endif
