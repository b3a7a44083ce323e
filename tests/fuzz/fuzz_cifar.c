/* fuzz_cifar.c: libFuzzer target for the tar parser and the CIFAR reader on archives.
 * Input: 1 byte of options (bit 0: CIFAR-100, bit 1: test split), then a (gzip'd) tar archive. */
#include "fuzz_common.h"

static nn_status count(void *ud, const char *name, const uint8_t *d, size_t n, nn_error *err) {
  (void)name, (void)err;
  *(size_t *)ud += n ? d[0] + d[n - 1] : 0; /* touch the member's first and last byte */
  return NN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nn_error err;
  size_t sum = 0;
  if (size < 1) return 0;
  nn_tar_parse(data + 1, size - 1, "fuzz", count, &sum, &err);
  const char *ap = fz_path("c.tar.gz");
  fz_write(ap, data + 1, size - 1);
  nn_data_params p = nn_data_params_default();
  p.format = (data[0] & 1) ? NN_DATA_CIFAR100 : NN_DATA_CIFAR10;
  p.split = (data[0] & 2) ? NN_DATA_TEST : NN_DATA_TRAIN;
  p.path = ap;
  fz_exercise(nn_data_open(&p, &err));
  return 0;
}
