/* nn_tensor_impl.h: the tensor struct, for engine files that need direct field access. */
#ifndef NEURONAS_NN_TENSOR_IMPL_H
#define NEURONAS_NN_TENSOR_IMPL_H

#include "neuronas/nn_tensor.h"

struct nn_tensor {
  int ndim;
  int64_t shape[NN_TENSOR_MAXDIM];
  int64_t numel;
  float *data; /* numel floats, 64-byte aligned, owned */
};

/* nn_tensor_new without zeroing the elements, for callers that write every one of them next
 * (a net's initial values, a clone): the zeroing was a third of building a net from the weight
 * store. The alignment padding after the last element is zeroed. */
nn_tensor *nn_tensor_new_unfilled(int ndim, const int64_t *shape, nn_error *err);

#endif
