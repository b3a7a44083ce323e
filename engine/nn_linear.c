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
#include "nn_simd.h"

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

/* ---- The sparse path: the same chains with the terms of x == 0 left out ----
 *
 * Leaving out a term x[j][i] = 0 keeps every bit when w[o][i] is finite: the term is
 * fma(0, w, acc) = acc + (+-0), which is acc exactly unless acc is -0 (then +0 when w >= +0).
 * A chain started from +0 becomes -0 only through a negative product that rounds to zero (at
 * most 2^-150 in size), and the two chains, with and without the zero terms, then differ at
 * most in the sign of a zero accumulator, the shortened one holding -0 where the full one may
 * hold +0: a listed term or the bias gives both the same value again unless it is zero too. So
 * an output whose shortened chain ends at -0 (almost never) is computed again by the full
 * chain, and every other output is the full chain's bit for bit. With an infinite or NaN
 * weight, 0 * w is NaN: callers check the weights first (nn_linear_wt does).
 *
 * Layout: wt holds the weights transposed into tiles of NN_LINEAR_WT_TILE outputs,
 * wt[(t * in + i) * TILE + u] = w[t * TILE + u][i] (outputs past `out` are 0), so the weights of
 * one input for a tile are 512 contiguous bytes; tm[at[j] + k], k < cnt[j], lists row j's
 * terms (input, value) with x != 0 in ascending order. A row's chains for a tile run along its
 * list with 8 AVX-512 accumulators (128 outputs; two passes of 8 AVX2 ones, 64 outputs each;
 * the plain fmaf chain otherwise). Each FMA loads its own 64 bytes of wt, so the kernel runs at
 * the speed wt comes from: inputs are blocked by LIN_SP_IB so that the tile's block of wt
 * (32 KB) stays in L1 while every row of the call runs through it, the partial sums parked as
 * floats between blocks (measured on the 32 x 2048 -> 1024 call: 64 inputs beat 32, 128 and
 * 1024, the last an L2-sized block), and the next block is fetched while one runs. */
#define LIN_SP_TO NN_LINEAR_WT_TILE
#ifndef LIN_SP_IB
#define LIN_SP_IB 64 /* inputs per block: 32 KB of wt */
#endif

int64_t nn_linear_wt_floats(int64_t in, int64_t out) { return (out + LIN_SP_TO - 1) / LIN_SP_TO * LIN_SP_TO * in; }

#if defined(__x86_64__) && defined(__GNUC__)
/* d[k * ld + j] = s[j * ls + k] for j, k < 16 (a 16 x 16 block of floats transposed in
 * registers); returns a nonzero mask when one of them is Inf or NaN */
__attribute__((target("avx512f"))) static uint32_t tr16(const float *s, int64_t ls, float *d, int64_t ld) {
  const __m512i em = _mm512_set1_epi32(0x7f800000);
  __m512 r[16];
  __mmask16 bad = 0;
  for (int k = 0; k < 16; k++) {
    r[k] = _mm512_loadu_ps(s + k * ls);
    bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(r[k]), em), em);
  }
  nn_transpose16(r);
  for (int k = 0; k < 16; k++) _mm512_storeu_ps(d + k * ld, r[k]);
  return bad;
}
#endif

