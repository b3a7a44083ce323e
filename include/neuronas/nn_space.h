/* nn_space.h: search spaces of cells (docs/model.md; docs/search.md): enumeration in a fixed order, index
 * lookup, and sampling (uniform, or SNASNet's random generator with its sanity pass).
 *
 * A space is an op list, a direction flag and a sanity flag:
 *  - forward spaces: each of the 6 edges 01 02 03 12 13 23 carries one op of the list;
 *  - backward spaces: each pair i<j carries either a forward edge i->j or a backward edge
 *    j->i with an op of the list (zero counted once: it is the same absent edge both ways);
 *  - sanity spaces (SNASNet): a cell is what SNASNet's generator can return: a drawn cell
 *    after the sanity pass (nn_cell_snasnet_sanity) whose edge 0->3 is not zero.
 * Enumeration order (index 0 .. size-1): a mixed-radix number over the pairs, pair 01 the most
 * significant digit (Alg. 1's outermost loop) and 23 the least, where a pair's digit is the
 * position of its op in the op list, and in backward spaces the forward choices come first
 * (list order), then the backward choices (list order, zero skipped). Sanity spaces list, in
 * that order, only the distinct cells the generator can return. For "neuronas" (ops skip,
 * conv3x3, avgpool3x3) the index is thus the NeuroNAS digit string read in base 3. */
#ifndef NEURONAS_NN_SPACE_H
#define NEURONAS_NN_SPACE_H

#include "nn.h"
#include "nn_cell.h"
#include "nn_rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_space nn_space;

typedef struct nn_space_params {
  char name[16];         /* "neuronas", "snasnet" or "custom" (for display) */
  nn_op ops[NN_OP_COUNT]; /* distinct ops, in enumeration order */
  int nops;
  int backward; /* 1: backward edges allowed (SNASNet "backward" cells) */
  int sanity;   /* 1: SNASNet's generator semantics (sanity pass, edge 0->3 present) */
} nn_space_params;

/* The NeuroNAS space: ops {skip, conv3x3, avgpool3x3}, forward, no sanity pass: 729 cells. */
nn_space_params nn_space_params_default(void);
/* Presets by name: "neuronas" (backward must be 0) and "snasnet" (ops zero, skip, conv1x1,
 * conv3x3, avgpool3x3 in SNASNet's code order; sanity on; forward or backward cells). */
nn_status nn_space_preset(const char *name, int backward, nn_space_params *p, nn_error *err);

/* Caller owns the space; free with nn_space_free (NULL is a no-op). NN_EINVAL for an empty
 * op list, a repeated or unknown op, or a sanity space without a non-zero op. */
nn_space *nn_space_new(const nn_space_params *p, nn_error *err);
void nn_space_free(nn_space *s);
const nn_space_params *nn_space_params_get(const nn_space *s);

/* Number of cells. Sanity spaces enumerate their cells on first use (up to 13^6 drawn cells
 * for the full vocabulary; 9^6 for snasnet backward), hence the status (NN_ENOMEM). */
nn_status nn_space_size(nn_space *s, int64_t *size, nn_error *err);
/* Cell number index (0-based, enumeration order). NN_EINVAL when out of range. */
nn_status nn_space_cell(nn_space *s, int64_t index, nn_cell *out, nn_error *err);
/* Index of cell in the space (0-based), or -1 in *index when the cell is not in it. */
nn_status nn_space_index(nn_space *s, const nn_cell *cell, int64_t *index, nn_error *err);
/* Draws one cell. Without sanity: uniform over the space (one nn_rng_below(size) draw).
 * With sanity: SNASNet's generator, repeated until edge 0->3 survives: per attempt a 4x4
 * "upper" op matrix (16 draws, row-major, kept above the diagonal), for backward spaces a
 * 4x4 "lower" op matrix (16 draws, kept below) and a 4x4 0/1 selection (16 draws, kept above):
 * pair i<j gets upper[i][j] on i->j when selection[i][j] = 1, else lower[j][i] on j->i;
 * then nn_cell_snasnet_sanity. Not uniform over the space's cells. */
nn_status nn_space_sample(const nn_space *s, nn_rng *rng, nn_cell *out, nn_error *err);

/* SNASNet's sanity pass, in place (docs/model.md): with R = M + M^2 + M^3 + M^4 computed once on
 * the op-coded matrix (SNASNet codes), nodes 0, 1, 2 with R[node][3] = 0 and nodes 1, 2, 3
 * with R[0][node] = 0 get their row and column zeroed. Returns 1 when edge 0->3 is non-zero
 * afterwards (the generator's acceptance test). */
int nn_cell_snasnet_sanity(nn_cell *cell);

#ifdef __cplusplus
}
#endif
#endif
