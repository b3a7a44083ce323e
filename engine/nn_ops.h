/* nn_ops.h: the layer kernels of the spiking forward pass (docs/model.md): Conv2d (im2col +
 * sgemm, event-driven on bit-packed spikes), BatchNorm2d, LIF, average pools, Linear.
 * Every fast kernel has a naive *_ref twin (plain loops) that the tests compare against.
 *
 * Conventions (stable: the training helper builds the backward kernels on them):
 * - Feature maps are float32 NCHW, contiguous: x[((s*C + c)*H + h)*W + w].
 * - Conv weights are [O][C][k][k]; Linear weights are [out][in] (PyTorch layouts).
 * - All buffers belong to the caller; kernels never keep pointers. Outputs are overwritten
 *   (never accumulated into) unless the comment says "adds". Kernels that need scratch memory
 *   allocate and free it themselves and return NN_ENOMEM on failure; the rest return void.
 * - Sizes are int64_t; only nn_blas.c narrows them to int. */
#ifndef NEURONAS_NN_OPS_H
#define NEURONAS_NN_OPS_H

#include "neuronas/nn.h"

/* Geometry of one Conv2d call: n samples of c x h x w in, o output channels, square k x k
 * kernel, stride, zero padding `pad` on every side. No bias (docs/model.md: convs have none). */
typedef struct nn_conv_geom {
  int64_t n, c, h, w;
  int64_t o, k, stride, pad;
} nn_conv_geom;

/* Output side: (in + 2 pad - k) / stride + 1 (floor), as PyTorch. */
int64_t nn_conv_out(int64_t in, int64_t k, int64_t stride, int64_t pad);
static inline int64_t nn_conv_ho(const nn_conv_geom *g) {
  return (g->h + 2 * g->pad - g->k) / g->stride + 1;
}
static inline int64_t nn_conv_wo(const nn_conv_geom *g) {
  return (g->w + 2 * g->pad - g->k) / g->stride + 1;
}

/* im2col of ONE sample x[c][h][w]: row r = (ci*k + kh)*k + kw of cols (c*k*k rows, each
 * starting at cols + r*ld) gets, at column oh*wo + ow, x[ci][oh*stride - pad + kh][...]
 * or 0 outside the image. ld >= ho*wo. */
void nn_im2col(const nn_conv_geom *g, const float *x, float *cols, int64_t ld);
/* The adjoint of nn_im2col: ADDS every cols entry back into dx[c][h][w] (one sample);
 * for the input gradient of a conv (dx must be zeroed by the caller first). */
void nn_col2im(const nn_conv_geom *g, const float *cols, int64_t ld, float *dx);

/* y[n][o][ho][wo] = sum_{c,kh,kw} w[o][c][kh][kw] * x[n][c][ih][iw] (zero padding).
 * Dense path: im2col of a chunk of samples, one sgemm per chunk; 1x1/stride-1/pad-0 convs
 * skip the im2col. Scratch is allocated per call (NN_ENOMEM). */
nn_status nn_conv2d(const nn_conv_geom *g, const float *x, const float *w, float *y, nn_error *err);
void nn_conv2d_ref(const nn_conv_geom *g, const float *x, const float *w, float *y);
/* Samples per sgemm of nn_conv2d for geometry g (g->n caps it): nn_conv2d over sample ranges
 * starting at multiples of it makes exactly the sgemm calls of the whole call (the same bits). */
int64_t nn_conv2d_chunk(const nn_conv_geom *g);

/* ---- spikes ---- */
/* Words per sample of a bit-packed spike map of `neurons` neurons: ceil(neurons / 64). */
static inline int64_t nn_spike_words(int64_t neurons) { return (neurons + 63) / 64; }
/* Packs binary maps s[samples][neurons] (0 or 1 floats; any s != 0 counts as a spike) into
 * bits[samples][words]: bit b of word i of sample j is neuron 64 i + b; tail bits 0.
 * Returns the number of spikes. */
int64_t nn_spikes_pack(const float *s, int64_t samples, int64_t neurons, uint64_t *bits);
int64_t nn_spikes_pack_ref(const float *s, int64_t samples, int64_t neurons, uint64_t *bits);

