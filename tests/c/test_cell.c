/* test_cell.c: nn_cell parsing and formatting against hand-decoded cells (docs/model.md). */
#include <string.h>

#include "neuronas/nn_cell.h"
#include "neuronas/nn_rng.h"
#include "nn_test.h"

static nn_cell cell_of(const char *text) {
  nn_cell c;
  nn_error err;
  memset(&c, 0xFF, sizeof c);
  if (nn_cell_parse(text, NN_CELL_FORM_AUTO, &c, &err) != NN_OK)
    fprintf(stderr, "unexpected parse error: %s\n", err.msg);
  return c;
}

static void op_names(void) {
  CHECK(strcmp(nn_op_name(NN_OP_AVGPOOL3X3), "avgpool3x3") == 0);
  CHECK(nn_op_from_name("conv5x5") == NN_OP_CONV5X5);
  CHECK(nn_op_from_name("conv4x4") == -1);
  CHECK(nn_op_from_name("Conv3x3") == -1);
  for (int op = 0; op < NN_OP_COUNT; op++) CHECK(nn_op_from_name(nn_op_name((nn_op)op)) == op);
  CHECK(nn_op_kernel(NN_OP_CONV1X1) == 1 && nn_op_kernel(NN_OP_CONV7X7) == 7);
  CHECK(nn_op_kernel(NN_OP_SKIP) == 0 && nn_op_kernel(NN_OP_AVGPOOL3X3) == 0);
  /* docs/model.md code tables */
  CHECK(nn_op_neuronas_code(NN_OP_SKIP) == 0 && nn_op_neuronas_code(NN_OP_CONV3X3) == 1 &&
        nn_op_neuronas_code(NN_OP_AVGPOOL3X3) == 2 && nn_op_neuronas_code(NN_OP_ZERO) == -1);
  CHECK(nn_op_snasnet_code(NN_OP_ZERO) == 0 && nn_op_snasnet_code(NN_OP_SKIP) == 1 &&
        nn_op_snasnet_code(NN_OP_CONV1X1) == 2 && nn_op_snasnet_code(NN_OP_CONV3X3) == 3 &&
        nn_op_snasnet_code(NN_OP_AVGPOOL3X3) == 4 && nn_op_snasnet_code(NN_OP_CONV5X5) == -1);
}

/* The docs/model.md example, decoded by hand: M[0][1]=3, M[0][3]=2, M[1][2]=3, M[2][0]=3, M[2][3]=3. */
static void spec_example(void) {
  nn_cell c = cell_of("0302 0030 3003 0000"), want;
  memset(&want, 0, sizeof want);
  want.m[0][1] = NN_OP_CONV3X3;
  want.m[0][3] = NN_OP_CONV1X1;
  want.m[1][2] = NN_OP_CONV3X3;
  want.m[2][0] = NN_OP_CONV3X3;
  want.m[2][3] = NN_OP_CONV3X3;
  CHECK(nn_cell_equal(&c, &want));
  CHECK(!nn_cell_is_forward(&c));
  CHECK(nn_cell_conv_count(&c) == 5 && nn_cell_edge_count(&c) == 5);
  char buf[NN_CELL_TEXT_MAX];
  nn_cell_format(&c, buf, sizeof buf);
  CHECK(strcmp(buf, "conv3x3 zero conv1x1 conv3x3 zero conv3x3 | zero conv3x3 zero zero zero zero") == 0);
  nn_cell back = cell_of(buf);
  CHECK(nn_cell_equal(&back, &c));
  CHECK(nn_cell_format_as(&c, NN_CELL_FORM_SNASNET, buf, sizeof buf, NULL) == NN_OK);
  CHECK(strcmp(buf, "0302 0030 3003 0000") == 0);
  CHECK(nn_cell_format_as(&c, NN_CELL_FORM_NEURONAS, buf, sizeof buf, NULL) == NN_EINVAL);
  nn_cell unbroken = cell_of("0302003030030000");
  CHECK(nn_cell_equal(&unbroken, &c));
  /* as SNASNet's logs print it (torch), and as numpy prints it */
  nn_cell printed = cell_of("tensor([[0, 3, 0, 2],\n        [0, 0, 3, 0],\n        [3, 0, 0, 3],\n"
                            "        [0, 0, 0, 0]])");
  CHECK(nn_cell_equal(&printed, &c));
  printed = cell_of("[[0 3 0 2]\n [0 0 3 0]\n [3 0 0 3]\n [0 0 0 0]]");
  CHECK(nn_cell_equal(&printed, &c));
  printed = cell_of("array([[0, 3, 0, 2], [0, 0, 3, 0], [3, 0, 0, 3], [0, 0, 0, 0]])");
  CHECK(nn_cell_equal(&printed, &c));
}

