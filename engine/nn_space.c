/* nn_space.c: search spaces of cells (docs/model.md; docs/search.md): the NeuroNAS space, SNASNet's spaces with
 * its random generator and sanity pass, and custom spaces; enumeration order in nn_space.h. */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_space.h"

#define NPAIRS NN_CELL_EDGES
/* Attempts of SNASNet's generator before giving up; the acceptance probability per attempt is
 * at least 1/(2*7) for any valid sanity space, so this bound is never reached in practice. */
#define MAX_ATTEMPTS 100000

struct nn_space {
  nn_space_params p;
  int nchoice;                  /* choices per pair */
  nn_op choice_op[2 * NN_OP_COUNT];
  int choice_back[2 * NN_OP_COUNT]; /* 1: the choice is the backward edge j->i */
  int64_t raw_size;             /* nchoice^6 */
  int32_t *list;                /* sanity spaces: sorted raw indices of the distinct cells */
  int64_t nlist;                /* -1 until enumerated */
};

nn_space_params nn_space_params_default(void) {
  nn_space_params p;
  memset(&p, 0, sizeof p);
  strcpy(p.name, "neuronas");
  /* docs/model.md: neuronas ops {skip=0, conv3x3=1, avgpool3x3=2}, forward edges only */
  p.ops[0] = NN_OP_SKIP;
  p.ops[1] = NN_OP_CONV3X3;
  p.ops[2] = NN_OP_AVGPOOL3X3;
  p.nops = 3;
  return p;
}

nn_status nn_space_preset(const char *name, int backward, nn_space_params *p, nn_error *err) {
  if (name && strcmp(name, "neuronas") == 0) {
    if (backward)
      return nn_fail(err, NN_EINVAL, "space \"neuronas\" has forward cells only (docs/model.md)");
    *p = nn_space_params_default();
    return NN_OK;
  }
  if (name && strcmp(name, "snasnet") == 0) {
    nn_space_params q;
    memset(&q, 0, sizeof q);
    strcpy(q.name, "snasnet");
    /* docs/model.md: snasnet ops {zero=0, skip=1, conv1x1=2, conv3x3=3, avgpool3x3=4} */
    for (int c = 0; c < 5; c++) q.ops[c] = (nn_op)nn_op_from_snasnet_code(c);
    q.nops = 5;
    q.backward = backward != 0;
    q.sanity = 1;
    *p = q;
    return NN_OK;
  }
  return nn_fail(err, NN_EINVAL, "space \"%s\": expected \"neuronas\" or \"snasnet\"", name ? name : "(null)");
}

static int has_op(const nn_space_params *p, nn_op op) {
  for (int i = 0; i < p->nops; i++)
    if (p->ops[i] == op) return 1;
  return 0;
}

nn_space *nn_space_new(const nn_space_params *p, nn_error *err) {
  if (!p) {
    nn_fail(err, NN_EINVAL, "space params must not be NULL");
    return NULL;
  }
  if (p->nops < 1 || p->nops > NN_OP_COUNT) {
    nn_fail(err, NN_EINVAL, "space ops: 1..%d distinct ops expected, got %d", NN_OP_COUNT, p->nops);
    return NULL;
  }
  for (int i = 0; i < p->nops; i++) {
    if ((unsigned)p->ops[i] >= NN_OP_COUNT) {
      nn_fail(err, NN_EINVAL, "space ops: item %d is %d, not an op (expected 0..%d)", i + 1, (int)p->ops[i],
              NN_OP_COUNT - 1);
      return NULL;
    }
    for (int j = 0; j < i; j++)
      if (p->ops[j] == p->ops[i]) {
        nn_fail(err, NN_EINVAL, "space ops: item %d repeats '%s'", i + 1, nn_op_name(p->ops[i]));
        return NULL;
      }
  }
  if (p->sanity && (!has_op(p, NN_OP_ZERO) || p->nops < 2)) {
    nn_fail(err, NN_EINVAL,
            "space ops: the SNASNet sanity pass needs 'zero' and at least one other op in ops");
    return NULL;
  }
  nn_space *s = calloc(1, sizeof *s);
  if (!s) {
    nn_fail(err, NN_ENOMEM, "space: out of memory");
    return NULL;
  }
  s->p = *p;
  s->p.name[sizeof s->p.name - 1] = 0;
  s->p.backward = p->backward != 0;
  s->p.sanity = p->sanity != 0;
  for (int i = 0; i < p->nops; i++) {
    s->choice_op[s->nchoice] = p->ops[i];
    s->choice_back[s->nchoice++] = 0;
  }
  if (s->p.backward)
    for (int i = 0; i < p->nops; i++)
      if (p->ops[i] != NN_OP_ZERO) {
        s->choice_op[s->nchoice] = p->ops[i];
        s->choice_back[s->nchoice++] = 1;
      }
  s->raw_size = 1;
  for (int k = 0; k < NPAIRS; k++) s->raw_size *= s->nchoice;
  s->nlist = -1;
  return s;
}

