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

/* The weight precision of crossbar-mapped layers, FxP word length n (docs/quantizer.md): one
 * range at every entry point (nn_quant_params_check, the trainer's QAT, nn_ela_evaluate, and in
 * Lua nn.quantizer, hw:evaluate and the scripts' --bits flag, which read it as nn.weight_bits),
 * one default (the quantizer's and --bits'), and what an unquantized net reports (float32, which
 * is also what the hardware model assumes for a bare layer list). */
#define NN_WEIGHT_BITS_MIN 2
#define NN_WEIGHT_BITS_MAX 32
#define NN_WEIGHT_BITS_DEFAULT 8
#define NN_WEIGHT_BITS_FLOAT 32

const char *nn_layer_kind_str(nn_layer_kind k); /* "conv" / "linear" */

#ifdef __cplusplus
}
#endif
#endif
