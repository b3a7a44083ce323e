/* test_interop.c: SNASNet's PyTorch names and integer-code files (docs/interop.md).
 * Truth: the key list and values of the SNASNet fixture (tests/fixtures/README.md), its README's
 * statement of the edge order, and the quantizer's own output for the codes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "neuronas/nn_interop.h"
#include "neuronas/nn_net.h"
#include "neuronas/nn_quant.h"
#include "neuronas/nn_safetensors.h"
#include "nn_test.h"

#define FIX NN_SOURCE_DIR "/tests/fixtures/snasnet-backward/"

static nn_net *net_of(const char *cell, int64_t channels) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  if (nn_net_params_preset(&p, "cifar100", &err) != NN_OK) return NULL;
  if (nn_cell_parse(cell, NN_CELL_FORM_SNASNET, &p.cell_a, &err) != NN_OK) return NULL;
  p.cell_b = p.cell_a;
  p.channels = channels;
  return nn_net_new(&p, &err);
}
static nn_net *fixture_shape(void) { return net_of("0303 0030 2002 0200", 16); }

static char tmp_dir[] = "/tmp/nn_interop_XXXXXX";
static const char *tmp_path(const char *name) {
  static char buf[4][128];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
  return buf[k];
}

/* Pairs read off the fixture README: forward edges 01 02 12 03 13 23 are cell_architecture.0..5,
 * backward edges 10 20 30 21 31 32 are cell_architecture_back.0..5; in an edge .0 LIF, .1 conv,
 * .2 BN; downconv1 = BN, LIF, conv, BN; classifier = dropout, linear, LIF, linear. */
static void translate_by_hand(void) {
  static const char *const P[][2] = {
      {"stem.conv.weight", "stem.0.weight"},
      {"stem.bn.running_var", "stem.1.running_var"},
      {"cellA.e01.conv.weight", "cell1.cell_architecture.0.1.weight"},
      {"cellA.e12.bn.bias", "cell1.cell_architecture.2.2.bias"},
      {"cellB.e23.lif", "cell2.cell_architecture.5.0"},
      {"cellB.e20.conv.weight", "cell2.cell_architecture_back.1.1.weight"},
      {"cellA.e31.bn.running_mean", "cell1.cell_architecture_back.4.2.running_mean"},
      {"cellB.e32.conv", "cell2.cell_architecture_back.5.1"},
      {"downconv.bn1.weight", "downconv1.0.weight"},
      {"downconv.lif", "downconv1.1"},
      {"downconv.conv.weight", "downconv1.2.weight"},
      {"downconv.bn2.bias", "downconv1.3.bias"},
      {"last.bn.weight", "last_act.0.weight"},
      {"last.lif", "last_act.1"},
      {"classifier.fc1.weight", "classifier.1.weight"},
      {"classifier.lif", "classifier.2"},
      {"classifier.fc2.bias", "classifier.3.bias"}};
  char out[128];
  for (size_t i = 0; i < sizeof P / sizeof *P; i++) {
    CHECK(nn_names_translate(P[i][0], NN_NAMES_NEURONAS, NN_NAMES_SNASNET, out, sizeof out) == 1);
    if (strcmp(out, P[i][1])) fprintf(stderr, "  %s -> %s, expected %s\n", P[i][0], out, P[i][1]);
    CHECK(!strcmp(out, P[i][1]));
    CHECK(nn_names_translate(P[i][1], NN_NAMES_SNASNET, NN_NAMES_NEURONAS, out, sizeof out) == 1);
    CHECK(!strcmp(out, P[i][0]));
  }
  /* names without a counterpart, and a buffer too small */
  CHECK(nn_names_translate("cellC.e01.conv.weight", NN_NAMES_NEURONAS, NN_NAMES_SNASNET, out, sizeof out) == 0);
  CHECK(nn_names_translate("cell1.cell_architecture.6.1.weight", NN_NAMES_SNASNET, NN_NAMES_NEURONAS, out, sizeof out) == 0);
  CHECK(nn_names_translate("classifier.0.weight", NN_NAMES_SNASNET, NN_NAMES_NEURONAS, out, sizeof out) == 0);
  CHECK(nn_names_translate("stem.conv.weight", NN_NAMES_NEURONAS, NN_NAMES_SNASNET, out, 8) == 0 && out[0] == 0);
  nn_names n;
  nn_error err;
  CHECK(nn_names_parse("snasnet", &n, &err) == NN_OK && n == NN_NAMES_SNASNET);
  CHECK(nn_names_parse("pytorch", &n, &err) == NN_EINVAL && strstr(err.msg, "'snasnet'"));
}

