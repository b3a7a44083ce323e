/* nn_train.h: surrogate-gradient BPTT training of cell-based SNNs with quantization-aware
 * training (docs/model.md; docs/training.md).
 *
 * A trainer owns float master copies of every parameter of a network (conv/linear weights,
 * fc2 bias, BN weight/bias), the BN running statistics and the optimizer state. Each step runs
 * the T-timestep forward pass in training mode while recording a tape, the loss (softmax
 * cross-entropy on the T-averaged boosted output), BPTT through all timesteps (through the
 * LIF membranes with the ATan surrogate and detached reset, and through backward-cell state
 * bx0..bx2), then one optimizer update. With bits < 32 the forward pass (and the backward's
 * input gradients) use FxP-bits copies of the crossbar-mapped weights (nn_quant_array,
 * dynamic pow2, nearest) while the update goes to the float masters (straight-through).
 *
 * Ownership: nn_trainer_new returns a trainer the caller owns (nn_trainer_free, NULL ok);
 * it copies what it needs from the net, which stays the caller's. */
#ifndef NEURONAS_NN_TRAIN_H
#define NEURONAS_NN_TRAIN_H

#include "nn.h"
#include "nn_net.h"
#include "nn_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_trainer nn_trainer;

typedef enum nn_optimizer { NN_OPT_SGD = 0, NN_OPT_ADAM } nn_optimizer;

typedef struct nn_train_params {
  nn_optimizer optimizer;
  double lr;             /* initial learning rate (docs/training.md: 0.1) */
  double lr_min;         /* cosine end point (0.001) */
  double momentum;       /* SGD (0.9) */
  double weight_decay;   /* L2 on every parameter (5e-4) */
  double beta1, beta2, adam_eps; /* Adam (0.9, 0.999, 1e-8) */
  int64_t total_steps;   /* length of the cosine schedule in steps; 0 = constant lr */
  int bits;              /* 32 = float training; 2..31 = QAT on FxP-bits weights */
  double dropout;        /* classifier dropout probability in training (0.5) */
  uint64_t seed;         /* dropout mask stream */
  int threads;           /* threads of a step (1; 0 = one per core left idle by other jobs, at
                          * least 1, at most NN_TRAIN_MAX_THREADS, chosen at the first step):
                          * the batch is split into a fixed number of sample groups whatever the
                          * thread count, so results are bit-identical for any number of threads */
} nn_train_params;
#define NN_TRAIN_MAX_THREADS 64

nn_train_params nn_train_params_default(void);
/* NN_EINVAL naming the field ("lr=-1: expected a finite number > 0"). */
nn_status nn_train_params_check(const nn_train_params *p, nn_error *err);

/* From a network: its macro fields and cells, and a copy of its current weights, BN
 * parameters and running statistics. */
nn_trainer *nn_trainer_new(const nn_net *net, const nn_train_params *p, nn_error *err);
/* From macro fields alone, with fresh weights initialised as docs/model.md (Kaiming-uniform a=2
 * convs, N(0, 0.01) linears, keyed by (seed, layer path)). */
nn_trainer *nn_trainer_new_params(const nn_net_params *np, const nn_train_params *p,
                                  nn_error *err);
void nn_trainer_free(nn_trainer *tr);
const nn_train_params *nn_trainer_params(const nn_trainer *tr);
const nn_net_params *nn_trainer_net_params(const nn_trainer *tr);

typedef struct nn_train_result {
  double loss;        /* mean cross-entropy over the batch */
  int64_t correct;    /* argmax == label */
  int64_t samples;
  double lr;          /* learning rate used by this step */
  double forward_s, backward_s, update_s; /* wall-clock split */
} nn_train_result;

/* One optimisation step on a batch: x is S x in_ch x H x W, y holds S class indices (floats).
 * NN_EINVAL names the argument whose shape or values do not fit. */
nn_status nn_trainer_step(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                          nn_train_result *res, nn_error *err);
/* Evaluation mode (running BN statistics, no dropout, no update) on the QAT weights when
 * bits < 32: loss and correct count. */
nn_status nn_trainer_evaluate(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                              nn_train_result *res, nn_error *err);
/* The T-averaged output (S x classes) in training (train=1: batch statistics, dropout off,
 * running stats untouched) or evaluation mode; *out is the caller's. */
