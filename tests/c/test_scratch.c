/* test_scratch.c: the forward pass's memory and spike plumbing: nn_scratch's per-thread block
 * cache (blocks come back, zeroed when asked, never shared while held; blocks put by another
 * thread are fine), the fitness score's keep_memory (a big net's pass buffers stay cached
 * between calls until released) and the fused LIF step that writes packed spikes (bit-identical to
 * nn_lif_step followed by nn_spikes_pack), with its unpacking. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_fitness.h"
#include "neuronas/nn_net.h"
#include "neuronas/nn_rng.h"
#include "nn_ops.h"
#include "nn_scratch.h"
#include "nn_test.h"

static void scratch_blocks(void) {
  /* held blocks are distinct and writable end to end; sizes from tiny to above the cache's minimum */
  static const size_t sz[] = {0, 1, 100, NN_SCRATCH_MIN - 1, NN_SCRATCH_MIN, 3 * NN_SCRATCH_MIN + 5, (size_t)5 << 20};
  enum { N = sizeof sz / sizeof *sz };
  for (int round = 0; round < 3; round++) { /* rounds 2 and 3 run on recycled blocks */
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
      p[i] = nn_scratch_get(sz[i]);
      CHECK(p[i] != NULL);
      if (p[i]) memset(p[i], 0x40 + i, sz[i]);
    }
    for (int i = 0; i < N; i++)
      for (size_t k = 0; p[i] && k < sz[i]; k += sz[i] / 7 + 1) CHECK(p[i][k] == 0x40 + i);
    for (int i = N - 1; i >= 0; i--) nn_scratch_put(p[i]);
  }
  /* zeroed: even a recycled block that held non-zero bytes */
  for (int round = 0; round < 2; round++) {
    size_t n = (size_t)1 << 20;
    unsigned char *z = nn_scratch_zeroed(n);
    CHECK(z != NULL);
    size_t nz = 0;
    for (size_t k = 0; z && k < n; k++) nz += z[k] != 0;
    CHECK(nz == 0);
    if (z) memset(z, 0xff, n);
    nn_scratch_put(z);
  }
  nn_scratch_put(NULL);
  nn_scratch_trim();
  nn_scratch_trim(); /* twice, and on an empty cache: no-ops */
}

static void *other_thread(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 4; i++) nn_scratch_put(blocks[i]); /* put where another thread got them */
  void *q = nn_scratch_get((size_t)1 << 20);             /* this thread's own cache */
  if (q) memset(q, 1, (size_t)1 << 20);
  nn_scratch_put(q);
  return NULL; /* the thread's cache is freed at exit (its pthread key destructor) */
}

