/* nn_cell.c: cell genotypes (docs/model.md): op names and codes, the three text forms (op names,
 * NeuroNAS digits, SNASNet 4x4 matrix), the canonical form, and predicates. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "neuronas/nn_cell.h"

const int NN_CELL_EDGE_FROM[NN_CELL_EDGES] = {0, 0, 0, 1, 1, 2};
const int NN_CELL_EDGE_TO[NN_CELL_EDGES] = {1, 2, 3, 2, 3, 3};

/* Indexed by nn_op (docs/model.md vocabulary). */
static const char *const op_names[NN_OP_COUNT] = {"zero",    "skip",    "conv1x1",   "conv3x3",
                                                  "conv5x5", "conv7x7", "avgpool3x3"};
/* docs/model.md: neuronas {skip=0, conv3x3=1, avgpool3x3=2}; snasnet {zero=0, skip=1, conv1x1=2,
 * conv3x3=3, avgpool3x3=4}. Indexed by code. */
static const nn_op neuronas_ops[3] = {NN_OP_SKIP, NN_OP_CONV3X3, NN_OP_AVGPOOL3X3};
static const nn_op snasnet_ops[5] = {NN_OP_ZERO, NN_OP_SKIP, NN_OP_CONV1X1, NN_OP_CONV3X3,
                                     NN_OP_AVGPOOL3X3};

#define OPS_EXPECTED "zero, skip, conv1x1, conv3x3, conv5x5, conv7x7, avgpool3x3"
#define NEURONAS_CODES "skip=0, conv3x3=1, avgpool3x3=2"
#define SNASNET_CODES "zero=0, skip=1, conv1x1=2, conv3x3=3, avgpool3x3=4"
#define EDGE_LIST "edges 01 02 03 12 13 23"
#define BACK_LIST "backward edges 10 20 30 21 31 32"

const char *nn_op_name(nn_op op) {
  return (unsigned)op < NN_OP_COUNT ? op_names[op] : "?";
}

int nn_op_from_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < NN_OP_COUNT; i++)
    if (strcmp(name, op_names[i]) == 0) return i;
  return -1;
}

int nn_op_kernel(nn_op op) {
  switch (op) {
  case NN_OP_CONV1X1: return 1;
  case NN_OP_CONV3X3: return 3;
  case NN_OP_CONV5X5: return 5;
  case NN_OP_CONV7X7: return 7;
  default: return 0;
  }
}

int nn_op_neuronas_code(nn_op op) {
  for (int c = 0; c < 3; c++)
    if (neuronas_ops[c] == op) return c;
  return -1;
}

int nn_op_snasnet_code(nn_op op) {
  for (int c = 0; c < 5; c++)
    if (snasnet_ops[c] == op) return c;
  return -1;
}

int nn_op_from_neuronas_code(int code) { return code >= 0 && code < 3 ? (int)neuronas_ops[code] : -1; }
int nn_op_from_snasnet_code(int code) { return code >= 0 && code < 5 ? (int)snasnet_ops[code] : -1; }

static const char *const form_names[] = {"auto", "names", "neuronas", "snasnet"};

const char *nn_cell_form_name(nn_cell_form form) {
  return (unsigned)form < 4 ? form_names[form] : "?";
}

int nn_cell_form_from_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < 4; i++)
    if (strcmp(name, form_names[i]) == 0) return i;
  return -1;
}

/* ---- parsing ---- */

/* The cell text as quoted in messages: at most 48 bytes, longer text cut with "...",
 * control characters shown as '?'. */
static const char *quote(const char *text, char out[56]) {
  size_t n = strlen(text), k = n > 48 ? 45 : n;
  for (size_t i = 0; i < k; i++) out[i] = isprint((unsigned char)text[i]) ? text[i] : '?';
  if (n > 48) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = 0;
  return out;
}

/* A character for a message: 'c', or \xNN when not printable. */
static const char *show_char(char c, char out[8]) {
  if (isprint((unsigned char)c))
    snprintf(out, 8, "'%c'", c);
  else
    snprintf(out, 8, "\\x%02X", (unsigned char)c);
  return out;
}

