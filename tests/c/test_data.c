/* test_data.c: datasets (docs/data.md, docs/training.md augmentation): readers checked byte-for-byte against
 * files written here in the official formats (and against an independent zlib read of the real
 * Fashion-MNIST), decoding against hand computation and nn_data_decode_ref, errors by message. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "neuronas/nn_data.h"
#include "nn_gz.h"
#include "nn_tensor_impl.h"
#include "nn_test.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"
#define EXACT 0.0

static char tmpdir[256];

static const char *tpath(const char *name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

/* gzip with zlib directly (independent of nn_gz) */
static void write_gz(const char *path, const void *data, size_t n) {
  gzFile g = gzopen(path, "wb9");
  gzwrite(g, data, (unsigned)n);
  gzclose(g);
}

static void be32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

/* IDX images file image (N x H x W) with pixel (i, y, x) = (7i + 3y + x) mod 256 */
static uint8_t *make_idx_images(int n, int h, int w, size_t *len) {
  *len = 16 + (size_t)n * h * w;
  uint8_t *b = malloc(*len);
  be32(b, 0x00000803), be32(b + 4, n), be32(b + 8, h), be32(b + 12, w);
  for (int i = 0; i < n; i++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) b[16 + ((size_t)i * h + y) * w + x] = (uint8_t)(7 * i + 3 * y + x);
  return b;
}

static uint8_t *make_idx_labels(int n, size_t *len) {
  *len = 8 + (size_t)n;
  uint8_t *b = malloc(*len);
  be32(b, 0x00000801), be32(b + 4, n);
  for (int i = 0; i < n; i++) b[8 + i] = (uint8_t)(i % 10);
  return b;
}

static nn_data *open_idx(const char *images, const char *labels, nn_error *err) {
  nn_data_params p = nn_data_params_default();
  p.format = NN_DATA_IDX;
  p.path = images;
  p.labels = labels;
  return nn_data_open(&p, err);
}

static void test_idx_small(void) {
  size_t il, ll;
  uint8_t *im = make_idx_images(5, 4, 3, &il), *lb = make_idx_labels(5, &ll);
  write_file(tpath("a-images-idx3-ubyte"), im, il);
  write_gz(tpath("a-labels-idx1-ubyte.gz"), lb, ll);
  nn_error err = {0};
  nn_data *d = open_idx(tpath("a-images-idx3-ubyte"), tpath("a-labels-idx1-ubyte.gz"), &err);
  CHECK(d != NULL);
  if (!d) {
    fprintf(stderr, "%s\n", err.msg);
    goto out;
  }
  CHECK(nn_data_size(d) == 5 && nn_data_channels(d) == 1 && nn_data_height(d) == 4 &&
        nn_data_width(d) == 3 && nn_data_classes(d) == 5);
  for (int i = 0; i < 5; i++) {
    CHECK(nn_data_label(d, i) == i);
    CHECK(memcmp(nn_data_pixels(d, i), im + 16 + i * 12, 12) == 0);
  }
  /* mean/std by hand: population stats of all 60 pixel values / 255 */
  double s = 0, q = 0;
  for (int k = 0; k < 60; k++) s += im[16 + k] / 255.0;
  double m = s / 60;
  for (int k = 0; k < 60; k++) q += (im[16 + k] / 255.0 - m) * (im[16 + k] / 255.0 - m);
  CHECK_NEAR(nn_data_mean(d, 0), m, 1e-12);
  CHECK_NEAR(nn_data_std(d, 0), sqrt(q / 60), 1e-12);
  /* a batch of records 3, 1 decodes to (v/255 - m)/sd */
  double mean[1] = {0.5}, sd[1] = {0.25};
  CHECK(nn_data_set_norm(d, mean, sd, &err) == NN_OK);
  nn_tensor *x = nn_tensor_new4(4, 2, 1, 4, 3, &err), *y = nn_tensor_new4(1, 2, 0, 0, 0, &err);
  int64_t idx[2] = {3, 1};
  CHECK(nn_data_decode(d, idx, 2, NULL, NULL, x, y, &err) == NN_OK);
  CHECK(y->data[0] == 3.0f && y->data[1] == 1.0f);
  /* record 3, pixel (y=2, x=1): 7*3 + 3*2 + 1 = 28 -> (28/255 - 0.5) / 0.25 */
  CHECK_NEAR(x->data[2 * 3 + 1], (28 / 255.0 - 0.5) / 0.25, 1e-6);
  CHECK_NEAR(x->data[12 + 0], (7 / 255.0 - 0.5) / 0.25, 1e-6);
  /* a normalisation whose values would overflow (std 1e-300) is refused, the dataset unchanged */
  double tiny[1] = {1e-300}, far[1] = {-1e30};
  CHECK(nn_data_set_norm(d, mean, tiny, &err) == NN_EINVAL);
  CHECK(!strcmp(err.msg, "std[1] = 1e-300 (mean[1] = 0.5) normalises pixel values in [0, 1] to "
                         "[-5e+299, 5e+299], outside +-1e+30"));
  CHECK(nn_data_set_norm(d, far, sd, &err) == NN_EINVAL && strstr(err.msg, "to [4e+30, 4e+30], outside +-1e+30"));
  CHECK(nn_data_mean(d, 0) == 0.5 && nn_data_std(d, 0) == 0.25);
  CHECK(nn_data_decode(d, idx, 2, NULL, NULL, x, y, &err) == NN_OK);
  CHECK_NEAR(x->data[12 + 0], (7 / 255.0 - 0.5) / 0.25, 1e-6);
  nn_tensor_free(x);
  nn_tensor_free(y);
  nn_data_free(d);
  /* labels-name derivation: images-idx3 -> labels-idx1 in the same folder */
  write_file(tpath("a-labels-idx1-ubyte"), lb, ll);
  d = open_idx(tpath("a-images-idx3-ubyte"), NULL, &err);
  CHECK(d && nn_data_size(d) == 5);
  nn_data_free(d);
out:
  free(im);
  free(lb);
}

