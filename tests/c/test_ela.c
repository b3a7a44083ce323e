/* test_ela.c: the ELA model (docs/hardware.md) against SpikeSim's VGG9 example, hand-computed
 * single layers for every formula in both modes, the docs/hardware.md cross-check range, and
 * monotonicity. Hand values: the docs/hardware.md constants worked out by hand (shown below). */
#include <math.h>
#include <string.h>

#include "neuronas/nn_ela.h"
#include "nn_test.h"

#define REL 1e-9 /* docs/hardware.md: "to 1e-9 relative" */

/* Hand-worked constants at the defaults (X = 64, mux = 8 so X/mux = 8, P = 8):
 *   ADC+mux energy per crossbar: 8*(2.03084 + 0.094245) = 17.00068 pJ
 *   cycle_e(k) = 157.12 + 4.64 + 5.096 + 8*(k^2*1.76423 + 17.00068) + 8*16*1.15e-6 + 8*0.2 + 397
 *     k=3: 828.4861472   k=1: 715.5754272   k=5: 1054.3075872   (pJ)
 *   tile_a(k) = 8*13411.41498 + 484.643999 + 0.7391*8192 + 8*(k^2*26.2144 + 8*739.533) + 433660
 *     k=3: 596708.219839   k=1: 595030.498239   k=5: 600063.663039   (um^2)
 *   neuron / input memory per value: 0.7391*22 = 16.2602 um^2
 *   PE cycle: 26 * 1000/250 = 104 ns */
#define CYC_E3 828.4861472
#define CYC_E1 715.5754272
#define CYC_E5 1054.3075872
#define TILE_A3 596708.219839
#define TILE_A1 595030.498239
#define TILE_A5 600063.663039
#define MEM_A 16.2602
#define PE_NS 104.0

static nn_layer_desc conv(int64_t d, int64_t f, int64_t in, int64_t out, int64_t k) {
  nn_layer_desc l;
  memset(&l, 0, sizeof l);
  l.kind = NN_LAYER_CONV;
  l.in_ch = d;
  l.out_ch = f;
  l.in_dim = in;
  l.out_dim = out;
  l.k = k;
  l.stride = 1;
  l.features = 1;
  return l;
}

static nn_layer_desc linear(int64_t d, int64_t f) {
  nn_layer_desc l = conv(d, f, 1, 1, 1);
  l.kind = NN_LAYER_LINEAR;
  return l;
}

/* docs/hardware.md check: SpikeSim's VGG9 example. */
static void test_spikesim_vgg9(void) {
  const int64_t D[] = {3, 64, 64, 128, 128, 256, 256}, F[] = {64, 64, 128, 128, 256, 256, 256};
  const int64_t in[] = {32, 32, 16, 16, 8, 8, 8}, out[] = {32, 16, 16, 8, 8, 8, 4};
  nn_layer_desc l[7];
  for (int i = 0; i < 7; i++) l[i] = conv(D[i], F[i], in[i], out[i], 3);
  nn_ela_params p = nn_ela_params_default(NN_ELA_SPIKESIM, NN_ELA_RRAM);
  nn_ela_cost c;
  nn_ela_layer_cost pl[7];
  nn_error err;
  CHECK(nn_ela_evaluate(&p, l, 7, 4, 5, &c, pl, &err) == NN_OK);
  CHECK(c.pes == 48);
  CHECK(c.tiles == 6);
  CHECK_REL(c.area_um2, 8425528.76, REL);
  CHECK_REL(c.energy_pj, 15906934.03, REL);
  CHECK_REL(c.latency_ns, 62832640.0, REL);
  CHECK_REL(c.area_mm2, 8.42552876, REL);
  CHECK_REL(c.energy_uj, 15.90693403, REL);
  CHECK_REL(c.latency_ms, 62.83264, REL);
  /* per-layer parts sum to the totals; layer PEs are 1,1,2,4,8,16,16 */
  double a = 0, e = 0, t = 0;
  const int64_t pes[] = {1, 1, 2, 4, 8, 16, 16};
  /* packed PE ranges [0],[1],[2,3],[4..7],[8..15],[16..31],[32..47] -> tiles touched */
  const int64_t tiles[] = {1, 1, 1, 1, 1, 2, 2};
  for (int i = 0; i < 7; i++) {
    a += pl[i].area_um2;
    e += pl[i].energy_pj;
    t += pl[i].latency_ns;
    CHECK(pl[i].pes == pes[i]);
    CHECK(pl[i].tiles == tiles[i]);
    CHECK(pl[i].xbars == pes[i] * 9);
  }
  CHECK_REL(a, c.area_um2, REL);
  CHECK_REL(e, c.energy_pj, REL);
  CHECK_REL(t, c.latency_ns, REL);
  /* the weight precision does not change the spikesim mapping, only memory */
  nn_ela_cost c8;
  CHECK(nn_ela_evaluate(&p, l, 7, 8, 5, &c8, NULL, &err) == NN_OK);
  CHECK(c8.area_um2 == c.area_um2 && c8.energy_pj == c.energy_pj && c8.tiles == c.tiles);
  CHECK(c8.memory_bits == 2 * c.memory_bits);
}

