/* nn_safetensors.c: safetensors reader (F32/F64/I64/I32/I16/I8/U8 -> float/double) and writer
 * (F32 tensors, or raw typed arrays; docs/interop.md). Little-endian hosts only (checked at run
 * time). The reader holds files to the format's own rules (docs/reliability.md "Files"): a
 * regular file; a header that is one valid JSON object (only spaces after it); unique tensor
 * names; __metadata__ at most once, an object of strings; data offsets that tile the data
 * section exactly (sorted by offset: contiguous, no overlap, no gap, no trailing bytes). */
#define _GNU_SOURCE /* qsort_r */
#include "neuronas/nn_safetensors.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_file.h"
#include "nn_tensor_impl.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* the format's own limit is 100 MB */

typedef struct st_tensor {
  char *name;
  char dtype[8];
  int ndim;
  int64_t shape[NN_TENSOR_MAXDIM];
  int64_t numel;
  uint64_t begin, end; /* relative to the data section */
} st_tensor;

struct nn_st_file {
  char *path;
  FILE *fp;
  uint64_t data_start, data_len;
  st_tensor *t;
  size_t n, cap;
  size_t *byname; /* tensor indices sorted by name (nn_st_find's binary search) */
  char **meta; /* key, value pairs */
  size_t nmeta;
};

/* ---- a small JSON reader, enough for safetensors headers ---- */
typedef struct jp {
  const char *s, *end;
  const char *why;
  char msg[96]; /* why, when it quotes the header */
} jp;

static void ws(jp *p) {
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t')) p->s++;
}
static int lit(jp *p, char c) {
  ws(p);
  if (p->s < p->end && *p->s == c) {
    p->s++;
    return 1;
  }
  return 0;
}
/* The 4 hex digits of a \u escape at p->s into *u; 0 at a bad digit. */
static int hex4(jp *p, unsigned *u) {
  *u = 0;
  for (int i = 0; i < 4; i++) {
    char h = p->s < p->end ? *p->s++ : 0;
    int v = h >= '0' && h <= '9' ? h - '0' : (h | 32) >= 'a' && (h | 32) <= 'f' ? (h | 32) - 'a' + 10 : -1;
    if (v < 0) return 0;
    *u = *u * 16 + (unsigned)v;
  }
  return 1;
}
/* Parses a JSON string into a malloc'd UTF-8 string (\uXXXX escapes, a surrogate pair as the one
 * code point it encodes; a lone surrogate is refused, as it has no UTF-8). */
