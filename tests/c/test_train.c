/* test_train.c: whole-network BPTT (docs/model.md; docs/training.md): the gradient of a tiny
 * network (forward cell A, SNASNet backward cell B, dropout, boost, T = 3) against central
 * finite differences, QAT forward weights, optimisation progress, checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "neuronas/nn_net.h"
#include "neuronas/nn_quant.h"
#include "neuronas/nn_train.h"
#include "nn_tensor_impl.h"
#include "nn_test.h"
#include "nn_train_impl.h"

/* Finite differences on the smooth twin of the network (nn_trainer_loss_grad smooth = 1):
 * step FD_EPS on weights of size ~0.1-1; entries whose perturbation flips a hard reset are
 * skipped (reset_hash differs). Per parameter tensor, the sampled analytic and numeric
 * gradients must agree within FD_REL in relative L2 norm. */
#define FD_REL 3e-2
#define FD_ABS 1e-5 /* per entry: float32 forward noise over the smallest step */
#define FD_MIN_ENTRIES 150 /* checked entries over the whole net */

/* Central difference of the smooth loss in the value *v, with steps 1e-3, 3e-4, 1e-4 until
 * one flips no hard reset; 0 when all do. */
static int fd_entry(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y, float *v, double *fd) {
  static const double steps[3] = {1e-3, 3e-4, 1e-4};
  nn_error err;
  for (int k = 0; k < 3; k++) {
    float o = *v;
    double lp, lm;
    *v = o + (float)steps[k];
    nn_trainer_loss(tr, x, y, 3, 1, &lp, &err);
    uint64_t hp = tr->reset_hash;
    *v = o - (float)steps[k];
    nn_trainer_loss(tr, x, y, 3, 1, &lm, &err);
    uint64_t hm = tr->reset_hash;
    *v = o;
    if (hp == hm) {
      *fd = (lp - lm) / (double)(((o + (float)steps[k])) - (o - (float)steps[k]));
      return 1;
    }
  }
  return 0;
}

static nn_net_params tiny_params(void) {
  nn_net_params np;
  memset(&np, 0, sizeof np);
  /* cell A (forward): 01 conv3x3, 02 skip, 03 avgpool, 12 conv1x1, 13 conv3x3, 23 skip */
  np.cell_a.m[0][1] = NN_OP_CONV3X3;
  np.cell_a.m[0][2] = NN_OP_SKIP;
  np.cell_a.m[0][3] = NN_OP_AVGPOOL3X3;
  np.cell_a.m[1][2] = NN_OP_CONV1X1;
  np.cell_a.m[1][3] = NN_OP_CONV3X3;
  np.cell_a.m[2][3] = NN_OP_SKIP;
  /* cell B (backward, SNASNet "0302 0030 3003 0000" in our codes): 01 conv3x3, 03 avgpool,
   * 12 conv3x3, 20 conv3x3 (backward), 23 conv3x3 */
  np.cell_b.m[0][1] = NN_OP_CONV3X3;
  np.cell_b.m[0][3] = NN_OP_AVGPOOL3X3;
  np.cell_b.m[1][2] = NN_OP_CONV3X3;
  np.cell_b.m[2][0] = NN_OP_CONV3X3;
  np.cell_b.m[2][3] = NN_OP_CONV3X3;
  np.cell_b.m[3][1] = NN_OP_SKIP; /* backward skip 3->1 */
  np.in_ch = 2, np.in_h = 4, np.in_w = 4;
  np.channels = 2, np.stem_stride = 1, np.second_pool = 2, np.fc_width = 12;
  np.classes = 3, np.cluster = 2, np.timesteps = 3;
  np.tau = 4.0 / 3.0, np.threshold = 1.0, np.seed = 5;
  return np;
}

static void make_batch(nn_tensor **x, nn_tensor **y, int64_t n, uint64_t seed) {
  nn_error err;
  nn_rng r = nn_rng_seed(seed);
  *x = nn_tensor_new4(4, n, 2, 4, 4, &err);
  *y = nn_tensor_new4(1, n, 0, 0, 0, &err);
  for (int64_t i = 0; i < (*x)->numel; i++) (*x)->data[i] = (float)(2 * nn_rng_normal(&r));
  for (int64_t i = 0; i < n; i++) (*y)->data[i] = (float)(i % 3);
}