/* docs/hardware.md, one layer: D=3, F=64, 32x32 -> 32x32, T=5. PEs 1, tiles 1.
 * E = 1*1*1024*828.4861472*5; A = tile_a(3) + 3*1024*16.2602 + 64*1024*16.2602;
 * L = 104 * 1024*64*5 (the only layer is the last: no 0.75 factor). */
static void test_spikesim_single(void) {
  nn_layer_desc l = conv(3, 64, 32, 32, 3);
  nn_ela_params p = nn_ela_params_default(NN_ELA_SPIKESIM, NN_ELA_RRAM);
  nn_ela_cost c;
  CHECK(nn_ela_evaluate(&p, &l, 1, 8, 5, &c, NULL, NULL) == NN_OK);
  CHECK(c.pes == 1 && c.tiles == 1 && c.xbars == 9);
  CHECK_REL(c.energy_pj, 1024 * CYC_E3 * 5, REL);
  CHECK_REL(c.energy_pj, 4241849.073664, REL);
  CHECK_REL(c.area_um2, TILE_A3 + 3 * 1024 * MEM_A + 64 * 1024 * MEM_A, REL);
  CHECK_REL(c.area_um2, 1712288.021439, REL);
  CHECK_REL(c.latency_ns, 34078720.0, REL);
  CHECK(c.memory_params == 64 * 3 * 9 && c.memory_bits == 64 * 3 * 9 * 8);
  CHECK(c.memory_bytes == 64 * 3 * 9);
  /* SRAM: crossbar energy 671.089, area 671.089 */
  p = nn_ela_params_default(NN_ELA_SPIKESIM, NN_ELA_SRAM);
  CHECK(nn_ela_evaluate(&p, &l, 1, 8, 5, &c, NULL, NULL) == NN_OK);
  CHECK_REL(c.energy_pj, 1024 * 5 * (CYC_E3 + 8 * 9 * (671.089 - 1.76423)), REL);
  CHECK_REL(c.area_um2, 1712288.021439 + 8 * 9 * (671.089 - 26.2144), REL);
  /* spikesim uses its one kernel size even for a 1x1 layer */
  l.k = 1;
  p = nn_ela_params_default(NN_ELA_SPIKESIM, NN_ELA_RRAM);
  CHECK(nn_ela_evaluate(&p, &l, 1, 8, 5, &c, NULL, NULL) == NN_OK);
  CHECK_REL(c.energy_pj, 4241849.073664, REL);
}

