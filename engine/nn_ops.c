/* nn_ops.c: layer kernels of the spiking forward pass (docs/model.md), each with a *_ref twin.
 * Layouts and ownership: see nn_ops.h. */
#include "nn_ops.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_blas.h"
#include "nn_scratch.h"
#include "nn_simd.h"

/* Kernels that must round like PyTorch (separate multiply and add) opt out of FMA contraction,
 * which -march=native would otherwise allow. */
#if defined(__clang__)
#define NO_CONTRACT
#define NO_CONTRACT_BODY _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#define NO_CONTRACT_BODY
#else
#define NO_CONTRACT
#define NO_CONTRACT_BODY
#endif

/* Scratch budget of one dense conv chunk (floats): im2col columns + gemm output. */
#define CONV_CHUNK_FLOATS ((int64_t)1 << 20)

int64_t nn_conv_out(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  return (in + 2 * pad - k) / stride + 1;
}

void nn_im2col(const nn_conv_geom *g, const float *x, float *cols, int64_t ld) {
  const int64_t ho = nn_conv_ho(g), wo = nn_conv_wo(g), k = g->k, s = g->stride, p = g->pad;
  for (int64_t ci = 0; ci < g->c; ci++)
    for (int64_t kh = 0; kh < k; kh++)
      for (int64_t kw = 0; kw < k; kw++) {
        float *row = cols + ((ci * k + kh) * k + kw) * ld;
        const float *plane = x + ci * g->h * g->w;
        for (int64_t oh = 0; oh < ho; oh++) {
          int64_t ih = oh * s - p + kh;
          float *r = row + oh * wo;
          if (ih < 0 || ih >= g->h) {
            memset(r, 0, (size_t)wo * sizeof *r);
            continue;
          }
          const float *src = plane + ih * g->w;
          if (s == 1) {
            /* contiguous run: iw = ow - p + kw, valid for ow in [lo, hi) */
            int64_t lo = p - kw, hi = g->w + p - kw;
            if (lo < 0) lo = 0;
            if (lo > wo) lo = wo;
            if (hi > wo) hi = wo;
            if (hi < lo) hi = lo;
            for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0;
            if (hi > lo) memcpy(r + lo, src + lo - p + kw, (size_t)(hi - lo) * sizeof *r);
            for (int64_t ow = hi; ow < wo; ow++) r[ow] = 0;
          } else {
            for (int64_t ow = 0; ow < wo; ow++) {
              int64_t iw = ow * s - p + kw;
              r[ow] = (iw >= 0 && iw < g->w) ? src[iw] : 0.0f;
            }
          }
        }
      }
}

void nn_col2im(const nn_conv_geom *g, const float *cols, int64_t ld, float *dx) {
  const int64_t ho = nn_conv_ho(g), wo = nn_conv_wo(g), k = g->k, s = g->stride, p = g->pad;
  for (int64_t ci = 0; ci < g->c; ci++)
    for (int64_t kh = 0; kh < k; kh++)
      for (int64_t kw = 0; kw < k; kw++) {
        const float *row = cols + ((ci * k + kh) * k + kw) * ld;
        float *plane = dx + ci * g->h * g->w;
        for (int64_t oh = 0; oh < ho; oh++) {
          int64_t ih = oh * s - p + kh;
          if (ih < 0 || ih >= g->h) continue;
          for (int64_t ow = 0; ow < wo; ow++) {
            int64_t iw = ow * s - p + kw;
            if (iw >= 0 && iw < g->w) plane[ih * g->w + iw] += row[oh * wo + ow];
          }
        }
      }
}

int64_t nn_conv2d_chunk(const nn_conv_geom *g) {
  const int64_t P = nn_conv_ho(g) * nn_conv_wo(g), K = g->c * g->k * g->k;
  if (g->k == 1 && g->stride == 1 && g->pad == 0) return 1; /* one sgemm per sample */
  int64_t per = (K + g->o) * P, nb = CONV_CHUNK_FLOATS / (per > 0 ? per : 1);
  if (nb < 1) nb = 1;
  if (nb > g->n) nb = g->n;
  return nb;
}

nn_status nn_conv2d(const nn_conv_geom *g, const float *x, const float *w, float *y, nn_error *err) {
  const int64_t ho = nn_conv_ho(g), wo = nn_conv_wo(g), P = ho * wo;
  const int64_t K = g->c * g->k * g->k, xs = g->c * g->h * g->w, ys = g->o * P;
  nn_status st = NN_OK;
  if (g->n <= 0 || P <= 0 || g->o <= 0) return NN_OK;
  if (g->k == 1 && g->stride == 1 && g->pad == 0) {
    for (int64_t s = 0; s < g->n && st == NN_OK; s++)
      st = nn_sgemm(0, 0, g->o, P, K, 1.0f, w, K, x + s * xs, P, 0.0f, y + s * ys, P, err);
    return st;
  }
  /* nb samples per chunk: cols is K x (nb*P), tmp is O x (nb*P) (unless nb == 1) */
  const int64_t nb = nn_conv2d_chunk(g);
  float *cols = nn_scratch_get((size_t)(K * nb * P) * sizeof *cols);
  float *tmp = nb > 1 ? nn_scratch_get((size_t)(g->o * nb * P) * sizeof *tmp) : NULL;
  if (!cols || (nb > 1 && !tmp)) {
    nn_scratch_put(cols);
    nn_scratch_put(tmp);
    return nn_fail(err, NN_ENOMEM, "conv2d: out of memory for %lld-float scratch",
                   (long long)(K * nb * P));
  }
  for (int64_t s0 = 0; s0 < g->n && st == NN_OK; s0 += nb) {
    int64_t m = g->n - s0 < nb ? g->n - s0 : nb, ld = m * P;
    for (int64_t j = 0; j < m; j++) nn_im2col(g, x + (s0 + j) * xs, cols + j * P, ld);
    if (m == 1) {
      st = nn_sgemm(0, 0, g->o, P, K, 1.0f, w, K, cols, ld, 0.0f, y + s0 * ys, P, err);
    } else {
      st = nn_sgemm(0, 0, g->o, ld, K, 1.0f, w, K, cols, ld, 0.0f, tmp, ld, err);
      for (int64_t j = 0; j < m && st == NN_OK; j++)
        for (int64_t oc = 0; oc < g->o; oc++)
          memcpy(y + (s0 + j) * ys + oc * P, tmp + oc * ld + j * P, (size_t)P * sizeof *y);
    }
  }
  nn_scratch_put(cols);
  nn_scratch_put(tmp);
  return st;
}

void nn_conv2d_ref(const nn_conv_geom *g, const float *x, const float *w, float *y) {
  const int64_t ho = nn_conv_ho(g), wo = nn_conv_wo(g);
  for (int64_t s = 0; s < g->n; s++)
    for (int64_t oc = 0; oc < g->o; oc++)
      for (int64_t oh = 0; oh < ho; oh++)
        for (int64_t ow = 0; ow < wo; ow++) {
          double acc = 0;
          for (int64_t ci = 0; ci < g->c; ci++)
            for (int64_t kh = 0; kh < g->k; kh++)
              for (int64_t kw = 0; kw < g->k; kw++) {
                int64_t ih = oh * g->stride - g->pad + kh, iw = ow * g->stride - g->pad + kw;
                if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
                acc += (double)w[((oc * g->c + ci) * g->k + kh) * g->k + kw] *
                       x[((s * g->c + ci) * g->h + ih) * g->w + iw];
              }
          y[((s * g->o + oc) * ho + oh) * wo + ow] = (float)acc;
        }
}

/* ---- spikes and the event-driven conv ---- */

/* Packing: on x86-64 four floats at a time are compared with 0 (SSE2, baseline) and their
 * sign-bit mask moved into the word; the popcount is a POPCNT instruction in the clone picked
 * on CPUs that have it. Same bits and count as the plain loop (nn_spikes_pack_ref). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define PACK_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define PACK_CLONES
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

PACK_CLONES int64_t nn_spikes_pack(const float *s, int64_t samples, int64_t neurons, uint64_t *bits) {
  const int64_t words = nn_spike_words(neurons), full = neurons / 64;
  int64_t fired = 0;
  for (int64_t j = 0; j < samples; j++) {
    const float *src = s + j * neurons;
    uint64_t *dst = bits + j * words;
    int64_t wi = 0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps();
    for (; wi < full; wi++) {
      const float *q = src + wi * 64;
      uint64_t word = 0;
      for (int b = 0; b < 16; b++)
        word |= (uint64_t)_mm_movemask_ps(_mm_cmpneq_ps(_mm_loadu_ps(q + 4 * b), zero)) << (4 * b);
      dst[wi] = word;
      fired += __builtin_popcountll(word);
    }
#endif
    for (; wi < words; wi++) {
      int64_t b0 = wi * 64, nb = neurons - b0 < 64 ? neurons - b0 : 64;
      uint64_t word = 0;
      for (int64_t b = 0; b < nb; b++) word |= (uint64_t)(src[b0 + b] != 0.0f) << b;
      dst[wi] = word;
      fired += __builtin_popcountll(word);
    }
  }
  return fired;
}

int64_t nn_spikes_pack_ref(const float *s, int64_t samples, int64_t neurons, uint64_t *bits) {
  const int64_t words = nn_spike_words(neurons);
  int64_t fired = 0;
  for (int64_t j = 0; j < samples; j++)
    for (int64_t wi = 0; wi < words; wi++) {
      uint64_t word = 0;
      for (int64_t b = 0; b < 64 && wi * 64 + b < neurons; b++)
        if (s[j * neurons + wi * 64 + b] != 0.0f) {
          word |= (uint64_t)1 << b;
          fired++;
        }
      bits[j * words + wi] = word;
    }
  return fired;
}

void nn_conv2d_weight_cl(const nn_conv_geom *g, const float *w, float *wcl) {
  const int64_t kk = g->k * g->k;
  for (int64_t oc = 0; oc < g->o; oc++)
    for (int64_t ci = 0; ci < g->c; ci++)
      for (int64_t t = 0; t < kk; t++) wcl[(ci * kk + t) * g->o + oc] = w[(oc * g->c + ci) * kk + t];
}

/* Event-driven conv. Every spike (ci, ih, iw) adds, for each kernel tap (kh, kw) that reaches an
 * output (oh, ow), the weight vector wcl[ci][kh][kw][o0 .. o0+OT) to a channels-last accumulator
 * acc[oh][ow][0 .. OT), which is then transposed into y[n][o][oh][ow]. The work is one
 * read-modify-write of OT floats per spike and tap; what makes it fast is everything around
 * that add (measured on one AVX-512 core, see scripts/bench-forward):
 * - Each sample's spikes are decoded once, branch-light and without divisions, into rows: sp[]
 *   holds ih * wa + iw in NCHW order and rowstart[ci*h + ih] indexes the first spike of each
 *   input row, so the spikes of a channel's consecutive rows are one contiguous run.
 * - The accumulator rows carry hl = k-1-pad halo columns on each side, so with stride 1 every
 *   tap of every spike lands inside the row (taps off the map land in the halo and are
 *   dropped): the inner loops have no bounds checks.
 * - Loop order ci, kh, spike: for one (ci, kh) the k weight vectors wcl[ci][kh][:][o-tile] are
 *   the same for all spikes (the compiler keeps them in registers when they fit, e.g. 3 x 8 zmm
 *   for OT = 128), and the spikes of the rows that kh maps into the band are one flat loop.
 * - The output rows are cut into bands whose accumulator (rows x wa x OT floats) fits
 *   EVENTS_BAND_BYTES, with OT as wide as the budget allows (up to 128 channels): the per-spike
 *   bookkeeping is paid once per tile. Measured: for k = 3 a band of ~64 KB beat both an L1-sized
 *   one (16-32 KB: more, shorter spike loops) and a whole map (up to 512 KB); for 1x1 convs
 *   (one tap per spike) 32 KB is best.
 * - The inner add has a compile-time length (OT = 8 .. 128; generic otherwise) and is compiled
 *   for AVX2 as well as the baseline, and for OT >= 64 also for AVX-512 (1.1-1.3x faster there;
 *   no gain for narrower tiles), picked at load time (the default build targets baseline x86-64).
 * Summation order: every output element gets its terms in the order ci, kh, kw ascending (the
 * spikes' NCHW order), starting from 0.0f: the order of the kernel this replaced, kept in
 * tests/c/test_perf.c and compared byte for byte, so results do not depend on the tiling.
 * Wide 3x3 convs (stride 1, pad 1, maps up to 62 wide, o a multiple of 64) at 2 % firing and
 * more (8 % if o is not a multiple of 128) take the output-stationary kernel further down
 * instead (events_gather: no accumulator store per term, 1.1-1.9x faster on AVX-512), which
 * keeps this order and so these bits; so do, at any firing rate, such 3x3 convs with o = 32
 * (events_gather with gather_narrow32) and 1x1 convs (stride 1, no padding) with o = 16 or 32 (events_1x1_narrow);
 * 1x1 convs with o a multiple of 64 take events_gather's 1x1 form (63 input channels per chunk,
 * one tap) at the same firing rates as the wide 3x3 ones.
 * 3x3 convs with o = 16 keep this scatter: no output-stationary form tried beat it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define EVENTS_CLONES __attribute__((target_clones("avx2", "default")))
#define EVENTS_CLONES_WIDE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EVENTS_CLONES
#define EVENTS_CLONES_WIDE
#endif

#define EVENTS_BAND_BYTES (64 << 10)     /* accumulator band, k > 1 */
#define EVENTS_BAND_BYTES_1X1 (32 << 10) /* accumulator band, k = 1 */
#define EVENTS_STREAM_BYTES (32 << 20) /* outputs from this size are streamed (events_transpose) */

/* One band of output rows [r0, r1) of tile [o0, o0+OT): acc[((oh - r0) * wa + hl + ow) * OT + i],
 * zeroed by the caller. */
typedef struct events_band {
  int64_t r0, r1, wa, hl;
} events_band;