static int blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Separators of the digit forms: blanks, and the punctuation of printed arrays, so that
 * SNASNet's logged matrices ("tensor([[0, 3, 0, 2], [0, 0, 3, 0], ...])") parse as they are. */
static int digit_sep(char c) {
  return blank(c) || c == ',' || c == ';' || c == '[' || c == ']' || c == '(' || c == ')';
}

/* Offset just past a leading "tensor" or "array" word (after blanks), else 0. */
static size_t skip_array_word(const char *text) {
  size_t a = 0;
  while (blank(text[a])) a++;
  if (strncmp(text + a, "tensor", 6) == 0) return a + 6;
  if (strncmp(text + a, "array", 5) == 0) return a + 5;
  return 0;
}

/* Splits text (from offset `from`) into runs of non-separators; records up to `max` of them and
 * returns how many there are. */
static int digit_groups(const char *text, size_t from, size_t *start, size_t *len, int max) {
  int n = 0;
  for (size_t i = from; text[i];) {
    if (digit_sep(text[i])) {
      i++;
      continue;
    }
    size_t s = i;
    while (text[i] && !digit_sep(text[i])) i++;
    if (n < max) {
      start[n] = s;
      len[n] = i - s;
    }
    n++;
  }
  return n;
}

/* NEURONAS: 6 digits 0..2 in edge order, in a row ("101021") or separated ("1 0 1 0 2 1",
 * "[1, 0, 1, 0, 2, 1]"). */
static nn_status parse_neuronas(const char *text, nn_cell *out, nn_error *err) {
  char q[56], ch[8];
  size_t start[6], len[6], pos[6];
  int ngroups = digit_groups(text, skip_array_word(text), start, len, 6);
  if (ngroups <= 1) {
    size_t n = ngroups ? len[0] : 0;
    if (n != 6)
      return nn_fail(err, NN_EFORMAT, "cell \"%s\": %zu characters, expected 6 NeuroNAS codes (" EDGE_LIST ")",
                     quote(text, q), n);
    for (int e = 0; e < 6; e++) pos[e] = start[0] + (size_t)e;
  } else if (ngroups == 6) {
    for (int e = 0; e < 6; e++) {
      if (len[e] != 1)
        return nn_fail(err, NN_EFORMAT, "cell \"%s\": item %d (edge %d%d) has %zu characters, expected 1 NeuroNAS code",
                       quote(text, q), e + 1, NN_CELL_EDGE_FROM[e], NN_CELL_EDGE_TO[e], len[e]);
      pos[e] = start[e];
    }
  } else {
    return nn_fail(err, NN_EFORMAT, "cell \"%s\": %d groups of digits, expected 6 NeuroNAS codes (" EDGE_LIST ")",
                   quote(text, q), ngroups);
  }
  nn_cell c;
  memset(&c, 0, sizeof c);
  for (int e = 0; e < 6; e++) {
    char d = text[pos[e]];
    if (d < '0' || d > '2')
      return nn_fail(err, NN_EFORMAT,
                     "cell \"%s\": character %zu (edge %d%d) is %s, expected a NeuroNAS code 0-2 (" NEURONAS_CODES ")",
                     quote(text, q), pos[e] + 1, NN_CELL_EDGE_FROM[e], NN_CELL_EDGE_TO[e], show_char(d, ch));
    c.m[NN_CELL_EDGE_FROM[e]][NN_CELL_EDGE_TO[e]] = (uint8_t)neuronas_ops[d - '0'];
  }
  *out = c;
  return NN_OK;
}

/* SNASNET: 4 rows of 4 digits ("0302 0030 3003 0000"), 16 digits in a row, or 16 separated
 * digits as printed by numpy/torch ("[[0 3 0 2] [0 0 3 0] ...]", "tensor([[0, 3, 0, 2], ...])"). */