int nn_linear_wt(const float *w, int64_t in, int64_t out, int64_t t0, int64_t t1, float *wt) {
  uint32_t bad = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (nn_linear_level() == 2) { /* 16 x 16 blocks in registers, the edges one by one */
    for (int64_t t = t0; t < t1; t++) {
      const int64_t ob = t * LIN_SP_TO, nu = out - ob < LIN_SP_TO ? out - ob : LIN_SP_TO;
      const int64_t u16 = nu / 16 * 16, i16 = in / 16 * 16;
      float *d = wt + t * in * LIN_SP_TO;
      for (int64_t u0 = 0; u0 < u16; u0 += 16)
        for (int64_t i0 = 0; i0 < i16; i0 += 16) bad |= tr16(w + (ob + u0) * in + i0, in, d + i0 * LIN_SP_TO + u0, LIN_SP_TO);
      for (int64_t u = 0; u < LIN_SP_TO; u++)
        for (int64_t i = u < u16 ? i16 : 0; i < in; i++) {
          const float v = u < nu ? w[(ob + u) * in + i] : 0.0f;
          bad |= !isfinite(v);
          d[i * LIN_SP_TO + u] = v;
        }
    }
    return !bad;
  }
#endif
  for (int64_t t = t0; t < t1; t++) {
    float *restrict d = wt + t * in * LIN_SP_TO;
    const int64_t ob = t * LIN_SP_TO, nu = out - ob < LIN_SP_TO ? out - ob : LIN_SP_TO;
    for (int64_t i0 = 0; i0 < in; i0 += 16) { /* 16 inputs x 128 outputs (8 KB) at a time */
      const int64_t i1 = i0 + 16 < in ? i0 + 16 : in;
      for (int64_t u = 0; u < nu; u++) {
        const float *restrict s = w + (ob + u) * in;
        for (int64_t i = i0; i < i1; i++) {
          uint32_t e;
          memcpy(&e, s + i, sizeof e);
          bad |= (e & 0x7f800000u) == 0x7f800000u; /* Inf or NaN */
          d[i * LIN_SP_TO + u] = s[i];
        }
      }
      for (int64_t u = nu; u < LIN_SP_TO; u++)
        for (int64_t i = i0; i < i1; i++) d[i * LIN_SP_TO + u] = 0.0f;
    }
  }
  return !bad;
}

int64_t nn_linear_count(const float *x, int64_t in, int64_t j0, int64_t j1, int64_t *cnt) {
  int64_t total = 0;
  for (int64_t j = j0; j < j1; j++) {
    const float *restrict r = x + j * in;
    int64_t k = 0;
    for (int64_t i = 0; i < in; i++) k += r[i] != 0.0f;
    cnt[j] = k;
    total += k;
  }
  return total;
}

int64_t nn_linear_terms_at(const int64_t *cnt, int64_t n, int64_t *at) {
  int64_t k = 0;
  for (int64_t j = 0; j < n; j++) at[j] = k, k += cnt[j] + NN_LINEAR_TERMS_SLACK;
  return k;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* inputs [0, in16) of one row (in16 a multiple of 16) listed 16 at a time: the nonzeros'
 * inputs and values compressed, interleaved and stored whole (the stores past the last term
 * stay inside the row's slack of 16 entries and are overwritten or unused); returns the count */
__attribute__((target("avx512f,popcnt"))) static int64_t terms512(const float *r, int64_t in16, nn_linear_term *l) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t k = 0;
  for (int64_t i = 0; i < in16; i += 16, idx = _mm512_add_epi32(idx, _mm512_set1_epi32(16))) {
    const __m512 v = _mm512_loadu_ps(r + i);
    const __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ); /* as C's != */
    if (!m) continue;
    const __m512i ci = _mm512_maskz_compress_epi32(m, idx), cv = _mm512_maskz_compress_epi32(m, _mm512_castps_si512(v));
    _mm512_storeu_si512((void *)(l + k), _mm512_permutex2var_epi32(ci, lo, cv));
    _mm512_storeu_si512((void *)(l + k + 8), _mm512_permutex2var_epi32(ci, hi, cv));
    k += __builtin_popcount(m);
  }
  return k;
}
#endif

void nn_linear_terms(const float *x, int64_t in, int64_t j0, int64_t j1, const int64_t *at, nn_linear_term *tm) {
  for (int64_t j = j0; j < j1; j++) {
    const float *restrict r = x + j * in;
    nn_linear_term *restrict l = tm + at[j];
    int64_t k = 0, i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (nn_linear_level() == 2) k = terms512(r, i = in / 16 * 16, l);
#endif
    for (; i < in; i++) { /* no branch: l[k] is overwritten until x[j][i] != 0 */
      l[k].i = (int32_t)i, l[k].x = r[i];
      k += r[i] != 0.0f;
    }
  }
}

static double lin_sparse_max = NN_LINEAR_SPARSE_DENSITY;
static int64_t lin_sparse_calls;
void nn_linear_set_sparse(double max_density) { lin_sparse_max = max_density; }
int64_t nn_linear_sparse_calls(void) { return __atomic_load_n(&lin_sparse_calls, __ATOMIC_RELAXED); }