static void whole_network_gradient(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_train_params tp = nn_train_params_default();
  nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
  nn_tensor *x, *y, *dx;
  CHECK(tr != NULL);
  if (!tr) return;
  /* larger weights than the init so that spikes happen everywhere */
  for (size_t i = 0; i < nn_trainer_param_count(tr); i++) {
    float *w = nn_trainer_param_data(tr, i);
    const char *nm = nn_trainer_param_name(tr, i);
    nn_rng r = nn_rng_seed(100 + i);
    for (int64_t j = 0; j < nn_trainer_param_size(tr, i); j++) {
      if (strstr(nm, "bn.weight") || strstr(nm, "bn1.weight") || strstr(nm, "bn2.weight"))
        w[j] = (float)(1.0 + 0.3 * nn_rng_normal(&r));
      else if (strstr(nm, "bn"))
        w[j] = (float)(0.3 + 0.3 * nn_rng_normal(&r)); /* BN bias: push towards threshold */
      else
        w[j] = (float)(0.5 * nn_rng_normal(&r));
    }
  }
  make_batch(&x, &y, 4, 9);
  dx = nn_tensor_clone(x, &err);
  double loss;
  CHECK(nn_trainer_loss_grad(tr, x, y, 3, 1, &loss, dx, &err) == NN_OK);
  CHECK(isfinite(loss) && loss > 0);
  size_t np_ = nn_trainer_param_count(tr);
  int checked = 0, skipped = 0;
  for (size_t i = 0; i < np_; i++) {
    int64_t n = nn_trainer_param_size(tr, i);
    float *w = nn_trainer_param_data(tr, i);
    const float *g = nn_trainer_param_grad(tr, i);
    double num = 0, den = 0;
    int here = 0;
    for (int64_t j = 0; j < n; j += n / 12 + 1) {
      double fd;
      if (!fd_entry(tr, x, y, &w[j], &fd)) {
        skipped++;
        continue;
      }
      num += (g[j] - fd) * (g[j] - fd);
      den += fd * fd;
      here++;
    }
    checked += here;
    if (here) {
      int ok = sqrt(num) <= FD_REL * sqrt(den) + FD_ABS * sqrt((double)here);
      if (!ok)
        fprintf(stderr, "  %s: gradient error %.3g, norm %.3g over %d entries\n",
                nn_trainer_param_name(tr, i), sqrt(num), sqrt(den), here);
      CHECK(ok);
    }
  }
  /* input gradient through the stem */
  double num = 0, den = 0;
  for (int64_t j = 0; j < x->numel; j += 7) {
    double fd;
    if (!fd_entry(tr, x, y, &x->data[j], &fd)) continue;
    num += (dx->data[j] - fd) * (dx->data[j] - fd);
    den += fd * fd;
  }
  CHECK(den > 0 && sqrt(num) <= FD_REL * sqrt(den));
  fprintf(stderr, "  gradient check: %d entries, %d skipped (reset flips)\n", checked, skipped);
  CHECK(checked >= FD_MIN_ENTRIES);
  nn_tensor_free(x), nn_tensor_free(y), nn_tensor_free(dx);
  nn_trainer_free(tr);
}

