/* bench_data.c: batches per second of 64-image batches (docs/training.md batch 64): plain
 * nn_data_decode of consecutive records, augmented (crop + flip) shuffled epoch iteration, and
 * the naive nn_data_decode_ref for comparison. Usage: bench_data FORMAT PATH [SECONDS]
 * (FORMAT idx|cifar10|cifar100; prints one line per mode). Rates are per CPU second of this
 * single-threaded process, so other load on the machine does not distort them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "neuronas/nn_data.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: robust on a shared machine */
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_data idx|cifar10|cifar100 PATH [SECONDS]\n");
    return 2;
  }
  double secs = argc > 3 ? atof(argv[3]) : 2.0;
  nn_data_params p = nn_data_params_default();
  p.format = strcmp(argv[1], "cifar10") == 0    ? NN_DATA_CIFAR10
             : strcmp(argv[1], "cifar100") == 0 ? NN_DATA_CIFAR100
                                                : NN_DATA_IDX;
  p.path = argv[2];
  nn_error err;
  double t0 = now_s();
  nn_data *d = nn_data_open(&p, &err);
  if (!d) {
    fprintf(stderr, "bench_data: %s\n", err.msg);
    return 1;
  }
  printf("open %s: %lld x %dx%dx%d in %.3f s\n", argv[2], (long long)nn_data_size(d),
         nn_data_channels(d), nn_data_height(d), nn_data_width(d), now_s() - t0);
  const int64_t B = 64, N = nn_data_size(d);
  nn_tensor *x = nn_tensor_new4(4, B, nn_data_channels(d), nn_data_height(d), nn_data_width(d), &err);
  nn_tensor *y = nn_tensor_new4(1, B, 0, 0, 0, &err);
  int64_t idx[64];
  double checksum = 0;
  for (int mode = 0; mode < 3; mode++) {
    long batches = 0;
    t0 = now_s();
    double t = 0;
    if (mode == 1) { /* shuffled, augmented epochs through the iterator (allocates per batch) */
      nn_data_iter_params ip = nn_data_iter_params_default();
      ip.augment = 1;
      for (uint64_t ep = 0; (t = now_s() - t0) < secs; ep++) {
        ip.epoch = ep;
        nn_data_iter *it = nn_data_iter_new(d, &ip, &err);
        nn_tensor *bx, *by;
        while ((t = now_s() - t0) < secs && nn_data_iter_next(it, &bx, &by, &err) == NN_OK && bx) {
          checksum += nn_tensor_data(bx)[0];
          nn_tensor_free(bx);
          nn_tensor_free(by);
          batches++;
        }
        nn_data_iter_free(it);
      }
    } else {
      int64_t pos = 0;
      while ((t = now_s() - t0) < secs) {
        for (int k = 0; k < B; k++) idx[k] = (pos + k) % N;
        pos = (pos + B) % N;
        if (mode == 0)
          nn_data_decode(d, idx, B, NULL, NULL, x, y, &err);
        else
          nn_data_decode_ref(d, idx, B, NULL, NULL, x, y, &err);
        checksum += nn_tensor_data(x)[0];
        batches++;
      }
    }
    static const char *const names[] = {"plain batch (decode)", "augmented shuffled iteration",
                                        "plain batch (naive _ref)"};
    printf("%-30s %9.0f batches/s  (%.0f images/s, batch 64)\n", names[mode], batches / t,
           batches * 64.0 / t);
  }
  fprintf(stderr, "(checksum %g)\n", checksum);
  nn_tensor_free(x);
  nn_tensor_free(y);
  nn_data_free(d);
  return 0;
}
