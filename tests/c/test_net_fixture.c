/* test_net_fixture.c: the forward pass against the published SNASNet code (tests/fixtures/README.md):
 * loads tests/fixtures/snasnet-backward/weights.safetensors under SNASNet's PyTorch names
 * (docs/interop.md), runs input.r0 and compares every (LIF module, step, sample) spike count
 * with result.safetensors. */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_interop.h"
#include "neuronas/nn_net.h"
#include "neuronas/nn_safetensors.h"
#include "nn_test.h"

#define FIX NN_SOURCE_DIR "/tests/fixtures/snasnet-backward/"
#define CALLS_PER_STEP 15
#define STEPS 5
#define S 32
/* Fixture README: "equal, or off by a handful where float32 summation order puts a membrane
 * within rounding of the threshold". Measured: all 3.3 M spikes equal. That depends on BN's
 * affine step being one fused multiply-add as in PyTorch's -mfma kernel (nn_ops.c): rounded in
 * two steps, one downconv membrane lands on 1.0 exactly and every batch-statistics BN of cell B
 * carries that spike to all samples (10,790 spikes off). We hold it to the README's handful;
 * cell A (upstream of the downconv) must be exact. */
#define MAX_OFF 8

/* SNASNet's modules in its LIF call order within a step (meta.json lif_call_order) */
static const char *const SNAS_LIF[CALLS_PER_STEP] = {
    "cell1.cell_architecture.0.0", "cell1.cell_architecture.2.0", "cell1.cell_architecture.3.0",
    "cell1.cell_architecture.5.0", "cell1.cell_architecture_back.1.0", "cell1.cell_architecture_back.4.0",
    "downconv1.1", "cell2.cell_architecture.0.0", "cell2.cell_architecture.2.0",
    "cell2.cell_architecture.3.0", "cell2.cell_architecture.5.0", "cell2.cell_architecture_back.1.0",
    "cell2.cell_architecture_back.4.0", "last_act.1", "classifier.2"};

typedef struct counts {
  nn_net *net;
  double c[STEPS][CALLS_PER_STEP][S];
  int seen[STEPS][CALLS_PER_STEP];
  int calls;
  char ours[CALLS_PER_STEP][64];
} counts;

static void on_spikes(void *ud, const nn_spike_call *call) {
  counts *k = ud;
  k->calls++;
  for (int m = 0; m < CALLS_PER_STEP; m++) {
    if (strcmp(call->module, k->ours[m]) != 0) continue;
    int64_t tot = 0;
    for (int64_t s = 0; s < call->samples && s < S; s++) {
      int64_t n = 0;
      for (int64_t w = 0; w < call->words; w++) n += __builtin_popcountll(call->bits[s * call->words + w]);
      k->c[call->step][m][s] = (double)n;
      tot += n;
    }
    CHECK(tot == call->fired);
    k->seen[call->step][m]++;
  }
}

