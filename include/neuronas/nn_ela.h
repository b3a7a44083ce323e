/* nn_ela.h: the SpikeFlow compute-in-memory energy-latency-area (ELA) model, docs/hardware.md
 * (5.1 SpikeSim-compatible mode, 5.2 NeuroNAS mode). Closed-form, no allocation, no state:
 * a params struct holding every constant plus one evaluation function over a layer list. */
#ifndef NEURONAS_NN_ELA_H
#define NEURONAS_NN_ELA_H

#include "nn.h"
#include "nn_layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nn_ela_mode {
  NN_ELA_NEURONAS = 0, /* docs/hardware.md (the default) */
  NN_ELA_SPIKESIM = 1  /* docs/hardware.md: SpikeSim's ela_spikesim.py, quirks included */
} nn_ela_mode;

typedef enum nn_ela_device { NN_ELA_RRAM = 0, NN_ELA_SRAM = 1 } nn_ela_device;

/* Every constant of docs/hardware.md. Units are in the names; counts are int64_t, the rest double.
 * `mode` and `device` are int (enum values) so that field descriptors can address them.
 * Defaults: nn_ela_params_default(mode, device). nn_ela_params_check validates them. */
typedef struct nn_ela_params {
  int mode;   /* nn_ela_mode */
  int device; /* nn_ela_device: selects the crossbar constants at construction */
  int bit_serial; /* neuronas mode [choice]: multiply each layer's cycles by w (docs/hardware.md) */

  /* architecture (NeuroNAS Table I after SpikeSim, docs/hardware.md) */
  int64_t xbar;         /* X: crossbar rows = columns (64) */
  int64_t xbars_per_pe; /* crossbars per PE (9) */
  int64_t pe_per_tile;  /* P: PEs per tile (8) */
  int64_t kernel;       /* spikesim mode: SpikeSim's one kernel size for every layer (3) */
  int64_t mux;          /* columns per ADC: SpikeSim's xbar_size/8 is xbar/mux (8) */
  int64_t adc_bits;     /* ADC resolution (4); the e_adc_pj/a_adc_um2 constants are for it */
  int64_t device_bits;  /* bits stored per device cell: w = ceil(bits / device_bits) (1) */
  int64_t pe_cycles;    /* clock cycles per PE operation (26) */
  int64_t sub_per_adc;  /* subtractor operations per ADC per PE cycle (16) */
  int64_t neuron_mem_bits; /* bits of SRAM per stored neuron / input value (22) */
  double clock_mhz;        /* 250 */
  double pipeline_overlap; /* latency: fraction of a layer before the next starts (0.75) */

  /* energy per event, pJ (RRAM; SRAM crossbar 671.089) */
  double e_xbar_pj;     /* 1.76423 */
  double e_tile_buf_pj; /* 397 */
  double e_temp_buf_pj; /* 0.2 */
  double e_sub_pj;      /* 1.15e-6 */
  double e_adc_pj;      /* 2.03084 */
  double e_htree_pj;    /* 19.64 * 8 */
  double e_mux_pj;      /* 0.094245 */
  double e_fetch_pj;    /* memory fetch 4.64 */
  double e_neuron_pj;   /* 1.274 * 4 */

  /* area per unit, um^2 (RRAM; SRAM crossbar 671.089) */
  double a_xbar_um2;     /* 26.2144 */
  double a_tile_buf_um2; /* 0.7391 * 64 * 128 */
  double a_temp_buf_um2; /* 484.643999 */
  double a_sub_um2;      /* 13411.41498 */
  double a_adc_um2;      /* 693.633 */
  double a_htree_um2;    /* 216830 * 2 */
  double a_mux_um2;      /* 45.9 */
  double a_sram_bit_um2; /* 0.7391: the neuron/input memory cell */

  /* Table I figures the closed-form ELA model records but does not use (SpikeSim uses them
   * in its non-ideality engine): they are part of the configuration a report prints. */
  int64_t noc_bits;   /* NoC mesh width (32) */
  double gbuf_kb;     /* global buffer (20) */
  double tbuf_kb;     /* tile buffer (10) */
  double pbuf_kb;     /* PE buffer (5) */
  double tib_kb;      /* tile input buffer (50) */
  double pib_kb;      /* PE input buffer (30) */
  double vdd_v;       /* 0.9 */
  double vread_v;     /* 0.1 */
  double r_parasitic_ohm; /* column parasitic resistance (5) */
  double ron_kohm;    /* 20 */
  double roff_kohm;   /* 200 */
  double write_variation; /* 0.1 */
} nn_ela_params;