void nn_space_free(nn_space *s) {
  if (!s) return;
  free(s->list);
  free(s);
}

const nn_space_params *nn_space_params_get(const nn_space *s) { return &s->p; }

/* Raw index r (0 <= r < raw_size) -> cell. */
static void decode(const nn_space *s, int64_t r, nn_cell *c) {
  memset(c, 0, sizeof *c);
  for (int k = NPAIRS - 1; k >= 0; k--, r /= s->nchoice) {
    int ch = (int)(r % s->nchoice);
    int i = NN_CELL_EDGE_FROM[k], j = NN_CELL_EDGE_TO[k];
    if (s->choice_back[ch])
      c->m[j][i] = (uint8_t)s->choice_op[ch];
    else
      c->m[i][j] = (uint8_t)s->choice_op[ch];
  }
}

/* Cell -> raw index, or -1 when no choice sequence gives it. */
static int64_t encode(const nn_space *s, const nn_cell *c) {
  if (nn_cell_check(c, NULL) != NN_OK) return -1;
  int64_t r = 0;
  for (int k = 0; k < NPAIRS; k++) {
    int i = NN_CELL_EDGE_FROM[k], j = NN_CELL_EDGE_TO[k];
    nn_op f = (nn_op)c->m[i][j], b = (nn_op)c->m[j][i];
    int back = b != NN_OP_ZERO, ch = -1;
    if (back && f != NN_OP_ZERO) return -1;
    nn_op op = back ? b : f;
    for (int x = 0; x < s->nchoice; x++)
      if (s->choice_back[x] == back && s->choice_op[x] == op) {
        ch = x;
        break;
      }
    if (ch < 0) return -1;
    r = r * s->nchoice + ch;
  }
  return r;
}

/* The op-coded matrix value of an op: its SNASNet code (docs/model.md), or for ops SNASNet lacks
 * (conv5x5, conv7x7 in custom spaces) the op number; only zero codes as 0. */
static int64_t sanity_code(nn_op op) {
  int c = nn_op_snasnet_code(op);
  return c >= 0 ? c : (int64_t)op;
}

static void matmul4(int64_t a[4][4], int64_t b[4][4], int64_t out[4][4]) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      int64_t acc = 0;
      for (int k = 0; k < 4; k++) acc += a[i][k] * b[k][j];
      out[i][j] = acc;
    }
}

int nn_cell_snasnet_sanity(nn_cell *cell) {
  int64_t m[4][4], m2[4][4], m3[4][4], m4[4][4];
  int dead[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) m[i][j] = sanity_code((nn_op)cell->m[i][j]);
  matmul4(m, m, m2);
  matmul4(m2, m, m3);
  matmul4(m3, m, m4);
  /* R = M + M^2 + M^3 + M^4, computed once, before any zeroing */
  for (int node = 0; node < 3; node++)
    if (m[node][3] + m2[node][3] + m3[node][3] + m4[node][3] == 0) dead[node] = 1;
  for (int node = 1; node < 4; node++)
    if (m[0][node] + m2[0][node] + m3[0][node] + m4[0][node] == 0) dead[node] = 1;
  for (int node = 0; node < 4; node++)
    if (dead[node])
      for (int k = 0; k < 4; k++) cell->m[node][k] = cell->m[k][node] = NN_OP_ZERO;
  return cell->m[0][3] != NN_OP_ZERO;
}

/* Sanity spaces: runs the sanity pass on every drawable cell and keeps the distinct accepted
 * results, sorted by raw index. */