static void fixture_spike_counts(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  CHECK(nn_net_params_preset(&p, "cifar100", &err) == NN_OK);
  CHECK(nn_cell_parse("0303 0030 2002 0200", NN_CELL_FORM_SNASNET, &p.cell_a, &err) == NN_OK);
  p.cell_b = p.cell_a;
  p.channels = 16; /* fixture: the cifar100 preset scaled down (README) */
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;

  /* weights under SNASNet's PyTorch names (the engine's table, nn_interop.c) */
  if (nn_net_load_names(net, FIX "weights.safetensors", NN_NAMES_SNASNET, &err) != NN_OK) {
    fprintf(stderr, "%s\n", err.msg);
    CHECK(0);
    nn_net_free(net);
    return;
  }

  nn_st_file *in = nn_st_open(FIX "inputs.safetensors", &err), *res = nn_st_open(FIX "result.safetensors", &err);
  CHECK(in && res);
  if (!in || !res) {
    nn_st_close(in), nn_st_close(res), nn_net_free(net);
    return;
  }
  nn_tensor *x = nn_st_read_tensor(in, "input.r0", &err);
  nn_tensor *ref = nn_st_read_tensor(res, "spike_counts.r0", &err);
  nn_tensor *npc = nn_st_read_tensor(res, "neurons_per_call", &err);
  CHECK(x && ref && npc && nn_tensor_numel(ref) == STEPS * CALLS_PER_STEP * S);
  static counts k;
  memset(&k, 0, sizeof k);
  k.net = net;
  for (int m = 0; m < CALLS_PER_STEP; m++)
    CHECK(nn_names_translate(SNAS_LIF[m], NN_NAMES_SNASNET, NN_NAMES_NEURONAS, k.ours[m], sizeof k.ours[m]));
  /* neurons per call: ours agree with SNASNet's */
  for (int m = 0; m < CALLS_PER_STEP; m++)
    for (size_t l = 0; l < nn_net_lif_count(net); l++)
      if (!strcmp(nn_net_lif_name(net, l), k.ours[m])) CHECK(nn_net_lif_neurons(net, l) == (int64_t)nn_tensor_data(npc)[m]);
  CHECK(nn_net_lif_count(net) == CALLS_PER_STEP);

  nn_forward_opts o = {.train = 1, .on_spikes = on_spikes, .ud = &k};
  nn_tensor *out = NULL;
  CHECK(nn_net_forward(net, x, &o, &out, &err) == NN_OK);
  CHECK(k.calls == STEPS * CALLS_PER_STEP);
  double off = 0, total = 0;
  int bad_calls = 0, first_t = -1, first_m = -1;
  double first_d = 0;
  for (int t = 0; t < STEPS; t++)
    for (int m = 0; m < CALLS_PER_STEP; m++) {
      CHECK(k.seen[t][m] == 1);
      double d = 0;
      for (int s = 0; s < S; s++) {
        double r = nn_tensor_data(ref)[(t * CALLS_PER_STEP + m) * S + s];
        d += fabs(k.c[t][m][s] - r);
        total += r;
      }
      if (d > 0) {
        bad_calls++;
        /* the first difference in SNASNet's call order (step-major) */
        if (first_t < 0) first_t = t, first_m = m, first_d = d;
      }
      if (m < 6) CHECK(d == 0); /* cell A: upstream of every divergence */
      off += d;
    }
  fprintf(stderr, "  fixture: %g spikes in total, %g off (%d of %d calls differ); first difference: step %d %s, %g spike(s)\n",
          total, off, bad_calls, STEPS * CALLS_PER_STEP, first_t, first_t >= 0 ? k.ours[first_m] : "-", first_d);
  CHECK(total > 1e6); /* the fixture really fires (3.3M spikes) */
  CHECK(off <= MAX_OFF);
  nn_tensor_free(out), nn_tensor_free(x), nn_tensor_free(ref), nn_tensor_free(npc);
  nn_st_close(in), nn_st_close(res);
  nn_net_free(net);
}

/* docs/model.md hand count for the fixture cell, checked against the fixture's own weight shapes */
static void fixture_param_count(void) {
  nn_error err;
  nn_st_file *w = nn_st_open(FIX "weights.safetensors", &err);
  CHECK(w != NULL);
  if (!w) return;
  int64_t feat = 0, all = 0;
  for (size_t i = 0; i < nn_st_count(w); i++) {
    const char *n = nn_st_name(w, i);
    int nd = nn_st_ndim(w, i);
    if (strcmp(strrchr(n, '.'), ".weight") || (nd != 4 && nd != 2)) continue; /* convs and linears */
    all += nn_st_numel(w, i);
    if (nd == 4) feat += nn_st_numel(w, i);
  }
  nn_st_close(w);
  /* stem 3*16*9 + cell A 3 conv3x3 (16*16*9) + 3 conv1x1 (16*16) + downconv 16*32*9
   * + cell B 3 conv3x3 (32*32*9) + 3 conv1x1 (32*32) */
  CHECK(feat == 432 + 3 * 2304 + 3 * 256 + 4608 + 3 * 9216 + 3 * 1024);
  CHECK(all == feat + 2048 * 1024 + 1024 * 500);
  nn_net_params p = nn_net_params_default();
  nn_net_params_preset(&p, "cifar100", &err);
  nn_cell_parse("0303 0030 2002 0200", NN_CELL_FORM_SNASNET, &p.cell_a, &err);
  p.cell_b = p.cell_a;
  p.channels = 16;
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net && nn_net_param_count(net, 1) == feat && nn_net_param_count(net, 0) == all);
  nn_net_free(net);
}

int main(void) {
  NN_TEST_RUN(fixture_param_count);
  NN_TEST_RUN(fixture_spike_counts);
  return NN_TEST_END();
}
