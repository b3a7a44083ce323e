/* nn_linear.c: the Linear layer's forward, y[n][out] = x[n][in] . w[out][in]^T + b[out].
 *
 * Every output is one chain of fused multiply-adds over the inputs in ascending order, started
 * from +0, with the bias added once at the end:
 *     acc = 0; for i = 0 .. in-1: acc = fmaf(x[j][i], w[o][i], acc); y[j][o] = acc + b[o].
 * That is the whole definition: no blocking, thread count, CPU or BLAS library changes a bit
 * (an FMA rounds once, on every CPU that has one and in libm's fmaf on those that do not), so the
 * classifier can be split over threads freely and its results are the same everywhere. A BLAS
 * sgemm cannot promise that: OpenBLAS gives an element a different float depending on where it
 * sits in the call (its micro-kernel tiles and tails accumulate differently).
 *
 * Layout of the fast paths: x is transposed once into xt[i][j] (samples padded with zeros to a
 * multiple of 16), so 16 samples of one input are one AVX-512 vector (two AVX2 ones) and a weight
 * w[o][i] is one broadcast; a register tile of 16*TJ samples x TO outputs (24 accumulators with
 * AVX-512, 12 with AVX2) runs the chains of
 * a block of IB inputs, then parks its partial sums (floats: continuing a chain from a stored
 * float is the same chain) and moves on. Inputs are blocked so that xt's block stays in L2 and
 * the weights' block is read once per 64 samples. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_ops.h"
#include "nn_scratch.h"

#define LIN_IB 512 /* inputs per block */

int64_t nn_linear_xt_stride(int64_t n) { return (n + 15) / 16 * 16; }

void nn_linear_xt(const float *x, int64_t n, int64_t in, int64_t lo, int64_t hi, float *xt) {
  const int64_t nj = nn_linear_xt_stride(n);
  for (int64_t i0 = lo; i0 < hi; i0 += 64) { /* 64 x 64 blocks: both sides stay in cache */
    const int64_t i1 = i0 + 64 < hi ? i0 + 64 : hi;
    for (int64_t j0 = 0; j0 < nj; j0 += 64)
      for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j0 + 64 && j < nj; j++) xt[i * nj + j] = j < n ? x[j * in + i] : 0.0f;
  }
}

