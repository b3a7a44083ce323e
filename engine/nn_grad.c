/* nn_grad.c: training kernels, forward (with what the backward needs) and backward
 * (docs/model.md layer semantics, docs/training.md training). See nn_grad_impl.h for layouts. */
#include "nn_grad_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_blas.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

float *nn_ws_get(nn_ws *ws, int r, size_t n, nn_error *err) {
  if (n == 0) n = 1;
  if (ws->cap[r] < n) {
    float *p = realloc(ws->buf[r], n * sizeof *p);
    if (!p) {
      nn_fail(err, NN_ENOMEM, "out of memory (training scratch of %zu floats)", n);
      return NULL;
    }
    ws->buf[r] = p;
    ws->cap[r] = n;
  }
  return ws->buf[r];
}

void nn_ws_free(nn_ws *ws) {
  if (!ws) return;
  for (int r = 0; r < NN_WS_REGIONS; r++) {
    free(ws->buf[r]);
    ws->buf[r] = NULL;
    ws->cap[r] = 0;
  }
}

/* ---------------- conv2d ---------------- */

/* Per sample s (so the im2col columns stay in cache and no layout shuffles are needed):
 *   dw [o][CKK] += dy_s [o][P] * im2col(x_s)^T [P][CKK]
 *   stride 1: dx_s [c][HW] (+)= w' [c][OKK] * im2col(dy_s, pad k-1-pad) [OKK][HW] with
 *             w'[c][o][a][b] = w[o][c][k-1-a][k-1-b] (a correlation with the flipped kernel);
 *   else:     dx_s = col2im(w^T [CKK][o] * dy_s [o][P]). */
nn_status nn_conv2d_bwd(const nn_conv_geom *g, const float *x, const float *w, const float *dy,
                        float *dx, int dx_accumulate, float *dw, nn_ws *ws, nn_error *err) {
  const int64_t k = g->k, P = nn_conv_ho(g) * nn_conv_wo(g), CKK = g->c * k * k;
  const int64_t HW = g->h * g->w, OKK = g->o * k * k;
  const int flipped = g->stride == 1 && k - 1 - g->pad >= 0;
  nn_conv_geom g1 = *g, g2 = {1, g->o, nn_conv_ho(g), nn_conv_wo(g), g->c, k, 1, k - 1 - g->pad};
  nn_status st;
  g1.n = 1;
  float *col = nn_ws_get(ws, 0, (size_t)(CKK > OKK ? CKK : OKK) * (size_t)(P > HW ? P : HW), err);
  float *wf = flipped && dx ? nn_ws_get(ws, 2, (size_t)(g->c * OKK), err) : NULL;
  if (!col || (flipped && dx && !wf)) return NN_ENOMEM;
  if (wf)
    for (int64_t o = 0; o < g->o; o++)
      for (int64_t c = 0; c < g->c; c++)
        for (int64_t a = 0; a < k; a++)
          for (int64_t b = 0; b < k; b++)
            wf[((c * g->o + o) * k + a) * k + b] = w[((o * g->c + c) * k + (k - 1 - a)) * k + (k - 1 - b)];
  for (int64_t s = 0; s < g->n; s++) {
    const float *dys = dy + s * g->o * P;
    float *dxs = dx ? dx + s * g->c * HW : NULL;
    if (dw) {
      nn_im2col(&g1, x + s * g->c * HW, col, P);
      if ((st = nn_sgemm(0, 1, g->o, CKK, P, 1.0f, dys, P, col, P, 1.0f, dw, CKK, err)) != NN_OK)
        return st;
    }
    if (!dxs) continue;
    if (flipped) {
      nn_im2col(&g2, dys, col, HW);
      if ((st = nn_sgemm(0, 0, g->c, HW, OKK, 1.0f, wf, OKK, col, HW, dx_accumulate ? 1.0f : 0.0f,
                         dxs, HW, err)) != NN_OK)
        return st;
    } else {
      if ((st = nn_sgemm(1, 0, CKK, P, g->o, 1.0f, w, CKK, dys, P, 0.0f, col, P, err)) != NN_OK)
        return st;
      if (!dx_accumulate) memset(dxs, 0, (size_t)(g->c * HW) * sizeof *dxs);
      nn_col2im(&g1, col, P, dxs);
    }
  }
  return NN_OK;
}

