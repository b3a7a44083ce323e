/* l_variation.h: what other bindings call of l_variation.c (hw:evaluate_active counts activity). */
#ifndef NEURONAS_L_VARIATION_H
#define NEURONAS_L_VARIATION_H

#include "l_aux.h"

/* nn.activity(net, x | { batches }[, { xbar = 64 }]) -> { layers = { {name, active, reads,
 * fraction, measured}, ... }, active =, reads =, fraction =, xbar = } (docs/hardware.md) */
int nn_lua_activity(lua_State *L);

#endif
