/* test_space.c: search spaces (docs/model.md; docs/search.md): the NeuroNAS enumeration order,
 * SNASNet's sanity pass against hand cases and a reachability reference, sizes counted
 * independently, and the generator's distribution against exact enumerated probabilities. */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_space.h"
#include "nn_test.h"

static nn_cell parse(const char *text) {
  nn_cell c;
  nn_error err;
  memset(&c, 0, sizeof c);
  if (nn_cell_parse(text, NN_CELL_FORM_AUTO, &c, &err) != NN_OK) fprintf(stderr, "parse: %s\n", err.msg);
  return c;
}

static int is(const nn_cell *c, const char *text) {
  nn_cell want = parse(text);
  return nn_cell_equal(c, &want);
}

/* Alg. 1's loops: c01 outermost .. c23 innermost, codes skip=0 conv3x3=1 avgpool3x3=2. */
static void neuronas_order(void) {
  nn_error err;
  nn_space_params p = nn_space_params_default();
  nn_space *s = nn_space_new(&p, &err);
  CHECK(s != NULL);
  if (!s) return;
  int64_t size = 0;
  CHECK(nn_space_size(s, &size, NULL) == NN_OK && size == 729);
  int64_t i = 0;
  int bad = 0;
  for (int c01 = 0; c01 < 3; c01++)
    for (int c02 = 0; c02 < 3; c02++)
      for (int c03 = 0; c03 < 3; c03++)
        for (int c12 = 0; c12 < 3; c12++)
          for (int c13 = 0; c13 < 3; c13++)
            for (int c23 = 0; c23 < 3; c23++, i++) {
              char digits[7] = {(char)('0' + c01), (char)('0' + c02), (char)('0' + c03), (char)('0' + c12),
                                (char)('0' + c13), (char)('0' + c23), 0};
              nn_cell c, want = parse(digits);
              int64_t back = -2;
              if (nn_space_cell(s, i, &c, NULL) != NN_OK || !nn_cell_equal(&c, &want)) bad++;
              if (nn_space_index(s, &want, &back, NULL) != NN_OK || back != i) bad++;
            }
  CHECK(bad == 0);
  nn_cell c;
  CHECK(nn_space_cell(s, 0, &c, NULL) == NN_OK && is(&c, "skip skip skip skip skip skip"));
  CHECK(nn_space_cell(s, 1, &c, NULL) == NN_OK && is(&c, "skip skip skip skip skip conv3x3"));
  CHECK(nn_space_cell(s, 728, &c, NULL) == NN_OK && is(&c, "222222"));
  CHECK(nn_space_cell(s, 729, &c, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "space \"neuronas\": cell index 729 outside 0..728") == 0);
  CHECK(nn_space_cell(s, -1, &c, NULL) == NN_EINVAL);
  int64_t idx = 0;
  nn_cell outside = parse("zero skip skip skip skip skip");
  CHECK(nn_space_index(s, &outside, &idx, NULL) == NN_OK && idx == -1);
  outside = parse("0302 0030 3003 0000");
  CHECK(nn_space_index(s, &outside, &idx, NULL) == NN_OK && idx == -1);
  nn_space_free(s);
  nn_space_free(NULL);
}

static void presets_and_params(void) {
  nn_space_params p;
  nn_error err;
  CHECK(nn_space_preset("neuronas", 1, &p, &err) == NN_EINVAL);
  CHECK(nn_space_preset("darts", 0, &p, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "space \"darts\": expected \"neuronas\" or \"snasnet\"") == 0);
  CHECK(nn_space_preset("snasnet", 1, &p, NULL) == NN_OK && p.nops == 5 && p.sanity && p.backward);
  CHECK(p.ops[0] == NN_OP_ZERO && p.ops[4] == NN_OP_AVGPOOL3X3);
  nn_space_params q = nn_space_params_default();
  q.ops[1] = NN_OP_SKIP;
  CHECK(nn_space_new(&q, &err) == NULL && strcmp(err.msg, "space ops: item 2 repeats 'skip'") == 0);
  q = nn_space_params_default();
  q.sanity = 1;
  CHECK(nn_space_new(&q, &err) == NULL);
  q.nops = 0;
  CHECK(nn_space_new(&q, &err) == NULL);
}

