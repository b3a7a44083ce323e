/* test_plan.c: the network plan (include/neuronas/nn_plan.h, docs/model.md "The plan"): steps,
 * shapes, tensors, crossbar layers and SNASNet names of a plan worked out by hand from the
 * macro-architecture, the order of cell edges, the prefix/suffix boundary, and the errors. */
#include <string.h>

#include "neuronas/nn_plan.h"
#include "nn_test.h"

/* fashion-mnist (1x28x28, C = 16, F = 256, 10 classes x 10), cell A "0302 0030 3003 0000"
 * (e01 conv3x3, e03 conv1x1, e12 conv3x3, e23 conv3x3, backward e20 conv3x3), cell B
 * "0102 0010 0004 0000" (e01 skip, e03 conv1x1, e12 skip, e23 avgpool3x3). */
static nn_net_params params(void) {
  nn_net_params p = nn_net_params_default();
  p.cell_a = nn_test_cell("0302 0030 3003 0000");
  p.cell_b = nn_test_cell("0102 0010 0004 0000");
  return p;
}

static void test_steps(void) {
  static nn_plan pl;
  nn_net_params p = params();
  nn_error err;
  CHECK(nn_plan_build(&pl, &p, &err) == NN_OK);
  /* by hand: stem 2; cell A 1 + 5 conv edges x 4; downconv 5 (bn1 lif conv bn2 pool) = 28;
   * cell B 1 + 3 + 4; last bn, lif, pool; dropout, fc1, lif, fc2, boost = 16 */
  CHECK(pl.nsteps == 44);
  CHECK(pl.boundary == 28);
  static const char *const PATHS[44] = {
      "stem.conv", "stem.bn", "cellA", "cellA.e01", "cellA.e01.lif", "cellA.e01.conv", "cellA.e01.bn",
      "cellA.e12", "cellA.e12.lif", "cellA.e12.conv", "cellA.e12.bn", "cellA.e03", "cellA.e03.lif",
      "cellA.e03.conv", "cellA.e03.bn", "cellA.e23", "cellA.e23.lif", "cellA.e23.conv", "cellA.e23.bn",
      "cellA.e20", "cellA.e20.lif", "cellA.e20.conv", "cellA.e20.bn", "downconv.bn1", "downconv.lif",
      "downconv.conv", "downconv.bn2", "downconv.pool", "cellB", "cellB.e01", "cellB.e12", "cellB.e03",
      "cellB.e03.lif", "cellB.e03.conv", "cellB.e03.bn", "cellB.e23", "last.bn", "last.lif", "last.pool",
      "classifier.dropout", "classifier.fc1", "classifier.lif", "classifier.fc2", "classifier.boost"};
  int bad = 0;
  for (int i = 0; i < 44 && i < pl.nsteps; i++)
    if (strcmp(pl.steps[i].path, PATHS[i])) {
      bad++;
      fprintf(stderr, "step %d: %s, expected %s\n", i, pl.steps[i].path, PATHS[i]);
    }
  CHECK(bad == 0);
  for (int i = 0; i < pl.nsteps; i++) {
    CHECK(pl.steps[i].part == (i >= 28));
    CHECK(pl.steps[i].once == (i < 2));
  }
  const nn_plan_step *ca = &pl.steps[2], *cb = &pl.steps[28];
  CHECK(ca->op == NN_STEP_CELL && ca->nedges == 5 && ca->nfwd == 4 && ca->nsub == 20 && ca->cell == 0);
  CHECK(cb->op == NN_STEP_CELL && cb->nedges == 4 && cb->nfwd == 4 && cb->nsub == 7 && cb->cell == 1);
  CHECK(pl.cell_step[0] == 2 && pl.cell_step[1] == 28);
  const nn_plan_step *e20 = &pl.steps[19];
  CHECK(e20->op == NN_STEP_EDGE && e20->from == 2 && e20->to == 0 && e20->edge_op == NN_OP_CONV3X3 && e20->nsub == 3);
  CHECK(pl.steps[29].edge_op == NN_OP_SKIP && pl.steps[29].nsub == 0);
  CHECK(pl.steps[35].edge_op == NN_OP_AVGPOOL3X3 && pl.steps[35].nsub == 0);
  CHECK(pl.steps[13].k == 1 && pl.steps[13].pad == 0 && pl.steps[17].k == 3 && pl.steps[17].pad == 1);
  /* shapes: cell A 16x28x28, downconv to 32 channels, pooled to 14x14; the second pool to 7x7;
   * fc1 2*16*7*7 = 1568 -> 256; fc2 256 -> 100; boost 100 -> 10 */
  CHECK(pl.h0 == 28 && pl.h1 == 14 && pl.h2 == 7 && pl.fc_in == 1568);
  CHECK(pl.steps[0].in_c == 1 && pl.steps[0].out_c == 16 && pl.steps[0].out_h == 28);
  CHECK(pl.steps[25].in_c == 16 && pl.steps[25].out_c == 32 && pl.steps[25].out_h == 28);
  CHECK(pl.steps[27].in_c == 32 && pl.steps[27].in_h == 28 && pl.steps[27].out_h == 14 && pl.steps[27].k == 2);
  CHECK(pl.steps[33].in_c == 32 && pl.steps[33].in_h == 14);
  CHECK(pl.steps[38].out_c == 32 && pl.steps[38].out_h == 7 && pl.steps[38].k == 2);
  CHECK(pl.steps[40].in_c == 1568 && pl.steps[40].out_c == 256 && !pl.steps[40].bias);
  CHECK(pl.steps[42].in_c == 256 && pl.steps[42].out_c == 100 && pl.steps[42].bias);
  CHECK(pl.steps[43].in_c == 100 && pl.steps[43].out_c == 10 && pl.steps[43].k == 10);
}

