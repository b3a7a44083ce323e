/* fuzz_npy.c: libFuzzer target for the .npy reader. Input: 1 byte of options (bit 0:
 * NHWC), 2-byte little-endian length L, L bytes of the images .npy, then the labels .npy. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nn_npy_info info;
  nn_error err;
  nn_npy_parse(data, size, "fuzz", &info, &err);
  if (size < 3) return 0;
  size_t L = (size_t)data[1] | (size_t)data[2] << 8;
  if (L > size - 3) L = size - 3;
  const char *ip = fz_path("x.npy"), *lp = fz_path("y.npy");
  fz_write(ip, data + 3, L);
  fz_write(lp, data + 3 + L, size - 3 - L);
  nn_data_params p = nn_data_params_default();
  p.format = NN_DATA_NPY;
  p.path = ip;
  p.labels = lp;
  p.layout = (data[0] & 1) ? NN_DATA_NHWC : NN_DATA_NCHW;
  fz_exercise(nn_data_open(&p, &err));
  return 0;
}
