/* nn_interop.h: a net's weights under other namings (SNASNet's PyTorch state dict) and as
 * integer codes for a chip (docs/interop.md).
 *
 * Namings: NN_NAMES_NEURONAS is ours ("cellA.e01.conv.weight"), NN_NAMES_SNASNET is the key of
 * the same tensor in SNASNet's model.state_dict() ("cell1.cell_architecture.0.1.weight"). The
 * plan holds the correspondence: each step's path and SNASNet's module path (nn_plan.h). */
#ifndef NEURONAS_NN_INTEROP_H
#define NEURONAS_NN_INTEROP_H

#include "nn.h"
#include "nn_net.h"
#include "nn_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nn_names { NN_NAMES_NEURONAS = 0, NN_NAMES_SNASNET } nn_names;

/* "neuronas" or "snasnet"; NN_EINVAL naming the expected values otherwise. */
nn_status nn_names_parse(const char *s, nn_names *out, nn_error *err);
const char *nn_names_str(nn_names n);

/* Translates a module path ("cellA.e01.lif") or a tensor name ("stem.bn.running_var") from one
 * naming to another into out (n bytes). Returns 1, or 0 when the name has no counterpart or
 * does not fit (out is then ""). */
int nn_names_translate(const char *name, nn_names from, nn_names to, char *out, size_t n);

/* Saves net's tensors as F32 under the given naming. NN_NAMES_SNASNET also writes each
 * BatchNorm's num_batches_tracked (I64 scalar 0, as PyTorch keeps it) so that SNASNet's model
 * loads the file with load_state_dict(strict=True); metadata "format" is "pt". */
nn_status nn_net_save_names(const nn_net *net, const char *path, nn_names names, nn_error *err);
/* Loads a file written under the given naming (all or nothing, as nn_net_load). A SNASNet file
 * may hold num_batches_tracked (ignored) and must hold every tensor of the net. Integer-code
 * files (nn_net_save_codes) load too: w = code * 2^exponent. */
nn_status nn_net_load_names(nn_net *net, const char *path, nn_names names, nn_error *err);

/* Saves the crossbar-mapped weights as the integers a chip is programmed with: q (pow2 scale)
 * quantizes each layer weight exactly as nn_quant_net does; the tensor holds the codes
 * (I8 for bits <= 8, I16 for <= 16, else I32) and "<name>.exponent" (I32 scalar e) gives
 * w = code * 2^e. Every other tensor (BN, biases) is F32. NN_EINVAL for a maxabs quantizer. */
nn_status nn_net_save_codes(const nn_net *net, const char *path, const nn_quant_params *q,
                            nn_names names, nn_error *err);

#ifdef __cplusplus
}
#endif
#endif
