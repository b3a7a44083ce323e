/* nn_ela.c: the SpikeFlow CIM energy-latency-area model of docs/hardware.md (its
 * SpikeSim-compatible mode and NeuroNAS mode). Closed-form: every formula below quotes docs/hardware.md; the unit tests
 * check each one against hand-computed single layers and SpikeSim's VGG9 example.
 *
 * Quirks of SpikeSim's ela_spikesim.py kept in spikesim mode (docs/hardware.md):
 *   - one kernel size (params.kernel) for every layer, linear layers included;
 *   - layers are packed into shared tiles: tiles = ceil(sum PEs / P);
 *   - the output-neuron memory term covers only the first five layers of the list;
 *   - the weight precision does not change the mapping (bits only count memory).
 * SpikeSim rejects layer lists whose PE counts decrease; we don't (docs/hardware.md).
 * SpikeSim's `xbar_size/8` (ADCs per crossbar, and ADC reads per PE cycle) is read as
 * xbar/mux with mux = 8 (Table I), so the defaults reproduce it and `mux` means something. */
#include "neuronas/nn_ela.h"

#include <math.h>
#include <string.h>

/* docs/hardware.md: crossbar constants per device (energy pJ, area um^2). */
static const double XBAR_E_PJ[2] = {1.76423, 671.089};
static const double XBAR_A_UM2[2] = {26.2144, 671.089};

/* SpikeSim: the neuron-memory term covers out_ch_list[0:5] (docs/hardware.md). */
enum { SPIKESIM_NEURON_LAYERS = 5 };

nn_ela_params nn_ela_params_default(nn_ela_mode mode, nn_ela_device device) {
  nn_ela_params p = {
      .mode = (int)mode,
      .device = (int)device,
      .bit_serial = 0,
      .xbar = 64,
      .xbars_per_pe = 9,
      .pe_per_tile = 8,
      .kernel = 3,
      .mux = 8,
      .adc_bits = 4,
      .device_bits = 1,
      .pe_cycles = 26,
      .sub_per_adc = 16,
      .neuron_mem_bits = 22,
      .clock_mhz = 250.0,
      .pipeline_overlap = 0.75,
      .e_tile_buf_pj = 397.0,
      .e_temp_buf_pj = 0.2,
      .e_sub_pj = 1.15e-6,
      .e_adc_pj = 2.03084,
      .e_htree_pj = 19.64 * 8,
      .e_mux_pj = 0.094245,
      .e_fetch_pj = 4.64,
      .e_neuron_pj = 1.274 * 4.0,
      .a_tile_buf_um2 = 0.7391 * 64 * 128,
      .a_temp_buf_um2 = 484.643999,
      .a_sub_um2 = 13411.41498,
      .a_adc_um2 = 693.633,
      .a_htree_um2 = 216830.0 * 2,
      .a_mux_um2 = 45.9,
      .a_sram_bit_um2 = 0.7391,
      .noc_bits = 32,
      .gbuf_kb = 20,
      .tbuf_kb = 10,
      .pbuf_kb = 5,
      .tib_kb = 50,
      .pib_kb = 30,
      .vdd_v = 0.9,
      .vread_v = 0.1,
      .r_parasitic_ohm = 5,
      .ron_kohm = 20,
      .roff_kohm = 200,
      .write_variation = 0.1,
  };
  nn_ela_params_set_device(&p, device);
  return p;
}

void nn_ela_params_set_device(nn_ela_params *p, nn_ela_device device) {
  int d = device == NN_ELA_SRAM ? 1 : 0;
  p->device = d;
  p->e_xbar_pj = XBAR_E_PJ[d];
  p->a_xbar_um2 = XBAR_A_UM2[d];
}

const char *nn_ela_mode_str(nn_ela_mode m) {
  return m == NN_ELA_SPIKESIM ? "spikesim" : m == NN_ELA_NEURONAS ? "neuronas" : "?";
}

const char *nn_ela_device_str(nn_ela_device d) {
  return d == NN_ELA_SRAM ? "sram" : d == NN_ELA_RRAM ? "rram" : "?";
}

/* The engine's own validation table (the Lua binding validates on write with the same ranges;
 * this catches C callers). */
typedef struct pcheck {
  const char *name;
  size_t off;
  int is_int;
  double lo, hi;
} pcheck;