#define EVENTS_BAND_FN(NAME, OTC, CLONES)                                                              \
  CLONES static void NAME(const nn_conv_geom *g, const int64_t *rowstart, const int32_t *sp,           \
                          const float *wcl, int64_t o0, int64_t ot_arg, const events_band *b,          \
                          float *restrict acc) {                                                       \
    const int64_t wo = nn_conv_wo(g), O = g->o, k = g->k, s = g->stride, p = g->pad, H = g->h;        \
    const int64_t OT = OTC ? OTC : ot_arg, wa = b->wa, hl = b->hl, r0 = b->r0, r1 = b->r1;            \
    for (int64_t ci = 0; ci < g->c; ci++) {                                                            \
      const int64_t *rs = rowstart + ci * H;                                                           \
      for (int64_t kh = 0; kh < k; kh++) {                                                             \
        const float *restrict wr = wcl + (ci * k + kh) * k * O + o0; /* wcl[ci][kh][0][o0] */        \
        if (s == 1) {                                                                                  \
          /* output rows oh in [r0, r1) read input rows ih = oh - p + kh: one run of spikes */         \
          int64_t lo = r0 - p + kh, hi = r1 - p + kh;                                                  \
          lo = lo < 0 ? 0 : lo > H ? H : lo, hi = hi < lo ? lo : hi > H ? H : hi;                      \
          const int32_t *e = sp + rs[lo], *end = sp + rs[hi];                                          \
          /* spike ih * wa + iw, tap kw -> acc position (oh - r0) * wa + hl + ow, ow = iw + p - kw */  \
          const int64_t sh = (p - kh - r0) * wa + hl + p;                                              \
          if (k == 3) {                                                                                \
            for (; e < end; e++) {                                                                     \
              float *restrict a = acc + (*e + sh) * OT;                                                \
              for (int64_t i = 0; i < OT; i++) a[i] += wr[i];                                          \
              for (int64_t i = 0; i < OT; i++) a[i - OT] += wr[O + i];                                 \
              for (int64_t i = 0; i < OT; i++) a[i - 2 * OT] += wr[2 * O + i];                         \
            }                                                                                          \
          } else if (k == 1) {                                                                         \
            for (; e < end; e++) {                                                                     \
              float *restrict a = acc + (*e + sh) * OT;                                                \
              for (int64_t i = 0; i < OT; i++) a[i] += wr[i];                                          \
            }                                                                                          \
          } else {                                                                                     \
            for (; e < end; e++)                                                                       \
              for (int64_t kw = 0; kw < k; kw++) {                                                     \
                float *restrict a = acc + (*e + sh - kw) * OT;                                         \
                const float *restrict wv = wr + kw * O;                                                \
                for (int64_t i = 0; i < OT; i++) a[i] += wv[i];                                        \
              }                                                                                        \
          }                                                                                            \
          continue;                                                                                    \
        }                                                                                              \
        /* stride > 1: row by row, taps checked */                                                     \
        for (int64_t oh = r0; oh < r1; oh++) {                                                         \
          const int64_t ih = oh * s - p + kh;                                                          \
          if (ih < 0 || ih >= H) continue;                                                             \
          float *restrict arow = acc + ((oh - r0) * wa + hl) * OT;                                     \
          for (const int32_t *e = sp + rs[ih], *end = sp + rs[ih + 1]; e < end; e++)                   \
            for (int64_t kw = 0; kw < k; kw++) {                                                       \
              const int64_t tw = *e - ih * wa + p - kw;                                                \
              if (tw < 0 || tw % s) continue;                                                          \
              const int64_t ow = tw / s;                                                               \
              if (ow >= wo) continue;                                                                  \
              float *restrict a = arow + ow * OT;                                                      \
              const float *restrict wv = wr + kw * O;                                                  \
              for (int64_t i = 0; i < OT; i++) a[i] += wv[i];                                          \
            }                                                                                          \
        }                                                                                              \
      }                                                                                                \
    }                                                                                                  \
  }
EVENTS_BAND_FN(events_band8, 8, EVENTS_CLONES)
EVENTS_BAND_FN(events_band16, 16, EVENTS_CLONES)
EVENTS_BAND_FN(events_band32, 32, EVENTS_CLONES)
EVENTS_BAND_FN(events_band64, 64, EVENTS_CLONES_WIDE)
EVENTS_BAND_FN(events_band128, 128, EVENTS_CLONES_WIDE)
EVENTS_BAND_FN(events_band_any, 0, EVENTS_CLONES)

/* Decodes one sample's spikes (rows = c*h rows of w bits, NCHW) into sp[] = ih * wa + iw in
 * order and rowstart[r] = index in sp of row r's first spike (rowstart[rows] = the count).
 * Rows of w <= 64 bits are cut out of the words directly and their first 8 spikes written
 * unconditionally (sp has 8 entries of slack), so a typical row costs no mispredicted branch. */
PACK_CLONES static void events_decode(const uint64_t *bits, int64_t rows, int64_t h, int64_t w,
                                      int64_t wa, int64_t *rowstart, int32_t *sp) {
  int64_t nsp = 0, ih = 0;
  if (w <= 64) {
    const uint64_t mask = w == 64 ? ~(uint64_t)0 : ((uint64_t)1 << w) - 1;
    for (int64_t r = 0, bit = 0; r < rows; r++, bit += w) {
      const int64_t wi = bit >> 6, sh = bit & 63, base = ih * wa;
      uint64_t v = bits[wi] >> sh;
      if (sh + w > 64) v |= bits[wi + 1] << (64 - sh);
      v &= mask;
      const int64_t cnt = __builtin_popcountll(v);
      int32_t *o = sp + nsp;
      rowstart[r] = nsp;
      for (int u = 0; u < 8; u++, v &= v - 1) o[u] = (int32_t)(base + __builtin_ctzll(v | (uint64_t)1 << 63));
      for (int64_t u = 8; u < cnt; u++, v &= v - 1) o[u] = (int32_t)(base + __builtin_ctzll(v));
      nsp += cnt;
      if (++ih == h) ih = 0;
    }
    rowstart[rows] = nsp;
    return;
  }
  const int64_t words = nn_spike_words(rows * w);
  int64_t r = 0, row_end = w;
  rowstart[0] = 0;
  for (int64_t wi = 0; wi < words; wi++)
    for (uint64_t word = bits[wi]; word; word &= word - 1) {
      const int64_t idx = wi * 64 + __builtin_ctzll(word);
      for (; idx >= row_end; row_end += w) {
        rowstart[++r] = nsp;
        if (++ih == h) ih = 0;
      }
      sp[nsp++] = (int32_t)(ih * wa + idx - (row_end - w));
    }
  while (r < rows) rowstart[++r] = nsp;
}

#if NN_SIMD_X86
#define TR16 1 /* the AVX-512 kernels below (their callers check the CPU) */
#else
#define TR16 0
#endif

/* AVX-512 paths: on where the CPU has AVX-512F, unless a test turned them off */
static int ops_avx512_off;

void nn_ops_set_avx512(int on) { __atomic_store_n(&ops_avx512_off, !on, __ATOMIC_RELAXED); }

static int pool3_narrow_off;

void nn_avgpool3x3_set_narrow(int on) { __atomic_store_n(&pool3_narrow_off, !on, __ATOMIC_RELAXED); }

static int ops_avx512(void) {
#if TR16
  return !__atomic_load_n(&ops_avx512_off, __ATOMIC_RELAXED) && __builtin_cpu_supports("avx512f");
#else
  return 0;
#endif
}

/* y[oc * ld + q] = src[q * ot + oc] for q < n, oc < ot: channels-last -> NCHW, in 4x4 blocks.
 * stream = 1 (y 16-byte aligned, n and ld multiples of 4): non-temporal stores, for outputs far
 * larger than the caches, whose lines would otherwise be read from memory before being
 * overwritten (the caller fences). The values stored are the same either way. */
static void events_transpose(const float *src, int64_t n, int64_t ot, float *y, int64_t ld, int stream) {
  int64_t oc = 0;
#if defined(__SSE2__)
  if (stream)
    for (; oc + 4 <= ot; oc += 4) {
      float *d0 = y + oc * ld, *d1 = d0 + ld, *d2 = d1 + ld, *d3 = d2 + ld;
      for (int64_t q = 0; q < n; q += 4) {
        const float *s0 = src + q * ot + oc;
        __m128 a = _mm_loadu_ps(s0), b = _mm_loadu_ps(s0 + ot);
        __m128 c = _mm_loadu_ps(s0 + 2 * ot), d = _mm_loadu_ps(s0 + 3 * ot);
        _MM_TRANSPOSE4_PS(a, b, c, d);
        _mm_stream_ps(d0 + q, a), _mm_stream_ps(d1 + q, b), _mm_stream_ps(d2 + q, c), _mm_stream_ps(d3 + q, d);
      }
    }
  for (; oc + 4 <= ot; oc += 4) {
    float *d0 = y + oc * ld, *d1 = d0 + ld, *d2 = d1 + ld, *d3 = d2 + ld;
    int64_t q = 0;
    for (; q + 4 <= n; q += 4) {
      const float *s0 = src + q * ot + oc;
      __m128 a = _mm_loadu_ps(s0), b = _mm_loadu_ps(s0 + ot);
      __m128 c = _mm_loadu_ps(s0 + 2 * ot), d = _mm_loadu_ps(s0 + 3 * ot);
      _MM_TRANSPOSE4_PS(a, b, c, d);
      _mm_storeu_ps(d0 + q, a), _mm_storeu_ps(d1 + q, b), _mm_storeu_ps(d2 + q, c), _mm_storeu_ps(d3 + q, d);
    }
    for (; q < n; q++) {
      const float *sq = src + q * ot + oc;
      d0[q] = sq[0], d1[q] = sq[1], d2[q] = sq[2], d3[q] = sq[3];
    }
  }
#endif
  for (; oc < ot; oc++)
    for (int64_t q = 0; q < n; q++) y[oc * ld + q] = src[q * ot + oc];
}

/* Output-stationary ("gather") band kernel for wide 3x3 convs (stride 1, pad 1, maps at most
 * 62 wide, output tiles of 64 or 128 channels). Measured on the AVX-512 build machine, the
 * scatter above is bound by its accumulator stores (one 64-byte store per spike, tap and 16
 * output channels); here an output keeps its tile in registers and only loads weights:
 * - Per sample, each input row is cut out of the NCHW bits once into a padded row R[ci][r]
 *   (bit iw + 1 = spike (ci, r - 1, iw), zero halo), and for a chunk of GATHER_CC = 7 input
 *   channels and an output (oh, ow) the 63-bit tap mask
 *   M = OR over l < 7, kh < 3 of ((R[c0 + l][oh + kh] >> ow) & 7) << (9 l + 3 kh)
 *   is built eight outputs at a time. Bit b = 9 l + 3 kh + kw is the weight row c0 * 9 + b of
 *   wcl, so walking the set bits upwards adds the terms in the scatter's order (channel, row
 *   tap, column tap): the same float additions, starting from 0.0f, so the same bits.
 * - For each chunk, each output of a band of about GATHER_BAND positions loads its OT
 *   accumulators (zero for the first chunk), adds the weight vector of every set bit, and
 *   stores them back (two outputs at a time, GATHER_FN); chunks run in ascending order, so
 *   every output still gets its terms in order (a float stored and reloaded is the same value).
 *   A chunk's weights (7 x 9 x 128 floats, 32 KB) stay in L1 for the whole band.
 * - The weights are repacked per call into one block per tile, wt[tile][chunk][64][OT] (row
 *   63 of each chunk zero, see GATHER_FN), in 64-byte aligned scratch: read in place, with the
 *   tile cut out of wider rows (o = 256: a 1 KB stride, half of L1's sets unused) or from
 *   unaligned rows (every load split over two lines), the same kernel measured at par with the
 *   scatter; packed, 1.3-1.9x faster.
 * - The band is written in the scatter's channels-last layout and goes through the same
 *   events_transpose (and its streaming stores).
 * - An output none of whose taps fire in a chunk (after the first) is skipped: at low firing
 *   rates most are (at 2 % this made the kernel 1.05-1.14x the scatter instead of 0.95-1.06x).
 * What each output and chunk costs whatever its number of terms (a mispredicted loop exit, a
 * load and a store of the accumulators) makes 64-channel tiles lose below about 8 % firing;
 * 128-channel ones break even with the scatter at 0.1-0.3 % on 128 channels of 32x32 and win
 * from 0.1 % on 256 channels of 16x16 (1.3x there; the integer sums below, 1.2-1.5x from
 * 0.5 %): nn_conv2d_events takes this kernel at GATHER_MIN_RATE of its inputs firing and above
 * (GATHER_MIN_RATE_64 when o is not a multiple of 128); figures in docs/performance.md
 * ("Fourth round", "Thirteenth round"). */
#define GATHER_CC 7
#define GATHER_BAND 256
#define GATHER_MIN_RATE 0.002
#define GATHER_MIN_RATE_64 0.08

static nn_events_kernel events_kernel = NN_EVENTS_AUTO;
static int64_t events_gathered;

void nn_conv2d_events_set_kernel(nn_events_kernel k) { __atomic_store_n(&events_kernel, k, __ATOMIC_RELAXED); }

int64_t nn_conv2d_events_gathered(void) { return __atomic_load_n(&events_gathered, __ATOMIC_RELAXED); }

static int64_t events_integer;
static int events_int_off;

int64_t nn_conv2d_events_integer(void) { return __atomic_load_n(&events_integer, __ATOMIC_RELAXED); }

void nn_conv2d_events_set_integer(int on) { __atomic_store_n(&events_int_off, !on, __ATOMIC_RELAXED); }

int nn_conv2d_events_gather_fits(const nn_conv_geom *g) {
#if TR16
  if (g->k == 1 && g->stride == 1 && g->pad == 0 && (g->o == 16 || g->o == 32 || g->o % 64 == 0) && g->o > 0 &&
      g->h >= 1 && g->w >= 1 && g->c >= 1)
    return __builtin_cpu_supports("avx512f") != 0; /* events_1x1_narrow, events_gather (1x1) */
  return g->k == 3 && g->stride == 1 && g->pad == 1 && g->w >= 1 && g->w <= 62 && g->h >= 1 && g->c >= 1 &&
         (g->o % 64 == 0 || g->o == 32) && g->o > 0 && __builtin_cpu_supports("avx512f");
#else
  (void)g;
  return 0;
#endif
}