static void loss_decreases_and_qat(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_train_params tp = nn_train_params_default();
  tp.bits = 8;
  tp.optimizer = NN_OPT_ADAM;
  tp.lr = 0.01;
  tp.dropout = 0;
  nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
  nn_tensor *x, *y;
  CHECK(tr != NULL);
  if (!tr) return;
  /* fc1 has only 4 inputs here: at N(0, 0.01) the classifier LIF would never fire and the
   * balanced batch would keep the loss at ln 3 (the bias gradient sums to zero) */
  const int fc1 = nn_trainer_find_param(tr, "classifier.fc1.weight");
  for (int64_t j = 0; j < tr->p[fc1].n; j++) tr->p[fc1].w[j] *= 100;
  make_batch(&x, &y, 12, 4);
  nn_train_result r0, r;
  double last = 0;
  CHECK(nn_trainer_step(tr, x, y, &r0, &err) == NN_OK);
  CHECK_NEAR(r0.loss, log(3.0), 0.05);
  for (int i = 0; i < 60; i++) {
    CHECK(nn_trainer_step(tr, x, y, &r, &err) == NN_OK);
    if (i >= 55) last += r.loss / 5;
  }
  CHECK(last < 0.85 * r0.loss);
  CHECK(nn_trainer_steps(tr) == 61);
  /* QAT: the forward copies are exactly the quantizer's FxP8 output of the masters */
  nn_quant_params qp = nn_quant_params_default();
  qp.bits = 8;
  int qchecked = 0;
  for (int i = 0; i < tr->np; i++) {
    tparam *p = &tr->p[i];
    if (!p->quant) continue;
    float *q = malloc((size_t)p->n * sizeof *q);
    char label[96];
    snprintf(label, sizeof label, "%.*s", (int)(strlen(p->name) - 7), p->name);
    nn_trainer_evaluate(tr, x, y, NULL, &err); /* refreshes p->q from the current masters */
    CHECK(nn_quant_array(&qp, label, p->w, q, p->n, NULL, &err) == NN_OK);
    CHECK(memcmp(q, p->q, (size_t)p->n * sizeof *q) == 0);
    /* and they differ from the masters (the update went to the float copy) */
    int differs = 0;
    for (int64_t j = 0; j < p->n; j++) differs |= q[j] != p->w[j];
    CHECK(differs);
    free(q);
    qchecked++;
  }
  CHECK(qchecked == 11); /* stem, 3 cell A convs, downconv, 4 cell B convs, fc1, fc2 */
  nn_tensor_free(x), nn_tensor_free(y);
  nn_trainer_free(tr);
}

static void rejects_bad_batches(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_train_params tp = nn_train_params_default();
  nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
  nn_tensor *x = nn_tensor_new4(4, 2, 3, 4, 4, &err), *y = nn_tensor_new4(1, 2, 0, 0, 0, &err);
  CHECK(nn_trainer_step(tr, x, y, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "x: expected a tensor S x 2 x 4 x 4, got 2x3x4x4") == 0);
  nn_tensor_free(x);
  x = nn_tensor_new4(4, 3, 2, 4, 4, &err);
  CHECK(nn_trainer_step(tr, x, y, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "y: expected 3 labels, got 2") == 0);
  tp.bits = 40;
  CHECK(nn_trainer_new_params(&np, &tp, &err) == NULL);
  CHECK(strcmp(err.msg, "bits=40 outside 2..32") == 0);
  nn_tensor_free(x), nn_tensor_free(y);
  nn_trainer_free(tr);
}

/* The trainer takes the net's fields through the plan's checks (one message per field) and
 * adds what training needs: a leak and a positive threshold. */
static void rejects_untrainable_nets(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_train_params tp = nn_train_params_default();
  np.timesteps = 2000;
  CHECK(nn_trainer_build(&np, &tp, &err) == NULL);
  CHECK(strcmp(err.msg, "net: timesteps=2000, expected 1..1024") == 0);
  np = tiny_params();
  np.cell_b.m[1][1] = NN_OP_SKIP;
  CHECK(nn_trainer_build(&np, &tp, &err) == NULL);
  CHECK(strcmp(err.msg, "cell: m[1][1] is skip, expected zero on the diagonal (no self-loops)") == 0);
  np = tiny_params();
  np.tau = 1; /* a net scores with it, training needs tau > 1 */
  nn_net *net = nn_net_new(&np, &err);
  CHECK(net != NULL);
  CHECK(nn_trainer_new(net, &tp, &err) == NULL);
  CHECK(strcmp(err.msg, "net: tau=1, expected a number > 1 for training") == 0);
  nn_net_free(net);
  np = tiny_params();
  np.threshold = 0;
  CHECK(nn_trainer_new_params(&np, &tp, &err) == NULL);
  CHECK(strcmp(err.msg, "net: threshold=0, expected a number > 0 for training") == 0);
}

/* The trainer's tensors are the plan's: trainable ones in plan order (the crossbar weights
 * quantized), BN running statistics beside them; before a net fills them in, BN weights and
 * running variances are 1 and everything else 0. */