/* Conv weights rearranged for the event-driven path: wcl[c][kh][kw][o] (channels-last). */
void nn_conv2d_weight_cl(const nn_conv_geom *g, const float *w, float *wcl);
/* Event-driven conv of a binary input given as bit-packed spikes (bits[n][words] over
 * c*h*w neurons in NCHW order, as nn_spikes_pack makes them): for every spike
 * (ci, ih, iw) and every kernel tap hitting an output (oh, ow), the o-vector
 * wcl[ci][kh][kw][:] is added to a channels-last accumulator, which is then transposed
 * into y[n][o][ho][wo]. Equals nn_conv2d on the 0/1 input up to float summation order. */
nn_status nn_conv2d_events(const nn_conv_geom *g, const uint64_t *bits, const float *wcl, float *y,
                           nn_error *err);
/* The same, and where the sums ran in integers (nn_conv2d_events_integer) *unit > 0 and sums[o]
 * (o int64s, which the caller zeroes; or NULL) gains channel o's sum over the call's samples and
 * positions in units of *unit: every output is such an integer times *unit, exactly, so the sequential
 * double sum of a channel's outputs (a BatchNorm's mean) is exactly that sum times *unit while
 * it stays below 2^53 units (fewer than 2^29 outputs per channel). Elsewhere *unit = 0 and sums
 * is untouched. */
nn_status nn_conv2d_events_sums(const nn_conv_geom *g, const uint64_t *bits, const float *wcl, float *y,
                                int64_t *sums, float *unit, nn_error *err);
/* Which band kernel nn_conv2d_events runs (process-wide; for benchmarks and tests, which
 * compare the two in one run): NN_EVENTS_AUTO (default) takes an output-stationary kernel
 * where it fits and is measured faster, NN_EVENTS_SCATTER never, NN_EVENTS_GATHER wherever it
 * fits whatever the firing rate. The results are the same bits whichever runs. */
typedef enum { NN_EVENTS_AUTO, NN_EVENTS_SCATTER, NN_EVENTS_GATHER } nn_events_kernel;
void nn_conv2d_events_set_kernel(nn_events_kernel k);
/* 1 when an output-stationary kernel can run geometry g on this CPU (AVX-512): 3x3, stride 1,
 * pad 1, maps at most 62 wide, o a multiple of 64 or o = 32; or 1x1, stride 1, no padding,
 * o = 16 or 32 or a multiple of 64. */
int nn_conv2d_events_gather_fits(const nn_conv_geom *g);
/* Samples computed by the output-stationary kernel since the process started (all threads). */
int64_t nn_conv2d_events_gathered(void);
/* Samples of those whose sums ran in integers (the weights all small integer multiples of one
 * power of two, as FxP-n quantizers with n <= 8 make them: exact, so the same bits), and a
 * switch for benchmarks and tests (on by default). */
int64_t nn_conv2d_events_integer(void);
void nn_conv2d_events_set_integer(int on);
/* Firing rate (spikes / inputs) at or below which convs on spikes take the event path, for
 * k >= 3 and for 1x1 kernels. Crossovers measured with scripts/bench-forward's shapes on one
 * core of the AMD EPYC build machine: about 55 % for 3x3 convs (42 % with the AVX2 clones
 * only, no AVX-512) and 37 % for 1x1 convs; the thresholds keep a margin (at 30 % a 3x3 conv
 * is 1.9x faster event-driven, 1.4x with AVX2; a 1x1 conv 1.5x at 20 %, 1.15x at 30 %).
 * Code that must decide exactly as nn_net_forward does (to get the same floats) calls
 * nn_conv2d_prefer_events. */
#define NN_EVENT_MAX_RATE 0.30
#define NN_EVENT_MAX_RATE_1X1 0.25
/* 1 when a conv of geometry g on `fired` spikes should take the event path. */
int nn_conv2d_prefer_events(const nn_conv_geom *g, int64_t fired);
/* A conv on a binary input: event-driven when nn_conv2d_prefer_events (using bits, wcl), dense
 * on s otherwise. wcl may be NULL (then computed here). */