static nn_status parse_snasnet(const char *text, nn_cell *out, nn_error *err) {
  char q[56], ch[8];
  size_t start[16], len[16];
  int ngroups = digit_groups(text, skip_array_word(text), start, len, 16);
  size_t pos[16]; /* offset in text of each of the 16 matrix entries */
  if (ngroups <= 1) {
    size_t n = ngroups ? len[0] : 0;
    if (n != 16)
      return nn_fail(err, NN_EFORMAT,
                     "cell \"%s\": %zu characters, expected 16 SNASNet codes (4 rows of 4, row = from, col = to)",
                     quote(text, q), n);
    for (int k = 0; k < 16; k++) pos[k] = start[0] + (size_t)k;
  } else if (ngroups == 4) {
    for (int r = 0; r < 4; r++) {
      if (len[r] != 4)
        return nn_fail(err, NN_EFORMAT, "cell \"%s\": row %d has %zu characters, expected 4 SNASNet codes",
                       quote(text, q), r, len[r]);
      for (int k = 0; k < 4; k++) pos[4 * r + k] = start[r] + (size_t)k;
    }
  } else if (ngroups == 16) {
    for (int k = 0; k < 16; k++) {
      if (len[k] != 1)
        return nn_fail(err, NN_EFORMAT, "cell \"%s\": item %d (M[%d][%d]) has %zu characters, expected 1 SNASNet code",
                       quote(text, q), k + 1, k / 4, k % 4, len[k]);
      pos[k] = start[k];
    }
  } else {
    return nn_fail(err, NN_EFORMAT,
                   "cell \"%s\": %d groups of digits, expected 4 rows of 4 SNASNet codes (row = from, col = to)",
                   quote(text, q), ngroups);
  }
  nn_cell c;
  memset(&c, 0, sizeof c);
  for (int k = 0; k < 16; k++) {
    int r = k / 4, col = k % 4;
    char d = text[pos[k]];
    if (d < '0' || d > '4')
      return nn_fail(err, NN_EFORMAT,
                     "cell \"%s\": character %zu (M[%d][%d]) is %s, expected a SNASNet code 0-4 (" SNASNET_CODES ")",
                     quote(text, q), pos[k] + 1, r, col, show_char(d, ch));
    if (r == col && d != '0')
      return nn_fail(err, NN_EFORMAT,
                     "cell \"%s\": character %zu (M[%d][%d]) is %s, expected 0 on the diagonal (no self-loops)",
                     quote(text, q), pos[k] + 1, r, col, show_char(d, ch));
    c.m[r][col] = (uint8_t)snasnet_ops[d - '0'];
  }
  *out = c;
  return NN_OK;
}

/* NAMES: 6 op names (blank- or comma-separated), optionally "|" and 6 backward ones. */
static nn_status parse_names(const char *text, nn_cell *out, nn_error *err) {
  char q[56];
  enum { MAXTOK = 16 };
  size_t start[MAXTOK], len[MAXTOK];
  int ntok = 0, bar = -1, nbars = 0;
  for (size_t i = 0; text[i];) {
    char c = text[i];
    if (blank(c) || c == ',') {
      i++;
      continue;
    }
    size_t s = i;
    if (c == '|') {
      i++;
      if (nbars++ == 0) bar = ntok;
    } else {
      while (text[i] && !blank(text[i]) && text[i] != ',' && text[i] != '|') i++;
    }
    if (ntok < MAXTOK) {
      start[ntok] = s;
      len[ntok] = i - s;
    }
    ntok++;
  }
  if (ntok == 0)
    return nn_fail(err, NN_EFORMAT,
                   "cell \"%s\": empty, expected 6 op names (" EDGE_LIST "), 6 NeuroNAS codes or a SNASNet 4x4 matrix",
                   quote(text, q));
  if (nbars > 1)
    return nn_fail(err, NN_EFORMAT, "cell \"%s\": %d '|' separators, expected at most 1", quote(text, q),
                   nbars);
  int nfwd = bar < 0 ? ntok : bar, nback = bar < 0 ? 0 : ntok - bar - 1;
  if (bar < 0 && nfwd != 6)
    return nn_fail(err, NN_EFORMAT, "cell \"%s\": %d op name%s, expected 6 (" EDGE_LIST ")", quote(text, q),
                   nfwd, nfwd == 1 ? "" : "s");
  if (bar >= 0 && nfwd != 6)
    return nn_fail(err, NN_EFORMAT, "cell \"%s\": %d op name%s before '|', expected 6 (" EDGE_LIST ")",
                   quote(text, q), nfwd, nfwd == 1 ? "" : "s");
  if (bar >= 0 && nback != 6)
    return nn_fail(err, NN_EFORMAT, "cell \"%s\": %d op name%s after '|', expected 6 (" BACK_LIST ")",
                   quote(text, q), nback, nback == 1 ? "" : "s");
  nn_cell c;
  memset(&c, 0, sizeof c);
  for (int t = 0, e = 0; t < ntok; t++) {
    if (t == bar) continue;
    char name[32], shown[56];
    size_t n = len[t] < sizeof name - 1 ? len[t] : sizeof name - 1;
    memcpy(name, text + start[t], n);
    name[n] = 0;
    int op = len[t] < sizeof name - 1 ? nn_op_from_name(name) : -1;
    int fwd = e < 6, k = e % 6;
    int from = fwd ? NN_CELL_EDGE_FROM[k] : NN_CELL_EDGE_TO[k];
    int to = fwd ? NN_CELL_EDGE_TO[k] : NN_CELL_EDGE_FROM[k];
    if (op < 0) {
      quote(name, shown);
      if (n > 24) strcpy(shown + 21, "...");
      return nn_fail(err, NN_EFORMAT, "cell \"%s\": edge %d%d: unknown op '%s' (expected " OPS_EXPECTED ")",
                     quote(text, q), from, to, shown);
    }
    c.m[from][to] = (uint8_t)op;
    e++;
  }
  *out = c;
  return NN_OK;
}