static nn_status enumerate(nn_space *s, nn_error *err) {
  if (s->nlist >= 0) return NN_OK;
  size_t words = (size_t)(s->raw_size + 63) / 64;
  uint64_t *seen = calloc(words, sizeof *seen);
  if (!seen) return nn_fail(err, NN_ENOMEM, "space: out of memory enumerating %lld cells", (long long)s->raw_size);
  int64_t n = 0;
  for (int64_t r = 0; r < s->raw_size; r++) {
    nn_cell c;
    decode(s, r, &c);
    if (!nn_cell_snasnet_sanity(&c)) continue;
    int64_t q = encode(s, &c); /* zeroing keeps every pair a valid choice: zero is in ops */
    if (q < 0) continue;
    if (!(seen[q / 64] >> (q % 64) & 1)) {
      seen[q / 64] |= 1ULL << (q % 64);
      n++;
    }
  }
  int32_t *list = malloc((size_t)(n ? n : 1) * sizeof *list);
  if (!list) {
    free(seen);
    return nn_fail(err, NN_ENOMEM, "space: out of memory listing %lld cells", (long long)n);
  }
  int64_t k = 0;
  for (int64_t q = 0; q < s->raw_size; q++)
    if (seen[q / 64] >> (q % 64) & 1) list[k++] = (int32_t)q;
  free(seen);
  s->list = list;
  s->nlist = n;
  return NN_OK;
}

nn_status nn_space_size(nn_space *s, int64_t *size, nn_error *err) {
  if (!s->p.sanity) {
    *size = s->raw_size;
    return NN_OK;
  }
  nn_status st = enumerate(s, err);
  if (st != NN_OK) return st;
  *size = s->nlist;
  return NN_OK;
}

nn_status nn_space_cell(nn_space *s, int64_t index, nn_cell *out, nn_error *err) {
  int64_t size;
  nn_status st = nn_space_size(s, &size, err);
  if (st != NN_OK) return st;
  if (index < 0 || index >= size)
    return nn_fail(err, NN_EINVAL, "space \"%s\": cell index %lld outside 0..%lld", s->p.name, (long long)index,
                   (long long)(size - 1));
  decode(s, s->p.sanity ? s->list[index] : index, out);
  return NN_OK;
}

nn_status nn_space_index(nn_space *s, const nn_cell *cell, int64_t *index, nn_error *err) {
  int64_t r = encode(s, cell);
  *index = -1;
  if (r < 0) return NN_OK;
  if (!s->p.sanity) {
    *index = r;
    return NN_OK;
  }
  nn_status st = enumerate(s, err);
  if (st != NN_OK) return st;
  int64_t lo = 0, hi = s->nlist; /* binary search in the sorted list */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (s->list[mid] < r)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < s->nlist && s->list[lo] == r) *index = lo;
  return NN_OK;
}

nn_status nn_space_sample(const nn_space *s, nn_rng *rng, nn_cell *out, nn_error *err) {
  if (!rng) return nn_fail(err, NN_EINVAL, "space sample: rng must not be NULL");
  if (!s->p.sanity) {
    decode(s, (int64_t)nn_rng_below(rng, (uint64_t)s->raw_size), out);
    return NN_OK;
  }
  uint64_t nops = (uint64_t)s->p.nops;
  for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    nn_op upper[4][4], lower[4][4];
    int sel[4][4];
    /* SNASNet's connection_matrix_gen: full 4x4 random matrices, masked to a triangle */
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) upper[i][j] = s->p.ops[nn_rng_below(rng, nops)];
    if (s->p.backward) {
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) lower[i][j] = s->p.ops[nn_rng_below(rng, nops)];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) sel[i][j] = (int)nn_rng_below(rng, 2);
    }
    nn_cell c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 4; i++)
      for (int j = i + 1; j < 4; j++) {
        if (!s->p.backward || sel[i][j])
          c.m[i][j] = (uint8_t)upper[i][j];
        else
          c.m[j][i] = (uint8_t)lower[j][i];
      }
    if (nn_cell_snasnet_sanity(&c)) {
      *out = c;
      return NN_OK;
    }
  }
  return nn_fail(err, NN_EINVAL, "space \"%s\": no cell with an edge 0->3 after %d draws", s->p.name,
                 MAX_ATTEMPTS);
}