/* Reference: a node set reachability by graph search (walks of any length), the meaning of
 * R = M + M^2 + M^3 + M^4 > 0 on a 4-node graph. */
static int reach_ref(const nn_cell *c, int from, int to) {
  int seen[4] = {0}, stack[16], n = 0;
  for (int k = 0; k < 4; k++)
    if (c->m[from][k]) {
      if (!seen[k]) stack[n++] = k;
      seen[k] = 1;
    }
  while (n) {
    int v = stack[--n];
    for (int k = 0; k < 4; k++)
      if (c->m[v][k] && !seen[k]) {
        seen[k] = 1;
        stack[n++] = k;
      }
  }
  return seen[to];
}

static int sanity_ref(nn_cell *c) {
  nn_cell orig = *c;
  int dead[4] = {0};
  for (int v = 0; v < 3; v++) dead[v] |= !reach_ref(&orig, v, 3);
  for (int v = 1; v < 4; v++) dead[v] |= !reach_ref(&orig, 0, v);
  for (int v = 0; v < 4; v++)
    if (dead[v])
      for (int k = 0; k < 4; k++) c->m[v][k] = c->m[k][v] = 0;
  return c->m[0][3] != 0;
}

static void sanity_hand(void) {
  /* docs/model.md example: every node on a 0->3 walk (0->1->2->3, 2->0): unchanged */
  nn_cell c = parse("0302 0030 3003 0000");
  CHECK(nn_cell_snasnet_sanity(&c) == 1 && is(&c, "0302 0030 3003 0000"));
  /* node 1 cannot reach the output: its edge 0->1 goes */
  c = parse("0103 0000 0000 0000");
  CHECK(nn_cell_snasnet_sanity(&c) == 1 && is(&c, "0003 0000 0000 0000"));
  /* node 2 is unreachable from the input: its edges 2->3 and 2->1 go, 1->3 too (1 unreachable) */
  c = parse("0003 0001 0103 0000");
  CHECK(nn_cell_snasnet_sanity(&c) == 1 && is(&c, "0003 0000 0000 0000"));
  /* backward edge 2->0 keeps node 2 alive when 0->2->... : 0->1->2->0 cycle, 2->3 */
  c = parse("0100 0010 1003 0000");
  CHECK(nn_cell_snasnet_sanity(&c) == 0 && is(&c, "0100 0010 1003 0000"));
  /* backward edge from the output 3->1 with 1 reaching nothing else: 1 is reachable (0->3->1)
   * but cannot reach 3, so 3->1 goes */
  c = parse("0004 0000 0000 0200");
  CHECK(nn_cell_snasnet_sanity(&c) == 1 && is(&c, "0004 0000 0000 0000"));
  /* no path 0 -> 3 at all: everything on the output side is zeroed and the draw is rejected */
  c = parse("0300 0000 0003 0000");
  CHECK(nn_cell_snasnet_sanity(&c) == 0 && is(&c, "0000 0000 0000 0000"));
}

/* The 9 outcomes of a pair in SNASNet's backward generator, coded independently:
 * 0 = no edge, 1..4 = forward op with SNASNet code 1..4, 5..8 = backward op code 1..4. */
static void pair_set(nn_cell *c, int k, int o) {
  int i = NN_CELL_EDGE_FROM[k], j = NN_CELL_EDGE_TO[k];
  c->m[i][j] = c->m[j][i] = 0;
  if (o >= 1 && o <= 4) c->m[i][j] = (uint8_t)nn_op_from_snasnet_code(o);
  if (o >= 5) c->m[j][i] = (uint8_t)nn_op_from_snasnet_code(o - 4);
}

static int pair_get(const nn_cell *c, int k) {
  int i = NN_CELL_EDGE_FROM[k], j = NN_CELL_EDGE_TO[k];
  if (c->m[i][j]) return nn_op_snasnet_code((nn_op)c->m[i][j]);
  if (c->m[j][i]) return 4 + nn_op_snasnet_code((nn_op)c->m[j][i]);
  return 0;
}

