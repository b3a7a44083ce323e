/* nn_data.c: the dataset object (docs/data.md): uint8/float32 store, per-channel normalisation,
 * per-batch decoding with random crop + horizontal flip (docs/training.md), views, splits, iteration. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_data_store.h"
#include "nn_gz.h"
#include "nn_tensor_impl.h"

struct nn_data {
  nn_data_store *s;
  int64_t n;         /* records in this view */
  int64_t *idx;      /* view -> store record, or NULL for the identity */
  int classes;
  char *name, *path, *source;
  double *mean, *std; /* c each */
  float *lut;         /* uint8 store: c*256 normalised values, lut[c*256 + v] */
};

nn_data_params nn_data_params_default(void) {
  nn_data_params p;
  memset(&p, 0, sizeof p);
  p.format = NN_DATA_IDX;
  p.split = NN_DATA_TRAIN;
  p.layout = NN_DATA_NCHW;
  p.label = NN_DATA_FINE;
  return p;
}

nn_data_iter_params nn_data_iter_params_default(void) {
  nn_data_iter_params p;
  memset(&p, 0, sizeof p);
  p.batch = 64;
  p.shuffle = 1;
  p.aug.crop = 1;
  p.aug.pad = -1;
  p.aug.flip = 1;
  return p;
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* ---- dataset ---- */

void nn_data_free(nn_data *d) {
  if (!d) return;
  nn_data_store_release(d->s);
  free(d->idx);
  free(d->name);
  free(d->path);
  free(d->source);
  free(d->mean);
  free(d->std);
  free(d->lut);
  free(d);
}

static int64_t rec(const nn_data *d, int64_t i) { return d->idx ? d->idx[i] : i; }

/* Fills the uint8 lookup table from mean/std: lut[c][v] = (v/255 - mean[c]) / std[c]. */
static void build_lut(nn_data *d) {
  if (!d->lut) return;
  for (int c = 0; c < d->s->c; c++)
    for (int v = 0; v < 256; v++)
      d->lut[c * 256 + v] = (float)(((double)v / 255.0 - d->mean[c]) / d->std[c]);
}

/* Per-channel mean and population std over the whole store (uint8 in units of 1/255). */
static void compute_norm(const nn_data_store *s, double *mean, double *std) {
  size_t hw = (size_t)s->h * s->w;
  for (int c = 0; c < s->c; c++) {
    double m, var;
    if (s->u8) {
      uint64_t sum = 0, sq = 0;
      for (int64_t i = 0; i < s->n; i++) {
        const uint8_t *p = s->u8 + ((size_t)i * s->c + c) * hw;
        uint64_t a = 0, b = 0;
        for (size_t k = 0; k < hw; k++) {
          a += p[k];
          b += (uint32_t)p[k] * p[k];
        }
        sum += a;
        sq += b;
      }
      double cnt = (double)s->n * (double)hw;
      m = (double)sum / cnt;
      var = (double)sq / cnt - m * m;
      m /= 255.0;
      var /= 255.0 * 255.0;
    } else {
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < s->n; i++) {
        const float *p = s->f32 + ((size_t)i * s->c + c) * hw;
        for (size_t k = 0; k < hw; k++) sum += p[k];
      }
      double cnt = (double)s->n * (double)hw;
      m = sum / cnt;
      for (int64_t i = 0; i < s->n; i++) {
        const float *p = s->f32 + ((size_t)i * s->c + c) * hw;
        for (size_t k = 0; k < hw; k++) sq += (p[k] - m) * (p[k] - m);
      }
      var = sq / cnt;
    }
    mean[c] = m;
    /* a constant channel would divide by zero: normalise by 1 instead */
    std[c] = var > 1e-24 ? sqrt(var) : 1.0;
  }
}

/* The range of channel c's pixel values v (a uint8 store in units of 1/255), widened to hold 0:
 * the value of padding. */
