/* nn_layer.c: names of crossbar-mapped layer kinds (docs/model.md). */
#include "neuronas/nn_layer.h"

const char *nn_layer_kind_str(nn_layer_kind k) { return k == NN_LAYER_LINEAR ? "linear" : "conv"; }
