/* l_cell.h: extra accessors of neuronas.Cell (l_cell.c) beyond l_tocell/l_pushcell in l_aux.h,
 * for bindings that read cells from option-table fields and want to word the error themselves. */
#ifndef NEURONAS_L_CELL_H
#define NEURONAS_L_CELL_H

#include "l_aux.h"

/* Reads the value at idx as a cell: a neuronas.Cell, a genotype string in any form (docs/model.md),
 * a table of 6 (or 12, with the backward edges) op names, or a 4x4 table of op names (rows = from). Never raises (except out of
 * memory): returns 1 and fills *out, or returns 0 with err->msg saying what is wrong, e.g.
 * "neuronas.Cell or cell string expected, got number". Stack unchanged. */
int l_getcell(lua_State *L, int idx, nn_cell *out, nn_error *err);

/* l_tocell (declared in l_aux.h) accepts the same values and raises on a bad one: "bad argument
 * #idx to 'f' (...)" for a positive idx (an argument), the bare message for a negative one (a
 * value pushed by the caller, e.g. an option-table field). A Cell is returned in place (no copy). */

#endif
