/* test_activity.c: active crossbar reads (nn_activity) against a naive count, and the
 * crossbar-variation model's exact cases (nn_variation). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_activity.h"
#include "neuronas/nn_fitness.h"
#include "neuronas/nn_cell.h"
#include "neuronas/nn_quant.h"
#include "neuronas/nn_rng.h"
#include "neuronas/nn_variation.h"
#include "nn_test.h"

/* Random spike rows at the given rate, packed as nn_spike_call packs them. */
static uint64_t *rand_spikes(int64_t S, int64_t N, int64_t words, double rate, uint64_t seed) {
  uint64_t *b = calloc((size_t)(S * words), sizeof *b);
  nn_rng r = nn_rng_seed(seed);
  for (int64_t s = 0; s < S; s++)
    for (int64_t n = 0; n < N; n++)
      if (nn_rng_uniform(&r) < rate) b[s * words + n / 64] |= (uint64_t)1 << (n % 64);
  return b;
}

/* A count written out by hand: 1 sample, 1 channel, 4 x 4, one spike at (0, 0), k = 3: the
 * outputs whose window holds (0, 0) are (0,0), (0,1), (1,0), (1,1); stride 2 (outputs 2 x 2 at
 * input rows/cols -1..1 and 1..3): only output (0, 0). */
static void test_hand(void) {
  uint64_t bits[1] = {1};
  nn_activity_geom g = {.channels = 1, .height = 4, .width = 4, .k = 3, .stride = 1, .xbar = 64};
  int64_t a = -1, oh, ow, reads;
  CHECK(nn_activity_count(&g, bits, 1, 1, &a, NULL) == NN_OK && a == 4);
  CHECK(nn_activity_reads(&g, &oh, &ow, &reads, NULL) == NN_OK && oh == 4 && ow == 4 && reads == 16);
  g.stride = 2;
  CHECK(nn_activity_count(&g, bits, 1, 1, &a, NULL) == NN_OK && a == 1);
  CHECK(nn_activity_reads(&g, &oh, &ow, &reads, NULL) == NN_OK && oh == 2 && reads == 4);
  /* two row groups of one channel each (xbar 1): a spike in channel 1 only lights group 1 */
  uint64_t two[1] = {(uint64_t)1 << 16}; /* channel 1, (0, 0) */
  nn_activity_geom g2 = {.channels = 2, .height = 4, .width = 4, .k = 1, .stride = 1, .xbar = 1};
  CHECK(nn_activity_count(&g2, two, 1, 1, &a, NULL) == NN_OK && a == 1);
  CHECK(nn_activity_reads(&g2, &oh, &ow, &reads, NULL) == NN_OK && reads == 32);
}

static void test_fast_vs_naive(void) {
  const int64_t ks[] = {1, 3, 5, 7}, strides[] = {1, 2}, xbars[] = {1, 3, 4, 64};
  const double rates[] = {0.0, 0.01, 0.1, 0.5};
  int cases = 0;
  for (int ki = 0; ki < 4; ki++)
    for (int si = 0; si < 2; si++)
      for (int xi = 0; xi < 4; xi++)
        for (int ri = 0; ri < 4; ri++) {
          nn_activity_geom g = {.channels = 5, .height = 9, .width = 7, .k = ks[ki], .stride = strides[si],
                                .xbar = xbars[xi]};
          int64_t N = g.channels * g.height * g.width, words = (N + 63) / 64, S = 3;
          uint64_t *b = rand_spikes(S, N, words, rates[ri], 100 + (uint64_t)cases);
          int64_t fast = -1, ref = -2;
          CHECK(nn_activity_count(&g, b, S, words, &fast, NULL) == NN_OK);
          CHECK(nn_activity_count_ref(&g, b, S, words, &ref, NULL) == NN_OK);
          CHECK(fast == ref);
          if (rates[ri] == 0.0) CHECK(fast == 0);
          free(b);
          cases++;
        }
  CHECK(cases == 128);
}

static void test_bad_geometry(void) {
  nn_error err;
  uint64_t bits[1] = {0};
  int64_t a;
  nn_activity_geom g = {.channels = 1, .height = 4, .width = 4, .k = 3, .stride = 0, .xbar = 64};
  CHECK(nn_activity_count(&g, bits, 1, 1, &a, &err) == NN_EINVAL && strstr(err.msg, "stride"));
  g.stride = 1;
  g.channels = 5; /* 80 spikes need 2 words */
  CHECK(nn_activity_count(&g, bits, 1, 1, &a, &err) == NN_EINVAL && strstr(err.msg, "words"));
}

/* ---- a net: the counts nn_activity_net reports equal the naive count of the spikes the
 * forward hands its observer, layer by layer ---- */
typedef struct rec {
  const nn_net *net;
  int64_t active[64], reads[64];
} rec;

