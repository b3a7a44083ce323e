/* nn_quant_net.c: quantizing a network's crossbar-mapped weights (docs/quantizer.md; docs/model.md): every
 * layer of nn_net_layer() (Conv2d and Linear weights); BN parameters and biases stay float. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_net.h"
#include "neuronas/nn_quant.h"

/* Quantizes (write = 1) or only measures (write = 0) every layer of net. */
static nn_status each_layer(const nn_quant_params *p, nn_net *net, int write,
                            nn_quant_layer_report *report, nn_error *err) {
  size_t n = nn_net_layer_count(net);
  float *tmp = NULL;
  nn_status st = NN_OK;
  for (size_t i = 0; i < n && st == NN_OK; i++) {
    const nn_layer_desc *d = nn_net_layer(net, i);
    nn_tensor *w = nn_net_layer_weight(net, i);
    nn_quant_stats s;
    int64_t cnt = w ? nn_tensor_numel(w) : 0;
    if (!d || !w) return nn_fail(err, NN_EINVAL, "quantizer: layer %zu has no weight", i + 1);
    if (write) {
      st = nn_quant_tensor(p, d->name, w, report ? &s : NULL, err);
    } else {
      float *t2 = realloc(tmp, (size_t)(cnt ? cnt : 1) * sizeof *t2);
      if (!t2) {
        st = nn_fail(err, NN_ENOMEM, "quantizer: out of memory for layer %s", d->name);
        break;
      }
      tmp = t2;
      st = nn_quant_array(p, d->name, nn_tensor_cdata(w), tmp, cnt, report ? &s : NULL, err);
    }
    if (st == NN_OK && report) {
      memset(&report[i], 0, sizeof report[i]);
      snprintf(report[i].name, sizeof report[i].name, "%s", d->name);
      report[i].stats = s;
    }
  }
  free(tmp);
  return st;
}

nn_net *nn_quant_net(const nn_quant_params *p, const nn_net *net, nn_quant_layer_report *report,
                     nn_error *err) {
  nn_net *q;
  if (nn_quant_params_check(p, err) != NN_OK) return NULL;
  if (!net) {
    nn_fail(err, NN_EINVAL, "quantizer: net expected");
    return NULL;
  }
  if (!(q = nn_net_clone(net, err))) return NULL;
  if (each_layer(p, q, 1, report, err) != NN_OK) {
    nn_net_free(q);
    return NULL;
  }
  nn_net_set_weight_bits(q, p->bits);
  return q;
}

nn_status nn_quant_net_report(const nn_quant_params *p, const nn_net *net,
                              nn_quant_layer_report *report, nn_error *err) {
  nn_status st;
  if ((st = nn_quant_params_check(p, err)) != NN_OK) return st;
  if (!net) return nn_fail(err, NN_EINVAL, "quantizer: net expected");
  /* read only: nn_net_layer_weight is non-const because the quantizer writes clones */
  return each_layer(p, (nn_net *)net, 0, report, err);
}