static void value_range(const nn_data_store *s, int c, double *lo, double *hi) {
  *lo = 0, *hi = s->u8 ? 1 : 0;
  if (s->u8) return;
  size_t hw = (size_t)s->h * s->w;
  for (int64_t i = 0; i < s->n; i++) {
    const float *p = s->f32 + ((size_t)i * s->c + c) * hw;
    for (size_t k = 0; k < hw; k++) {
      if (p[k] < *lo) *lo = p[k];
      if (p[k] > *hi) *hi = p[k];
    }
  }
}

/* NN_OK when mean/std keep every normalised value (v - mean) / std of the store's pixels and of
 * the padding within +-NN_DATA_MAX_VALUE (finite float32 with room to spare); else NN_EINVAL
 * naming the channel, prefixed by `what` when it is not NULL. */
static nn_status check_norm(const nn_data_store *s, const double *mean, const double *std,
                            const char *what, nn_error *err) {
  for (int c = 0; c < s->c; c++) {
    if (!isfinite(mean[c])) return nn_fail(err, NN_EINVAL, "mean[%d]: finite number expected", c + 1);
    if (!isfinite(std[c]) || std[c] <= 0)
      return nn_fail(err, NN_EINVAL, "std[%d]: positive number expected", c + 1);
  }
  for (int c = 0; c < s->c; c++) {
    double lo, hi;
    value_range(s, c, &lo, &hi);
    double a = (lo - mean[c]) / std[c], b = (hi - mean[c]) / std[c]; /* std > 0: a <= b */
    if (!(a >= -NN_DATA_MAX_VALUE && b <= NN_DATA_MAX_VALUE))
      return nn_fail(err, NN_EINVAL, "%s%sstd[%d] = %g (mean[%d] = %g) normalises pixel values in [%g, %g] "
                     "to [%g, %g], outside +-%g", what ? what : "", what ? ": " : "", c + 1, std[c], c + 1,
                     mean[c], lo, hi, a, b, NN_DATA_MAX_VALUE);
  }
  return NN_OK;
}

/* A dataset header around store s (refcount taken by the caller) with copies of the strings. */
static nn_data *wrap(nn_data_store *s, int classes, const char *name, const char *path,
                     const char *source, nn_error *err) {
  nn_data *d = calloc(1, sizeof *d);
  if (!d) {
    nn_fail(err, NN_ENOMEM, "out of memory");
    return NULL;
  }
  d->s = s;
  d->n = s->n;
  d->classes = classes;
  d->name = dupstr(name ? name : "");
  d->path = dupstr(path ? path : "");
  d->source = dupstr(source ? source : "user");
  d->mean = calloc((size_t)s->c, sizeof(double));
  d->std = calloc((size_t)s->c, sizeof(double));
  if (s->u8) d->lut = malloc((size_t)s->c * 256 * sizeof(float));
  if (!d->name || !d->path || !d->source || !d->mean || !d->std || (s->u8 && !d->lut)) {
    d->s = NULL; /* the caller still owns its reference */
    nn_data_free(d);
    nn_fail(err, NN_ENOMEM, "out of memory");
    return NULL;
  }
  return d;
}

/* Wraps a filled store (ownership passes to the dataset, also on failure). classes: 0 = max
 * label + 1, else labels are checked against it. mean/std: NULL = computed over the store.
 * `what` names the source in errors. */