static void tensors_from_plan(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_train_params tp = nn_train_params_default();
  nn_trainer *tr = nn_trainer_build(&np, &tp, &err);
  CHECK(tr != NULL);
  if (!tr) return;
  /* by hand: stem conv + BN; cell A 3 conv edges (01 12 13), each a conv and a BN; downconv
   * BN, conv, BN; cell B 4 conv edges (01 12 23 20); last BN; fc1, fc2 + bias: 11 crossbar
   * weights, 11 BNs (weight, bias; 2 running statistics) */
  CHECK(tr->np == 11 + 1 + 2 * 11);
  CHECK(tr->plan.nparams == tr->np + 2 * 11);
  int k = 0, quant = 0, bad = 0;
  for (int i = 0; i < tr->plan.nparams; i++) {
    const nn_plan_param *q = &tr->plan.params[i];
    const float *v = nn_trainer_tensor(tr, i);
    const float want = q->init == NN_INIT_ONES ? 1.0f : 0.0f;
    for (int64_t j = 0; j < q->numel; j++) bad += v[j] != want;
    if (q->buffer) continue;
    CHECK(strcmp(tr->p[k].name, q->name) == 0 && tr->p[k].n == q->numel && tr->p[k].quant == q->crossbar);
    quant += tr->p[k++].quant;
  }
  CHECK(bad == 0 && quant == 11);
  CHECK(strcmp(tr->p[0].name, "stem.conv.weight") == 0 && tr->p[0].n == 2 * 2 * 9);
  nn_trainer_free(tr);
}

static double maxabsdiff(const nn_tensor *a, const nn_tensor *b) {
  double m = 0;
  for (int64_t i = 0; i < a->numel; i++) m = fmax(m, fabs((double)a->data[i] - b->data[i]));
  return m;
}

/* Weights big enough that every LIF fires somewhere: convs x3, the classifier x60. */
static void scale_up(nn_net *net) {
  for (size_t i = 0; i < nn_net_tensor_count(net); i++) {
    const char *nm = nn_net_tensor_name(net, i);
    if (strstr(nm, "running") || strstr(nm, "bn")) continue;
    nn_tensor *t = nn_net_tensor(net, i);
    for (int64_t j = 0; j < t->numel; j++) t->data[j] *= strstr(nm, "classifier") ? 60.0f : 3.0f;
  }
}

/* The training forward equals nn_net_forward (same kernels, dense convs) in both modes, and
 * export writes back what training changed (weights and running statistics). */
static void forward_matches_net(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_net *net = nn_net_new(&np, &err);
  nn_train_params tp = nn_train_params_default();
  nn_tensor *x, *y, *a = NULL, *b = NULL;
  CHECK(net != NULL);
  if (!net) return;
  scale_up(net);
  nn_trainer *tr = nn_trainer_new(net, &tp, &err);
  CHECK(tr != NULL);
  make_batch(&x, &y, 5, 21);
  nn_forward_opts fo = {.train = 1};
  /* both decide dense/event-driven per call the same way (AUTO), or both dense, or both events */
  for (int mode = 0; mode < 3; mode++) {
    nn_conv_mode cm = mode == 0 ? NN_CONV_AUTO : mode == 1 ? NN_CONV_DENSE : NN_CONV_EVENTS;
    nn_net_set_conv_mode(net, cm);
    nn_trainer_set_conv_mode(tr, cm);
    CHECK(nn_net_forward(net, x, &fo, &a, &err) == NN_OK);
    CHECK(nn_trainer_forward(tr, x, 1, &b, &err) == NN_OK);
    CHECK(a && b && maxabsdiff(a, b) == 0);
    double spread = nn_tensor_max(a) - nn_tensor_min(a);
    CHECK(spread > 1e-3); /* the classifier LIF fired: the comparison is not between constants */
    nn_tensor_free(a), nn_tensor_free(b);
  }
  nn_net_set_conv_mode(net, NN_CONV_AUTO);
  nn_trainer_set_conv_mode(tr, NN_CONV_AUTO);
  /* train a few steps (running stats move), export, compare in evaluation mode */
  for (int i = 0; i < 3; i++) CHECK(nn_trainer_step(tr, x, y, NULL, &err) == NN_OK);
  CHECK(nn_trainer_export(tr, net, 0, &err) == NN_OK);
  CHECK(nn_net_weight_bits(net) == 32);
  CHECK(nn_net_tensor_find(net, "stem.bn.running_mean")->data[0] != 0);
  fo.train = 0;
  CHECK(nn_net_forward(net, x, &fo, &a, &err) == NN_OK);
  CHECK(nn_trainer_forward(tr, x, 0, &b, &err) == NN_OK);
  CHECK(a && b && maxabsdiff(a, b) == 0);
  nn_tensor_free(a), nn_tensor_free(b);
  /* a net of other cells is refused */
  nn_net_params np2 = np;
  np2.cell_a.m[0][1] = NN_OP_SKIP;
  nn_net *other = nn_net_new(&np2, &err);
  CHECK(nn_trainer_export(tr, other, 0, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "export: the net's cells differ from the trainer's") == 0);
  nn_net_free(other);
  nn_tensor_free(x), nn_tensor_free(y);
  nn_trainer_free(tr);
  nn_net_free(net);
}

