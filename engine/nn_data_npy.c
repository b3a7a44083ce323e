/* nn_data_npy.c: NumPy .npy reader (docs/data.md: "anything else", e.g. TinyImageNet converted by the
 * user). Format 1.0/2.0/3.0: "\x93NUMPY", major, minor, header length (uint16 LE for 1.x, uint32
 * LE for 2.x/3.x), then a Python dict literal {'descr': .., 'fortran_order': .., 'shape': (..)}.
 * Images: uint8 ('|u1') or float32 ('<f4', '>f4'), C order, shape (N, H, W), (N, C, H, W) or
 * (N, H, W, C) by the layout option. Labels: any integer dtype, shape (N,) or (N, 1). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn_data_store.h"
#include "nn_gz.h"

typedef struct cur {
  const char *p, *end;
} cur;

static void skip_ws(cur *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int eat(cur *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A quoted string ('..' or ".."), copied into out (truncated to cap-1). */
static int read_str(cur *c, char *out, size_t cap) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
  char q = *c->p++;
  size_t k = 0;
  while (c->p < c->end && *c->p != q) {
    if (k + 1 < cap) out[k++] = *c->p;
    c->p++;
  }
  if (c->p >= c->end) return 0;
  c->p++;
  out[k] = 0;
  return 1;
}

static int read_word(cur *c, const char *w) {
  skip_ws(c);
  size_t n = strlen(w);
  if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
    c->p += n;
    return 1;
  }
  return 0;
}

