/* bench_train.c: training throughput (docs/training.md): images/s of nn_trainer_step on the
 * fashion-mnist preset (docs/model.md), with the forward / backward / update time split.
 * Usage: bench_train [--steps N] [--batch B] [--timesteps T] [--bits n] [--optimizer sgd|adam]
 *                    [--cellA CELL] [--cellB CELL] [--data DIR]
 * Batches come from Fashion-MNIST (DIR, default the Debian package's folder) with crop/flip
 * augmentation; the first step (allocations, page faults) is reported apart. Run by
 * scripts/bench-train; prints figures, asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "neuronas/nn_data.h"
#include "neuronas/nn_net.h"
#include "neuronas/nn_train.h"

int main(int argc, char **argv) {
  int steps = 10, bits = 8;
  long batch = 64, T = 5;
  const char *ca = "conv3x3 skip avgpool3x3 conv3x3 skip conv3x3", *cb = NULL;
  const char *dir = "/usr/share/datasets/fashion-mnist", *opt = "sgd";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch")) batch = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--timesteps")) T = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--bits")) bits = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--optimizer")) opt = argv[i + 1];
    else if (!strcmp(argv[i], "--cellA")) ca = argv[i + 1];
    else if (!strcmp(argv[i], "--cellB")) cb = argv[i + 1];
    else if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
    else {
      fprintf(stderr, "bench_train: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (!cb) cb = ca;
  nn_error err;
  nn_net_params np = nn_net_params_default();
  if (nn_net_params_preset(&np, "fashion-mnist", &err) != NN_OK ||
      nn_cell_parse(ca, NN_CELL_FORM_AUTO, &np.cell_a, &err) != NN_OK ||
      nn_cell_parse(cb, NN_CELL_FORM_AUTO, &np.cell_b, &err) != NN_OK) {
    fprintf(stderr, "bench_train: %s\n", err.msg);
    return 1;
  }
  np.timesteps = T;
  nn_data_params dp = nn_data_params_default();
  dp.format = NN_DATA_IDX;
  dp.path = dir;
  nn_data *d = nn_data_open(&dp, &err);
  if (!d) {
    fprintf(stderr, "bench_train: %s\n", err.msg);
    return 1;
  }
  nn_train_params tp = nn_train_params_default();
  tp.bits = bits;
  tp.optimizer = strcmp(opt, "adam") == 0 ? NN_OPT_ADAM : NN_OPT_SGD;
  if (tp.optimizer == NN_OPT_ADAM) tp.lr = 1e-3, tp.lr_min = 1e-5;
  nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
  if (!tr) {
    fprintf(stderr, "bench_train: %s\n", err.msg);
    nn_data_free(d);
    return 1;
  }
  nn_data_iter_params ip = nn_data_iter_params_default();
  ip.batch = batch;
  ip.shuffle = 1;
  ip.augment = 1;
  ip.aug.crop = 1, ip.aug.pad = -1, ip.aug.flip = 1;
  ip.drop_last = 1;
  nn_data_iter *it = nn_data_iter_new(d, &ip, &err);
  double f = 0, b = 0, u = 0, first = 0, loss = 0;
  clock_t cpu0 = 0;
  int done = 0;
  for (int s = 0; s <= steps && it; s++) {
    nn_tensor *x = NULL, *y = NULL;
    nn_train_result r;
    if (nn_data_iter_next(it, &x, &y, &err) != NN_OK || !x) break;
    nn_status st = nn_trainer_step(tr, x, y, &r, &err);
    nn_tensor_free(x), nn_tensor_free(y);
    if (st != NN_OK) {
      fprintf(stderr, "bench_train: %s\n", err.msg);
      break;
    }
    if (s == 0) {
      first = r.forward_s + r.backward_s + r.update_s;
      cpu0 = clock();
      continue;
    }
    f += r.forward_s, b += r.backward_s, u += r.update_s, loss += r.loss, done++;
  }
  double cpu = (double)(clock() - cpu0) / CLOCKS_PER_SEC;
  if (done > 0) {
    double tot = f + b + u;
    printf("bench_train: fashion-mnist preset, cells %s / %s, batch %ld, T=%ld, %s, %s, %d steps\n",
           ca, cb, batch, T, bits >= 32 ? "float" : "QAT", opt, done);
    if (bits < 32) printf("  weights FxP%d\n", bits);
    printf("  first step %.3f s (allocations)\n", first);
    printf("  %.1f images/s  (%.3f s/step: forward %.3f s %.0f%%, backward %.3f s %.0f%%, update %.3f s %.0f%%)\n",
           (double)done * (double)batch / tot, tot / done, f / done, 100 * f / tot, b / done,
           100 * b / tot, u / done, 100 * u / tot);
    printf("  CPU time %.3f s/step (%.1f images per CPU-second; wall/CPU %.2f: <1 = threads, >1 = waiting on a busy machine)\n",
           cpu / done, (double)done * (double)batch / cpu, tot / cpu);
    printf("  mean loss %.4f; an epoch of 60000 images takes ~%.1f min at this rate\n", loss / done,
           60000.0 / ((double)done * (double)batch / tot) / 60);
  }
  nn_data_iter_free(it);
  nn_trainer_free(tr);
  nn_data_free(d);
  return done > 0 ? 0 : 1;
}