static void expect_err(nn_data *d, const nn_error *err, const char *want) {
  CHECK(d == NULL);
  CHECK(strstr(err->msg, want) != NULL);
  if (!strstr(err->msg, want)) fprintf(stderr, "  got '%s', want '%s'\n", err->msg, want);
  nn_data_free(d);
}

static void test_idx_errors(void) {
  size_t il, ll;
  uint8_t *im = make_idx_images(5, 4, 3, &il), *lb = make_idx_labels(5, &ll);
  nn_error err;
  char want[600];
  /* wrong magic: a labels file given as images */
  write_file(tpath("m-images"), lb, ll);
  write_file(tpath("m-labels"), lb, ll);
  nn_data *d = open_idx(tpath("m-images"), tpath("m-labels"), &err);
  snprintf(want, sizeof want, "%s: bad magic number 0x00000801 (IDX images expected 0x00000803)",
           tpath("m-images"));
  expect_err(d, &err, want);
  /* truncated images */
  write_file(tpath("t-images"), im, il - 5);
  write_file(tpath("t-labels"), lb, ll);
  d = open_idx(tpath("t-images"), tpath("t-labels"), &err);
  snprintf(want, sizeof want,
           "%s: truncated: header says 5 images of 4x3 (60 bytes), file has 55", tpath("t-images"));
  expect_err(d, &err, want);
  /* count mismatch */
  size_t l4;
  uint8_t *lb4 = make_idx_labels(4, &l4);
  write_file(tpath("c-images"), im, il);
  write_file(tpath("c-labels"), lb4, l4);
  d = open_idx(tpath("c-images"), tpath("c-labels"), &err);
  snprintf(want, sizeof want, "%s: 4 labels but %s has 5 images", tpath("c-labels"),
           tpath("c-images"));
  expect_err(d, &err, want);
  /* corrupt gzip: damage the deflate data of a valid .gz */
  write_gz(tpath("g-images.gz"), im, il);
  uint8_t *gz;
  size_t gn;
  CHECK(nn_gz_read_file(tpath("g-images.gz"), &gz, &gn, 0, &err) == NN_OK && gn == il);
  free(gz);
  FILE *f = fopen(tpath("g-images.gz"), "rb");
  uint8_t raw[4096];
  size_t rn = fread(raw, 1, sizeof raw, f);
  fclose(f);
  uint8_t bad[4096];
  memcpy(bad, raw, rn);
  for (size_t k = 12; k < rn - 8; k++) bad[k] ^= 0x5a;
  write_file(tpath("g-images.gz"), bad, rn);
  d = open_idx(tpath("g-images.gz"), tpath("c-labels"), &err);
  snprintf(want, sizeof want, "%s: corrupt gzip data", tpath("g-images.gz"));
  expect_err(d, &err, want);
  /* truncated gzip */
  write_file(tpath("g-images.gz"), raw, rn / 2);
  d = open_idx(tpath("g-images.gz"), tpath("c-labels"), &err);
  snprintf(want, sizeof want, "%s: truncated gzip data", tpath("g-images.gz"));
  expect_err(d, &err, want);
  /* missing file */
  d = open_idx(tpath("nope-images"), tpath("c-labels"), &err);
  snprintf(want, sizeof want, "%s: cannot open (No such file or directory)", tpath("nope-images"));
  expect_err(d, &err, want);
  /* a shape every reader check passes but the store refuses (65536 x 1025 > 2^26 values an
   * image) is reported with the file's name, not on its own */
  size_t big = 16 + (size_t)65536 * 1025;
  uint8_t *bb = calloc(big, 1), l1[9];
  be32(bb, 0x00000803), be32(bb + 4, 1), be32(bb + 8, 65536), be32(bb + 12, 1025);
  be32(l1, 0x00000801), be32(l1 + 4, 1), l1[8] = 0;
  gzFile g = gzopen(tpath("s-images.gz"), "wb1");
  gzwrite(g, bb, (unsigned)big);
  gzclose(g);
  free(bb);
  write_file(tpath("s-labels"), l1, sizeof l1);
  d = open_idx(tpath("s-images.gz"), tpath("s-labels"), &err);
  snprintf(want, sizeof want, "%s: unsupported dataset shape 1 x 1 x 65536 x 1025 (records x channels x height "
           "x width: at least 1 each; at most 64 channels, sides of 65536 and 67108864 values an image)",
           tpath("s-images.gz"));
  expect_err(d, &err, want);
  CHECK(strncmp(err.msg, tpath("s-images.gz"), strlen(tpath("s-images.gz"))) == 0);
  remove(tpath("s-images.gz"));
  free(im);
  free(lb);
  free(lb4);
}