/* A mid-sized net (SNASNet's backward cell B, 8/16 channels, 12x12 inputs, an uneven batch of
 * 13 so the sample groups differ in size) trained two steps with 1, 2 and 3 threads: weights,
 * gradients and running statistics agree to the bit, and the 2-thread training forward equals
 * nn_net_forward. Under QAT and float, with Adam and SGD. */
static void threads_bit_identical(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  np.in_ch = 3, np.in_h = 12, np.in_w = 12, np.channels = 8, np.fc_width = 40;
  np.classes = 5, np.timesteps = 3;
  np.cell_a = np.cell_b;
  nn_net *net = nn_net_new(&np, &err);
  CHECK(net != NULL);
  if (!net) return;
  scale_up(net);
  nn_rng r = nn_rng_seed(77);
  nn_tensor *x = nn_tensor_new4(4, 13, 3, 12, 12, &err), *y = nn_tensor_new4(1, 13, 0, 0, 0, &err);
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)(1.5 * nn_rng_normal(&r));
  for (int64_t i = 0; i < 13; i++) y->data[i] = (float)(i % 5);
  for (int variant = 0; variant < 2; variant++) {
    nn_trainer *tr[3];
    for (int k = 0; k < 3; k++) {
      nn_train_params tp = nn_train_params_default();
      tp.threads = k + 1;
      tp.bits = variant == 0 ? 8 : 32;
      tp.optimizer = variant == 0 ? NN_OPT_ADAM : NN_OPT_SGD;
      tp.lr = variant == 0 ? 1e-2 : 0.1;
      tr[k] = nn_trainer_new(net, &tp, &err);
      CHECK(tr[k] != NULL);
      if (!tr[k]) return;
      for (int s = 0; s < 2; s++) CHECK(nn_trainer_step(tr[k], x, y, NULL, &err) == NN_OK);
    }
    int64_t differ = 0, nonzero = 0;
    for (size_t i = 0; i < nn_trainer_param_count(tr[0]); i++) {
      size_t bytes = (size_t)nn_trainer_param_size(tr[0], i) * sizeof(float);
      const float *g = nn_trainer_param_grad(tr[0], i);
      for (int64_t j = 0; j < nn_trainer_param_size(tr[0], i); j++) nonzero += g[j] != 0;
      for (int k = 1; k < 3; k++) {
        differ += memcmp(nn_trainer_param_data(tr[0], i), nn_trainer_param_data(tr[k], i), bytes) != 0;
        differ += memcmp(g, nn_trainer_param_grad(tr[k], i), bytes) != 0;
      }
    }
    for (int i = 0; i < tr[0]->plan.nparams; i++) /* the BN running statistics too */
      for (int k = 1; k < 3; k++)
        differ += memcmp(nn_trainer_tensor(tr[0], i), nn_trainer_tensor(tr[k], i),
                         (size_t)tr[0]->plan.params[i].numel * sizeof(float)) != 0;
    CHECK(differ == 0);
    CHECK(nonzero > 1000); /* gradients flowed: the comparison is not between zeros */
    /* the 2-thread training forward is the scoring forward */
    nn_tensor *a = NULL, *b = NULL;
    nn_forward_opts fo = {.train = 1};
    CHECK(nn_trainer_export(tr[1], net, 1, &err) == NN_OK);
    CHECK(nn_net_forward(net, x, &fo, &a, &err) == NN_OK);
    CHECK(nn_trainer_forward(tr[1], x, 1, &b, &err) == NN_OK);
    CHECK(a && b && maxabsdiff(a, b) == 0);
    CHECK(nn_tensor_max(a) - nn_tensor_min(a) > 1e-3);
    nn_tensor_free(a), nn_tensor_free(b);
    for (int k = 0; k < 3; k++) nn_trainer_free(tr[k]);
  }
  nn_tensor_free(x), nn_tensor_free(y);
  nn_net_free(net);
}