/* every tensor of a net whose cell uses all 12 edges maps there and back */
static void translate_every_tensor(void) {
  nn_net *net = net_of("0333 3033 3303 3330", 4);
  CHECK(net != NULL);
  if (!net) return;
  char s[128], back[128];
  size_t cells = 0;
  for (size_t i = 0; i < nn_net_tensor_count(net); i++) {
    const char *n = nn_net_tensor_name(net, i);
    CHECK(nn_names_translate(n, NN_NAMES_NEURONAS, NN_NAMES_SNASNET, s, sizeof s) == 1);
    CHECK(nn_names_translate(s, NN_NAMES_SNASNET, NN_NAMES_NEURONAS, back, sizeof back) == 1);
    CHECK(!strcmp(back, n));
    cells += !strncmp(s, "cell", 4);
  }
  CHECK(cells == 2 * 12 * 5); /* 2 cells x 12 conv edges x (weight + 4 BN tensors) */
  nn_net_free(net);
}

static int same_bits(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

/* fixture -> net -> snasnet file: the fixture's keys and shapes, the values bit for bit */
static void fixture_roundtrip_snasnet(void) {
  nn_error err;
  nn_net *net = fixture_shape();
  CHECK(net && nn_net_load_names(net, FIX "weights.safetensors", NN_NAMES_SNASNET, &err) == NN_OK);
  if (!net) return;
  const char *out = tmp_path("snas.safetensors");
  CHECK(nn_net_save_names(net, out, NN_NAMES_SNASNET, &err) == NN_OK);
  nn_st_file *a = nn_st_open(FIX "weights.safetensors", &err), *b = nn_st_open(out, &err);
  CHECK(a && b);
  if (!a || !b) {
    nn_st_close(a), nn_st_close(b), nn_net_free(net);
    return;
  }
  CHECK(nn_st_count(a) == nn_st_count(b));
  CHECK(!strcmp(nn_st_meta(b, "format"), "pt"));
  size_t nbt = 0;
  for (size_t i = 0; i < nn_st_count(a); i++) {
    const char *name = nn_st_name(a, i);
    int k = nn_st_find(b, name);
    CHECK(k >= 0);
    if (k < 0) {
      fprintf(stderr, "  missing %s\n", name);
      continue;
    }
    CHECK(nn_st_ndim(a, i) == nn_st_ndim(b, (size_t)k));
    for (int d = 0; d < nn_st_ndim(a, i); d++) CHECK(nn_st_shape(a, i)[d] == nn_st_shape(b, (size_t)k)[d]);
    int64_t n = nn_st_numel(a, i);
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x), *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    CHECK(nn_st_read_f32(a, name, x, n, &err) == NN_OK && nn_st_read_f32(b, name, y, n, &err) == NN_OK);
    CHECK(same_bits(x, y, n));
    /* PyTorch keeps the BN batch counter as int64; everything else is float32 */
    if (strstr(name, "num_batches_tracked")) {
      nbt++;
      CHECK(!strcmp(nn_st_dtype(b, (size_t)k), "I64") && y[0] == 0);
    } else {
      CHECK(!strcmp(nn_st_dtype(b, (size_t)k), "F32"));
    }
    free(x), free(y);
  }
  CHECK(nbt == 16); /* stem, 6 + 6 edge BNs, downconv x2, last */
  nn_st_close(a), nn_st_close(b);
  /* and back: a fresh net loads our SNASNet file to the same bits */
  nn_net *n2 = fixture_shape();
  CHECK(n2 && nn_net_load_names(n2, out, NN_NAMES_SNASNET, &err) == NN_OK);
  for (size_t i = 0; n2 && i < nn_net_tensor_count(net); i++)
    CHECK(same_bits(nn_tensor_data(nn_net_tensor(net, i)), nn_tensor_data(nn_net_tensor(n2, i)),
                    nn_tensor_numel(nn_net_tensor(net, i))));
  nn_net_free(n2);
  nn_net_free(net);
  remove(out);
}