/* The real Fashion-MNIST (Debian package, installed on the build machine) against an independent
 * zlib read: every pixel and label. */
static void test_fashion_mnist(void) {
  nn_data_params p = nn_data_params_default();
  p.path = FMNIST;
  p.split = NN_DATA_TEST;
  nn_error err;
  nn_data *d = nn_data_open(&p, &err);
  CHECK(d != NULL);
  if (!d) {
    fprintf(stderr, "Fashion-MNIST (dataset-fashion-mnist) needed: %s\n", err.msg);
    return;
  }
  CHECK(nn_data_size(d) == 10000 && nn_data_classes(d) == 10 && nn_data_height(d) == 28);
  CHECK(strcmp(nn_data_name(d), "fashion-mnist") == 0);
  gzFile gi = gzopen(FMNIST "/t10k-images-idx3-ubyte.gz", "rb");
  gzFile gl = gzopen(FMNIST "/t10k-labels-idx1-ubyte.gz", "rb");
  uint8_t hdr[16], img[784], lab;
  CHECK(gzread(gi, hdr, 16) == 16 && gzread(gl, hdr, 8) == 8);
  int bad = 0;
  for (int i = 0; i < 10000; i++) {
    if (gzread(gi, img, 784) != 784 || gzread(gl, &lab, 1) != 1) {
      bad++;
      break;
    }
    if (memcmp(img, nn_data_pixels(d, i), 784) != 0 || lab != nn_data_label(d, i)) bad++;
  }
  gzclose(gi);
  gzclose(gl);
  CHECK(bad == 0);
  nn_data_free(d);
}