/* QAT export: crossbar weights become the quantizer's FxP values, BN stays float. */
static void export_quantized(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_train_params tp = nn_train_params_default();
  tp.bits = 4;
  nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
  nn_net *net = nn_net_new(&np, &err);
  CHECK(tr && net);
  if (!tr || !net) return;
  CHECK(nn_trainer_export(tr, net, 1, &err) == NN_OK);
  CHECK(nn_net_weight_bits(net) == 4);
  nn_tensor *w = nn_net_tensor_find(net, "cellB.e20.conv.weight");
  int idx = nn_trainer_find_param(tr, "cellB.e20.conv.weight");
  float *q = malloc((size_t)w->numel * sizeof *q);
  nn_quant_params qp = nn_quant_params_default();
  qp.bits = 4;
  CHECK(nn_quant_array(&qp, "cellB.e20.conv", tr->p[idx].w, q, w->numel, NULL, &err) == NN_OK);
  CHECK(memcmp(q, w->data, (size_t)w->numel * sizeof *q) == 0);
  free(q);
  nn_trainer_free(tr);
  nn_net_free(net);
}

/* save -> more steps -> load restores weights, optimizer state and step count, so the next
 * step repeats exactly; the caller string round-trips; bad files are refused by name. */
static void checkpoint_round_trip(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_train_params tp = nn_train_params_default();
  char path[64];
  snprintf(path, sizeof path, "/tmp/nn_test_train_%d.safetensors", (int)getpid());
  nn_tensor *x, *y;
  for (int opt = 0; opt < 2; opt++) {
    tp.optimizer = opt ? NN_OPT_ADAM : NN_OPT_SGD;
    tp.lr = opt ? 0.01 : 0.1;
    nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
    make_batch(&x, &y, 6, 2);
    for (int i = 0; i < 2; i++) CHECK(nn_trainer_step(tr, x, y, NULL, &err) == NN_OK);
    CHECK(nn_trainer_save(tr, path, "{\"epoch\":2}", &err) == NN_OK);
    nn_train_result r1, r2;
    CHECK(nn_trainer_step(tr, x, y, &r1, &err) == NN_OK);
    int fi = nn_trainer_find_param(tr, "classifier.fc2.weight");
    float after = tr->p[fi].w[3];
    CHECK(nn_trainer_step(tr, x, y, NULL, &err) == NN_OK);
    char *user = NULL;
    CHECK(nn_trainer_load(tr, path, &user, &err) == NN_OK);
    CHECK(user && strcmp(user, "{\"epoch\":2}") == 0);
    free(user);
    CHECK(nn_trainer_steps(tr) == 2);
    CHECK(nn_trainer_step(tr, x, y, &r2, &err) == NN_OK);
    CHECK(r2.loss == r1.loss);
    CHECK(tr->p[fi].w[3] == after);
    /* another optimizer's checkpoint is refused */
    nn_train_params tp2 = tp;
    tp2.optimizer = opt ? NN_OPT_SGD : NN_OPT_ADAM;
    nn_trainer *t2 = nn_trainer_new_params(&np, &tp2, &err);
    CHECK(nn_trainer_load(t2, path, NULL, &err) == NN_EINVAL);
    char want[160];
    snprintf(want, sizeof want, "%s: optimizer state is for %s, the trainer uses %s", path,
             opt ? "adam" : "sgd", opt ? "sgd" : "adam");
    CHECK(strcmp(err.msg, want) == 0);
    nn_trainer_free(t2);
    nn_tensor_free(x), nn_tensor_free(y);
    nn_trainer_free(tr);
  }
  /* a net's weights file is not a checkpoint */
  nn_net *net = nn_net_new(&np, &err);
  CHECK(nn_net_save(net, path, &err) == NN_OK);
  nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
  CHECK(nn_trainer_load(tr, path, NULL, &err) == NN_EFORMAT);
  CHECK(strstr(err.msg, "not a neuronas training checkpoint") != NULL);
  nn_trainer_free(tr);
  nn_net_free(net);
  remove(path);
}

/* Copies checkpoint src to dst with its __metadata__ "steps" value replaced by `steps` (the header
 * re-padded to 8 bytes; data offsets are relative to the header's end, so they stay valid). */