nn_status nn_cell_parse(const char *text, nn_cell_form form, nn_cell *cell, nn_error *err) {
  char q[56];
  if (!text || !cell) return nn_fail(err, NN_EINVAL, "nn_cell_parse: text and cell must not be NULL");
  if (form == NN_CELL_FORM_AUTO) {
    int digits = 0, other = 0;
    for (const char *p = text + skip_array_word(text); *p; p++) {
      if (isdigit((unsigned char)*p))
        digits++;
      else if (!digit_sep(*p))
        other++;
    }
    if (other == 0 && digits > 0) {
      if (digits == 6)
        form = NN_CELL_FORM_NEURONAS;
      else if (digits == 16)
        form = NN_CELL_FORM_SNASNET;
      else
        return nn_fail(err, NN_EFORMAT,
                       "cell \"%s\": %d digits, expected 6 (NeuroNAS codes) or 16 (SNASNet 4x4 matrix)",
                       quote(text, q), digits);
    } else {
      form = NN_CELL_FORM_NAMES;
    }
  }
  switch (form) {
  case NN_CELL_FORM_NAMES: return parse_names(text, cell, err);
  case NN_CELL_FORM_NEURONAS: return parse_neuronas(text, cell, err);
  case NN_CELL_FORM_SNASNET: return parse_snasnet(text, cell, err);
  default: return nn_fail(err, NN_EINVAL, "cell form %d: expected auto, names, neuronas or snasnet", (int)form);
  }
}

/* ---- formatting ---- */

/* Appends s at *len in buf (n bytes), always counting the full length. */
static void put(char *buf, size_t n, size_t *len, const char *s) {
  size_t k = strlen(s);
  if (*len < n) {
    size_t room = n - *len - 1, c = k < room ? k : room;
    memcpy(buf + *len, s, c);
    buf[*len + c] = 0;
  }
  *len += k;
}

size_t nn_cell_format(const nn_cell *cell, char *buf, size_t n) {
  size_t len = 0;
  if (n) buf[0] = 0;
  for (int e = 0; e < 6; e++) {
    if (e) put(buf, n, &len, " ");
    put(buf, n, &len, nn_op_name((nn_op)cell->m[NN_CELL_EDGE_FROM[e]][NN_CELL_EDGE_TO[e]]));
  }
  if (!nn_cell_is_forward(cell)) {
    put(buf, n, &len, " |");
    for (int e = 0; e < 6; e++) {
      put(buf, n, &len, " ");
      put(buf, n, &len, nn_op_name((nn_op)cell->m[NN_CELL_EDGE_TO[e]][NN_CELL_EDGE_FROM[e]]));
    }
  }
  return len;
}

