/* test_safetensors.c: the safetensors reader/writer (docs/model.md weights I/O, tests/fixtures/README.md fixtures):
 * round trip, dtype conversions from hand-made files, the fixtures' F64 kernel, and errors that
 * name the file and the tensor. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "neuronas/nn_safetensors.h"
#include "nn_test.h"

#define FIX NN_SOURCE_DIR "/tests/fixtures/snasnet-backward/"

static void tmpname(char *buf) {
  strcpy(buf, "/tmp/nn_test_st_XXXXXX");
  int fd = mkstemp(buf);
  if (fd >= 0) close(fd);
}

/* writes header JSON + raw data as a safetensors file */
static void write_raw(const char *path, const char *json, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  uint64_t len = strlen(json);
  unsigned char l8[8];
  for (int i = 0; i < 8; i++) l8[i] = (unsigned char)(len >> (8 * i));
  fwrite(l8, 1, 8, f);
  fwrite(json, 1, len, f);
  if (n) fwrite(data, 1, n, f);
  fclose(f);
}

static void round_trip(void) {
  char path[64];
  nn_error err;
  tmpname(path);
  nn_tensor *a = nn_tensor_new4(2, 2, 3, 0, 0, &err), *b = nn_tensor_new(0, NULL, &err);
  for (int i = 0; i < 6; i++) nn_tensor_data(a)[i] = (float)i - 2.5f;
  nn_tensor_data(b)[0] = 7;
  nn_st_entry e[2] = {{"layer.weight", a}, {"we\"ird\\name", b}};
  const char *meta[] = {"format", "test", NULL};
  CHECK(nn_st_write(path, e, 2, meta, &err) == NN_OK);
  nn_st_file *f = nn_st_open(path, &err);
  CHECK(f != NULL);
  if (f) {
    CHECK(nn_st_count(f) == 2 && !strcmp(nn_st_name(f, 0), "layer.weight") && !strcmp(nn_st_name(f, 1), "we\"ird\\name"));
    CHECK(nn_st_ndim(f, 0) == 2 && nn_st_shape(f, 0)[0] == 2 && nn_st_shape(f, 0)[1] == 3 && nn_st_numel(f, 0) == 6);
    CHECK(nn_st_ndim(f, 1) == 0 && nn_st_numel(f, 1) == 1 && !strcmp(nn_st_dtype(f, 1), "F32"));
    CHECK(nn_st_meta(f, "format") && !strcmp(nn_st_meta(f, "format"), "test") && !nn_st_meta(f, "x"));
    nn_tensor *r = nn_st_read_tensor(f, "layer.weight", &err);
    CHECK(r && nn_tensor_same_shape(r, a) && !memcmp(nn_tensor_data(r), nn_tensor_data(a), 6 * sizeof(float)));
    double d[1];
    CHECK(nn_st_read_f64(f, "we\"ird\\name", d, 1, &err) == NN_OK && d[0] == 7);
    float x[5];
    CHECK(nn_st_read_f32(f, "layer.weight", x, 5, &err) == NN_EINVAL);
    char want[256];
    snprintf(want, sizeof want, "%s: tensor 'layer.weight' has 6 elements (shape 2x3), expected 5", path);
    CHECK(!strcmp(err.msg, want));
    CHECK(nn_st_read_f32(f, "nope", x, 1, &err) == NN_EINVAL);
    snprintf(want, sizeof want, "%s: no tensor 'nope'", path);
    CHECK(!strcmp(err.msg, want));
    nn_tensor_free(r);
  }
  nn_st_close(f);
  nn_tensor_free(a), nn_tensor_free(b);
  remove(path);
}