/* The definition, one output at a time (any CPU). */
static void lin_chain(const float *xt, int64_t nj, int64_t n, int64_t in, const float *w, const float *b,
                      int64_t out, int64_t o0, int64_t o1, float *y) {
  for (int64_t o = o0; o < o1; o++)
    for (int64_t j = 0; j < n; j++) {
      float acc = 0.0f;
      for (int64_t i = 0; i < in; i++) acc = fmaf(xt[i * nj + j], w[o * in + i], acc);
      y[j * out + o] = b ? acc + b[o] : acc;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Chains of inputs [i0, i1) for samples xt[.][0 .. 16*TJ) and outputs w[0 .. TO) (rows of
 * length `in`), continuing from part[u * nj + j] (or from +0 when first). */
#define LIN_TILE(TJ, TO)                                                                           \
  __attribute__((target("avx512f"))) static void lin_tile_##TJ##_##TO(                             \
      const float *xt, int64_t nj, const float *w, int64_t in, int64_t i0, int64_t i1, float *part, \
      int first) {                                                                                 \
    __m512 acc[TO][TJ];                                                                            \
    for (int u = 0; u < TO; u++)                                                                   \
      for (int v = 0; v < TJ; v++)                                                                 \
        acc[u][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + u * nj + v * 16);        \
    for (int64_t i = i0; i < i1; i++) {                                                            \
      __m512 xv[TJ];                                                                               \
      for (int v = 0; v < TJ; v++) xv[v] = _mm512_loadu_ps(xt + i * nj + v * 16);                 \
      for (int u = 0; u < TO; u++) {                                                               \
        const __m512 wv = _mm512_set1_ps(w[u * in + i]);                                           \
        for (int v = 0; v < TJ; v++) acc[u][v] = _mm512_fmadd_ps(xv[v], wv, acc[u][v]);            \
      }                                                                                            \
    }                                                                                              \
    for (int u = 0; u < TO; u++)                                                                   \
      for (int v = 0; v < TJ; v++) _mm512_storeu_ps(part + u * nj + v * 16, acc[u][v]);          \
  }
LIN_TILE(4, 6)
LIN_TILE(3, 8)
LIN_TILE(2, 12)
LIN_TILE(1, 12)
LIN_TILE(4, 1)
LIN_TILE(3, 1)
LIN_TILE(2, 1)
LIN_TILE(1, 1)

/* The same with AVX2 and FMA (16 registers): 16 samples (two vectors) x TO outputs. */
#define LIN_TILE2(TO)                                                                              \
  __attribute__((target("avx2,fma"))) static void lin2_tile_##TO(                                  \
      const float *xt, int64_t nj, const float *w, int64_t in, int64_t i0, int64_t i1, float *part, \
      int first) {                                                                                 \
    __m256 acc[TO][2];                                                                             \
    for (int u = 0; u < TO; u++)                                                                   \
      for (int v = 0; v < 2; v++)                                                                  \
        acc[u][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(part + u * nj + v * 8);          \
    for (int64_t i = i0; i < i1; i++) {                                                            \
      const __m256 x0 = _mm256_loadu_ps(xt + i * nj), x1 = _mm256_loadu_ps(xt + i * nj + 8);       \
      for (int u = 0; u < TO; u++) {                                                               \
        const __m256 wv = _mm256_set1_ps(w[u * in + i]);                                           \
        acc[u][0] = _mm256_fmadd_ps(x0, wv, acc[u][0]);                                            \
        acc[u][1] = _mm256_fmadd_ps(x1, wv, acc[u][1]);                                            \
      }                                                                                            \
    }                                                                                              \
    for (int u = 0; u < TO; u++)                                                                   \
      for (int v = 0; v < 2; v++) _mm256_storeu_ps(part + u * nj + v * 8, acc[u][v]);              \
  }
LIN_TILE2(6)
LIN_TILE2(1)

typedef void (*lin_tile_fn)(const float *, int64_t, const float *, int64_t, int64_t, int64_t, float *, int);

/* 2: AVX-512, 1: AVX2 and FMA, 0: the plain chain */
static int lin_cpu_level(void) {
  static int level = -1;
  if (level < 0)
    level = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
  return level;
}
#else
static int lin_cpu_level(void) { return 0; }
#endif

static int lin_cap = 2;
void nn_linear_set_level(int max) { lin_cap = max < 0 ? 0 : max > 2 ? 2 : max; }
int nn_linear_level(void) { return lin_cpu_level() < lin_cap ? lin_cpu_level() : lin_cap; }

#if defined(__x86_64__) && defined(__GNUC__)

/* outputs [o0, o1) by register tiles; part[(o - o0) * nj + j] holds the partial sums */
static void lin_tiles(const float *xt, int64_t nj, int64_t n, int64_t in, const float *w, const float *b,
                      int64_t out, int64_t o0, int64_t o1, float *y, float *part, int level) {
  static const lin_tile_fn wide[5] = {NULL, lin_tile_1_12, lin_tile_2_12, lin_tile_3_8, lin_tile_4_6};
  static const lin_tile_fn one[5] = {NULL, lin_tile_1_1, lin_tile_2_1, lin_tile_3_1, lin_tile_4_1};
  for (int64_t i0 = 0; i0 < in; i0 += LIN_IB) {
    const int64_t i1 = i0 + LIN_IB < in ? i0 + LIN_IB : in;
    for (int64_t j0 = 0; j0 < nj;) {
      /* samples [j0, j0 + 16 tj) by outputs [o, o + to) */
      const int tj = level == 1 ? 1 : nj - j0 >= 64 ? 4 : (int)((nj - j0) / 16);
      const int to = level == 1 ? 6 : tj == 4 ? 6 : tj == 3 ? 8 : 12;
      for (int64_t o = o0; o < o1;) {
        const int wide_tile = o1 - o >= to;
        const lin_tile_fn f = level == 1 ? (wide_tile ? lin2_tile_6 : lin2_tile_1) : (wide_tile ? wide : one)[tj];
        f(xt + j0, nj, w + o * in, in, i0, i1, part + (o - o0) * nj + j0, i0 == 0);
        o += wide_tile ? to : 1;
      }
      j0 += 16 * tj;
    }
  }
  for (int64_t j = 0; j < n; j++)
    for (int64_t o = o0; o < o1; o++) {
      const float acc = part[(o - o0) * nj + j];
      y[j * out + o] = b ? acc + b[o] : acc;
    }
}
#endif

nn_status nn_linear_outputs(const float *xt, int64_t n, int64_t in, const float *w, const float *b, int64_t out,
                            int64_t o0, int64_t o1, float *y, nn_error *err) {
  const int64_t nj = nn_linear_xt_stride(n);
  if (n <= 0 || o1 <= o0) return NN_OK;
#if defined(__x86_64__) && defined(__GNUC__)
  const int level = nn_linear_level();
  if (level > 0 && in > 0) {
    float *part = nn_scratch_get((size_t)((o1 - o0) * nj) * sizeof *part);
    if (!part) return nn_fail(err, NN_ENOMEM, "linear: out of memory for %lld partial sums", (long long)((o1 - o0) * nj));
    lin_tiles(xt, nj, n, in, w, b, out, o0, o1, y, part, level);
    nn_scratch_put(part);
    return NN_OK;
  }
#endif
  (void)err;
  lin_chain(xt, nj, n, in, w, b, out, o0, o1, y);
  return NN_OK;
}

nn_status nn_linear(const float *x, int64_t n, int64_t in, const float *w, const float *b, int64_t out, float *y,
                    nn_error *err) {
  if (n <= 0 || out <= 0) return NN_OK;
  const int64_t nj = nn_linear_xt_stride(n);
  float *xt = nn_scratch_get((size_t)(nj * (in > 0 ? in : 1)) * sizeof *xt);
  if (!xt) return nn_fail(err, NN_ENOMEM, "linear: out of memory for a %lld x %lld input", (long long)n, (long long)in);
  nn_linear_xt(x, n, in, 0, in, xt);
  nn_status st = nn_linear_outputs(xt, n, in, w, b, out, 0, out, y, err);
  nn_scratch_put(xt);
  return st;
}

void nn_linear_ref(const float *x, int64_t n, int64_t in, const float *w, const float *b, int64_t out, float *y) {
  for (int64_t j = 0; j < n; j++)
    for (int64_t o = 0; o < out; o++) {
      double acc = b ? b[o] : 0;
      for (int64_t i = 0; i < in; i++) acc += (double)x[j * in + i] * w[o * in + i];
      y[j * out + o] = (float)acc;
    }
}