static void scratch_threads(void) {
  void *b[4];
  for (int i = 0; i < 4; i++) {
    b[i] = nn_scratch_get(((size_t)1 << 18) * (size_t)(i + 1));
    CHECK(b[i] != NULL);
  }
  pthread_t t;
  CHECK(pthread_create(&t, NULL, other_thread, b) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

/* the calling thread's scratch budget (set_limit returns it; set it back) */
static size_t budget(void) {
  const size_t b = nn_scratch_set_limit(SIZE_MAX);
  nn_scratch_set_limit(b);
  return b;
}

/* keep_memory: the same score; the raised budget (and with it the pass's cached blocks) stays
 * after the call, and is given back by nn_fitness_release_memory or by a call without it. A net
 * big enough to raise the budget: the fashion preset at batch 512 (about 26 MB per map). */
static void keep_memory(void) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  p.timesteps = 2, p.seed = 5;
  nn_net *net = nn_net_new(&p, &err);
  nn_tensor *x = nn_tensor_new4(4, 512, p.in_ch, p.in_h, p.in_w, &err);
  CHECK(net != NULL && x != NULL);
  if (!net || !x) return;
  nn_rng r = nn_rng_seed(8);
  nn_tensor_normal(x, &r, 0.0f, 1.0f);
  const nn_tensor *b[1] = {x};
  const size_t base = budget();
  double plain, kept, again;
  nn_fitness_opts keep = {.keep_memory = 1}, no = {0};
  CHECK(nn_fitness_eval(net, b, 1, &no, &plain, NULL, &err) == NN_OK);
  CHECK(budget() == base); /* restored */
  CHECK(nn_fitness_eval(net, b, 1, &keep, &kept, NULL, &err) == NN_OK);
  CHECK(memcmp(&plain, &kept, sizeof kept) == 0);
#if !defined(__SANITIZE_ADDRESS__) /* the sanitizer build has no block cache, so no budget */
  CHECK(budget() > base);
#endif
  CHECK(nn_fitness_eval(net, b, 1, &keep, &again, NULL, &err) == NN_OK); /* on the kept blocks */
  CHECK(memcmp(&plain, &again, sizeof again) == 0);
  nn_fitness_release_memory();
  CHECK(budget() == base);
  nn_fitness_release_memory(); /* twice: a no-op */
  CHECK(budget() == base);
  /* a call without keep_memory ends a kept budget too */
  CHECK(nn_fitness_eval(net, b, 1, &keep, &again, NULL, &err) == NN_OK);
  CHECK(nn_fitness_eval(net, b, 1, &no, &again, NULL, &err) == NN_OK);
  CHECK(budget() == base);
  CHECK(memcmp(&plain, &again, sizeof again) == 0);
  nn_tensor_free(x);
  nn_net_free(net);
}

/* nn_lif_step_bits == nn_lif_step + nn_spikes_pack, bit for bit (state and spikes), over
 * several steps, sizes around the 64-neuron words, NaN and values on the threshold */
static void lif_bits_identical(void) {
  static const int64_t N[] = {1, 3, 63, 64, 65, 200, 1024};
  nn_rng r = nn_rng_seed(31);
  const float tau = 4.0f / 3.0f, thr = 1.0f;
  for (size_t a = 0; a < sizeof N / sizeof *N; a++) {
    const int64_t S = 3, n = N[a], cnt = S * n, words = nn_spike_words(n);
    float *v1 = calloc((size_t)cnt, sizeof *v1), *v2 = calloc((size_t)cnt, sizeof *v2);
    float *x = malloc((size_t)cnt * sizeof *x), *s = malloc((size_t)cnt * sizeof *s), *u = malloc((size_t)cnt * sizeof *u);
    uint64_t *b1 = malloc((size_t)(S * words) * sizeof *b1), *b2 = malloc((size_t)(S * words) * sizeof *b2);
    int64_t spikes = 0;
    for (int step = 0; step < 6; step++) {
      for (int64_t i = 0; i < cnt; i++) {
        float q = nn_rng_uniformf(&r);
        x[i] = 3.0f * nn_rng_uniformf(&r) - 1.0f;
        if (q < 0.02f) x[i] = NAN;
        else if (q < 0.06f) x[i] = tau; /* lands on the threshold from v = 0 */
      }
      int64_t f1 = nn_lif_step(v1, x, cnt, tau, thr, s, NULL);
      nn_spikes_pack(s, S, n, b1);
      if (step == 0) /* fresh: v2's contents must not matter */
        for (int64_t i = 0; i < cnt; i++) v2[i] = (i % 3) ? NAN : 5.0f;
      int64_t f2 = nn_lif_step_bits(v2, x, S, n, tau, thr, step == 0, b2);
      CHECK(f1 == f2);
      CHECK(memcmp(b1, b2, (size_t)(S * words) * sizeof *b1) == 0);
      CHECK(memcmp(v1, v2, (size_t)cnt * sizeof *v1) == 0); /* NaN states too: bytes, not values */
      nn_spikes_unpack(b2, S, n, u);
      CHECK(memcmp(s, u, (size_t)cnt * sizeof *s) == 0);
      spikes += f1;
    }
    CHECK(spikes > 0);
    free(v1), free(v2), free(x), free(s), free(u), free(b1), free(b2);
  }
}

int main(void) {
  NN_TEST_RUN(scratch_blocks);
  NN_TEST_RUN(scratch_threads);
  NN_TEST_RUN(keep_memory);
  NN_TEST_RUN(lif_bits_identical);
  return NN_TEST_END();
}
