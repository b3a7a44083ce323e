/* nn_train_impl.h: the trainer struct (docs/training.md), shared by nn_train.c (BPTT, optimizer)
 * and nn_train_io.c (checkpoints, export to nets). Private to the engine. */
#ifndef NEURONAS_NN_TRAIN_IMPL_H
#define NEURONAS_NN_TRAIN_IMPL_H

#include "neuronas/nn_train.h"
#include "nn_grad_impl.h"

#define NN_TRAIN_MAXPARAM 160
#define NN_TRAIN_MAXMOD 64
#define NN_ARENA_MAXBLK 256

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

/* LIF: m neurons per sample; per-step tape h (pre-reset v) and s (spikes), state v, grad dv */
typedef struct tlif {
  int64_t m;
  float **h, **s; /* T */
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
  float **bx;    /* T x 3: bx_i produced at step t */
  float *dbx[3]; /* backward carry */
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
  nn_arena arena;
  nn_ws ws;
};

/* The trainer's structure for np with zero weights (nn_train.c); nn_trainer_new fills them. */
nn_trainer *nn_trainer_build(const nn_net_params *np, const nn_train_params *p, nn_error *err);
/* The BN module whose path is `path` ("cellA.e01.bn"), or NULL. */
tbn *nn_trainer_find_bn(nn_trainer *tr, const char *path, size_t len);
/* Index of the parameter named `name`, or -1. */
int nn_trainer_find_param(const nn_trainer *tr, const char *name);

#endif