static nn_data *from_store(nn_data_store *s, int classes, const char *name, const char *path,
                           const char *source, const double *mean, const double *std,
                           const char *what, nn_error *err) {
  int maxl = -1;
  for (int64_t i = 0; i < s->n; i++) {
    int32_t l = s->labels[i];
    if (classes <= 0 && l >= NN_DATA_MAX_CLASSES) { /* found by fuzz_npy: maxl + 1 overflowed */
      nn_fail(err, NN_EFORMAT, "%s: label %d of record %lld exceeds the limit of %d classes", what,
              (int)l, (long long)i, NN_DATA_MAX_CLASSES);
      nn_data_store_release(s);
      return NULL;
    }
    if (l < 0 || (classes > 0 && l >= classes)) {
      if (classes > 0)
        nn_fail(err, NN_EFORMAT, "%s: label %d of record %lld outside 0..%d", what, (int)l,
                (long long)i, classes - 1);
      else
        nn_fail(err, NN_EFORMAT, "%s: negative label %d of record %lld", what, (int)l,
                (long long)i);
      nn_data_store_release(s);
      return NULL;
    }
    if (l > maxl) maxl = l;
  }
  if (classes <= 0) classes = maxl + 1;
  nn_data *d = wrap(s, classes, name, path, source, err);
  if (!d) {
    nn_data_store_release(s);
    return NULL;
  }
  if (mean && std) {
    memcpy(d->mean, mean, (size_t)s->c * sizeof(double));
    memcpy(d->std, std, (size_t)s->c * sizeof(double));
  } else {
    compute_norm(s, d->mean, d->std);
  }
  if (check_norm(s, d->mean, d->std, path, err) != NN_OK) {
    nn_data_free(d);
    return NULL;
  }
  build_lut(d);
  return d;
}

nn_data *nn_data_open(const nn_data_params *p, nn_error *err) {
  if (!p || !p->path || !p->path[0]) {
    nn_fail(err, NN_EINVAL, "dataset path expected");
    return NULL;
  }
  if (p->limit < 0) {
    nn_fail(err, NN_EINVAL, "limit=%lld: >= 0 expected", (long long)p->limit);
    return NULL;
  }
  nn_data_meta m;
  memset(&m, 0, sizeof m);
  nn_data_store *s = NULL;
  switch (p->format) {
  case NN_DATA_IDX: s = nn_data_read_idx(p, &m, err); break;
  case NN_DATA_CIFAR10:
  case NN_DATA_CIFAR100: s = nn_data_read_cifar(p, &m, err); break;
  case NN_DATA_NPY: s = nn_data_read_npy(p, &m, err); break;
  default: nn_fail(err, NN_EINVAL, "unknown dataset format %d", (int)p->format); return NULL;
  }
  if (!s) {
    /* a reader's error about a file's content names the file; one that does not (a shape the
     * store refuses) gets the path the caller gave */
    const char *pre[2] = {p->path, p->labels};
    int named = 0;
    for (int k = 0; k < 2; k++) named |= pre[k] && err && !strncmp(err->msg, pre[k], strlen(pre[k]));
    if (err && err->code == NN_EFORMAT && !named) {
      char msg[sizeof err->msg];
      snprintf(msg, sizeof msg, "%s", err->msg);
      nn_fail(err, err->code, "%s: %s", p->path, msg);
    }
    return NULL;
  }
  return from_store(s, m.classes, m.name, p->path, p->source, m.mean, m.std, m.what, err);
}

int64_t nn_data_size(const nn_data *d) { return d->n; }
int nn_data_channels(const nn_data *d) { return d->s->c; }
int nn_data_height(const nn_data *d) { return d->s->h; }
int nn_data_width(const nn_data *d) { return d->s->w; }
int nn_data_classes(const nn_data *d) { return d->classes; }
int nn_data_is_float(const nn_data *d) { return d->s->f32 != NULL; }
const char *nn_data_name(const nn_data *d) { return d->name; }
const char *nn_data_path(const nn_data *d) { return d->path; }
const char *nn_data_source(const nn_data *d) { return d->source; }
double nn_data_mean(const nn_data *d, int c) { return c >= 0 && c < d->s->c ? d->mean[c] : 0; }
double nn_data_std(const nn_data *d, int c) { return c >= 0 && c < d->s->c ? d->std[c] : 1; }

nn_status nn_data_set_norm(nn_data *d, const double *mean, const double *std, nn_error *err) {
  nn_status st = check_norm(d->s, mean, std, NULL, err);
  if (st != NN_OK) return st;
  memcpy(d->mean, mean, (size_t)d->s->c * sizeof(double));
  memcpy(d->std, std, (size_t)d->s->c * sizeof(double));
  build_lut(d);
  return NN_OK;
}

