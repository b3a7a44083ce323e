/* nn_interop.c: our tensor names <-> SNASNet's PyTorch state-dict keys, and the integer-code
 * export of quantized weights (docs/interop.md). The correspondence is the plan's: every step
 * carries its path and SNASNet's module path (nn_plan.h); both directions read them. */
#include "neuronas/nn_interop.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_safetensors.h"
#include "nn_net_impl.h"

nn_status nn_names_parse(const char *s, nn_names *out, nn_error *err) {
  if (s && !strcmp(s, "neuronas")) return *out = NN_NAMES_NEURONAS, NN_OK;
  if (s && !strcmp(s, "snasnet")) return *out = NN_NAMES_SNASNET, NN_OK;
  return nn_fail(err, NN_EINVAL, "names: '%s' unknown, expected 'neuronas' or 'snasnet'", s ? s : "(null)");
}

const char *nn_names_str(nn_names n) { return n == NN_NAMES_SNASNET ? "snasnet" : "neuronas"; }

/* A step's path under naming n. */
static const char *col(const nn_plan_step *s, nn_names n) { return n == NN_NAMES_SNASNET ? s->snasnet : s->path; }

/* The step whose path under naming `from` is name[0..len), among the steps SNASNet has a module
 * for; NULL when none. */
static const nn_plan_step *step_named(const nn_plan *pl, const char *name, size_t len, nn_names from) {
  for (int i = 0; i < pl->nsteps; i++) {
    const char *c = col(&pl->steps[i], from);
    if (pl->steps[i].snasnet[0] && strlen(c) == len && !strncmp(c, name, len)) return &pl->steps[i];
  }
  return NULL;
}

/* The plan with every step SNASNet names: both cells with all 12 edges, each a conv (so each
 * has its LIF, conv and BN). Names do not depend on the sizes, so the default preset serves.
 * Built once per process (a translation then costs a scan of its steps). */
static nn_plan FULL;
static int full_ok;
static pthread_once_t full_once = PTHREAD_ONCE_INIT;

static void full_build(void) {
  nn_net_params p = nn_net_params_default();
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) p.cell_a.m[i][j] = i == j ? NN_OP_ZERO : NN_OP_CONV3X3;
  p.cell_b = p.cell_a;
  full_ok = nn_plan_build(&FULL, &p, NULL) == NN_OK;
}

/* A module path is a step's path; a tensor name is "<path>.<leaf>" of a step that holds tensors
 * (any leaf: PyTorch's num_batches_tracked too). */
int nn_names_translate(const char *name, nn_names from, nn_names to, char *out, size_t n) {
  const nn_plan *pl = &FULL;
  const nn_plan_step *s;
  const char *dot;
  int ok = 0;
  if (!n) return 0;
  out[0] = 0;
  if (from == to) return (size_t)snprintf(out, n, "%s", name) < n ? 1 : (out[0] = 0, 0);
  pthread_once(&full_once, full_build);
  if (!full_ok) return 0;
  if ((s = step_named(pl, name, strlen(name), from)))
    ok = (size_t)snprintf(out, n, "%s", col(s, to)) < n;
  else if ((dot = strrchr(name, '.')) && (s = step_named(pl, name, (size_t)(dot - name), from)) && s->nparam > 0)
    ok = (size_t)snprintf(out, n, "%s%s", col(s, to), dot) < n;
  if (!ok) out[0] = 0;
  return ok;
}

typedef char key_buf[NN_PLAN_NAME_LEN + 64];

/* Every param's name under `names`: its step's path there and its leaf; NN_EINVAL when the
 * step has no such name. */
static nn_status param_keys(const nn_net *net, nn_names names, key_buf *keys, nn_error *err) {
  const nn_plan *pl = &net->plan;
  for (int i = 0; i < pl->nparams; i++) {
    const nn_plan_param *q = &pl->params[i];
    const char *path = col(&pl->steps[q->step], names);
    if (!path[0] || (size_t)snprintf(keys[i], sizeof keys[i], "%s.%s", path, q->leaf) >= sizeof keys[i])
      return nn_fail(err, NN_EINVAL, "names: tensor '%s' has no %s name", q->name, nn_names_str(names));
  }
  return NN_OK;
}

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

/* The extra tensors of a SNASNet state dict: a BatchNorm's num_batches_tracked counter. */
static int snasnet_extra(const char *name) {
  char ours[128];
  return ends_with(name, ".num_batches_tracked") &&
         nn_names_translate(name, NN_NAMES_SNASNET, NN_NAMES_NEURONAS, ours, sizeof ours);
}

/* The entries of one file: the params (F32 unless replaced by codes), then exponents and
 * counters. */
typedef struct writer {
  nn_st_raw e[2 * NN_PLAN_MAXPARAM];
  size_t n;
} writer;

static const int64_t ZERO64 = 0;

static void add_param_entries(writer *w, const nn_net *net, key_buf *keys) {
  for (int i = 0; i < net->plan.nparams; i++) {
    const nn_tensor *t = net->t[i];
    w->e[w->n++] = (nn_st_raw){keys[i], "F32", t->ndim, t->shape, t->data};
  }
}