/* CIFAR record bytes: label(s) then 3072 pixels with pixel k of record r = (r*31 + k) mod 251 */
static void cifar_records(uint8_t *buf, int n, int c100, int first) {
  size_t rs = c100 ? 3074 : 3073;
  for (int r = 0; r < n; r++) {
    uint8_t *p = buf + r * rs;
    int g = first + r;
    if (c100) {
      p[0] = (uint8_t)(g % 20);
      p[1] = (uint8_t)(g * 7 % 100);
    } else {
      p[0] = (uint8_t)(g % 10);
    }
    for (int k = 0; k < 3072; k++) p[rs - 3072 + k] = (uint8_t)((g * 31 + k) % 251);
  }
}

/* A ustar header for a regular file */
static void tar_header(uint8_t *h, const char *name, size_t size) {
  memset(h, 0, 512);
  snprintf((char *)h, 100, "%s", name);
  snprintf((char *)h + 100, 8, "%07o", 0644);
  snprintf((char *)h + 108, 8, "%07o", 0);
  snprintf((char *)h + 116, 8, "%07o", 0);
  snprintf((char *)h + 124, 12, "%011zo", size);
  snprintf((char *)h + 136, 12, "%011o", 0);
  h[156] = '0';
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++) sum += h[i];
  snprintf((char *)h + 148, 8, "%06o", sum);
}

static void check_cifar(nn_data *d, int n, int c100, int coarse) {
  CHECK(d != NULL);
  if (!d) return;
  CHECK(nn_data_size(d) == n && nn_data_channels(d) == 3 && nn_data_height(d) == 32);
  CHECK(nn_data_classes(d) == (c100 ? (coarse ? 20 : 100) : 10));
  int bad = 0;
  for (int g = 0; g < n; g++) {
    int want = c100 ? (coarse ? g % 20 : g * 7 % 100) : g % 10;
    if (nn_data_label(d, g) != want) bad++;
    const uint8_t *px = nn_data_pixels(d, g);
    for (int k = 0; k < 3072; k++)
      if (px[k] != (uint8_t)((g * 31 + k) % 251)) bad++;
  }
  CHECK(bad == 0);
  CHECK_NEAR(nn_data_mean(d, 0), c100 ? 0.5071 : 0.4914, EXACT);
  nn_data_free(d);
}