int nn_linear_prefer_sparse(int64_t nonzeros, int64_t n, int64_t in, int64_t out) {
  return lin_sparse_max > 0 && in <= INT32_MAX && (double)nonzeros <= lin_sparse_max * (double)n * (double)in &&
         nn_linear_wt_floats(in, out) * (int64_t)sizeof(float) <= NN_LINEAR_SPARSE_MAX_WT_BYTES;
}

int64_t nn_linear_terms_cap(int64_t n, int64_t in) {
  const double d = lin_sparse_max < 1 ? lin_sparse_max : 1;
  return (int64_t)(d * (double)n * (double)in) + n * NN_LINEAR_TERMS_SLACK;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The chains of one row through its terms p[0 ..) up to the first of input iend or more (or e),
 * for 8 vectors of W outputs of the tile wt (rows of TILE floats), continuing from acc; returns
 * where the row's list stopped. The accumulators are named variables: GCC kept an array of them
 * on the stack across the call's edges, which costs more than the 17 terms a row has in a
 * block at a quarter density. */
#define SP_KERNEL(NAME, TARGET, V, W, LD, ST, FMA, SET1)                                                 \
  __attribute__((target(TARGET))) static const nn_linear_term *NAME(                                    \
      const nn_linear_term *p, const nn_linear_term *e, int64_t iend, const float *restrict wt,        \
      float *restrict acc) {                                                                            \
    V a0 = LD(acc), a1 = LD(acc + W), a2 = LD(acc + 2 * W), a3 = LD(acc + 3 * W);                       \
    V a4 = LD(acc + 4 * W), a5 = LD(acc + 5 * W), a6 = LD(acc + 6 * W), a7 = LD(acc + 7 * W);           \
    for (; p < e && p->i < iend; p++) {                                                                 \
      const V xv = SET1(p->x);                                                                          \
      const float *q = wt + (int64_t)p->i * LIN_SP_TO;                                                  \
      a0 = FMA(xv, LD(q), a0), a1 = FMA(xv, LD(q + W), a1), a2 = FMA(xv, LD(q + 2 * W), a2);           \
      a3 = FMA(xv, LD(q + 3 * W), a3), a4 = FMA(xv, LD(q + 4 * W), a4), a5 = FMA(xv, LD(q + 5 * W), a5); \
      a6 = FMA(xv, LD(q + 6 * W), a6), a7 = FMA(xv, LD(q + 7 * W), a7);                                 \
    }                                                                                                   \
    ST(acc, a0), ST(acc + W, a1), ST(acc + 2 * W, a2), ST(acc + 3 * W, a3);                             \
    ST(acc + 4 * W, a4), ST(acc + 5 * W, a5), ST(acc + 6 * W, a6), ST(acc + 7 * W, a7);                 \
    return p;                                                                                           \
  }
SP_KERNEL(sp512, "avx512f", __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_set1_ps)
SP_KERNEL(sp256_half, "avx2,fma", __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_set1_ps)
#endif

/* The chains of one row for one tile (wt) through its terms p[0 ..) up to the first of input
 * iend or more (or e), continuing from acc[0 .. TILE); returns where the row's list stopped. */
static const nn_linear_term *sp_run(int level, const nn_linear_term *p, const nn_linear_term *e, int64_t iend,
                                    const float *wt, float *acc) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (level == 2) return sp512(p, e, iend, wt, acc);
  if (level == 1) { /* the tile's two halves of 64 outputs */
    sp256_half(p, e, iend, wt, acc);
    return sp256_half(p, e, iend, wt + 64, acc + 64);
  }
#endif
  (void)level;
  for (; p < e && p->i < iend; p++) {
    const float xv = p->x, *q = wt + (int64_t)p->i * LIN_SP_TO;
    for (int u = 0; u < LIN_SP_TO; u++) acc[u] = fmaf(xv, q[u], acc[u]);
  }
  return p;
}