/* dx overwritten, dw overwritten (the ref twin computes, the caller compares) */
void nn_conv2d_bwd_ref(const nn_conv_geom *g, const float *x, const float *w, const float *dy,
                       float *dx, float *dw) {
  const int64_t ho = nn_conv_ho(g), wo = nn_conv_wo(g);
  memset(dx, 0, (size_t)(g->n * g->c * g->h * g->w) * sizeof *dx);
  memset(dw, 0, (size_t)(g->o * g->c * g->k * g->k) * sizeof *dw);
  for (int64_t s = 0; s < g->n; s++)
    for (int64_t f = 0; f < g->o; f++)
      for (int64_t oy = 0; oy < ho; oy++)
        for (int64_t ox = 0; ox < wo; ox++) {
          float d = dy[((s * g->o + f) * ho + oy) * wo + ox];
          for (int64_t ci = 0; ci < g->c; ci++)
            for (int64_t ky = 0; ky < g->k; ky++)
              for (int64_t kx = 0; kx < g->k; kx++) {
                int64_t iy = oy * g->stride - g->pad + ky, ix = ox * g->stride - g->pad + kx;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                int64_t xi = ((s * g->c + ci) * g->h + iy) * g->w + ix;
                int64_t wi = ((f * g->c + ci) * g->k + ky) * g->k + kx;
                dx[xi] += d * w[wi];
                dw[wi] += d * x[xi];
              }
        }
}

/* ---------------- BatchNorm2d ---------------- */

/* dx = gamma*invstd/M * (M dy - sum(dy) - xhat sum(dy xhat)) */
void nn_bn2d_bwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                 const float *mean, const float *invstd, const float *dy, float *dx,
                 int dx_accumulate, float *dgamma, float *dbeta) {
  const int64_t M = n * hw;
  for (int64_t ch = 0; ch < c; ch++) {
    double sdy = 0, sdyx = 0;
    const float mu = mean[ch], is = invstd[ch];
    for (int64_t i = 0; i < n; i++) {
      const float *p = x + (i * c + ch) * hw, *d = dy + (i * c + ch) * hw;
      for (int64_t j = 0; j < hw; j++) {
        sdy += d[j];
        sdyx += (double)d[j] * ((p[j] - mu) * is);
      }
    }
    if (dgamma) dgamma[ch] += (float)sdyx;
    if (dbeta) dbeta[ch] += (float)sdy;
    if (!dx) continue;
    const float k = (float)(gamma[ch] * is), m1 = (float)(sdy / (double)M),
                m2 = (float)(sdyx / (double)M);
    for (int64_t i = 0; i < n; i++) {
      const float *p = x + (i * c + ch) * hw, *d = dy + (i * c + ch) * hw;
      float *q = dx + (i * c + ch) * hw;
      if (dx_accumulate)
        for (int64_t j = 0; j < hw; j++) q[j] += k * (d[j] - m1 - (p[j] - mu) * is * m2);
      else
        for (int64_t j = 0; j < hw; j++) q[j] = k * (d[j] - m1 - (p[j] - mu) * is * m2);
    }
  }
}

/* Straight from the chain rule through mean and variance, in double; dx, dgamma, dbeta
 * overwritten. */