/* fixture -> net -> our naming -> fresh net: bit for bit; the two namings do not mix */
static void fixture_roundtrip_neuronas(void) {
  nn_error err;
  nn_net *net = fixture_shape(), *n2 = fixture_shape();
  CHECK(net && n2);
  if (!net || !n2) {
    nn_net_free(net), nn_net_free(n2);
    return;
  }
  CHECK(nn_net_load_names(net, FIX "weights.safetensors", NN_NAMES_SNASNET, &err) == NN_OK);
  const char *out = tmp_path("ours.safetensors");
  CHECK(nn_net_save_names(net, out, NN_NAMES_NEURONAS, &err) == NN_OK);
  CHECK(nn_net_load_names(n2, out, NN_NAMES_NEURONAS, &err) == NN_OK);
  for (size_t i = 0; i < nn_net_tensor_count(net); i++)
    CHECK(same_bits(nn_tensor_data(nn_net_tensor(net, i)), nn_tensor_data(nn_net_tensor(n2, i)),
                    nn_tensor_numel(nn_net_tensor(net, i))));
  /* a file in one naming read as the other: a clear error naming the file and a tensor */
  CHECK(nn_net_load_names(n2, out, NN_NAMES_SNASNET, &err) == NN_EINVAL && strstr(err.msg, out) &&
        strstr(err.msg, "unexpected tensor"));
  CHECK(nn_net_load_names(n2, FIX "weights.safetensors", NN_NAMES_NEURONAS, &err) == NN_EINVAL &&
        strstr(err.msg, "unexpected tensor"));
  /* another architecture: a missing tensor is named */
  nn_net *small = net_of("0300 0030 0003 0000", 16);
  CHECK(small && nn_net_load_names(small, FIX "weights.safetensors", NN_NAMES_SNASNET, &err) == NN_EINVAL);
  nn_net_free(small);
  nn_net_free(net), nn_net_free(n2);
  remove(out);
}

/* integer codes: the quantizer's values exactly, as code * 2^exponent with codes in range */
static void codes_roundtrip(void) {
  nn_error err;
  nn_net *net = fixture_shape();
  CHECK(net && nn_net_load_names(net, FIX "weights.safetensors", NN_NAMES_SNASNET, &err) == NN_OK);
  if (!net) return;
  static const int BITS[] = {4, 8, 12};
  for (size_t bi = 0; bi < 3; bi++) {
    nn_quant_params q = nn_quant_params_default();
    q.bits = BITS[bi];
    nn_net *qn = nn_quant_net(&q, net, NULL, &err);
    CHECK(qn != NULL);
    const char *out = tmp_path("codes.safetensors");
    CHECK(nn_net_save_codes(net, out, &q, NN_NAMES_SNASNET, &err) == NN_OK);
    nn_st_file *f = nn_st_open(out, &err);
    CHECK(f != NULL);
    /* one weight read by hand: stem.0.weight[0] = code * 2^exponent */
    double code[432], e;
    CHECK(f && !strcmp(nn_st_dtype(f, (size_t)nn_st_find(f, "stem.0.weight")), q.bits <= 8 ? "I8" : "I16"));
    CHECK(f && nn_st_read_f64(f, "stem.0.weight", code, 432, &err) == NN_OK);
    CHECK(f && nn_st_read_f64(f, "stem.0.weight.exponent", &e, 1, &err) == NN_OK);
    const float *qw = nn_tensor_data(nn_net_tensor_find(qn, "stem.conv.weight"));
    double lo = -ldexp(1, q.bits - 1), hi = ldexp(1, q.bits - 1) - 1, used_hi = 0;
    for (int j = 0; j < 432; j++) {
      CHECK(code[j] >= lo && code[j] <= hi);
      CHECK((float)ldexp(code[j], (int)e) == qw[j]);
      used_hi = fmax(used_hi, fabs(code[j]));
    }
    CHECK(used_hi >= ldexp(1, q.bits - 2)); /* the exponent uses the range (dynamic pow2) */
    CHECK(f && !strcmp(nn_st_dtype(f, (size_t)nn_st_find(f, "stem.1.weight")), "F32")); /* BN stays float */
    nn_st_close(f);
    /* loading the codes gives the quantized net's values (an integer code has no sign of zero:
     * a weight the quantizer rounded to -0 comes back as +0, equal as a number) */
    nn_net *n2 = fixture_shape();
    nn_status lst = n2 ? nn_net_load_names(n2, out, NN_NAMES_SNASNET, &err) : NN_ENOMEM;
    CHECK(lst == NN_OK);
    for (size_t i = 0; lst == NN_OK && qn && i < nn_net_tensor_count(qn); i++) {
      const float *x = nn_tensor_data(nn_net_tensor(qn, i)), *y = nn_tensor_data(nn_net_tensor(n2, i));
      int64_t m = nn_tensor_numel(nn_net_tensor(qn, i)), same = 0;
      while (same < m && x[same] == y[same]) same++;
      if (same < m) fprintf(stderr, "  bits %d: %s[%lld] %.9g, loaded %.9g\n", q.bits, nn_net_tensor_name(qn, i),
                            (long long)same, x[same], y[same]);
      CHECK(same == m);
    }
    nn_net_free(n2), nn_net_free(qn);
    remove(out);
  }
  nn_quant_params mq = nn_quant_params_default();
  mq.scale = NN_QSCALE_MAXABS;
  CHECK(nn_net_save_codes(net, tmp_path("x.safetensors"), &mq, NN_NAMES_NEURONAS, &err) == NN_EINVAL &&
        strstr(err.msg, "pow2"));
  nn_net_free(net);
}

