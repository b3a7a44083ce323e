/* nn_plan.h: the network as one plan (docs/model.md "The plan"): an ordered list of steps built
 * once from the genotype and the macro settings by nn_plan_build. Every part that needs the
 * architecture walks it: a net's tensors and their safetensors names, the scoring forward, the
 * trainer's forward and backward, the crossbar layers the hardware model maps, and SNASNet's
 * module names. Adding an op or a macro-architecture means editing nn_plan_build only, plus
 * the step's arithmetic in the walkers that execute it (docs/model.md says where).
 *
 * Step order is execution order within one timestep. Steps with `once` run before the
 * timestep loop (the stem); the others run at every timestep. A CELL step is followed by its
 * edges (`nsub` steps in all); an EDGE step whose op is a conv is followed by its LIF, CONV and
 * BN steps (`nsub` = 3), a skip or avgpool3x3 edge has none. Edges come in SNASNet's order: the
 * non-zero forward edges 01 02 12 03 13 23, then the non-zero backward edges 10 20 30 21 31 32
 * (forward edges first: nfwd of the cell's nedges). Per timestep, with y_i = x_i + bx_i for
 * i < 3 and y_3 = x_3:
 *   x_j = sum over forward edges i->j of op(y_i);  new bx_i = sum over backward j->i of op(y_j).
 * Steps [0, boundary) are the prefix (stem, cell A, downconv and its 2x2 pool), which depends on
 * cell A only; steps [boundary, nsteps) the suffix (cell B, last BN and LIF, the second pool,
 * the classifier). A plan is a plain value: copy it freely; it owns no memory. */
#ifndef NEURONAS_NN_PLAN_H
#define NEURONAS_NN_PLAN_H

#include "nn.h"
#include "nn_cell.h"
#include "nn_layer.h"
#include "nn_net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NN_PLAN_MAXSTEP 128
#define NN_PLAN_MAXPARAM 192
#define NN_PLAN_MAXLAYER 32
#define NN_PLAN_MAXLIF 32
#define NN_PLAN_PATH_LEN 48 /* longest step path with the NUL ("cellA.e01.conv") */
#define NN_PLAN_NAME_LEN 64 /* longest tensor name with the NUL ("cellA.e01.bn.running_mean") */

typedef enum nn_step_op {
  NN_STEP_CONV = 0, /* Conv2d without bias, k x k, zero padding k/2: a crossbar layer */
  NN_STEP_BN,       /* BatchNorm2d over in_c channels */
  NN_STEP_LIF,      /* LIF neurons, in_c * in_h * in_w per sample */
  NN_STEP_POOL,     /* k x k average pool, stride k (the 2x2 after the downconv, the second pool) */
  NN_STEP_DROPOUT,  /* the classifier's dropout: identity except in training */
  NN_STEP_LINEAR,   /* Linear (flattening its input): a crossbar layer; `bias` says if it has one */
  NN_STEP_BOOST,    /* mean over groups of `k` (cluster) outputs; the net's output is its mean over T */
  NN_STEP_CELL,     /* a cell; its edges follow */
  NN_STEP_EDGE,     /* one edge from -> to of the enclosing cell */
  NN_STEP_OP_COUNT
} nn_step_op;

const char *nn_step_op_name(nn_step_op op); /* "conv", "bn", "lif", ... */

/* Initial values of a tensor (docs/model.md "Initialisation"): uniform(a, b) or normal(mean a,
 * std b) drawn from the (seed, step path) stream, or constants. */
typedef enum nn_init_kind { NN_INIT_ZEROS = 0, NN_INIT_ONES, NN_INIT_UNIFORM, NN_INIT_NORMAL } nn_init_kind;

/* One stored tensor, in save order. */
typedef struct nn_plan_param {
  char name[NN_PLAN_NAME_LEN]; /* "<step path>.<leaf>", the safetensors name */
  const char *leaf;            /* "weight", "bias", "running_mean", "running_var" */
  int step;                    /* the owning step */
  int ndim;
  int64_t shape[4];
  int64_t numel;
  nn_init_kind init;
  float a, b;
  int crossbar; /* 1: crossbar weights (the quantizer's and the hardware model's) */
  int buffer;   /* 1: a BN running statistic (not trained) */
} nn_plan_param;

typedef struct nn_plan_step {
  nn_step_op op;
  char path[NN_PLAN_PATH_LEN];    /* "stem.conv", "cellA.e01", "cellA.e01.lif", "downconv.pool" */
  char snasnet[NN_PLAN_PATH_LEN]; /* SNASNet's module path ("stem.0", "cell1.cell_architecture.0.1");
                                     "" where SNASNet has no module (pools, boost, cells) */
  int part;                       /* 0 prefix, 1 suffix */
  int once;                       /* runs once before the timestep loop */
  int64_t in_c, in_h, in_w;       /* per-sample input (a LINEAR's in_c is the flattened size) */
  int64_t out_c, out_h, out_w;    /* per-sample output */
  int64_t k, stride, pad;         /* CONV; POOL (k = stride); BOOST (k = cluster) */
  int cell;                       /* CELL, EDGE and an edge's LIF/CONV/BN: 0 cell A, 1 cell B; else -1 */
  int from, to;                   /* EDGE */
  nn_op edge_op;                  /* EDGE */
  int nsub;                       /* CELL, EDGE: how many following steps belong to it */
  int nedges, nfwd;               /* CELL: edges, of which the first nfwd are forward */
  int param0, nparam;             /* params[param0 .. param0 + nparam) */
  int layer;                      /* CONV, LINEAR: index into layers; else -1 */
  int lif;                        /* LIF: index among the LIF steps; else -1 */
  int bias;                       /* LINEAR: 1 when it has a bias */
} nn_plan_step;

typedef struct nn_plan {
  nn_net_params p;
  int64_t h0, w0; /* stem output = cell A maps */
  int64_t h1, w1; /* after the downconv's 2x2 pool = cell B maps */
  int64_t h2, w2; /* after the second pool */
  int64_t fc_in;  /* 2C * h2 * w2 */
  int nsteps, nparams, nlayers, nlifs;
  int boundary;   /* first suffix step (cell B's CELL step) */
  int cell_step[2]; /* index of each cell's CELL step */
  nn_plan_step steps[NN_PLAN_MAXSTEP];
  nn_plan_param params[NN_PLAN_MAXPARAM];
  nn_layer_desc layers[NN_PLAN_MAXLAYER]; /* crossbar layers in execution order */
  int layer_step[NN_PLAN_MAXLAYER];       /* the step of each layer */
  int lif_step[NN_PLAN_MAXLIF];           /* the step of each LIF */
} nn_plan;

/* Checks p (ranges in docs/reliability.md "Bounds", the cells) and fills *plan. NN_EINVAL
 * names the field and the expected range. */
nn_status nn_plan_build(nn_plan *plan, const nn_net_params *p, nn_error *err);

/* Values per sample of step s's input and output. */
static inline int64_t nn_plan_step_in_numel(const nn_plan_step *s) { return s->in_c * s->in_h * s->in_w; }
static inline int64_t nn_plan_step_out_numel(const nn_plan_step *s) { return s->out_c * s->out_h * s->out_w; }

/* The plan net was built from (the net's; valid while the net lives). */
const nn_plan *nn_net_plan(const nn_net *net);

/* Index of the step whose path is `path` (exact match), or -1. */
int nn_plan_find_step(const nn_plan *plan, const char *path);
/* Index of the tensor named `name`, or -1. */
int nn_plan_find_param(const nn_plan *plan, const char *name);

#ifdef __cplusplus
}
#endif
#endif