#if TR16
/* R[ci * (h + 2) + r] (r = 0 .. h + 1): padded input rows of one sample, bit iw + 1 = spike */
static void gather_rows(const uint64_t *bits, int64_t c, int64_t h, int64_t w, uint64_t *R) {
  const uint64_t mask = ((uint64_t)1 << w) - 1; /* w <= 62 */
  int64_t bit = 0;
  for (int64_t ci = 0; ci < c; ci++) {
    uint64_t *Rc = R + ci * (h + 2);
    Rc[0] = Rc[h + 1] = 0;
    for (int64_t ih = 0; ih < h; ih++, bit += w) {
      const int64_t wi = bit >> 6, sh = bit & 63;
      uint64_t v = bits[wi] >> sh;
      if (sh + w > 64) v |= bits[wi + 1] << (64 - sh);
      Rc[ih + 1] = (v & mask) << 1;
    }
  }
}

/* M[q * h * w + oh * w + ow]: the tap mask of chunk q (channels 7 q .. 7 q + 6) at (oh, ow) */
__attribute__((target("avx512f"))) static void gather_masks(const uint64_t *R, int64_t c, int64_t h, int64_t w,
                                                           uint64_t *M) {
  const int64_t P = h * w, nq = (c + GATHER_CC - 1) / GATHER_CC;
  const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), seven = _mm512_set1_epi64(7);
  for (int64_t q = 0; q < nq; q++) {
    const int64_t c0 = q * GATHER_CC, cn = c - c0 < GATHER_CC ? c - c0 : GATHER_CC;
    for (int64_t oh = 0; oh < h; oh++) {
      uint64_t *Mr = M + q * P + oh * w;
      for (int64_t ow0 = 0; ow0 < w; ow0 += 8) {
        const __m512i sh = _mm512_add_epi64(_mm512_set1_epi64(ow0), lanes);
        __m512i m = _mm512_setzero_si512();
        for (int64_t l = 0; l < cn; l++)
          for (int64_t kh = 0; kh < 3; kh++) {
            const __m512i row = _mm512_set1_epi64((long long)R[(c0 + l) * (h + 2) + oh + kh]);
            const __m512i v = _mm512_and_si512(_mm512_srlv_epi64(row, sh), seven);
            m = _mm512_or_si512(m, _mm512_slli_epi64(v, (unsigned)(9 * l + 3 * kh)));
          }
        const __mmask8 k = w - ow0 >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (w - ow0)) - 1);
        _mm512_mask_storeu_epi64(Mr + ow0, k, m);
      }
    }
  }
}

/* The 1x1 form (GATHER_CC1 = 63 input channels per chunk, bit 63 left free for the zero row):
 * M[q * P + p] bit l = input channel 63 q + l fires at position p, for one sample's bits; a
 * channel's row of P bits is walked spike by spike. */
#define GATHER_CC1 63
static void gather_masks_1x1(const uint64_t *bits, int64_t c, int64_t P, uint64_t *M) {
  const int64_t nq = (c + GATHER_CC1 - 1) / GATHER_CC1;
  memset(M, 0, (size_t)(nq * P) * sizeof *M);
  for (int64_t ci = 0; ci < c; ci++) {
    uint64_t *Mq = M + ci / GATHER_CC1 * P;
    const uint64_t one = (uint64_t)1 << (ci % GATHER_CC1);
    for (int64_t p0 = 0; p0 < P; p0 += 64) { /* bits ci * P + p0 .. + 63 */
      const int64_t bit = ci * P + p0, wi = bit >> 6, sh = bit & 63, n = P - p0 < 64 ? P - p0 : 64;
      uint64_t v = bits[wi] >> sh;
      if (sh && sh + n > 64) v |= bits[wi + 1] << (64 - sh);
      if (n < 64) v &= ((uint64_t)1 << n) - 1;
      for (; v; v &= v - 1) Mq[p0 + __builtin_ctzll(v)] |= one;
    }
  }
}

/* Outputs [p0, p1) of one tile of NZ * 16 channels: acc[(p - p0) * OT + i] = the sum over all
 * chunks of the tile's weight rows wt[(q * 64 + b) * OT + i] for the set bits b of chunk q's
 * mask. Two neighbouring outputs walk their masks in lockstep, max(popcount) steps: one
 * mispredicted loop exit per pair instead of one per output (the exit is data-dependent and the
 * dearest part of a visit with few terms). An output whose mask runs out first adds row 63 of
 * the chunk, which is zero: +0.0f added to a sum started from +0.0f changes no bit (such a sum is
 * never -0.0f, since x + -x is +0.0f when rounding to nearest). */
#define GATHER_FN(NAME, NZ)                                                                            \
  __attribute__((target("avx512f,popcnt"))) static void NAME(const uint64_t *M, int64_t P, int64_t nq, \
                                                             const float *wt, int64_t p0, int64_t p1,  \
                                                             float *acc) {                             \
    for (int64_t q = 0; q < nq; q++) {                                                                 \
      const float *wq = wt + q * 64 * (NZ * 16);                                                       \
      const uint64_t *Mq = M + q * P;                                                                  \
      int64_t p = p0;                                                                                  \
      for (; p + 1 < p1; p += 2) {                                                                     \
        uint64_t ma = Mq[p], mb = Mq[p + 1];                                                           \
        if (q && !(ma | mb)) continue;                                                                 \
        float *ap = acc + (p - p0) * (NZ * 16), *bp = ap + NZ * 16;                                    \
        __m512 a[NZ], b[NZ];                                                                           \
        for (int i = 0; i < NZ; i++) {                                                                 \
          a[i] = q ? _mm512_loadu_ps(ap + 16 * i) : _mm512_setzero_ps();                               \
          b[i] = q ? _mm512_loadu_ps(bp + 16 * i) : _mm512_setzero_ps();                               \
        }                                                                                              \
        const int ca = __builtin_popcountll(ma), cb = __builtin_popcountll(mb);                        \
        for (int t = 0, steps = ca > cb ? ca : cb; t < steps; t++) {                                   \
          const float *wa = wq + (int64_t)__builtin_ctzll(ma | (uint64_t)1 << 63) * (NZ * 16);         \
          const float *wb = wq + (int64_t)__builtin_ctzll(mb | (uint64_t)1 << 63) * (NZ * 16);         \
          ma &= ma - 1, mb &= mb - 1;                                                                  \
          for (int i = 0; i < NZ; i++) {                                                               \
            a[i] = _mm512_add_ps(a[i], _mm512_loadu_ps(wa + 16 * i));                                  \
            b[i] = _mm512_add_ps(b[i], _mm512_loadu_ps(wb + 16 * i));                                  \
          }                                                                                            \
        }                                                                                              \
        for (int i = 0; i < NZ; i++)                                                                   \
          _mm512_storeu_ps(ap + 16 * i, a[i]), _mm512_storeu_ps(bp + 16 * i, b[i]);                    \
      }                                                                                                \
      if (p < p1 && (!q || Mq[p])) {                                                                   \
        float *ap = acc + (p - p0) * (NZ * 16);                                                        \
        __m512 a[NZ];                                                                                  \
        for (int i = 0; i < NZ; i++) a[i] = q ? _mm512_loadu_ps(ap + 16 * i) : _mm512_setzero_ps();    \
        for (uint64_t m = Mq[p]; m; m &= m - 1) {                                                      \
          const float *wv = wq + (int64_t)__builtin_ctzll(m) * (NZ * 16);                              \
          for (int i = 0; i < NZ; i++) a[i] = _mm512_add_ps(a[i], _mm512_loadu_ps(wv + 16 * i));       \
        }                                                                                              \
        for (int i = 0; i < NZ; i++) _mm512_storeu_ps(ap + 16 * i, a[i]);                              \
      }                                                                                                \
    }                                                                                                  \
  }
GATHER_FN(gather_tile64, 4)
GATHER_FN(gather_tile128, 8)

/* The same sums in integers, where they are exact. A search scores FxP-n nets whose weights are
 * k u with u = 2^-f and |k| <= 2^(n-1): for n <= 8, every weight of a conv is an integer multiple
 * of one power of two U (the smallest at or above max|w| / 128) with |k| <= 128. A partial sum of
 * such weights is then a multiple of U of magnitude at most c * taps * 128 U, below 2^24 U for
 * c * taps * 128 < 2^24, so every float addition of the scatter's order is exact: the float sum is
 * the exact sum, whatever the order, and equals (float)K * U for the integer sum K of the k's
 * (|K| < 2^24: the conversion is exact; U >= FLT_MIN: so is the product, and a zero sum is +0.0f,
 * as the float sum from +0.0f is). gather_int_unit finds U and checks the conditions;
 * gather_int_pack writes the k's as int16 in the float kernel's layout, or reports a weight
 * that is not such a multiple. The kernels add int16 k's in registers over GATHER_INT_GROUP
 * chunks (at most 4 x 63 terms of |k| <= 128: 32256, within int16), then widen into int32 sums
 * kept between groups: half the loads and adds of the float kernel per term, 1.5-1.6x its rate
 * on one core (128 -> 128 channels, 5-30 % firing; docs/performance.md, "Thirteenth round"). */
#define GATHER_INT_GROUP 4
#define GATHER_INT_KMAX 128

/* U (above) for the n weights of a conv with c * taps rows (n a multiple of 16), or 0 where the
 * integer sums do not apply (a weight too large, too small or not finite, or rows too many) */
__attribute__((target("avx512f"))) static float gather_int_unit(const float *wcl, int64_t n, int64_t rows) {
  if (rows * GATHER_INT_KMAX >= (INT64_C(1) << 24)) return 0;
  const __m512i abs = _mm512_set1_epi32(0x7fffffff);
  __m512i mx = _mm512_setzero_si512(); /* max |w| as integers: a NaN's bits exceed infinity's */
  for (int64_t i = 0; i < n; i += 16) mx = _mm512_max_epu32(mx, _mm512_and_si512(_mm512_loadu_si512(wcl + i), abs));
  const uint32_t top = (uint32_t)_mm512_reduce_max_epu32(mx);
  if (top == 0) return 1;            /* all zero: every sum is +0.0f */
  if (top > 0x71800000u) return 0;   /* above 2^100 (sums could overflow), infinite or a NaN */
  float max;
  memcpy(&max, &top, sizeof max);
  int e;
  const float f = frexpf(max / GATHER_INT_KMAX, &e); /* max / 128 = f 2^e, f in [0.5, 1) */
  const float unit = ldexpf(1.0f, f == 0.5f ? e - 1 : e);
  return unit >= FLT_MIN ? unit : 0;
}

/* k = w / unit into dst (the same positions as src, n values, a multiple of 16); 0 when one is
 * not an integer (|k| <= 128 holds for the others: unit >= max|w| / 128) */
__attribute__((target("avx512f"))) static int gather_int_pack(const float *src, int64_t n, float inv, int16_t *dst) {
  const __m512 s = _mm512_set1_ps(inv);
  __mmask16 ok = 0xffff;
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(src + i), s); /* exact: a power-of-two scaling */
    const __m512i k = _mm512_cvttps_epi32(x);
    ok &= _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(k), x, _CMP_EQ_OQ); /* an integer, not a NaN */
    _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm512_cvtepi32_epi16(k));
  }
  return ok == 0xffff;
}

/* Outputs [p0, p1) of one tile of NV * 32 channels, as GATHER_FN but in integers: acc holds int32
 * sums (32-bit lanes, the float kernel's layout); walking two outputs in lockstep, row 63 of each
 * chunk is zero as above. */
#define GATHER_INT_FN(NAME, NV)                                                                            \
  __attribute__((target("avx512f,avx512bw,popcnt"))) static void NAME(                                    \
      const uint64_t *M, int64_t P, int64_t nq, const int16_t *wt, int64_t p0, int64_t p1, void *accv) {  \
    int32_t *acc = accv;                                                                                   \
    for (int64_t q0 = 0; q0 < nq; q0 += GATHER_INT_GROUP) {                                                \
      const int64_t q1 = q0 + GATHER_INT_GROUP < nq ? q0 + GATHER_INT_GROUP : nq;                          \
      for (int64_t p = p0; p < p1; p += 2) {                                                               \
        const int two = p + 1 < p1;                                                                        \
        __m512i a[NV], b[NV];                                                                              \
        for (int i = 0; i < NV; i++) a[i] = b[i] = _mm512_setzero_si512();                                 \
        int any = 0;                                                                                       \
        for (int64_t q = q0; q < q1; q++) {                                                                \
          uint64_t ma = M[q * P + p], mb = two ? M[q * P + p + 1] : 0;                                     \
          if (!(ma | mb)) continue;                                                                        \
          any = 1;                                                                                         \
          const int16_t *wq = wt + q * 64 * (NV * 32);                                                     \
          const int ca = __builtin_popcountll(ma), cb = __builtin_popcountll(mb);                          \
          for (int t = 0, steps = ca > cb ? ca : cb; t < steps; t++) {                                     \
            const int16_t *wa = wq + (int64_t)__builtin_ctzll(ma | (uint64_t)1 << 63) * (NV * 32);         \
            const int16_t *wb = wq + (int64_t)__builtin_ctzll(mb | (uint64_t)1 << 63) * (NV * 32);         \
            ma &= ma - 1, mb &= mb - 1;                                                                    \
            for (int i = 0; i < NV; i++) {                                                                 \
              a[i] = _mm512_add_epi16(a[i], _mm512_loadu_si512(wa + 32 * i));                             \
              b[i] = _mm512_add_epi16(b[i], _mm512_loadu_si512(wb + 32 * i));                              \
            }                                                                                              \
          }                                                                                                \
        }                                                                                                  \
        if (q0 && !any) continue;                                                                          \
        for (int o = 0; o < 1 + two; o++) {                                                                \
          int32_t *ap = acc + (p + o - p0) * (NV * 32);                                                    \
          for (int i = 0; i < NV; i++) {                                                                   \
            const __m512i v = o ? b[i] : a[i];                                                             \
            __m512i lo = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(v));                                 \
            __m512i hi = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(v, 1));                           \
            if (q0) {                                                                                      \
              lo = _mm512_add_epi32(lo, _mm512_loadu_si512(ap + 32 * i));                                  \
              hi = _mm512_add_epi32(hi, _mm512_loadu_si512(ap + 32 * i + 16));                             \
            }                                                                                              \
            _mm512_storeu_si512(ap + 32 * i, lo);                                                          \
            _mm512_storeu_si512(ap + 32 * i + 16, hi);                                                     \
          }                                                                                                \
        }                                                                                                  \
      }                                                                                                    \
    }                                                                                                      \
  }
