/* nn_net.h: cell-based spiking networks (docs/model.md). The contract other engine parts
 * rely on (quantizer, fitness, hardware model, training); nn_cell.h / nn_space.h hold the
 * genotypes and search spaces.
 *
 * Ownership: nn_net_new/nn_net_clone return a net the caller owns (nn_net_free, NULL ok).
 * Tensors passed in stay the caller's; tensors returned through ** are the caller's. */
#ifndef NEURONAS_NN_NET_H
#define NEURONAS_NN_NET_H

/* Ranges of nn.net's size options (docs/reliability.md "Bounds"; the binding checks them). */
#define NN_NET_MAX_TIMESTEPS 1024
#define NN_NET_MAX_CHANNELS 4096

#include "nn.h"
#include "nn_layer.h"
#include "nn_tensor.h"
#include "nn_cell.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_net nn_net;

/* docs/model.md macro-architecture fields; nn_net_params_preset fills a preset's values. */
typedef struct nn_net_params {
  nn_cell cell_a, cell_b;
  int64_t in_ch, in_h, in_w;  /* input image */
  int64_t channels;           /* C: cell A width; cell B has 2C */
  int64_t stem_stride;
  int64_t second_pool;        /* p */
  int64_t fc_width;           /* F */
  int64_t classes, cluster;
  int64_t timesteps;          /* T */
  double tau, threshold;
  uint64_t seed;              /* weight streams keyed by (seed, layer path), docs/model.md */
} nn_net_params;

nn_net_params nn_net_params_default(void); /* the fashion-mnist preset, all-skip cells */
/* Fills *p from a preset name ("cifar10", "cifar100", "tinyimagenet", "fashion-mnist"),
 * keeping p's cells and seed. NN_EINVAL names the unknown preset and lists the valid ones. */
nn_status nn_net_params_preset(nn_net_params *p, const char *preset, nn_error *err);

nn_net *nn_net_new(const nn_net_params *p, nn_error *err);
nn_net *nn_net_clone(const nn_net *net, nn_error *err);

/* The initial-weight store (a speed-up, docs/model.md [choice]): initial weights are a pure function
 * of (seed, layer path, shape, distribution), so the candidates of one search draw each tensor
 * once and copy it afterwards (the classifier's normal draws dominate a fashion-mnist build).
 * Nets built through it are bit-identical to nn_net_new's. Tensors are kept while they fit
 * max_bytes (no eviction: a search has a few dozen), and so are the quantized copies of
 * nn_net_new_quantized, which entries and bytes count too. Not thread-safe; the caller owns it
 * (nn_init_cache_free, NULL ok) and may free it as soon as the nets are built. */
typedef struct nn_init_cache nn_init_cache;
typedef struct nn_init_cache_stats {
  int64_t hits, misses, entries, bytes, max_bytes;
} nn_init_cache_stats;
nn_init_cache *nn_init_cache_new(int64_t max_bytes, nn_error *err); /* max_bytes >= 0 */
void nn_init_cache_free(nn_init_cache *c);
nn_init_cache_stats nn_init_cache_stats_of(const nn_init_cache *c);
/* nn_net_new, drawing initial weights through c (NULL: plain nn_net_new). */
nn_net *nn_net_new_cached(const nn_net_params *p, nn_init_cache *c, nn_error *err);
/* The net nn_quant_net(q, nn_net_new_cached(p, c)) makes, bit for bit, built directly: each
 * layer weight is drawn and quantized in place, without a float net to clone, and through c its
 * quantized values are kept as well, so that the nets of a search copy a layer's quantized
 * weights, quantized once per (draw, quantizer, layer). NULL on failure (err set). */
struct nn_quant_params;
nn_net *nn_net_new_quantized(const nn_net_params *p, nn_init_cache *c, const struct nn_quant_params *q,
                             nn_error *err);
void nn_net_free(nn_net *net);
const nn_net_params *nn_net_params_of(const nn_net *net);

/* Crossbar-mapped layers (every Conv2d and Linear) in execution order, docs/model.md. */
size_t nn_net_layer_count(const nn_net *net);
const nn_layer_desc *nn_net_layer(const nn_net *net, size_t i);
/* The weight tensor of layer i ([out][in][k][k] or [out][in]), writable: the quantizer
 * overwrites it in place on a clone. */
nn_tensor *nn_net_layer_weight(nn_net *net, size_t i);
/* Weight parameters in scope: features_only = 1 for scope "features", 0 for "all". */
int64_t nn_net_param_count(const nn_net *net, int features_only);

/* Weight precision the net was quantized to (32 = float, the default); set by the quantizer,
 * read by the hardware model. */
int nn_net_weight_bits(const nn_net *net);
void nn_net_set_weight_bits(nn_net *net, int bits);

