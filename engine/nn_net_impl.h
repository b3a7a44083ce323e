/* nn_net_impl.h: what a net holds beside its plan, for the engine files that read it (the
 * forward, weights I/O, SNASNet names, the fitness cache's sizes). The architecture itself is
 * the plan (include/neuronas/nn_plan.h): the net keeps one, built once by nn_plan_build, and
 * every part of the net is indexed by the plan's step, param and LIF indices. Everything here
 * is owned by the net. */
#ifndef NEURONAS_NN_NET_IMPL_H
#define NEURONAS_NN_NET_IMPL_H

#include "neuronas/nn_net.h"
#include "neuronas/nn_plan.h"
#include "nn_ops.h"
#include "nn_tensor_impl.h"

/* Firing statistics of one LIF step (plan.lif_step[i]) in the last forward that ran it. */
typedef struct nn_lif_stat {
  int64_t fired; /* spikes, all samples and timesteps */
  int64_t seen;  /* samples * neurons * timesteps */
} nn_lif_stat;

struct nn_net {
  nn_plan plan;                   /* the architecture; plan.p are the net's params */
  nn_tensor *t[NN_PLAN_MAXPARAM]; /* t[i] holds plan.params[i] */
  nn_lif_stat lifs[NN_PLAN_MAXLIF];
  int weight_bits;
  nn_conv_mode conv_mode;
};

/* The k-th tensor of step s (a CONV's or LINEAR's weight is k = 0, a LINEAR's bias k = 1; a
 * BN's weight, bias, running mean and variance k = 0..3). */
static inline nn_tensor *nn_net_step_tensor(const nn_net *net, int s, int k) {
  return net->t[net->plan.steps[s].param0 + k];
}

/* Conv2d geometry of CONV step s for n samples. */
static inline nn_conv_geom nn_plan_step_geom(const nn_plan_step *s, int64_t n) {
  return (nn_conv_geom){n, s->in_c, s->in_h, s->in_w, s->out_c, s->k, s->stride, s->pad};
}

/* Fills t with its initial values: the draws of the (seed, step path) stream for a uniform or
 * normal param (through the store c when given; NULL draws directly), constants otherwise. */
void nn_init_fill(nn_init_cache *c, uint64_t seed, const nn_plan_param *q, const char *path, nn_tensor *t);
/* nn_init_fill, then the quantizer qp on t under label (nn_quant_tensor), the result kept in c
 * (when given, and the draw is kept there too) so that the next net's same layer copies it. */
struct nn_quant_params;
nn_status nn_init_fill_quant(nn_init_cache *c, uint64_t seed, const nn_plan_param *q, const char *path,
                             const struct nn_quant_params *qp, const char *label, nn_tensor *t, nn_error *err);

/* The once steps (the stem: a conv and its BatchNorm on the input, run before the timestep
 * loop) and their output, which every candidate of a search with the same stem weights computes
 * alike on the same batch: nn_fitness_many computes it once per batch for such a group.
 * - nn_net_forward_stem: the once steps alone on x; *out = their output (S x the last once
 *   step's output), the same bits as the prefix computes.
 * - nn_net_forward_prefix_stem: nn_net_forward_prefix reading stem (from nn_net_forward_stem of
 *   a net for which nn_net_same_stem holds, on the same x) instead of running the once steps;
 *   their BatchNorm's running statistics are then not updated (scoring restores them anyway).
 *   stem NULL: nn_net_forward_prefix.
 * - nn_net_same_stem: 1 when a and b's once steps compute the same map from the same input:
 *   the same steps and geometry, and bit-identical tensors they read (weights, biases, BN
 *   affine parameters; in eval mode, train = 0, also the running statistics). */
nn_status nn_net_forward_stem(nn_net *net, const nn_tensor *x, const nn_forward_opts *o, nn_tensor **out,
                              nn_error *err);
nn_status nn_net_forward_prefix_stem(nn_net *net, const nn_tensor *x, const nn_tensor *stem, const nn_forward_opts *o,
                                     nn_tensor **cellb_in, nn_error *err);
int nn_net_same_stem(const nn_net *a, const nn_net *b, int train);

/* Loads path into net where param i is stored under keys[i] (NULL: the net's own names); a
 * file tensor that is no key is an error unless extra(name) accepts it. A key with a
 * "<key>.exponent" scalar holds integer codes, w = code * 2^exponent (nn_interop.h). All or
 * nothing; the "weight_bits" metadata is applied. */
nn_status nn_net_load_keys(nn_net *net, const char *path, const char *const *keys,
                           int (*extra)(const char *name), nn_error *err);

#endif