static int set_steps(const char *src, const char *dst, const char *steps) {
  FILE *f = fopen(src, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)size);
  int ok = b && fread(b, 1, (size_t)size, f) == (size_t)size;
  fclose(f);
  uint64_t n = 0;
  for (int i = 0; ok && i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
  char *h = ok ? malloc(n + 1) : NULL, *at = NULL, *end = NULL;
  if (h) memcpy(h, b + 8, n), h[n] = 0;
  if (h && (at = strstr(h, "\"steps\":\"")) != NULL) at += 9, end = strchr(at, '"');
  ok = end != NULL;
  if (ok) {
    size_t cap = n + strlen(steps) + 16;
    char *nh = malloc(cap);
    int k = snprintf(nh, cap, "%.*s%s%s", (int)(at - h), h, steps, end);
    while (k % 8) nh[k++] = ' ';
    FILE *o = fopen(dst, "wb");
    unsigned char l8[8];
    for (int i = 0; i < 8; i++) l8[i] = (unsigned char)((uint64_t)k >> (8 * i));
    ok = o && fwrite(l8, 1, 8, o) == 8 && fwrite(nh, 1, (size_t)k, o) == (size_t)k &&
         fwrite(b + 8 + n, 1, (size_t)size - 8 - n, o) == (size_t)size - 8 - n;
    if (o) fclose(o);
    free(nh);
  }
  free(h), free(b);
  return ok;
}

/* A checkpoint's step count is an integer in 0..2^53 (digits only), else it is refused by file and
 * field and the trainer is left as it was; at 2^53 steps the trainer refuses to step further (the
 * count never overflows: a checkpoint of 99999999999999999999 steps used to become INT64_MAX). */
static void checkpoint_steps_bounded(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  nn_train_params tp = nn_train_params_default();
  char path[64], bad[80], want[256];
  snprintf(path, sizeof path, "/tmp/nn_test_train_steps_%d.safetensors", (int)getpid());
  snprintf(bad, sizeof bad, "%s.bad", path);
  nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
  nn_tensor *x, *y;
  make_batch(&x, &y, 6, 2);
  CHECK(tr && nn_trainer_step(tr, x, y, NULL, &err) == NN_OK);
  CHECK(nn_trainer_save(tr, path, NULL, &err) == NN_OK);
  const char *refused[] = {"99999999999999999999", "9223372036854775807", "9007199254740993", "-1",
                           "+5", " 5", "5 ", "1e3", "0x10", ""};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    CHECK(set_steps(path, bad, refused[i]));
    CHECK(nn_trainer_load(tr, bad, NULL, &err) == NN_EFORMAT);
    snprintf(want, sizeof want, "%s: __metadata__ steps is \"%s\", an integer in 0..9007199254740992 expected",
             bad, refused[i]);
    CHECK(strcmp(err.msg, want) == 0);
    CHECK(nn_trainer_steps(tr) == 1);
  }
  CHECK(set_steps(path, bad, "9007199254740992"));
  CHECK(nn_trainer_load(tr, bad, NULL, &err) == NN_OK && nn_trainer_steps(tr) == NN_TRAIN_MAX_STEPS);
  CHECK(nn_trainer_step(tr, x, y, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "trainer: 9007199254740992 steps taken, the most a trainer takes") == 0);
  CHECK(nn_trainer_steps(tr) == NN_TRAIN_MAX_STEPS);
  CHECK(set_steps(path, bad, "0012"));
  CHECK(nn_trainer_load(tr, bad, NULL, &err) == NN_OK && nn_trainer_steps(tr) == 12);
  nn_tensor_free(x), nn_tensor_free(y);
  nn_trainer_free(tr);
  remove(path), remove(bad);
}

/* A step whose update leaves a value that is not finite fails, and the trainer then refuses to
 * step, evaluate, run forward, export or save (no NaN out, no checkpoint its load would refuse)
 * until a good checkpoint is loaded, after which it trains as before. */