#define PI(f, lo, hi) {#f, offsetof(nn_ela_params, f), 1, lo, hi}
#define PD(f, lo, hi) {#f, offsetof(nn_ela_params, f), 0, lo, hi}
/* energies and areas: bounded so that every cost stays finite (nn_ela.h) */
#define PE(f) PD(f, 0, NN_ELA_MAX_CONST)
static const pcheck PCHECKS[] = {
    PI(xbar, 1, NN_ELA_MAX_SIZE), PI(xbars_per_pe, 1, NN_ELA_MAX_SIZE),
    PI(pe_per_tile, 1, NN_ELA_MAX_SIZE), PI(kernel, 1, 1024), PI(mux, 1, NN_ELA_MAX_SIZE),
    PI(adc_bits, 1, 64), PI(device_bits, 1, 64), PI(pe_cycles, 1, NN_ELA_MAX_SIZE),
    PI(sub_per_adc, 0, NN_ELA_MAX_SIZE), PI(neuron_mem_bits, 0, 1024),
    PD(clock_mhz, 1e-6, HUGE_VAL), PD(pipeline_overlap, 0, 1),
    PE(e_xbar_pj), PE(e_tile_buf_pj), PE(e_temp_buf_pj), PE(e_sub_pj), PE(e_adc_pj),
    PE(e_htree_pj), PE(e_mux_pj), PE(e_fetch_pj), PE(e_neuron_pj),
    PE(a_xbar_um2), PE(a_tile_buf_um2), PE(a_temp_buf_um2), PE(a_sub_um2), PE(a_adc_um2),
    PE(a_htree_um2), PE(a_mux_um2), PE(a_sram_bit_um2),
    PI(noc_bits, 1, NN_ELA_MAX_SIZE), PD(gbuf_kb, 0, HUGE_VAL), PD(tbuf_kb, 0, HUGE_VAL),
    PD(pbuf_kb, 0, HUGE_VAL), PD(tib_kb, 0, HUGE_VAL), PD(pib_kb, 0, HUGE_VAL),
    PD(vdd_v, 0, HUGE_VAL), PD(vread_v, 0, HUGE_VAL), PD(r_parasitic_ohm, 0, HUGE_VAL),
    PD(ron_kohm, 0, HUGE_VAL), PD(roff_kohm, 0, HUGE_VAL), PD(write_variation, 0, HUGE_VAL),
};
#undef PI
#undef PD
#undef PE