static void test_cifar(void) {
  nn_error err;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", tmpdir);
  mkdir(dir, 0755);
  /* 5 train batches of 2 records + a test batch of 3, extracted folder */
  uint8_t *buf = malloc(6 * 3074 * 3);
  size_t tarn = 0;
  uint8_t *tar = calloc(1, 16 * 512 + 6 * 3 * 3074 + 8192);
  for (int b = 1; b <= 5; b++) {
    char name[64];
    cifar_records(buf, 2, 0, 2 * (b - 1));
    snprintf(name, sizeof name, "cifar-10-batches-bin/data_batch_%d.bin", b);
    write_file(tpath(name), buf, 2 * 3073);
    if (b != 3) { /* the archive misses batch 3 (below), in shuffled order otherwise */
      tar_header(tar + tarn, name, 2 * 3073);
      memcpy(tar + tarn + 512, buf, 2 * 3073);
      tarn += 512 + ((2 * 3073 + 511) / 512) * 512;
    }
  }
  cifar_records(buf, 3, 0, 0);
  write_file(tpath("cifar-10-batches-bin/test_batch.bin"), buf, 3 * 3073);
  nn_data_params p = nn_data_params_default();
  p.format = NN_DATA_CIFAR10;
  p.path = tmpdir; /* the parent of cifar-10-batches-bin */
  check_cifar(nn_data_open(&p, &err), 10, 0, 0);
  p.split = NN_DATA_TEST;
  p.path = dir;
  check_cifar(nn_data_open(&p, &err), 3, 0, 0);
  /* .tar.gz without data_batch_3.bin */
  tarn += 1024; /* end-of-archive blocks */
  write_gz(tpath("c10.tar.gz"), tar, tarn);
  p.split = NN_DATA_TRAIN;
  p.path = tpath("c10.tar.gz");
  nn_data *d = nn_data_open(&p, &err);
  char want[600];
  snprintf(want, sizeof want, "%s: the archive has no member data_batch_3.bin", p.path);
  expect_err(d, &err, want);
  /* add batch 3 as the last member: order in the archive must not matter */
  tarn -= 1024;
  cifar_records(buf, 2, 0, 4);
  tar_header(tar + tarn, "cifar-10-batches-bin/data_batch_3.bin", 2 * 3073);
  memcpy(tar + tarn + 512, buf, 2 * 3073);
  tarn += 512 + ((2 * 3073 + 511) / 512) * 512 + 1024;
  write_gz(tpath("c10.tar.gz"), tar, tarn);
  check_cifar(nn_data_open(&p, &err), 10, 0, 0);
  /* a corrupt tar header checksum */
  tar[148] = '7';
  write_gz(tpath("c10.tar.gz"), tar, tarn);
  d = nn_data_open(&p, &err);
  snprintf(want, sizeof want, "%s: corrupt tar header at offset 0 (bad checksum)", p.path);
  expect_err(d, &err, want);
  /* CIFAR-100 train.bin of 4 records, fine and coarse; size not a whole record count */
  snprintf(dir, sizeof dir, "%s/c100", tmpdir);
  mkdir(dir, 0755);
  cifar_records(buf, 4, 1, 0);
  write_file(tpath("c100/train.bin"), buf, 4 * 3074);
  p.format = NN_DATA_CIFAR100;
  p.path = dir;
  check_cifar(nn_data_open(&p, &err), 4, 1, 0);
  p.label = NN_DATA_COARSE;
  check_cifar(nn_data_open(&p, &err), 4, 1, 1);
  write_file(tpath("c100/train.bin"), buf, 4 * 3074 - 1);
  d = nn_data_open(&p, &err);
  snprintf(want, sizeof want,
           "%s/train.bin: size 12295 is not a whole number of 3074-byte CIFAR-100 records", dir);
  expect_err(d, &err, want);
  buf[1] = 100; /* fine label out of range */
  write_file(tpath("c100/train.bin"), buf, 4 * 3074);
  d = nn_data_open(&p, &err);
  snprintf(want, sizeof want, "%s/train.bin: record 0 has fine label 100 (0..99 expected)", dir);
  expect_err(d, &err, want);
  free(buf);
  free(tar);
}

/* .npy v1.0 header for descr/shape, padded to 64 bytes as numpy does */
static size_t npy_header(uint8_t *b, const char *descr, const char *shape, int v2) {
  char dict[200];
  int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                    descr, shape);
  size_t pre = v2 ? 12 : 10, total = ((pre + dl + 1 + 63) / 64) * 64;
  memcpy(b, "\x93NUMPY", 6);
  b[6] = v2 ? 2 : 1;
  b[7] = 0;
  size_t hl = total - pre;
  b[8] = hl & 255, b[9] = hl >> 8;
  if (v2) b[10] = b[11] = 0;
  memcpy(b + pre, dict, dl);
  memset(b + pre + dl, ' ', hl - dl - 1);
  b[total - 1] = '\n';
  return total;
}