static void divergence_refused(void) {
  nn_error err;
  nn_net_params np = tiny_params();
  char path[64], want[256];
  snprintf(path, sizeof path, "/tmp/nn_test_train_div_%d.safetensors", (int)getpid());
  nn_tensor *x, *y, *out = NULL;
  make_batch(&x, &y, 6, 2);
  for (int opt = 0; opt < 2; opt++) {
    nn_train_params tp = nn_train_params_default();
    tp.optimizer = opt ? NN_OPT_ADAM : NN_OPT_SGD;
    tp.lr = opt ? 1e36 : 1e6, tp.lr_min = 0, tp.weight_decay = 1; /* Adam's steps are about lr */
    nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
    nn_net *net = nn_net_new(&np, &err);
    CHECK(tr && net);
    if (!tr || !net) return;
    CHECK(nn_trainer_save(tr, path, NULL, &err) == NN_OK);
    int k = 0;
    while (k < 50 && nn_trainer_step(tr, x, y, NULL, &err) == NN_OK) k++;
    CHECK(k < 50);
    CHECK(strncmp(err.msg, "training diverged at step ", 26) == 0);
    CHECK(nn_trainer_check_finite(tr, &err) == NN_EINVAL);
    char first[256];
    snprintf(first, sizeof first, "%s", err.msg);
    CHECK(strncmp(first, "trainer: tensor '", 17) == 0 && strstr(first, "' element ") &&
          strstr(first, "is not finite (training diverged at or before step ") &&
          strstr(first, "); load a checkpoint or make a new trainer"));
    nn_train_result r;
    double loss;
    CHECK(nn_trainer_step(tr, x, y, &r, &err) == NN_EINVAL && strcmp(err.msg, first) == 0);
    CHECK(nn_trainer_evaluate(tr, x, y, &r, &err) == NN_EINVAL && strcmp(err.msg, first) == 0);
    CHECK(nn_trainer_forward(tr, x, 0, &out, &err) == NN_EINVAL && strcmp(err.msg, first) == 0 && !out);
    CHECK(nn_trainer_loss(tr, x, y, 0, 0, &loss, &err) == NN_EINVAL && strcmp(err.msg, first) == 0);
    CHECK(nn_trainer_export(tr, net, 1, &err) == NN_EINVAL && strcmp(err.msg, first) == 0);
    float w0 = nn_tensor_data(nn_net_tensor(net, 0))[0];
    CHECK(isfinite(w0)); /* the net was not touched */
    char other[80];
    snprintf(other, sizeof other, "%s.other", path);
    CHECK(nn_trainer_save(tr, other, NULL, &err) == NN_EINVAL && strcmp(err.msg, first) == 0);
    CHECK(access(other, F_OK) != 0);
    /* a good checkpoint makes it usable again */
    CHECK(nn_trainer_load(tr, path, NULL, &err) == NN_OK && nn_trainer_check_finite(tr, &err) == NN_OK);
    CHECK(nn_trainer_steps(tr) == 0);
    CHECK(nn_trainer_evaluate(tr, x, y, &r, &err) == NN_OK && isfinite(r.loss));
    nn_trainer_free(tr);
    nn_net_free(net);
  }
  /* a NaN anywhere in the state (here an optimizer buffer) is named by its checkpoint name, by
   * the full check that save runs (the calls that run the net read the mark a diverged step sets) */
  nn_train_params tp = nn_train_params_default();
  tp.optimizer = NN_OPT_ADAM;
  nn_trainer *tr = nn_trainer_new_params(&np, &tp, &err);
  int fi = nn_trainer_find_param(tr, "classifier.fc2.weight");
  tr->p[fi].m2[4] = NAN;
  snprintf(want, sizeof want, "trainer: tensor 'optim.classifier.fc2.weight.exp_avg_sq' element 5 is not finite "
           "(training diverged at or before step 0); load a checkpoint or make a new trainer");
  CHECK(nn_trainer_check_finite(tr, &err) == NN_EINVAL && strcmp(err.msg, want) == 0);
  char nan_path[80];
  snprintf(nan_path, sizeof nan_path, "%s.nan", path);
  CHECK(nn_trainer_save(tr, nan_path, NULL, &err) == NN_EINVAL && strcmp(err.msg, want) == 0);
  CHECK(access(nan_path, F_OK) != 0);
  nn_trainer_free(tr);
  nn_tensor_free(x), nn_tensor_free(y);
  remove(path);
}

int main(void) {
  NN_TEST_RUN(forward_matches_net);
  NN_TEST_RUN(threads_bit_identical);
  NN_TEST_RUN(export_quantized);
  NN_TEST_RUN(checkpoint_round_trip);
  NN_TEST_RUN(checkpoint_steps_bounded);
  NN_TEST_RUN(divergence_refused);
  NN_TEST_RUN(whole_network_gradient);
  NN_TEST_RUN(loss_decreases_and_qat);
  NN_TEST_RUN(rejects_bad_batches);
  NN_TEST_RUN(rejects_untrainable_nets);
  NN_TEST_RUN(tensors_from_plan);
  return NN_TEST_END();
}
