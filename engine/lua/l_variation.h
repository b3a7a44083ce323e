/* l_variation.h: what other bindings call of l_variation.c (hw:evaluate_active counts activity). */
#ifndef NEURONAS_L_VARIATION_H
#define NEURONAS_L_VARIATION_H

#include "l_aux.h"
#include "neuronas/nn_activity.h"

/* nn.activity(net, x | { batches }[, { xbar = 64 }]) -> { layers = { {name, active, reads,
 * fraction, measured}, ... }, active =, reads =, fraction =, xbar = } (docs/hardware.md) */
int nn_lua_activity(lua_State *L);
/* Pushes that table for the counts ls of net's layers (nn.fitness's `activity` shares it). */
void l_push_activity(lua_State *L, const nn_net *net, const nn_activity_layer *ls, lua_Integer xbar);

#endif