nn_status nn_npy_parse(const uint8_t *buf, size_t n, const char *what, nn_npy_info *info,
                       nn_error *err) {
  memset(info, 0, sizeof *info);
  if (n < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
    return nn_fail(err, NN_EFORMAT, "%s: not a .npy file (bad magic string)", what);
  int major = buf[6];
  size_t hlen, start;
  if (major == 1) {
    hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (n < 12) return nn_fail(err, NN_EFORMAT, "%s: truncated .npy header", what);
    hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    start = 12;
  } else {
    return nn_fail(err, NN_EFORMAT, "%s: unsupported .npy version %d.%d (1.0, 2.0 or 3.0 expected)",
                   what, major, buf[7]);
  }
  if (hlen > n - start) return nn_fail(err, NN_EFORMAT, "%s: truncated .npy header", what);
  cur c = {(const char *)buf + start, (const char *)buf + start + hlen};
  int have_descr = 0, have_fo = 0, have_shape = 0;
  if (!eat(&c, '{')) return nn_fail(err, NN_EFORMAT, "%s: malformed .npy header (no dict)", what);
  while (!eat(&c, '}')) {
    char key[32];
    if (!read_str(&c, key, sizeof key) || !eat(&c, ':'))
      return nn_fail(err, NN_EFORMAT, "%s: malformed .npy header", what);
    if (strcmp(key, "descr") == 0) {
      if (!read_str(&c, info->descr, sizeof info->descr))
        return nn_fail(err, NN_EFORMAT, "%s: malformed .npy header ('descr' must be a string; "
                                        "structured dtypes are not supported)", what);
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (read_word(&c, "True"))
        info->fortran = 1;
      else if (read_word(&c, "False"))
        info->fortran = 0;
      else
        return nn_fail(err, NN_EFORMAT, "%s: malformed .npy header (fortran_order)", what);
      have_fo = 1;
    } else if (strcmp(key, "shape") == 0) {
      if (!eat(&c, '(')) return nn_fail(err, NN_EFORMAT, "%s: malformed .npy header (shape)", what);
      while (!eat(&c, ')')) {
        skip_ws(&c);
        if (info->ndim == 8)
          return nn_fail(err, NN_EFORMAT, "%s: .npy array with more than 8 dimensions", what);
        int64_t v = 0;
        int digits = 0;
        while (c.p < c.end && isdigit((unsigned char)*c.p)) {
          if (v > (INT64_MAX - 9) / 10)
            return nn_fail(err, NN_EFORMAT, "%s: .npy shape value too large", what);
          v = v * 10 + (*c.p++ - '0');
          digits++;
        }
        if (c.p < c.end && *c.p == 'L') c.p++; /* Python 2 longs */
        if (!digits) return nn_fail(err, NN_EFORMAT, "%s: malformed .npy header (shape)", what);
        info->shape[info->ndim++] = v;
        if (!eat(&c, ',')) {
          if (!eat(&c, ')'))
            return nn_fail(err, NN_EFORMAT, "%s: malformed .npy header (shape)", what);
          break;
        }
      }
      have_shape = 1;
    } else {
      return nn_fail(err, NN_EFORMAT, "%s: unexpected key '%s' in the .npy header", what, key);
    }
    if (!eat(&c, ',')) {
      if (!eat(&c, '}')) return nn_fail(err, NN_EFORMAT, "%s: malformed .npy header", what);
      break;
    }
  }
  if (!have_descr || !have_fo || !have_shape)
    return nn_fail(err, NN_EFORMAT, "%s: .npy header lacks '%s'", what,
                   !have_descr ? "descr" : !have_fo ? "fortran_order" : "shape");
  if (info->fortran)
    return nn_fail(err, NN_EFORMAT, "%s: Fortran-order arrays are not supported (C order expected)",
                   what);
  const char *d = info->descr;
  size_t dl = strlen(d);
  if (dl < 2 || !strchr("<>|=", d[0]) || !strchr("iuf", d[1]) || dl != 3 ||
      !strchr("1248", d[2]))
    return nn_fail(err, NN_EFORMAT, "%s: unsupported dtype '%s'", what, d);
  info->itemsize = (size_t)(d[2] - '0');
  uint64_t count = 1;
  for (int i = 0; i < info->ndim; i++) {
    if (info->shape[i] > 0 && count > (uint64_t)INT64_MAX / (uint64_t)info->shape[i] / 8)
      return nn_fail(err, NN_EFORMAT, "%s: .npy shape too large", what);
    count *= (uint64_t)info->shape[i];
  }
  info->count = (int64_t)count;
  info->offset = start + hlen;
  size_t avail = n - info->offset;
  if (count * info->itemsize > avail)
    return nn_fail(err, NN_EFORMAT, "%s: truncated: the header announces %llu bytes of data, the "
                   "file has %zu", what, (unsigned long long)(count * info->itemsize), avail);
  return NN_OK;
}

static int little_host(void) {
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

/* Reads element i of an integer array as int64 (byte order from descr). */
static int64_t int_at(const nn_npy_info *in, const uint8_t *base, int64_t i) {
  const uint8_t *p = base + (size_t)i * in->itemsize;
  int big = in->descr[0] == '>' || (in->descr[0] == '=' && !little_host());
  uint64_t v = 0;
  for (size_t k = 0; k < in->itemsize; k++) {
    size_t b = big ? k : in->itemsize - 1 - k;
    v = v << 8 | p[b];
  }
  if (in->descr[1] == 'i' && in->itemsize < 8) { /* sign-extend */
    uint64_t sign = (uint64_t)1 << (8 * in->itemsize - 1);
    if (v & sign) v |= ~((sign << 1) - 1);
  }
  return (int64_t)v;
}

/* Resolves the images and labels files. A folder holds <split>_images.npy + <split>_labels.npy,
 * x_<split>.npy + y_<split>.npy or <split>_x.npy + <split>_y.npy; for an images file without
 * labels= the labels file is its name with "images" -> "labels", or a leading "x_"/"x." or a
 * trailing "_x.npy" with y. Fills name (folder name or file stem). */
static int resolve(const nn_data_params *p, char *ip, char *lp, size_t cap, char *name,
                   size_t ncap, nn_error *err) {
  if (strlen(p->path) > 3000 || (p->labels && strlen(p->labels) > 3000)) {
    nn_fail(err, NN_EINVAL, "path too long");
    return 0;
  }
  if (nn_data_is_dir(p->path)) {
    static const char *const pats[][2] = {{"%s/%s_images.npy", "%s/%s_labels.npy"},
                                         {"%s/x_%s.npy", "%s/y_%s.npy"},
                                         {"%s/%s_x.npy", "%s/%s_y.npy"}};
    const char *sp = p->split == NN_DATA_TEST ? "test" : "train";
    size_t L = strlen(p->path);
    while (L > 1 && p->path[L - 1] == '/') L--;
    size_t b = L;
    while (b > 0 && p->path[b - 1] != '/') b--;
    snprintf(name, ncap, "%.*s", (int)(L - b), p->path + b);
    for (int k = 0; k < 3; k++) {
      snprintf(ip, cap, pats[k][0], p->path, sp);
      snprintf(lp, cap, pats[k][1], p->path, sp);
      if (nn_data_is_file(ip)) {
        if (p->labels) snprintf(lp, cap, "%s", p->labels);
        return 1;
      }
    }
    nn_fail(err, NN_EIO, "%s: no %s_images.npy, x_%s.npy or %s_x.npy in the folder", p->path, sp,
            sp, sp);
    return 0;
  }
  if (!nn_data_is_file(p->path)) { /* before deriving a labels name from it */
    struct stat sb;
    if (stat(p->path, &sb) != 0)
      nn_fail(err, NN_EIO, "%s: cannot open (%s)", p->path, strerror(errno));
    else
      nn_fail(err, NN_EIO, "%s: not a regular file", p->path);
    return 0;
  }
  snprintf(ip, cap, "%s", p->path);
  const char *base = nn_data_basename(p->path);
  const char *dot = strstr(base, ".npy");
  snprintf(name, ncap, "%.*s", dot ? (int)(dot - base) : (int)strlen(base), base);
  if (p->labels) {
    snprintf(lp, cap, "%s", p->labels);
    return 1;
  }
  size_t pre = (size_t)(base - p->path), bl = strlen(base);
  const char *m = strstr(base, "images");
  if (m) {
    snprintf(lp, cap, "%.*slabels%s", (int)(m - p->path), p->path, m + 6);
    return 1;
  }
  if (bl > 2 && base[0] == 'x' && (base[1] == '_' || base[1] == '.')) {
    snprintf(lp, cap, "%s", p->path);
    lp[pre] = 'y';
    return 1;
  }
  const char *t = bl >= 6 ? strstr(base + bl - 6, "_x.npy") : NULL;
  if (t) {
    snprintf(lp, cap, "%s", p->path);
    lp[pre + (size_t)(t - base) + 1] = 'y';
    return 1;
  }
  nn_fail(err, NN_EINVAL, "%s: a labels .npy file is needed (give labels=)", p->path);
  return 0;
}

nn_data_store *nn_data_read_npy(const nn_data_params *p, nn_data_meta *m, nn_error *err) {
  uint8_t *ib = NULL, *lb = NULL;
  size_t in, ln;
  nn_npy_info ii, li;
  nn_data_store *s = NULL;
  char ipath[3200], lpath[3200], dname[256];
  if (!resolve(p, ipath, lpath, sizeof ipath, dname, sizeof dname, err)) return NULL;
  if (nn_gz_read_file(ipath, &ib, &in, 0, err) != NN_OK) goto fail;
  if (nn_npy_parse(ib, in, ipath, &ii, err) != NN_OK) goto fail;
  int is_float = strcmp(ii.descr + 1, "f4") == 0;
  if (!(strcmp(ii.descr + 1, "u1") == 0 || is_float)) {
    nn_fail(err, NN_EFORMAT, "%s: unsupported image dtype '%s' (uint8 '|u1' or float32 '<f4' "
            "expected)", ipath, ii.descr);
    goto fail;
  }
  int64_t N, C, H, W;
  int nhwc = p->layout == NN_DATA_NHWC;
  if (ii.ndim == 3) {
    N = ii.shape[0], C = 1, H = ii.shape[1], W = ii.shape[2];
    nhwc = 0;
  } else if (ii.ndim == 4) {
    N = ii.shape[0];
    C = nhwc ? ii.shape[3] : ii.shape[1];
    H = nhwc ? ii.shape[1] : ii.shape[2];
    W = nhwc ? ii.shape[2] : ii.shape[3];
  } else {
    nn_fail(err, NN_EFORMAT, "%s: image array of %d dimensions (N x H x W or 4-d %s expected)",
            ipath, ii.ndim, nhwc ? "N x H x W x C" : "N x C x H x W");
    goto fail;
  }
  if (N < 1 || C < 1 || H < 1 || W < 1 || C > NN_DATA_MAX_CHANNELS || H > NN_DATA_MAX_SIDE ||
      W > NN_DATA_MAX_SIDE || C * H * W > NN_DATA_MAX_IMAGE) {
    nn_fail(err, NN_EFORMAT, "%s: unsupported image shape %lldx%lldx%lldx%lld (%s)", ipath,
            (long long)N, (long long)C, (long long)H, (long long)W, nhwc ? "NHWC" : "NCHW");
    goto fail;
  }
  if (nn_gz_read_file(lpath, &lb, &ln, 0, err) != NN_OK) goto fail;
  if (nn_npy_parse(lb, ln, lpath, &li, err) != NN_OK) goto fail;
  if (li.descr[1] == 'f') {
    nn_fail(err, NN_EFORMAT, "%s: unsupported label dtype '%s' (an integer dtype expected)",
            lpath, li.descr);
    goto fail;
  }
  if (!(li.ndim == 1 || (li.ndim == 2 && li.shape[1] == 1))) {
    nn_fail(err, NN_EFORMAT, "%s: label array of %d dimensions (N or N x 1 expected)", lpath,
            li.ndim);
    goto fail;
  }
  if (li.shape[0] != N) {
    nn_fail(err, NN_EFORMAT, "%s: %lld labels but %s has %lld images", lpath,
            (long long)li.shape[0], ipath, (long long)N);
    goto fail;
  }
  int64_t n = p->limit > 0 && p->limit < N ? p->limit : N;
  s = nn_data_store_new(n, (int)C, (int)H, (int)W, is_float, err);
  if (!s) goto fail;
  const uint8_t *ld = lb + li.offset;
  for (int64_t i = 0; i < n; i++) {
    int64_t v = int_at(&li, ld, i);
    if (v < 0 || v > INT32_MAX) {
      nn_fail(err, NN_EFORMAT, "%s: label %lld of record %lld is out of range", lpath,
              (long long)v, (long long)i);
      goto fail;
    }
    s->labels[i] = (int32_t)v;
  }
  const uint8_t *src = ib + ii.offset;
  size_t img = (size_t)(C * H * W), hw = (size_t)(H * W);
  int file_big = ii.descr[0] == '>' || (ii.descr[0] == '=' && !little_host());
  int swap = is_float && file_big != !little_host();
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *rs = src + (size_t)i * img * (is_float ? 4 : 1);
    for (size_t c = 0; c < (size_t)C; c++)
      for (size_t yx = 0; yx < hw; yx++) {
        /* destination (c, y, x) of NCHW; the source element differs for NHWC */
        size_t k = c * hw + yx, sk = nhwc ? yx * (size_t)C + c : k;
        if (is_float) {
          uint8_t bt[4];
          memcpy(bt, rs + sk * 4, 4);
          if (swap) {
            uint8_t t = bt[0];
            bt[0] = bt[3];
            bt[3] = t;
            t = bt[1];
            bt[1] = bt[2];
            bt[2] = t;
          }
          float f;
          memcpy(&f, bt, 4);
          if (!(f == f) || f > 3.4e38f || f < -3.4e38f) {
            nn_fail(err, NN_EFORMAT, "%s: record %lld holds a NaN or infinite value", ipath,
                    (long long)i);
            goto fail;
          }
          if (!(f >= -(float)NN_DATA_MAX_VALUE && f <= (float)NN_DATA_MAX_VALUE)) { /* 1e30 as a float32 */
            nn_fail(err, NN_EFORMAT, "%s: record %lld holds the pixel value %g, outside the supported "
                    "range [-%g, %g]", ipath, (long long)i, (double)f, NN_DATA_MAX_VALUE, NN_DATA_MAX_VALUE);
            goto fail;
          }
          s->f32[(size_t)i * img + k] = f;
        } else {
          s->u8[(size_t)i * img + k] = rs[sk];
        }
      }
  }
  free(ib);
  free(lb);
  m->classes = p->classes;
  snprintf(m->name_buf, sizeof m->name_buf, "%s", dname);
  m->name = p->name ? p->name : m->name_buf;
  snprintf(m->what_buf, sizeof m->what_buf, "%s", lpath);
  m->what = m->what_buf;
  return s;
fail:
  nn_data_store_release(s);
  free(ib);
  free(lb);
  return NULL;
}