nn_status nn_ela_params_check(const nn_ela_params *p, nn_error *err) {
  if (!p) return nn_fail(err, NN_EINVAL, "ela: params is NULL");
  if (p->mode != NN_ELA_NEURONAS && p->mode != NN_ELA_SPIKESIM)
    return nn_fail(err, NN_EINVAL, "ela: mode=%d (neuronas or spikesim expected)", p->mode);
  if (p->device != NN_ELA_RRAM && p->device != NN_ELA_SRAM)
    return nn_fail(err, NN_EINVAL, "ela: device=%d (rram or sram expected)", p->device);
  for (size_t i = 0; i < sizeof PCHECKS / sizeof PCHECKS[0]; i++) {
    const pcheck *c = &PCHECKS[i];
    const char *at = (const char *)p + c->off;
    if (c->is_int) {
      int64_t v = *(const int64_t *)at;
      if ((double)v < c->lo || (double)v > c->hi)
        return nn_fail(err, NN_EINVAL, "ela: %s=%lld (integer in %.0f..%.0f expected)", c->name,
                       (long long)v, c->lo, c->hi);
    } else {
      double v = *(const double *)at;
      if (!isfinite(v) || v < c->lo || v > c->hi) {
        if (c->hi < HUGE_VAL)
          return nn_fail(err, NN_EINVAL, "ela: %s=%g (number in %g..%g expected)", c->name, v, c->lo,
                         c->hi);
        return nn_fail(err, NN_EINVAL, "ela: %s=%g (finite number >= %g expected)", c->name, v,
                       c->lo);
      }
    }
  }
  return NN_OK;
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* a*b into *r; 0 on int64 overflow (operands are non-negative). */
static int mul(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }

nn_status nn_ela_layer_check(const nn_layer_desc *l, size_t i, nn_error *err) {
  const struct {
    const char *name;
    int64_t v;
  } f[] = {{"in_ch", l->in_ch}, {"out_ch", l->out_ch}, {"in_dim", l->in_dim},
           {"out_dim", l->out_dim}, {"k", l->k}, {"stride", l->stride}};
  if (l->kind != NN_LAYER_CONV && l->kind != NN_LAYER_LINEAR)
    return nn_fail(err, NN_EINVAL, "layer %zu: field 'kind': conv or linear expected", i + 1);
  for (size_t j = 0; j < sizeof f / sizeof f[0]; j++)
    if (f[j].v < 1 || f[j].v > NN_ELA_MAX_SIZE)
      return nn_fail(err, NN_EINVAL, "layer %zu: field '%s': integer in 1..%lld expected, got %lld",
                     i + 1, f[j].name, (long long)NN_ELA_MAX_SIZE, (long long)f[j].v);
  if (l->kind == NN_LAYER_LINEAR)
    for (size_t j = 2; j < 5; j++)
      if (f[j].v != 1)
        return nn_fail(err, NN_EINVAL, "layer %zu: field '%s': 1 expected for a linear layer, got %lld",
                       i + 1, f[j].name, (long long)f[j].v);
  if (l->weights < 0)
    return nn_fail(err, NN_EINVAL, "layer %zu: field 'weights': integer >= 0 expected, got %lld",
                   i + 1, (long long)l->weights);
  return NN_OK;
}

/* docs/hardware.md: PE_e = k^2*xbar + (X/mux)*(ADC + mux);
 * cycle_e = Htree + fetch + neuron + (X/mux)*PE_e + (X/mux)*sub_per_adc*sub + (X/mux)*temp + tilebuf */
static double cycle_energy_pj(const nn_ela_params *p, double k) {
  double a = (double)p->xbar / (double)p->mux;
  double pe_e = k * k * p->e_xbar_pj + a * (p->e_adc_pj + p->e_mux_pj);
  return p->e_htree_pj + p->e_fetch_pj + p->e_neuron_pj + a * pe_e +
         a * (double)p->sub_per_adc * p->e_sub_pj + a * p->e_temp_buf_pj + p->e_tile_buf_pj;
}

/* docs/hardware.md: PE_a = k^2*xbar + (X/mux)*(ADC + mux); tile_a = (X/mux)*sub + temp + tilebuf
 * + P*PE_a + Htree */
static double tile_area_um2(const nn_ela_params *p, double k) {
  double a = (double)p->xbar / (double)p->mux;
  double pe_a = k * k * p->a_xbar_um2 + a * (p->a_adc_um2 + p->a_mux_um2);
  return a * p->a_sub_um2 + p->a_temp_buf_um2 + p->a_tile_buf_um2 +
         (double)p->pe_per_tile * pe_a + p->a_htree_um2;
}

nn_status nn_ela_evaluate(const nn_ela_params *p, const nn_layer_desc *layers, size_t n, int bits,
                          int timesteps, nn_ela_cost *out, nn_ela_layer_cost *per_layer,
                          nn_error *err) {
  nn_ela_cost c;
  memset(&c, 0, sizeof c);
  if (out) *out = c;
  if (!out) return nn_fail(err, NN_EINVAL, "ela: out is NULL");
  nn_status st = nn_ela_params_check(p, err);
  if (st != NN_OK) return st;
  if (bits < NN_WEIGHT_BITS_MIN || bits > NN_WEIGHT_BITS_MAX)
    return nn_fail(err, NN_EINVAL, "ela: bits=%d (integer in %d..%d expected)", bits, NN_WEIGHT_BITS_MIN,
                   NN_WEIGHT_BITS_MAX);
  if (timesteps < 1)
    return nn_fail(err, NN_EINVAL, "ela: timesteps=%d (integer >= 1 expected)", timesteps);
  if (n > 0 && !layers) return nn_fail(err, NN_EINVAL, "ela: layers is NULL");

  const int spikesim = p->mode == NN_ELA_SPIKESIM;
  const int64_t X = p->xbar, P = p->pe_per_tile, T = timesteps;
  /* w = ceil(bitW / bitD) device cells per weight (docs/hardware.md mapping); 1 in spikesim mode */
  const int64_t w = spikesim ? 1 : cdiv(bits, p->device_bits);
  const double pe_cycle_ns = (double)p->pe_cycles * 1000.0 / p->clock_mhz;
  const double neuron_a = p->a_sram_bit_um2 * (double)p->neuron_mem_bits;
  const double sp_cycle_e = cycle_energy_pj(p, (double)p->kernel);
  const double sp_tile_a = tile_area_um2(p, (double)p->kernel);
  double area = 0, energy = 0, lat_cycles = 0;

  for (size_t i = 0; i < n; i++) {
    const nn_layer_desc *l = &layers[i];
    if ((st = nn_ela_layer_check(l, i, err)) != NN_OK) goto fail;
    nn_ela_layer_cost lc;
    memset(&lc, 0, sizeof lc);
    int64_t kk = spikesim ? p->kernel : l->k, blocks, t;
    int ok = mul(l->out_ch, l->in_ch, &t) && mul(t, l->k * l->k, &lc.weights);
    if (l->weights > 0) lc.weights = l->weights;
    lc.cells = w;
    /* (X x X) blocks: ceil(D/X) * ceil(F*w/X) */
    int64_t col_blocks = cdiv(l->out_ch * w, X), row_blocks = cdiv(l->in_ch, X);
    ok = ok && mul(col_blocks, row_blocks, &blocks) && mul(blocks, kk * kk, &lc.xbars);
    if (spikesim) {
      lc.pes = blocks; /* PEs_i = ceil(D_i/X) * ceil(F_i/X) */
    } else {
      /* PEs_i = ceil(k_i^2 / xbars_per_pe) * ceil(D_i/X) * ceil(F_i*w/X); tiles_i = ceil(PEs_i/P) */
      ok = ok && mul(cdiv(kk * kk, p->xbars_per_pe), blocks, &lc.pes);
      lc.tiles = ok ? cdiv(lc.pes, P) : 0;
    }
    ok = ok && !__builtin_add_overflow(c.memory_params, lc.weights, &c.memory_params) &&
         !__builtin_add_overflow(c.pes, lc.pes, &c.pes) &&
         !__builtin_add_overflow(c.xbars, lc.xbars, &c.xbars);
    if (!ok) {
      st = nn_fail(err, NN_EINVAL, "layer %zu: sizes too large (int64 overflow)", i + 1);
      goto fail;
    }
    /* E_i = ceil(F_i*w/X) * ceil(D_i/X) * out_dim_i^2 * cycle_e(k_i) * T */
    double od2 = (double)l->out_dim * (double)l->out_dim;
    double cyc_e = spikesim ? sp_cycle_e : cycle_energy_pj(p, (double)kk);
    lc.energy_pj = (double)col_blocks * (double)row_blocks * od2 * cyc_e * (double)T;
    /* memory terms of the area: inputs D*in_dim^2, output neurons F*out_dim^2 (spikesim:
     * first five layers only), each neuron_mem_bits SRAM bits */
    double in_mem = (double)l->in_ch * (double)l->in_dim * (double)l->in_dim * neuron_a;
    double out_mem = (!spikesim || i < SPIKESIM_NEURON_LAYERS)
                         ? (double)l->out_ch * od2 * neuron_a : 0.0;
    lc.area_um2 = in_mem + out_mem;
    if (!spikesim) {
      lc.area_um2 += tile_area_um2(p, (double)kk) * (double)lc.tiles;
      c.tiles += lc.tiles;
    }
    /* latency cycles: floor(overlap * out_dim^2 * F) * T for all but the last layer,
     * out_dim^2 * F * T for the last (docs/hardware.md); bit_serial multiplies by w (docs/hardware.md) */
    double cyc = (i + 1 < n) ? floor(p->pipeline_overlap * od2 * (double)l->out_ch) * (double)T
                             : od2 * (double)l->out_ch * (double)T;
    if (!spikesim && p->bit_serial) cyc *= (double)w;
    lc.latency_ns = cyc * pe_cycle_ns;
    lat_cycles += cyc;
    energy += lc.energy_pj;
    area += lc.area_um2;
    if (per_layer) per_layer[i] = lc;
  }
  if (spikesim && n > 0) {
    /* tiles = ceil(sum PEs / P), layers packed in list order; tile area shared by PEs */
    c.tiles = cdiv(c.pes, P);
    double tiles_a = sp_tile_a * (double)c.tiles;
    area += tiles_a;
    if (per_layer) {
      int64_t start = 0;
      for (size_t i = 0; i < n; i++) {
        int64_t pes = per_layer[i].pes;
        per_layer[i].tiles = pes > 0 ? (start + pes - 1) / P - start / P + 1 : 0;
        per_layer[i].area_um2 += c.pes > 0 ? tiles_a * (double)pes / (double)c.pes : 0.0;
        start += pes;
      }
    }
  }
  if (!mul(c.memory_params, bits, &c.memory_bits)) {
    st = nn_fail(err, NN_EINVAL, "ela: memory bits overflow int64");
    goto fail;
  }
  c.memory_bytes = c.memory_bits / 8 + (c.memory_bits % 8 != 0);
  c.layers = (int64_t)n;
  c.area_um2 = area;
  c.energy_pj = energy;
  /* L = PE_cycle * sum of cycles (docs/hardware.md) */
  c.latency_ns = pe_cycle_ns * lat_cycles;
  c.area_mm2 = area * 1e-6;
  c.energy_uj = energy * 1e-6;
  c.latency_ms = c.latency_ns * 1e-6;
  *out = c;
  return NN_OK;
fail:
  memset(out, 0, sizeof *out);
  return st;
}