nn_status nn_linear_sparse(const float *x, int64_t n, int64_t in, const nn_linear_term *tm, const int64_t *at,
                           const int64_t *cnt, const float *wt, const float *b, int64_t out, int64_t o0, int64_t o1,
                           float *y, nn_error *err) {
  if (n <= 0 || o1 <= o0) return NN_OK;
  __atomic_fetch_add(&lin_sparse_calls, 1, __ATOMIC_RELAXED);
  const int level = nn_linear_level();
  float *part = nn_scratch_get((size_t)(n * LIN_SP_TO) * sizeof *part); /* every row's sums for a tile */
  int64_t *pos = nn_scratch_get((size_t)n * sizeof *pos);                /* where each row's list stands */
  if (!part || !pos) {
    nn_scratch_put(part), nn_scratch_put(pos);
    return nn_fail(err, NN_ENOMEM, "linear: out of memory for %lld partial sums", (long long)(n * LIN_SP_TO));
  }
  for (int64_t t = o0 / LIN_SP_TO; t * LIN_SP_TO < o1; t++) {
    const float *wtt = wt + t * in * LIN_SP_TO;
    for (int64_t i0 = 0; i0 < in || i0 == 0; i0 += LIN_SP_IB) {
      const int64_t iend = i0 + LIN_SP_IB < in ? i0 + LIN_SP_IB : in;
      /* the next block of wt (this tile's next, or the next tile's first) is fetched while this
       * one runs, its lines spread over the rows: between timesteps the other layers have pushed
       * wt out of the caches, and the rows' scattered reads would wait for memory line by line */
      const char *next = (const char *)(wtt + iend * LIN_SP_TO);
      const int64_t nrows = iend < in ? in - iend : (t + 1) * LIN_SP_TO < o1 ? in : 0; /* rows left after it */
      const int64_t nlines = (nrows < LIN_SP_IB ? nrows : LIN_SP_IB) * LIN_SP_TO * (int64_t)sizeof(float) / 64;
      const int64_t per = (nlines + n - 1) / n;
      for (int64_t j = 0; j < n; j++) {
        const nn_linear_term *l = tm + at[j];
        for (int64_t q = j * per; q < (j + 1) * per && q < nlines; q++) __builtin_prefetch(next + 64 * q, 0, 3);
        if (!i0) memset(part + j * LIN_SP_TO, 0, LIN_SP_TO * sizeof *part), pos[j] = 0; /* chains start at +0 */
        if (pos[j] < cnt[j] && l[pos[j]].i < iend) /* a term in this block */
          pos[j] = sp_run(level, l + pos[j], l + cnt[j], iend, wtt, part + j * LIN_SP_TO) - l;
      }
    }
    const int64_t lo = t * LIN_SP_TO > o0 ? t * LIN_SP_TO : o0, hi = (t + 1) * LIN_SP_TO < o1 ? (t + 1) * LIN_SP_TO : o1;
    const int64_t u0 = lo - t * LIN_SP_TO, nu = hi - lo; /* lanes [u0, u0 + nu) of the tile */
    for (int64_t j = 0; j < n; j++) {
      const float *restrict a = part + j * LIN_SP_TO + u0;
      float *restrict yj = y + j * out + lo;
      uint32_t neg0 = 0;
      for (int64_t u = 0; u < nu; u++) {
        uint32_t bits;
        memcpy(&bits, a + u, sizeof bits);
        neg0 |= bits == 0x80000000u;
      }
      if (b)
        for (int64_t u = 0; u < nu; u++) yj[u] = a[u] + b[lo + u];
      else
        memcpy(yj, a, (size_t)nu * sizeof *yj);
      for (int64_t u = 0; neg0 && u < nu; u++)
        if (a[u] == 0.0f && signbit(a[u])) { /* -0: the full chain decides the zero's sign */
          float c = 0.0f;
          for (int64_t i = 0; i < in; i++) c = fmaf(x[j * in + i], wtt[i * LIN_SP_TO + u0 + u], c);
          yj[u] = b ? c + b[lo + u] : c;
        }
    }
  }
  nn_scratch_put(part), nn_scratch_put(pos);
  return NN_OK;
}

void nn_linear_ref(const float *x, int64_t n, int64_t in, const float *w, const float *b, int64_t out, float *y) {
  for (int64_t j = 0; j < n; j++)
    for (int64_t o = 0; o < out; o++) {
      double acc = b ? b[o] : 0;
      for (int64_t i = 0; i < in; i++) acc += (double)x[j * in + i] * w[o * in + i];
      y[j * out + o] = (float)acc;
    }
}
