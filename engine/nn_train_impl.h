/* nn_train_impl.h: the trainer struct (docs/training.md), shared by nn_train.c (BPTT, optimizer)
 * and nn_train_io.c (checkpoints, export to nets). Private to the engine. */
#ifndef NEURONAS_NN_TRAIN_IMPL_H
#define NEURONAS_NN_TRAIN_IMPL_H

#include "neuronas/nn_plan.h"
#include "neuronas/nn_train.h"
#include "nn_grad_impl.h"
#include "nn_par.h"

#define NN_ARENA_MAXBLK 256


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
  char name[NN_PLAN_NAME_LEN];
  int64_t n;
  int quant;
  float *w, *g, *m1, *m2, *q;
} tparam;

/* LIF: per-timestep tape h (pre-reset v) and the spikes, bit-packed (bits[t]: nn_spikes_pack's
 * layout) or, in smooth mode (not binary), as floats s[t]; s[t] of a binary pass lives only
 * until the consumer of the step has run. State v, grad dv. */
typedef struct tlif {
  int64_t m; /* neurons per sample */
  float **h, **s;  /* T */
  uint64_t **bits; /* T */
  int64_t *fired;  /* T: spikes per timestep */
  float *v, *dv;
} tlif;

/* A cell's state: its edge steps in plan order (the first nfwd of the CELL step forward), the
 * bx it passes from one timestep to the next and the backward pass's carry of their gradients. */
typedef struct tcell {
  int edge[12], nedge;
  float **bx;       /* T x 3: bx_i produced at timestep t (NULL: no backward edge into i) */
  float *dbx[3];    /* backward carry */
  float *dub[2][3]; /* the carry's two alternating buffers (a backward pass's arena) */
} tcell;

/* The trainer's runtime for one plan step, indexed like the plan's steps. */
typedef struct tstep {
  int w, b;         /* CONV, LINEAR: weight and bias (-1: none); BN: weight (gamma), bias (beta) */
  int keep;         /* the forward output goes on the tape: the consumer's backward reads it */
  int src;          /* CONV, LINEAR: the LIF step whose spikes are the input, else -1 */
  const float **x;  /* T: the input of BN, and of CONV/LINEAR when not on spikes (once steps: [0]) */
  float *rm, *rv;   /* BN running statistics */
  float *mean, *istd; /* BN: T x channels */
  float **mask;     /* DROPOUT: T */
  tlif lif;         /* LIF */
  tcell cell;       /* CELL */
} tstep;

struct nn_trainer {
  nn_plan plan; /* the architecture (nn_plan.h); plan.p the net's fields */
  nn_train_params tp;
  int T;
  int64_t steps;
  int diverged; /* a step left the state non-finite: every call but load refuses until one */
  tparam p[NN_PLAN_MAXPARAM]; /* the plan's trainable tensors, in plan order */
  int np;
  int pidx[NN_PLAN_MAXPARAM]; /* plan tensor -> index in p (-1: a BN running statistic) */
  tstep rt[NN_PLAN_MAXSTEP];
  int top[NN_PLAN_MAXSTEP], ntop; /* the steps outside cells' edges (cells included), in plan
                                     order; the first nonce run once, before the timesteps */
  int nonce;
  nn_rng mask_root;
  nn_rng mask_rng; /* the pass's dropout stream */
  /* per step */
  int64_t n;
  int mode_train, update_running, smooth;
  nn_conv_mode conv_mode; /* convs on spikes: AUTO (default) / DENSE / EVENTS, as nets */
  uint64_t reset_hash; /* smooth mode: hash of the hard reset pattern (gradient checks) */
  float *dx_in;        /* backward: dL/d(net input), or NULL */
  nn_arena arena; /* tape and whole-pass buffers */
  nn_arena tmp;   /* short-lived buffers (TALLOC) */
  /* threads (created at the first pass) */
  nn_par *pool; /* the step's workers (nn_par_tasks); NULL: the calling thread only */
  int nworkers;
  nn_ws *wws;       /* per worker */
  float *part;      /* NN_TRAIN_GROUPS partial conv weight gradients, part_n floats each */
  int64_t part_n;
  int blas_saved;   /* OpenBLAS threads outside a pass */
};

/* The trainer for np (its plan) with the plan's constant inits and other weights zero
 * (nn_train.c); nn_trainer_new fills them in from a net. */
nn_trainer *nn_trainer_build(const nn_net_params *np, const nn_train_params *p, nn_error *err);
/* The trainer's storage of the plan's tensor k (a parameter's master values or a BN running
 * statistic). */
float *nn_trainer_tensor(nn_trainer *tr, int k);
/* Index of the parameter named `name`, or -1. */
int nn_trainer_find_param(const nn_trainer *tr, const char *name);

#endif
