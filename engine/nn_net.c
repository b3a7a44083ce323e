/* nn_net.c: a network built by walking its plan (include/neuronas/nn_plan.h; docs/model.md),
 * and its accessors. The forward is in nn_net_forward.c, weights I/O in nn_net_io.c, the
 * initial values and their store in nn_net_init.c, the presets in nn_net_presets.c. */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_quant.h"
#include "nn_net_impl.h"

static void net_free_tensors(nn_net *net) {
  for (int i = 0; i < net->plan.nparams; i++) nn_tensor_free(net->t[i]);
}

static nn_net *net_alloc(nn_error *err) {
  nn_net *net = calloc(1, sizeof *net);
  if (!net) return nn_fail(err, NN_ENOMEM, "net: out of memory"), NULL;
  net->weight_bits = 32;
  net->conv_mode = NN_CONV_AUTO;
  return net;
}

/* Creates one tensor per param of net->plan, with its initial values when init (drawn through
 * ic when given); init = 0 leaves them zero (clone copies them afterwards). Frees net on failure. */
static nn_net *net_tensors(nn_net *net, int init, nn_init_cache *ic, nn_error *err) {
  const nn_plan *pl = &net->plan;
  for (int i = 0; i < pl->nparams; i++) {
    const nn_plan_param *q = &pl->params[i];
    /* filled right below (init) or copied by the caller (clone): no zeroing first */
    if (!(net->t[i] = nn_tensor_new_unfilled(q->ndim, q->shape, err))) {
      nn_net_free(net);
      return NULL;
    }
    if (init) nn_init_fill(ic, pl->p.seed, q, pl->steps[q->step].path, net->t[i]);
  }
  return net;
}

/* A net with its plan built from p and no tensors yet; NULL on failure (err set). */
static nn_net *net_planned(const nn_net_params *p, nn_error *err) {
  nn_net *net = net_alloc(err);
  if (net && nn_plan_build(&net->plan, p, err) != NN_OK) {
    free(net);
    return NULL;
  }
  return net;
}

nn_net *nn_net_new_cached(const nn_net_params *p, nn_init_cache *c, nn_error *err) {
  nn_net *net = net_planned(p, err);
  return net ? net_tensors(net, 1, c, err) : NULL;
}

nn_net *nn_net_new(const nn_net_params *p, nn_error *err) { return nn_net_new_cached(p, NULL, err); }

nn_net *nn_net_new_quantized(const nn_net_params *p, nn_init_cache *c, const nn_quant_params *q, nn_error *err) {
  if (!q) return nn_fail(err, NN_EINVAL, "net: quantizer expected"), NULL;
  if (nn_quant_params_check(q, err) != NN_OK) return NULL;
  nn_net *net = net_planned(p, err);
  if (!net) return NULL;
  const nn_plan *pl = &net->plan;
  int layer_of[NN_PLAN_MAXPARAM]; /* the layer whose weight a param is, or -1 */
  for (int i = 0; i < pl->nparams; i++) layer_of[i] = -1;
  for (int l = 0; l < pl->nlayers; l++) layer_of[pl->steps[pl->layer_step[l]].param0] = l;
  if (!(net = net_tensors(net, 0, NULL, err))) return NULL;
  for (int i = 0; i < pl->nparams; i++) {
    const nn_plan_param *pp = &pl->params[i];
    const char *path = pl->steps[pp->step].path;
    if (layer_of[i] < 0) {
      nn_init_fill(c, pl->p.seed, pp, path, net->t[i]);
    } else if (nn_init_fill_quant(c, pl->p.seed, pp, path, q, pl->layers[layer_of[i]].name, net->t[i], err) != NN_OK) {
      nn_net_free(net);
      return NULL;
    }
  }
  net->weight_bits = q->bits;
  return net;
}

nn_net *nn_net_clone(const nn_net *net, nn_error *err) {
  nn_net *c = net_alloc(err);
  if (!c) return NULL;
  c->plan = net->plan;
  if (!(c = net_tensors(c, 0, NULL, err))) return NULL;
  for (int i = 0; i < net->plan.nparams; i++) nn_tensor_copy(c->t[i], net->t[i], NULL);
  c->weight_bits = net->weight_bits;
  c->conv_mode = net->conv_mode;
  memcpy(c->lifs, net->lifs, sizeof c->lifs);
  return c;
}

void nn_net_free(nn_net *net) {
  if (!net) return;
  net_free_tensors(net);
  free(net);
}

const nn_plan *nn_net_plan(const nn_net *net) { return &net->plan; }
const nn_net_params *nn_net_params_of(const nn_net *net) { return &net->plan.p; }

size_t nn_net_layer_count(const nn_net *net) { return (size_t)net->plan.nlayers; }
const nn_layer_desc *nn_net_layer(const nn_net *net, size_t i) {
  return i < (size_t)net->plan.nlayers ? &net->plan.layers[i] : NULL;
}
nn_tensor *nn_net_layer_weight(nn_net *net, size_t i) {
  return i < (size_t)net->plan.nlayers ? nn_net_step_tensor(net, net->plan.layer_step[i], 0) : NULL;
}

int64_t nn_net_param_count(const nn_net *net, int features_only) {
  int64_t n = 0;
  for (int i = 0; i < net->plan.nlayers; i++)
    if (!features_only || net->plan.layers[i].features) n += net->plan.layers[i].weights;
  return n;
}

int nn_net_weight_bits(const nn_net *net) { return net->weight_bits; }
void nn_net_set_weight_bits(nn_net *net, int bits) { net->weight_bits = bits; }
void nn_net_set_conv_mode(nn_net *net, nn_conv_mode mode) { net->conv_mode = mode; }

size_t nn_net_tensor_count(const nn_net *net) { return (size_t)net->plan.nparams; }
const char *nn_net_tensor_name(const nn_net *net, size_t i) {
  return i < (size_t)net->plan.nparams ? net->plan.params[i].name : NULL;
}
nn_tensor *nn_net_tensor(nn_net *net, size_t i) { return i < (size_t)net->plan.nparams ? net->t[i] : NULL; }
nn_tensor *nn_net_tensor_find(nn_net *net, const char *name) {
  int i = nn_plan_find_param(&net->plan, name);
  return i < 0 ? NULL : net->t[i];
}

size_t nn_net_lif_count(const nn_net *net) { return (size_t)net->plan.nlifs; }
const char *nn_net_lif_name(const nn_net *net, size_t i) {
  return i < (size_t)net->plan.nlifs ? net->plan.steps[net->plan.lif_step[i]].path : NULL;
}
int64_t nn_net_lif_neurons(const nn_net *net, size_t i) {
  return i < (size_t)net->plan.nlifs ? nn_plan_step_out_numel(&net->plan.steps[net->plan.lif_step[i]]) : 0;
}
double nn_net_lif_rate(const nn_net *net, size_t i) {
  if (i >= (size_t)net->plan.nlifs || net->lifs[i].seen == 0) return 0;
  return (double)net->lifs[i].fired / (double)net->lifs[i].seen;
}
