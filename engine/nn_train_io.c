/* nn_train_io.c: a trainer's link to networks and files (docs/training.md): weights in from a
 * nn_net and back out (by the safetensors names of interfaces "Layer paths"), and checkpoints
 * with the optimizer state (safetensors, float32). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_quant.h"
#include "neuronas/nn_safetensors.h"
#include "nn_tensor_impl.h"
#include "nn_train_impl.h"

static int ends_with(const char *s, const char *suf, size_t *stem) {
  size_t n = strlen(s), m = strlen(suf);
  if (n < m || strcmp(s + n - m, suf) != 0) return 0;
  *stem = n - m;
  return 1;
}

/* The trainer's storage for a net tensor name (the plan's names): a parameter's master values
 * or a BN running statistic; *n gets its size. NULL when the trainer has no such tensor. */
static float *slot(nn_trainer *tr, const char *name, int64_t *n) {
  int k = nn_plan_find_param(&tr->plan, name);
  if (k < 0) return NULL;
  *n = tr->plan.params[k].numel;
  return nn_trainer_tensor(tr, k);
}

/* Every trainer tensor must be matched by one net tensor of the same size, and vice versa. */
static nn_status transfer(nn_trainer *tr, nn_net *net, int to_net, nn_error *err) {
  size_t cnt = nn_net_tensor_count(net), want = (size_t)tr->plan.nparams;
  if (cnt != want)
    return nn_fail(err, NN_EINVAL, "trainer: the net has %zu tensors, the trainer %zu "
                   "(a different architecture)", cnt, want);
  for (size_t i = 0; i < cnt; i++) {
    const char *name = nn_net_tensor_name(net, i);
    nn_tensor *t = nn_net_tensor(net, i);
    int64_t n = 0;
    float *p = slot(tr, name, &n);
    if (!p) return nn_fail(err, NN_EINVAL, "trainer: net tensor '%s' has no counterpart", name);
    if (n != t->numel)
      return nn_fail(err, NN_EINVAL, "trainer: net tensor '%s' has %lld elements, expected %lld",
                     name, (long long)t->numel, (long long)n);
    if (to_net)
      memcpy(t->data, p, (size_t)n * sizeof *p);
    else
      memcpy(p, t->data, (size_t)n * sizeof *p);
  }
  return NN_OK;
}

/* Reads only: the net is not modified (the accessors are non-const). */
nn_trainer *nn_trainer_new(const nn_net *net, const nn_train_params *p, nn_error *err) {
  nn_trainer *tr = nn_trainer_build(nn_net_params_of(net), p, err);
  if (!tr) return NULL;
  if (transfer(tr, (nn_net *)net, 0, err) != NN_OK) {
    nn_trainer_free(tr);
    return NULL;
  }
  return tr;
}

nn_trainer *nn_trainer_new_params(const nn_net_params *np, const nn_train_params *p,
                                  nn_error *err) {
  nn_net *net = nn_net_new(np, err);
  if (!net) return NULL;
  nn_trainer *tr = nn_trainer_new(net, p, err);
  nn_net_free(net);
  return tr;
}

nn_status nn_trainer_export(const nn_trainer *tr, nn_net *net, int quantized, nn_error *err) {
  nn_trainer *t = (nn_trainer *)tr; /* slot() hands out writable pointers; nothing is written */
  const nn_net_params *a = nn_net_params_of(net), *b = &tr->plan.p;
  if (memcmp(&a->cell_a, &b->cell_a, sizeof a->cell_a) || memcmp(&a->cell_b, &b->cell_b, sizeof a->cell_b))
    return nn_fail(err, NN_EINVAL, "export: the net's cells differ from the trainer's");
  nn_status st = nn_trainer_check_finite(tr, err);
  if (st != NN_OK) return st;
  st = transfer(t, net, 1, err);
  if (st != NN_OK || !quantized || tr->tp.bits >= 32) {
    if (st == NN_OK) nn_net_set_weight_bits(net, 32);
    return st;
  }
  /* FxP copies of the crossbar weights, as the QAT forward pass uses them */
  for (int i = 0; i < tr->np; i++) {
    if (!tr->p[i].quant) continue;
    nn_tensor *dst = nn_net_tensor_find(net, tr->p[i].name);
    char label[96];
    size_t stem;
    if (!dst || !ends_with(tr->p[i].name, ".weight", &stem)) continue;
    snprintf(label, sizeof label, "%.*s", (int)stem, tr->p[i].name);
    nn_quant_params qp = nn_quant_params_default();
    qp.bits = tr->tp.bits;
    if ((st = nn_quant_array(&qp, label, tr->p[i].w, dst->data, tr->p[i].n, NULL, err)) != NN_OK)
      return st;
  }
  nn_net_set_weight_bits(net, tr->tp.bits);
  return NN_OK;
}

