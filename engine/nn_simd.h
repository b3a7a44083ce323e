/* nn_simd.h: SIMD helpers shared by the engine's kernels (internal). Each function carries its
 * own target attribute; callers check the CPU before calling it. */
#ifndef NN_SIMD_H
#define NN_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NN_SIMD_X86 1

/* r[k] <- column k of the 16x16 float matrix whose rows are r[0..15] (four shuffle stages):
 * the conv's bands, BatchNorm's statistics (where it beat four 4x4 transposes) and the sparse
 * Linear's transposed weights */
__attribute__((target("avx512f"))) static inline void nn_transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int k = 0; k < 16; k += 2) {
    t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < 16; k += 4)
    for (int u = 0; u < 2; u++) {
      r[k + u] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[k + u]), _mm512_castps_pd(t[k + 2 + u])));
      r[k + 2 + u] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[k + u]), _mm512_castps_pd(t[k + 2 + u])));
    }
  for (int k = 0; k < 16; k += 8)
    for (int u = 0; u < 4; u++) {
      t[k + u] = _mm512_shuffle_f32x4(r[k + u], r[k + 4 + u], 0x88);
      t[k + 4 + u] = _mm512_shuffle_f32x4(r[k + u], r[k + 4 + u], 0xdd);
    }
  /* column pos[q] ends in register q */
  static const int pos[16] = {0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15};
  for (int u = 0; u < 8; u++) {
    r[pos[u]] = _mm512_shuffle_f32x4(t[u], t[u + 8], 0x88);
    r[pos[u + 8]] = _mm512_shuffle_f32x4(t[u], t[u + 8], 0xdd);
  }
}
#else
#define NN_SIMD_X86 0
#endif

#endif