/* typed writer: integer dtypes come back exactly; unknown dtypes are refused */
static void raw_writer(void) {
  nn_error err;
  const int8_t a[3] = {-128, 0, 127};
  const int16_t b[2] = {-32768, 32767};
  const int64_t s[1] = {3}, two[1] = {2};
  const int64_t big = 123456789;
  nn_st_raw e[3] = {{"a", "I8", 1, s, a}, {"b", "I16", 1, two, b}, {"c", "I64", 0, NULL, &big}};
  const char *out = tmp_path("raw.safetensors");
  CHECK(nn_st_write_raw(out, e, 3, NULL, &err) == NN_OK);
  nn_st_file *f = nn_st_open(out, &err);
  double v[3];
  CHECK(f && nn_st_read_f64(f, "a", v, 3, &err) == NN_OK && v[0] == -128 && v[1] == 0 && v[2] == 127);
  CHECK(f && nn_st_read_f64(f, "b", v, 2, &err) == NN_OK && v[0] == -32768 && v[1] == 32767);
  CHECK(f && nn_st_read_f64(f, "c", v, 1, &err) == NN_OK && v[0] == 123456789 && nn_st_ndim(f, 2) == 0);
  nn_st_close(f);
  nn_st_raw bad = {"x", "F16", 1, s, a};
  CHECK(nn_st_write_raw(out, &bad, 1, NULL, &err) == NN_EINVAL && strstr(err.msg, "F16"));
  remove(out);
}

/* A net of cells a, b (SNASNet codes) at `channels`. */
static nn_net *net_of2(const char *a, const char *b, int64_t channels) {
  nn_error err;
  nn_net_params p = nn_net_params_default();
  if (nn_net_params_preset(&p, "cifar100", &err) != NN_OK) return NULL;
  if (nn_cell_parse(a, NN_CELL_FORM_SNASNET, &p.cell_a, &err) != NN_OK) return NULL;
  if (nn_cell_parse(b, NN_CELL_FORM_SNASNET, &p.cell_b, &err) != NN_OK) return NULL;
  p.channels = channels;
  return nn_net_new(&p, &err);
}

static int nets_same(nn_net *a, nn_net *b) {
  for (size_t i = 0; i < nn_net_tensor_count(a); i++)
    if (!same_bits(nn_tensor_data(nn_net_tensor(a, i)), nn_tensor_data(nn_net_tensor(b, i)),
                   nn_tensor_numel(nn_net_tensor(a, i))))
      return 0;
  return 1;
}

/* Writes net's tensors under our names with the given metadata (a file built by hand). */
static nn_status write_net(nn_net *net, const char *path, const char *const *meta, nn_error *err) {
  nn_st_entry e[256];
  size_t n = nn_net_tensor_count(net);
  for (size_t i = 0; i < n && i < 256; i++) e[i] = (nn_st_entry){nn_net_tensor_name(net, i), nn_net_tensor(net, i)};
  return nn_st_write(path, e, n, meta, err);
}

/* Tensor names and shapes cannot tell a skip from an avgpool edge: a file recording its cells
 * loads only into a net of those cells (any text form of them); a file recording none loads as
 * before. */