nn_status nn_conv2d_spikes(const nn_conv_geom *g, const float *s, const uint64_t *bits,
                           int64_t fired, const float *w, const float *wcl, float *y,
                           nn_error *err);

/* ---- BatchNorm2d (docs/model.md) ---- */
/* x, y: [n][c][hw] (y may equal x). train = 1: batch mean and biased variance per channel
 * (computed in double), y = (x - mean) / sqrt(var + eps) * gamma + beta, rounded as PyTorch's
 * CPU kernel does (y = fma(x, alpha, beta'), see nn_ops.c); running_mean/var
 * (if non-NULL) move by `momentum` toward the batch mean and the UNBIASED variance
 * (var * m/(m-1), m = n*hw), as PyTorch. train = 0: uses running_mean/var instead.
 * save_mean / save_invstd (optional, c floats each) get the mean and 1/sqrt(var + eps) used,
 * for the backward pass. gamma/beta NULL mean 1/0. */
void nn_bn_forward(const float *x, int64_t n, int64_t c, int64_t hw, const float *gamma,
                   const float *beta, float *running_mean, float *running_var, int train,
                   double momentum, double eps, float *y, float *save_mean, float *save_invstd);
/* The same, ADDING the normalised map into y (y += BN(x)); no save_mean/save_invstd. */
void nn_bn_forward_add(const float *x, int64_t n, int64_t c, int64_t hw, const float *gamma,
                       const float *beta, float *running_mean, float *running_var, int train,
                       double momentum, double eps, float *y);
/* Channels [ch0, ch1) only of nn_bn_forward (base = NULL) or of y = base + BN(x) (base = y:
 * nn_bn_forward_add; base another map of y's shape: the same sum without copying base into y
 * first). Each channel's statistics, running averages and outputs are computed exactly as the
 * whole call computes them, so disjoint channel ranges may run on different threads. sum (c
 * doubles, or NULL; train mode only): each channel's sum of x, which the caller knows to be the
 * exact value of the sequential double sum (nn_conv2d_events_sums): the means come from it and
 * only the deviations' pass reads x. */
void nn_bn_forward_channels(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch0, int64_t ch1,
                            const float *gamma, const float *beta, float *running_mean, float *running_var,
                            int train, double momentum, double eps, float *y, const float *base, const double *sum);
/* The statistics and running averages of nn_bn_forward_channels, without the affine step: its
 * terms a[ch], b[ch] (y = fma(x, a, b), one rounding) for channels [ch0, ch1). */
void nn_bn_terms_channels(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch0, int64_t ch1,
                          const float *gamma, const float *beta, float *running_mean, float *running_var,
                          int train, double momentum, double eps, float *a, float *b, const double *sum);
/* Blocks of channels (up to 16) whose means came from a given sum, since the process started. */
int64_t nn_bn_given_sums(void);
/* A BatchNorm's output fed straight to a LIF, for samples [s0, s1) of x (n x c x hw): the LIF
 * (nn_lif_step_bits: state v, spikes into bits, both indexed from sample 0) reads
 * y = src + fma(x, a, b), or fma(x, a, b) with src NULL, the same floats as
 * nn_bn_forward_channels writes (base = src), or y = x + src with a = b = NULL (a node's sum).
 * y is made in tmp (nn_bn_lif_tmp_floats(c, hw) floats) a few channels at a time and never
 * stored. Returns the spikes. */
int64_t nn_bn_lif_bits(const float *x, const float *src, int64_t s0, int64_t s1, int64_t c, int64_t hw,
                       const float *a, const float *b, float *tmp, float *v, float tau, float thr, int fresh,
                       uint64_t *bits);
int64_t nn_bn_lif_tmp_floats(int64_t c, int64_t hw);
/* A BatchNorm's output pooled: for samples [s0, s1) of x (n x c x h x w), y (c x h/k x w/k per
 * sample, from sample 0) = nn_avgpool(fma(x, a, b), k), the BN's output made in tmp
 * (nn_bn_pool_tmp_floats(c, h * w) floats) a few planes at a time and never stored. */
void nn_bn_pool(const float *x, int64_t s0, int64_t s1, int64_t c, int64_t h, int64_t w, int64_t k, const float *a,
                const float *b, float *tmp, float *y);
