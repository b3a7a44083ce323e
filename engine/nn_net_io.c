/* nn_net_io.c: a net's weights as safetensors (float32), named by the plan's params (docs/interop.md;
 * nn_interop.c adds other namings and integer codes). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_safetensors.h"
#include "nn_net_impl.h"

nn_status nn_net_save(const nn_net *net, const char *path, nn_error *err) {
  nn_st_entry e[NN_PLAN_MAXPARAM];
  char ca[NN_CELL_TEXT_MAX], cb[NN_CELL_TEXT_MAX], bits[16];
  for (int i = 0; i < net->plan.nparams; i++) e[i].name = net->plan.params[i].name, e[i].t = net->t[i];
  nn_cell_format(&net->plan.p.cell_a, ca, sizeof ca);
  nn_cell_format(&net->plan.p.cell_b, cb, sizeof cb);
  snprintf(bits, sizeof bits, "%d", net->weight_bits);
  const char *meta[] = {"format", "neuronas.net", "cellA", ca, "cellB", cb, "weight_bits", bits, NULL};
  return nn_st_write(path, e, (size_t)net->plan.nparams, meta, err);
}

static void shape_str(int nd, const int64_t *s, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  if (nd == 0) snprintf(buf, n, "scalar");
  for (int i = 0; i < nd && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "x" : "", (long long)s[i]);
}

/* The index of the param stored under `name` (keys[i], or the param's own name), or -1. */
static int key_index(const nn_net *net, const char *const *keys, const char *name) {
  for (int i = 0; i < net->plan.nparams; i++)
    if (!strcmp(keys ? keys[i] : net->plan.params[i].name, name)) return i;
  return -1;
}

/* A "<key>.exponent" tensor (integer-code files, docs/interop.md): its param's index, or -1. */
static int exponent_of(const nn_net *net, const char *const *keys, const char *name) {
  static const char suf[] = ".exponent";
  size_t n = strlen(name), k = sizeof suf - 1;
  char base[NN_PLAN_NAME_LEN + 64];
  if (n <= k || n - k >= sizeof base || strcmp(name + n - k, suf)) return -1;
  memcpy(base, name, n - k);
  base[n - k] = 0;
  return key_index(net, keys, base);
}

/* Reads param i (stored as `key`) into dst: floats, or integer codes times 2^exponent. A code
 * must be an integer in the signed range of `bits` (the file's weight_bits, else the net's):
 * anything else is not what a quantizer of that precision wrote. */
static nn_status read_param(nn_st_file *f, const char *path, const char *key, int bits, nn_tensor *dst,
                            nn_error *err) {
  char ek[NN_PLAN_NAME_LEN + 64];
  snprintf(ek, sizeof ek, "%s.exponent", key);
  int k = nn_st_find(f, ek);
  if (k < 0) return nn_st_read_f32(f, key, dst->data, dst->numel, err);
  double e;
  nn_status st;
  if (nn_st_numel(f, (size_t)k) != 1) return nn_fail(err, NN_EFORMAT, "%s: tensor '%s' must be one integer", path, ek);
  if ((st = nn_st_read_f64(f, ek, &e, 1, err)) != NN_OK) return st;
  if (e != floor(e) || e < -200 || e > 200)
    return nn_fail(err, NN_EFORMAT, "%s: tensor '%s' is %g, expected an integer in -200..200", path, ek, e);
  double *codes = malloc((size_t)(dst->numel ? dst->numel : 1) * sizeof *codes);
  if (!codes) return nn_fail(err, NN_ENOMEM, "%s: out of memory for '%s'", path, key);
  const double hi = ldexp(1, bits - 1) - 1, lo = -hi - 1;
  if ((st = nn_st_read_f64(f, key, codes, dst->numel, err)) == NN_OK)
    for (int64_t j = 0; j < dst->numel && st == NN_OK; j++) {
      if (codes[j] != floor(codes[j]) || codes[j] < lo || codes[j] > hi)
        st = nn_fail(err, NN_EFORMAT, "%s: tensor '%s' element %lld is code %.17g, expected an integer in "
                     "%.0f..%.0f (weight_bits %d)", path, key, (long long)j + 1, codes[j], lo, hi, bits);
      else
        dst->data[j] = (float)ldexp(codes[j], (int)e);
    }
  free(codes);
  return st;
}

/* The file's weight_bits (metadata), or the net's when the file records none. */
static nn_status file_bits(const nn_net *net, nn_st_file *f, const char *path, int *bits, nn_error *err) {
  const char *b = nn_st_meta(f, "weight_bits");
  *bits = net->weight_bits;
  if (!b) return NN_OK;
  char *end;
  long v = strtol(b, &end, 10);
  if (end == b || *end || v < NN_WEIGHT_BITS_MIN || v > NN_WEIGHT_BITS_MAX)
    return nn_fail(err, NN_EFORMAT, "%s: __metadata__ weight_bits is \"%.40s\", an integer in %d..%d expected",
                   path, b, NN_WEIGHT_BITS_MIN, NN_WEIGHT_BITS_MAX);
  *bits = (int)v;
  return NN_OK;
}

/* The cells a file records (metadata cellA, cellB: every file NeuroNAS writes) against the net's,
 * compared in canonical form; a file that records none (PyTorch's) is not checked. Tensor names
 * and shapes cannot tell a skip from an avgpool edge, so without this the weights of one
 * architecture would load silently into another. */
