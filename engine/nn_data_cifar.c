/* nn_data_cifar.c: CIFAR-10/100 binary reader and the tar parser (docs/data.md).
 * CIFAR-10 records: 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32, row-major);
 * files data_batch_1..5.bin (train) and test_batch.bin, in cifar-10-batches-bin/.
 * CIFAR-100 records: coarse label byte + fine label byte + 3072 pixel bytes; files train.bin and
 * test.bin in cifar-100-binary/. Either from the extracted folder or straight from the official
 * cifar-10-binary.tar.gz / cifar-100-binary.tar.gz (ustar/GNU tar, gzip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_data_store.h"
#include "nn_gz.h"

#define CIFAR_PIXELS 3072

/* Published per-channel statistics of the training sets (units of pixel/255). */
static const double cifar10_mean[3] = {0.4914, 0.4822, 0.4465};
static const double cifar10_std[3] = {0.2470, 0.2435, 0.2616};
static const double cifar100_mean[3] = {0.5071, 0.4865, 0.4409};
static const double cifar100_std[3] = {0.2673, 0.2564, 0.2762};

/* ---- tar ---- */

/* Parses an octal (or GNU base-256) numeric header field; -1 when malformed. */
static int64_t tar_num(const uint8_t *p, size_t n) {
  if (p[0] & 0x80) { /* base-256: big-endian, positive only here */
    uint64_t v = p[0] & 0x7f;
    for (size_t i = 1; i < n; i++) {
      if (v >> 55) return -1;
      v = v << 8 | p[i];
    }
    return v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
  }
  size_t i = 0;
  while (i < n && p[i] == ' ') i++;
  int64_t v = 0;
  int digits = 0;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; i++, digits++) {
    if (v >> 60) return -1;
    v = v * 8 + (p[i] - '0');
  }
  for (; i < n; i++)
    if (p[i] != ' ' && p[i] != 0) return -1;
  return digits ? v : (n > 0 && p[0] == 0 ? 0 : -1);
}

static int all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/* Finds "path=" in a pax extended header body; copies the value into name. */
static void pax_path(const uint8_t *p, size_t n, char *name, size_t cap) {
  size_t pos = 0;
  while (pos < n) {
    size_t len = 0, i = pos;
    while (i < n && p[i] >= '0' && p[i] <= '9' && len < ((size_t)1 << 40)) len = len * 10 + (p[i++] - '0');
    if (i >= n || p[i] != ' ' || len == 0 || len > n - pos) return;
    const uint8_t *rec = p + i + 1, *end = p + pos + len; /* record ends with '\n' */
    if (rec < end && (size_t)(end - rec) > 5 && memcmp(rec, "path=", 5) == 0) {
      size_t vl = (size_t)(end - rec) - 5 - 1;
      if (vl >= cap) vl = cap - 1;
      memcpy(name, rec + 5, vl);
      name[vl] = 0;
    }
    pos += len;
  }
}

nn_status nn_tar_parse(const uint8_t *buf, size_t n, const char *what, nn_tar_fn fn, void *ud,
                       nn_error *err) {
  size_t pos = 0;
  char longname[1024] = "";
  while (pos + 512 <= n) {
    const uint8_t *h = buf + pos;
    if (all_zero(h, 512)) return NN_OK; /* end-of-archive marker */
    int64_t sum = tar_num(h + 148, 8);
    int64_t mine = 0;
    for (int i = 0; i < 512; i++) mine += (i >= 148 && i < 156) ? ' ' : h[i];
    if (sum < 0 || sum != mine)
      return nn_fail(err, NN_EFORMAT, "%s: corrupt tar header at offset %zu (bad checksum)", what,
                     pos);
    int64_t size = tar_num(h + 124, 12);
    if (size < 0)
      return nn_fail(err, NN_EFORMAT, "%s: corrupt tar header at offset %zu (bad size)", what, pos);
    char type = (char)h[156];
    pos += 512;
    if ((uint64_t)size > n - pos)
      return nn_fail(err, NN_EFORMAT,
                     "%s: truncated tar archive (member at offset %zu needs %lld bytes, %zu left)",
                     what, pos - 512, (long long)size, n - pos);
    const uint8_t *data = buf + pos;
    size_t padded = ((size_t)size + 511) & ~(size_t)511;
    pos = padded > n - pos ? n : pos + padded;
    if (type == 'L') { /* GNU long name for the next member */
      size_t l = (size_t)size < sizeof longname - 1 ? (size_t)size : sizeof longname - 1;
      memcpy(longname, data, l);
      longname[l] = 0;
      continue;
    }
    if (type == 'x') { /* pax extended header for the next member */
      pax_path(data, (size_t)size, longname, sizeof longname);
      continue;
    }
    if (type == 'g') continue; /* pax global header */
    char name[1024];
    if (longname[0]) {
      snprintf(name, sizeof name, "%s", longname);
      longname[0] = 0;
    } else if (memcmp(h + 257, "ustar\0", 6) == 0 && h[345]) { /* POSIX prefix (not GNU) */
      snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
    } else {
      snprintf(name, sizeof name, "%.100s", (const char *)h);
    }
    if (type == '0' || type == 0 || type == '7') {
      nn_status st = fn(ud, name, data, (size_t)size, err);
      if (st != NN_OK) return st;
    }
  }
  if (pos < n && !all_zero(buf + pos, n - pos))
    return nn_fail(err, NN_EFORMAT, "%s: truncated tar archive (%zu stray bytes at the end)", what,
                   n - pos);
  return NN_OK;
}

/* ---- CIFAR ---- */

typedef struct cifar_files {
  int count;
  const char *names[5];
  const uint8_t *data[5]; /* member contents inside the archive buffer, or file buffers */
  size_t size[5];
  uint8_t *owned[5];
  char paths[5][4096];
} cifar_files;