int64_t nn_bn_pool_tmp_floats(int64_t c, int64_t hw);
void nn_bn_forward_ref(const float *x, int64_t n, int64_t c, int64_t hw, const float *gamma,
                       const float *beta, float *running_mean, float *running_var, int train,
                       double momentum, double eps, float *y, float *save_mean,
                       float *save_invstd);
#define NN_BN_EPS 1e-5      /* docs/model.md */
#define NN_BN_MOMENTUM 0.1  /* docs/model.md */

/* ---- LIF (docs/model.md, SpikingJelly decay_input, hard reset to 0) ---- */
/* One timestep for cnt neurons, in float32 exactly as SpikingJelly:
 *   v = v + (x - v) / tau;  s = (v >= thr);  v = s ? 0 : v.
 * v is the state (in/out, caller zeroes it at the start of a pass); s gets 0/1 floats
 * (s may equal x); v_pre (optional) gets the membrane before the reset, for the surrogate
 * gradient. Returns the number of spikes. */
int64_t nn_lif_step(float *v, const float *x, int64_t cnt, float tau, float thr, float *s,
                    float *v_pre);
int64_t nn_lif_step_ref(float *v, const float *x, int64_t cnt, float tau, float thr, float *s,
                        float *v_pre);
/* The same step for samples x neurons, the spikes written bit-packed into bits[samples][words]
 * (nn_spikes_pack's layout) rather than as floats. fresh = 1: the state is taken as 0 and v is
 * only written (the first step of a pass; the same bits as a zeroed v). Returns the number of
 * spikes. */
int64_t nn_lif_step_bits(float *v, const float *x, int64_t samples, int64_t neurons, float tau, float thr,
                         int fresh, uint64_t *bits);
/* bits[samples][words] -> s[samples][neurons] as 0/1 floats. */
void nn_spikes_unpack(const uint64_t *bits, int64_t samples, int64_t neurons, float *s);

/* ---- pools (planes = n*c maps of h x w) ---- */
/* AvgPool2d(3, stride 1, pad 1, count_include_pad): y = (sum of the 3x3 window) / 9. */
void nn_avgpool3x3(const float *x, int64_t planes, int64_t h, int64_t w, float *y);
void nn_avgpool3x3_ref(const float *x, int64_t planes, int64_t h, int64_t w, float *y);
/* The same, ADDING the pooled map into y (y += pool(x)). */
void nn_avgpool3x3_add(const float *x, int64_t planes, int64_t h, int64_t w, float *y);
/* AvgPool2d(k, stride k): y is planes x (h/k) x (w/k) (floor), mean of each k x k block. */
void nn_avgpool(const float *x, int64_t planes, int64_t h, int64_t w, int64_t k, float *y);
void nn_avgpool_ref(const float *x, int64_t planes, int64_t h, int64_t w, int64_t k, float *y);

/* For tests and benchmarks: 0 turns off the AVX-512 path of nn_avgpool3x3(_add), so that the
 * AVX2 / baseline loops run on an AVX-512 machine; 1 (the default) takes it where the CPU has
 * AVX-512F. Process-wide; the results are the same bits either way. */
void nn_ops_set_avx512(int on);
/* For benchmarks: 0 makes nn_avgpool3x3(_add) take its general AVX-512 kernel on short rows too
 * instead of the one for rows of at most 32 floats; 1 (the default) takes that one. The same
 * bits either way. */
void nn_avgpool3x3_set_narrow(int on);

/* ---- Linear (nn_linear.c) ---- */
/* y[n][out] = x[n][in] . w[out][in]^T + b[out] (b may be NULL). Each output is one chain of
 * fused multiply-adds over the inputs in ascending order from +0, then + b[o]: the same bits for
 * any split over samples or outputs and on every CPU. */
nn_status nn_linear(const float *x, int64_t n, int64_t in, const float *w, const float *b,
                    int64_t out, float *y, nn_error *err);
/* The same in pieces: nn_linear_xt writes inputs [lo, hi) of x transposed,
 * xt[i * nn_linear_xt_stride(n) + j] (in x nn_linear_xt_stride(n) floats, samples padded with
 * zeros), and nn_linear_outputs computes the outputs [o0, o1) of every sample from it (pieces
 * of any size give the same bits). */