/* ------------------------------------------------------------------ checkpoints */

#define CKPT_FORMAT "neuronas.trainer"

typedef struct ckpt_item {
  char name[128];
  float *p;
  int64_t n;
} ckpt_item;

/* Every tensor a checkpoint holds, in a fixed order; caller frees *items. */
static nn_status ckpt_items(nn_trainer *tr, ckpt_item **items, size_t *count, nn_error *err) {
  size_t cap = (size_t)tr->plan.nparams * 3, k = 0;
  ckpt_item *it = calloc(cap, sizeof *it);
  if (!it) return nn_fail(err, NN_ENOMEM, "out of memory (checkpoint)");
  for (int i = 0; i < tr->np; i++) {
    tparam *p = &tr->p[i];
    snprintf(it[k].name, sizeof it[k].name, "%s", p->name), it[k].p = p->w, it[k++].n = p->n;
    if (tr->tp.optimizer == NN_OPT_ADAM) {
      snprintf(it[k].name, sizeof it[k].name, "optim.%s.exp_avg", p->name);
      it[k].p = p->m1, it[k++].n = p->n;
      snprintf(it[k].name, sizeof it[k].name, "optim.%s.exp_avg_sq", p->name);
      it[k].p = p->m2, it[k++].n = p->n;
    } else {
      snprintf(it[k].name, sizeof it[k].name, "optim.%s.momentum", p->name);
      it[k].p = p->m1, it[k++].n = p->n;
    }
  }
  for (int i = 0; i < tr->plan.nparams; i++) /* the BN running statistics */
    if (tr->plan.params[i].buffer) {
      snprintf(it[k].name, sizeof it[k].name, "%s", tr->plan.params[i].name);
      it[k].p = nn_trainer_tensor(tr, i), it[k++].n = tr->plan.params[i].numel;
    }
  *items = it;
  *count = k;
  return NN_OK;
}

static const char *opt_name(nn_optimizer o) { return o == NN_OPT_ADAM ? "adam" : "sgd"; }

/* Reads checkpoint item it into dst, refusing what training would turn into NaN: a non-float
 * dtype, a non-finite value, a BN running variance <= 0, a negative Adam second moment. */
static nn_status read_item(nn_st_file *f, const ckpt_item *it, float *dst, nn_error *err) {
  const char *path = nn_st_path(f);
  int k = nn_st_find(f, it->name);
  if (k >= 0) {
    const char *dt = nn_st_dtype(f, (size_t)k);
    if (strcmp(dt, "F32") != 0 && strcmp(dt, "F64") != 0)
      return nn_fail(err, NN_EFORMAT, "%s: tensor '%s' has dtype %s, expected F32 or F64", path, it->name, dt);
  }
  nn_status st = nn_st_read_f32(f, it->name, dst, it->n, err);
  if (st != NN_OK) return st;
  size_t stem;
  int pos = ends_with(it->name, ".running_var", &stem) ? 1 : ends_with(it->name, ".exp_avg_sq", &stem) ? 2 : 0;
  for (int64_t j = 0; j < it->n; j++)
    if (!isfinite(dst[j]) || (pos == 1 && !(dst[j] > 0)) || (pos == 2 && dst[j] < 0))
      return nn_fail(err, NN_EFORMAT, "%s: tensor '%s' element %lld is %g, expected a %s", path, it->name,
                     (long long)j + 1, (double)dst[j],
                     pos == 1 ? "variance > 0" : pos == 2 ? "finite value >= 0" : "finite value");
  return NN_OK;
}

nn_status nn_trainer_save(const nn_trainer *tr, const char *path, const char *user,
                          nn_error *err) {
  nn_trainer *t = (nn_trainer *)tr;
  ckpt_item *it;
  size_t n;
  nn_status st = nn_trainer_check_finite(tr, err); /* a file its own load would refuse */
  if (st != NN_OK) return st;
  st = ckpt_items(t, &it, &n, err);
  if (st != NN_OK) return st;
  nn_st_entry *e = calloc(n, sizeof *e);
  nn_tensor **ts = calloc(n, sizeof *ts);
  if (!e || !ts) st = nn_fail(err, NN_ENOMEM, "out of memory (checkpoint)");
  for (size_t i = 0; i < n && st == NN_OK; i++) {
    if (!(ts[i] = nn_tensor_new4(1, it[i].n, 0, 0, 0, err))) {
      st = NN_ENOMEM;
      break;
    }
    memcpy(ts[i]->data, it[i].p, (size_t)it[i].n * sizeof(float));
    e[i].name = it[i].name;
    e[i].t = ts[i];
  }
  if (st == NN_OK) {
    char ca[NN_CELL_TEXT_MAX], cb[NN_CELL_TEXT_MAX], steps[32], bits[16];
    nn_cell_format(&tr->plan.p.cell_a, ca, sizeof ca);
    nn_cell_format(&tr->plan.p.cell_b, cb, sizeof cb);
    snprintf(steps, sizeof steps, "%lld", (long long)tr->steps);
    snprintf(bits, sizeof bits, "%d", tr->tp.bits);
    const char *meta[] = {"format", CKPT_FORMAT, "cellA", ca, "cellB", cb, "steps", steps,
                          "optimizer", opt_name(tr->tp.optimizer), "bits", bits,
                          user ? "user" : NULL, user, NULL};
    st = nn_st_write(path, e, n, meta, err);
  }
  for (size_t i = 0; i < n && ts; i++) nn_tensor_free(ts[i]);
  free(ts), free(e), free(it);
  return st;
}