nn_status nn_trainer_forward(nn_trainer *tr, const nn_tensor *x, int train, nn_tensor **out,
                             nn_error *err);

/* How convolutions on spikes are computed in the forward pass, as nn_net_set_conv_mode
 * (default NN_CONV_AUTO: event-driven when the firing rate is at most NN_EVENT_MAX_RATE). In
 * the backward pass a conv on spikes gets its weight gradient as a sum over the spikes when
 * their rate is at most 30 %, else through im2col + sgemm; its input gradient is dense. */
void nn_trainer_set_conv_mode(nn_trainer *tr, nn_conv_mode mode);

/* The most steps a trainer takes (2^53: every count is exact as a double, as the cosine schedule
 * and Lua see it); a checkpoint's step count must lie in 0..NN_TRAIN_MAX_STEPS. */
#define NN_TRAIN_MAX_STEPS (INT64_C(1) << 53)

/* Steps taken so far (drives the cosine schedule); settable to resume. */
int64_t nn_trainer_steps(const nn_trainer *tr);
void nn_trainer_set_total_steps(nn_trainer *tr, int64_t total);
double nn_trainer_lr(const nn_trainer *tr); /* learning rate of the next step */

/* NN_EINVAL when a value of the trainer's state (master weights, optimizer state, BN running
 * statistics: what a checkpoint holds) is not finite, naming the tensor and the element.
 * A step whose update leaves such a value fails (the state is kept, not rolled back), and
 * from then on step, evaluate, forward, the gradient calls, export and save fail with this
 * error until nn_trainer_load restores a checkpoint: a trainer never hands out NaN. */
nn_status nn_trainer_check_finite(const nn_trainer *tr, nn_error *err);

/* Copies the master weights (quantized to bits when bits < 32 and quantized = 1), BN
 * parameters and running statistics into net, which must have the same architecture. */
nn_status nn_trainer_export(const nn_trainer *tr, nn_net *net, int quantized, nn_error *err);

/* Checkpoint (safetensors, float32): parameters and running stats under their layer names
 * ("<path>.weight", ...), optimizer state under "optim.<name>.momentum" (SGD) or
 * "optim.<name>.exp_avg" / "optim.<name>.exp_avg_sq" (Adam), and __metadata__ with the step
 * count, optimizer, bits and an opaque caller string `user` (NULL: none).
 * nn_trainer_load restores all of it (architecture and optimizer must match; NN_EFORMAT
 * names the file and the offending tensor) and, when user is non-NULL, returns the caller
 * string as a malloc'd copy (*user = NULL if absent), to be freed by the caller. */
nn_status nn_trainer_save(const nn_trainer *tr, const char *path, const char *user,
                          nn_error *err);
nn_status nn_trainer_load(nn_trainer *tr, const char *path, char **user, nn_error *err);

/* ---- introspection (tests, gradient checks) ---- */
size_t nn_trainer_param_count(const nn_trainer *tr);
/* Name ("cellA.e01.conv.weight"), number of floats, master values and last gradient. */
const char *nn_trainer_param_name(const nn_trainer *tr, size_t i);
int64_t nn_trainer_param_size(const nn_trainer *tr, size_t i);
float *nn_trainer_param_data(nn_trainer *tr, size_t i);
const float *nn_trainer_param_grad(const nn_trainer *tr, size_t i);
/* Loss and gradients (into the grad buffers) without an update, for a fixed dropout mask
 * `mask_id` and without touching running stats. smooth = 1 replaces each spike by the ATan
 * primitive atan(pi/2*alpha*(v-thr))/pi + 1/2 (the reset stays the hard mask), which makes the
 * surrogate gradient the exact gradient: finite differences can then check the whole BPTT.
 * dx (NULL: skipped) gets dL/dx, shaped like x. */
nn_status nn_trainer_loss_grad(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                               uint64_t mask_id, int smooth, double *loss, nn_tensor *dx,
                               nn_error *err);
/* The same forward, loss only. */
nn_status nn_trainer_loss(nn_trainer *tr, const nn_tensor *x, const nn_tensor *y,
                          uint64_t mask_id, int smooth, double *loss, nn_error *err);

#ifdef __cplusplus
}
#endif
#endif