static nn_status check_cells(const nn_net *net, nn_st_file *f, const char *path, nn_error *err) {
  static const char *const key[2] = {"cellA", "cellB"};
  const nn_cell *mine[2] = {&net->plan.p.cell_a, &net->plan.p.cell_b};
  char file[2][NN_CELL_TEXT_MAX], ours[2][NN_CELL_TEXT_MAX];
  int diff[2] = {0, 0};
  for (int c = 0; c < 2; c++) {
    const char *text = nn_st_meta(f, key[c]);
    nn_cell cell;
    nn_error perr;
    if (!text) continue;
    if (nn_cell_parse(text, NN_CELL_FORM_AUTO, &cell, &perr) != NN_OK)
      return nn_fail(err, NN_EFORMAT, "%s: __metadata__ %s is \"%.60s\", not a cell", path, key[c], text);
    nn_cell_format(&cell, file[c], sizeof file[c]);
    nn_cell_format(mine[c], ours[c], sizeof ours[c]);
    diff[c] = strcmp(file[c], ours[c]) != 0;
  }
  if (diff[0] && diff[1])
    return nn_fail(err, NN_EINVAL, "%s: weights of another architecture: the file's cellA \"%s\", cellB \"%s\"; "
                   "the net's cellA \"%s\", cellB \"%s\"", path, file[0], file[1], ours[0], ours[1]);
  for (int c = 0; c < 2; c++)
    if (diff[c])
      return nn_fail(err, NN_EINVAL, "%s: weights of another architecture: the file's %s \"%s\", the net's \"%s\"",
                     path, key[c], file[c], ours[c]);
  return NN_OK;
}

nn_status nn_net_load_keys(nn_net *net, const char *path, const char *const *keys,
                           int (*extra)(const char *name), nn_error *err) {
  nn_st_file *f = nn_st_open(path, err);
  nn_tensor *tmp[NN_PLAN_MAXPARAM] = {0};
  int bits;
  if (!f) return err ? err->code : NN_EIO;
  nn_status st = file_bits(net, f, path, &bits, err);
  /* every file tensor must be one of ours (a different architecture fails loudly) */
  for (size_t i = 0; i < nn_st_count(f) && st == NN_OK; i++) {
    const char *name = nn_st_name(f, i);
    if (key_index(net, keys, name) < 0 && exponent_of(net, keys, name) < 0 && !(extra && extra(name)))
      st = nn_fail(err, NN_EINVAL, "%s: unexpected tensor '%s' (the net has no such parameter)", path, name);
  }
  for (int i = 0; i < net->plan.nparams && st == NN_OK; i++) {
    const nn_tensor *t = net->t[i];
    const char *key = keys ? keys[i] : net->plan.params[i].name;
    int k = nn_st_find(f, key);
    if (k < 0) {
      st = nn_fail(err, NN_EINVAL, "%s: no tensor '%s'", path, key);
      break;
    }
    int nd = nn_st_ndim(f, (size_t)k), same = nd == t->ndim;
    for (int d = 0; same && d < nd; d++) same = nn_st_shape(f, (size_t)k)[d] == t->shape[d];
    if (!same) {
      char a[64], b[64];
      shape_str(nd, nn_st_shape(f, (size_t)k), a, sizeof a);
      shape_str(t->ndim, t->shape, b, sizeof b);
      st = nn_fail(err, NN_EINVAL, "%s: tensor '%s' has shape %s, expected %s", path, key, a, b);
      break;
    }
    /* integers would pass as huge weights: only integer codes with their KEY.exponent (a codes
     * file, read_param) are converted */
    const char *dt = nn_st_dtype(f, (size_t)k);
    char ek[NN_PLAN_NAME_LEN + 64];
    snprintf(ek, sizeof ek, "%s.exponent", key);
    if (strcmp(dt, "F32") != 0 && strcmp(dt, "F64") != 0 && nn_st_find(f, ek) < 0) {
      st = nn_fail(err, NN_EFORMAT, "%s: tensor '%s' has dtype %s, expected F32 or F64 (or integer codes "
                   "with '%s')", path, key, dt, ek);
      break;
    }
    if (!(tmp[i] = nn_tensor_new(t->ndim, t->shape, err))) {
      st = err ? err->code : NN_ENOMEM;
      break;
    }
    if ((st = read_param(f, path, key, bits, tmp[i], err)) != NN_OK) break;
    if ((st = nn_st_check_finite(f, key, tmp[i]->data, t->numel, err)) != NN_OK) break;
    size_t nl = strlen(key);
    int var = nl >= 12 && strcmp(key + nl - 12, ".running_var") == 0;
    for (int64_t j = 0; j < t->numel && st == NN_OK; j++)
      if (var && !(tmp[i]->data[j] > 0))
        st = nn_fail(err, NN_EFORMAT, "%s: tensor '%s' element %lld is %g, a variance > 0 expected", path,
                     key, (long long)j + 1, (double)tmp[i]->data[j]);
  }
  /* the cells last: a file of other tensors names the first that does not fit */
  if (st == NN_OK) st = check_cells(net, f, path, err);
  if (st == NN_OK) {
    for (int i = 0; i < net->plan.nparams; i++) nn_tensor_copy(net->t[i], tmp[i], NULL);
    net->weight_bits = bits;
  }
  for (int i = 0; i < net->plan.nparams; i++) nn_tensor_free(tmp[i]);
  nn_st_close(f);
  return st;
}

nn_status nn_net_load(nn_net *net, const char *path, nn_error *err) {
  return nn_net_load_keys(net, path, NULL, NULL, err);
}