/* docs/hardware.md quirks: the neuron-memory term counts only layers 1..5; tiles are shared. */
static void test_spikesim_quirks(void) {
  nn_layer_desc l[6];
  for (int i = 0; i < 6; i++) l[i] = conv(8, 8, 2, 2, 3);
  nn_ela_params p = nn_ela_params_default(NN_ELA_SPIKESIM, NN_ELA_RRAM);
  nn_ela_cost c;
  CHECK(nn_ela_evaluate(&p, l, 6, 8, 1, &c, NULL, NULL) == NN_OK);
  CHECK(c.pes == 6 && c.tiles == 1); /* six 1-PE layers packed into one tile of 8 */
  /* inputs: 6 * 8*4 values; neurons: 5 (not 6) * 8*4 values */
  CHECK_REL(c.area_um2, TILE_A3 + 6 * 32 * MEM_A + 5 * 32 * MEM_A, REL);
  /* latency: five layers at floor(0.75*4*8)=24 cycles, the last at 32 */
  CHECK_REL(c.latency_ns, (5 * 24 + 32) * PE_NS, REL);
}

/* docs/hardware.md, one conv layer: D=100, F=70, 16x16 -> 8x8, k=3, FxP8 on 1-bit cells: w=8.
 * PEs = ceil(9/9)*ceil(100/64)*ceil(560/64) = 1*2*9 = 18; tiles = ceil(18/8) = 3;
 * E = 9*2*64*828.4861472*5; A = 3*tile_a(3) + 100*256*16.2602 + 70*64*16.2602;
 * L = 104 * 64*70*5 (bit_serial: times w = 8). */
static void test_neuronas_single(void) {
  nn_layer_desc l = conv(100, 70, 16, 8, 3);
  nn_ela_params p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  nn_ela_cost c;
  nn_ela_layer_cost pl;
  CHECK(nn_ela_evaluate(&p, &l, 1, 8, 5, &c, &pl, NULL) == NN_OK);
  CHECK(c.pes == 18 && c.tiles == 3 && c.xbars == 18 * 9);
  CHECK(pl.cells == 8 && pl.pes == 18 && pl.tiles == 3);
  CHECK_REL(c.energy_pj, 9 * 2 * 64 * CYC_E3 * 5, REL);
  CHECK_REL(c.energy_pj, 4772080.207872, REL);
  CHECK_REL(c.area_um2, 3 * TILE_A3 + 100 * 256 * MEM_A + 70 * 64 * MEM_A, REL);
  CHECK_REL(c.area_um2, 2279231.475517, REL);
  CHECK_REL(c.latency_ns, 64 * 70 * 5 * PE_NS, REL);
  CHECK(c.memory_params == 63000 && c.memory_bits == 504000 && c.memory_bytes == 63000);
  p.bit_serial = 1;
  CHECK(nn_ela_evaluate(&p, &l, 1, 8, 5, &c, NULL, NULL) == NN_OK);
  CHECK_REL(c.latency_ns, 8 * 64 * 70 * 5 * PE_NS, REL);
  /* 2-bit cells: w = ceil(8/2) = 4 -> ceil(280/64) = 5 column blocks, 10 PEs, 2 tiles */
  p.bit_serial = 0;
  p.device_bits = 2;
  CHECK(nn_ela_evaluate(&p, &l, 1, 8, 5, &c, NULL, NULL) == NN_OK);
  CHECK(c.pes == 10 && c.tiles == 2);
  CHECK_REL(c.energy_pj, 5 * 2 * 64 * CYC_E3 * 5, REL);
  /* 7 bits on 2-bit cells: w = ceil(7/2) = 4 too */
  nn_ela_cost c7;
  CHECK(nn_ela_evaluate(&p, &l, 1, 7, 5, &c7, NULL, NULL) == NN_OK);
  CHECK(c7.pes == 10 && c7.energy_pj == c.energy_pj);
}