static void record(void *ud, const nn_spike_call *c) {
  rec *r = ud;
  for (size_t i = 0; i < nn_net_layer_count(r->net); i++) {
    const nn_layer_desc *d = nn_net_layer(r->net, i);
    char want[80];
    const char *dot = strrchr(d->name, '.');
    snprintf(want, sizeof want, "%.*s.lif", (int)(dot - d->name), d->name);
    if (strcmp(want, c->module) != 0 || strcmp(d->name, "classifier.fc1") == 0) continue;
    nn_activity_geom g = {.channels = d->in_ch, .height = d->in_dim, .width = d->in_dim, .k = d->k,
                          .stride = d->stride, .xbar = 16};
    int64_t a = 0, oh, ow, reads;
    nn_activity_count_ref(&g, c->bits, c->samples, c->words, &a, NULL);
    nn_activity_reads(&g, &oh, &ow, &reads, NULL);
    r->active[i] += a;
    r->reads[i] += reads * c->samples;
  }
}

static void test_net(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  CHECK(nn_cell_parse("101021", NN_CELL_FORM_AUTO, &p.cell_a, &err) == NN_OK);
  CHECK(nn_cell_parse("111111", NN_CELL_FORM_AUTO, &p.cell_b, &err) == NN_OK);
  p.timesteps = 2;
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;
  nn_rng r = nn_rng_seed(7);
  nn_tensor *x = nn_tensor_new4(4, 4, 1, 28, 28, NULL);
  nn_tensor_normal(x, &r, 0, 1);
  const nn_tensor *xs[1] = {x};
  size_t n = nn_net_layer_count(net);
  nn_activity_layer ls[64];
  float before = nn_tensor_cdata(nn_net_tensor_find(net, "stem.bn.running_mean"))[0];
  CHECK(nn_activity_net(net, xs, 1, 16, ls, &err) == NN_OK);
  CHECK(nn_tensor_cdata(nn_net_tensor_find(net, "stem.bn.running_mean"))[0] == before); /* untouched */
  nn_net *clone = nn_net_clone(net, &err);
  rec want = {.net = net};
  nn_forward_opts o = {.train = 1, .on_spikes = record, .ud = &want, .spikes_only = 1};
  nn_tensor *out = NULL;
  CHECK(nn_net_forward(clone, x, &o, &out, &err) == NN_OK);
  nn_tensor_free(out);
  int measured = 0;
  for (size_t i = 0; i < n; i++) {
    const nn_layer_desc *d = nn_net_layer(net, i);
    if (ls[i].measured) {
      measured++;
      CHECK(ls[i].active == want.active[i] && ls[i].reads == want.reads[i]);
      CHECK(ls[i].reads > 0 && ls[i].active <= ls[i].reads);
    } else {
      /* unmeasured: every read active, S T out^2 ceil(C / X) */
      CHECK(ls[i].active == ls[i].reads);
      CHECK(ls[i].reads == 4 * 2 * d->out_dim * d->out_dim * ((d->in_ch + 15) / 16));
    }
  }
  /* cell A 101021 has 3 convs, cell B 111111 has 6, plus downconv and fc2; stem and fc1 are not */
  CHECK(measured == 11);
  CHECK(!ls[0].measured && !strcmp(nn_net_layer(net, 0)->name, "stem.conv"));
  nn_net_free(clone);
  nn_tensor_free(x);
  nn_net_free(net);
}

/* ---- counted in the fitness score's forward (nn_fitness_opts.on_spikes): the counts of
 * nn_activity_net, the score unchanged, also when the prefix cache holds the prefix ---- */
