/* test_rng.c: nn_rng against published SplitMix64 values and distribution checks. */
#include <string.h>

#include "neuronas/nn_rng.h"
#include "nn_test.h"

/* Vigna's splitmix64.c written out independently: state += golden; mix. */
static uint64_t splitmix_ref(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static void known_values(void) {
  /* published first outputs of SplitMix64: seed 0 -> 0xE220A8397B1DCDAF, seed 1 -> 0x910A2DEC89025CC1 */
  nn_rng r0 = nn_rng_seed(0), r1 = nn_rng_seed(1);
  CHECK(nn_rng_u64(&r0) == 0xE220A8397B1DCDAFULL);
  CHECK(nn_rng_u64(&r1) == 0x910A2DEC89025CC1ULL);
  /* and the whole stream follows the sequential reference */
  uint64_t x = 1;
  splitmix_ref(&x);
  for (int i = 0; i < 1000; i++) CHECK(nn_rng_u64(&r1) == splitmix_ref(&x));
  /* FNV-1a 64 of "a" (published test vector) */
  CHECK(nn_rng_fnv1a64("a") == 0xAF63DC4C8601EC8CULL);
  CHECK(nn_rng_fnv1a64("") == 0xCBF29CE484222325ULL);
}

static void split_independent(void) {
  nn_rng r = nn_rng_seed(42);
  nn_rng a = nn_rng_split(&r, "cellA.e01.conv"), b = nn_rng_split(&r, "cellA.e02.conv");
  nn_rng a2 = nn_rng_split(&r, "cellA.e01.conv");
  CHECK(a.key != b.key);
  CHECK(a.key == a2.key); /* same label, same stream: common random numbers */
  CHECK(nn_rng_u64(&a) == nn_rng_u64(&a2));
  CHECK(r.counter == 0); /* splitting does not advance the parent */
  nn_rng c = nn_rng_split_u64(&r, 1), d = nn_rng_split_u64(&r, 2);
  CHECK(c.key != d.key);
}

static void uniform_moments(void) {
  nn_rng r = nn_rng_seed(7);
  const int n = 200000, bins = 20;
  int hist[20] = {0};
  double s = 0, s2 = 0, chi = 0;
  for (int i = 0; i < n; i++) {
    double u = nn_rng_uniform(&r);
    CHECK(u >= 0 && u < 1);
    if (!(u >= 0 && u < 1)) return;
    hist[(int)(u * bins)]++;
    s += u;
    s2 += u * u;
  }
  for (int b = 0; b < bins; b++) {
    double e = (double)n / bins;
    chi += (hist[b] - e) * (hist[b] - e) / e;
  }
  /* 19 degrees of freedom: P(chi2 > 43.8) = 0.001 */
  CHECK(chi < 43.8);
  CHECK_NEAR(s / n, 0.5, 0.005);             /* sd of mean = 0.29/sqrt(n) = 6.5e-4 */
  CHECK_NEAR(s2 / n - (s / n) * (s / n), 1.0 / 12, 0.002);
}

static void normal_moments(void) {
  nn_rng r = nn_rng_seed(9);
  const int n = 200000;
  double s = 0, s2 = 0;
  for (int i = 0; i < n; i++) {
    double v = nn_rng_normal(&r);
    s += v;
    s2 += v * v;
  }
  CHECK_NEAR(s / n, 0.0, 0.01); /* sd of mean 2.2e-3 */
  CHECK_NEAR(s2 / n, 1.0, 0.02);
}

static void below_unbiased(void) {
  nn_rng r = nn_rng_seed(3);
  int cnt[7] = {0};
  const int n = 70000;
  double chi = 0;
  for (int i = 0; i < n; i++) {
    uint64_t v = nn_rng_below(&r, 7);
    CHECK(v < 7);
    if (v >= 7) return;
    cnt[v]++;
  }
  for (int b = 0; b < 7; b++) chi += (cnt[b] - 10000.0) * (cnt[b] - 10000.0) / 10000.0;
  CHECK(chi < 22.5); /* 6 dof, p = 0.001 */
  CHECK(nn_rng_below(&r, 1) == 0);
}

int main(void) {
  NN_TEST_RUN(known_values);
  NN_TEST_RUN(split_independent);
  NN_TEST_RUN(uniform_moments);
  NN_TEST_RUN(normal_moments);
  NN_TEST_RUN(below_unbiased);
  return NN_TEST_END();
}
