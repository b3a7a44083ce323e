/* test_fitness_threads.c: one candidate scored on several threads (docs/performance.md, "Fitness
 * at paper size"): the worker team covers every index exactly once, the kernel split over row
 * blocks equals the one-thread kernel bit for bit (and the naive twin to rounding), and a
 * forward pass or a fitness score with 2 or 3 threads gives every spike, logit, kernel entry and
 * score of the one-thread run, on event-driven and dense convs, with and without a prefix cache.
 * The one-thread results are themselves pinned to SNASNet's fixture by test_net_fixture.c and
 * test_qafe.c. */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_cell.h"
#include "neuronas/nn_fitness.h"
#include "neuronas/nn_rng.h"
#include "nn_fitness_impl.h"
#include "nn_par.h"
#include "nn_test.h"

/* ---- the team ---- */
typedef struct cover {
  int *hits;
  int64_t grain, bad_starts;
} cover;

static void mark(void *ctx, int64_t lo, int64_t hi) {
  cover *c = ctx;
  if (lo % c->grain) __atomic_fetch_add(&c->bad_starts, 1, __ATOMIC_RELAXED);
  for (int64_t i = lo; i < hi; i++) __atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
}

static void par_covers_once(void) {
  CHECK(nn_par_new(1) == NULL && nn_par_threads(NULL) == 1);
  for (int threads = 2; threads <= 5; threads++) {
    nn_par *p = nn_par_new(threads);
    CHECK(p != NULL && nn_par_threads(p) == threads);
    static const int64_t sizes[] = {1, 2, 7, 64, 1000, 4099};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
      for (int64_t grain = 1; grain <= 16; grain *= 4) {
        const int64_t n = sizes[s];
        cover c = {calloc((size_t)n, sizeof(int)), grain, 0};
        for (int rep = 0; rep < 3; rep++) nn_par_for(p, n, grain, mark, &c); /* the team is reused */
        int ok = 1;
        for (int64_t i = 0; i < n; i++) ok &= c.hits[i] == 3;
        CHECK(ok);
        CHECK(c.bad_starts == 0);
        free(c.hits);
      }
    nn_par_free(p);
  }
  nn_par_free(NULL);
}

/* ---- the kernel ---- */
static void kernel_rows_split(void) {
  static const int64_t shapes[][2] = {{37, 200}, {64, 4096}, {5, 64}, {2, 1}};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    const int64_t S = shapes[s][0], N = shapes[s][1], W = (N + 63) / 64;
    uint64_t *bits = calloc((size_t)(S * W), sizeof *bits);
    nn_rng r = nn_rng_seed(11 + s);
    for (int64_t i = 0; i < S; i++)
      for (int64_t n = 0; n < N; n++)
        if (nn_rng_uniform(&r) < 0.2) bits[i * W + n / 64] |= (uint64_t)1 << (n % 64);
    nn_kernel *one = nn_kernel_new(S, NULL), *ref = nn_kernel_new(S, NULL);
    nn_spike_call c = {"t.lif", 0, S, N, W, bits, 0};
    for (int call = 0; call < 3; call++) {
      CHECK(nn_kernel_add(one, &c, NULL) == NN_OK);
      CHECK(nn_kernel_add_ref(ref, &c, NULL) == NN_OK);
    }
    for (int threads = 2; threads <= 3; threads++) {
      nn_par *p = nn_par_new(threads);
      nn_kernel *k = nn_kernel_new(S, NULL);
      for (int call = 0; call < 3; call++) CHECK(nn_kernel_add_par(k, &c, p, NULL) == NN_OK);
      CHECK(nn_kernel_calls(k) == 3);
      CHECK(memcmp(nn_kernel_values(k), nn_kernel_values(one), (size_t)(S * S) * sizeof(double)) == 0);
      nn_kernel_free(k);
      nn_par_free(p);
    }
    double worst = 0; /* the naive twin sums the same terms: equal to rounding */
    for (int64_t i = 0; i < S * S; i++) {
      double d = fabs(nn_kernel_values(one)[i] - nn_kernel_values(ref)[i]);
      if (d > worst) worst = d;
    }
    CHECK(worst <= 1e-9 * (double)N);
    nn_kernel_free(one);
    nn_kernel_free(ref);
    free(bits);
  }
}