static void test_tensors_layers_lifs(void) {
  static nn_plan pl;
  nn_net_params p = params();
  CHECK(nn_plan_build(&pl, &p, NULL) == NN_OK);
  /* tensors: stem conv + BN 5, 5 conv edges x 5, downconv 9, cell B conv edge 5, last.bn 4,
   * fc1 weight, fc2 weight and bias */
  CHECK(pl.nparams == 51);
  CHECK(!strcmp(pl.params[0].name, "stem.conv.weight") && pl.params[0].ndim == 4 && pl.params[0].shape[0] == 16 &&
        pl.params[0].shape[1] == 1 && pl.params[0].shape[2] == 3 && pl.params[0].crossbar);
  CHECK(!strcmp(pl.params[4].name, "stem.bn.running_var") && pl.params[4].init == NN_INIT_ONES && pl.params[4].buffer);
  CHECK(!strcmp(pl.params[50].name, "classifier.fc2.bias") && pl.params[50].numel == 100 &&
        pl.params[50].init == NN_INIT_ZEROS && !pl.params[50].crossbar);
  int i = nn_plan_find_param(&pl, "classifier.fc1.weight");
  CHECK(i == 48 && pl.params[i].shape[0] == 256 && pl.params[i].shape[1] == 1568 &&
        pl.params[i].init == NN_INIT_NORMAL && pl.params[i].b == 0.01f);
  /* Kaiming-uniform, a = 2: bound = sqrt(6 / (5 * fan_in)); cell A's conv1x1 has fan_in 16 */
  i = nn_plan_find_param(&pl, "cellA.e03.conv.weight");
  CHECK(i >= 0 && pl.params[i].init == NN_INIT_UNIFORM);
  CHECK_NEAR(pl.params[i].b, sqrt(6.0 / 80.0), 1e-7);
  CHECK_NEAR(pl.params[i].a, -sqrt(6.0 / 80.0), 1e-7);
  CHECK(nn_plan_find_param(&pl, "cellB.e01.conv.weight") == -1);
  /* layers: stem, 5 cell A convs, downconv, cell B's conv1x1, fc1, fc2 */
  CHECK(pl.nlayers == 10);
  int64_t weights = 0, features = 0;
  for (int l = 0; l < pl.nlayers; l++) {
    weights += pl.layers[l].weights;
    if (pl.layers[l].features) features += pl.layers[l].weights;
    CHECK(pl.steps[pl.layer_step[l]].layer == l);
  }
  /* 144 + 4 * 2304 + 256 + 4608 + 1024 = 15248 features; + 401408 + 25600 */
  CHECK(features == 15248);
  CHECK(weights == 15248 + 401408 + 25600);
  CHECK(!strcmp(pl.layers[1].name, "cellA.e01.conv") && pl.layers[1].k == 3 && pl.layers[1].in_dim == 28);
  CHECK(!strcmp(pl.layers[7].name, "cellB.e03.conv") && pl.layers[7].k == 1 && pl.layers[7].in_ch == 32 &&
        pl.layers[7].in_dim == 14);
  CHECK(pl.layers[8].kind == NN_LAYER_LINEAR && pl.layers[8].in_ch == 1568 && pl.layers[8].out_ch == 256 &&
        !pl.layers[8].features);
  /* LIFs: 5 in cell A, downconv, 1 in cell B, last, classifier */
  CHECK(pl.nlifs == 9);
  CHECK(!strcmp(pl.steps[pl.lif_step[5]].path, "downconv.lif"));
  CHECK(pl.steps[pl.lif_step[5]].in_c * pl.steps[pl.lif_step[5]].in_h * pl.steps[pl.lif_step[5]].in_w == 16 * 28 * 28);
  CHECK(!strcmp(pl.steps[pl.lif_step[8]].path, "classifier.lif") && pl.steps[pl.lif_step[8]].in_c == 256);
  /* values per sample: the downconv LIF 16x28x28 in and out; its pool 32x28x28 -> 32x14x14 */
  CHECK(nn_plan_step_in_numel(&pl.steps[pl.lif_step[5]]) == 12544 && nn_plan_step_out_numel(&pl.steps[pl.lif_step[5]]) == 12544);
  i = nn_plan_find_step(&pl, "downconv.pool");
  CHECK(i >= 0 && nn_plan_step_in_numel(&pl.steps[i]) == 25088 && nn_plan_step_out_numel(&pl.steps[i]) == 6272);
}