int nn_data_label(const nn_data *d, int64_t i) {
  return i >= 0 && i < d->n ? d->s->labels[rec(d, i)] : -1;
}

const uint8_t *nn_data_pixels(const nn_data *d, int64_t i) {
  if (!d->s->u8 || i < 0 || i >= d->n) return NULL;
  return d->s->u8 + (size_t)rec(d, i) * d->s->c * d->s->h * d->s->w;
}

const float *nn_data_pixels_f32(const nn_data *d, int64_t i) {
  if (!d->s->f32 || i < 0 || i >= d->n) return NULL;
  return d->s->f32 + (size_t)rec(d, i) * d->s->c * d->s->h * d->s->w;
}

/* ---- decoding ---- */

static int aug_pad(const nn_data *d, const nn_data_aug *a) {
  if (a->pad >= 0) return a->pad;
  return d->s->h == 28 && d->s->w == 28 ? 2 : 4; /* docs/training.md */
}

/* Crop offsets dy, dx in 0..2*pad and the flip bit of view record i (draw order: dy, dx, flip). */
static void aug_draw(const nn_data_aug *a, int pad, const nn_rng *rng, int64_t i, int *dy, int *dx,
                     int *flip) {
  nn_rng r = nn_rng_split_u64(rng, (uint64_t)i);
  *dy = *dx = pad;
  *flip = 0;
  if (a->crop && pad > 0) {
    *dy = (int)nn_rng_below(&r, (uint64_t)(2 * pad + 1));
    *dx = (int)nn_rng_below(&r, (uint64_t)(2 * pad + 1));
  }
  if (a->flip) *flip = (int)nn_rng_below(&r, 2);
}

static nn_status check_args(const nn_data *d, const int64_t *idx, int64_t n, const nn_data_aug *aug,
                            const nn_tensor *x, const nn_tensor *y, nn_error *err) {
  int64_t img = (int64_t)d->s->c * d->s->h * d->s->w;
  if (n < 0) return nn_fail(err, NN_EINVAL, "batch size %lld: >= 0 expected", (long long)n);
  if (!x || x->numel != n * img)
    return nn_fail(err, NN_EINVAL, "x: %lld values expected", (long long)(n * img));
  if (!y || y->numel != n) return nn_fail(err, NN_EINVAL, "y: %lld values expected", (long long)n);
  for (int64_t k = 0; k < n; k++)
    if (idx[k] < 0 || idx[k] >= d->n)
      return nn_fail(err, NN_EINVAL, "record %lld outside 0..%lld", (long long)idx[k],
                     (long long)(d->n - 1));
  if (aug && aug->pad > NN_DATA_MAX_PAD)
    return nn_fail(err, NN_EINVAL, "pad=%d: at most %d expected", aug->pad, NN_DATA_MAX_PAD);
  return NN_OK;
}

