/* nn_data_idx.c: IDX reader (docs/data.md: MNIST, Fashion-MNIST), plain or gzip.
 * Format (LeCun): magic 00 00 <type> <ndim>, then ndim big-endian uint32 sizes, then the data.
 * Images: type 0x08 (unsigned byte), ndim 3 (N x H x W). Labels: type 0x08, ndim 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_data_store.h"
#include "nn_gz.h"

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

nn_status nn_idx_parse(const uint8_t *buf, size_t n, int want_ndim, const char *what,
                       int64_t *dims, const uint8_t **payload, nn_error *err) {
  const char *kind = want_ndim == 1 ? "labels" : "images";
  if (n < 4) return nn_fail(err, NN_EFORMAT, "%s: truncated IDX header (%zu bytes)", what, n);
  if (buf[0] != 0 || buf[1] != 0 || buf[2] != 0x08 || buf[3] != want_ndim)
    return nn_fail(err, NN_EFORMAT,
                   "%s: bad magic number 0x%02x%02x%02x%02x (IDX %s expected 0x000008%02x)", what,
                   buf[0], buf[1], buf[2], buf[3], kind, want_ndim);
  size_t hdr = 4 + 4 * (size_t)want_ndim;
  if (n < hdr) return nn_fail(err, NN_EFORMAT, "%s: truncated IDX header (%zu bytes)", what, n);
  uint64_t total = 1;
  for (int i = 0; i < want_ndim; i++) {
    dims[i] = be32(buf + 4 + 4 * i);
    if (dims[i] == 0) return nn_fail(err, NN_EFORMAT, "%s: dimension %d is 0", what, i + 1);
    if (i > 0 && dims[i] > NN_DATA_MAX_SIDE)
      return nn_fail(err, NN_EFORMAT, "%s: dimension %d = %lld too large", what, i + 1,
                     (long long)dims[i]);
    total *= (uint64_t)dims[i]; /* < 2^32 * 2^16 * 2^16: no overflow */
  }
  if (total > n - hdr) {
    if (want_ndim == 1)
      return nn_fail(err, NN_EFORMAT, "%s: truncated: header says %lld labels, file has %zu",
                     what, (long long)dims[0], n - hdr);
    return nn_fail(err, NN_EFORMAT,
                   "%s: truncated: header says %lld images of %lldx%lld (%llu bytes), file has %zu",
                   what, (long long)dims[0], (long long)dims[1], (long long)dims[2],
                   (unsigned long long)total, n - hdr);
  }
  if (total < n - hdr)
    return nn_fail(err, NN_EFORMAT, "%s: %zu bytes after the %llu bytes the header announces",
                   what, n - hdr - (size_t)total, (unsigned long long)total);
  *payload = buf + hdr;
  return NN_OK;
}

/* Finds "<dir>/<stem>-<kind>-idx<k>-ubyte" with '-' or '.' before idx, plain or .gz. */
static int find_file(const char *dir, const char *stem, const char *kind, int k, char *out,
                     size_t outn) {
  static const char *const seps[] = {"-", "."};
  static const char *const exts[] = {"", ".gz"};
  for (int s = 0; s < 2; s++)
    for (int e = 0; e < 2; e++) {
      snprintf(out, outn, "%s/%s-%s%sidx%d-ubyte%s", dir, stem, kind, seps[s], k, exts[e]);
      if (nn_data_is_file(out)) return 1;
    }
  snprintf(out, outn, "%s/%s-%s-idx%d-ubyte[.gz]", dir, stem, kind, k);
  return 0;
}

/* labels path from an images path: "...images-idx3..." -> "...labels-idx1..." */
static int derive_labels(const char *images, char *out, size_t outn) {
  const char *b = nn_data_basename(images);
  const char *m = strstr(b, "images");
  if (!m || strlen(images) + 2 >= outn) return 0;
  size_t pre = (size_t)(m - images);
  snprintf(out, outn, "%.*slabels%s", (int)pre, images, m + 6);
  char *k = strstr(out + pre, "idx3");
  if (k) k[3] = '1';
  return 1;
}

nn_data_store *nn_data_read_idx(const nn_data_params *p, nn_data_meta *m, nn_error *err) {
  char ipath[4096], lpath[4096];
  const char *name;
  char dirname[256];
  if (strlen(p->path) > 3000) {
    nn_fail(err, NN_EINVAL, "path too long");
    return NULL;
  }
  if (nn_data_is_dir(p->path)) {
    const char *stem = p->split == NN_DATA_TEST ? "t10k" : "train";
    if (!find_file(p->path, stem, "images", 3, ipath, sizeof ipath)) {
      nn_fail(err, NN_EIO, "%s: no IDX images file in the folder", ipath);
      return NULL;
    }
    if (p->labels) {
      snprintf(lpath, sizeof lpath, "%s", p->labels);
    } else if (!find_file(p->path, stem, "labels", 1, lpath, sizeof lpath)) {
      nn_fail(err, NN_EIO, "%s: no IDX labels file in the folder", lpath);
      return NULL;
    }
    /* name: the folder's last component */
    size_t L = strlen(p->path);
    while (L > 1 && p->path[L - 1] == '/') L--;
    size_t s = L;
    while (s > 0 && p->path[s - 1] != '/') s--;
    snprintf(dirname, sizeof dirname, "%.*s", (int)(L - s), p->path + s);
    name = dirname;
  } else {
    snprintf(ipath, sizeof ipath, "%s", p->path);
    if (p->labels)
      snprintf(lpath, sizeof lpath, "%s", p->labels);
    else if (!derive_labels(p->path, lpath, sizeof lpath))
      lpath[0] = 0; /* reported after the images file was read */
    name = "idx";
  }
  if (p->name) name = p->name;

  uint8_t *ib = NULL, *lb = NULL;
  size_t in, ln;
  int64_t idims[3], ldims[1];
  const uint8_t *ipay, *lpay;
  nn_data_store *s = NULL;
  if (nn_gz_read_file(ipath, &ib, &in, 0, err) != NN_OK) goto fail;
  if (nn_idx_parse(ib, in, 3, ipath, idims, &ipay, err) != NN_OK) goto fail;
  if (!lpath[0]) {
    nn_fail(err, NN_EINVAL, "%s: cannot derive the labels file name (give labels=)", p->path);
    goto fail;
  }
  if (nn_gz_read_file(lpath, &lb, &ln, 0, err) != NN_OK) goto fail;
  if (nn_idx_parse(lb, ln, 1, lpath, ldims, &lpay, err) != NN_OK) goto fail;
  if (ldims[0] != idims[0]) {
    nn_fail(err, NN_EFORMAT, "%s: %lld labels but %s has %lld images", lpath, (long long)ldims[0],
            ipath, (long long)idims[0]);
    goto fail;
  }
  int64_t n = idims[0];
  if (p->limit > 0 && p->limit < n) n = p->limit;
  s = nn_data_store_new(n, 1, (int)idims[1], (int)idims[2], 0, err);
  if (!s) goto fail;
  memcpy(s->u8, ipay, (size_t)n * idims[1] * idims[2]);
  for (int64_t i = 0; i < n; i++) s->labels[i] = lpay[i];
  free(ib);
  free(lb);
  m->classes = p->classes;
  snprintf(m->name_buf, sizeof m->name_buf, "%s", name == p->name ? "" : name);
  m->name = name == p->name ? p->name : m->name_buf; /* dirname is local, "idx" fits */
  snprintf(m->what_buf, sizeof m->what_buf, "%s", lpath);
  m->what = m->what_buf;
  return s;
fail:
  free(ib);
  free(lb);
  return NULL;
}
