/* nn_cell.h: cell genotypes (docs/model.md): a DAG on 4 nodes as a 4x4 op matrix.
 * m[i][j] is the op on edge i->j; i<j are forward edges, i>j backward edges (SNASNet).
 * Edge order everywhere: 01, 02, 03, 12, 13, 23. */
#ifndef NEURONAS_NN_CELL_H
#define NEURONAS_NN_CELL_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nn_op {
  NN_OP_ZERO = 0,
  NN_OP_SKIP,
  NN_OP_CONV1X1,
  NN_OP_CONV3X3,
  NN_OP_CONV5X5,
  NN_OP_CONV7X7,
  NN_OP_AVGPOOL3X3,
  NN_OP_COUNT
} nn_op;

typedef struct nn_cell {
  uint8_t m[4][4];
} nn_cell;

const char *nn_op_name(nn_op op); /* "zero", "skip", "conv3x3", ... */
int nn_op_from_name(const char *name); /* -1 when unknown */
int nn_op_kernel(nn_op op);            /* 1, 3, 5, 7 for convs; 0 otherwise */

/* ---- additions: parsing, formatting, predicates ---- */

/* Edge k (0..5) in the order 01 02 03 12 13 23 goes from NN_CELL_EDGE_FROM[k] to
 * NN_CELL_EDGE_TO[k]; its backward twin goes the other way (10 20 30 21 31 32). */
#define NN_CELL_EDGES 6
extern const int NN_CELL_EDGE_FROM[NN_CELL_EDGES];
extern const int NN_CELL_EDGE_TO[NN_CELL_EDGES];

/* Text forms of a cell:
 *  NAMES     6 op names in edge order ("conv3x3 skip avgpool3x3 conv3x3 skip conv3x3"),
 *            optionally followed by "|" and 6 more for the backward edges 10 20 30 21 31 32.
 *            This is the canonical form (nn_cell_format): the "|" part only when some
 *            backward edge is non-zero.
 *  NEURONAS  6 digits in edge order, codes skip=0 conv3x3=1 avgpool3x3=2 ("101021"; also
 *            separated, "[1, 0, 1, 0, 2, 1]").
 *  SNASNET   4 rows of 4 digits, row = from, col = to, codes zero=0 skip=1 conv1x1=2
 *            conv3x3=3 avgpool3x3=4 ("0302 0030 3003 0000"; also 16 digits unbroken, or 16
 *            separated digits as numpy/torch print them: "tensor([[0, 3, 0, 2], [0, 0, 3, 0],
 *            [3, 0, 0, 3], [0, 0, 0, 0]])"; separators: blanks , ; [ ] ( ) and a leading
 *            "tensor" or "array").
 *  AUTO      only digits and separators: 6 digits -> NEURONAS, 16 -> SNASNET; else NAMES. */
typedef enum nn_cell_form {
  NN_CELL_FORM_AUTO = 0,
  NN_CELL_FORM_NAMES,
  NN_CELL_FORM_NEURONAS,
  NN_CELL_FORM_SNASNET
} nn_cell_form;

/* Longest text nn_cell_format / nn_cell_format_as can produce, with the NUL. */
#define NN_CELL_TEXT_MAX 160

/* Space codes of an op: NeuroNAS (skip=0 conv3x3=1 avgpool3x3=2) and SNASNet (zero=0 skip=1
 * conv1x1=2 conv3x3=3 avgpool3x3=4); -1 when the op has no code there. */
int nn_op_neuronas_code(nn_op op);
int nn_op_snasnet_code(nn_op op);
/* Inverse: the op of a code, or -1 when the code is out of range. */
int nn_op_from_neuronas_code(int code);
int nn_op_from_snasnet_code(int code);

/* "auto", "names", "neuronas", "snasnet"; nn_cell_form_from_name returns -1 when unknown. */
const char *nn_cell_form_name(nn_cell_form form);
int nn_cell_form_from_name(const char *name);

/* Parses text in the given form into *cell (untouched on failure). Errors are NN_EFORMAT with
 * a message naming the cell text, the edge or character at fault and what was expected. */
nn_status nn_cell_parse(const char *text, nn_cell_form form, nn_cell *cell, nn_error *err);

/* Writes the canonical NAMES form (unique per cell; parses back to the same cell) into buf
 * (n bytes, NUL-terminated, truncated when short). Returns the full length, like snprintf. */
size_t nn_cell_format(const nn_cell *cell, char *buf, size_t n);
/* Writes the cell in a given form; NN_EINVAL when the form cannot express the cell (e.g. a
 * backward edge in NEURONAS digits, conv5x5 in SNASNet codes). AUTO means canonical. */
nn_status nn_cell_format_as(const nn_cell *cell, nn_cell_form form, char *buf, size_t n,
                            nn_error *err);

/* Checks a cell built by hand: ops < NN_OP_COUNT, zero diagonal (no self-loops). */
nn_status nn_cell_check(const nn_cell *cell, nn_error *err);
int nn_cell_equal(const nn_cell *a, const nn_cell *b);
/* 1 when no backward edge (m[j][i], j > i) is non-zero. */
int nn_cell_is_forward(const nn_cell *cell);
/* Number of conv edges (conv1x1..conv7x7, both directions) and of non-zero edges. */
int nn_cell_conv_count(const nn_cell *cell);
int nn_cell_edge_count(const nn_cell *cell);

#ifdef __cplusplus
}
#endif
#endif