/* a net holds the plan of its params: its tensors, layers and LIFs are the plan's */
static void test_net_holds_plan(void) {
  static nn_plan pl;
  nn_net_params p = params();
  nn_error err;
  CHECK(nn_plan_build(&pl, &p, &err) == NN_OK);
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;
  CHECK(memcmp(nn_net_plan(net), &pl, sizeof pl) == 0);
  CHECK(nn_net_tensor_count(net) == 51 && nn_net_layer_count(net) == 10 && nn_net_lif_count(net) == 9);
  CHECK(!strcmp(nn_net_tensor_name(net, 48), "classifier.fc1.weight"));
  CHECK(nn_tensor_numel(nn_net_tensor(net, 48)) == 256 * 1568);
  CHECK(nn_net_layer_weight(net, 8) == nn_net_tensor(net, 48)); /* layer 8 is fc1 */
  CHECK(!strcmp(nn_net_lif_name(net, 5), "downconv.lif") && nn_net_lif_neurons(net, 5) == 16 * 28 * 28);
  /* BN weights and running variances start at 1, the fc2 bias at 0 */
  CHECK(nn_tensor_cdata(nn_net_tensor(net, 1))[0] == 1.0f && nn_tensor_cdata(nn_net_tensor(net, 4))[15] == 1.0f);
  CHECK(nn_tensor_cdata(nn_net_tensor(net, 50))[99] == 0.0f);
  nn_net *c = nn_net_clone(net, &err);
  CHECK(c != NULL && memcmp(nn_net_plan(c), &pl, sizeof pl) == 0);
  nn_net_free(c);
  nn_net_free(net);
}

static void test_snasnet_names(void) {
  static nn_plan pl;
  nn_net_params p = params();
  CHECK(nn_plan_build(&pl, &p, NULL) == NN_OK);
  /* SNASNet: stem = Sequential(conv, BN); cell edges cell_architecture.0..5 (01 02 12 03 13 23)
   * and cell_architecture_back.0..5 (10 20 30 21 31 32), each Sequential(LIF, conv, BN) */
  static const char *const PAIRS[][2] = {
      {"stem.conv", "stem.0"},
      {"stem.bn", "stem.1"},
      {"cellA.e12.conv", "cell1.cell_architecture.2.1"},
      {"cellA.e03.lif", "cell1.cell_architecture.3.0"},
      {"cellA.e20.bn", "cell1.cell_architecture_back.1.2"},
      {"cellB.e23", "cell2.cell_architecture.5"},
      {"downconv.conv", "downconv1.2"},
      {"last.lif", "last_act.1"},
      {"classifier.fc2", "classifier.3"},
      {"downconv.pool", ""},
  };
  for (size_t i = 0; i < sizeof PAIRS / sizeof *PAIRS; i++) {
    int s = nn_plan_find_step(&pl, PAIRS[i][0]);
    CHECK(s >= 0);
    int same = s >= 0 && !strcmp(pl.steps[s].snasnet, PAIRS[i][1]);
    if (!same) fprintf(stderr, "%s: %s, expected %s\n", PAIRS[i][0], s >= 0 ? pl.steps[s].snasnet : "-", PAIRS[i][1]);
    CHECK(same);
  }
}

static void test_errors(void) {
  static nn_plan pl;
  nn_error err;
  nn_net_params p = params();
  p.channels = 0;
  CHECK(nn_plan_build(&pl, &p, &err) == NN_EINVAL && strstr(err.msg, "channels=0"));
  p = params();
  p.in_h = p.in_w = 3;
  CHECK(nn_plan_build(&pl, &p, &err) == NN_EINVAL && strstr(err.msg, "too small"));
  /* 4096 channels: 4096 * 8192 * 9 for the downconv alone passes 2^28 stored values */
  p = params();
  p.channels = 4096;
  CHECK(nn_plan_build(&pl, &p, &err) == NN_EINVAL && strstr(err.msg, "stored values") &&
        strstr(err.msg, "the bound"));
  p = params();
  p.cell_a.m[1][1] = NN_OP_CONV3X3; /* a self-loop */
  CHECK(nn_plan_build(&pl, &p, &err) == NN_EINVAL);
}

int main(void) {
  NN_TEST_RUN(test_steps);
  NN_TEST_RUN(test_tensors_layers_lifs);
  NN_TEST_RUN(test_snasnet_names);
  NN_TEST_RUN(test_net_holds_plan);
  NN_TEST_RUN(test_errors);
  return NN_TEST_END();
}