/* docs/hardware.md per-layer kernels: k=1 -> ceil(1/9) = 1 PE per block, k=5 -> ceil(25/9) = 3. */
static void test_neuronas_kernels(void) {
  nn_ela_params p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  nn_ela_cost c;
  /* k=1: D=F=64, 8x8 -> 8x8, FxP4: blocks 1*ceil(256/64) = 4, PEs 4, tiles 1;
   * E = 4*64*715.5754272*5; A = tile_a(1) + 2*64*64*16.2602 */
  nn_layer_desc l = conv(64, 64, 8, 8, 1);
  CHECK(nn_ela_evaluate(&p, &l, 1, 4, 5, &c, NULL, NULL) == NN_OK);
  CHECK(c.pes == 4 && c.tiles == 1 && c.xbars == 4);
  CHECK_REL(c.energy_pj, 4 * 64 * CYC_E1 * 5, REL);
  CHECK_REL(c.energy_pj, 915936.546816, REL);
  CHECK_REL(c.area_um2, TILE_A1 + 2 * 4096 * MEM_A, REL);
  CHECK_REL(c.area_um2, 728234.056639, REL);
  /* k=5: D=F=32, 4x4 -> 4x4, FxP2 on 2-bit cells (one cell per weight): 1 block, 3 PEs,
   * 25 crossbars, 1 tile; E = 16*1054.3075872*5; A = tile_a(5) + 2*32*16*16.2602 */
  l = conv(32, 32, 4, 4, 5);
  p.device_bits = 2;
  CHECK(nn_ela_evaluate(&p, &l, 1, 2, 5, &c, NULL, NULL) == NN_OK);
  p.device_bits = 1;
  CHECK(c.pes == 3 && c.tiles == 1 && c.xbars == 25);
  CHECK_REL(c.energy_pj, 16 * CYC_E5 * 5, REL);
  CHECK_REL(c.energy_pj, 84344.606976, REL);
  CHECK_REL(c.area_um2, TILE_A5 + 2 * 512 * MEM_A, REL);
  CHECK_REL(c.area_um2, 616714.107839, REL);
  /* linear 1024 -> 10 at FxP8: blocks 16*ceil(80/64) = 32, PEs 32, tiles 4 (no sharing);
   * E = 32*715.5754272*5; A = 4*tile_a(1) + 1024*16.2602 + 10*16.2602; L = 104*10*5 */
  l = linear(1024, 10);
  CHECK(nn_ela_evaluate(&p, &l, 1, 8, 5, &c, NULL, NULL) == NN_OK);
  CHECK(c.pes == 32 && c.tiles == 4 && c.memory_params == 10240);
  CHECK_REL(c.energy_pj, 114492.068352, REL);
  CHECK_REL(c.area_um2, 2396935.039756, REL);
  CHECK_REL(c.latency_ns, 5200.0, REL);
}

/* Latency over several layers (docs/hardware.md, both modes): floor(0.75*out^2*F)*T for all but the
 * last, out^2*F*T for the last; no tile sharing in neuronas mode (tiles add up per layer). */
static void test_latency_and_tiles(void) {
  nn_ela_params p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  nn_layer_desc l[2] = {conv(4, 5, 3, 3, 3), linear(45, 1)};
  nn_ela_cost c;
  nn_ela_layer_cost pl[2];
  p.device_bits = 2; /* FxP2 weights below take one 2-bit cell each */
  /* T=2: floor(0.75*9*5) = floor(33.75) = 33 -> 66 cycles; last: 1*1*2 = 2 cycles */
  CHECK(nn_ela_evaluate(&p, l, 2, 2, 2, &c, pl, NULL) == NN_OK);
  CHECK_REL(c.latency_ns, 68 * PE_NS, REL);
  CHECK_REL(pl[0].latency_ns, 66 * PE_NS, REL);
  CHECK_REL(pl[1].latency_ns, 2 * PE_NS, REL);
  CHECK(c.tiles == 2 && c.pes == 2); /* one PE each, and no tile holds two layers */
  /* the neuron-memory term covers every layer in neuronas mode (6 layers, all counted) */
  nn_layer_desc six[6];
  for (int i = 0; i < 6; i++) six[i] = conv(8, 8, 2, 2, 3);
  CHECK(nn_ela_evaluate(&p, six, 6, 2, 1, &c, NULL, NULL) == NN_OK);
  CHECK(c.tiles == 6);
  CHECK_REL(c.area_um2, 6 * TILE_A3 + 6 * 32 * MEM_A + 6 * 32 * MEM_A, REL);
  /* changing the clock scales latency only */
  p.clock_mhz = 500;
  nn_ela_cost c2;
  CHECK(nn_ela_evaluate(&p, six, 6, 2, 1, &c2, NULL, NULL) == NN_OK);
  CHECK_REL(c2.latency_ns, c.latency_ns / 2, REL);
  CHECK(c2.energy_pj == c.energy_pj);
}