/* weight_bits: the precision recorded in the metadata (what nn_net_load applies). */
static nn_status write_file(const nn_net *net, const char *path, writer *w, key_buf *extra_keys,
                            nn_names names, const char *format, int weight_bits, nn_error *err) {
  char ca[NN_CELL_TEXT_MAX], cb[NN_CELL_TEXT_MAX], bits[16];
  size_t base = w->n;
  /* PyTorch's BatchNorm2d also stores num_batches_tracked (int64); we count no batches: 0 */
  if (names == NN_NAMES_SNASNET)
    for (size_t i = 0, k = 0; i < base; i++)
      if (ends_with(w->e[i].name, ".running_var")) {
        size_t m = strlen(w->e[i].name) - strlen(".running_var");
        snprintf(extra_keys[k], sizeof extra_keys[k], "%.*s.num_batches_tracked", (int)m, w->e[i].name);
        w->e[w->n++] = (nn_st_raw){extra_keys[k++], "I64", 0, NULL, &ZERO64};
      }
  nn_cell_format(&net->plan.p.cell_a, ca, sizeof ca);
  nn_cell_format(&net->plan.p.cell_b, cb, sizeof cb);
  snprintf(bits, sizeof bits, "%d", weight_bits);
  const char *meta[] = {"format", format, "cellA", ca, "cellB", cb, "weight_bits", bits, NULL};
  return nn_st_write_raw(path, w->e, w->n, meta, err);
}

nn_status nn_net_save_names(const nn_net *net, const char *path, nn_names names, nn_error *err) {
  if (names == NN_NAMES_NEURONAS) return nn_net_save(net, path, err);
  key_buf *keys = calloc(2 * NN_PLAN_MAXPARAM, sizeof *keys);
  writer *w = calloc(1, sizeof *w);
  nn_status st = keys && w ? param_keys(net, names, keys, err) : nn_fail(err, NN_ENOMEM, "%s: out of memory", path);
  if (st == NN_OK) {
    add_param_entries(w, net, keys);
    st = write_file(net, path, w, keys + NN_PLAN_MAXPARAM, names, "pt", net->weight_bits, err);
  }
  free(keys), free(w);
  return st;
}

nn_status nn_net_load_names(nn_net *net, const char *path, nn_names names, nn_error *err) {
  if (names == NN_NAMES_NEURONAS) return nn_net_load(net, path, err);
  key_buf *keys = calloc(NN_PLAN_MAXPARAM, sizeof *keys);
  const char **kp = calloc(NN_PLAN_MAXPARAM, sizeof *kp);
  nn_status st = keys && kp ? param_keys(net, names, keys, err) : nn_fail(err, NN_ENOMEM, "%s: out of memory", path);
  for (int i = 0; st == NN_OK && i < net->plan.nparams; i++) kp[i] = keys[i];
  if (st == NN_OK) st = nn_net_load_keys(net, path, kp, snasnet_extra, err);
  free(keys), free(kp);
  return st;
}

nn_status nn_net_save_codes(const nn_net *net, const char *path, const nn_quant_params *q, nn_names names,
                            nn_error *err) {
  nn_status st = nn_quant_params_check(q, err);
  if (st != NN_OK) return st;
  if (q->scale != NN_QSCALE_POW2)
    return nn_fail(err, NN_EINVAL, "codes: the quantizer's scale is '%s', integer codes need 'pow2' (one exponent per tensor)",
                   nn_qscale_str(q->scale));
  const char *dtype = q->bits <= 8 ? "I8" : q->bits <= 16 ? "I16" : "I32";
  size_t esz = q->bits <= 8 ? 1 : q->bits <= 16 ? 2 : 4;
  key_buf *keys = calloc(3 * NN_PLAN_MAXPARAM, sizeof *keys);
  writer *w = calloc(1, sizeof *w);
  void *codes[NN_PLAN_MAXLAYER] = {0};
  int32_t expo[NN_PLAN_MAXLAYER];
  float *tmp = NULL;
  st = keys && w ? param_keys(net, names, keys, err) : nn_fail(err, NN_ENOMEM, "%s: out of memory", path);
  if (st == NN_OK) add_param_entries(w, net, keys);
  /* crossbar-mapped weights: replace their F32 entry by codes and add the exponent */
  for (int l = 0; st == NN_OK && l < net->plan.nlayers; l++) {
    const int i = net->plan.steps[net->plan.layer_step[l]].param0; /* the layer's weight */
    const nn_tensor *t = net->t[i];
    nn_quant_stats qs;
    free(tmp);
    if (!(tmp = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *tmp)) ||
        !(codes[l] = malloc((size_t)(t->numel ? t->numel : 1) * esz))) {
      st = nn_fail(err, NN_ENOMEM, "%s: out of memory for the codes of '%s'", path, net->plan.params[i].name);
      break;
    }
    if ((st = nn_quant_array(q, net->plan.layers[l].name, t->data, tmp, t->numel, &qs, err)) != NN_OK) break;
    /* q = code * 2^-frac_bits exactly, so the product below is an exact integer */
    for (int64_t j = 0; j < t->numel; j++) {
      double c = ldexp((double)tmp[j], qs.frac_bits);
      if (esz == 1) ((int8_t *)codes[l])[j] = (int8_t)c;
      else if (esz == 2) ((int16_t *)codes[l])[j] = (int16_t)c;
      else ((int32_t *)codes[l])[j] = (int32_t)c;
    }
    expo[l] = -qs.frac_bits;
    w->e[i].dtype = dtype;
    w->e[i].data = codes[l];
    snprintf(keys[2 * NN_PLAN_MAXPARAM + l], sizeof keys[0], "%s.exponent", w->e[i].name); /* keys[i] */
    w->e[w->n++] = (nn_st_raw){keys[2 * NN_PLAN_MAXPARAM + l], "I32", 0, NULL, &expo[l]};
  }
  if (st == NN_OK) st = write_file(net, path, w, keys + NN_PLAN_MAXPARAM, names, "neuronas.codes", q->bits, err);
  for (size_t l = 0; l < NN_PLAN_MAXLAYER; l++) free(codes[l]);
  free(tmp), free(keys), free(w);
  return st;
}