nn_ela_params nn_ela_params_default(nn_ela_mode mode, nn_ela_device device);
/* Loads the device's crossbar constants (e_xbar_pj, a_xbar_um2) into p and sets p->device. */
void nn_ela_params_set_device(nn_ela_params *p, nn_ela_device device);
/* NN_OK, or NN_EINVAL naming the first bad field ("ela: xbar=0 (integer >= 1 expected)"). */
nn_status nn_ela_params_check(const nn_ela_params *p, nn_error *err);
const char *nn_ela_mode_str(nn_ela_mode m);     /* "neuronas" / "spikesim" */
const char *nn_ela_device_str(nn_ela_device d); /* "rram" / "sram" */

/* Cost of one layer. pes/xbars/tiles are the mapped resources (spikesim mode packs layers
 * into shared tiles: `tiles` counts the tiles the layer touches, and the tile area is shared
 * out in proportion to PEs). area/energy/latency sum exactly to the totals. */
typedef struct nn_ela_layer_cost {
  int64_t weights;  /* parameters (out_ch * in_ch * k * k unless the desc gives weights) */
  int64_t cells;    /* w: device cells per weight (1 in spikesim mode) */
  int64_t pes, xbars, tiles;
  double area_um2, energy_pj, latency_ns;
} nn_ela_layer_cost;

typedef struct nn_ela_cost {
  int64_t memory_params; /* weight parameters (docs/model.md memory cost) */
  int64_t memory_bits;   /* memory_params * bits */
  int64_t memory_bytes;  /* ceil(memory_bits / 8) */
  int64_t pes, xbars, tiles;
  int64_t layers;        /* number of layers evaluated */
  double area_um2, energy_pj, latency_ns; /* raw units (docs/hardware.md) */
  double area_mm2, energy_uj, latency_ms; /* paper units (docs/hardware.md) */
} nn_ela_cost;

/* Evaluates n layers (all of them: scope filtering is the caller's) with weights of `bits`
 * bits (NN_WEIGHT_BITS_MIN..MAX) over `timesteps` (>= 1). per_layer, when non-NULL, receives n entries.
 * Fails with NN_EINVAL naming the bad parameter or "layer i: field 'x'" (1-based index);
 * out is then zeroed. n = 0 gives an all-zero cost. No allocation. */
nn_status nn_ela_evaluate(const nn_ela_params *p, const nn_layer_desc *layers, size_t n, int bits,
                          int timesteps, nn_ela_cost *out, nn_ela_layer_cost *per_layer,
                          nn_error *err);

/* Validates one layer description; i is its 0-based position, reported 1-based:
 * "layer 3: field 'in_ch': integer in 1..1073741824 expected, got 0". */
nn_status nn_ela_layer_check(const nn_layer_desc *l, size_t i, nn_error *err);

/* Largest channel count / spatial side / kernel the model accepts (keeps every product exact). */
#define NN_ELA_MAX_SIZE ((int64_t)1 << 30)

/* Largest energy (e_*_pj, pJ per event) and area (a_*_um2, um^2 per unit) constant the model
 * accepts: a joule per event, a square metre per unit, far above any chip (docs/hardware.md).
 * Within it and NN_ELA_MAX_SIZE every cost is finite (below about 1e110), so no evaluation
 * overflows to inf. */
#define NN_ELA_MAX_CONST 1e12

#ifdef __cplusplus
}
#endif
#endif