static void test_fitness_observer(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  CHECK(nn_cell_parse("101021", NN_CELL_FORM_AUTO, &p.cell_a, &err) == NN_OK);
  CHECK(nn_cell_parse("120021", NN_CELL_FORM_AUTO, &p.cell_b, &err) == NN_OK);
  p.timesteps = 2;
  nn_net *net = nn_net_new(&p, &err);
  CHECK(net != NULL);
  if (!net) return;
  nn_rng r = nn_rng_seed(9);
  nn_tensor *x = nn_tensor_new4(4, 6, 1, 28, 28, NULL);
  nn_tensor *x2 = nn_tensor_new4(4, 6, 1, 28, 28, NULL);
  nn_tensor_normal(x, &r, 0, 1);
  nn_tensor_normal(x2, &r, 0, 1);
  const nn_tensor *xs[2] = {x, x2};
  size_t n = nn_net_layer_count(net);
  nn_activity_layer want[64], got[64];
  CHECK(nn_activity_net(net, xs, 1, 16, want, &err) == NN_OK); /* the first batch only */
  double plain, score;
  CHECK(nn_fitness_eval(net, xs, 2, NULL, &plain, NULL, &err) == NN_OK);
  nn_fitness_cache *cache = nn_fitness_cache_new(NULL, &err);
  nn_fitness_opts warm = {.cache = cache};
  CHECK(nn_fitness_eval(net, xs, 2, &warm, &score, NULL, &err) == NN_OK); /* both prefixes cached */
  CHECK(nn_fitness_cache_stats_of(cache).entries == 2);
  for (int round = 0; round < 3; round++) { /* the cache holds the prefixes; round 2: 2 threads */
    nn_activity_counter *c = nn_activity_counter_new(net, 6, 16, got, &err);
    CHECK(c != NULL);
    if (!c) break;
    nn_fitness_opts o = {.cache = cache, .threads = round == 2 ? 2 : 0, .on_spikes = nn_activity_observe,
                         .spikes_ud = c};
    CHECK(nn_fitness_eval(net, xs, 2, &o, &score, NULL, &err) == NN_OK);
    CHECK(nn_activity_counter_status(c, &err) == NN_OK);
    nn_activity_counter_free(c);
    CHECK(score == plain);
    for (size_t i = 0; i < n; i++)
      CHECK(got[i].active == want[i].active && got[i].reads == want[i].reads && got[i].measured == want[i].measured);
  }
  /* into an empty cache, the observed batch's prefix is computed and stored too, so a later call
   * without an observer takes both prefixes from the cache */
  nn_fitness_cache *fresh = nn_fitness_cache_new(NULL, &err);
  nn_activity_counter *c = nn_activity_counter_new(net, 6, 16, got, &err);
  nn_fitness_opts first = {.cache = fresh, .on_spikes = nn_activity_observe, .spikes_ud = c};
  CHECK(c != NULL && nn_fitness_eval(net, xs, 2, &first, &score, NULL, &err) == NN_OK);
  nn_activity_counter_free(c);
  CHECK(score == plain);
  CHECK(nn_fitness_cache_stats_of(fresh).entries == 2 && nn_fitness_cache_stats_of(fresh).hits == 0);
  nn_fitness_opts later = {.cache = fresh};
  CHECK(nn_fitness_eval(net, xs, 2, &later, &score, NULL, &err) == NN_OK);
  CHECK(score == plain && nn_fitness_cache_stats_of(fresh).hits == 2);
  nn_fitness_cache_free(fresh);
  /* a bad counter is refused */
  CHECK(nn_activity_counter_new(net, 0, 16, got, &err) == NULL && strstr(err.msg, "samples"));
  CHECK(nn_activity_counter_new(net, 6, 0, got, &err) == NULL && strstr(err.msg, "xbar"));
  nn_fitness_cache_free(cache);
  nn_tensor_free(x);
  nn_tensor_free(x2);
  nn_net_free(net);
}

/* ---- variation: exact cases ---- */
static void test_variation_exact(void) {
  /* FxP6, max 0.90625: i = floor(log2 0.90625) + 2 = 1, f = 5, step 1/32 */
  float w[6] = {0.90625f, -0.5f, 0.03125f, 0.0f, -0.28125f, 0.15625f}; /* codes 29 -16 1 0 -9 5 */
  float v[6];
  nn_variation_params p = nn_variation_params_default();
  nn_variation_stats st;
  double step;
  CHECK(nn_variation_grid(w, 6, 6, "t", &step, NULL) == NN_OK && step == 1.0 / 32);
  for (int d = 1; d <= 6; d++) { /* sigma 0: the split into cells and back is exact */
    memcpy(v, w, sizeof v);
    p.device_bits = d;
    CHECK(nn_variation_array(&p, 6, "t", 1, v, 6, &st, NULL) == NN_OK);
    CHECK(memcmp(v, w, sizeof v) == 0);
    CHECK(st.cells == 6 * ((6 + d - 1) / d) && st.stuck == 0);
  }
  /* every cell stuck high: |code| becomes 2^(w d) - 1 for every weight, sign kept (0 counts +) */
  p.stuck = 1;
  p.stuck_high = 1;
  p.device_bits = 4; /* 2 cells of 4 bits: 255 */
  memcpy(v, w, sizeof v);
  CHECK(nn_variation_array(&p, 6, "t", 1, v, 6, &st, NULL) == NN_OK && st.stuck == 12);
  const float want[6] = {255.0f / 32, -255.0f / 32, 255.0f / 32, 255.0f / 32, -255.0f / 32, 255.0f / 32};
  CHECK(memcmp(v, want, sizeof v) == 0);
  p.stuck_high = 0; /* all stuck low: every weight 0 */
  memcpy(v, w, sizeof v);
  CHECK(nn_variation_array(&p, 6, "t", 1, v, 6, &st, NULL) == NN_OK);
  for (int i = 0; i < 6; i++) CHECK(v[i] == 0.0f);
  /* not on an FxP-6 grid */
  nn_error err;
  float bad[2] = {0.3f, 0.1f};
  CHECK(nn_variation_array(&p, 6, "layer.x", 1, bad, 2, &st, &err) == NN_EINVAL && strstr(err.msg, "layer.x"));
  p.sigma = -1;
  CHECK(nn_variation_array(&p, 6, "t", 1, v, 6, &st, &err) == NN_EINVAL && strstr(err.msg, "sigma"));
}

int main(void) {
  NN_TEST_RUN(test_hand);
  NN_TEST_RUN(test_fast_vs_naive);
  NN_TEST_RUN(test_bad_geometry);
  NN_TEST_RUN(test_net);
  NN_TEST_RUN(test_fitness_observer);
  NN_TEST_RUN(test_variation_exact);
  return NN_TEST_END();
}
