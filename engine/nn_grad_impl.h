/* nn_grad_impl.h: forward-with-tape and backward kernels for training (docs/model.md; docs/training.md).
 * Private to the engine (nn_train.c and the tests); the forward kernels are nn_ops.h's. All arrays are float32, NCHW, row-major,
 * caller-owned; "accumulated" outputs are added to (+=), all others overwritten.
 * Every fast kernel has a naive *_ref twin checked against it in tests/c/test_grad.c. */
#ifndef NEURONAS_NN_GRAD_IMPL_H
#define NEURONAS_NN_GRAD_IMPL_H

#include "neuronas/nn.h"
#include "neuronas/nn_rng.h"
#include "nn_ops.h"

/* A growable scratch buffer (independent regions); free with nn_ws_free. */
#define NN_WS_REGIONS 3
typedef struct nn_ws {
  float *buf[NN_WS_REGIONS];
  size_t cap[NN_WS_REGIONS]; /* floats */
} nn_ws;
/* Returns region r (0..NN_WS_REGIONS-1) with room for n floats, or NULL (err set, NN_ENOMEM). */
float *nn_ws_get(nn_ws *ws, int r, size_t n, nn_error *err);
void nn_ws_free(nn_ws *ws);

/* ---- Conv2d backward (forward: nn_conv2d / nn_conv2d_spikes in nn_ops.h) ----
 * Geometry as nn_ops: x [n][c][h][w], w [o][c][k][k], dy [n][o][ho][wo]. Per sample, with
 * nn_im2col columns and sgemm: dw += dL/dw; dx = dL/dx unless dx is NULL (stride 1: correlation
 * of dy with the flipped, transposed kernel; else col2im of w^T dy); dx_accumulate = 1 adds. */
nn_status nn_conv2d_bwd(const nn_conv_geom *g, const float *x, const float *w, const float *dy,
                        float *dx, int dx_accumulate, float *dw, nn_ws *ws, nn_error *err);
/* Naive loops; dx and dw overwritten. */
void nn_conv2d_bwd_ref(const nn_conv_geom *g, const float *x, const float *w, const float *dy,
                       float *dx, float *dw);

/* ---- BatchNorm2d backward (forward: nn_bn_forward with save_mean/save_invstd) ---- */
/* Training-mode backward from the saved mean/invstd and the input x: dx overwritten
 * (or added to when dx_accumulate), dgamma/dbeta accumulated. */
void nn_bn2d_bwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                 const float *mean, const float *invstd, const float *dy, float *dx,
                 int dx_accumulate, float *dgamma, float *dbeta);
void nn_bn2d_bwd_ref(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                     const float *dy, float *dx, float *dgamma, float *dbeta);

/* ---- LIF backward (forward: nn_lif_step with v_pre), docs/model.md ---- */
#define NN_ATAN_ALPHA 2.0
/* ATan surrogate ds/dv = (alpha/2) / (1 + (pi/2 * alpha * (v - thr))^2). */
double nn_atan_surrogate(double v, double thr, double alpha);
/* Backward of one step, detached reset (the reset mask is a constant):
 *   dh = ds * sg(h) + dv * (1 - s);  dx = dh / tau;  dv <- dh * (1 - 1/tau)
 * dv enters as dL/d(post-reset v_t) (0 at the last step) and leaves as dL/d(v_{t-1}).
 * dx is overwritten, or added to when dx_accumulate. */
void nn_lif_bwd_step(int64_t m, double tau, double thr, double alpha, const float *h,
                     const float *ds, float *dv, float *dx, int dx_accumulate);

/* ---- average pooling backward, padding counted in the divisor (count_include_pad) ----
 * Forward: nn_avgpool3x3 (k 3, stride 1, pad 1) and nn_avgpool (k, stride k, pad 0);
 * x is [nc][h][w], y [nc][ho][wo] with ho = (h + 2 pad - k)/stride + 1. */
/* dx (+)= pooled backward of dy. */
void nn_avgpool_bwd(int64_t nc, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                    const float *dy, float *dx, int dx_accumulate);

/* ---- Linear backward (forward: nn_linear): x [n][in], w [out][in], dy [n][out] ---- */
/* dx overwritten (NULL: skipped), dw/db accumulated (db may be NULL). */
nn_status nn_linear_bwd(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db, nn_error *err);

/* ---- Dropout: mask drawn once per forward pass (shared by all T steps): 0 or 1/(1-p) ---- */
void nn_dropout_mask(int64_t m, double p, nn_rng *r, float *mask);
void nn_mul(int64_t m, const float *a, const float *b, float *y); /* y = a*b; also the bwd */

/* ---- boost pooling: out [n][classes] = mean of each group of `cluster` inputs ---- */
void nn_boost_fwd(int64_t n, int64_t classes, int64_t cluster, const float *x, float *out);
/* dx (+)= dout / cluster spread over each group. */
void nn_boost_bwd(int64_t n, int64_t classes, int64_t cluster, const float *dout, float *dx,
                  int dx_accumulate);

/* ---- softmax cross-entropy, mean over the batch ----
 * logits [n][k], labels in 0..k-1 (floats, as datasets deliver them). Returns NN_EINVAL for a
 * label outside 0..k-1. *loss = mean CE; dlogits (NULL: skipped) = (softmax - onehot)/n;
 * *correct (NULL: skipped) = number of samples whose argmax equals the label. */
nn_status nn_softmax_ce(int64_t n, int64_t k, const float *logits, const float *labels,
                        double *loss, float *dlogits, int64_t *correct, nn_error *err);

/* ---- optimizers (PyTorch semantics) ----
 * SGD: d = g + wd*w; buf = mom*buf + d; w -= lr*buf.
 * Adam: d = g + wd*w; m = b1 m + (1-b1) d; v = b2 v + (1-b2) d^2;
 *       w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps), t = 1-based step count. */
void nn_sgd_step(int64_t m, float *w, const float *g, float *buf, double lr, double momentum,
                 double wd);
void nn_adam_step(int64_t m, float *w, const float *g, float *m1, float *m2, double lr,
                  double b1, double b2, double eps, double wd, int64_t t);
/* Cosine annealing from lr0 (step 0) to lr_min (step total): docs/training.md. */
double nn_cosine_lr(double lr0, double lr_min, int64_t step, int64_t total);

#endif
