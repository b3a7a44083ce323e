/* nn_net_presets.c: the macro-architecture presets and the default net params (docs/model.md
 * preset table). */
#include <string.h>

#include "neuronas/nn_net.h"

const char *const NN_NET_PRESETS[] = {"cifar10", "cifar100", "tinyimagenet", "fashion-mnist", NULL};

/* docs/model.md preset table (SNASNet's code; fashion-mnist is our [choice]). */
static const struct preset {
  const char *name;
  int64_t in_ch, in_h, in_w, channels, stem_stride, second_pool, fc_width, classes, cluster;
} PRESETS[] = {
    {"cifar10", 3, 32, 32, 256, 1, 2, 1024, 10, 10},
    {"cifar100", 3, 32, 32, 128, 1, 2, 1024, 100, 5},
    {"tinyimagenet", 3, 64, 64, 128, 2, 2, 4096, 200, 5},
    {"fashion-mnist", 1, 28, 28, 16, 1, 2, 256, 10, 10},
};

nn_net_params nn_net_params_default(void) {
  nn_net_params p;
  memset(&p, 0, sizeof p);
  for (int k = 0; k < NN_CELL_EDGES; k++) {
    p.cell_a.m[NN_CELL_EDGE_FROM[k]][NN_CELL_EDGE_TO[k]] = NN_OP_SKIP;
    p.cell_b.m[NN_CELL_EDGE_FROM[k]][NN_CELL_EDGE_TO[k]] = NN_OP_SKIP;
  }
  p.seed = 1;
  nn_net_params_preset(&p, "fashion-mnist", NULL);
  return p;
}

nn_status nn_net_params_preset(nn_net_params *p, const char *preset, nn_error *err) {
  for (size_t i = 0; i < sizeof PRESETS / sizeof *PRESETS; i++) {
    const struct preset *q = &PRESETS[i];
    if (strcmp(q->name, preset) != 0) continue;
    p->in_ch = q->in_ch, p->in_h = q->in_h, p->in_w = q->in_w;
    p->channels = q->channels, p->stem_stride = q->stem_stride, p->second_pool = q->second_pool;
    p->fc_width = q->fc_width, p->classes = q->classes, p->cluster = q->cluster;
    p->timesteps = 5;          /* docs/model.md */
    p->tau = 4.0 / 3.0;        /* docs/model.md */
    p->threshold = 1.0;        /* docs/model.md */
    return NN_OK;
  }
  return nn_fail(err, NN_EINVAL,
                 "unknown preset '%s' (expected: cifar10, cifar100, tinyimagenet, fashion-mnist)",
                 preset);
}