static void test_npy(void) {
  /* 3 images, 2 channels, 2x3; NHWC value at (i, y, x, c) = 40i + 10c + 3y + x */
  uint8_t b[4096];
  size_t h = npy_header(b, "|u1", "(3, 2, 3, 2)", 0);
  for (int i = 0; i < 3; i++)
    for (int y = 0; y < 2; y++)
      for (int x = 0; x < 3; x++)
        for (int c = 0; c < 2; c++) b[h + ((i * 2 + y) * 3 + x) * 2 + c] = (uint8_t)(40 * i + 10 * c + 3 * y + x);
  write_file(tpath("x.npy"), b, h + 36);
  uint8_t l[512];
  size_t lh = npy_header(l, "<i8", "(3,)", 1);
  for (int i = 0; i < 3; i++) {
    int64_t v = 2 - i;
    memcpy(l + lh + 8 * i, &v, 8); /* the test host is little-endian like the header says */
  }
  write_file(tpath("y.npy"), l, lh + 24);
  nn_data_params p = nn_data_params_default();
  p.format = NN_DATA_NPY;
  p.path = tpath("x.npy");
  p.labels = tpath("y.npy");
  p.layout = NN_DATA_NHWC;
  nn_error err;
  nn_data *d = nn_data_open(&p, &err);
  CHECK(d != NULL);
  if (d) {
    CHECK(nn_data_size(d) == 3 && nn_data_channels(d) == 2 && nn_data_height(d) == 2 &&
          nn_data_width(d) == 3 && nn_data_classes(d) == 3 && strcmp(nn_data_name(d), "x") == 0);
    int bad = 0;
    for (int i = 0; i < 3; i++) {
      if (nn_data_label(d, i) != 2 - i) bad++;
      const uint8_t *px = nn_data_pixels(d, i);
      for (int c = 0; c < 2; c++)
        for (int y = 0; y < 2; y++)
          for (int x = 0; x < 3; x++)
            if (px[(c * 2 + y) * 3 + x] != 40 * i + 10 * c + 3 * y + x) bad++;
    }
    CHECK(bad == 0);
    nn_data_free(d);
  }
  /* float32 NCHW v2.0 header: values kept as given, normalised with computed mean/std */
  h = npy_header(b, "<f4", "(3, 1, 2, 2)", 1);
  for (int k = 0; k < 12; k++) {
    float f = 0.5f * k - 1.0f;
    memcpy(b + h + 4 * k, &f, 4);
  }
  write_file(tpath("f.npy"), b, h + 48);
  p.path = tpath("f.npy");
  p.layout = NN_DATA_NCHW;
  d = nn_data_open(&p, &err);
  CHECK(d && nn_data_is_float(d));
  if (d) {
    CHECK(nn_data_pixels_f32(d, 2)[3] == 0.5f * 11 - 1.0f);
    CHECK_NEAR(nn_data_mean(d, 0), 1.75, 1e-12); /* mean of 0.5k - 1, k = 0..11 */
    nn_data_free(d);
  }
  /* unsupported dtype */
  h = npy_header(b, "<f8", "(3, 1, 2, 2)", 0);
  write_file(tpath("d.npy"), b, h + 96);
  p.path = tpath("d.npy");
  d = nn_data_open(&p, &err);
  char want[600];
  snprintf(want, sizeof want,
           "%s: unsupported image dtype '<f8' (uint8 '|u1' or float32 '<f4' expected)", p.path);
  expect_err(d, &err, want);
  /* truncated data */
  h = npy_header(b, "|u1", "(3, 1, 2, 2)", 0);
  write_file(tpath("t.npy"), b, h + 11);
  p.path = tpath("t.npy");
  d = nn_data_open(&p, &err);
  snprintf(want, sizeof want,
           "%s: truncated: the header announces 12 bytes of data, the file has 11", p.path);
  expect_err(d, &err, want);
}

/* Random uint8 store of n records, 1 x H x W, labels i % 10 (via IDX files). */
static nn_data *random_idx(int n, int h, int w) {
  size_t il, ll;
  uint8_t *im = make_idx_images(n, h, w, &il), *lb = make_idx_labels(n, &ll);
  nn_rng r = nn_rng_seed(5);
  for (size_t k = 16; k < il; k++) im[k] = (uint8_t)nn_rng_below(&r, 256);
  write_file(tpath("r-images-idx3-ubyte"), im, il);
  write_file(tpath("r-labels-idx1-ubyte"), lb, ll);
  free(im);
  free(lb);
  nn_error err;
  return open_idx(tpath("r-images-idx3-ubyte"), tpath("r-labels-idx1-ubyte"), &err);
}