/* ---- whole nets ---- */
typedef struct trace {
  uint64_t h;    /* FNV-1a over every call's module, step and bits */
  int64_t calls, fired;
} trace;

static void on_spikes(void *ud, const nn_spike_call *c) {
  trace *t = ud;
  const unsigned char *p = (const unsigned char *)c->bits;
  for (size_t i = 0; i < (size_t)(c->samples * c->words) * sizeof *c->bits; i++) t->h = (t->h ^ p[i]) * 0x100000001B3ull;
  for (const char *m = c->module; *m; m++) t->h = (t->h ^ (unsigned char)*m) * 0x100000001B3ull;
  t->h = (t->h ^ (uint64_t)c->step) * 0x100000001B3ull;
  t->calls++;
  t->fired += c->fired;
}

/* A small cifar-shaped net (24 / 48 channels: BatchNorm splits at multiples of 16, so pieces of
 * 16 and 8 channels take the AVX2 and the scalar statistics; 16x16 inputs) with every op,
 * backward edges included. */
static nn_net *small_net(const char *cell_b, nn_conv_mode mode) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  nn_net_params_preset(&p, "cifar100", &err);
  p.channels = 24, p.in_h = p.in_w = 16, p.fc_width = 64;
  if (nn_cell_parse("0302 0030 3003 0000", NN_CELL_FORM_AUTO, &p.cell_a, &err) != NN_OK ||
      nn_cell_parse(cell_b, NN_CELL_FORM_AUTO, &p.cell_b, &err) != NN_OK)
    return NULL;
  nn_net *net = nn_net_new(&p, &err);
  if (net) nn_net_set_conv_mode(net, mode);
  return net;
}

static nn_tensor *batch(int64_t S, uint64_t seed) {
  nn_rng r = nn_rng_seed(seed);
  nn_tensor *x = nn_tensor_new4(4, S, 3, 16, 16, NULL);
  if (x) nn_tensor_normal(x, &r, 0, 1.5);
  return x;
}

static void forward_same_bits(void) {
  static const nn_conv_mode modes[] = {NN_CONV_EVENTS, NN_CONV_DENSE, NN_CONV_AUTO};
  nn_tensor *x = batch(13, 3); /* 13 samples: pieces of unequal size */
  for (size_t m = 0; m < 3; m++) {
    nn_net *net = small_net("0214 3003 1401 2130", modes[m]);
    CHECK(net != NULL);
    if (!net) continue;
    nn_tensor *out1 = NULL;
    trace t1 = {0xcbf29ce484222325ull, 0, 0};
    nn_forward_opts o = {.train = 1, .on_spikes = on_spikes, .ud = &t1};
    nn_net *keep = nn_net_clone(net, NULL); /* running statistics before the pass */
    CHECK(nn_net_forward(net, x, &o, &out1, NULL) == NN_OK);
    CHECK(t1.calls > 0 && t1.fired > 0);
    for (int threads = 2; threads <= 3; threads++) {
      nn_net *n2 = nn_net_clone(keep, NULL);
      nn_tensor *out = NULL;
      trace t = {0xcbf29ce484222325ull, 0, 0};
      nn_forward_opts ot = {.train = 1, .on_spikes = on_spikes, .ud = &t, .threads = threads};
      CHECK(nn_net_forward(n2, x, &ot, &out, NULL) == NN_OK);
      CHECK(t.h == t1.h && t.calls == t1.calls && t.fired == t1.fired);
      CHECK(out && out1 && memcmp(nn_tensor_cdata(out), nn_tensor_cdata(out1),
                                  (size_t)nn_tensor_numel(out1) * sizeof(float)) == 0);
      /* the BN running statistics move the same way */
      int same = 1;
      for (size_t i = 0; i < nn_net_tensor_count(net); i++)
        same &= memcmp(nn_tensor_cdata(nn_net_tensor(net, i)), nn_tensor_cdata(nn_net_tensor(n2, i)),
                       (size_t)nn_tensor_numel(nn_net_tensor(net, i)) * sizeof(float)) == 0;
      CHECK(same);
      nn_tensor_free(out);
      nn_net_free(n2);
    }
    nn_forward_opts bad = {.train = 1, .threads = 65};
    nn_error err;
    nn_tensor *none = NULL;
    CHECK(nn_net_forward(net, x, &bad, &none, &err) == NN_EINVAL && none == NULL);
    CHECK(strstr(err.msg, "threads=65 outside 0..64") != NULL);
    nn_tensor_free(out1);
    nn_net_free(keep);
    nn_net_free(net);
  }
  nn_tensor_free(x);
}

