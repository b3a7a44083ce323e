/* nn_layer.h: the description of one crossbar-mapped layer (docs/model.md), shared by the
 * network (which lists its layers), the quantizer and the hardware model (docs/hardware.md). */
#ifndef NEURONAS_NN_LAYER_H
#define NEURONAS_NN_LAYER_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nn_layer_kind { NN_LAYER_CONV = 0, NN_LAYER_LINEAR = 1 } nn_layer_kind;

/* Spatial sizes are the side of a square map; a Linear layer has in_dim = out_dim = 1, k = 1.
 * weights = out_ch * in_ch * k * k. features = 1 for stem, cells and downconv (scope
 * "features"), 0 for the classifier (scope "all" only). */
typedef struct nn_layer_desc {
  nn_layer_kind kind;
  char name[64]; /* the layer path, e.g. "cellA.e01.conv", "downconv.conv", "classifier.fc1" */
  int64_t in_ch, out_ch;
  int64_t in_dim, out_dim;
  int64_t k, stride;
  int64_t weights;
  int features;
} nn_layer_desc;

const char *nn_layer_kind_str(nn_layer_kind k); /* "conv" / "linear" */

#ifdef __cplusplus
}
#endif
#endif