/* docs/hardware.md cross-check on the cifar100 preset (C = 128) at FxP8: the network with every cell
 * edge conv3x3 is the top of the range (area 124.5 mm^2, latency 622 ms, energy 1968 uJ) and
 * the one with no conv in its cells the bottom (14.5 mm^2, 187 ms, 339 uJ). Scope "features":
 * stem 3->128 at 32x32, cell A 6 x (128->128 at 32x32), downconv 128->256 at 32x32,
 * cell B 6 x (256->256 at 16x16). */
static void test_cifar100_range(void) {
  nn_layer_desc l[14];
  int n = 0;
  l[n++] = conv(3, 128, 32, 32, 3);
  for (int i = 0; i < 6; i++) l[n++] = conv(128, 128, 32, 32, 3);
  l[n++] = conv(128, 256, 32, 32, 3);
  for (int i = 0; i < 6; i++) l[n++] = conv(256, 256, 16, 16, 3);
  nn_ela_params p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  nn_ela_cost hi, lo;
  CHECK(nn_ela_evaluate(&p, l, 14, 8, 5, &hi, NULL, NULL) == NN_OK);
  CHECK_NEAR(hi.area_mm2, 124.5, 0.05);
  CHECK_NEAR(hi.latency_ms, 622, 0.5);
  CHECK_NEAR(hi.energy_uj, 1968, 0.5);
  nn_layer_desc two[2] = {l[0], l[7]};
  CHECK(nn_ela_evaluate(&p, two, 2, 8, 5, &lo, NULL, NULL) == NN_OK);
  CHECK_NEAR(lo.area_mm2, 14.5, 0.05);
  CHECK_NEAR(lo.latency_ms, 187, 0.5);
  CHECK_NEAR(lo.energy_uj, 339, 0.5);
  /* docs/model.md memory count for the features scope: stem 3,456; conv3x3 at 128: 147,456 */
  CHECK(lo.memory_params == 3456 + 294912);
}

static int not_less(const nn_ela_cost *a, const nn_ela_cost *b) {
  return a->area_um2 >= b->area_um2 && a->energy_pj >= b->energy_pj &&
         a->latency_ns >= b->latency_ns && a->tiles >= b->tiles && a->pes >= b->pes &&
         a->xbars >= b->xbars && a->memory_bits >= b->memory_bits;
}

/* More bits, more timesteps, bigger layers (more crossbars) never cost less. */
static void test_monotone(void) {
  for (int mode = 0; mode < 2; mode++)
    for (int bs = 0; bs < 2; bs++) {
      nn_ela_params p = nn_ela_params_default((nn_ela_mode)mode, NN_ELA_RRAM);
      p.bit_serial = bs;
      nn_layer_desc l[3] = {conv(3, 40, 20, 20, 3), conv(40, 90, 20, 10, 1), linear(900, 10)};
      nn_ela_cost prev, c;
      int ok = 1;
      CHECK(nn_ela_evaluate(&p, l, 3, NN_WEIGHT_BITS_MIN, 5, &prev, NULL, NULL) == NN_OK);
      for (int b = NN_WEIGHT_BITS_MIN + 1; b <= NN_WEIGHT_BITS_MAX; b++) {
        ok &= nn_ela_evaluate(&p, l, 3, b, 5, &c, NULL, NULL) == NN_OK && not_less(&c, &prev);
        prev = c;
      }
      CHECK(ok);
      CHECK(nn_ela_evaluate(&p, l, 3, 8, 1, &prev, NULL, NULL) == NN_OK);
      for (int t = 2; t <= 16; t++) {
        ok &= nn_ela_evaluate(&p, l, 3, 8, t, &c, NULL, NULL) == NN_OK && not_less(&c, &prev);
        prev = c;
      }
      CHECK(ok);
      /* growing channels of the middle layer, one at a time (crossing crossbar boundaries) */
      CHECK(nn_ela_evaluate(&p, l, 3, 8, 5, &prev, NULL, NULL) == NN_OK);
      for (int ch = 41; ch <= 200; ch++) {
        l[1].in_ch = ch;
        l[1].out_ch = ch + 50;
        ok &= nn_ela_evaluate(&p, l, 3, 8, 5, &c, NULL, NULL) == NN_OK && not_less(&c, &prev);
        prev = c;
      }
      CHECK(ok);
      /* growing the crossbar count per layer through the kernel (neuronas: k per layer) */
      if (mode == NN_ELA_NEURONAS) {
        CHECK(nn_ela_evaluate(&p, l, 3, 8, 5, &prev, NULL, NULL) == NN_OK);
        for (int k = 2; k <= 7; k++) {
          l[1].k = k;
          ok &= nn_ela_evaluate(&p, l, 3, 8, 5, &c, NULL, NULL) == NN_OK && not_less(&c, &prev);
          prev = c;
        }
        CHECK(ok);
      }
    }
}