nn_status nn_cell_format_as(const nn_cell *cell, nn_cell_form form, char *buf, size_t n,
                            nn_error *err) {
  char canon[NN_CELL_TEXT_MAX];
  nn_status st = nn_cell_check(cell, err);
  if (st != NN_OK) return st;
  if (form == NN_CELL_FORM_AUTO || form == NN_CELL_FORM_NAMES) {
    nn_cell_format(cell, buf, n);
    return NN_OK;
  }
  nn_cell_format(cell, canon, sizeof canon);
  if (form == NN_CELL_FORM_NEURONAS) {
    char d[7];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < i; j++)
        if (cell->m[i][j])
          return nn_fail(err, NN_EINVAL,
                         "cell \"%s\" has no NeuroNAS digit form: backward edge %d%d is %s (NeuroNAS cells are forward-only)",
                         canon, i, j, nn_op_name((nn_op)cell->m[i][j]));
    for (int e = 0; e < 6; e++) {
      nn_op op = (nn_op)cell->m[NN_CELL_EDGE_FROM[e]][NN_CELL_EDGE_TO[e]];
      int code = nn_op_neuronas_code(op);
      if (code < 0)
        return nn_fail(err, NN_EINVAL,
                       "cell \"%s\" has no NeuroNAS digit form: edge %d%d is %s (NeuroNAS codes: " NEURONAS_CODES ")",
                       canon, NN_CELL_EDGE_FROM[e], NN_CELL_EDGE_TO[e], nn_op_name(op));
      d[e] = (char)('0' + code);
    }
    d[6] = 0;
    if (n) snprintf(buf, n, "%s", d);
    return NN_OK;
  }
  if (form == NN_CELL_FORM_SNASNET) {
    char t[20];
    int k = 0;
    for (int i = 0; i < 4; i++) {
      for (int j = 0; j < 4; j++) {
        int code = nn_op_snasnet_code((nn_op)cell->m[i][j]);
        if (code < 0)
          return nn_fail(err, NN_EINVAL,
                         "cell \"%s\" has no SNASNet form: edge %d%d is %s (SNASNet codes: " SNASNET_CODES ")",
                         canon, i, j, nn_op_name((nn_op)cell->m[i][j]));
        t[k++] = (char)('0' + code);
      }
      t[k++] = i < 3 ? ' ' : 0;
    }
    if (n) snprintf(buf, n, "%s", t);
    return NN_OK;
  }
  return nn_fail(err, NN_EINVAL, "cell form %d: expected auto, names, neuronas or snasnet", (int)form);
}

/* ---- predicates ---- */

nn_status nn_cell_check(const nn_cell *cell, nn_error *err) {
  if (!cell) return nn_fail(err, NN_EINVAL, "cell must not be NULL");
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      if (cell->m[i][j] >= NN_OP_COUNT)
        return nn_fail(err, NN_EINVAL, "cell: m[%d][%d] = %d is not an op (expected 0..%d)", i, j,
                       cell->m[i][j], NN_OP_COUNT - 1);
      if (i == j && cell->m[i][j] != NN_OP_ZERO)
        return nn_fail(err, NN_EINVAL, "cell: m[%d][%d] is %s, expected zero on the diagonal (no self-loops)",
                       i, j, nn_op_name((nn_op)cell->m[i][j]));
    }
  return NN_OK;
}

int nn_cell_equal(const nn_cell *a, const nn_cell *b) { return memcmp(a->m, b->m, sizeof a->m) == 0; }

int nn_cell_is_forward(const nn_cell *cell) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < i; j++)
      if (cell->m[i][j] != NN_OP_ZERO) return 0;
  return 1;
}

int nn_cell_conv_count(const nn_cell *cell) {
  int n = 0;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) n += nn_op_kernel((nn_op)cell->m[i][j]) > 0;
  return n;
}

int nn_cell_edge_count(const nn_cell *cell) {
  int n = 0;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) n += cell->m[i][j] != NN_OP_ZERO;
  return n;
}
