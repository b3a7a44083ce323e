/* fuzz_idx.c: libFuzzer target for the IDX reader. Input: 2-byte little-endian length L,
 * then L bytes of the images file, then the labels file; both may be gzip. Also drives
 * nn_idx_parse on the whole input. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int64_t dims[3];
  const uint8_t *pay;
  nn_error err;
  nn_idx_parse(data, size, 3, "fuzz", dims, &pay, &err);
  nn_idx_parse(data, size, 1, "fuzz", dims, &pay, &err);
  if (size < 2) return 0;
  size_t L = (size_t)data[0] | (size_t)data[1] << 8;
  if (L > size - 2) L = size - 2;
  const char *ip = fz_path("images"), *lp = fz_path("labels");
  fz_write(ip, data + 2, L);
  fz_write(lp, data + 2 + L, size - 2 - L);
  nn_data_params p = nn_data_params_default();
  p.format = NN_DATA_IDX;
  p.path = ip;
  p.labels = lp;
  fz_exercise(nn_data_open(&p, &err));
  return 0;
}
