/* fuzz_gz.c: libFuzzer target for nn_gz_inflate (gzip streams). */
#include <stdlib.h>

#include "neuronas/nn_data.h"
#include "nn_gz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *out;
  size_t n;
  nn_error err;
  if (nn_gz_inflate(data, size, "fuzz", &out, &n, 1 << 26, &err) == NN_OK) free(out);
  return 0;
}
