/* nn_activity.h: how many crossbar reads see at least one input spike (docs/hardware.md,
 * "Activity-aware energy").
 *
 * A conv layer (C input channels, H x W input, k x k kernel, stride s, padding k/2) mapped as in
 * docs/hardware.md reads, for every output position and every row group g (input channels
 * g X .. g X + X - 1 of an X-row crossbar), the k x k window of those channels. A read is
 * active when at least one of those inputs spiked. Counts are per sample and timestep: a LIF
 * call of S samples adds S x out_h x out_w x ceil(C / X) reads. A Linear layer is the case
 * H = W = k = 1. */
#ifndef NEURONAS_NN_ACTIVITY_H
#define NEURONAS_NN_ACTIVITY_H

#include "nn.h"
#include "nn_net.h"
#include "nn_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_activity_geom {
  int64_t channels, height, width; /* the layer's input map */
  int64_t k, stride;               /* padding k / 2 */
  int64_t xbar;                    /* crossbar rows X */
} nn_activity_geom;

/* Output size and reads per sample (out_h * out_w * ceil(C / X)); NN_EINVAL for a bad geometry. */
nn_status nn_activity_reads(const nn_activity_geom *g, int64_t *out_h, int64_t *out_w,
                            int64_t *reads, nn_error *err);

/* Active reads of one call: bits is sample-major and bit-packed as nn_spike_call hands it out
 * (neuron c H W + y W + x of sample s is bit (c H W + y W + x) of row s, words per row).
 * Fast path: per sample and row group, the OR over the group's channels, then a 2-D prefix
 * sum answers each window. */
nn_status nn_activity_count(const nn_activity_geom *g, const uint64_t *bits, int64_t samples,
                            int64_t words, int64_t *active, nn_error *err);
/* Naive twin: every (sample, position, group) scans its channels and window. */
nn_status nn_activity_count_ref(const nn_activity_geom *g, const uint64_t *bits, int64_t samples,
                                int64_t words, int64_t *active, nn_error *err);

/* Per crossbar-mapped layer (nn_net_layer order). measured = 1 when the layer's input is a LIF
 * module's spikes (layer "P.conv" or "P.fcN" fed by "P.lif" with in_ch x in_dim^2 neurons);
 * otherwise (the stem's image input, the classifier's pooled input) every read counts as active. */
typedef struct nn_activity_layer {
  int64_t active, reads; /* summed over samples, timesteps and batches */
  int measured;
} nn_activity_layer;

/* Runs the fitness score's forward (training mode, spikes only) on a clone of net for each of
 * the `repeats` batches and fills layers[0 .. nn_net_layer_count(net) - 1]. The net is untouched. */
nn_status nn_activity_net(const nn_net *net, const nn_tensor *const *batches, int repeats,
                          int64_t xbar, nn_activity_layer *layers, nn_error *err);

/* ---- counting from an observer: the spikes of a forward someone else runs ----
 * nn_activity_counter_new sets layers[0 .. nn_net_layer_count(net) - 1] up as nn_activity_net
 * does (unmeasured layers: every read active, for `samples` samples over all counted forwards);
 * nn_activity_observe is an nn_spike_fn (ud: the counter) adding each measured layer's active
 * reads of the LIF call that feeds it. nn_activity_net is a forward with this observer, so a
 * forward run elsewhere with the same spikes (the fitness score's: nn_fitness_opts.on_spikes)
 * gives the same counts. NULL on a bad xbar or samples (< 1) or out of memory. */
typedef struct nn_activity_counter nn_activity_counter;
nn_activity_counter *nn_activity_counter_new(const nn_net *net, int64_t samples, int64_t xbar,
                                             nn_activity_layer *layers, nn_error *err);
void nn_activity_observe(void *counter, const nn_spike_call *call);
/* NN_OK, or the first error an observed call met (copied into err). */
nn_status nn_activity_counter_status(const nn_activity_counter *counter, nn_error *err);
void nn_activity_counter_free(nn_activity_counter *counter); /* NULL ok */

#ifdef __cplusplus
}
#endif
#endif
