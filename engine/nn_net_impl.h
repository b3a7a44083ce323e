/* nn_net_impl.h: the network's structure (docs/model.md), for engine files that walk it
 * (training: backward pass, optimizer; quantizer). Everything here is owned by the net:
 * tensors are registered once in net->params (which frees them) and referenced elsewhere.
 *
 * Module order is execution order. A cell's edges: the non-zero forward edges sorted by
 * (to, from), i.e. 01 02 12 03 13 23, then the non-zero backward edges 10 20 30 21 31 32
 * (SNASNet's order). Per timestep (docs/model.md), with y_i = x_i + bx_i for i < 3, y_3 = x_3:
 *   x_j = sum over forward edges i->j of op(y_i);  new bx_i = sum over backward j->i of op(y_j). */
#ifndef NEURONAS_NN_NET_IMPL_H
#define NEURONAS_NN_NET_IMPL_H

#include "neuronas/nn_net.h"
#include "nn_ops.h"
#include "nn_tensor_impl.h"

#define NN_NET_MAXLIF 32
#define NN_NET_MAXLAYER 32
#define NN_NET_MAXPARAM 192
#define NN_NET_MAXEDGE 12

typedef struct nn_bn_mod {
  int64_t c;
  nn_tensor *weight, *bias, *running_mean, *running_var; /* [c] each */
} nn_bn_mod;

typedef struct nn_conv_mod {
  nn_tensor *weight; /* [o][c][k][k] (or [out][in] for the classifier) */
  nn_conv_geom g;    /* g.n = 0 here; the forward sets it per call */
  int layer;         /* index into net->layers */
} nn_conv_mod;

typedef struct nn_lif_mod {
  char path[NN_NET_MAXNAME_LEN];
  int64_t neurons; /* per sample */
  int64_t fired;   /* spikes in the last forward that ran this module (all samples, steps) */
  int64_t seen;    /* samples * neurons * steps of that forward */
} nn_lif_mod;

typedef struct nn_edge_mod {
  int from, to;
  nn_op op;
  char path[24];   /* "cellA.e01" */
  int lif;         /* index into net->lifs; -1 unless a conv op */
  nn_conv_mod conv; /* conv ops only */
  nn_bn_mod bn;
} nn_edge_mod;

typedef struct nn_cell_mod {
  nn_cell cell;
  char name[8];        /* "cellA" / "cellB" */
  int64_t c, h, w;     /* channels and map size (in = out) */
  int nedges, nfwd;    /* edges[0..nfwd) forward, edges[nfwd..nedges) backward */
  nn_edge_mod edges[NN_NET_MAXEDGE];
} nn_cell_mod;

typedef struct nn_param {
  char name[NN_NET_MAXNAME_LEN + 16]; /* "<path>.weight", ".bias", ".running_mean", ".running_var" */
  nn_tensor *t;
} nn_param;

struct nn_net {
  nn_net_params p;
  int64_t h0, w0; /* stem output = cell A maps */
  int64_t h1, w1; /* after the downconv 2x2 pool = cell B maps */
  int64_t h2, w2; /* after the second pool p */
  int64_t fc_in;  /* 2C * h2 * w2 */
  nn_conv_mod stem;
  nn_bn_mod stem_bn;
  nn_cell_mod cell[2];
  nn_bn_mod down_bn1, down_bn2;
  nn_conv_mod down_conv;
  int down_lif;
  nn_bn_mod last_bn;
  int last_lif;
  nn_conv_mod fc1, fc2; /* fc1 [F][fc_in] no bias; fc2 [classes*cluster][F] */
  nn_tensor *fc2_bias;
  int cls_lif;
  nn_layer_desc layers[NN_NET_MAXLAYER];
  nn_tensor *layer_w[NN_NET_MAXLAYER];
  size_t nlayers;
  nn_param params[NN_NET_MAXPARAM];
  size_t nparams;
  nn_lif_mod lifs[NN_NET_MAXLIF];
  size_t nlifs;
  int weight_bits;
  nn_conv_mode conv_mode;
  nn_init_cache *init_cache; /* only while nn_net_new_cached builds the net */
};

/* Loads path into net where param i is stored under keys[i] (NULL: the net's own names); a
 * file tensor that is no key is an error unless extra(name) accepts it. A key with a
 * "<key>.exponent" scalar holds integer codes, w = code * 2^exponent (nn_interop.h). All or
 * nothing; the "weight_bits" metadata is applied. */
nn_status nn_net_load_keys(nn_net *net, const char *path, const char *const *keys,
                           int (*extra)(const char *name), nn_error *err);

#endif