static void test_decode_augment(void) {
  nn_data *d = random_idx(40, 28, 28);
  CHECK(d != NULL);
  if (!d) return;
  nn_error err;
  int64_t idx[40];
  for (int i = 0; i < 40; i++) idx[i] = (i * 13) % 40;
  nn_tensor *x = nn_tensor_new4(4, 40, 1, 28, 28, &err), *y = nn_tensor_new4(1, 40, 0, 0, 0, &err);
  nn_tensor *xr = nn_tensor_new4(4, 40, 1, 28, 28, &err), *yr = nn_tensor_new4(1, 40, 0, 0, 0, &err);
  nn_rng rng = nn_rng_seed(11);
  nn_data_aug augs[4] = {{1, -1, 1}, {1, 3, 0}, {0, 0, 1}, {1, 40, 1}};
  for (int a = 0; a < 4; a++) {
    CHECK(nn_data_decode(d, idx, 40, &augs[a], &rng, x, y, &err) == NN_OK);
    CHECK(nn_data_decode_ref(d, idx, 40, &augs[a], &rng, xr, yr, &err) == NN_OK);
    CHECK(memcmp(x->data, xr->data, 40 * 784 * sizeof(float)) == 0); /* identical formula */
    CHECK(memcmp(y->data, yr->data, 40 * sizeof(float)) == 0);
  }
  /* crop keeps a shifted window: every augmented image (pad 2 for 28x28, no flip) equals the
   * original shifted by some (sy, sx) in -2..2 with zeros (normalised) shifted in */
  nn_data_aug crop = {1, -1, 0};
  nn_tensor *x0 = nn_tensor_new4(4, 40, 1, 28, 28, &err);
  CHECK(nn_data_decode(d, idx, 40, NULL, NULL, x0, y, &err) == NN_OK);
  CHECK(nn_data_decode(d, idx, 40, &crop, &rng, x, y, &err) == NN_OK);
  float zero = (float)((0 - nn_data_mean(d, 0)) / nn_data_std(d, 0));
  int found_all = 1, shifted = 0;
  for (int k = 0; k < 40; k++) {
    int found = 0;
    for (int sy = -2; sy <= 2 && !found; sy++)
      for (int sx = -2; sx <= 2 && !found; sx++) {
        int ok = 1;
        for (int i = 0; i < 28 && ok; i++)
          for (int j = 0; j < 28 && ok; j++) {
            int si = i + sy, sj = j + sx;
            float want = si >= 0 && si < 28 && sj >= 0 && sj < 28 ? x0->data[k * 784 + si * 28 + sj] : zero;
            ok = x->data[k * 784 + i * 28 + j] == want;
          }
        if (ok) {
          found = 1;
          shifted += sy != 0 || sx != 0;
        }
      }
    found_all &= found;
  }
  CHECK(found_all);
  CHECK(shifted > 20); /* 24 of 25 offsets shift: most of 40 images moved */
  /* flip only: each image is the original or its mirror; both occur */
  nn_data_aug flip = {0, 0, 1};
  CHECK(nn_data_decode(d, idx, 40, &flip, &rng, x, y, &err) == NN_OK);
  int same = 0, mirrored = 0;
  for (int k = 0; k < 40; k++) {
    int s = 1, m = 1;
    for (int i = 0; i < 28; i++)
      for (int j = 0; j < 28; j++) {
        s &= x->data[k * 784 + i * 28 + j] == x0->data[k * 784 + i * 28 + j];
        m &= x->data[k * 784 + i * 28 + j] == x0->data[k * 784 + i * 28 + 27 - j];
      }
    same += s;
    mirrored += m && !s;
  }
  CHECK(same + mirrored == 40 && same > 5 && mirrored > 5);
  /* per-record draws: decoding record 26 alone gives the same crop as within the batch */
  nn_tensor *x1 = nn_tensor_new4(4, 1, 1, 28, 28, &err), *y1 = nn_tensor_new4(1, 1, 0, 0, 0, &err);
  CHECK(nn_data_decode(d, idx + 2, 1, &augs[0], &rng, x1, y1, &err) == NN_OK);
  CHECK(nn_data_decode(d, idx, 40, &augs[0], &rng, x, y, &err) == NN_OK);
  CHECK(memcmp(x1->data, x->data + 2 * 784, 784 * sizeof(float)) == 0);
  /* bad arguments */
  int64_t badi = 40;
  CHECK(nn_data_decode(d, &badi, 1, NULL, NULL, x1, y1, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "record 40 outside 0..39") == 0);
  CHECK(nn_data_decode(d, idx, 2, NULL, NULL, x1, y1, &err) == NN_EINVAL);
  nn_tensor_free(x);
  nn_tensor_free(y);
  nn_tensor_free(xr);
  nn_tensor_free(yr);
  nn_tensor_free(x0);
  nn_tensor_free(x1);
  nn_tensor_free(y1);
  nn_data_free(d);
}