GATHER_INT_FN(gather_int64, 2)
GATHER_INT_FN(gather_int128, 4)

/* acc: np positions of ot int32 sums (channels-last) -> their floats times unit, in place (exact,
 * see above); sums (ot int64s, or NULL) += each channel's integer sums over the positions */
__attribute__((target("avx512f"))) static void gather_int_floats(void *acc, int64_t np, int64_t ot, float unit,
                                                                int64_t *sums) {
  const __m512 u = _mm512_set1_ps(unit);
  char *base = acc;
  for (int64_t v = 0; v < ot; v += 16) {
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
    for (int64_t p = 0; p < np; p++) {
      char *a = base + 4 * (p * ot + v);
      const __m512i k = _mm512_loadu_si512(a);
      lo = _mm512_add_epi64(lo, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(k)));
      hi = _mm512_add_epi64(hi, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(k, 1)));
      _mm512_storeu_ps((float *)(void *)a, _mm512_mul_ps(_mm512_cvtepi32_ps(k), u));
    }
    if (sums) {
      _mm512_storeu_si512(sums + v, _mm512_add_epi64(_mm512_loadu_si512(sums + v), lo));
      _mm512_storeu_si512(sums + v + 8, _mm512_add_epi64(_mm512_loadu_si512(sums + v + 8), hi));
    }
  }
}

/* The tiles: 128 channels while at least 128 remain, then one of 64 (o is a multiple of 64);
 * o = 32 is one tile of 32 (gather_narrow32). */
static int64_t gather_tile(int64_t O, int64_t o0) { return O == 32 ? 32 : O - o0 >= 128 ? 128 : 64; }

__attribute__((target("avx512f,popcnt"))) static void gather_narrow32(const uint64_t *M, int64_t P, int64_t nq,
                                                                      const float *wt, int64_t p0, int64_t p1,
                                                                      float *acc);

/* events_transpose for a band of the gather (n and ld multiples of 16, ot of 16): 16 positions
 * of 16 channels loaded, transposed in registers (transpose16) and stored as 16 rows of one
 * 64-byte line each, streamed when stream = 1 (y + oc * ld + q then 64-byte aligned). The same
 * values as events_transpose's 4x4 blocks, with a quarter of the loads and stores. */
__attribute__((target("avx512f"))) static void events_transpose16(const float *src, int64_t n, int64_t ot, float *y,
                                                                  int64_t ld, int stream) {
  for (int64_t oc = 0; oc < ot; oc += 16)
    for (int64_t q = 0; q < n; q += 16) {
      __m512 r[16];
      for (int k = 0; k < 16; k++) r[k] = _mm512_loadu_ps(src + (q + k) * ot + oc);
      nn_transpose16(r); /* r[k]: channel oc + k at positions q .. q + 15 */
      float *d = y + oc * ld + q;
      if (stream)
        for (int k = 0; k < 16; k++) _mm512_stream_ps(d + k * ld, r[k]);
      else
        for (int k = 0; k < 16; k++) _mm512_storeu_ps(d + k * ld, r[k]);
    }
}

/* set bits of n words (a POPCNT instruction where the CPU has one) */
PACK_CLONES static int64_t count_bits(const uint64_t *w, int64_t n) {
  int64_t f = 0;
  for (int64_t i = 0; i < n; i++) f += __builtin_popcountll(w[i]);
  return f;
}

static nn_status events_gather(const nn_conv_geom *g, const uint64_t *bits, const float *wcl, float *y, int stream,
                               int64_t *sums, float *unit_out, nn_error *err) {
  const int one = g->k == 1; /* a 1x1 conv: chunks of GATHER_CC1 channels, one tap each */
  const int64_t c = g->c, h = g->h, w = g->w, O = g->o, P = h * w, words = nn_spike_words(c * h * w);
  const int64_t cc = one ? GATHER_CC1 : GATHER_CC, taps = one ? 1 : 9;
  const int64_t nq = (c + cc - 1) / cc, rows = GATHER_BAND / w > 0 ? GATHER_BAND / w : 1;
  uint64_t *R = nn_scratch_get((size_t)(one ? 1 : c * (h + 2)) * sizeof *R);
  uint64_t *M = nn_scratch_get((size_t)(nq * P) * sizeof *M);
  float *acc = nn_scratch_get((size_t)(rows * w * 128) * sizeof *acc);
  float *wt = nn_scratch_get((size_t)(nq * 64 * O) * sizeof *wt);
  if (!R || !M || !acc || !wt) {
    nn_scratch_put(R), nn_scratch_put(M), nn_scratch_put(acc), nn_scratch_put(wt);
    return nn_fail(err, NN_ENOMEM, "conv2d_events: out of memory");
  }
  /* the integer sums where they are exact (O = 32 keeps its own kernel): int16 k's in the
   * first half of wt's bytes, else floats. wt[o0 * nq * 64 + (q * 64 + b) * OT + i] =
   * wcl[(q * cc * taps + b) * O + o0 + i] for the chunk's rows b, 0 for the others (row 63,
   * and those of channels past c in the last chunk). */
  float unit = O % 64 == 0 && !__atomic_load_n(&events_int_off, __ATOMIC_RELAXED) &&
                       __builtin_cpu_supports("avx512bw")
                   ? gather_int_unit(wcl, c * taps * O, c * taps)
                   : 0;
  int16_t *wt16 = (int16_t *)(void *)wt;
  for (int pass = unit > 0 ? 0 : 1; pass < 2; pass++) { /* pass 0: integers; 1: floats */
    int ok = 1;
    for (int64_t o0 = 0, ot; o0 < O && ok; o0 += ot) {
      ot = gather_tile(O, o0);
      for (int64_t q = 0; q < nq && ok; q++) {
        const int64_t nr = taps * (c - q * cc < cc ? c - q * cc : cc), at = o0 * nq * 64 + q * 64 * ot;
        for (int64_t b = 0; b < nr && ok; b++) {
          const float *src = wcl + (q * cc * taps + b) * O + o0;
          if (pass) memcpy(wt + at + b * ot, src, (size_t)ot * sizeof *wt);
          else ok = gather_int_pack(src, ot, 1.0f / unit, wt16 + at + b * ot);
        }
        if (pass) memset(wt + at + nr * ot, 0, (size_t)((64 - nr) * ot) * sizeof *wt);
        else memset(wt16 + at + nr * ot, 0, (size_t)((64 - nr) * ot) * sizeof *wt16);
      }
    }
    if (!pass && ok) break;
    unit = 0;
  }
  for (int64_t j = 0; j < g->n; j++) {
    if (one) {
      gather_masks_1x1(bits + j * words, c, P, M);
    } else {
      gather_rows(bits + j * words, c, h, w, R);
      gather_masks(R, c, h, w, M);
    }
    float *yj = y + j * O * P;
    for (int64_t o0 = 0, ot; o0 < O; o0 += ot) {
      ot = gather_tile(O, o0);
      for (int64_t r0 = 0; r0 < h; r0 += rows) {
        const int64_t p0 = r0 * w, p1 = (r0 + rows < h ? r0 + rows : h) * w;
        float *yb = yj + o0 * P + p0;
        if (ot == 32) { /* the 16x16 register transposes lost on 32-channel bands (see below) */
          gather_narrow32(M, P, nq, wt, p0, p1, acc);
          events_transpose(acc, p1 - p0, O, yb, P, stream);
          continue;
        }
        if (unit > 0) {
          if (ot == 128) gather_int128(M, P, nq, wt16 + o0 * nq * 64, p0, p1, acc);
          else gather_int64(M, P, nq, wt16 + o0 * nq * 64, p0, p1, acc);
          gather_int_floats(acc, p1 - p0, ot, unit, sums ? sums + o0 : NULL);
        } else if (ot == 128) {
          gather_tile128(M, P, nq, wt + o0 * nq * 64, p0, p1, acc);
        } else {
          gather_tile64(M, P, nq, wt + o0 * nq * 64, p0, p1, acc);
        }
        if (P % 16 == 0 && p0 % 16 == 0 && (p1 - p0) % 16 == 0)
          events_transpose16(acc, p1 - p0, ot, yb, P, stream && ((uintptr_t)yb & 63) == 0);
        else
          events_transpose(acc, p1 - p0, ot, yb, P, stream);
      }
    }
  }
  __atomic_fetch_add(&events_gathered, g->n, __ATOMIC_RELAXED);
  if (unit > 0) __atomic_fetch_add(&events_integer, g->n, __ATOMIC_RELAXED);
  if (unit_out) *unit_out = unit;
  nn_scratch_put(R), nn_scratch_put(M), nn_scratch_put(acc), nn_scratch_put(wt);
  return NN_OK;
}

/* The output-stationary kernel for o = 32 (one tile: two zmm per output). Run as above, one
 * output's sum is a chain of dependent adds of two vectors, so the loop waits on the add latency
 * and pays a mispredicted loop exit per output and chunk: at 32 channels it only broke even with
 * the scatter. Here NARROW_LANES = 8 neighbouring outputs walk their chunk masks in lockstep,
 * max(popcount) steps per chunk, each output's accumulators in registers for all the chunks, and
 * are stored once. An output whose mask is exhausted adds row 63 of the chunk, which is zero:
 * +0.0f added to a sum started from +0.0f changes no bit (such a sum is never -0.0f, since x + -x
 * is +0.0f when rounding to nearest), so every output still adds its own terms in the scatter's
 * order. The weights are packed per call as wt[chunk][64 rows][32], rows 9 l + 3 kh + kw as in
 * the masks, the unused ones zero. Measured on one AVX-512 core (bench_forward --events: the
 * SNASNet setting's shapes, 32 samples, alternating with the scatter): 1.3-1.6x the scatter at
 * 16 -> 32 channels on 32x32 maps and 1.2-1.6x at 32 -> 32 on 16x16, from 0 to 20 % firing
 * (docs/performance.md, "Fifth round"); 4 or 12 lanes were slower. The
 * same walk for o = 16 (one zmm per output) lost to the scatter (0.8-0.9x), as did the plain
 * per-output loop for o = 32 (break-even) and the AVX-512 16x16 transpose (in transpose16) in
 * place of events_transpose's 4x4 blocks for 16- and 32-channel bands (0.85-0.95x). */
#define NARROW_LANES 8
__attribute__((target("avx512f,popcnt"))) static void gather_narrow32(const uint64_t *M, int64_t P, int64_t nq,
                                                                      const float *wt, int64_t p0, int64_t p1,
                                                                      float *acc) {
  for (int64_t pg = p0; pg < p1; pg += NARROW_LANES) {
    const int64_t nl = p1 - pg < NARROW_LANES ? p1 - pg : NARROW_LANES;
    __m512 a[NARROW_LANES][2];
    for (int l = 0; l < NARROW_LANES; l++) a[l][0] = a[l][1] = _mm512_setzero_ps();
    for (int64_t q = 0; q < nq; q++) {
      const float *wq = wt + q * 64 * 32;
      uint64_t m[NARROW_LANES];
      int steps = 0;
      for (int l = 0; l < NARROW_LANES; l++) {
        m[l] = l < nl ? M[q * P + pg + l] : 0;
        const int c = __builtin_popcountll(m[l]);
        steps = c > steps ? c : steps;
      }
      for (int t = 0; t < steps; t++)
        for (int l = 0; l < NARROW_LANES; l++) {
          const float *wv = wq + (int64_t)__builtin_ctzll(m[l] | (uint64_t)1 << 63) * 32; /* row 63: zero */
          m[l] &= m[l] - 1;
          a[l][0] = _mm512_add_ps(a[l][0], _mm512_loadu_ps(wv));
          a[l][1] = _mm512_add_ps(a[l][1], _mm512_loadu_ps(wv + 16));
        }
    }
    for (int64_t l = 0; l < nl; l++) {
      _mm512_storeu_ps(acc + (pg + l - p0) * 32, a[l][0]);
      _mm512_storeu_ps(acc + (pg + l - p0) * 32 + 16, a[l][1]);
    }
  }
}

#endif

#if TR16
/* 1x1 convs (stride 1, no padding) with 16 or 32 output channels, output-stationary and written
 * straight into NCHW: for 16 positions p0 .. p0 + 15 of a sample and 16 output channels, sixteen
 * vectors (one per channel, one lane per position) start at +0.0f, and for each input channel
 * in turn the 16 spike bits of those positions, cut out of the packed NCHW bits, are the mask of
 * one masked add of the channel's broadcast weight per output channel. A lane whose bit is clear
 * is left as it is, so each output adds the weights of its firing inputs in channel order, as the
 * scatter does (the same bits); an input channel with no spike among the 16 positions is skipped.
 * The work is o * c / 16 adds per position whatever the firing rate, against the scatter's
 * accumulator pass, memset, decoding and transpose per sample: 1.1-4.7x the scatter on the
 * SNASNet setting's 1x1 shapes at 0-20 % firing (bench_forward --events). */
__attribute__((target("avx512f"))) static void events_1x1_narrow(const nn_conv_geom *g, const uint64_t *bits,
                                                                  const float *wcl, float *y) {
  const int64_t C = g->c, O = g->o, P = g->h * g->w, words = nn_spike_words(C * P);
  for (int64_t j = 0; j < g->n; j++) {
    const uint64_t *b = bits + j * words;
    float *yj = y + j * O * P;
    for (int64_t p0 = 0; p0 < P; p0 += 16) {
      const int64_t n = P - p0 < 16 ? P - p0 : 16;
      const __mmask16 keep = (__mmask16)((1u << n) - 1);
      for (int64_t o0 = 0; o0 < O; o0 += 16) {
        __m512 a[16];
        for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
        for (int64_t ci = 0; ci < C; ci++) {
          const int64_t t = ci * P + p0, wi = t >> 6, sh = t & 63; /* bits t .. t + n - 1 */
          uint64_t v = b[wi] >> sh;
          if (sh + n > 64) v |= b[wi + 1] << (64 - sh);
          const __mmask16 k = (__mmask16)(v & keep);
          if (!k) continue;
          const float *wr = wcl + ci * O + o0;
          for (int i = 0; i < 16; i++) a[i] = _mm512_mask_add_ps(a[i], k, a[i], _mm512_set1_ps(wr[i]));
        }
        for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(yj + (o0 + i) * P + p0, keep, a[i]);
      }
    }
  }
  __atomic_fetch_add(&events_gathered, g->n, __ATOMIC_RELAXED);
}
#endif