void nn_bn2d_bwd_ref(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                     const float *dy, float *dx, float *dgamma, float *dbeta) {
  const int64_t M = n * hw;
  for (int64_t ch = 0; ch < c; ch++) {
    double mu = 0, var = 0;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < hw; j++) mu += x[(i * c + ch) * hw + j];
    mu /= (double)M;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < hw; j++) {
        double d = x[(i * c + ch) * hw + j] - mu;
        var += d * d;
      }
    var /= (double)M;
    double is = 1 / sqrt(var + NN_BN_EPS);
    /* dxhat = dy*gamma; dvar = sum dxhat (x-mu) * -1/2 (var+eps)^-3/2;
     * dmu = sum -dxhat*is + dvar * sum(-2(x-mu))/M; dx = dxhat*is + dvar*2(x-mu)/M + dmu/M */
    double dvar = 0, dmu = 0, sxm = 0, dg = 0, db = 0;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < hw; j++) {
        int64_t q = (i * c + ch) * hw + j;
        double dxh = dy[q] * (double)gamma[ch];
        dvar += dxh * (x[q] - mu) * -0.5 * is * is * is;
        dmu += -dxh * is;
        sxm += -2.0 * (x[q] - mu);
        dg += dy[q] * (x[q] - mu) * is;
        db += dy[q];
      }
    dmu += dvar * sxm / (double)M;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < hw; j++) {
        int64_t q = (i * c + ch) * hw + j;
        double dxh = dy[q] * (double)gamma[ch];
        dx[q] = (float)(dxh * is + dvar * 2.0 * (x[q] - mu) / (double)M + dmu / (double)M);
      }
    dgamma[ch] = (float)dg;
    dbeta[ch] = (float)db;
  }
}

/* ---------------- LIF ---------------- */

double nn_atan_surrogate(double v, double thr, double alpha) {
  double z = M_PI / 2 * alpha * (v - thr);
  return (alpha / 2) / (1 + z * z);
}

void nn_lif_bwd_step(int64_t m, double tau, double thr, double alpha, const float *h,
                     const float *ds, float *dv, float *dx, int dx_accumulate) {
  const float it = (float)(1.0 / tau), keep = (float)(1.0 - 1.0 / tau), th = (float)thr;
  const float za = (float)(M_PI / 2 * alpha), ha = (float)(alpha / 2);
  for (int64_t i = 0; i < m; i++) {
    float d = h[i] - th, z = za * d;
    float sg = ha / (1.0f + z * z);
    float notfired = h[i] >= th ? 0.0f : 1.0f;
    float dh = (ds ? ds[i] * sg : 0.0f) + dv[i] * notfired;
    if (dx_accumulate)
      dx[i] += dh * it;
    else
      dx[i] = dh * it;
    dv[i] = dh * keep;
  }
}

/* ---------------- average pooling ---------------- */

void nn_avgpool_bwd(int64_t nc, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                    const float *dy, float *dx, int dx_accumulate) {
  const int64_t ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
  const float inv = 1.0f / (float)(k * k);
  if (!dx_accumulate) memset(dx, 0, (size_t)(nc * h * w) * sizeof *dx);
  for (int64_t p = 0; p < nc; p++) {
    float *xp = dx + p * h * w;
    const float *yp = dy + p * ho * wo;
    for (int64_t oy = 0; oy < ho; oy++)
      for (int64_t ox = 0; ox < wo; ox++) {
        float d = yp[oy * wo + ox] * inv;
        int64_t y0 = oy * stride - pad, x0 = ox * stride - pad;
        for (int64_t ky = 0; ky < k; ky++) {
          int64_t iy = y0 + ky;
          if (iy < 0 || iy >= h) continue;
          for (int64_t kx = 0; kx < k; kx++) {
            int64_t ix = x0 + kx;
            if (ix >= 0 && ix < w) xp[iy * w + ix] += d;
          }
        }
      }
  }
}

/* ---------------- linear ---------------- */

nn_status nn_linear_bwd(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db, nn_error *err) {
  nn_status st;
  if (dx && (st = nn_sgemm(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in, err)) != NN_OK)
    return st;
  if (dw && (st = nn_sgemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in, err)) != NN_OK)
    return st;
  if (db)
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < out; o++) db[o] += dy[i * out + o];
  return NN_OK;
}

/* ---------------- dropout, boost ---------------- */