/* 1 when s is a decimal integer in 0..max (digits only: no sign, space or exponent), in *v. */
static int parse_count(const char *s, int64_t max, int64_t *v) {
  int64_t x = 0;
  if (!*s) return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || x > (max - (*s - '0')) / 10) return 0;
    x = x * 10 + (*s - '0');
  }
  *v = x;
  return 1;
}

nn_status nn_trainer_load(nn_trainer *tr, const char *path, char **user, nn_error *err) {
  nn_st_file *f = nn_st_open(path, err);
  ckpt_item *it = NULL;
  size_t n = 0;
  nn_status st;
  char ca[NN_CELL_TEXT_MAX], cb[NN_CELL_TEXT_MAX];
  if (!f) return err ? err->code : NN_EIO;
  const char *fmt = nn_st_meta(f, "format"), *opt = nn_st_meta(f, "optimizer"),
             *steps = nn_st_meta(f, "steps"), *fa = nn_st_meta(f, "cellA"),
             *fb = nn_st_meta(f, "cellB"), *fbits = nn_st_meta(f, "bits");
  char mybits[16];
  snprintf(mybits, sizeof mybits, "%d", tr->tp.bits);
  nn_cell_format(&tr->plan.p.cell_a, ca, sizeof ca);
  nn_cell_format(&tr->plan.p.cell_b, cb, sizeof cb);
  if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !steps)
    st = nn_fail(err, NN_EFORMAT, "%s: not a neuronas training checkpoint", path);
  else if (!opt || strcmp(opt, opt_name(tr->tp.optimizer)) != 0)
    st = nn_fail(err, NN_EINVAL, "%s: optimizer state is for %s, the trainer uses %s", path,
                 opt ? opt : "?", opt_name(tr->tp.optimizer));
  else if (!fa || !fb || strcmp(fa, ca) != 0 || strcmp(fb, cb) != 0)
    st = nn_fail(err, NN_EINVAL, "%s: checkpoint of cells %s / %s, the trainer has %s / %s", path,
                 fa ? fa : "?", fb ? fb : "?", ca, cb);
  /* the weight precision it trained at (QAT): resuming at another would mix two trainings under
   * one name (a checkpoint without the field predates it and is not checked) */
  else if (fbits && strcmp(fbits, mybits) != 0)
    st = nn_fail(err, NN_EINVAL, "%s: checkpoint of a trainer at bits %.12s, this one trains at bits %d", path,
                 fbits, tr->tp.bits);
  else
    st = ckpt_items(tr, &it, &n, err);
  /* read into scratch first so that a bad file leaves the trainer untouched */
  float **tmp = st == NN_OK ? calloc(n, sizeof *tmp) : NULL;
  if (st == NN_OK && !tmp) st = nn_fail(err, NN_ENOMEM, "out of memory (checkpoint)");
  int64_t nsteps = 0;
  if (st == NN_OK && !parse_count(steps, NN_TRAIN_MAX_STEPS, &nsteps))
    st = nn_fail(err, NN_EFORMAT, "%s: __metadata__ steps is \"%.40s\", an integer in 0..%lld expected", path,
                 steps, (long long)NN_TRAIN_MAX_STEPS);
  for (size_t i = 0; i < n && st == NN_OK; i++) {
    if (!(tmp[i] = malloc((size_t)it[i].n * sizeof(float))))
      st = nn_fail(err, NN_ENOMEM, "out of memory (checkpoint)");
    else
      st = read_item(f, &it[i], tmp[i], err);
  }
  if (st == NN_OK) {
    for (size_t i = 0; i < n; i++) memcpy(it[i].p, tmp[i], (size_t)it[i].n * sizeof(float));
    tr->steps = nsteps;
    tr->diverged = 0; /* every value read was checked finite */
    if (user) {
      const char *u = nn_st_meta(f, "user");
      *user = NULL;
      if (u && !(*user = strdup(u))) st = nn_fail(err, NN_ENOMEM, "out of memory (checkpoint)");
    }
  }
  for (size_t i = 0; tmp && i < n; i++) free(tmp[i]);
  free(tmp);
  free(it);
  nn_st_close(f);
  return st;
}