static void test_errors(void) {
  nn_ela_params p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  nn_layer_desc l[2] = {conv(3, 8, 4, 4, 3), conv(8, 8, 4, 4, 3)};
  nn_ela_cost c;
  nn_error err;
  l[1].out_ch = 0;
  CHECK(nn_ela_evaluate(&p, l, 2, 8, 5, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "layer 2: field 'out_ch': integer in 1..1073741824 expected, got 0") == 0);
  CHECK(c.area_um2 == 0 && c.tiles == 0);
  l[1].out_ch = 8;
  l[1].kind = (nn_layer_kind)7;
  CHECK(nn_ela_evaluate(&p, l, 2, 8, 5, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "layer 2: field 'kind': conv or linear expected") == 0);
  l[1] = linear(8, 8);
  l[1].k = 3;
  CHECK(nn_ela_evaluate(&p, l, 2, 8, 5, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "layer 2: field 'k': 1 expected for a linear layer, got 3") == 0);
  l[1].k = 1;
  CHECK(nn_ela_evaluate(&p, l, 2, 0, 5, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "ela: bits=0 (integer in 2..32 expected)") == 0);
  CHECK(nn_ela_evaluate(&p, l, 2, 8, 0, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "ela: timesteps=0 (integer >= 1 expected)") == 0);
  p.xbar = 0;
  CHECK(nn_ela_evaluate(&p, l, 2, 8, 5, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "ela: xbar=0 (integer in 1..1073741824 expected)") == 0);
  p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  p.e_adc_pj = NAN;
  CHECK(nn_ela_evaluate(&p, l, 2, 8, 5, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "ela: e_adc_pj=nan (number in 0..1e+12 expected)") == 0);
  p.e_adc_pj = 1e308; /* finite but above NN_ELA_MAX_CONST: its costs would overflow to inf */
  CHECK(nn_ela_evaluate(&p, l, 2, 8, 5, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "ela: e_adc_pj=1e+308 (number in 0..1e+12 expected)") == 0);
  p.e_adc_pj = NN_ELA_MAX_CONST;
  CHECK(nn_ela_params_check(&p, &err) == NN_OK);
  p.pipeline_overlap = 2;
  CHECK(nn_ela_params_check(&p, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "ela: pipeline_overlap=2 (number in 0..1 expected)") == 0);
  p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  CHECK(nn_ela_params_check(&p, &err) == NN_OK);
  p.mode = 5;
  CHECK(nn_ela_params_check(&p, &err) == NN_EINVAL);
  /* sizes whose products overflow int64 are refused, not wrapped */
  p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  p.device_bits = 1;
  nn_layer_desc big = conv(NN_ELA_MAX_SIZE, NN_ELA_MAX_SIZE, 1, 1, 1024);
  CHECK(nn_ela_evaluate(&p, &big, 1, NN_WEIGHT_BITS_MAX, 5, &c, NULL, &err) == NN_EINVAL);
  CHECK(strcmp(err.msg, "layer 1: sizes too large (int64 overflow)") == 0);
  /* empty list: all zero */
  CHECK(nn_ela_evaluate(&p, NULL, 0, 8, 5, &c, NULL, &err) == NN_OK);
  CHECK(c.area_um2 == 0 && c.tiles == 0 && c.latency_ns == 0 && c.memory_params == 0);
  CHECK(strcmp(nn_ela_mode_str(NN_ELA_SPIKESIM), "spikesim") == 0);
  CHECK(strcmp(nn_ela_device_str(NN_ELA_SRAM), "sram") == 0);
}