nn_status nn_conv2d_events(const nn_conv_geom *g, const uint64_t *bits, const float *wcl, float *y,
                           nn_error *err) {
  return nn_conv2d_events_sums(g, bits, wcl, y, NULL, NULL, err);
}

nn_status nn_conv2d_events_sums(const nn_conv_geom *g, const uint64_t *bits, const float *wcl, float *y,
                                int64_t *sums, float *unit, nn_error *err) {
  if (unit) *unit = 0;
  const int64_t ho = nn_conv_ho(g), wo = nn_conv_wo(g), P = ho * wo, O = g->o, k = g->k;
  const int64_t neurons = g->c * g->h * g->w, words = nn_spike_words(neurons);
  if (g->n <= 0 || P <= 0 || O <= 0) return NN_OK;
  const int64_t kkO = k * k * O, rows = g->c * g->h;
  const int64_t hl = k - 1 - g->pad > 0 ? k - 1 - g->pad : 0, wa = wo + 2 * hl;
  if (g->h > INT16_MAX || g->w > INT16_MAX || g->c * kkO > INT32_MAX || g->h * wa > INT32_MAX)
    return nn_fail(err, NN_EINVAL, "conv2d_events: %lldx%lld maps or %lld weights are too large",
                   (long long)g->h, (long long)g->w, (long long)(g->c * kkO));
  /* outputs of more than EVENTS_STREAM_BYTES bypass the caches on their way to memory */
  const int stream = (double)g->n * (double)(O * P) * sizeof *y >= EVENTS_STREAM_BYTES && ((uintptr_t)y & 15) == 0 &&
                     wo % 4 == 0 && P % 4 == 0;
#if TR16
  const nn_events_kernel kernel = __atomic_load_n(&events_kernel, __ATOMIC_RELAXED);
  /* the narrow output-stationary kernels: faster than the scatter at every firing rate measured */
  if (kernel != NN_EVENTS_SCATTER && nn_conv2d_events_gather_fits(g) && k == 1 && O <= 32) {
    events_1x1_narrow(g, bits, wcl, y);
    return NN_OK;
  }
  if (kernel != NN_EVENTS_SCATTER && nn_conv2d_events_gather_fits(g) && O == 32)
    return events_gather(g, bits, wcl, y, 0, NULL, NULL, err); /* at every rate, like the 1x1 kernel */
  if (kernel != NN_EVENTS_SCATTER && nn_conv2d_events_gather_fits(g)) {
    const int64_t fired = kernel == NN_EVENTS_AUTO ? count_bits(bits, g->n * words) : 0;
    const double min = O % 128 ? GATHER_MIN_RATE_64 : GATHER_MIN_RATE;
    if (kernel == NN_EVENTS_GATHER || (double)fired >= min * (double)(g->n * neurons)) {
      const nn_status st = events_gather(g, bits, wcl, y, stream, sums, unit, err);
      if (stream) _mm_sfence();
      return st;
    }
  }
#endif
  /* tile width: all O channels up to 128 if a band row fits the budget, else the widest of
   * 128 .. 8 dividing O that does (at least 8); O not a multiple of 8: one tile of O */
  const int64_t budget = k == 1 ? EVENTS_BAND_BYTES_1X1 : EVENTS_BAND_BYTES;
  int64_t ot = O;
  if (O % 8 == 0 && !(O <= 128 && wa * O * 4 <= budget)) {
    static const int64_t widths[] = {128, 64, 32, 16};
    ot = 8;
    for (size_t i = 0; i < sizeof widths / sizeof *widths && ot == 8; i++)
      if (O % widths[i] == 0 && wa * widths[i] * 4 <= budget) ot = widths[i];
  }
  int64_t band = budget / (wa * ot * 4);
  band = band < 1 ? 1 : band > ho ? ho : band;
  float *acc = nn_scratch_get((size_t)(band * wa * ot) * sizeof *acc);
  int64_t *rowstart = nn_scratch_get((size_t)(rows + 1) * sizeof *rowstart);
  int32_t *sp = nn_scratch_get((size_t)(neurons + 8) * sizeof *sp); /* + slack of events_decode */
  if (!acc || !rowstart || !sp) {
    nn_scratch_put(acc), nn_scratch_put(rowstart), nn_scratch_put(sp);
    return nn_fail(err, NN_ENOMEM, "conv2d_events: out of memory");
  }
  for (int64_t j = 0; j < g->n; j++) {
    events_decode(bits + j * words, rows, g->h, g->w, wa, rowstart, sp);
    float *yj = y + j * O * P;
    for (int64_t o0 = 0; o0 < O; o0 += ot)
      for (int64_t r0 = 0; r0 < ho; r0 += band) {
        const events_band b = {r0, r0 + band < ho ? r0 + band : ho, wa, hl};
        memset(acc, 0, (size_t)((b.r1 - r0) * wa * ot) * sizeof *acc);
        switch (ot) {
        case 8: events_band8(g, rowstart, sp, wcl, o0, ot, &b, acc); break;
        case 16: events_band16(g, rowstart, sp, wcl, o0, ot, &b, acc); break;
        case 32: events_band32(g, rowstart, sp, wcl, o0, ot, &b, acc); break;
        case 64: events_band64(g, rowstart, sp, wcl, o0, ot, &b, acc); break;
        case 128: events_band128(g, rowstart, sp, wcl, o0, ot, &b, acc); break;
        default: events_band_any(g, rowstart, sp, wcl, o0, ot, &b, acc); break;
        }
        for (int64_t oh = r0; oh < b.r1; oh++)
          events_transpose(acc + ((oh - r0) * wa + hl) * ot, wo, ot, yj + o0 * P + oh * wo, P, stream);
      }
  }
#if defined(__SSE2__)
  if (stream) _mm_sfence(); /* the streamed stores are visible before the map is read */
#endif
  nn_scratch_put(acc), nn_scratch_put(rowstart), nn_scratch_put(sp);
  return NN_OK;
}

int nn_conv2d_prefer_events(const nn_conv_geom *g, int64_t fired) {
  const int64_t inputs = g->n * g->c * g->h * g->w;
  const double max = g->k == 1 ? NN_EVENT_MAX_RATE_1X1 : NN_EVENT_MAX_RATE;
  return inputs > 0 && (double)fired <= max * (double)inputs;
}

nn_status nn_conv2d_spikes(const nn_conv_geom *g, const float *s, const uint64_t *bits,
                           int64_t fired, const float *w, const float *wcl, float *y,
                           nn_error *err) {
  if (bits && nn_conv2d_prefer_events(g, fired)) {
    nn_status st;
    float *tmp = NULL;
    if (!wcl) {
      tmp = malloc((size_t)(g->o * g->c * g->k * g->k) * sizeof *tmp);
      if (!tmp) return nn_fail(err, NN_ENOMEM, "conv2d_spikes: out of memory");
      nn_conv2d_weight_cl(g, w, tmp);
      wcl = tmp;
    }
    st = nn_conv2d_events(g, bits, wcl, y, err);
    free(tmp);
    return st;
  }
  return nn_conv2d(g, s, w, y, err);
}

/* ---- BatchNorm2d ---- */

/* Mirrors PyTorch's CPU batch_norm (1.13, contiguous NCHW) rounding step by step, so that
 * membranes near the threshold round as in the reference fixtures: the sum is accumulated in
 * double and the mean rounded to float; squared deviations are float products accumulated in
 * double and the sum rounded to float; invstd = 1/sqrt(float(var_sum / m) + eps) in double,
 * rounded; alpha = invstd * gamma and beta' = fma(-mean, alpha, beta) in float;
 * y = fma(x, alpha, beta'). Eval mode: invstd = 1/sqrt(running_var + eps) in float.
 * Speed without changing a bit: each channel's sums are one sequential chain of double adds
 * (PyTorch's order), which is latency-bound; BN_CB channels are walked side by side so that
 * BN_CB independent chains overlap in the pipeline (same additions, same order per channel). */
#define BN_CB 8

static int64_t bn_given; /* blocks of channels whose means came from given sums */

/* Statistics of channels ch0 .. ch0+cb (cb <= BN_CB): mean[] and var_sum[] as PyTorch rounds them;
 * given = 1: mean[] holds the means already, only var_sum[] is computed (likewise below). */
NO_CONTRACT static void bn_stats(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch0,
                                 int64_t cb, float *mean, float *var_sum, int given) {
  NO_CONTRACT_BODY
  const int64_t m = n * hw;
  double acc[BN_CB] = {0};
  if (!given) { /* the means, unless given (in mean[]) */
    if (cb == BN_CB) {
      for (int64_t j = 0; j < n; j++) {
        const float *p = x + (j * c + ch0) * hw;
        for (int64_t i = 0; i < hw; i++)
          for (int b = 0; b < BN_CB; b++) acc[b] += p[b * hw + i];
      }
    } else {
      for (int64_t j = 0; j < n; j++) {
        const float *p = x + (j * c + ch0) * hw;
        for (int64_t i = 0; i < hw; i++)
          for (int64_t b = 0; b < cb; b++) acc[b] += p[b * hw + i];
      }
    }
    for (int64_t b = 0; b < cb; b++) {
      mean[b] = m > 0 ? (float)(acc[b] / (double)m) : 0.0f;
      acc[b] = 0;
    }
  }
  if (cb == BN_CB) {
    for (int64_t j = 0; j < n; j++) {
      const float *p = x + (j * c + ch0) * hw;
      for (int64_t i = 0; i < hw; i++)
        for (int b = 0; b < BN_CB; b++) {
          float d = p[b * hw + i] - mean[b];
          acc[b] += (double)(d * d);
        }
    }
  } else {
    for (int64_t j = 0; j < n; j++) {
      const float *p = x + (j * c + ch0) * hw;
      for (int64_t i = 0; i < hw; i++)
        for (int64_t b = 0; b < cb; b++) {
          float d = p[b * hw + i] - mean[b];
          acc[b] += (double)(d * d);
        }
    }
  }
  for (int64_t b = 0; b < cb; b++) var_sum[b] = (float)acc[b];
}

/* The same statistics for BN_CB_AVX2 = 16 channels with AVX2, bit-identical: each of four
 * 4-double vectors holds the running sums of 4 channels (one lane per channel, so every channel
 * still adds its values one at a time in PyTorch's order); 4 positions of 4 channels are loaded
 * and transposed so that lane k gets channel k's next value. Four independent add chains of 4
 * lanes each instead of 8 scalar chains: about twice the rate. */
#if TR16
#define BN_AVX2 1
#define BN_CB_AVX2 16
__attribute__((target("avx2"))) static void bn_stats16_avx2(const float *x, int64_t n, int64_t c, int64_t hw,
                                                            int64_t ch0, float *mean, float *var_sum, int given) {
  const int64_t m = n * hw, h4 = hw & ~(int64_t)3;
  __m256d acc[4];
  for (int pass = given; pass < 2; pass++) {
    __m128 mu[4];
    for (int g = 0; g < 4; g++) {
      acc[g] = _mm256_setzero_pd();
      mu[g] = pass ? _mm_loadu_ps(mean + 4 * g) : _mm_setzero_ps();
    }
    for (int64_t j = 0; j < n; j++) {
      const float *p = x + (j * c + ch0) * hw;
      int64_t i = 0;
      for (; i < h4; i += 4)
        for (int g = 0; g < 4; g++) {
          const float *q = p + 4 * g * hw + i;
          __m128 r0 = _mm_loadu_ps(q), r1 = _mm_loadu_ps(q + hw), r2 = _mm_loadu_ps(q + 2 * hw),
                 r3 = _mm_loadu_ps(q + 3 * hw);
          _MM_TRANSPOSE4_PS(r0, r1, r2, r3); /* r_t = the 4 channels at position i + t */
          if (pass) {
            __m128 d;
            d = _mm_sub_ps(r0, mu[g]), r0 = _mm_mul_ps(d, d);
            d = _mm_sub_ps(r1, mu[g]), r1 = _mm_mul_ps(d, d);
            d = _mm_sub_ps(r2, mu[g]), r2 = _mm_mul_ps(d, d);
            d = _mm_sub_ps(r3, mu[g]), r3 = _mm_mul_ps(d, d);
          }
          acc[g] = _mm256_add_pd(acc[g], _mm256_cvtps_pd(r0));
          acc[g] = _mm256_add_pd(acc[g], _mm256_cvtps_pd(r1));
          acc[g] = _mm256_add_pd(acc[g], _mm256_cvtps_pd(r2));
          acc[g] = _mm256_add_pd(acc[g], _mm256_cvtps_pd(r3));
        }
      for (; i < hw; i++)
        for (int g = 0; g < 4; g++) {
          const float *q = p + 4 * g * hw + i;
          __m128 r = _mm_setr_ps(q[0], q[hw], q[2 * hw], q[3 * hw]);
          if (pass) {
            __m128 d = _mm_sub_ps(r, mu[g]);
            r = _mm_mul_ps(d, d);
          }
          acc[g] = _mm256_add_pd(acc[g], _mm256_cvtps_pd(r));
        }
    }
    for (int g = 0; g < 4; g++) {
      double a[4];
      _mm256_storeu_pd(a, acc[g]);
      for (int k = 0; k < 4; k++) {
        if (pass) var_sum[4 * g + k] = (float)a[k];
        else mean[4 * g + k] = m > 0 ? (float)(a[k] / (double)m) : 0.0f;
      }
    }
  }
}

/* The same 16 channels with AVX-512, bit-identical: 16 positions of the 16 channels are loaded
 * and transposed at once (four shuffle stages instead of four 4x4 transposes per 4 positions),
 * so that row t holds the 16 channels at position i + t; its two halves are widened to doubles
 * and added to two 8-lane sums, one lane per channel, position after position (PyTorch's order
 * for every channel). The 4x4 version is bound by its shuffles; this one needs half as many. */