/* One LIF call's spikes, handed to the observer as soon as they exist.
 * bits is bit-packed and sample-major: sample s's `neurons` spikes (in NCHW order) are
 * bits[s*words .. s*words+words-1], bit b of word w is neuron 64*w + b; tail bits are 0.
 * The pointer is valid only during the callback. */
typedef struct nn_spike_call {
  const char *module; /* LIF path, e.g. "cellA.e01.lif", "downconv.lif", "classifier.lif" */
  int step;           /* timestep 0..T-1 */
  int64_t samples;    /* S */
  int64_t neurons;    /* N per sample */
  int64_t words;      /* ceil(N/64) */
  const uint64_t *bits;
  int64_t fired;      /* total spikes in this call */
} nn_spike_call;
typedef void (*nn_spike_fn)(void *ud, const nn_spike_call *call);

/* o == NULL means eval mode without an observer. Train mode also moves the BN running
 * statistics (momentum 0.1, unbiased variance), once per BN call (the stem once, every other BN
 * once per timestep), as PyTorch does. */
typedef struct nn_forward_opts {
  int train;            /* 1: BN on batch statistics (search, training); 0: running stats */
  nn_spike_fn on_spikes; /* optional observer */
  void *ud;
  int spikes_only;      /* 1: only the observer's spikes are wanted (the fitness score): the
                           classifier's last Linear is skipped and no output is made (*out NULL) */
  int threads;          /* threads for this pass (0 or 1: the calling thread only; at most 64):
                           samples, channels and planes split over them, the same bits for any
                           count (docs/performance.md) */
} nn_forward_opts;

/* Full T-step forward (docs/model.md): x is S x in_ch x H x W; *out gets S x classes,
 * the boosted output averaged over T. LIF state starts at 0 on every call.
 * Implemented as nn_net_forward_prefix followed by nn_net_forward_suffix, so the observer
 * sees every prefix call (stem..downconv pool, all steps) before every suffix call. */
nn_status nn_net_forward(nn_net *net, const nn_tensor *x, const nn_forward_opts *o,
                         nn_tensor **out, nn_error *err);
/* Prefix: stem, cell A, downconv, 2x2 pool for every timestep; *cellb_in gets the cell B
 * inputs as T x S x 2C x H' x W'. Depends only on cell A, the macro fields, the seed and
 * the weight precision, which is what makes stage 2 of the search cacheable (docs/search.md). */
nn_status nn_net_forward_prefix(nn_net *net, const nn_tensor *x, const nn_forward_opts *o,
                                 nn_tensor **cellb_in, nn_error *err);
/* Suffix: cell B, last LIF, pool, classifier for every timestep, from the prefix output. */
nn_status nn_net_forward_suffix(nn_net *net, const nn_tensor *cellb_in, const nn_forward_opts *o,
                                nn_tensor **out, nn_error *err);

/* Weights I/O (safetensors, float32); names documented in README. */
nn_status nn_net_save(const nn_net *net, const char *path, nn_error *err);
nn_status nn_net_load(nn_net *net, const char *path, nn_error *err);

/* ---- additions ---- */

/* Longest layer / module path, with the NUL ("cellA.e01.conv"). */
#define NN_NET_MAXNAME_LEN 48

/* Every stored tensor (weights, biases, BN buffers) in save order, named as in the
 * safetensors files ("cellA.e01.conv.weight", "stem.bn.running_var", ...). The tensors stay
 * the net's; they are writable (the quantizer, training and tests use them). */
size_t nn_net_tensor_count(const nn_net *net);
const char *nn_net_tensor_name(const nn_net *net, size_t i);
nn_tensor *nn_net_tensor(nn_net *net, size_t i);
nn_tensor *nn_net_tensor_find(nn_net *net, const char *name); /* NULL when absent */

/* LIF modules in execution order ("stem" has none): path and the firing rate of the last
 * forward that ran it (spikes / (samples * neurons * steps); 0 before any forward). */
size_t nn_net_lif_count(const nn_net *net);
const char *nn_net_lif_name(const nn_net *net, size_t i);
int64_t nn_net_lif_neurons(const nn_net *net, size_t i);
double nn_net_lif_rate(const nn_net *net, size_t i);

/* How convolutions on spikes are computed: AUTO picks the event-driven path per call when
 * the firing rate is at most NN_EVENT_MAX_RATE (engine/nn_ops.h), dense otherwise. */
typedef enum nn_conv_mode { NN_CONV_AUTO = 0, NN_CONV_DENSE, NN_CONV_EVENTS } nn_conv_mode;
void nn_net_set_conv_mode(nn_net *net, nn_conv_mode mode);

/* Canonical preset names, NULL-terminated: "cifar10", "cifar100", "tinyimagenet", "fashion-mnist". */
extern const char *const NN_NET_PRESETS[];

#ifdef __cplusplus
}
#endif
#endif
