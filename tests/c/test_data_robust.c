/* test_data_robust.c: a deterministic mini-fuzz of the data parsers for ctest, so the
 * ASan/UBSan build checks them on every run: each seed of tests/fuzz/seeds/<target>/ is truncated
 * at many lengths and has header bytes overwritten, then fed to nn_gz_inflate, nn_idx_parse,
 * nn_npy_parse, nn_tar_parse and (via files) nn_data_open + decoding. Every call must return
 * (NN_OK or an error with a message); a crash or sanitizer report fails the test. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "neuronas/nn_data.h"
#include "nn_gz.h"
#include "nn_test.h"

static char tmpdir[256];
static long calls, errors_without_msg;

static void note(nn_status st, const nn_error *err) {
  calls++;
  if (st != NN_OK && err->msg[0] == 0) errors_without_msg++;
}

static void write_file(const char *path, const uint8_t *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  if (n) fwrite(d, 1, n, f);
  fclose(f);
}

static void decode_some(nn_data *d) {
  if (!d) return;
  nn_error err;
  int64_t n = nn_data_size(d) < 2 ? nn_data_size(d) : 2, idx[2] = {0, n - 1};
  nn_tensor *x = nn_tensor_new4(4, n, nn_data_channels(d), nn_data_height(d), nn_data_width(d), &err);
  nn_tensor *y = nn_tensor_new4(1, n, 0, 0, 0, &err);
  nn_data_aug aug = {1, -1, 1};
  nn_rng r = nn_rng_seed(2);
  if (x && y) note(nn_data_decode(d, idx, n, &aug, &r, x, y, &err), &err);
  nn_tensor_free(x);
  nn_tensor_free(y);
  nn_data_free(d);
}

static nn_status tar_cb(void *ud, const char *name, const uint8_t *d, size_t n, nn_error *err) {
  (void)name, (void)err;
  *(size_t *)ud += n ? d[n - 1] : 0;
  return NN_OK;
}

/* One input as the fuzz target `t` reads it (see tests/fuzz/fuzz_<t>.c). */
static void run_one(const char *t, const uint8_t *b, size_t n, int with_files) {
  nn_error err = {0};
  if (strcmp(t, "gz") == 0) {
    uint8_t *out;
    size_t on;
    nn_status st = nn_gz_inflate(b, n, "seed", &out, &on, 1 << 24, &err);
    note(st, &err);
    if (st == NN_OK) free(out);
  } else if (strcmp(t, "idx") == 0 && n >= 2) {
    size_t L = (size_t)b[0] | (size_t)b[1] << 8;
    if (L > n - 2) L = n - 2;
    int64_t dims[3];
    const uint8_t *pay;
    note(nn_idx_parse(b + 2, L, 3, "images", dims, &pay, &err), &err);
    note(nn_idx_parse(b + 2 + L, n - 2 - L, 1, "labels", dims, &pay, &err), &err);
    if (with_files) {
      char ip[300], lp[300];
      snprintf(ip, sizeof ip, "%s/i", tmpdir);
      snprintf(lp, sizeof lp, "%s/l", tmpdir);
      write_file(ip, b + 2, L);
      write_file(lp, b + 2 + L, n - 2 - L);
      nn_data_params p = nn_data_params_default();
      p.path = ip;
      p.labels = lp;
      nn_data *d = nn_data_open(&p, &err);
      note(d ? NN_OK : err.code, &err);
      decode_some(d);
    }
  } else if (strcmp(t, "npy") == 0 && n >= 3) {
    size_t L = (size_t)b[1] | (size_t)b[2] << 8;
    if (L > n - 3) L = n - 3;
    nn_npy_info info;
    note(nn_npy_parse(b + 3, L, "images", &info, &err), &err);
    note(nn_npy_parse(b + 3 + L, n - 3 - L, "labels", &info, &err), &err);
    if (with_files) {
      char ip[300], lp[300];
      snprintf(ip, sizeof ip, "%s/x.npy", tmpdir);
      snprintf(lp, sizeof lp, "%s/y.npy", tmpdir);
      write_file(ip, b + 3, L);
      write_file(lp, b + 3 + L, n - 3 - L);
      nn_data_params p = nn_data_params_default();
      p.format = NN_DATA_NPY;
      p.path = ip;
      p.labels = lp;
      p.layout = (b[0] & 1) ? NN_DATA_NHWC : NN_DATA_NCHW;
      nn_data *d = nn_data_open(&p, &err);
      note(d ? NN_OK : err.code, &err);
      decode_some(d);
    }
  } else if (strcmp(t, "cifar") == 0 && n >= 1) {
    uint8_t *tar;
    size_t tn, sum = 0;
    nn_status st = nn_gz_inflate(b + 1, n - 1, "archive", &tar, &tn, 1 << 26, &err);
    note(st, &err);
    if (st == NN_OK) {
      note(nn_tar_parse(tar, tn, "archive", tar_cb, &sum, &err), &err);
      free(tar);
    }
    if (with_files) {
      char ap[300];
      snprintf(ap, sizeof ap, "%s/c.tar.gz", tmpdir);
      write_file(ap, b + 1, n - 1);
      nn_data_params p = nn_data_params_default();
      p.format = (b[0] & 1) ? NN_DATA_CIFAR100 : NN_DATA_CIFAR10;
      p.split = (b[0] & 2) ? NN_DATA_TEST : NN_DATA_TRAIN;
      p.path = ap;
      nn_data *d = nn_data_open(&p, &err);
      note(d ? NN_OK : err.code, &err);
      decode_some(d);
    }
  }
}

static void mutate_all(const char *t, const uint8_t *b, size_t n) {
  uint8_t *m = malloc(n + 1);
  /* truncations: every length in the first 1100 bytes, then every 97th */
  for (size_t len = 0; len <= n; len += len < 1100 ? 1 : 97) run_one(t, b, len, len % 7 == 0);
  /* overwrites of each of the first 700 bytes with 0x00, 0xff and the byte ^ 0x80 */
  static const int vals[3] = {0x00, 0xff, -1};
  for (size_t pos = 0; pos < n && pos < 700; pos++)
    for (int v = 0; v < 3; v++) {
      memcpy(m, b, n);
      m[pos] = vals[v] < 0 ? (uint8_t)(b[pos] ^ 0x80) : (uint8_t)vals[v];
      run_one(t, m, n, pos % 5 == 0);
    }
  free(m);
}

static void test_seeds(void) {
  static const char *const targets[] = {"gz", "idx", "npy", "cifar"};
  int files = 0;
  for (int k = 0; k < 4; k++) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/seeds/%s", NN_SOURCE_DIR, targets[k]);
    DIR *dd = opendir(dir);
    CHECK(dd != NULL);
    if (!dd) continue;
    struct dirent *e;
    while ((e = readdir(dd))) {
      if (e->d_name[0] == '.') continue;
      char p[1024];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      FILE *f = fopen(p, "rb");
      if (!f) continue;
      uint8_t *b = malloc(1 << 20);
      size_t n = fread(b, 1, 1 << 20, f);
      fclose(f);
      run_one(targets[k], b, n, 1);
      mutate_all(targets[k], b, n);
      free(b);
      files++;
    }
    closedir(dd);
  }
  CHECK(files >= 9);
  CHECK(calls > 10000);
  CHECK(errors_without_msg == 0);
  fprintf(stderr, "  %d seeds, %ld parser calls\n", files, calls);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/nn_test_robust_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  NN_TEST_RUN(test_seeds);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return NN_TEST_END();
}