/* Every constant at the end of its range that makes costs largest (energies and areas at
 * NN_ELA_MAX_CONST, the slowest clock, one-column crossbars and ADCs), layers at the extremes of
 * their sizes, 32-bit weights and INT_MAX timesteps: each evaluation is finite or refused for
 * int64 overflow, never inf (docs/hardware.md, "Bounds"). */
static void test_bounds_keep_costs_finite(void) {
  static const int64_t SIZES[] = {1, (int64_t)1 << 15, NN_ELA_MAX_SIZE};
  nn_ela_params p = nn_ela_params_default(NN_ELA_NEURONAS, NN_ELA_RRAM);
  const double M = NN_ELA_MAX_CONST;
  p.e_xbar_pj = p.e_tile_buf_pj = p.e_temp_buf_pj = p.e_sub_pj = p.e_adc_pj = M;
  p.e_htree_pj = p.e_mux_pj = p.e_fetch_pj = p.e_neuron_pj = M;
  p.a_xbar_um2 = p.a_tile_buf_um2 = p.a_temp_buf_um2 = p.a_sub_um2 = p.a_adc_um2 = M;
  p.a_htree_um2 = p.a_mux_um2 = p.a_sram_bit_um2 = M;
  p.clock_mhz = 1e-6;
  p.pe_cycles = p.sub_per_adc = NN_ELA_MAX_SIZE;
  p.xbar = p.mux = p.xbars_per_pe = p.pe_per_tile = 1;
  p.neuron_mem_bits = 1024;
  p.kernel = 1024;
  p.bit_serial = 1;
  nn_error err;
  CHECK(nn_ela_params_check(&p, &err) == NN_OK);
  int ok = 0, refused = 0;
  for (int mode = 0; mode < 2; mode++) {
    p.mode = mode;
    for (int d = 0; d < 3; d++)
      for (int f = 0; f < 3; f++)
        for (int dim = 0; dim < 3; dim++)
          for (int k = 0; k < 3; k++) {
            nn_layer_desc l[2] = {conv(SIZES[d], SIZES[f], SIZES[dim], SIZES[dim], SIZES[k]),
                                  conv(SIZES[f], SIZES[d], SIZES[dim], SIZES[dim], 1)};
            nn_ela_layer_cost lc[2];
            nn_ela_cost c;
            if (nn_ela_evaluate(&p, l, 2, NN_WEIGHT_BITS_MAX, 2147483647, &c, lc, &err) != NN_OK) {
              CHECK(strstr(err.msg, "overflow") != NULL);
              refused++;
              continue;
            }
            ok++;
            CHECK(isfinite(c.area_um2) && isfinite(c.energy_pj) && isfinite(c.latency_ns));
            CHECK(isfinite(c.area_mm2) && isfinite(c.energy_uj) && isfinite(c.latency_ms));
            for (int i = 0; i < 2; i++)
              CHECK(isfinite(lc[i].area_um2) && isfinite(lc[i].energy_pj) && isfinite(lc[i].latency_ns));
          }
  }
  CHECK(ok > 20 && refused > 0);
}

int main(void) {
  NN_TEST_RUN(test_spikesim_vgg9);
  NN_TEST_RUN(test_spikesim_single);
  NN_TEST_RUN(test_spikesim_quirks);
  NN_TEST_RUN(test_neuronas_single);
  NN_TEST_RUN(test_neuronas_kernels);
  NN_TEST_RUN(test_latency_and_tiles);
  NN_TEST_RUN(test_cifar100_range);
  NN_TEST_RUN(test_monotone);
  NN_TEST_RUN(test_errors);
  NN_TEST_RUN(test_bounds_keep_costs_finite);
  return NN_TEST_END();
}