static void sanity_matches_ref_and_sizes(void) {
  /* all 9^6 drawable backward cells: the engine's pass equals the reference; count results */
  enum { RAW = 531441 };
  unsigned char *seen_b = calloc(RAW, 1), *seen_f = calloc(RAW, 1);
  double *prob = calloc(6 * 9, sizeof *prob);
  CHECK(seen_b && seen_f && prob);
  if (!seen_b || !seen_f || !prob) return;
  int bad = 0;
  int64_t nb = 0, nf = 0;
  double accepted = 0;
  for (int r = 0; r < RAW; r++) {
    nn_cell c, ref;
    memset(&c, 0, sizeof c);
    int o[6], x = r, fwd = 1;
    double w = 1;
    for (int k = 5; k >= 0; k--, x /= 9) {
      o[k] = x % 9;
      pair_set(&c, k, o[k]);
      fwd &= o[k] <= 4;
      w *= o[k] == 0 ? 0.2 : 0.1; /* P(zero) = 1/2*1/5 + 1/2*1/5; each directed op 1/2*1/5 */
    }
    ref = c;
    int ok = nn_cell_snasnet_sanity(&c), ok_ref = sanity_ref(&ref);
    if (ok != ok_ref || !nn_cell_equal(&c, &ref)) bad++;
    if (!ok) continue;
    int q = 0;
    for (int k = 0; k < 6; k++) q = q * 9 + pair_get(&c, k);
    if (!seen_b[q]) nb++, seen_b[q] = 1;
    if (fwd && !seen_f[q]) nf++, seen_f[q] = 1;
    accepted += w;
    for (int k = 0; k < 6; k++) prob[k * 9 + pair_get(&c, k)] += w;
  }
  CHECK(bad == 0);
  nn_space_params p;
  int64_t size = 0;
  nn_space *s;
  nn_space_preset("snasnet", 0, &p, NULL);
  s = nn_space_new(&p, NULL);
  CHECK(nn_space_size(s, &size, NULL) == NN_OK && size == nf);
  fprintf(stderr, "  snasnet forward: %lld cells\n", (long long)size);
  /* every listed cell is a fixed point of the pass, has edge 0->3, and indexes back */
  int badlist = 0;
  for (int64_t i = 0; i < size; i++) {
    nn_cell c, d;
    int64_t back;
    nn_space_cell(s, i, &c, NULL);
    d = c;
    if (!nn_cell_snasnet_sanity(&d) || !nn_cell_equal(&c, &d) || !nn_cell_is_forward(&c)) badlist++;
    if (nn_space_index(s, &c, &back, NULL) != NN_OK || back != i) badlist++;
  }
  CHECK(badlist == 0);
  nn_space_free(s);

  nn_space_preset("snasnet", 1, &p, NULL);
  s = nn_space_new(&p, NULL);
  CHECK(nn_space_size(s, &size, NULL) == NN_OK && size == nb);
  fprintf(stderr, "  snasnet backward: %lld cells\n", (long long)size);
  nn_cell dead = parse("0103 0000 0000 0000"); /* drawable, but the pass removes 0->1 */
  int64_t idx = 0;
  CHECK(nn_space_index(s, &dead, &idx, NULL) == NN_OK && idx == -1);
  dead = parse("0003 0000 0000 0000");
  CHECK(nn_space_index(s, &dead, &idx, NULL) == NN_OK && idx >= 0);

  /* the generator's per-pair marginals against the exact probabilities (conditioned on
   * acceptance), 200000 draws: within 5 standard errors */
  enum { N = 200000 };
  int *count = calloc(6 * 9, sizeof *count);
  nn_rng rng = nn_rng_seed(2022);
  int notin = 0;
  for (int t = 0; t < N; t++) {
    nn_cell c;
    int64_t i;
    if (nn_space_sample(s, &rng, &c, NULL) != NN_OK) notin++;
    for (int k = 0; k < 6; k++) count[k * 9 + pair_get(&c, k)]++;
    if (t < 2000 && (nn_space_index(s, &c, &i, NULL) != NN_OK || i < 0)) notin++;
  }
  CHECK(notin == 0);
  int off = 0;
  for (int k = 0; k < 54; k++) {
    double pk = prob[k] / accepted, emp = (double)count[k] / N;
    double se = sqrt(pk * (1 - pk) / N);
    if (fabs(emp - pk) > 5 * se + 1e-12) {
      off++;
      fprintf(stderr, "  pair %d outcome %d: %.5f vs exact %.5f\n", k / 9, k % 9, emp, pk);
    }
  }
  CHECK(off == 0);
  /* edge 0->3 always present: pair 03 outcomes are forward ops only */
  CHECK(count[2 * 9 + 0] == 0 && count[2 * 9 + 5] == 0);
  free(count);
  nn_space_free(s);
  free(seen_b);
  free(seen_f);
  free(prob);
}