int64_t nn_linear_xt_stride(int64_t n);
void nn_linear_xt(const float *x, int64_t n, int64_t in, int64_t lo, int64_t hi, float *xt);
nn_status nn_linear_outputs(const float *xt, int64_t n, int64_t in, const float *w, const float *b,
                            int64_t out, int64_t o0, int64_t o1, float *y, nn_error *err);
/* The kernels in use: 2 AVX-512, 1 AVX2 and FMA, 0 the plain chain (every level gives the
 * same bits); nn_linear_set_level caps it (for tests; the default cap is 2). */
int nn_linear_level(void);
void nn_linear_set_level(int max);
/* The sparse path (nn_linear.c): the same chains with the terms of x == 0 left out, which gives
 * the same bits when every weight is finite. wt is w transposed into tiles of
 * NN_LINEAR_WT_TILE outputs (nn_linear_wt_floats(in, out) floats; nn_linear_wt writes tiles
 * [t0, t1) and returns 0 when one of their weights is Inf or NaN: then the sparse path must not
 * be used). nn_linear_count counts the nonzeros of rows [j0, j1) into cnt[j] and returns their
 * sum; nn_linear_terms_at places row j's list at tm + at[j] with room for cnt[j] +
 * NN_LINEAR_TERMS_SLACK terms and returns the terms tm must hold; nn_linear_terms lists rows
 * [j0, j1)'s terms with x != 0 (input and value, inputs ascending) there; nn_linear_sparse
 * computes the outputs [o0, o1) of every row from them and x (pieces of any size give the same
 * bits). nn_linear_prefer_sparse says whether a call with that many nonzero inputs should take
 * it: density at most NN_LINEAR_SPARSE_DENSITY, a transposed copy of at most
 * NN_LINEAR_SPARSE_MAX_WT_BYTES (docs/model.md) and in <= INT32_MAX; nn_linear_terms_cap is a
 * size for tm that fits every call it accepts (the same for every call of a shape, so that
 * recycled scratch fits). For tests and benches, nn_linear_set_sparse sets the density limit
 * (0: never sparse, 1: whenever the weights allow) and nn_linear_sparse_calls counts
 * nn_linear_sparse's calls since the start. */
#define NN_LINEAR_WT_TILE 128
#define NN_LINEAR_TERMS_SLACK 16
#ifndef NN_LINEAR_SPARSE_DENSITY /* a build may set it (0: never sparse, for benches) */
#define NN_LINEAR_SPARSE_DENSITY 0.4
#endif
#define NN_LINEAR_SPARSE_MAX_WT_BYTES ((int64_t)64 << 20) /* the paper size's 16384 -> 1024 classifier */
typedef struct nn_linear_term {
  int32_t i;
  float x;
} nn_linear_term;
int64_t nn_linear_wt_floats(int64_t in, int64_t out);
int nn_linear_wt(const float *w, int64_t in, int64_t out, int64_t t0, int64_t t1, float *wt);
int64_t nn_linear_count(const float *x, int64_t in, int64_t j0, int64_t j1, int64_t *cnt);
int64_t nn_linear_terms_at(const int64_t *cnt, int64_t n, int64_t *at);
void nn_linear_terms(const float *x, int64_t in, int64_t j0, int64_t j1, const int64_t *at, nn_linear_term *tm);
nn_status nn_linear_sparse(const float *x, int64_t n, int64_t in, const nn_linear_term *tm, const int64_t *at,
                           const int64_t *cnt, const float *wt, const float *b, int64_t out, int64_t o0, int64_t o1,
                           float *y, nn_error *err);
int nn_linear_prefer_sparse(int64_t nonzeros, int64_t n, int64_t in, int64_t out);
int64_t nn_linear_terms_cap(int64_t n, int64_t in);
void nn_linear_set_sparse(double max_density);
int64_t nn_linear_sparse_calls(void);
/* Double accumulation (for tolerance checks). */
void nn_linear_ref(const float *x, int64_t n, int64_t in, const float *w, const float *b,
                   int64_t out, float *y);

#endif
