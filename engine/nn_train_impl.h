/* nn_train_impl.h: the trainer struct (docs/training.md), shared by nn_train.c (BPTT, optimizer)
 * and nn_train_io.c (checkpoints, export to nets). Private to the engine. */
#ifndef NEURONAS_NN_TRAIN_IMPL_H
#define NEURONAS_NN_TRAIN_IMPL_H

#include "neuronas/nn_train.h"
#include "nn_grad_impl.h"

#define NN_TRAIN_MAXPARAM 160
#define NN_TRAIN_MAXMOD 64
#define NN_ARENA_MAXBLK 256

/* Worker threads for the parallel regions of a step (nn_train_pool.c). nn_pool_run runs
 * fn(ctx, task, worker) for task = 0..ntasks-1 on the pool's threads and the caller (worker 0;
 * workers are numbered below nn_pool_threads) and returns when all are done. A NULL pool runs
 * the tasks on the caller. */
typedef struct nn_pool nn_pool;
typedef void (*nn_pool_fn)(void *ctx, int64_t task, int worker);
nn_pool *nn_pool_new(int threads);
int nn_pool_threads(const nn_pool *p);
void nn_pool_run(nn_pool *p, int64_t ntasks, nn_pool_fn fn, void *ctx);
void nn_pool_free(nn_pool *p);

/* A batch is split into this many sample groups (fewer for smaller batches) whatever the number
 * of threads; each group's share of a weight gradient goes to its own buffer and the buffers are
 * added in group order, so the floats do not depend on the thread count. */
#define NN_TRAIN_GROUPS 8
/* Spike rate (spikes / inputs of a conv) at or below which the weight gradient of a conv on
 * spikes is a sum over the spikes (nn_conv2d_bwd_w_events) rather than an im2col + sgemm. */
#define NN_TRAIN_EVENT_BWD_RATE 0.30
/* Threads for threads = 0: the online cores that the load average leaves idle (at least 1, at
 * most NN_TRAIN_MAX_THREADS). */
int nn_train_default_threads(void);

/* Bump allocator for one step's tape and gradients; blocks are kept between steps. */
typedef struct nn_arena {
  struct {
    float *p;
    size_t cap, used;
  } blk[NN_ARENA_MAXBLK];
  int nb, cur;
} nn_arena;

/* One trainable tensor: master w, gradient g, optimizer state m1 (SGD momentum / Adam m),
 * m2 (Adam v), q the FxP copy the forward pass uses under QAT (quant = 1 for crossbar weights). */
typedef struct tparam {
  char name[96];
  int64_t n;
  int quant;
  float *w, *g, *m1, *m2, *q;
} tparam;

typedef struct tconv {
  char path[64];
  int w; /* param index */
  int64_t cin, cout, k, stride, pad, h, wd, ho, wo;
} tconv;

/* BN: params g, b; running stats; per-step tape: input pointer, mean and 1/std per channel */
typedef struct tbn {
  char path[64];
  int g, b;
  int64_t c, hw;
  float *rm, *rv;
  float *mean, *istd; /* T x c */
  const float **x;    /* T */
} tbn;

/* LIF: m neurons per sample; per-step tape h (pre-reset v) and the spikes, bit-packed
 * (bits[t]: nn_spikes_pack's layout) or, in smooth mode (not binary), as floats s[t]; s[t] of
 * a binary pass lives only until the consumer of the step has run. State v, grad dv. */
typedef struct tlif {
  int64_t m;
  float **h, **s;  /* T */
  uint64_t **bits; /* T */
  int64_t *fired;  /* T: spikes per step */
  float *v, *dv;
} tlif;

typedef struct tedge {
  int op; /* nn_op */
  int lif, conv, bn;
} tedge;

typedef struct tcell {
  tedge e[4][4];
  int64_t ch, h, w;
  int has_back;
  float **bx;    /* T x 3: bx_i produced at step t (NULL: no backward edge into i) */
  float *dbx[3]; /* backward carry */
  float *dub[2][3]; /* the carry's two alternating buffers (a backward pass's arena) */
} tcell;

struct nn_trainer {
  nn_net_params np_net;
  nn_train_params tp;
  int T;
  int64_t H1, W1, H2, W2, H3, W3, D;
  int64_t steps;
  tparam p[NN_TRAIN_MAXPARAM];
  int np;
  tconv conv[NN_TRAIN_MAXMOD];
  int nconv;
  tbn bn[NN_TRAIN_MAXMOD];
  int nbn;
  tlif lif[NN_TRAIN_MAXMOD];
  int nlif;
  tcell cell[2];
  int stem_conv, stem_bn, dc_bn1, dc_lif, dc_conv, dc_bn2, last_bn, last_lif;
  int fc1, cls_lif, fc2, fc2b;
  nn_rng mask_root;
  /* per step */
  int64_t n;
  int mode_train, update_running, smooth;
  nn_conv_mode conv_mode; /* convs on spikes: AUTO (default) / DENSE / EVENTS, as nets */
  uint64_t reset_hash; /* smooth mode: hash of the hard reset pattern (gradient checks) */
  const float *x_in;
  float **mask, **fcin; /* T */
  nn_arena arena; /* tape and whole-pass buffers */
  nn_arena tmp;   /* short-lived buffers (TALLOC) */
  /* threads (created at the first pass) */
  nn_pool *pool;
  int nworkers;
  nn_ws *wws;       /* per worker */
  float *part;      /* NN_TRAIN_GROUPS partial conv weight gradients, part_n floats each */
  int64_t part_n;
  int blas_saved;   /* OpenBLAS threads outside a pass */
};

/* The trainer's structure for np with zero weights (nn_train.c); nn_trainer_new fills them. */
nn_trainer *nn_trainer_build(const nn_net_params *np, const nn_train_params *p, nn_error *err);
/* The BN module whose path is `path` ("cellA.e01.bn"), or NULL. */
tbn *nn_trainer_find_bn(nn_trainer *tr, const char *path, size_t len);
/* Index of the parameter named `name`, or -1. */
int nn_trainer_find_param(const nn_trainer *tr, const char *name);

#endif
