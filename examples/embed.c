/* embed.c: scoring one candidate from C, without Lua (docs/interop.md, "Using the C library").
 *
 *   cc embed.c $(pkg-config --cflags --libs neuronas) -o embed
 *   ./embed DIR
 *
 * DIR holds a SNASNet export (weights.safetensors under SNASNet's PyTorch names and
 * inputs.safetensors with the batch input.r0), e.g. tests/fixtures/snasnet-backward of the
 * source tree. The candidate is SNASNet's published CIFAR-10 cell at both positions of the
 * cifar100 network at 16 channels, the setting that export was made with. Prints the
 * training-free fitness score (log|det K|) and exits 0, or prints the error and exits 1. */
#include <stdio.h>

#include <neuronas/nn_cell.h>
#include <neuronas/nn_fitness.h>
#include <neuronas/nn_interop.h>
#include <neuronas/nn_net.h>
#include <neuronas/nn_safetensors.h>

int main(int argc, char **argv) {
  char path[4096];
  nn_error err = {0};
  nn_net *net = NULL;
  nn_st_file *in = NULL;
  nn_tensor *x = NULL;
  double score = 0;
  int ok = 0;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR (a SNASNet export: weights.safetensors, inputs.safetensors)\n", argv[0]);
    return 2;
  }
  /* the network: a preset, the cell in SNASNet's matrix form, then the channel count */
  nn_net_params p = nn_net_params_default();
  if (nn_net_params_preset(&p, "cifar100", &err) != NN_OK) goto done;
  if (nn_cell_parse("0303 0030 2002 0200", NN_CELL_FORM_SNASNET, &p.cell_a, &err) != NN_OK) goto done;
  p.cell_b = p.cell_a;
  p.channels = 16;
  if (!(net = nn_net_new(&p, &err))) goto done;

  /* its weights, under SNASNet's names */
  snprintf(path, sizeof path, "%s/weights.safetensors", argv[1]);
  if (nn_net_load_names(net, path, NN_NAMES_SNASNET, &err) != NN_OK) goto done;

  /* one batch, scored once (one repeat) */
  snprintf(path, sizeof path, "%s/inputs.safetensors", argv[1]);
  if (!(in = nn_st_open(path, &err))) goto done;
  if (!(x = nn_st_read_tensor(in, "input.r0", &err))) goto done;
  const nn_tensor *batches[1] = {x};
  if (nn_fitness_eval(net, batches, 1, NULL, &score, NULL, &err) != NN_OK) goto done;
  printf("score %.9f\n", score);
  ok = 1;
done:
  if (!ok) fprintf(stderr, "embed: %s\n", err.msg);
  nn_tensor_free(x);
  nn_st_close(in);
  nn_net_free(net);
  return ok ? 0 : 1;
}