static void fitness_same_bits(void) {
  nn_tensor *x1 = batch(13, 5), *x2 = batch(13, 6);
  const nn_tensor *b[2] = {x1, x2};
  static const char *cells_b[] = {"0214 3003 1401 2130", "0330 0033 0003 0000"};
  for (int m = 0; m < 2; m++) {
    nn_net *net = small_net(cells_b[0], m ? NN_CONV_DENSE : NN_CONV_AUTO);
    CHECK(net != NULL);
    if (!net) continue;
    double s1, s;
    nn_fitness_diag d1, d;
    nn_kernel *k1[2] = {NULL, NULL}, *k[2] = {NULL, NULL};
    nn_fitness_opts o1 = {.kernels = k1};
    CHECK(nn_fitness_eval(net, b, 2, &o1, &s1, &d1, NULL) == NN_OK);
    CHECK(isfinite(s1));
    for (int threads = 2; threads <= 3; threads++) {
      nn_fitness_opts o = {.kernels = k, .threads = threads};
      CHECK(nn_fitness_eval(net, b, 2, &o, &s, &d, NULL) == NN_OK);
      CHECK(memcmp(&s, &s1, sizeof s) == 0);
      CHECK(memcmp(d.scores, d1.scores, sizeof d.scores) == 0 && d.lif_calls == d1.lif_calls);
      for (int r = 0; r < 2; r++) {
        CHECK(k[r] && memcmp(nn_kernel_values(k[r]), nn_kernel_values(k1[r]), 13 * 13 * sizeof(double)) == 0);
        nn_kernel_free(k[r]);
        k[r] = NULL;
      }
    }
    /* stage 2: a cached prefix scored on 2 threads, a second cell B through the same cache */
    nn_fitness_cache *c = nn_fitness_cache_new(NULL, NULL);
    nn_net *other = small_net(cells_b[1], m ? NN_CONV_DENSE : NN_CONV_AUTO);
    double so1, so2;
    nn_fitness_opts plain = {.threads = 1}, two = {.cache = c, .threads = 2};
    CHECK(nn_fitness_eval(other, b, 2, &plain, &so1, NULL, NULL) == NN_OK);
    CHECK(nn_fitness_eval(net, b, 2, &two, &s, NULL, NULL) == NN_OK && memcmp(&s, &s1, sizeof s) == 0);
    CHECK(nn_fitness_eval(other, b, 2, &two, &so2, &d, NULL) == NN_OK && d.cache_hits == 2);
    CHECK(memcmp(&so1, &so2, sizeof so1) == 0);
    nn_fitness_opts bad = {.threads = 65};
    nn_error err;
    CHECK(nn_fitness_eval(net, b, 2, &bad, &s, NULL, &err) == NN_EINVAL);
    CHECK(strstr(err.msg, "threads=65 outside 0..64") != NULL);
    nn_fitness_cache_free(c);
    for (int r = 0; r < 2; r++) nn_kernel_free(k1[r]);
    nn_net_free(other);
    nn_net_free(net);
  }
  nn_tensor_free(x1);
  nn_tensor_free(x2);
}

int main(void) {
  NN_TEST_RUN(par_covers_once);
  NN_TEST_RUN(kernel_rows_split);
  NN_TEST_RUN(forward_same_bits);
  NN_TEST_RUN(fitness_same_bits);
  return NN_TEST_END();
}