static char *jstring(jp *p) {
  ws(p);
  if (p->s >= p->end || *p->s != '"') {
    p->why = "string expected";
    return NULL;
  }
  p->s++;
  size_t cap = 32, n = 0;
  char *out = malloc(cap);
  if (!out) return p->why = "out of memory", NULL;
  while (p->s < p->end && *p->s != '"') {
    unsigned c = (unsigned char)*p->s++;
    char buf[4];
    size_t k = 1;
    if (c < 0x20) return free(out), p->why = "control character in a string", NULL;
    if (c == '\\') {
      if (p->s >= p->end) break;
      c = (unsigned char)*p->s++;
      switch (c) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'u': {
        unsigned u, lo;
        if (!hex4(p, &u)) return free(out), p->why = "bad \\u escape", NULL;
        if (u >= 0xDC00 && u <= 0xDFFF) return free(out), p->why = "lone low surrogate in a \\u escape", NULL;
        if (u >= 0xD800 && u <= 0xDBFF) { /* must pair with a low surrogate: one code point above the BMP */
          if (p->end - p->s < 2 || p->s[0] != '\\' || p->s[1] != 'u')
            return free(out), p->why = "lone high surrogate in a \\u escape", NULL;
          p->s += 2;
          if (!hex4(p, &lo)) return free(out), p->why = "bad \\u escape", NULL;
          if (lo < 0xDC00 || lo > 0xDFFF) return free(out), p->why = "lone high surrogate in a \\u escape", NULL;
          u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (u == 0) return free(out), p->why = "NUL character in a string", NULL;
        if (u < 0x80) buf[0] = (char)u;
        else if (u < 0x800) buf[0] = (char)(0xC0 | (u >> 6)), buf[1] = (char)(0x80 | (u & 63)), k = 2;
        else if (u < 0x10000)
          buf[0] = (char)(0xE0 | (u >> 12)), buf[1] = (char)(0x80 | ((u >> 6) & 63)),
          buf[2] = (char)(0x80 | (u & 63)), k = 3;
        else
          buf[0] = (char)(0xF0 | (u >> 18)), buf[1] = (char)(0x80 | ((u >> 12) & 63)),
          buf[2] = (char)(0x80 | ((u >> 6) & 63)), buf[3] = (char)(0x80 | (u & 63)), k = 4;
        goto add;
      }
      case '"': case '\\': case '/': break;
      default: return free(out), p->why = "bad escape in a string", NULL;
      }
    }
    buf[0] = (char)c;
  add:
    if (n + k + 1 > cap) {
      char *q = realloc(out, cap *= 2);
      if (!q) return free(out), p->why = "out of memory", NULL;
      out = q;
    }
    memcpy(out + n, buf, k);
    n += k;
  }
  if (p->s >= p->end) return free(out), p->why = "unterminated string", NULL;
  p->s++;
  out[n] = 0;
  return out;
}
/* A non-negative integer as JSON spells it (no leading zero) of tensor field `field`. */
static int jint(jp *p, int64_t *v, const char *field) {
  ws(p);
  const char *st = p->s;
  int64_t x = 0;
  while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
    if (x > (INT64_MAX - 9) / 10) {
      snprintf(p->msg, sizeof p->msg, "%s: integer too large", field);
      return p->why = p->msg, 0;
    }
    x = x * 10 + (*p->s++ - '0');
  }
  if (p->s == st) {
    snprintf(p->msg, sizeof p->msg, "%s: non-negative integer expected", field);
    return p->why = p->msg, 0;
  }
  if (*st == '0' && p->s - st > 1) {
    snprintf(p->msg, sizeof p->msg, "%s: %.*s has a leading zero (not a JSON number)", field,
             (int)(p->s - st < 24 ? p->s - st : 24), st);
    return p->why = p->msg, 0;
  }
  *v = x;
  return 1;
}
/* Skips any JSON value. */
static int jskip(jp *p, int depth) {
  ws(p);
  if (depth > 64 || p->s >= p->end) return p->why = "value expected", 0;
  char c = *p->s;
  if (c == '"') {
    char *s = jstring(p);
    free(s);
    return s != NULL;
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    p->s++;
    if (lit(p, close)) return 1;
    do {
      if (c == '{') {
        char *k = jstring(p);
        if (!k) return 0;
        free(k);
        if (!lit(p, ':')) return p->why = "':' expected", 0;
      }
      if (!jskip(p, depth + 1)) return 0;
    } while (lit(p, ','));
    return lit(p, close) ? 1 : (p->why = "',' or closing bracket expected", 0);
  }
  for (int i = 0; i < 3; i++) { /* the literals */
    static const char *const lits[] = {"true", "false", "null"};
    size_t n = strlen(lits[i]);
    if ((size_t)(p->end - p->s) >= n && memcmp(p->s, lits[i], n) == 0) {
      p->s += n;
      return 1;
    }
  }
  /* a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  const char *s = p->s, *e = p->end;
  if (s < e && *s == '-') s++;
  if (s >= e || *s < '0' || *s > '9') return p->why = "JSON value expected", 0;
  if (*s == '0') s++;
  else while (s < e && *s >= '0' && *s <= '9') s++;
  if (s < e && *s == '.') {
    if (++s >= e || *s < '0' || *s > '9') return p->why = "bad number", 0;
    while (s < e && *s >= '0' && *s <= '9') s++;
  }
  if (s < e && (*s == 'e' || *s == 'E')) {
    s++;
    if (s < e && (*s == '+' || *s == '-')) s++;
    if (s >= e || *s < '0' || *s > '9') return p->why = "bad number", 0;
    while (s < e && *s >= '0' && *s <= '9') s++;
  }
  p->s = s;
  return 1;
}

static int dtype_size(const char *d) {
  if (!strcmp(d, "F32") || !strcmp(d, "I32") || !strcmp(d, "U32")) return 4;
  if (!strcmp(d, "F64") || !strcmp(d, "I64") || !strcmp(d, "U64")) return 8;
  if (!strcmp(d, "F16") || !strcmp(d, "BF16") || !strcmp(d, "I16") || !strcmp(d, "U16")) return 2;
  if (!strcmp(d, "U8") || !strcmp(d, "I8") || !strcmp(d, "BOOL")) return 1;
  return 0;
}

static int parse_tensor(jp *p, st_tensor *t) {
  int have_dtype = 0, have_shape = 0, have_off = 0;
  if (!lit(p, '{')) return p->why = "'{' expected for a tensor entry", 0;
  if (lit(p, '}')) return p->why = "empty tensor entry", 0;
  do {
    char *k = jstring(p);
    if (!k) return 0;
    if (!lit(p, ':')) return free(k), p->why = "':' expected", 0;
    int dup = (!strcmp(k, "dtype") && have_dtype) || (!strcmp(k, "shape") && have_shape) ||
              (!strcmp(k, "data_offsets") && have_off);
    if (dup) return free(k), p->why = "a field repeats", 0;
    if (!strcmp(k, "dtype")) {
      char *d = jstring(p);
      if (!d) return free(k), 0;
      snprintf(t->dtype, sizeof t->dtype, "%s", d);
      free(d);
      have_dtype = 1;
    } else if (!strcmp(k, "shape")) {
      if (!lit(p, '[')) return free(k), p->why = "shape: '[' expected", 0;
      t->ndim = 0;
      if (!lit(p, ']')) {
        do {
          if (t->ndim >= NN_TENSOR_MAXDIM) return free(k), p->why = "shape: too many dimensions", 0;
          if (!jint(p, &t->shape[t->ndim++], "shape")) return free(k), 0;
        } while (lit(p, ','));
        if (!lit(p, ']')) return free(k), p->why = "shape: ']' expected", 0;
      }
      have_shape = 1;
    } else if (!strcmp(k, "data_offsets")) {
      int64_t a, b;
      if (!lit(p, '[') || !jint(p, &a, "data_offsets") || !lit(p, ',') || !jint(p, &b, "data_offsets") ||
          !lit(p, ']'))
        return free(k), p->why = p->why ? p->why : "data_offsets: [begin, end] expected", 0;
      t->begin = (uint64_t)a, t->end = (uint64_t)b;
      have_off = 1;
    } else if (!jskip(p, 1)) {
      return free(k), 0;
    }
    free(k);
  } while (lit(p, ','));
  if (!lit(p, '}')) return p->why = "'}' expected", 0;
  if (!have_dtype || !have_shape || !have_off) return p->why = "tensor entry lacks dtype, shape or data_offsets", 0;
  t->numel = 1;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] != 0 && t->numel > INT64_MAX / 16 / t->shape[i]) return p->why = "shape too large", 0;
    t->numel *= t->shape[i];
  }
  return 1;
}

static int host_le(void) {
  uint16_t x = 1;
  unsigned char c;
  memcpy(&c, &x, 1);
  return c == 1;
}

void nn_st_close(nn_st_file *f) {
  if (!f) return;
  if (f->fp) fclose(f->fp);
  for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
  for (size_t i = 0; i < 2 * f->nmeta; i++) free(f->meta[i]);
  free(f->meta);
  free(f->byname);
  free(f->t);
  free(f->path);
  free(f);
}

static nn_st_file *fail_open(nn_st_file *f, char *hdr, nn_error *err, nn_status code, const char *path,
                             const char *why) {
  nn_fail(err, code, "%s: %s", path, why);
  free(hdr);
  nn_st_close(f);
  return NULL;
}

/* Tensor order by data offset (qsort_r: ctx is the tensor array). */
static int by_offset(const void *a, const void *b, void *ctx) {
  const st_tensor *t = ctx, *x = &t[*(const size_t *)a], *y = &t[*(const size_t *)b];
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tensor order by name (qsort_r: ctx is the tensor array). */
static int by_tensor_name(const void *a, const void *b, void *ctx) {
  const st_tensor *t = ctx;
  return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

/* 1 when tensor names are unique and so are metadata keys (sorted: n log n even for a header of
 * a million entries; the tensors' order by name is kept in f->byname for nn_st_find); else 0
 * with why filled. */
static int unique(nn_st_file *f, char *why, size_t nwhy) {
  if (f->n && !(f->byname = malloc(f->n * sizeof *f->byname))) return snprintf(why, nwhy, "out of memory"), 0;
  for (size_t i = 0; i < f->n; i++) f->byname[i] = i;
  if (f->n > 1) qsort_r(f->byname, f->n, sizeof *f->byname, by_tensor_name, f->t);
  for (size_t i = 1; i < f->n; i++)
    if (!strcmp(f->t[f->byname[i - 1]].name, f->t[f->byname[i]].name)) {
      snprintf(why, nwhy, "tensor '%.60s' repeats", f->t[f->byname[i]].name);
      return 0;
    }
  char **v = f->nmeta ? malloc(f->nmeta * sizeof *v) : NULL;
  if (f->nmeta && !v) return snprintf(why, nwhy, "out of memory"), 0;
  for (size_t i = 0; i < f->nmeta; i++) v[i] = f->meta[2 * i];
  if (f->nmeta > 1) qsort(v, f->nmeta, sizeof *v, by_name);
  for (size_t i = 1; i < f->nmeta; i++)
    if (!strcmp(v[i - 1], v[i])) {
      snprintf(why, nwhy, "__metadata__: key '%.60s' repeats", v[i]);
      free(v);
      return 0;
    }
  free(v);
  return 1;
}

/* 1 when the tensors' data offsets tile [0, data_len) exactly; else 0 with why filled. */
static int tile_data(nn_st_file *f, char *why, size_t nwhy) {
  uint64_t at = 0;
  size_t *ord = f->n ? malloc(f->n * sizeof *ord) : NULL;
  if (f->n && !ord) return snprintf(why, nwhy, "out of memory"), 0;
  for (size_t i = 0; i < f->n; i++) ord[i] = i;
  if (f->n) qsort_r(ord, f->n, sizeof *ord, by_offset, f->t);
  for (size_t i = 0; i < f->n; i++) {
    const st_tensor *t = &f->t[ord[i]];
    if (t->begin != at) {
      snprintf(why, nwhy, "tensor '%.60s': data_offsets begin at %llu, expected %llu (%s)", t->name,
               (unsigned long long)t->begin, (unsigned long long)at,
               t->begin < at ? "overlaps the tensor before" : "leaves a gap");
      free(ord);
      return 0;
    }
    at = t->end;
  }
  free(ord);
  if (at != f->data_len) {
    snprintf(why, nwhy, "%llu bytes after the last tensor's data (the offsets must cover the data)",
             (unsigned long long)(f->data_len - at));
    return 0;
  }
  return 1;
}

nn_st_file *nn_st_open(const char *path, nn_error *err) {
  nn_st_file *f = calloc(1, sizeof *f);
  int seen_meta = 0;
  char *hdr = NULL;
  unsigned char len8[8];
  uint64_t hlen = 0;
  char why[160];
  if (!host_le()) return fail_open(f, NULL, err, NN_EINVAL, path, "big-endian hosts are not supported");
  if (!f || !(f->path = strdup(path))) return fail_open(f, NULL, err, NN_ENOMEM, path, "out of memory");
  struct stat sb;
  if (!(f->fp = nn_file_open_regular(path, &sb, why, sizeof why))) /* a pipe: refused, not waited on */
    return fail_open(f, NULL, err, NN_EIO, path, why);
  if (fread(len8, 1, 8, f->fp) != 8)
    return fail_open(f, NULL, err, NN_EFORMAT, path, "not a safetensors file (shorter than 8 bytes)");
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
  if (hlen < 2 || hlen > ST_MAX_HEADER)
    return fail_open(f, NULL, err, NN_EFORMAT, path, "not a safetensors file (bad header length)");
  if (!(hdr = malloc(hlen))) return fail_open(f, hdr, err, NN_ENOMEM, path, "out of memory");
  if (fread(hdr, 1, hlen, f->fp) != hlen)
    return fail_open(f, hdr, err, NN_EFORMAT, path, "truncated header");
  if (fseek(f->fp, 0, SEEK_END) != 0)
    return fail_open(f, hdr, err, NN_EIO, path, "cannot seek");
  long fsz = ftell(f->fp);
  f->data_start = 8 + hlen;
  if (fsz < 0 || (uint64_t)fsz < f->data_start)
    return fail_open(f, hdr, err, NN_EFORMAT, path, "truncated file");
  f->data_len = (uint64_t)fsz - f->data_start;

  jp p = {hdr, hdr + hlen, NULL, ""};
  if (!lit(&p, '{')) return fail_open(f, hdr, err, NN_EFORMAT, path, "header is not a JSON object");
  if (!lit(&p, '}')) {
    do {
      char *key = jstring(&p);
      if (!key || !lit(&p, ':')) {
        free(key);
        snprintf(why, sizeof why, "bad header JSON (%s)", p.why ? p.why : "':' expected");
        return fail_open(f, hdr, err, NN_EFORMAT, path, why);
      }
      if (!strcmp(key, "__metadata__")) {
        free(key);
        if (seen_meta++) return fail_open(f, hdr, err, NN_EFORMAT, path, "__metadata__ repeats");
        if (!lit(&p, '{')) return fail_open(f, hdr, err, NN_EFORMAT, path, "__metadata__ is not an object");
        if (!lit(&p, '}')) {
          do {
            char *k = jstring(&p), *v = NULL;
            if (k && lit(&p, ':')) v = jstring(&p);
            char **m = v ? realloc(f->meta, (f->nmeta + 1) * 2 * sizeof *m) : NULL;
            if (!m) {
              free(k), free(v);
              return fail_open(f, hdr, err, NN_EFORMAT, path, "__metadata__: string values expected");
            }
            f->meta = m;
            m[2 * f->nmeta] = k, m[2 * f->nmeta + 1] = v;
            f->nmeta++;
          } while (lit(&p, ','));
          if (!lit(&p, '}')) return fail_open(f, hdr, err, NN_EFORMAT, path, "__metadata__: '}' expected");
        }
        continue;
      }
      if (f->n == f->cap) {
        size_t nc = f->cap ? 2 * f->cap : 64;
        st_tensor *nt = realloc(f->t, nc * sizeof *nt);
        if (!nt) return free(key), fail_open(f, hdr, err, NN_ENOMEM, path, "out of memory");
        f->t = nt, f->cap = nc;
      }
      st_tensor *t = &f->t[f->n];
      memset(t, 0, sizeof *t);
      t->name = key;
      f->n++;
      if (!parse_tensor(&p, t)) {
        snprintf(why, sizeof why, "tensor '%.60s': %s", key, p.why ? p.why : "bad entry");
        return fail_open(f, hdr, err, NN_EFORMAT, path, why);
      }
      int sz = dtype_size(t->dtype);
      if (!sz) {
        snprintf(why, sizeof why, "tensor '%.60s': unknown dtype '%s'", key, t->dtype);
        return fail_open(f, hdr, err, NN_EFORMAT, path, why);
      }
      if (t->end < t->begin || t->end > f->data_len || t->end - t->begin != (uint64_t)t->numel * (uint64_t)sz) {
        snprintf(why, sizeof why, "tensor '%.60s': data_offsets [%llu, %llu] do not fit its shape or the file",
                 key, (unsigned long long)t->begin, (unsigned long long)t->end);
        return fail_open(f, hdr, err, NN_EFORMAT, path, why);
      }
    } while (lit(&p, ','));
    if (!lit(&p, '}')) return fail_open(f, hdr, err, NN_EFORMAT, path, "bad header JSON ('}' expected)");
  }
  while (p.s < p.end && *p.s == ' ') p.s++; /* the format pads the header with spaces only */
  if (p.s != p.end) {
    snprintf(why, sizeof why, "bytes after the header JSON (at header byte %lld)", (long long)(p.s - hdr) + 1);
    return fail_open(f, hdr, err, NN_EFORMAT, path, why);
  }
  if (!unique(f, why, sizeof why) || !tile_data(f, why, sizeof why))
    return fail_open(f, hdr, err, NN_EFORMAT, path, why);
  free(hdr);
  return f;
}

const char *nn_st_path(const nn_st_file *f) { return f->path; }
size_t nn_st_count(const nn_st_file *f) { return f->n; }
const char *nn_st_name(const nn_st_file *f, size_t i) { return i < f->n ? f->t[i].name : NULL; }
int nn_st_find(const nn_st_file *f, const char *name) {
  size_t lo = 0, hi = f->n; /* binary search of the names' order, built by nn_st_open */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(f->t[f->byname[mid]].name, name);
    if (c == 0) return (int)f->byname[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}
int nn_st_ndim(const nn_st_file *f, size_t i) { return f->t[i].ndim; }
const int64_t *nn_st_shape(const nn_st_file *f, size_t i) { return f->t[i].shape; }
int64_t nn_st_numel(const nn_st_file *f, size_t i) { return f->t[i].numel; }
const char *nn_st_dtype(const nn_st_file *f, size_t i) { return f->t[i].dtype; }
const char *nn_st_meta(const nn_st_file *f, const char *key) {
  for (size_t i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
  return NULL;
}

static void shape_text(const st_tensor *t, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  for (int i = 0; i < t->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "x" : "", (long long)t->shape[i]);
  if (t->ndim == 0) snprintf(buf, n, "scalar");
}

/* Reads tensor name's raw bytes and converts to float (f32 != NULL) or double. */
static nn_status read_conv(nn_st_file *f, const char *name, float *f32, double *f64, int64_t numel,
                           nn_error *err) {
  int i = nn_st_find(f, name);
  if (i < 0) return nn_fail(err, NN_EINVAL, "%s: no tensor '%s'", f->path, name);
  st_tensor *t = &f->t[i];
  if (t->numel != numel) {
    char sh[96];
    shape_text(t, sh, sizeof sh);
    return nn_fail(err, NN_EINVAL, "%s: tensor '%s' has %lld elements (shape %s), expected %lld",
                   f->path, name, (long long)t->numel, sh, (long long)numel);
  }
  int sz = dtype_size(t->dtype);
  int kind = !strcmp(t->dtype, "F32") ? 0 : !strcmp(t->dtype, "F64") ? 1 : !strcmp(t->dtype, "I64") ? 2
           : !strcmp(t->dtype, "I32") ? 3 : !strcmp(t->dtype, "U8") ? 4 : !strcmp(t->dtype, "I16") ? 5
           : !strcmp(t->dtype, "I8") ? 6 : -1;
  if (kind < 0)
    return nn_fail(err, NN_EFORMAT, "%s: tensor '%s' has dtype %s, expected F32, F64, I64, I32, I16, I8 or U8",
                   f->path, name, t->dtype);
  if (numel == 0) return NN_OK;
  if (fseek(f->fp, (long)(f->data_start + t->begin), SEEK_SET) != 0)
    return nn_fail(err, NN_EIO, "%s: cannot seek to tensor '%s'", f->path, name);
  /* read in blocks to bound the scratch memory */
  enum { BLOCK = 1 << 16 };
  unsigned char *buf = malloc((size_t)(numel < BLOCK ? numel : BLOCK) * (size_t)sz);
  if (!buf) return nn_fail(err, NN_ENOMEM, "%s: out of memory", f->path);
  for (int64_t off = 0; off < numel; off += BLOCK) {
    int64_t m = numel - off < BLOCK ? numel - off : BLOCK;
    if (fread(buf, (size_t)sz, (size_t)m, f->fp) != (size_t)m) {
      free(buf);
      return nn_fail(err, NN_EIO, "%s: short read in tensor '%s'", f->path, name);
    }
    for (int64_t j = 0; j < m; j++) {
      double v;
      switch (kind) {
      case 0: { float x; memcpy(&x, buf + 4 * j, 4); v = x; if (f32) { f32[off + j] = x; continue; } break; }
      case 1: { double x; memcpy(&x, buf + 8 * j, 8); v = x; break; }
      case 2: { int64_t x; memcpy(&x, buf + 8 * j, 8); v = (double)x; break; }
      case 3: { int32_t x; memcpy(&x, buf + 4 * j, 4); v = x; break; }
      case 5: { int16_t x; memcpy(&x, buf + 2 * j, 2); v = x; break; }
      case 6: v = (int8_t)buf[j]; break;
      default: v = buf[j]; break;
      }
      if (f32) f32[off + j] = (float)v;
      else f64[off + j] = v;
    }
  }
  free(buf);
  return NN_OK;
}

nn_status nn_st_read_f32(nn_st_file *f, const char *name, float *dst, int64_t numel, nn_error *err) {
  return read_conv(f, name, dst, NULL, numel, err);
}
nn_status nn_st_read_f64(nn_st_file *f, const char *name, double *dst, int64_t numel, nn_error *err) {
  return read_conv(f, name, NULL, dst, numel, err);
}

nn_tensor *nn_st_read_tensor(nn_st_file *f, const char *name, nn_error *err) {
  int i = nn_st_find(f, name);
  if (i < 0) {
    nn_fail(err, NN_EINVAL, "%s: no tensor '%s'", f->path, name);
    return NULL;
  }
  nn_tensor *t = nn_tensor_new(f->t[i].ndim, f->t[i].shape, err);
  if (!t) return NULL;
  if (read_conv(f, name, t->data, NULL, t->numel, err) != NN_OK) {
    nn_tensor_free(t);
    return NULL;
  }
  return t;
}

nn_status nn_st_check_finite(const nn_st_file *f, const char *name, const float *x, int64_t n,
                             nn_error *err) {
  for (int64_t j = 0; j < n; j++)
    if (!isfinite(x[j])) {
      int k = nn_st_find(f, name);
      int f64 = k >= 0 && !strcmp(f->t[k].dtype, "F64");
      return nn_fail(err, NN_EFORMAT, "%s: tensor '%s' element %lld is not finite%s", f->path, name,
                     (long long)j + 1, f64 ? " as float32 (F64 values must lie within +-3.40282e+38)" : "");
    }
  return NN_OK;
}

/* ---- writer ---- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;
static void sb_add(sbuf *b, const char *s, size_t k) {
  if (b->oom) return;
  if (b->n + k + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + k + 1) nc *= 2;
    char *q = realloc(b->p, nc);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q, b->cap = nc;
  }
  memcpy(b->p + b->n, s, k);
  b->n += k;
  b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_json(sbuf *b, const char *s) {
  sb_add(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char e[8];
    if (c == '"' || c == '\\') e[0] = '\\', e[1] = (char)c, sb_add(b, e, 2);
    else if (c < 0x20) snprintf(e, sizeof e, "\\u%04x", c), sb_add(b, e, 6);
    else sb_add(b, (const char *)&c, 1);
  }
  sb_add(b, "\"", 1);
}

/* Writes typed arrays (see nn_st_write_raw in the header). */
nn_status nn_st_write_raw(const char *path, const nn_st_raw *entries, size_t n, const char *const *meta,
                          nn_error *err) {
  sbuf h = {0};
  char num[64];
  uint64_t off = 0;
  if (!host_le()) return nn_fail(err, NN_EINVAL, "%s: big-endian hosts are not supported", path);
  for (size_t i = 0; i < n; i++) {
    const char *d = entries[i].dtype;
    if (!d || !dtype_size(d) || !strcmp(d, "F16") || !strcmp(d, "BF16") || !strcmp(d, "BOOL"))
      return nn_fail(err, NN_EINVAL, "%s: tensor '%s': dtype '%s' cannot be written (F32, F64, I64, I32, I16, I8 or U8 expected)",
                     path, entries[i].name, d ? d : "(null)");
    if (!strcmp(entries[i].name, "__metadata__")) /* the reader would take it for the metadata */
      return nn_fail(err, NN_EINVAL, "%s: tensor '__metadata__': the format reserves that name for the metadata",
                     path);
    if (entries[i].ndim < 0 || entries[i].ndim > NN_TENSOR_MAXDIM)
      return nn_fail(err, NN_EINVAL, "%s: tensor '%s': %d dimensions, expected 0..%d", path, entries[i].name,
                     entries[i].ndim, NN_TENSOR_MAXDIM);
  }
  sb_str(&h, "{");
  if (meta && meta[0]) {
    sb_str(&h, "\"__metadata__\":{");
    for (size_t i = 0; meta[i] && meta[i + 1]; i += 2) {
      if (i) sb_str(&h, ",");
      sb_json(&h, meta[i]);
      sb_str(&h, ":");
      sb_json(&h, meta[i + 1]);
    }
    sb_str(&h, "}");
  }
  for (size_t i = 0; i < n; i++) {
    const nn_st_raw *e = &entries[i];
    uint64_t numel = 1, bytes;
    for (int d = 0; d < e->ndim; d++) numel *= (uint64_t)e->shape[d];
    bytes = numel * (uint64_t)dtype_size(e->dtype);
    if ((meta && meta[0]) || i) sb_str(&h, ",");
    sb_json(&h, e->name);
    snprintf(num, sizeof num, ":{\"dtype\":\"%s\",\"shape\":[", e->dtype);
    sb_str(&h, num);
    for (int d = 0; d < e->ndim; d++) {
      snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)e->shape[d]);
      sb_str(&h, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
             (unsigned long long)(off + bytes));
    sb_str(&h, num);
    off += bytes;
  }
  sb_str(&h, "}");
  while (!h.oom && h.n % 8) sb_str(&h, " "); /* align the data section to 8 bytes */
  if (h.oom) {
    free(h.p);
    return nn_fail(err, NN_ENOMEM, "%s: out of memory for the header", path);
  }
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 5);
  if (!tmp) {
    free(h.p);
    return nn_fail(err, NN_ENOMEM, "%s: out of memory", path);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);
  FILE *fp = fopen(tmp, "wb");
  if (!fp) {
    nn_fail(err, NN_EIO, "%s: cannot write (%s)", path, strerror(errno));
    free(h.p), free(tmp);
    return NN_EIO;
  }
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
  int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(h.p, 1, h.n, fp) == h.n;
  for (size_t i = 0; ok && i < n; i++) {
    size_t numel = 1, sz = (size_t)dtype_size(entries[i].dtype);
    for (int d = 0; d < entries[i].ndim; d++) numel *= (size_t)entries[i].shape[d];
    ok = numel == 0 || fwrite(entries[i].data, sz, numel, fp) == numel;
  }
  ok = (fclose(fp) == 0) && ok;
  free(h.p);
  if (!ok || rename(tmp, path) != 0) {
    nn_fail(err, NN_EIO, "%s: write failed (%s)", path, strerror(errno));
    remove(tmp);
    free(tmp);
    return NN_EIO;
  }
  free(tmp);
  return NN_OK;
}

nn_status nn_st_write(const char *path, const nn_st_entry *entries, size_t n, const char *const *meta,
                      nn_error *err) {
  nn_st_raw *r = calloc(n ? n : 1, sizeof *r);
  if (!r) return nn_fail(err, NN_ENOMEM, "%s: out of memory", path);
  for (size_t i = 0; i < n; i++) {
    const nn_tensor *t = entries[i].t;
    r[i] = (nn_st_raw){entries[i].name, "F32", t->ndim, t->shape, t->data};
  }
  nn_status st = nn_st_write_raw(path, r, n, meta, err);
  free(r);
  return st;
}
