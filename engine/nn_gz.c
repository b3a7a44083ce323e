/* nn_gz.c: whole-file reading with transparent gzip inflation (docs/data.md: IDX .gz files and the
 * CIFAR .tar.gz archives); the engine's only zlib user.
 * Files are read whole: the largest input (cifar-10-binary.tar.gz, 163 MB -> 185 MB) fits
 * comfortably, and the parsers then work on memory buffers, which is also what the fuzz
 * targets drive. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "nn_gz.h"
#include "nn_file.h"

/* Grows *buf to at least need bytes (doubling); NN_ENOMEM on failure. */
static nn_status grow(uint8_t **buf, size_t *cap, size_t need, const char *what, nn_error *err) {
  if (need <= *cap) return NN_OK;
  size_t c = *cap ? *cap : (need > 65536 ? need : 65536);
  while (c < need) {
    if (c > SIZE_MAX / 2) return nn_fail(err, NN_ENOMEM, "%s: out of memory", what);
    c *= 2;
  }
  uint8_t *p = realloc(*buf, c);
  if (!p) return nn_fail(err, NN_ENOMEM, "%s: out of memory (%zu bytes)", what, c);
  *buf = p;
  *cap = c;
  return NN_OK;
}

static int is_gzip(const uint8_t *src, size_t n) { return n >= 2 && src[0] == 0x1f && src[1] == 0x8b; }

nn_status nn_gz_inflate(const uint8_t *src, size_t n, const char *what, uint8_t **out,
                        size_t *out_n, size_t max_bytes, nn_error *err) {
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0, pos = 0;
  nn_status st = NN_OK;
  *out = NULL;
  *out_n = 0;
  if (!max_bytes) max_bytes = NN_FILE_MAX_BYTES;
  if (!is_gzip(src, n)) { /* plain file: copy */
    if (max_bytes && n > max_bytes)
      return nn_fail(err, NN_EFORMAT, "%s: larger than %zu bytes", what, max_bytes);
    buf = malloc(n ? n : 1);
    if (!buf) return nn_fail(err, NN_ENOMEM, "%s: out of memory (%zu bytes)", what, n);
    if (n) memcpy(buf, src, n);
    *out = buf;
    *out_n = n;
    return NN_OK;
  }
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    return nn_fail(err, NN_ENOMEM, "%s: cannot initialise zlib", what);
  /* one gzip member per pass; concatenated members are read in turn (as gunzip does) */
  while (pos < n) {
    int zr = Z_OK;
    while (zr != Z_STREAM_END) {
      if ((st = grow(&buf, &cap, len + 65536, what, err)) != NN_OK) goto done;
      size_t in_avail = n - pos;
      zs.next_in = (Bytef *)(src + pos);
      zs.avail_in = in_avail > 1u << 30 ? 1u << 30 : (uInt)in_avail;
      zs.next_out = buf + len;
      zs.avail_out = (uInt)(cap - len > 1u << 30 ? 1u << 30 : cap - len);
      uInt in0 = zs.avail_in, out0 = zs.avail_out;
      zr = inflate(&zs, Z_NO_FLUSH);
      pos += in0 - zs.avail_in;
      len += out0 - zs.avail_out;
      if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT) {
        st = nn_fail(err, NN_EFORMAT, "%s: corrupt gzip data (%s)", what,
                     zs.msg ? zs.msg : "invalid deflate stream");
        goto done;
      }
      if (zr == Z_MEM_ERROR) {
        st = nn_fail(err, NN_ENOMEM, "%s: out of memory while inflating", what);
        goto done;
      }
      if (zr == Z_BUF_ERROR && pos >= n) {
        st = nn_fail(err, NN_EFORMAT,
                     "%s: truncated gzip data (stream ends after %zu compressed bytes)", what, n);
        goto done;
      }
      if (max_bytes && len > max_bytes) {
        st = nn_fail(err, NN_EFORMAT, "%s: inflates to more than %zu bytes", what, max_bytes);
        goto done;
      }
      if (zr != Z_STREAM_END && pos >= n && zs.avail_out != 0) {
        st = nn_fail(err, NN_EFORMAT,
                     "%s: truncated gzip data (stream ends after %zu compressed bytes)", what, n);
        goto done;
      }
    }
    /* another member follows only when the gzip magic does; trailing zero padding is ignored */
    if (!is_gzip(src + pos, n - pos)) break;
    inflateReset(&zs);
  }
done:
  inflateEnd(&zs);
  if (st != NN_OK) {
    free(buf);
    return st;
  }
  *out = buf ? buf : malloc(1);
  if (!*out) return nn_fail(err, NN_ENOMEM, "%s: out of memory", what);
  *out_n = len;
  return NN_OK;
}

/* Reads the raw bytes of path into a malloc'd buffer (sized from fstat, grown if the file grows). */
static nn_status slurp(const char *path, uint8_t **out, size_t *out_n, size_t max_bytes, nn_error *err) {
  struct stat sb;
  char why[160];
  FILE *f = nn_file_open_regular(path, &sb, why, sizeof why); /* a pipe or /dev/zero: no end to read up to */
  *out = NULL;
  *out_n = 0;
  if (!f) return nn_fail(err, NN_EIO, "%s: %s", path, why);
  if ((uint64_t)sb.st_size > (uint64_t)max_bytes) {
    fclose(f);
    return nn_fail(err, NN_EFORMAT, "%s: %lld bytes, larger than the %zu-byte bound", path,
                   (long long)sb.st_size, max_bytes);
  }
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  size_t want = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096;
  nn_status st = grow(&buf, &cap, want, path, err);
  while (st == NN_OK) {
    if (len > max_bytes) { /* the file grew while being read */
      st = nn_fail(err, NN_EFORMAT, "%s: larger than the %zu-byte bound", path, max_bytes);
      break;
    }
    if (len == cap && (st = grow(&buf, &cap, cap + 1, path, err)) != NN_OK) break;
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      if (ferror(f)) st = nn_fail(err, NN_EIO, "%s: read error (%s)", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (st != NN_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  *out_n = len;
  return NN_OK;
}

nn_status nn_gz_read_file(const char *path, uint8_t **out, size_t *out_n, size_t max_bytes,
                          nn_error *err) {
  uint8_t *raw;
  size_t n;
  if (!max_bytes) max_bytes = NN_FILE_MAX_BYTES;
  nn_status st = slurp(path, &raw, &n, max_bytes, err);
  if (st != NN_OK) return st;
  if (!is_gzip(raw, n)) {
    if (max_bytes && n > max_bytes) {
      free(raw);
      return nn_fail(err, NN_EFORMAT, "%s: larger than %zu bytes", path, max_bytes);
    }
    *out = raw;
    *out_n = n;
    return NN_OK;
  }
  st = nn_gz_inflate(raw, n, path, out, out_n, max_bytes, err);
  free(raw);
  return st;
}