#define CELL "0314 0033 0003 0000"     /* conv3x3 skip avgpool3x3 conv3x3 conv3x3 conv3x3 */
#define SWAPPED "0341 0033 0003 0000"  /* the skip and the avgpool swapped */
static void cells_must_match(void) {
  nn_error err;
  char want[512];
  nn_net *a = net_of2(CELL, CELL, 4), *b = net_of2(SWAPPED, CELL, 4), *c = net_of2(SWAPPED, SWAPPED, 4);
  nn_net *b0 = b ? nn_net_clone(b, &err) : NULL;
  CHECK(a && b && c && b0);
  if (!a || !b || !c || !b0) {
    nn_net_free(a), nn_net_free(b), nn_net_free(c), nn_net_free(b0);
    return;
  }
  const char *ours = tmp_path("cells.safetensors"), *pt = tmp_path("cells_pt.safetensors");
  CHECK(nn_net_save(a, ours, &err) == NN_OK);
  CHECK(nn_net_load(b, ours, &err) == NN_EINVAL);
  snprintf(want, sizeof want, "%s: weights of another architecture: the file's cellA \"conv3x3 skip avgpool3x3 "
           "conv3x3 conv3x3 conv3x3\", the net's \"conv3x3 avgpool3x3 skip conv3x3 conv3x3 conv3x3\"", ours);
  if (strcmp(err.msg, want)) fprintf(stderr, "  got: %s\n", err.msg);
  CHECK(!strcmp(err.msg, want));
  CHECK(nets_same(b, b0)); /* untouched */
  CHECK(nn_net_load(c, ours, &err) == NN_EINVAL && strstr(err.msg, ours) && strstr(err.msg, "cellA \"") &&
        strstr(err.msg, "cellB \"") && strstr(err.msg, "the net's cellA \"conv3x3 avgpool3x3 skip"));
  /* SNASNet's names and integer codes carry the cells too */
  CHECK(nn_net_save_names(a, pt, NN_NAMES_SNASNET, &err) == NN_OK);
  CHECK(nn_net_load_names(b, pt, NN_NAMES_SNASNET, &err) == NN_EINVAL && strstr(err.msg, pt) &&
        strstr(err.msg, "another architecture"));
  nn_quant_params q = nn_quant_params_default();
  q.bits = 4;
  CHECK(nn_net_save_codes(a, pt, &q, NN_NAMES_NEURONAS, &err) == NN_OK);
  CHECK(nn_net_load(b, pt, &err) == NN_EINVAL && strstr(err.msg, "another architecture"));
  CHECK(nets_same(b, b0));
  /* the same cells in another text form load; no cells at all (PyTorch's files) load */
  const char *digits[] = {"format", "pt", "cellA", SWAPPED, "cellB", "[1, 0, 2, 1, 1, 1]", NULL};
  CHECK(write_net(a, pt, digits, &err) == NN_OK);
  CHECK(nn_net_load(b, pt, &err) == NN_OK && nets_same(a, b));
  const char *none[] = {"format", "pt", NULL};
  CHECK(write_net(c, pt, none, &err) == NN_OK);
  CHECK(nn_net_load(b, pt, &err) == NN_OK && nets_same(b, c));
  /* a cell that is no cell is refused, named */
  const char *junk[] = {"cellB", "conv3x3 skip", NULL};
  CHECK(write_net(a, pt, junk, &err) == NN_OK);
  snprintf(want, sizeof want, "%s: __metadata__ cellB is \"conv3x3 skip\", not a cell", pt);
  CHECK(nn_net_load(b, pt, &err) == NN_EFORMAT && !strcmp(err.msg, want));
  CHECK(nets_same(b, c));
  nn_net_free(a), nn_net_free(b), nn_net_free(c), nn_net_free(b0);
  remove(ours), remove(pt);
}

/* Writes net's tensors under our names, stem.conv.weight as the given I8 codes (2^-3 each). */
static nn_status write_codes(nn_net *net, const char *path, const int8_t *codes, const char *const *meta,
                             nn_error *err) {
  nn_st_raw e[257];
  static const int32_t expo = -3;
  size_t n = nn_net_tensor_count(net);
  for (size_t i = 0; i < n && i < 256; i++) {
    nn_tensor *t = nn_net_tensor(net, i);
    e[i] = (nn_st_raw){nn_net_tensor_name(net, i), "F32", nn_tensor_ndim(t), nn_tensor_shape(t), nn_tensor_data(t)};
    if (!strcmp(e[i].name, "stem.conv.weight")) e[i].dtype = "I8", e[i].data = codes;
  }
  e[n] = (nn_st_raw){"stem.conv.weight.exponent", "I32", 0, NULL, &expo};
  return nn_st_write_raw(path, e, n + 1, meta, err);
}