static void neuronas_digits(void) {
  /* "101021": 01=conv3x3 02=skip 03=conv3x3 12=skip 13=avgpool3x3 23=conv3x3 */
  nn_cell c = cell_of("101021"), n = cell_of("conv3x3 skip conv3x3 skip avgpool3x3 conv3x3");
  CHECK(nn_cell_equal(&c, &n));
  n = cell_of("[1, 0, 1, 0, 2, 1]");
  CHECK(nn_cell_equal(&c, &n));
  n = cell_of(" 1 0 1 0 2 1 ");
  CHECK(nn_cell_equal(&c, &n));
  CHECK(c.m[0][1] == NN_OP_CONV3X3 && c.m[0][2] == NN_OP_SKIP && c.m[1][3] == NN_OP_AVGPOOL3X3);
  CHECK(nn_cell_is_forward(&c) && nn_cell_conv_count(&c) == 3);
  char buf[NN_CELL_TEXT_MAX];
  CHECK(nn_cell_format_as(&c, NN_CELL_FORM_NEURONAS, buf, sizeof buf, NULL) == NN_OK);
  CHECK(strcmp(buf, "101021") == 0);
  CHECK(nn_cell_format(&c, buf, sizeof buf) == strlen("conv3x3 skip conv3x3 skip avgpool3x3 conv3x3"));
  CHECK(strcmp(buf, "conv3x3 skip conv3x3 skip avgpool3x3 conv3x3") == 0);
  /* truncation keeps the full length as the result, like snprintf */
  char small[8];
  CHECK(nn_cell_format(&c, small, sizeof small) == strlen("conv3x3 skip conv3x3 skip avgpool3x3 conv3x3"));
  CHECK(strcmp(small, "conv3x3") == 0);
}

/* All 729 NeuroNAS cells round-trip through every form. */
static void round_trip_all(void) {
  int bad = 0;
  for (int idx = 0; idx < 729; idx++) {
    nn_cell c;
    memset(&c, 0, sizeof c);
    int r = idx;
    for (int e = 5; e >= 0; e--, r /= 3)
      c.m[NN_CELL_EDGE_FROM[e]][NN_CELL_EDGE_TO[e]] = (uint8_t)nn_op_from_neuronas_code(r % 3);
    char t[NN_CELL_TEXT_MAX];
    nn_cell back;
    for (int form = NN_CELL_FORM_NAMES; form <= NN_CELL_FORM_SNASNET; form++) {
      if (nn_cell_format_as(&c, (nn_cell_form)form, t, sizeof t, NULL) != NN_OK) bad++;
      if (nn_cell_parse(t, (nn_cell_form)form, &back, NULL) != NN_OK || !nn_cell_equal(&back, &c)) bad++;
      if (nn_cell_parse(t, NN_CELL_FORM_AUTO, &back, NULL) != NN_OK || !nn_cell_equal(&back, &c)) bad++;
    }
  }
  CHECK(bad == 0);
}

static void expect_error(const char *text, nn_cell_form form, const char *msg) {
  nn_cell c;
  nn_error err = {0};
  nn_status st = nn_cell_parse(text, form, &c, &err);
  CHECK(st == NN_EFORMAT);
  CHECK(strcmp(err.msg, msg) == 0);
  if (strcmp(err.msg, msg) != 0) fprintf(stderr, "  got:  %s\n  want: %s\n", err.msg, msg);
}