nn_status nn_data_decode(const nn_data *d, const int64_t *idx, int64_t n, const nn_data_aug *aug,
                         const nn_rng *rng, nn_tensor *x, nn_tensor *y, nn_error *err) {
  nn_status st = check_args(d, idx, n, aug, x, y, err);
  if (st != NN_OK) return st;
  const int C = d->s->c, H = d->s->h, W = d->s->w;
  const size_t hw = (size_t)H * W, img = (size_t)C * hw;
  const int pad = aug ? aug_pad(d, aug) : 0;
  nn_rng r0 = rng ? *rng : nn_rng_seed(0);
  for (int64_t k = 0; k < n; k++) {
    int64_t ri = rec(d, idx[k]);
    float *out = x->data + (size_t)k * img;
    y->data[k] = (float)d->s->labels[ri];
    int dy = pad, dx = pad, flip = 0;
    if (aug) aug_draw(aug, pad, &r0, idx[k], &dy, &dx, &flip);
    const int oy = dy - pad, ox = dx - pad; /* source = output + offset */
    for (int c = 0; c < C; c++) {
      float *o = out + (size_t)c * hw;
      if (d->s->u8) {
        const uint8_t *src = d->s->u8 + (size_t)ri * img + (size_t)c * hw;
        const float *lut = d->lut + c * 256;
        if (oy == 0 && ox == 0 && !flip) {
          for (size_t p = 0; p < hw; p++) o[p] = lut[src[p]];
          continue;
        }
        for (int yy = 0; yy < H; yy++) {
          int sy = yy + oy;
          float *orow = o + (size_t)yy * W;
          if (sy < 0 || sy >= H) {
            for (int xx = 0; xx < W; xx++) orow[xx] = lut[0];
            continue;
          }
          const uint8_t *srow = src + (size_t)sy * W;
          /* output columns [a, b) read inside the image; the rest is padding */
          int a = flip ? (ox > 0 ? ox : 0) : (ox < 0 ? -ox : 0);
          int b = flip ? (ox < 0 ? W + ox : W) : (ox > 0 ? W - ox : W);
          if (a > W) a = W;
          if (b > W) b = W;
          if (b < a) b = a;
          for (int xx = 0; xx < a; xx++) orow[xx] = lut[0];
          if (flip) {
            const uint8_t *s = srow + (W - 1 + ox);
            for (int xx = a; xx < b; xx++) orow[xx] = lut[s[-xx]];
          } else {
            const uint8_t *s = srow + ox;
            for (int xx = a; xx < b; xx++) orow[xx] = lut[s[xx]];
          }
          for (int xx = b; xx < W; xx++) orow[xx] = lut[0];
        }
      } else {
        const float *src = d->s->f32 + (size_t)ri * img + (size_t)c * hw;
        const double m = d->mean[c], s = d->std[c];
        const float zero = (float)((0.0 - m) / s);
        for (int yy = 0; yy < H; yy++) {
          int sy = yy + oy;
          float *orow = o + (size_t)yy * W;
          for (int xx = 0; xx < W; xx++) {
            int sx = (flip ? W - 1 - xx : xx) + ox;
            orow[xx] = sy >= 0 && sy < H && sx >= 0 && sx < W
                           ? (float)(((double)src[(size_t)sy * W + sx] - m) / s)
                           : zero;
          }
        }
      }
    }
  }
  return NN_OK;
}

/* Naive twin: pads the raw record into a (H+2p) x (W+2p) image of zeros, cuts the window at
 * (dy, dx), mirrors it when flip, then normalises each pixel with the formula. */
nn_status nn_data_decode_ref(const nn_data *d, const int64_t *idx, int64_t n,
                             const nn_data_aug *aug, const nn_rng *rng, nn_tensor *x,
                             nn_tensor *y, nn_error *err) {
  nn_status st = check_args(d, idx, n, aug, x, y, err);
  if (st != NN_OK) return st;
  const int C = d->s->c, H = d->s->h, W = d->s->w;
  const int pad = aug ? aug_pad(d, aug) : 0;
  const int PH = H + 2 * pad, PW = W + 2 * pad;
  double *padded = malloc((size_t)PH * PW * sizeof(double));
  double *win = malloc((size_t)H * W * sizeof(double));
  if (!padded || !win) {
    free(padded);
    free(win);
    return nn_fail(err, NN_ENOMEM, "out of memory");
  }
  nn_rng r0 = rng ? *rng : nn_rng_seed(0);
  for (int64_t k = 0; k < n; k++) {
    int64_t ri = rec(d, idx[k]);
    y->data[k] = (float)d->s->labels[ri];
    int dy = pad, dx = pad, flip = 0;
    if (aug) aug_draw(aug, pad, &r0, idx[k], &dy, &dx, &flip);
    for (int c = 0; c < C; c++) {
      size_t base = (((size_t)ri * C + c) * H) * W;
      for (int i = 0; i < PH * PW; i++) padded[i] = 0.0;
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++)
          padded[(size_t)(i + pad) * PW + j + pad] =
              d->s->u8 ? d->s->u8[base + (size_t)i * W + j] / 255.0
                       : (double)d->s->f32[base + (size_t)i * W + j];
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) win[(size_t)i * W + j] = padded[(size_t)(i + dy) * PW + j + dx];
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
          double v = win[(size_t)i * W + (flip ? W - 1 - j : j)];
          x->data[(((size_t)k * C + c) * H + i) * W + j] = (float)((v - d->mean[c]) / d->std[c]);
        }
    }
  }
  free(padded);
  free(win);
  return NN_OK;
}