void nn_dropout_mask(int64_t m, double p, nn_rng *r, float *mask) {
  const float keep = p < 1 ? (float)(1.0 / (1.0 - p)) : 0.0f;
  for (int64_t i = 0; i < m; i++) mask[i] = nn_rng_uniform(r) < p ? 0.0f : keep;
}

void nn_mul(int64_t m, const float *a, const float *b, float *y) {
  for (int64_t i = 0; i < m; i++) y[i] = a[i] * b[i];
}

void nn_boost_fwd(int64_t n, int64_t classes, int64_t cluster, const float *x, float *out) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < classes; c++) {
      float acc = 0;
      const float *p = x + (i * classes + c) * cluster;
      for (int64_t j = 0; j < cluster; j++) acc += p[j];
      out[i * classes + c] = acc / (float)cluster;
    }
}

void nn_boost_bwd(int64_t n, int64_t classes, int64_t cluster, const float *dout, float *dx,
                  int dx_accumulate) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < classes; c++) {
      float d = dout[i * classes + c] / (float)cluster;
      float *p = dx + (i * classes + c) * cluster;
      for (int64_t j = 0; j < cluster; j++) p[j] = dx_accumulate ? p[j] + d : d;
    }
}

/* ---------------- loss ---------------- */

nn_status nn_softmax_ce(int64_t n, int64_t k, const float *logits, const float *labels,
                        double *loss, float *dlogits, int64_t *correct, nn_error *err) {
  double total = 0;
  int64_t ok = 0;
  for (int64_t i = 0; i < n; i++) {
    float lf = labels[i];
    if (!(lf >= 0 && lf < (float)k) || lf != floorf(lf))
      return nn_fail(err, NN_EINVAL, "label %lld is %g, expected an integer in 0..%lld",
                     (long long)(i + 1), (double)lf, (long long)(k - 1));
  }
  for (int64_t i = 0; i < n; i++) {
    const float *z = logits + i * k;
    int64_t y = (int64_t)labels[i], arg = 0;
    double mx = z[0], se = 0;
    for (int64_t j = 1; j < k; j++)
      if (z[j] > mx) mx = z[j], arg = j;
    for (int64_t j = 0; j < k; j++) se += exp(z[j] - mx);
    total += log(se) + mx - z[y];
    if (arg == y) ok++;
    if (dlogits)
      for (int64_t j = 0; j < k; j++)
        dlogits[i * k + j] = (float)((exp(z[j] - mx) / se - (j == y ? 1.0 : 0.0)) / (double)n);
  }
  if (loss) *loss = n ? total / (double)n : 0;
  if (correct) *correct = ok;
  return NN_OK;
}

/* ---------------- optimizers ---------------- */

void nn_sgd_step(int64_t m, float *w, const float *g, float *buf, double lr, double momentum,
                 double wd) {
  const float fl = (float)lr, fm = (float)momentum, fw = (float)wd;
  for (int64_t i = 0; i < m; i++) {
    float d = g[i] + fw * w[i];
    buf[i] = fm * buf[i] + d;
    w[i] -= fl * buf[i];
  }
}

void nn_adam_step(int64_t m, float *w, const float *g, float *m1, float *m2, double lr,
                  double b1, double b2, double eps, double wd, int64_t t) {
  const double c1 = 1 - pow(b1, (double)t), c2 = 1 - pow(b2, (double)t);
  for (int64_t i = 0; i < m; i++) {
    double d = g[i] + wd * w[i];
    m1[i] = (float)(b1 * m1[i] + (1 - b1) * d);
    m2[i] = (float)(b2 * m2[i] + (1 - b2) * d * d);
    w[i] -= (float)(lr * (m1[i] / c1) / (sqrt(m2[i] / c2) + eps));
  }
}

double nn_cosine_lr(double lr0, double lr_min, int64_t step, int64_t total) {
  if (total <= 0) return lr0;
  if (step > total) step = total;
  return lr_min + 0.5 * (lr0 - lr_min) * (1 + cos(M_PI * (double)step / (double)total));
}