static void dtypes(void) {
  char path[64];
  nn_error err;
  tmpname(path);
  unsigned char data[8 * 2 + 8 * 2 + 4 * 2 + 2 + 2];
  double f64[2] = {1.5, -2.25};
  int64_t i64[2] = {-3, 1LL << 40};
  int32_t i32[2] = {-7, 9};
  unsigned char u8[2] = {0, 255};
  memcpy(data, f64, 16);
  memcpy(data + 16, i64, 16);
  memcpy(data + 32, i32, 8);
  memcpy(data + 40, u8, 2);
  memset(data + 42, 0, 2);
  write_raw(path,
            "{\"__metadata__\":{\"k\":\"v\"},\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
            "\"l\":{\"dtype\":\"I64\",\"shape\":[2,1],\"data_offsets\":[16,32]},"
            "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[32,40]},"
            "\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[40,42]},"
            "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[42,44]}}",
            data, sizeof data);
  nn_st_file *f = nn_st_open(path, &err);
  CHECK(f != NULL);
  if (f) {
    float x[2];
    double y[2];
    CHECK(nn_st_read_f32(f, "d", x, 2, &err) == NN_OK && x[0] == 1.5f && x[1] == -2.25f);
    CHECK(nn_st_read_f64(f, "l", y, 2, &err) == NN_OK && y[0] == -3 && y[1] == 1099511627776.0);
    CHECK(nn_st_read_f32(f, "i", x, 2, &err) == NN_OK && x[0] == -7 && x[1] == 9);
    CHECK(nn_st_read_f64(f, "u", y, 2, &err) == NN_OK && y[0] == 0 && y[1] == 255);
    CHECK(nn_st_read_f32(f, "h", x, 1, &err) == NN_EFORMAT);
    char want[256];
    snprintf(want, sizeof want, "%s: tensor 'h' has dtype F16, expected F32, F64, I64, I32, I16, I8 or U8", path);
    CHECK(!strcmp(err.msg, want));
    CHECK(!strcmp(nn_st_meta(f, "k"), "v"));
  }
  nn_st_close(f);
  remove(path);
}

static void bad_files(void) {
  char path[64], want[256];
  nn_error err;
  tmpname(path);
  float v[2] = {1, 2};
  /* data_offsets beyond the file */
  write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", v, 8);
  CHECK(nn_st_open(path, &err) == NULL && err.code == NN_EFORMAT);
  snprintf(want, sizeof want, "%s: tensor 'a': data_offsets [0, 16] do not fit its shape or the file", path);
  CHECK(!strcmp(err.msg, want));
  /* shape / size mismatch */
  write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", v, 8);
  CHECK(nn_st_open(path, &err) == NULL && err.code == NN_EFORMAT);
  /* unknown dtype */
  write_raw(path, "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", v, 8);
  CHECK(nn_st_open(path, &err) == NULL);
  snprintf(want, sizeof want, "%s: tensor 'a': unknown dtype 'Q7'", path);
  CHECK(!strcmp(err.msg, want));
  /* broken JSON */
  write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,\"data_offsets\":[0,8]}}", v, 8);
  CHECK(nn_st_open(path, &err) == NULL && err.code == NN_EFORMAT && strstr(err.msg, path));
  write_raw(path, "[1, 2]", NULL, 0);
  CHECK(nn_st_open(path, &err) == NULL);
  snprintf(want, sizeof want, "%s: header is not a JSON object", path);
  CHECK(!strcmp(err.msg, want));
  /* tiny / missing files */
  FILE *f = fopen(path, "wb");
  fputs("abc", f);
  fclose(f);
  CHECK(nn_st_open(path, &err) == NULL);
  snprintf(want, sizeof want, "%s: not a safetensors file (shorter than 8 bytes)", path);
  CHECK(!strcmp(err.msg, want));
  remove(path);
  CHECK(nn_st_open(path, &err) == NULL && err.code == NN_EIO && strstr(err.msg, "cannot open"));
  /* empty header object is a valid empty file */
  write_raw(path, "{}", NULL, 0);
  nn_st_file *e = nn_st_open(path, &err);
  CHECK(e && nn_st_count(e) == 0);
  nn_st_close(e);
  remove(path);
  nn_st_close(NULL);
}

