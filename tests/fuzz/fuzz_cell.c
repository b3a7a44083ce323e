/* fuzz_cell.c: libFuzzer target for the genotype parser (docs/model.md): any text in any form
 * either fails with a message or gives a valid cell whose every expressible form parses back.
 * With coverage of the parser itself (the CMake target links the uninstrumented engine):
 *   clang -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_cell.c \
 *     engine/nn_cell.c engine/nn_status.c -o fuzz_cell && ./fuzz_cell -max_total_time=60 */
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_cell.h"

static void round_trip(const nn_cell *c) {
  char t[NN_CELL_TEXT_MAX];
  nn_cell back;
  if (nn_cell_check(c, NULL) != NN_OK) abort();
  if (nn_cell_format(c, t, sizeof t) >= sizeof t) abort();
  for (int form = NN_CELL_FORM_AUTO; form <= NN_CELL_FORM_SNASNET; form++) {
    if (nn_cell_format_as(c, (nn_cell_form)form, t, sizeof t, NULL) != NN_OK) continue;
    if (nn_cell_parse(t, (nn_cell_form)form, &back, NULL) != NN_OK || !nn_cell_equal(&back, c)) abort();
    if (nn_cell_parse(t, NN_CELL_FORM_AUTO, &back, NULL) != NN_OK || !nn_cell_equal(&back, c)) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  for (int form = NN_CELL_FORM_AUTO; form <= NN_CELL_FORM_SNASNET; form++) {
    nn_cell c;
    nn_error err = {NN_OK, {0}};
    nn_status st = nn_cell_parse(text, (nn_cell_form)form, &c, &err);
    if (st == NN_OK)
      round_trip(&c);
    else if (st != NN_EFORMAT || err.msg[0] == 0 || strlen(err.msg) >= sizeof err.msg)
      abort();
  }
  free(text);
  return 0;
}