__attribute__((target("avx512f"))) static void bn_stats16_avx512(const float *x, int64_t n, int64_t c, int64_t hw,
                                                                int64_t ch0, float *mean, float *var_sum,
                                                                int given) {
  const int64_t m = n * hw, h16 = hw & ~(int64_t)15;
  const __m512i lane = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32((int)hw)); /* the caller keeps hw <= INT32_MAX / 16 */
  for (int pass = given; pass < 2; pass++) {
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    const __m512 mu = pass ? _mm512_loadu_ps(mean) : _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j++) {
      const float *p = x + (j * c + ch0) * hw;
      int64_t i = 0;
      for (; i < h16; i += 16) {
        __m512 row[16];
        for (int k = 0; k < 16; k++) row[k] = _mm512_loadu_ps(p + k * hw + i); /* channel k, positions i.. */
        nn_transpose16(row); /* row[q]: the 16 channels at position i + q */
        for (int q = 0; q < 16; q++) {
          __m512 v = row[q];
          if (pass) {
            __m512 d = _mm512_sub_ps(v, mu);
            v = _mm512_mul_ps(d, d);
          }
          lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
          hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
        }
      }
      for (; i < hw; i++) {
        __m512 v = _mm512_i32gather_ps(lane, p + i, 4);
        if (pass) {
          __m512 d = _mm512_sub_ps(v, mu);
          v = _mm512_mul_ps(d, d);
        }
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
      }
    }
    double a[16];
    _mm512_storeu_pd(a, lo);
    _mm512_storeu_pd(a + 8, hi);
    for (int k = 0; k < 16; k++) {
      if (pass) var_sum[k] = (float)a[k];
      else mean[k] = m > 0 ? (float)(a[k] / (double)m) : 0.0f;
    }
  }
}
#else
#define BN_AVX2 0
#define BN_CB_AVX2 16
#endif

/* y = x * a + b over one channel's rows, as ONE fused multiply-add per element: PyTorch's
 * AVX2/AVX-512 batch-norm kernel writes `x * alpha + beta` on Vectorized<float>, which GCC
 * contracts into vfmadd (its default -ffp-contract=fast under -mfma). The SNASNet fixture
 * decides it: with a separately rounded product one downconv membrane lands on the threshold
 * and 10,790 of 3.3 M spikes differ; with the fused form none does. fmaf is correctly rounded
 * everywhere (an instruction in the "fma" clone, libm's emulation otherwise), so the bits do not
 * depend on the CPU. add = 1: y += (x * a + b), the product-sum rounded first as PyTorch's
 * separate addition of the edge outputs does; base = q is that case. base = another map: q = base
 * + (x * a + b), the same sum without first copying base into q (a skip edge's input, deferred
 * by the forward). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define FMA_CLONES
#endif
FMA_CLONES static void bn_affine(const float *restrict p, int64_t cnt, float a, float b, float *restrict q,
                                 int add) {
  if (add)
    for (int64_t i = 0; i < cnt; i++) q[i] += fmaf(p[i], a, b);
  else
    for (int64_t i = 0; i < cnt; i++) q[i] = fmaf(p[i], a, b);
}
FMA_CLONES static void bn_affine_base(const float *restrict p, int64_t cnt, float a, float b,
                                      const float *restrict base, float *restrict q) {
  for (int64_t i = 0; i < cnt; i++) q[i] = base[i] + fmaf(p[i], a, b);
}
/* in place (p == q, add = 0): restrict is not violated in spirit (each element is read then
 * written once), but the compiler may assume no aliasing, so that case has its own loop */
FMA_CLONES static void bn_affine_inplace(float *q, int64_t cnt, float a, float b) {
  for (int64_t i = 0; i < cnt; i++) q[i] = fmaf(q[i], a, b);
}

/* The statistics and running averages as PyTorch 1.13 rounds them: update_stats (Normalization.cpp,
 * plain x86-64 code, no FMA) divides the float var_sum by n in float and averages in float;
 * collect_linear_and_constant_terms (batch_norm_kernel.cpp, compiled with -mfma) computes
 * beta - mean * alpha, contracted like the affine step. */
NO_CONTRACT static void bn_forward(const float *x, int64_t n, int64_t c, int64_t hw, const float *gamma,
                                   const float *beta, float *running_mean, float *running_var, int train,
                                   double momentum, double eps, float *y, float *save_mean, float *save_invstd,
                                   const float *base, int64_t ch0, int64_t ch1, float *ta, float *tb,
                                   const double *sum) {
  NO_CONTRACT_BODY
  const int64_t m = n * hw;
  const float mom = (float)momentum; /* PyTorch: momentum_ = static_cast<param_t>(momentum) */
  float bmean[BN_CB_AVX2], bvar[BN_CB_AVX2], ba[BN_CB_AVX2], bb[BN_CB_AVX2];
  int64_t blk0 = ch0, blk1 = ch0; /* channels [blk0, blk1) have their statistics in bmean/bvar */
  int64_t af0 = ch0;              /* channels [af0, ch) have their affine terms in ba/bb, not applied yet */
#if BN_AVX2
  const int avx2 = __builtin_cpu_supports("avx2"), avx512 = hw <= INT32_MAX / 16 && __builtin_cpu_supports("avx512f");
#else
  const int avx2 = 0;
#endif
  for (int64_t ch = ch0; ch < ch1; ch++) {
    float mean, invstd;
    if (train) {
      if (ch == blk1) {
        blk0 = ch;
        /* the sums given: each mean as the sequential sum rounds it (the caller vouches that sum
         * is that sum's exact value), and only the second pass over x */
        const int given = sum != NULL;
        for (int64_t k = 0; given && k < BN_CB_AVX2 && ch + k < ch1; k++)
          bmean[k] = m > 0 ? (float)(sum[ch + k] / (double)m) : 0.0f;
        if (given) __atomic_fetch_add(&bn_given, 1, __ATOMIC_RELAXED);
#if BN_AVX2
        if (avx2 && ch1 - ch >= BN_CB_AVX2) {
          if (avx512) bn_stats16_avx512(x, n, c, hw, ch, bmean, bvar, given);
          else bn_stats16_avx2(x, n, c, hw, ch, bmean, bvar, given);
          blk1 = ch + BN_CB_AVX2;
        } else
#endif
        {
          blk1 = ch + (ch1 - ch < BN_CB ? ch1 - ch : BN_CB);
          bn_stats(x, n, c, hw, ch, blk1 - ch, bmean, bvar, given);
        }
      }
      mean = bmean[ch - blk0];
      float var_sum = bvar[ch - blk0];
      /* PyTorch: VarTransform<double>{}(_var_sum_a[f] / n, eps), the quotient a float */
      invstd = m > 0 ? (float)(1.0 / sqrt((double)(var_sum / (float)m) + eps)) : 0.0f;
      if (running_mean) running_mean[ch] = mom * mean + (1 - mom) * running_mean[ch];
      if (running_var && m > 1) {
        double unbiased = (double)(var_sum / (float)(m - 1)); /* accscalar_t = float quotient */
        running_var[ch] = (float)(mom * unbiased + (1 - mom) * running_var[ch]);
      }
    } else {
      mean = running_mean ? running_mean[ch] : 0.0f;
      invstd = 1.0f / sqrtf((running_var ? running_var[ch] : 1.0f) + (float)eps);
    }
    const float a = invstd * (gamma ? gamma[ch] : 1.0f);
    ba[ch - af0] = a, bb[ch - af0] = fmaf(-mean, a, beta ? beta[ch] : 0.0f);
    if (save_mean) save_mean[ch] = mean;
    if (save_invstd) save_invstd[ch] = invstd;
    if (ta) { /* the terms only (nn_bn_terms_channels): no block to apply */
      ta[ch] = ba[ch - af0], tb[ch] = bb[ch - af0];
      af0 = ch + 1;
      continue;
    }
    /* The affine step of a block of channels, sample by sample: each sample's rows of the block
     * are one contiguous run (a paper-size block of 16 channels: 64 KB per sample; channel by
     * channel, 4 KB runs 512 KB apart, it was 0.8x as fast). The block's statistics are all
     * taken before any of its rows is overwritten (x may be y). */
    if (ch + 1 == ch1 || ch + 1 == (train ? blk1 : af0 + BN_CB_AVX2)) {
      for (int64_t j = 0; j < n; j++)
        for (int64_t k = af0; k <= ch; k++) {
          const float *p = x + (j * c + k) * hw;
          float *q = y + (j * c + k) * hw;
          if (base && base != y) bn_affine_base(p, hw, ba[k - af0], bb[k - af0], base + (j * c + k) * hw, q);
          else if (p == q && !base) bn_affine_inplace(q, hw, ba[k - af0], bb[k - af0]);
          else bn_affine(p, hw, ba[k - af0], bb[k - af0], q, base != NULL);
        }
      af0 = ch + 1;
    }
  }
}

NO_CONTRACT void nn_bn_forward(const float *x, int64_t n, int64_t c, int64_t hw, const float *gamma,
                               const float *beta, float *running_mean, float *running_var, int train,
                               double momentum, double eps, float *y, float *save_mean, float *save_invstd) {
  NO_CONTRACT_BODY
  bn_forward(x, n, c, hw, gamma, beta, running_mean, running_var, train, momentum, eps, y, save_mean, save_invstd, NULL,
             0, c, NULL, NULL, NULL);
}

NO_CONTRACT void nn_bn_forward_add(const float *x, int64_t n, int64_t c, int64_t hw, const float *gamma,
                                   const float *beta, float *running_mean, float *running_var, int train,
                                   double momentum, double eps, float *y) {
  NO_CONTRACT_BODY
  bn_forward(x, n, c, hw, gamma, beta, running_mean, running_var, train, momentum, eps, y, NULL, NULL, y, 0, c, NULL,
             NULL, NULL);
}

NO_CONTRACT void nn_bn_forward_channels(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch0, int64_t ch1,
                                        const float *gamma, const float *beta, float *running_mean,
                                        float *running_var, int train, double momentum, double eps, float *y,
                                        const float *base, const double *sum) {
  NO_CONTRACT_BODY
  bn_forward(x, n, c, hw, gamma, beta, running_mean, running_var, train, momentum, eps, y, NULL, NULL, base, ch0,
             ch1, NULL, NULL, sum);
}

NO_CONTRACT void nn_bn_terms_channels(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch0, int64_t ch1,
                                      const float *gamma, const float *beta, float *running_mean, float *running_var,
                                      int train, double momentum, double eps, float *a, float *b, const double *sum) {
  NO_CONTRACT_BODY
  bn_forward(x, n, c, hw, gamma, beta, running_mean, running_var, train, momentum, eps, NULL, NULL, NULL, NULL, ch0,
             ch1, a, b, sum);
}

int64_t nn_bn_given_sums(void) { return __atomic_load_n(&bn_given, __ATOMIC_RELAXED); }

/* A BatchNorm's output fed to its reader (nn_bn_lif_bits, nn_bn_pool) is made a chunk of whole
 * channels at a time, at most BN_CHUNK floats (32 KB, read back from L1 instead of from memory);
 * for a LIF (words = 1) also a multiple of 64 neurons, so that each chunk fills whole words of
 * spikes, and where no count of channels does, the whole sample. Channels per chunk: */
#define BN_CHUNK 8192
static int64_t bn_chunk(int64_t c, int64_t hw, int words) {
  int64_t kc = hw > 0 && hw <= BN_CHUNK ? BN_CHUNK / hw : 1;
  while (words && kc > 1 && (kc * hw) % 64) kc--;
  if (words && (kc * hw) % 64) kc = c;
  return kc < c ? kc : c;
}

int64_t nn_bn_lif_tmp_floats(int64_t c, int64_t hw) { return bn_chunk(c, hw, 1) * hw; }

static void sum_rows(const float *restrict p, const float *restrict p2, int64_t cnt, float *restrict q) {
  for (int64_t i = 0; i < cnt; i++) q[i] = p[i] + p2[i];
}

int64_t nn_bn_lif_bits(const float *x, const float *src, int64_t s0, int64_t s1, int64_t c, int64_t hw,
                       const float *a, const float *b, float *tmp, float *v, float tau, float thr, int fresh,
                       uint64_t *bits) {
  const int64_t neurons = c * hw, words = nn_spike_words(neurons), kc = bn_chunk(c, hw, 1);
  int64_t fired = 0;
  for (int64_t j = s0; j < s1; j++)
    for (int64_t k0 = 0; k0 < c; k0 += kc) {
      const int64_t k1 = k0 + kc < c ? k0 + kc : c;
      for (int64_t k = k0; k < k1; k++) {
        const float *p = x + (j * c + k) * hw;
        float *q = tmp + (k - k0) * hw;
        if (!a) sum_rows(p, src + (j * c + k) * hw, hw, q);
        else if (src) bn_affine_base(p, hw, a[k], b[k], src + (j * c + k) * hw, q);
        else bn_affine(p, hw, a[k], b[k], q, 0);
      }
      fired += nn_lif_step_bits(v + j * neurons + k0 * hw, tmp, 1, (k1 - k0) * hw, tau, thr, fresh,
                                bits + j * words + k0 * hw / 64);
    }
  return fired;
}

void nn_bn_forward_ref(const float *x, int64_t n, int64_t c, int64_t hw, const float *gamma,
                       const float *beta, float *running_mean, float *running_var, int train,
                       double momentum, double eps, float *y, float *save_mean,
                       float *save_invstd) {
  for (int64_t ch = 0; ch < c; ch++) {
    double mean = 0, var = 0, cnt = (double)(n * hw);
    if (train) {
      for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < hw; i++) mean += x[(j * c + ch) * hw + i];
      mean /= cnt;
      for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < hw; i++)
          var += (x[(j * c + ch) * hw + i] - mean) * (x[(j * c + ch) * hw + i] - mean);
      var /= cnt;
      if (running_mean) running_mean[ch] = (float)(running_mean[ch] * (1 - momentum) + mean * momentum);
      if (running_var && cnt > 1)
        running_var[ch] = (float)(running_var[ch] * (1 - momentum) + var * cnt / (cnt - 1) * momentum);
    } else {
      mean = running_mean ? running_mean[ch] : 0;
      var = running_var ? running_var[ch] : 1;
    }
    double g = gamma ? gamma[ch] : 1, b = beta ? beta[ch] : 0;
    for (int64_t j = 0; j < n; j++)
      for (int64_t i = 0; i < hw; i++)
        y[(j * c + ch) * hw + i] = (float)((x[(j * c + ch) * hw + i] - mean) / sqrt(var + eps) * g + b);
    if (save_mean) save_mean[ch] = (float)mean;
    if (save_invstd) save_invstd[ch] = (float)(1 / sqrt(var + eps));
  }
}

