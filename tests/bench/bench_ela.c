/* bench_ela.c: evaluations per second of the ELA model (docs/hardware.md) on a 20-layer network, from C
 * (target: > 100,000/s). Run by scripts/bench-ela; prints one line per mode. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "neuronas/nn_ela.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 20 layers: stem, 8 cell-A edges (3x3 and 1x1) at C, downconv, 8 cell-B edges at 2C,
 * two classifier layers (cifar100-like sizes, docs/model.md). */
static size_t build(nn_layer_desc *l) {
  size_t n = 0;
  const int64_t C = 128;
  memset(l, 0, 20 * sizeof *l);
#define CONV(d, f, i, o, kk) \
  (l[n].kind = NN_LAYER_CONV, l[n].in_ch = d, l[n].out_ch = f, l[n].in_dim = i, \
   l[n].out_dim = o, l[n].k = kk, l[n].stride = 1, l[n].features = 1, n++)
  CONV(3, C, 32, 32, 3);
  for (int i = 0; i < 8; i++) CONV(C, C, 32, 32, i % 2 ? 1 : 3);
  CONV(C, 2 * C, 32, 32, 3);
  for (int i = 0; i < 8; i++) CONV(2 * C, 2 * C, 16, 16, i % 2 ? 1 : 3);
  CONV(2 * C * 64, 1024, 1, 1, 1);
  l[n - 1].kind = NN_LAYER_LINEAR;
  CONV(1024, 500, 1, 1, 1);
  l[n - 1].kind = NN_LAYER_LINEAR;
#undef CONV
  return n;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 2000000;
  nn_layer_desc l[20];
  nn_ela_layer_cost pl[20];
  size_t n = build(l);
  for (int mode = 0; mode < 2; mode++) {
    nn_ela_params p = nn_ela_params_default((nn_ela_mode)mode, NN_ELA_RRAM);
    nn_ela_cost c;
    double sink = 0, t0 = now_s();
    for (long i = 0; i < iters; i++) {
      if (nn_ela_evaluate(&p, l, n, 2 + (int)(i & 7), 5, &c, pl, NULL) != NN_OK) return 1;
      sink += c.energy_pj;
    }
    double dt = now_s() - t0;
    printf("C   %-8s %zu layers: %.0f evaluations/s (%.2f us each, checksum %.6g)\n",
           nn_ela_mode_str((nn_ela_mode)mode), n, (double)iters / dt, 1e6 * dt / (double)iters,
           sink / (double)iters);
  }
  return 0;
}