static void test_views_iter(void) {
  nn_data *d = random_idx(103, 5, 4);
  CHECK(d != NULL);
  if (!d) return;
  nn_error err;
  int64_t perm[103];
  nn_data_permutation(103, nn_rng_seed(3), perm);
  int seen[103] = {0}, moved = 0;
  for (int i = 0; i < 103; i++) {
    seen[perm[i]]++;
    moved += perm[i] != i;
  }
  int ok = 1;
  for (int i = 0; i < 103; i++) ok &= seen[i] == 1;
  CHECK(ok && moved > 90);
  int64_t pre[103];
  nn_data_permutation_prefix(103, nn_rng_seed(3), pre, 17);
  CHECK(memcmp(pre, perm, 17 * sizeof *pre) == 0);
  /* split: disjoint, covering, deterministic, views outlive the parent */
  nn_data *t, *v, *t2, *v2;
  CHECK(nn_data_split(d, 0.1, 7, &t, &v, &err) == NN_OK);
  CHECK(nn_data_split(d, 0.1, 7, &t2, &v2, &err) == NN_OK);
  CHECK(nn_data_size(v) == 10 && nn_data_size(t) == 93);
  const uint8_t *base = nn_data_pixels(d, 0);
  size_t img = 20;
  int cover[103] = {0};
  for (int i = 0; i < 93; i++) cover[(nn_data_pixels(t, i) - base) / img]++;
  for (int i = 0; i < 10; i++) cover[(nn_data_pixels(v, i) - base) / img]++;
  ok = 1;
  for (int i = 0; i < 103; i++) ok &= cover[i] == 1;
  CHECK(ok);
  for (int i = 0; i < 10; i++) CHECK(nn_data_pixels(v, i) == nn_data_pixels(v2, i));
  nn_data *t3, *v3;
  CHECK(nn_data_split(d, 1.0, 7, &t3, &v3, &err) == NN_EINVAL && !t3 && !v3);
  CHECK(strcmp(err.msg, "validation=1: fraction in (0, 1) expected") == 0);
  nn_data_free(d);
  /* iteration over the 93-record view in batches of 10: 10 batches, each record once */
  nn_data_iter_params ip = nn_data_iter_params_default();
  ip.batch = 10;
  ip.seed = 4;
  nn_data_iter *it = nn_data_iter_new(t, &ip, &err);
  CHECK(it && nn_data_iter_batches(it) == 10);
  nn_tensor *x, *y;
  int batches = 0, total = 0, labels[7] = {0};
  while (it && nn_data_iter_next(it, &x, &y, &err) == NN_OK && x) {
    batches++;
    total += (int)nn_tensor_dim(y, 0);
    for (int k = 0; k < nn_tensor_dim(y, 0); k++) labels[(int)y->data[k] % 7]++;
    nn_tensor_free(x);
    nn_tensor_free(y);
  }
  CHECK(batches == 10 && total == 93);
  nn_data_iter_free(it);
  /* labels are i % 10 of the 103 records: count over the view equals count over its records */
  int want[7] = {0};
  for (int i = 0; i < 93; i++) want[nn_data_label(t, i) % 7]++;
  CHECK(memcmp(labels, want, sizeof want) == 0);
  nn_data_free(t);
  nn_data_free(v);
  nn_data_free(t2);
  nn_data_free(v2);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/nn_test_data_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  NN_TEST_RUN(test_idx_small);
  NN_TEST_RUN(test_idx_errors);
  NN_TEST_RUN(test_fashion_mnist);
  NN_TEST_RUN(test_cifar);
  NN_TEST_RUN(test_npy);
  NN_TEST_RUN(test_decode_augment);
  NN_TEST_RUN(test_views_iter);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return NN_TEST_END();
}