static void errors(void) {
  expect_error("conv3x3 skp avgpool3x3 conv3x3 skip conv3x3", NN_CELL_FORM_AUTO,
               "cell \"conv3x3 skp avgpool3x3 conv3x3 skip conv3x3\": edge 02: unknown op 'skp' "
               "(expected zero, skip, conv1x1, conv3x3, conv5x5, conv7x7, avgpool3x3)");
  expect_error("conv3x3 skip", NN_CELL_FORM_NAMES,
               "cell \"conv3x3 skip\": 2 op names, expected 6 (edges 01 02 03 12 13 23)");
  expect_error("101031", NN_CELL_FORM_AUTO,
               "cell \"101031\": character 5 (edge 13) is '3', expected a NeuroNAS code 0-2 "
               "(skip=0, conv3x3=1, avgpool3x3=2)");
  expect_error("0302 0030 3005 0000", NN_CELL_FORM_SNASNET,
               "cell \"0302 0030 3005 0000\": character 14 (M[2][3]) is '5', expected a SNASNet code 0-4 "
               "(zero=0, skip=1, conv1x1=2, conv3x3=3, avgpool3x3=4)");
  expect_error("0302 0330 3003 0000", NN_CELL_FORM_AUTO,
               "cell \"0302 0330 3003 0000\": character 7 (M[1][1]) is '3', expected 0 on the diagonal "
               "(no self-loops)");
  expect_error("0302 030 3003 0000", NN_CELL_FORM_SNASNET,
               "cell \"0302 030 3003 0000\": row 1 has 3 characters, expected 4 SNASNet codes");
  expect_error("1 0 1 0 21", NN_CELL_FORM_NEURONAS,
               "cell \"1 0 1 0 21\": 5 groups of digits, expected 6 NeuroNAS codes (edges 01 02 03 12 13 23)");
  expect_error("1 0 1 0 2 11", NN_CELL_FORM_NEURONAS,
               "cell \"1 0 1 0 2 11\": item 6 (edge 23) has 2 characters, expected 1 NeuroNAS code");
  expect_error("[[0 3 0 2] [0 0 3 0] [3 0 0 3] [0 0 0 00]]", NN_CELL_FORM_SNASNET,
               "cell \"[[0 3 0 2] [0 0 3 0] [3 0 0 3] [0 0 0 00]]\": item 16 (M[3][3]) has 2 characters, "
               "expected 1 SNASNet code");
  expect_error("tensor([[0, 3, 0, 2], [0, 0, 3, 0], [3, 0, 0, 3], [0, 0, 5, 0]])", NN_CELL_FORM_AUTO,
               "cell \"tensor([[0, 3, 0, 2], [0, 0, 3, 0], [3, 0, 0,...\": character 58 (M[3][2]) is '5', "
               "expected a SNASNet code 0-4 (zero=0, skip=1, conv1x1=2, conv3x3=3, avgpool3x3=4)");
  expect_error("1234567", NN_CELL_FORM_AUTO,
               "cell \"1234567\": 7 digits, expected 6 (NeuroNAS codes) or 16 (SNASNet 4x4 matrix)");
  expect_error("", NN_CELL_FORM_AUTO,
               "cell \"\": empty, expected 6 op names (edges 01 02 03 12 13 23), 6 NeuroNAS codes or a "
               "SNASNet 4x4 matrix");
  expect_error("skip skip skip skip skip skip | skip skip", NN_CELL_FORM_AUTO,
               "cell \"skip skip skip skip skip skip | skip skip\": 2 op names after '|', expected 6 "
               "(backward edges 10 20 30 21 31 32)");
  expect_error("zero zero zero zero zero zero | zero zero zero zero zero cnv", NN_CELL_FORM_AUTO,
               "cell \"zero zero zero zero zero zero | zero zero zer...\": edge 32: unknown op 'cnv' "
               "(expected zero, skip, conv1x1, conv3x3, conv5x5, conv7x7, avgpool3x3)");
  nn_cell c;
  memset(&c, 0, sizeof c);
  c.m[2][2] = NN_OP_SKIP;
  CHECK(nn_cell_check(&c, NULL) == NN_EINVAL);
  c.m[2][2] = 0;
  c.m[1][3] = 200;
  CHECK(nn_cell_check(&c, NULL) == NN_EINVAL);
}

/* Mutated valid texts (bytes replaced, inserted, deleted; 20000 cases per seed text): each
 * parse either fails with NN_EFORMAT and a message or yields a valid cell that round-trips. */
static void mutations(void) {
  static const char *const seeds[] = {"conv3x3 skip avgpool3x3 conv3x3 skip conv3x3", "0302 0030 3003 0000",
                                      "101021", "zero zero zero zero zero zero | conv5x5 zero zero zero zero skip"};
  static const char alphabet[] = "0123456789 |,\tabcdefghijklmnopqrstuvwxyz\x01\xff";
  nn_rng r = nn_rng_seed(99);
  int bad = 0;
  for (int s = 0; s < 4; s++)
    for (int t = 0; t < 20000; t++) {
      char text[128];
      size_t n = strlen(seeds[s]);
      memcpy(text, seeds[s], n + 1);
      int edits = 1 + (int)nn_rng_below(&r, 4);
      for (int e = 0; e < edits; e++) {
        size_t pos = (size_t)nn_rng_below(&r, n + 1);
        char ch = alphabet[nn_rng_below(&r, sizeof alphabet - 1)];
        uint64_t kind = nn_rng_below(&r, 3);
        if (kind == 0 && pos < n) { /* replace */
          text[pos] = ch;
        } else if (kind == 1 && n + 1 < sizeof text) { /* insert */
          memmove(text + pos + 1, text + pos, n - pos + 1);
          text[pos] = ch;
          n++;
        } else if (kind == 2 && pos < n) { /* delete */
          memmove(text + pos, text + pos + 1, n - pos);
          n--;
        }
      }
      for (int form = NN_CELL_FORM_AUTO; form <= NN_CELL_FORM_SNASNET; form++) {
        nn_cell c, back;
        nn_error err = {NN_OK, {0}};
        nn_status st = nn_cell_parse(text, (nn_cell_form)form, &c, &err);
        if (st != NN_OK) {
          bad += st != NN_EFORMAT || err.msg[0] == 0;
          continue;
        }
        char canon[NN_CELL_TEXT_MAX];
        nn_cell_format(&c, canon, sizeof canon);
        bad += nn_cell_check(&c, NULL) != NN_OK;
        bad += nn_cell_parse(canon, NN_CELL_FORM_AUTO, &back, NULL) != NN_OK || !nn_cell_equal(&c, &back);
      }
    }
  CHECK(bad == 0);
}

int main(void) {
  NN_TEST_RUN(op_names);
  NN_TEST_RUN(spec_example);
  NN_TEST_RUN(neuronas_digits);
  NN_TEST_RUN(round_trip_all);
  NN_TEST_RUN(errors);
  NN_TEST_RUN(mutations);
  return NN_TEST_END();
}