static nn_status collect(void *ud, const char *name, const uint8_t *data, size_t size,
                         nn_error *err) {
  cifar_files *f = ud;
  const char *b = nn_data_basename(name);
  for (int i = 0; i < f->count; i++)
    if (strcmp(b, f->names[i]) == 0 && !f->data[i]) {
      f->data[i] = data;
      f->size[i] = size;
    }
  return NN_OK;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

nn_data_store *nn_data_read_cifar(const nn_data_params *p, nn_data_meta *m, nn_error *err) {
  static const char *const train10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin"};
  const int c100 = p->format == NN_DATA_CIFAR100;
  const size_t recsz = CIFAR_PIXELS + (c100 ? 2 : 1);
  const char *kind = c100 ? "CIFAR-100" : "CIFAR-10";
  cifar_files f;
  memset(&f, 0, sizeof f);
  if (c100) {
    f.count = 1;
    f.names[0] = p->split == NN_DATA_TEST ? "test.bin" : "train.bin";
  } else if (p->split == NN_DATA_TEST) {
    f.count = 1;
    f.names[0] = "test_batch.bin";
  } else {
    f.count = 5;
    for (int i = 0; i < 5; i++) f.names[i] = train10[i];
  }
  if (strlen(p->path) > 3000) {
    nn_fail(err, NN_EINVAL, "path too long");
    return NULL;
  }
  uint8_t *archive = NULL;
  size_t an = 0;
  nn_data_store *s = NULL;
  if (nn_data_is_dir(p->path)) {
    /* the extracted folder, or its parent */
    const char *sub = c100 ? "cifar-100-binary" : "cifar-10-batches-bin";
    char dir[3200];
    snprintf(dir, sizeof dir, "%s/%s", p->path, sub);
    if (!nn_data_is_dir(dir)) snprintf(dir, sizeof dir, "%s", p->path);
    for (int i = 0; i < f.count; i++) {
      snprintf(f.paths[i], sizeof f.paths[i], "%s/%s", dir, f.names[i]);
      if (nn_gz_read_file(f.paths[i], &f.owned[i], &f.size[i], 0, err) != NN_OK) goto fail;
      f.data[i] = f.owned[i];
    }
  } else if (ends_with(p->path, ".bin")) { /* one batch file */
    f.count = 1;
    snprintf(f.paths[0], sizeof f.paths[0], "%s", p->path);
    if (nn_gz_read_file(f.paths[0], &f.owned[0], &f.size[0], 0, err) != NN_OK) goto fail;
    f.data[0] = f.owned[0];
  } else { /* a tar (.tar.gz) archive */
    if (nn_gz_read_file(p->path, &archive, &an, 0, err) != NN_OK) goto fail;
    if (nn_tar_parse(archive, an, p->path, collect, &f, err) != NN_OK) goto fail;
    for (int i = 0; i < f.count; i++) {
      if (!f.data[i]) {
        nn_fail(err, NN_EFORMAT, "%s: the archive has no member %s", p->path, f.names[i]);
        goto fail;
      }
      snprintf(f.paths[i], sizeof f.paths[i], "%s:%s", p->path, f.names[i]);
    }
  }
  int64_t total = 0;
  for (int i = 0; i < f.count; i++) {
    if (f.size[i] == 0 || f.size[i] % recsz != 0) {
      nn_fail(err, NN_EFORMAT, "%s: size %zu is not a whole number of %zu-byte %s records",
              f.paths[i], f.size[i], recsz, kind);
      goto fail;
    }
    total += (int64_t)(f.size[i] / recsz);
  }
  int64_t n = p->limit > 0 && p->limit < total ? p->limit : total;
  s = nn_data_store_new(n, 3, 32, 32, 0, err);
  if (!s) goto fail;
  int64_t k = 0;
  for (int i = 0; i < f.count && k < n; i++) {
    const uint8_t *r = f.data[i];
    for (size_t j = 0; j < f.size[i] / recsz && k < n; j++, k++, r += recsz) {
      int coarse = c100 ? r[0] : -1, fine = c100 ? r[1] : r[0];
      if (c100 && coarse >= 20) {
        nn_fail(err, NN_EFORMAT, "%s: record %zu has coarse label %d (0..19 expected)", f.paths[i],
                j, coarse);
        goto fail;
      }
      int lim = c100 ? 100 : 10;
      if (fine >= lim) {
        nn_fail(err, NN_EFORMAT, "%s: record %zu has %slabel %d (0..%d expected)", f.paths[i], j,
                c100 ? "fine " : "", fine, lim - 1);
        goto fail;
      }
      s->labels[k] = c100 && p->label == NN_DATA_COARSE ? coarse : fine;
      memcpy(s->u8 + (size_t)k * CIFAR_PIXELS, r + (c100 ? 2 : 1), CIFAR_PIXELS);
    }
  }
  for (int i = 0; i < 5; i++) free(f.owned[i]);
  free(archive);
  {
    int classes = c100 ? (p->label == NN_DATA_COARSE ? 20 : 100) : 10;
    if (p->classes > 0 && p->classes != classes) {
      nn_data_store_release(s);
      nn_fail(err, NN_EINVAL, "classes=%d: %s has %d classes", p->classes, kind, classes);
      return NULL;
    }
    m->classes = classes;
    m->name = p->name ? p->name : (c100 ? "cifar100" : "cifar10");
    m->mean = c100 ? cifar100_mean : cifar10_mean;
    m->std = c100 ? cifar100_std : cifar10_std;
    m->what = p->path;
    return s;
  }
fail:
  nn_data_store_release(s);
  for (int i = 0; i < 5; i++) free(f.owned[i]);
  free(archive);
  return NULL;
}