/* A code outside the signed range of the file's weight_bits is not what a quantizer of that
 * precision wrote: refused, naming the file, the tensor and the element. */
static void codes_in_range(void) {
  nn_error err;
  char want[512];
  nn_net *a = net_of2(CELL, CELL, 4), *b = net_of2(CELL, CELL, 4);
  nn_net *b0 = b ? nn_net_clone(b, &err) : NULL;
  CHECK(a && b && b0);
  if (!a || !b || !b0) {
    nn_net_free(a), nn_net_free(b), nn_net_free(b0);
    return;
  }
  const int64_t n = nn_tensor_numel(nn_net_tensor_find(a, "stem.conv.weight"));
  int8_t *codes = calloc((size_t)n, 1);
  const char *path = tmp_path("oor.safetensors");
  const char *bits4[] = {"format", "neuronas.codes", "weight_bits", "4", NULL};
  /* the ends of the range load: -8 and 7 times 2^-3 */
  codes[0] = -8, codes[1] = 7;
  CHECK(write_codes(a, path, codes, bits4, &err) == NN_OK);
  CHECK(nn_net_load(b, path, &err) == NN_OK && nn_net_weight_bits(b) == 4);
  const float *w = nn_tensor_data(nn_net_tensor_find(b, "stem.conv.weight"));
  CHECK(w[0] == -1.0f && w[1] == 0.875f && w[2] == 0.0f);
  nn_net_free(b0);
  b0 = nn_net_clone(b, &err);
  /* one past either end: refused, the net untouched */
  codes[2] = 8;
  CHECK(write_codes(a, path, codes, bits4, &err) == NN_OK);
  snprintf(want, sizeof want, "%s: tensor 'stem.conv.weight' element 3 is code 8, expected an integer in -8..7 "
           "(weight_bits 4)", path);
  CHECK(nn_net_load(b, path, &err) == NN_EFORMAT && !strcmp(err.msg, want));
  codes[2] = -9;
  CHECK(write_codes(a, path, codes, bits4, &err) == NN_OK);
  CHECK(nn_net_load(b, path, &err) == NN_EFORMAT && strstr(err.msg, "element 3 is code -9"));
  codes[2] = 100; /* would load as 12.5 in a net that says 4 bits */
  CHECK(write_codes(a, path, codes, bits4, &err) == NN_OK);
  CHECK(nn_net_load(b, path, &err) == NN_EFORMAT && strstr(err.msg, "element 3 is code 100"));
  CHECK(b0 && nets_same(b, b0) && nn_net_weight_bits(b) == 4);
  /* without weight_bits in the file, the range is the net's precision */
  const char *nobits[] = {"format", "neuronas.codes", NULL};
  CHECK(write_codes(a, path, codes, nobits, &err) == NN_OK);
  nn_net_set_weight_bits(b, 8);
  CHECK(nn_net_load(b, path, &err) == NN_OK && nn_tensor_data(nn_net_tensor_find(b, "stem.conv.weight"))[2] == 12.5f);
  nn_net_set_weight_bits(b, 6);
  snprintf(want, sizeof want, "%s: tensor 'stem.conv.weight' element 3 is code 100, expected an integer in -32..31 "
           "(weight_bits 6)", path);
  CHECK(nn_net_load(b, path, &err) == NN_EFORMAT && !strcmp(err.msg, want));
  free(codes);
  nn_net_free(a), nn_net_free(b), nn_net_free(b0);
  remove(path);
}

int main(void) {
  if (!mkdtemp(tmp_dir)) return 1;
  NN_TEST_RUN(translate_by_hand);
  NN_TEST_RUN(translate_every_tensor);
  NN_TEST_RUN(fixture_roundtrip_snasnet);
  NN_TEST_RUN(fixture_roundtrip_neuronas);
  NN_TEST_RUN(codes_roundtrip);
  NN_TEST_RUN(raw_writer);
  NN_TEST_RUN(cells_must_match);
  NN_TEST_RUN(codes_in_range);
  rmdir(tmp_dir);
  return NN_TEST_END();
}