/* ---- LIF ---- */

int64_t nn_lif_step(float *v, const float *x, int64_t cnt, float tau, float thr, float *s,
                    float *v_pre) {
  int64_t fired = 0;
  for (int64_t i = 0; i < cnt; i++) {
    float vi = v[i] + (x[i] - v[i]) / tau; /* division, as SpikingJelly (bitwise agreement) */
    int sp = vi >= thr;
    if (v_pre) v_pre[i] = vi;
    v[i] = sp ? 0.0f : vi;
    s[i] = (float)sp;
    fired += sp;
  }
  return fired;
}

#if BN_AVX2
#define LIF_AVX512_MAX_BYTES (8 << 20) /* state maps up to this size take lif_words_avx512 */
/* The full words of one sample of nn_lif_step_bits with AVX-512: sixteen neurons per
 * instruction, the same IEEE subtraction, division, addition, compare and select as the SSE2
 * and scalar loops (a spike resets to +0), so the same bits; picked where the CPU has it. */
__attribute__((target("avx512f,popcnt"))) static int64_t lif_words_avx512(float *vj, const float *xj, int64_t full,
                                                                         float tau, float thr, int fresh,
                                                                         uint64_t *dst) {
  const __m512 vtau = _mm512_set1_ps(tau), vthr = _mm512_set1_ps(thr);
  int64_t fired = 0;
  for (int64_t wi = 0; wi < full; wi++) {
    uint64_t word = 0;
    for (int b = 0; b < 4; b++) {
      float *pv = vj + wi * 64 + 16 * b;
      __m512 v0 = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(pv);
      __m512 vi = _mm512_add_ps(v0, _mm512_div_ps(_mm512_sub_ps(_mm512_loadu_ps(xj + wi * 64 + 16 * b), v0), vtau));
      __mmask16 sp = _mm512_cmp_ps_mask(vi, vthr, _CMP_GE_OQ); /* false for NaN, as vi >= thr */
      _mm512_storeu_ps(pv, _mm512_maskz_mov_ps((__mmask16)~sp, vi));
      word |= (uint64_t)sp << (16 * b);
    }
    dst[wi] = word;
    fired += __builtin_popcountll(word);
  }
  return fired;
}
#endif

/* nn_lif_step with the spikes written bit-packed (nn_spikes_pack's layout) instead of as floats:
 * one pass over the maps instead of three (LIF, then packing a float map written in between).
 * fresh = 1 takes the state as 0 without reading v (the first step of a pass: no zeroing).
 * Four neurons at a time with SSE2 (baseline x86-64: the same IEEE division, compare and
 * select as the scalar loop, so the same bits). */
PACK_CLONES int64_t nn_lif_step_bits(float *v, const float *x, int64_t samples, int64_t neurons, float tau,
                                     float thr, int fresh, uint64_t *bits) {
  const int64_t words = nn_spike_words(neurons), full = neurons / 64;
  int64_t fired = 0;
#if BN_AVX2
  /* measured: 1.8-2.3x the SSE2 loop's rate on maps that stay in the caches, 20 % slower on
   * maps streamed from memory (a paper-size call), which keep the SSE2 loop */
  const int avx512 = (double)samples * (double)neurons * sizeof *v <= LIF_AVX512_MAX_BYTES &&
                     __builtin_cpu_supports("avx512f");
#endif
  for (int64_t j = 0; j < samples; j++) {
    float *vj = v + j * neurons;
    const float *xj = x + j * neurons;
    uint64_t *dst = bits + j * words;
    int64_t wi = 0;
#if BN_AVX2
    if (avx512) fired += lif_words_avx512(vj, xj, full, tau, thr, fresh, dst), wi = full;
#endif
#if defined(__SSE2__)
    const __m128 vtau = _mm_set1_ps(tau), vthr = _mm_set1_ps(thr);
    for (; wi < full; wi++) {
      uint64_t word = 0;
      for (int b = 0; b < 16; b++) {
        float *pv = vj + wi * 64 + 4 * b;
        __m128 v0 = fresh ? _mm_setzero_ps() : _mm_loadu_ps(pv);
        __m128 vi = _mm_add_ps(v0, _mm_div_ps(_mm_sub_ps(_mm_loadu_ps(xj + wi * 64 + 4 * b), v0), vtau));
        __m128 sp = _mm_cmpge_ps(vi, vthr);
        _mm_storeu_ps(pv, _mm_andnot_ps(sp, vi)); /* hard reset to +0 */
        word |= (uint64_t)_mm_movemask_ps(sp) << (4 * b);
      }
      dst[wi] = word;
      fired += __builtin_popcountll(word);
    }
#endif
    for (; wi < words; wi++) {
      int64_t b0 = wi * 64, nb = neurons - b0 < 64 ? neurons - b0 : 64;
      uint64_t word = 0;
      for (int64_t b = 0; b < nb; b++) {
        float v0 = fresh ? 0.0f : vj[b0 + b], vi = v0 + (xj[b0 + b] - v0) / tau;
        int sp = vi >= thr;
        vj[b0 + b] = sp ? 0.0f : vi;
        word |= (uint64_t)sp << b;
      }
      dst[wi] = word;
      fired += __builtin_popcountll(word);
    }
  }
  return fired;
}

/* bits[samples][words] -> s[samples][neurons] of 0/1 floats (the dense path's input): a byte
 * at a time through a table of its 8 floats. */
static float unpack_lut[256][8];
static pthread_once_t unpack_once = PTHREAD_ONCE_INIT;
static void unpack_init(void) {
  for (int b = 0; b < 256; b++)
    for (int i = 0; i < 8; i++) unpack_lut[b][i] = (float)((b >> i) & 1);
}

void nn_spikes_unpack(const uint64_t *bits, int64_t samples, int64_t neurons, float *s) {
  const int64_t words = nn_spike_words(neurons), bytes = neurons / 8;
  pthread_once(&unpack_once, unpack_init);
  for (int64_t j = 0; j < samples; j++) {
    const uint64_t *bw = bits + j * words;
    float *sj = s + j * neurons;
    for (int64_t q = 0; q < bytes; q++)
      memcpy(sj + 8 * q, unpack_lut[(bw[q >> 3] >> (8 * (q & 7))) & 0xff], sizeof unpack_lut[0]);
    for (int64_t i = 8 * bytes; i < neurons; i++) sj[i] = (float)((bw[i >> 6] >> (i & 63)) & 1);
  }
}

int64_t nn_lif_step_ref(float *v, const float *x, int64_t cnt, float tau, float thr, float *s,
                        float *v_pre) {
  int64_t fired = 0;
  for (int64_t i = 0; i < cnt; i++) {
    float dv = x[i] - v[i];
    dv = dv / tau;
    v[i] = v[i] + dv;
    if (v_pre) v_pre[i] = v[i];
    if (v[i] - thr >= 0.0f) {
      s[i] = 1.0f;
      v[i] = 0.0f;
      fired++;
    } else {
      s[i] = 0.0f;
    }
  }
  return fired;
}

/* ---- pools ---- */

/* Same additions in the same order as the plain window loop (rows top to bottom, columns left
 * to right, from 0.0f, skipping the padding; the sum is then divided by 9, as PyTorch's CPU
 * avg_pool2d), so results are bit-identical to it; interior pixels use a branch-free row loop
 * the compiler vectorizes across columns (AVX2 clone picked at load time). */
/* s / 9.0f, bit for bit, as a double multiply (twice the rate of a float division): with q = s/9
 * in [2^e, 2^(e+1)), float midpoints there are odd multiples of 2^(e-24), and s (a float of
 * 9x the size) is a multiple of 2^(e-20), so |s - 9m| >= 2^(e-24) for every midpoint m and q
 * stays at least 2^-29 q away from all of them; the double product is within 2^-52 q of q, so it
 * rounds to the same float (subnormals alike; 0, inf and NaN pass through). Checked against the
 * division in tests/c/test_perf.c. */
static inline float div9(float s) { return (float)((double)s * (1.0 / 9.0)); }

static void pool3_edge(const float *a, int64_t h, int64_t w, int64_t i, int64_t j, float *b, int add) {
  int64_t i0 = i > 0 ? i - 1 : 0, i1 = i + 1 < h ? i + 1 : h - 1;
  int64_t j0 = j > 0 ? j - 1 : 0, j1 = j + 1 < w ? j + 1 : w - 1;
  float sum = 0;
  for (int64_t u = i0; u <= i1; u++)
    for (int64_t v = j0; v <= j1; v++) sum += a[u * w + v];
  if (add) b[i * w + j] += div9(sum);
  else b[i * w + j] = div9(sum);
}

/* The window's first two rows at column j, from 0.0f, left to right, top to bottom. */
static inline float pool3_rows2(const float *restrict r0, const float *restrict r1, int64_t j) {
  float sum = 0.0f + r0[j - 1];
  sum += r0[j];
  sum += r0[j + 1];
  sum += r1[j - 1];
  sum += r1[j];
  return sum + r1[j + 1];
}

/* One border row of a map with h, w >= 3: o[j] for the window rows r0 and r1 (the rows above
 * and below the map are padding), the same additions as pool3_edge in a loop the compiler
 * vectorizes; the corners through pool3_edge. */
static inline void pool3_border_row(const float *a, int64_t h, int64_t w, int64_t i, const float *restrict r0,
                                    const float *restrict r1, float *restrict b, int add) {
  float *restrict o = b + i * w;
  pool3_edge(a, h, w, i, 0, b, add);
  for (int64_t j = 1; j < w - 1; j++) {
    const float sum = pool3_rows2(r0, r1, j);
    if (add) o[j] += div9(sum);
    else o[j] = div9(sum);
  }
  pool3_edge(a, h, w, i, w - 1, b, add);
}

/* add = 1: y += pool(x), the pooled value rounded first (a cell's edge sum); add is a constant
 * in each caller, so the row loop is specialised by inlining. The border columns of the inner
 * rows are written out (two columns, three rows) instead of pool3_edge's clamped loops: on
 * 32x32 and 16x16 maps the borders took more time than the interior. */
__attribute__((always_inline)) static inline void avgpool3x3(const float *x, int64_t planes, int64_t h, int64_t w,
                                                             float *y, int add) {
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *a = x + pl * h * w;
    float *b = y + pl * h * w;
    for (int64_t i = 0; i < h; i++) {
      if (h < 3 || w < 3) {
        for (int64_t j = 0; j < w; j++) pool3_edge(a, h, w, i, j, b, add);
        continue;
      }
      if (i == 0 || i == h - 1) {
        pool3_border_row(a, h, w, i, a + (i == 0 ? 0 : h - 2) * w, a + (i == 0 ? 1 : h - 1) * w, b, add);
        continue;
      }
      const float *restrict r0 = a + (i - 1) * w, *restrict r1 = a + i * w, *restrict r2 = a + (i + 1) * w;
      float *restrict o = b + i * w;
      float sl = 0.0f + r0[0], sr = 0.0f + r0[w - 2]; /* the border columns: rows i-1 .. i+1 */
      sl += r0[1], sr += r0[w - 1];
      sl += r1[0], sr += r1[w - 2];
      sl += r1[1], sr += r1[w - 1];
      sl += r2[0], sr += r2[w - 2];
      sl += r2[1], sr += r2[w - 1];
      if (add) o[0] += div9(sl), o[w - 1] += div9(sr);
      else o[0] = div9(sl), o[w - 1] = div9(sr);
      for (int64_t j = 1; j < w - 1; j++) {
        float sum = pool3_rows2(r0, r1, j);
        sum += r2[j - 1];
        sum += r2[j];
        sum += r2[j + 1];
        if (add) o[j] += div9(sum);
        else o[j] = div9(sum);
      }
    }
  }
}

#if TR16
/* The same pool with AVX-512, 16 outputs of a row per vector, each output's additions in the
 * same order from 0.0f. The padding columns enter as +0.0f (masked loads): a sum started from
 * +0.0f is never -0.0f (x + -x is +0.0f when rounding to nearest), and s + 0.0f is s for every
 * other float, NaN and infinities included, so the sums are those of the loop that skips them;
 * the padding rows are skipped. The division is div9's, eight lanes at a time in double. */
__attribute__((target("avx512f"))) static inline __m512 div9_512(__m512 s) {
  const __m512d ninth = _mm512_set1_pd(1.0 / 9.0);
  const __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(s)), ninth));
  const __m256 hi = _mm512_cvtpd_ps(
      _mm512_mul_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1))), ninth));
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

__attribute__((target("avx512f"))) static void avgpool3x3_avx512(const float *x, int64_t planes, int64_t h,
                                                                 int64_t w, float *y, int add) {
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *a = x + pl * h * w;
    float *b = y + pl * h * w;
    for (int64_t i = 0; i < h; i++) {
      const float *rows[3] = {i > 0 ? a + (i - 1) * w : NULL, a + i * w, i + 1 < h ? a + (i + 1) * w : NULL};
      for (int64_t j0 = 0; j0 < w; j0 += 16) {
        const int64_t n = w - j0 < 16 ? w - j0 : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1);
        const __mmask16 mr = w - j0 - 1 < 16 ? (__mmask16)(m & ((1u << (w - j0 - 1)) - 1)) : m; /* j + 1 < w */
        __m512 sum = _mm512_setzero_ps();
        for (int u = 0; u < 3; u++) {
          if (!rows[u]) continue;
          const float *r = rows[u] + j0;
          const __m512 c = _mm512_maskz_loadu_ps(m, r);
          /* column j - 1: from the row, or at j0 = 0 the centre shifted up one lane after a zero
           * (no address before the row's start) */
          const __m512i z = _mm512_setzero_si512();
          const __m512 l = j0 ? _mm512_maskz_loadu_ps(m, r - 1)
                              : _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(c), z, 15));
          sum = _mm512_add_ps(sum, l);
          sum = _mm512_add_ps(sum, c);
          sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mr, r + 1));
        }
        __m512 q = div9_512(sum);
        float *o = b + i * w + j0;
        if (add) q = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), q);
        _mm512_mask_storeu_ps(o, m, q);
      }
    }
  }
}