/* the fixture's accumulated Hamming kernel: F64, 32 x 32, symmetric */
static void fixture_f64(void) {
  nn_error err;
  nn_st_file *f = nn_st_open(FIX "kernel_f64.safetensors", &err);
  CHECK(f != NULL);
  if (!f) return;
  int i = nn_st_find(f, "K_over_calls.r0");
  CHECK(i >= 0 && !strcmp(nn_st_dtype(f, (size_t)i), "F64") && nn_st_numel(f, (size_t)i) == 1024);
  double *k = malloc(1024 * sizeof *k);
  CHECK(nn_st_read_f64(f, "K_over_calls.r0", k, 1024, &err) == NN_OK);
  int sym = 1;
  for (int a = 0; a < 32; a++)
    for (int b = 0; b < 32; b++) sym &= k[a * 32 + b] == k[b * 32 + a];
  CHECK(sym);
  CHECK(k[0] > 0 && isfinite(k[0]));
  CHECK(!strcmp(nn_st_meta(f, "con_mat"), "0303 0030 2002 0200"));
  free(k);
  nn_st_close(f);
}

/* A header of 100,000 entries: every name found at its file index, in time linear-logarithmic
 * in the count (a linear scan per name took 13 s for 80,000, nn.tensor.load's loop). */
static void many_names(void) {
  enum { N = 100000 };
  char path[64], name[32];
  nn_error err;
  tmpname(path);
  size_t cap = (size_t)N * 64 + 16, k = 0;
  char *json = malloc(cap);
  k += (size_t)snprintf(json + k, cap - k, "{");
  for (int i = 0; i < N; i++) /* file order is not name order: t99999, t99998, ... */
    k += (size_t)snprintf(json + k, cap - k, "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                          i ? "," : "", N - 1 - i);
  snprintf(json + k, cap - k, "}");
  write_raw(path, json, NULL, 0);
  free(json);
  nn_st_file *f = nn_st_open(path, &err);
  CHECK(f && nn_st_count(f) == N);
  if (f) {
    clock_t c0 = clock();
    int ok = 1;
    for (int i = 0; i < N; i++) {
      snprintf(name, sizeof name, "t%d", i);
      ok &= nn_st_find(f, name) == N - 1 - i;
      nn_tensor *t = nn_st_read_tensor(f, name, &err);
      ok &= t && nn_tensor_numel(t) == 0;
      nn_tensor_free(t);
    }
    double s = (double)(clock() - c0) / CLOCKS_PER_SEC;
    CHECK(ok);
    CHECK(s < 3); /* about 0.05 s here (0.3 s under ASan); a scan per name: minutes */
    CHECK(nn_st_find(f, "t100000") == -1 && nn_st_find(f, "") == -1 && nn_st_find(f, "u") == -1);
  }
  nn_st_close(f);
  remove(path);
}

/* "__metadata__" names the metadata, never a tensor: a writer that let it through made a file
 * every reader refuses. Refused at the write, naming it; nothing is written. */
static void reserved_name(void) {
  char path[64], tmp[80], want[256];
  nn_error err;
  tmpname(path);
  remove(path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int64_t one = 1;
  nn_tensor *t = nn_tensor_new(1, &one, &err);
  nn_st_entry e[2] = {{"a", t}, {"__metadata__", t}};
  snprintf(want, sizeof want, "%s: tensor '__metadata__': the format reserves that name for the metadata", path);
  CHECK(nn_st_write(path, e, 2, NULL, &err) == NN_EINVAL && !strcmp(err.msg, want));
  CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0);
  const float x = 1;
  nn_st_raw r = {"__metadata__", "F32", 0, NULL, &x};
  CHECK(nn_st_write_raw(path, &r, 1, NULL, &err) == NN_EINVAL && !strcmp(err.msg, want));
  CHECK(access(path, F_OK) != 0);
  /* a name that only contains it is an ordinary name */
  e[1].name = "__metadata__.x";
  CHECK(nn_st_write(path, e, 2, NULL, &err) == NN_OK);
  nn_st_file *f = nn_st_open(path, &err);
  CHECK(f && nn_st_count(f) == 2 && nn_st_find(f, "__metadata__.x") >= 0);
  nn_st_close(f);
  nn_tensor_free(t);
  remove(path);
}

/* Numbers and strings as JSON spells them: no leading zero; an escaped surrogate pair is one
 * code point (4 bytes of UTF-8, the same name as the raw bytes), a lone surrogate is refused. */
static void json_spelling(void) {
  char path[64], want[256];
  nn_error err;
  tmpname(path);
  float v[2] = {1, 2};
  write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", v, 4);
  CHECK(nn_st_open(path, &err) == NULL && err.code == NN_EFORMAT);
  snprintf(want, sizeof want, "%s: tensor 'a': shape: 01 has a leading zero (not a JSON number)", path);
  CHECK(!strcmp(err.msg, want));
  write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[00,8]}}", v, 8);
  CHECK(nn_st_open(path, &err) == NULL && err.code == NN_EFORMAT);
  snprintf(want, sizeof want, "%s: tensor 'a': data_offsets: 00 has a leading zero (not a JSON number)", path);
  CHECK(!strcmp(err.msg, want));
  /* a zero alone is a number */
  write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]}}", v, 8);
  nn_st_file *f = nn_st_open(path, &err);
  CHECK(f && nn_st_count(f) == 2 && nn_st_numel(f, 0) == 0);
  nn_st_close(f);
  /* U+1F600 escaped as a pair, U+00E9 and U+20AC escaped, in a name and in the metadata */
  write_raw(path, "{\"__metadata__\":{\"k\":\"\\ud83d\\ude00\"},"
                  "\"\\ud83d\\ude00\\u00e9\\u20AC\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", v, 4);
  f = nn_st_open(path, &err);
  CHECK(f != NULL);
  CHECK(f && !strcmp(nn_st_name(f, 0), "\xF0\x9F\x98\x80\xC3\xA9\xE2\x82\xAC"));
  CHECK(f && nn_st_find(f, "\xF0\x9F\x98\x80\xC3\xA9\xE2\x82\xAC") == 0);
  CHECK(f && nn_st_meta(f, "k") && !strcmp(nn_st_meta(f, "k"), "\xF0\x9F\x98\x80"));
  nn_st_close(f);
  /* lone surrogates have no UTF-8 */
  static const char *const lone[][2] = {
      {"\\ud83d", "lone high surrogate"},        {"\\ud83dx", "lone high surrogate"},
      {"\\ud83d\\u0041", "lone high surrogate"}, {"\\ud83d\\ud83d", "lone high surrogate"},
      {"\\ude00", "lone low surrogate"},         {"a\\udfff\\ud83d", "lone low surrogate"},
      {"\\ud83d\\uzz00", "bad \\u escape"}};
  for (size_t i = 0; i < sizeof lone / sizeof *lone; i++) {
    char json[160];
    snprintf(json, sizeof json, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", lone[i][0]);
    write_raw(path, json, v, 4);
    CHECK(nn_st_open(path, &err) == NULL && err.code == NN_EFORMAT);
    snprintf(want, sizeof want, "%s: bad header JSON (%s in a \\u escape)", path, lone[i][1]);
    if (!strstr(lone[i][1], "surrogate")) snprintf(want, sizeof want, "%s: bad header JSON (%s)", path, lone[i][1]);
    if (strcmp(err.msg, want)) fprintf(stderr, "  %s: %s\n", lone[i][0], err.msg);
    CHECK(!strcmp(err.msg, want));
  }
  remove(path);
}

int main(void) {
  NN_TEST_RUN(round_trip);
  NN_TEST_RUN(dtypes);
  NN_TEST_RUN(bad_files);
  NN_TEST_RUN(fixture_f64);
  NN_TEST_RUN(many_names);
  NN_TEST_RUN(reserved_name);
  NN_TEST_RUN(json_spelling);
  return NN_TEST_END();
}