void nn_data_permutation_prefix(int64_t size, nn_rng rng, int64_t *perm, int64_t k) {
  for (int64_t i = 0; i < size; i++) perm[i] = i;
  if (k > size - 1) k = size - 1;
  for (int64_t i = 0; i < k; i++) { /* forward Fisher-Yates: position i is final after step i */
    int64_t j = i + (int64_t)nn_rng_below(&rng, (uint64_t)(size - i));
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

void nn_data_permutation(int64_t size, nn_rng rng, int64_t *perm) {
  nn_data_permutation_prefix(size, rng, perm, size);
}

/* ---- views ---- */

nn_data *nn_data_subset(const nn_data *d, const int64_t *idx, int64_t n, nn_error *err) {
  if (n < 1) {
    nn_fail(err, NN_EINVAL, "a view needs at least one record");
    return NULL;
  }
  for (int64_t k = 0; k < n; k++)
    if (idx[k] < 0 || idx[k] >= d->n) {
      nn_fail(err, NN_EINVAL, "record %lld outside 0..%lld", (long long)idx[k],
              (long long)(d->n - 1));
      return NULL;
    }
  nn_data *v = wrap(d->s, d->classes, d->name, d->path, d->source, err);
  if (!v) return NULL;
  d->s->refs++;
  v->n = n;
  v->idx = malloc((size_t)n * sizeof *v->idx);
  if (!v->idx) {
    nn_data_free(v);
    nn_fail(err, NN_ENOMEM, "out of memory");
    return NULL;
  }
  for (int64_t k = 0; k < n; k++) v->idx[k] = rec(d, idx[k]);
  memcpy(v->mean, d->mean, (size_t)d->s->c * sizeof(double));
  memcpy(v->std, d->std, (size_t)d->s->c * sizeof(double));
  if (v->lut) memcpy(v->lut, d->lut, (size_t)d->s->c * 256 * sizeof(float));
  return v;
}

nn_status nn_data_split(const nn_data *d, double validation, uint64_t seed, nn_data **train,
                        nn_data **val, nn_error *err) {
  *train = *val = NULL;
  if (!(validation > 0 && validation < 1))
    return nn_fail(err, NN_EINVAL, "validation=%g: fraction in (0, 1) expected", validation);
  int64_t nv = (int64_t)llround(validation * (double)d->n);
  if (nv < 1 || nv >= d->n)
    return nn_fail(err, NN_EINVAL,
                   "validation=%g of %lld records leaves an empty part", validation,
                   (long long)d->n);
  int64_t *perm = malloc((size_t)d->n * sizeof *perm);
  if (!perm) return nn_fail(err, NN_ENOMEM, "out of memory");
  nn_rng r = nn_rng_seed(seed);
  nn_data_permutation(d->n, nn_rng_split(&r, "split"), perm);
  *val = nn_data_subset(d, perm, nv, err);
  if (*val) *train = nn_data_subset(d, perm + nv, d->n - nv, err);
  free(perm);
  if (!*train) {
    nn_data_free(*val);
    *val = NULL;
    return err ? err->code : NN_ENOMEM;
  }
  return NN_OK;
}

/* ---- iteration ---- */

struct nn_data_iter {
  nn_data *d;        /* own view of the same records */
  int64_t *order;
  int64_t pos, batch;
  int drop_last, augment;
  nn_data_aug aug;
  nn_rng aug_rng;
};

nn_data_iter *nn_data_iter_new(const nn_data *d, const nn_data_iter_params *p, nn_error *err) {
  if (p->batch < 1) {
    nn_fail(err, NN_EINVAL, "batch=%lld: >= 1 expected", (long long)p->batch);
    return NULL;
  }
  nn_data_iter *it = calloc(1, sizeof *it);
  int64_t *ident = malloc((size_t)d->n * sizeof *ident);
  if (!it || !ident) {
    free(it);
    free(ident);
    nn_fail(err, NN_ENOMEM, "out of memory");
    return NULL;
  }
  for (int64_t i = 0; i < d->n; i++) ident[i] = i;
  it->d = nn_data_subset(d, ident, d->n, err);
  if (!it->d) {
    free(ident);
    free(it);
    return NULL;
  }
  nn_rng base = nn_rng_seed(p->seed);
  base = nn_rng_split_u64(&base, p->epoch);
  if (p->shuffle) nn_data_permutation(d->n, nn_rng_split(&base, "order"), ident);
  it->order = ident;
  it->batch = p->batch;
  it->drop_last = p->drop_last;
  it->augment = p->augment;
  it->aug = p->aug;
  it->aug_rng = nn_rng_split(&base, "augment");
  return it;
}

void nn_data_iter_free(nn_data_iter *it) {
  if (!it) return;
  nn_data_free(it->d);
  free(it->order);
  free(it);
}

int64_t nn_data_iter_batches(const nn_data_iter *it) {
  int64_t n = it->d->n;
  return it->drop_last ? n / it->batch : (n + it->batch - 1) / it->batch;
}

nn_status nn_data_iter_next(nn_data_iter *it, nn_tensor **x, nn_tensor **y, nn_error *err) {
  *x = *y = NULL;
  int64_t left = it->d->n - it->pos;
  int64_t n = left < it->batch ? left : it->batch;
  if (n <= 0 || (it->drop_last && n < it->batch)) return NN_OK;
  const nn_data *d = it->d;
  nn_tensor *tx = nn_tensor_new4(4, n, d->s->c, d->s->h, d->s->w, err);
  nn_tensor *ty = tx ? nn_tensor_new4(1, n, 0, 0, 0, err) : NULL;
  if (!ty) {
    nn_tensor_free(tx);
    return err ? err->code : NN_ENOMEM;
  }
  nn_status st = nn_data_decode(d, it->order + it->pos, n, it->augment ? &it->aug : NULL,
                                &it->aug_rng, tx, ty, err);
  if (st != NN_OK) {
    nn_tensor_free(tx);
    nn_tensor_free(ty);
    return st;
  }
  it->pos += n;
  *x = tx;
  *y = ty;
  return NN_OK;
}

/* ---- probing ---- */

nn_status nn_data_probe(const char *path, int fmt, nn_error *err) {
  nn_data_params p = nn_data_params_default();
  p.path = path;
  if (fmt < 0) {
    const char *b = path ? nn_data_basename(path) : "";
    if (strstr(b, "cifar-100") || strstr(b, "cifar100"))
      fmt = NN_DATA_CIFAR100;
    else if (strstr(b, "cifar"))
      fmt = NN_DATA_CIFAR10;
    else if (strstr(b, ".npy"))
      fmt = NN_DATA_NPY;
    else
      fmt = NN_DATA_IDX;
  }
  p.format = (nn_data_format)fmt;
  if (fmt == NN_DATA_NPY && !nn_data_is_dir(path)) { /* one file: its header and dtype */
    uint8_t *buf;
    size_t n;
    nn_npy_info info;
    nn_status st = nn_gz_read_file(path, &buf, &n, 0, err);
    if (st != NN_OK) return st;
    st = nn_npy_parse(buf, n, path, &info, err);
    free(buf);
    if (st == NN_OK && strcmp(info.descr + 1, "u1") != 0 && strcmp(info.descr + 1, "f4") != 0)
      st = nn_fail(err, NN_EFORMAT, "%s: unsupported image dtype '%s' (uint8 '|u1' or float32 "
                   "'<f4' expected)", path, info.descr);
    return st;
  }
  nn_data *d = nn_data_open(&p, err);
  if (!d) return err ? err->code : NN_EFORMAT;
  nn_data_free(d);
  return NN_OK;
}