static void sample_deterministic_and_uniform(void) {
  nn_space_params p = nn_space_params_default();
  nn_space *s = nn_space_new(&p, NULL);
  nn_rng a = nn_rng_seed(5), b = nn_rng_seed(5);
  int same = 1;
  for (int t = 0; t < 100; t++) {
    nn_cell x, y;
    nn_space_sample(s, &a, &x, NULL);
    nn_space_sample(s, &b, &y, NULL);
    same &= nn_cell_equal(&x, &y);
  }
  CHECK(same);
  /* chi-square over the 729 cells: 145800 draws, 728 dof (mean 728, sd 38.2): < mean + 5 sd */
  enum { DRAWS = 145800 };
  int *hist = calloc(729, sizeof *hist);
  nn_rng r = nn_rng_seed(11);
  for (int t = 0; t < DRAWS; t++) {
    nn_cell c;
    int64_t i = -1;
    nn_space_sample(s, &r, &c, NULL);
    nn_space_index(s, &c, &i, NULL);
    if (i >= 0) hist[i]++;
  }
  double chi = 0, e = DRAWS / 729.0;
  for (int i = 0; i < 729; i++) chi += (hist[i] - e) * (hist[i] - e) / e;
  CHECK(chi < 728 + 5 * 38.2);
  free(hist);
  nn_space_free(s);
}

static void custom_spaces(void) {
  nn_space_params p;
  memset(&p, 0, sizeof p);
  strcpy(p.name, "custom");
  p.ops[0] = NN_OP_ZERO;
  p.ops[1] = NN_OP_SKIP;
  p.ops[2] = NN_OP_CONV5X5;
  p.nops = 3;
  p.backward = 1;
  nn_space *s = nn_space_new(&p, NULL);
  int64_t size = 0;
  /* per pair: zero, 2 forward, 2 backward */
  CHECK(nn_space_size(s, &size, NULL) == NN_OK && size == 5 * 5 * 5 * 5 * 5 * 5);
  int bad = 0;
  for (int64_t i = 0; i < size; i++) {
    nn_cell c;
    int64_t back;
    nn_space_cell(s, i, &c, NULL);
    if (nn_space_index(s, &c, &back, NULL) != NN_OK || back != i) bad++;
  }
  CHECK(bad == 0);
  nn_cell c;
  nn_space_cell(s, 5 * 5 * 5 * 5 * 5 * 4, &c, NULL); /* pair 01 digit 4: backward conv5x5 */
  CHECK(is(&c, "zero zero zero zero zero zero | conv5x5 zero zero zero zero zero"));
  nn_space_free(s);
  p.ops[0] = NN_OP_CONV1X1; /* no zero: every pair carries an edge, one way or the other */
  s = nn_space_new(&p, NULL);
  CHECK(nn_space_size(s, &size, NULL) == NN_OK && size == 6 * 6 * 6 * 6 * 6 * 6);
  nn_cell z = parse("zero skip skip skip skip skip");
  int64_t idx = 0;
  CHECK(nn_space_index(s, &z, &idx, NULL) == NN_OK && idx == -1);
  nn_space_free(s);
}

int main(void) {
  NN_TEST_RUN(neuronas_order);
  NN_TEST_RUN(presets_and_params);
  NN_TEST_RUN(sanity_hand);
  NN_TEST_RUN(sanity_matches_ref_and_sizes);
  NN_TEST_RUN(sample_deterministic_and_uniform);
  NN_TEST_RUN(custom_spaces);
  return NN_TEST_END();
}