/* The same pool for rows of at most 32 floats (every map of the presets: 32, 28, 16, 14, ...).
 * Measured on one AVX-512 core, the kernel above took about 20 cycles per 16 outputs on such
 * maps, cached or not: each vector's sum is a chain of nine dependent adds, and a short row
 * gives the core only one or two chains to overlap. Here a plane is first copied into a zeroed
 * buffer with a padding row above and below and a padding column on each side, so that every
 * window element is a plain load (the padding adds +0.0f, as above), and two rows of two
 * vectors, or four rows of one, are summed together: four independent chains. The quotient is
 * the division's (correctly rounded, so div9's value), here faster than div9's conversions.
 * Measured the same way (cycles per 16 outputs, pool / pool-and-add): 1024 planes of 28x28
 * 22.2 / 24.6 -> 14.0 / 16.7, 2048 of 14x14 24.5 / 28.8 -> 11.5 / 19.9, 512 of 32x32 17.4 /
 * 19.2 -> 12.3 / 14.4.
 * Where the maps come from memory (a search's maps, between which other layers have run; every
 * paper-size map) the copy's loads and the masked stores waited on it: the hardware prefetchers
 * did not run ahead of this access pattern. Each plane's lines two planes ahead, of x and of y,
 * are prefetched: a paper-size map 10.3-12.5 -> 8.5-9.6 ns per 16 outputs (bench_forward --pool),
 * the main job's pools 4.4 -> 3.0 s of CPU (perf). */
/* The cache lines of n floats at p, fetched ahead: to read, or to write (and read) */
static inline void prefetch_read(const float *p, int64_t n) {
  for (int64_t o = 0; o < n; o += 16) __builtin_prefetch(p + o, 0, 3);
}
static inline void prefetch_write(float *p, int64_t n) {
  for (int64_t o = 0; o < n; o += 16) __builtin_prefetch(p + o, 1, 3);
}

#define POOL3_PAD 48 /* floats per padded row: w + 2 <= 34, and 16 + 2 + 15 loaded at most */
#define POOL3_PAD_MAX_ROWS 170 /* two buffers of (h + 2) * POOL3_PAD floats on the stack: 64 KB */

__attribute__((target("avx512f"), always_inline)) static inline void pool3_block(const float *pad, int64_t i, int R,
                                                                               int NCH, int64_t w, float *b,
                                                                               int add) {
  __m512 s[4];
  for (int k = 0; k < R * NCH; k++) s[k] = _mm512_setzero_ps();
  for (int u = 0; u < 3; u++)
    for (int t = 0; t < 3; t++)
      for (int k = 0; k < R * NCH; k++) /* row i + k / NCH, columns 16 (k % NCH) .. + 15 */
        s[k] = _mm512_add_ps(s[k], _mm512_loadu_ps(pad + (i + k / NCH + u) * POOL3_PAD + 16 * (k % NCH) + t));
  __mmask16 m[4];
  for (int k = 0; k < R * NCH; k++) {
    const int64_t c0 = 16 * (k % NCH), n = w - c0 < 16 ? w - c0 : 16;
    m[k] = (__mmask16)((1u << n) - 1);
    s[k] = _mm512_div_ps(s[k], _mm512_set1_ps(9.0f)); /* correctly rounded: div9's value */
  }
  if (add) /* all the block's outputs are read before any is written: a load next to a
            * masked store just made waits for it */
    for (int k = 0; k < R * NCH; k++)
      s[k] = _mm512_add_ps(_mm512_maskz_loadu_ps(m[k], b + (i + k / NCH) * w + 16 * (k % NCH)), s[k]);
  for (int k = 0; k < R * NCH; k++) _mm512_mask_storeu_ps(b + (i + k / NCH) * w + 16 * (k % NCH), m[k], s[k]);
}

/* One padded plane's outputs, R rows of NCH vectors at a time (constants where it is inlined) */
__attribute__((target("avx512f"), always_inline)) static inline void pool3_plane(const float *p, int64_t h, int64_t w,
                                                                               float *b, int add, int R, int NCH) {
  int64_t i = 0;
  for (; i + R <= h; i += R)
    if (add) pool3_block(p, i, R, NCH, w, b, 1);
    else pool3_block(p, i, R, NCH, w, b, 0);
  for (; i < h; i++)
    if (add) pool3_block(p, i, 1, NCH, w, b, 1);
    else pool3_block(p, i, 1, NCH, w, b, 0);
}

__attribute__((target("avx512f"))) static void pool3_pad_fill(const float *a, int64_t h, int64_t w, float *pad) {
  const __mmask16 m0 = (__mmask16)((1u << (w < 16 ? w : 16)) - 1), m1 = (__mmask16)((1u << (w > 16 ? w - 16 : 0)) - 1);
  for (int64_t r = 0; r < h; r++) {
    float *d = pad + (r + 1) * POOL3_PAD + 1;
    _mm512_mask_storeu_ps(d, m0, _mm512_maskz_loadu_ps(m0, a + r * w));
    if (w > 16) _mm512_mask_storeu_ps(d + 16, m1, _mm512_maskz_loadu_ps(m1, a + r * w + 16));
  }
}

__attribute__((target("avx512f"))) static void avgpool3x3_avx512_narrow(const float *x, int64_t planes, int64_t h,
                                                                        int64_t w, float *y, int add) {
  /* two buffers: the next plane is copied in before this one is summed, so that the loads do
   * not wait on the copy's stores */
  float pad[2][POOL3_PAD_MAX_ROWS * POOL3_PAD] __attribute__((aligned(64)));
  for (int k = 0; k < 2; k++) memset(pad[k], 0, (size_t)(h + 2) * POOL3_PAD * sizeof(float)); /* the padding stays zero */
  if (planes > 0) pool3_pad_fill(x, h, w, pad[0]);
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *p = pad[pl & 1];
    float *b = y + pl * h * w;
    if (pl + 2 < planes) /* two planes ahead: x to read, y to write (and read when add) */
      prefetch_read(x + (pl + 2) * h * w, h * w), prefetch_write(y + (pl + 2) * h * w, h * w);
    if (pl + 1 < planes) pool3_pad_fill(x + (pl + 1) * h * w, h, w, pad[(pl + 1) & 1]);
    if (w > 16) pool3_plane(p, h, w, b, add, 2, 2);
    else pool3_plane(p, h, w, b, add, 4, 1);
  }
}
#endif

/* the plain loops, inlined into each clone (without always_inline GCC kept one copy for the
 * baseline, so the AVX2 clone ran SSE2 code); the AVX-512 kernel where it runs */
EVENTS_CLONES static void avgpool3x3_clones(const float *x, int64_t planes, int64_t h, int64_t w, float *y,
                                            int add) {
  if (add) avgpool3x3(x, planes, h, w, y, 1);
  else avgpool3x3(x, planes, h, w, y, 0);
}

static void avgpool3x3_any(const float *x, int64_t planes, int64_t h, int64_t w, float *y, int add) {
#if TR16
  if (ops_avx512()) {
    if (w <= 32 && h + 2 <= POOL3_PAD_MAX_ROWS && !__atomic_load_n(&pool3_narrow_off, __ATOMIC_RELAXED))
      avgpool3x3_avx512_narrow(x, planes, h, w, y, add);
    else avgpool3x3_avx512(x, planes, h, w, y, add);
    return;
  }
#endif
  avgpool3x3_clones(x, planes, h, w, y, add);
}

void nn_avgpool3x3(const float *x, int64_t planes, int64_t h, int64_t w, float *y) {
  avgpool3x3_any(x, planes, h, w, y, 0);
}
void nn_avgpool3x3_add(const float *x, int64_t planes, int64_t h, int64_t w, float *y) {
  avgpool3x3_any(x, planes, h, w, y, 1);
}

void nn_avgpool3x3_ref(const float *x, int64_t planes, int64_t h, int64_t w, float *y) {
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t i = 0; i < h; i++)
      for (int64_t j = 0; j < w; j++) {
        double sum = 0;
        for (int64_t di = -1; di <= 1; di++)
          for (int64_t dj = -1; dj <= 1; dj++) {
            int64_t u = i + di, v = j + dj;
            if (u >= 0 && u < h && v >= 0 && v < w) sum += x[(pl * h + u) * w + v];
          }
        y[(pl * h + i) * w + j] = (float)(sum / 9.0); /* padding counts: always /9 */
      }
}

/* k = 2 (the downconv pool, every timestep) has its own loop: the same four additions from 0.0f
 * in the same order, so the same bits. */
static void avgpool2(const float *x, int64_t planes, int64_t h, int64_t w, float *y) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t i = 0; i < ho; i++) {
      const float *r0 = x + (pl * h + 2 * i) * w, *r1 = r0 + w;
      float *o = y + (pl * ho + i) * wo;
      for (int64_t j = 0; j < wo; j++) {
        float sum = 0.0f + r0[2 * j];
        sum += r0[2 * j + 1];
        sum += r1[2 * j];
        sum += r1[2 * j + 1];
        o[j] = sum / 4.0f;
      }
    }
}

#if TR16
/* The same with AVX-512, 16 outputs of a row per vector: the two input rows' 32 floats are
 * loaded (masked past the row's last pair) and split into their even and odd columns, and each
 * output adds them in the loop's order from 0.0f; the quotient by 4 is a product by 0.25 (a
 * power of two: the same rounding, subnormals included): 1.1-1.4x the loop's rate
 * (bench_forward --pool). On maps from memory (a search's, whose other layers ran since) the
 * next plane's input rows and output lines are prefetched, as in the 3x3 pool (without the
 * output's, the masked stores waited on them and the main job gained nothing). */
__attribute__((target("avx512f"))) static void avgpool2_avx512(const float *x, int64_t planes, int64_t h,
                                                              int64_t w, float *y) {
  const int64_t ho = h / 2, wo = w / 2;
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
  const __m512 quarter = _mm512_set1_ps(0.25f);
  for (int64_t pl = 0; pl < planes; pl++) {
    if (pl + 1 < planes) /* the next plane: its rows read, its outputs written */
      prefetch_read(x + (pl + 1) * h * w, 2 * ho * w), prefetch_write(y + (pl + 1) * ho * wo, ho * wo);
    for (int64_t i = 0; i < ho; i++) {
      const float *r0 = x + (pl * h + 2 * i) * w, *r1 = r0 + w;
      float *o = y + (pl * ho + i) * wo;
      for (int64_t j0 = 0; j0 < wo; j0 += 16) {
        const int64_t n = wo - j0 < 16 ? wo - j0 : 16; /* outputs, 2 n inputs per row */
        const __mmask16 mlo = n >= 8 ? (__mmask16)0xffff : (__mmask16)((1u << (2 * n)) - 1);
        const __mmask16 mhi = n <= 8 ? (__mmask16)0 : n == 16 ? (__mmask16)0xffff : (__mmask16)((1u << (2 * n - 16)) - 1);
        const __m512 a0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * j0), a1 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * j0 + 16);
        const __m512 b0 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * j0), b1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * j0 + 16);
        __m512 sum = _mm512_add_ps(_mm512_setzero_ps(), _mm512_permutex2var_ps(a0, ev, a1));
        sum = _mm512_add_ps(sum, _mm512_permutex2var_ps(a0, od, a1));
        sum = _mm512_add_ps(sum, _mm512_permutex2var_ps(b0, ev, b1));
        sum = _mm512_add_ps(sum, _mm512_permutex2var_ps(b0, od, b1));
        _mm512_mask_storeu_ps(o + j0, (__mmask16)((1u << n) - 1), _mm512_mul_ps(sum, quarter));
      }
    }
  }
}
#endif

void nn_avgpool(const float *x, int64_t planes, int64_t h, int64_t w, int64_t k, float *y) {
  const int64_t ho = h / k, wo = w / k;
  const float div = (float)(k * k);
  if (k == 2) {
#if TR16
    if (ops_avx512()) {
      avgpool2_avx512(x, planes, h, w, y);
      return;
    }
#endif
    avgpool2(x, planes, h, w, y);
    return;
  }
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *a = x + pl * h * w;
    float *b = y + pl * ho * wo;
    for (int64_t i = 0; i < ho; i++)
      for (int64_t j = 0; j < wo; j++) {
        float sum = 0;
        for (int64_t u = 0; u < k; u++)
          for (int64_t v = 0; v < k; v++) sum += a[(i * k + u) * w + j * k + v];
        b[i * wo + j] = sum / div;
      }
  }
}

int64_t nn_bn_pool_tmp_floats(int64_t c, int64_t hw) { return bn_chunk(c, hw, 0) * hw; }

void nn_bn_pool(const float *x, int64_t s0, int64_t s1, int64_t c, int64_t h, int64_t w, int64_t k, const float *a,
                const float *b, float *tmp, float *y) {
  const int64_t hw = h * w, out = (h / k) * (w / k), kc = bn_chunk(c, hw, 0);
  for (int64_t j = s0; j < s1; j++)
    for (int64_t k0 = 0; k0 < c; k0 += kc) {
      const int64_t k1 = k0 + kc < c ? k0 + kc : c;
      for (int64_t q = k0; q < k1; q++) bn_affine(x + (j * c + q) * hw, hw, a[q], b[q], tmp + (q - k0) * hw, 0);
      nn_avgpool(tmp, k1 - k0, h, w, k, y + (j * c + k0) * out);
    }
}

void nn_avgpool_ref(const float *x, int64_t planes, int64_t h, int64_t w, int64_t k, float *y) {
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t i = 0; i < h / k; i++)
      for (int64_t j = 0; j < w / k; j++) {
        double sum = 0;
        for (int64_t u = i * k; u < i * k + k; u++)
          for (int64_t v = j * k; v < j * k + k; v++) sum += x[(pl * h + u) * w + v];
        y[(pl * (h / k) + i) * (w / k) + j] = (float)(sum / (double)(k * k));
      }
}
