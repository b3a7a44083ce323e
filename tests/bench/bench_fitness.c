/* bench_fitness.c: candidates per second of the QaFE pipeline (build, quantize, score;
 * docs/quantizer.md, docs/fitness.md, docs/search.md), run by scripts/bench-fitness. Prints figures; asserts nothing.
 *
 *   bench_fitness fm [candidates]     fashion-mnist preset, batch 64, T 5, FxP8, random neuronas
 *                                     cells: stage-2 style (fixed cell A) with and without the
 *                                     prefix cache, and stage-1 style (A = B, no reuse)
 *   bench_fitness cifar [candidates]  cifar100 preset, batch 256, T 5, 2 repeats, FxP8
 *   bench_fitness snas [candidates] [cells]
 *                                     SNASNet's setting scaled down: cifar100 preset, 16 channels,
 *                                     batch 32, T 5, 1 repeat, random SNASNet backward cells, FxP32,
 *                                     in a search's steady state (weight store warm, lists of nets);
 *                                     with a file of cells (one SNASNet matrix per line, as
 *                                     "0302 0030 3003 0000"), those cells in turn instead of random
 *                                     ones: the cells PyTorch scored in the same run
 *   bench_fitness kernel              the popcount kernel alone at the three sizes
 *   bench_fitness paper [threads]     paper size: cifar100 preset (128 / 256 channels), batch 256,
 *                                     T 5, 2 repeats, FxP32, SNASNet's README cell at both
 *                                     positions: one candidate on 1 and on `threads` (default 2)
 *                                     threads, stage 2 through the prefix cache, each in a child
 *                                     process whose peak RSS is printed; and at FxP8 (the
 *                                     search's default) with the conv's integer sums on and off;
 *                                     "paper.*" lines are read by scripts/bench-fitness --paper
 *   bench_fitness paper-space [threads]
 *                                     paper size, the neuronas space: seconds per candidate by
 *                                     conv3x3 edges per cell, stage 1 and stage 2, for the
 *                                     two-stage search estimate ("paper.s1_n*", "paper.s2_n*") */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "neuronas/nn_cell.h"
#include "neuronas/nn_fitness.h"
#include "neuronas/nn_quant.h"
#include "nn_ops.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Fashion-MNIST images first..first+n (the installed IDX file), normalised with the training
 * set's mean 0.2860 / std 0.3530; random normal values when the file is missing. */
static nn_tensor *fm_batch(int64_t n, int64_t first, const char **source) {
  nn_tensor *x = nn_tensor_new4(4, n, 1, 28, 28, NULL);
  gzFile f = gzopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
  unsigned char hdr[16], *px = malloc((size_t)(n * 784));
  int ok = f && px && gzread(f, hdr, 16) == 16 && gzseek(f, 16 + first * 784, SEEK_SET) >= 0 &&
           gzread(f, px, (unsigned)(n * 784)) == (int)(n * 784);
  if (ok) {
    for (int64_t i = 0; i < n * 784; i++)
      nn_tensor_data(x)[i] = (float)((px[i] / 255.0 - 0.2860) / 0.3530);
    *source = "Fashion-MNIST train images";
  } else {
    nn_rng r = nn_rng_seed((uint64_t)first + 1);
    nn_tensor_normal(x, &r, 0, 1);
    *source = "random normal inputs (Fashion-MNIST not installed)";
  }
  if (f) gzclose(f);
  free(px);
  return x;
}

/* Uniform pixels normalised with CIFAR-100's mean/std, as the SNASNet fixture's inputs. */
static nn_tensor *cifar_batch(int64_t n, uint64_t seed) {
  static const double mean[3] = {0.5071, 0.4865, 0.4409}, sd[3] = {0.2673, 0.2564, 0.2762};
  nn_tensor *x = nn_tensor_new4(4, n, 3, 32, 32, NULL);
  nn_rng r = nn_rng_seed(seed);
  float *d = nn_tensor_data(x);
  for (int64_t i = 0; i < n * 3 * 1024; i++) {
    int c = (int)((i / 1024) % 3);
    d[i] = (float)((nn_rng_uniform(&r) - mean[c]) / sd[c]);
  }
  return x;
}

/* A random neuronas cell: each forward edge skip / conv3x3 / avgpool3x3 (docs/model.md). */
static nn_cell neuronas_cell(nn_rng *r) {
  static const nn_op ops[3] = {NN_OP_SKIP, NN_OP_CONV3X3, NN_OP_AVGPOOL3X3};
  nn_cell c;
  memset(&c, 0, sizeof c);
  for (int e = 0; e < NN_CELL_EDGES; e++)
    c.m[NN_CELL_EDGE_FROM[e]][NN_CELL_EDGE_TO[e]] = (uint8_t)ops[nn_rng_below(r, 3)];
  return c;
}

/* SNASNet's random backward cell (docs/model.md): upper and lower random op matrices and a 0/1
 * choice per pair, then the reachability sanity pass; redrawn until M[0][3] != 0. */
static nn_cell snasnet_cell(nn_rng *r) {
  for (;;) {
    int M[4][4] = {{0}}, R[4][4] = {{0}}, P[4][4], Q[4][4];
    for (int i = 0; i < 4; i++)
      for (int j = i + 1; j < 4; j++) {
        int up = (int)nn_rng_below(r, 5), lo = (int)nn_rng_below(r, 5);
        if (nn_rng_below(r, 2)) M[i][j] = up;
        else M[j][i] = lo;
      }
    memcpy(P, M, sizeof P);
    for (int pw = 1; pw <= 4; pw++) { /* R = M + M^2 + M^3 + M^4 on the op codes */
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) R[i][j] += P[i][j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          Q[i][j] = 0;
          for (int k = 0; k < 4; k++) Q[i][j] += P[i][k] * M[k][j];
        }
      memcpy(P, Q, sizeof P);
    }
    int dead[4] = {0};
    for (int v = 0; v < 3; v++)
      if (R[v][3] == 0) dead[v] = 1;
    for (int v = 1; v < 4; v++)
      if (R[0][v] == 0) dead[v] = 1;
    for (int v = 0; v < 4; v++)
      if (dead[v])
        for (int k = 0; k < 4; k++) M[v][k] = M[k][v] = 0;
    if (M[0][3] == 0) continue;
    nn_cell c;
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) c.m[i][j] = (uint8_t)(M[i][j] ? nn_op_from_snasnet_code(M[i][j]) : 0);
    return c;
  }
}

/* CPU seconds of the whole process (all threads): on a shared machine the wall clock also
 * counts the time other processes held the cores. */
static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define MAX_WALLS 4096
typedef struct totals {
  double cpu_s;
  double build_s, forward_s, kernel_s, logdet_s, wall_s;
  int64_t n, hits, lif_calls;
  double score_sum;
  double walls[MAX_WALLS]; /* per candidate, for the median */
} totals;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median_wall(const totals *t) {
  int64_t n = t->n < MAX_WALLS ? t->n : MAX_WALLS;
  double *w = malloc((size_t)(n ? n : 1) * sizeof *w);
  if (!w || n == 0) return free(w), 0;
  memcpy(w, t->walls, (size_t)n * sizeof *w);
  qsort(w, (size_t)n, sizeof *w, cmp_double);
  double m = n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
  free(w);
  return m;
}

/* All CPUs' busy-or-idle ticks and the ticks the hypervisor gave to other guests (steal), from
 * /proc/stat's first line; 0 when unreadable. */
static void cpu_ticks(double *total, double *steal) {
  FILE *f = fopen("/proc/stat", "r");
  unsigned long long v[8] = {0};
  *total = *steal = 0;
  if (!f) return;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
             &v[7]) == 8) {
    for (int i = 0; i < 8; i++) *total += (double)v[i];
    *steal = (double)v[7];
  }
  fclose(f);
}

/* What decides the SNASNet-setting figures besides the code: the load on the machine (the wall
 * clock counts the time other processes held the cores; CPU seconds do not) and the SIMD level
 * the event-driven conv runs at (AVX-512 for tiles of 64+ channels, else AVX2). */
static void print_conditions(void) {
  double load[3] = {0, 0, 0};
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const char *simd = "baseline SSE2";
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) simd = "AVX-512";
  else if (__builtin_cpu_supports("avx2")) simd = "AVX2";
#endif
  if (getloadavg(load, 3) < 1) load[0] = -1;
  printf("  conditions: load average %.2f on %ld CPUs, event-driven conv at %s%s\n", load[0], cpus, simd,
         load[0] > 0.5 ? " (busy: wall times include other processes' turns; compare the CPU ms)" : "");
}

/* The share of the CPUs' time since (total0, steal0) that the hypervisor gave to other guests:
 * a machine with no other process can still lose its virtual CPUs, which only the wall clock sees. */
static void print_steal(double total0, double steal0) {
  double total, steal;
  cpu_ticks(&total, &steal);
  if (total > total0)
    printf("  steal (virtual CPUs lent to other guests) during the runs above: %.1f %% of CPU time\n",
           100 * (steal - steal0) / (total - total0));
}

/* One candidate: build (quantized from the store for bits < 32, as the search builds it), score
 * on the batches. */
static int g_threads; /* threads for one candidate (nn_fitness_opts.threads) */
static int candidate_ic(const nn_net_params *p, int bits, const nn_tensor *const *b, int R,
                        nn_fitness_cache *cache, nn_init_cache *ic, totals *t) {
  nn_error err;
  nn_fitness_diag d;
  double t0 = now_s(), c0 = cpu_s(), s;
  nn_quant_params qp = nn_quant_params_default();
  qp.bits = bits;
  nn_net *net = bits < 32 ? nn_net_new_quantized(p, ic, &qp, &err) : nn_net_new_cached(p, ic, &err);
  double t1 = now_s();
  nn_fitness_opts o = {.cache = cache, .threads = g_threads};
  int ok = net && nn_fitness_eval(net, b, R, &o, &s, &d, &err) == NN_OK;
  if (!ok) fprintf(stderr, "bench: %s\n", err.msg);
  nn_net_free(net);
  if (!ok) return 0;
  t->build_s += t1 - t0;
  t->forward_s += d.forward_s;
  t->kernel_s += d.kernel_s;
  t->logdet_s += d.logdet_s;
  if (t->n < MAX_WALLS) t->walls[t->n] = now_s() - t0;
  t->wall_s += now_s() - t0;
  t->cpu_s += cpu_s() - c0;
  t->hits += d.cache_hits;
  t->lif_calls += d.lif_calls;
  t->score_sum += s;
  t->n++;
  return 1;
}
static int candidate(const nn_net_params *p, int bits, const nn_tensor *const *b, int R,
                     nn_fitness_cache *cache, totals *t) {
  return candidate_ic(p, bits, b, R, cache, NULL, t);
}

static void print_totals(const char *what, const totals *t) {
  double n = (double)(t->n ? t->n : 1);
  printf("%-42s %7.2f cand/s %9.1f ms/cand wall (median %.1f), %9.1f ms cpu  (build, quantized, %.1f, "
         "forward %.1f, kernel %.1f, logdet %.2f ms; %lld prefix hits)\n",
         what, t->n / t->wall_s, 1e3 * t->wall_s / n, 1e3 * median_wall(t), 1e3 * t->cpu_s / n, 1e3 * t->build_s / n,
         1e3 * t->forward_s / n, 1e3 * t->kernel_s / n, 1e3 * t->logdet_s / n,
         (long long)t->hits);
  fflush(stdout);
}

static void bench_fm(int n) {
  const char *src;
  nn_tensor *x = fm_batch(64, 0, &src);
  const nn_tensor *b[1] = {x};
  nn_net_params p = nn_net_params_default(); /* fashion-mnist */
  nn_rng r = nn_rng_seed(42);
  nn_error err;
  printf("fashion-mnist preset (C=%lld, T=%lld), batch 64 of %s, FxP8, %d candidates each\n",
         (long long)p.channels, (long long)p.timesteps, src, n);
  p.cell_a = neuronas_cell(&r);
  totals a = {0}, c = {0}, s1 = {0};
  nn_rng rb = nn_rng_seed(7);
  for (int i = 0; i < n; i++) {
    p.cell_b = neuronas_cell(&rb);
    candidate(&p, 8, b, 1, NULL, &a);
  }
  print_totals("stage 2 (cell A fixed), no cache", &a);
  nn_fitness_cache *cache = nn_fitness_cache_new(NULL, &err);
  rb = nn_rng_seed(7);
  for (int i = 0; i < n; i++) {
    p.cell_b = neuronas_cell(&rb);
    candidate(&p, 8, b, 1, cache, &c);
  }
  print_totals("stage 2 (cell A fixed), prefix cache", &c);
  printf("  same scores with and without the cache: %s\n",
         a.score_sum == c.score_sum ? "yes (sums bit-identical)" : "NO");
  for (int i = 0; i < n; i++) {
    p.cell_a = p.cell_b = neuronas_cell(&rb);
    candidate(&p, 8, b, 1, NULL, &s1);
  }
  print_totals("stage 1 (A = B random), no reuse possible", &s1);
  double per1 = s1.wall_s / s1.n, per2 = c.wall_s / c.n;
  printf("  two-stage search estimate (729 + 729 candidates): %.1f s wall, %.1f s cpu\n",
         729 * per1 + 729 * per2, 729 * (s1.cpu_s / s1.n + c.cpu_s / c.n));
  nn_fitness_cache_free(cache);
  nn_tensor_free(x);
}

static void bench_cifar(int n) {
  nn_net_params p = nn_net_params_default();
  nn_error err;
  nn_net_params_preset(&p, "cifar100", &err);
  nn_tensor *x1 = cifar_batch(256, 1), *x2 = cifar_batch(256, 2);
  const nn_tensor *b[2] = {x1, x2};
  nn_rng r = nn_rng_seed(43);
  totals t = {0};
  printf("cifar100 preset (C=%lld), batch 256, T=5, 2 repeats, FxP8, random neuronas cells, "
         "%d candidate(s)\n", (long long)p.channels, n);
  for (int i = 0; i < n; i++) {
    p.cell_a = neuronas_cell(&r);
    p.cell_b = neuronas_cell(&r);
    candidate(&p, 8, b, 2, NULL, &t);
  }
  print_totals("cifar100, batch 256, 2 repeats", &t);
  nn_tensor_free(x1);
  nn_tensor_free(x2);
}

/* one list of n nets built on one thread (tb seconds), then scored by nn_fitness_many: w wall and
 * c CPU seconds in all */
static void print_list(const char *what, int n, double w, double c, double tb) {
  printf("%-42s %7.2f cand/s %9.1f ms/cand wall, %9.1f ms cpu  (build %.1f ms on one thread, then "
         "nn_fitness_many on 2 threads %.1f ms)\n",
         what, n / w, 1e3 * w / n, 1e3 * c / n, 1e3 * tb / n, 1e3 * (w - tb) / n);
}

/* The cells of bench_snas: read from a file (one SNASNet matrix per line), else drawn */
typedef struct snas_cells {
  nn_cell *cell;
  int count;
} snas_cells;

static int snas_cells_read(const char *path, snas_cells *sc) {
  FILE *f = fopen(path, "r");
  char line[256];
  nn_error err;
  if (!f) {
    fprintf(stderr, "bench_fitness: cannot open the cells file %s\n", path);
    return -1;
  }
  sc->cell = NULL, sc->count = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    nn_cell *grown = realloc(sc->cell, (size_t)(sc->count + 1) * sizeof *grown);
    if (!grown) {
      fprintf(stderr, "bench_fitness: out of memory reading %s\n", path);
      fclose(f);
      return -1;
    }
    sc->cell = grown;
    if (nn_cell_parse(line, NN_CELL_FORM_SNASNET, &sc->cell[sc->count], &err) != NN_OK) {
      fprintf(stderr, "bench_fitness: %s, line %d: %s\n", path, sc->count + 1, err.msg);
      fclose(f);
      return -1;
    }
    sc->count++;
  }
  fclose(f);
  if (sc->count == 0) fprintf(stderr, "bench_fitness: no cells in %s\n", path);
  return sc->count > 0 ? 0 : -1;
}

/* candidate i's cell: the file's cells in turn, or the next random one */
static nn_cell snas_cell(const snas_cells *sc, nn_rng *r, int i) {
  return sc->count ? sc->cell[i % sc->count] : snasnet_cell(r);
}

static void bench_snas(int n, const char *cells_path) {
  nn_net_params p = nn_net_params_default();
  nn_error err;
  snas_cells cells = {NULL, 0};
  if (cells_path && snas_cells_read(cells_path, &cells) != 0) exit(2);
  nn_net_params_preset(&p, "cifar100", &err);
  p.channels = 16;
  nn_tensor *x = cifar_batch(32, 5);
  const nn_tensor *b[1] = {x};
  nn_rng r = nn_rng_seed(44);
  totals t = {0}, u = {0};
  if (cells.count)
    printf("SNASNet setting: cifar100 preset with 16 channels, batch 32, T=5, 1 repeat, the %d SNASNet "
           "backward cells of %s in turn, FxP32, %d candidates\n", cells.count, cells_path, n);
  else
    printf("SNASNet setting: cifar100 preset with 16 channels, batch 32, T=5, 1 repeat, random "
           "SNASNet backward cells, FxP32, %d candidates (PyTorch: scripts/bench-fitness with SNASNET_DIR)\n", n);
  print_conditions();
  double tick0, steal0;
  cpu_ticks(&tick0, &steal0);
  /* as the search does: initial weights through a per-search store (bit-identical nets). A
   * search draws each weight tensor the first time a candidate needs it and never again (a
   * SNASNet search scores thousands of cells; its layers have a few dozen distinct tensors), so
   * the store is warmed first by building the nets of 40 other random cells, as the start of a
   * search does, and that one-time cost is printed on its own; the figures below are the
   * search's steady state (its store misses are printed with them). */
  nn_init_cache *ic = nn_init_cache_new(INT64_C(1) << 30, &err);
  nn_rng rw = nn_rng_seed(4444);
  double w0 = now_s();
  for (int i = 0; i < 40; i++) {
    p.cell_a = p.cell_b = snasnet_cell(&rw);
    nn_net_free(nn_net_new_cached(&p, ic, &err));
  }
  nn_init_cache_stats ws = nn_init_cache_stats_of(ic);
  printf("  weight store warm-up, once per search: %.0f ms (40 builds, %lld tensors drawn, %.1f MB)\n",
         1e3 * (now_s() - w0), (long long)ws.misses, (double)ws.bytes / 1048576.0);
  for (int i = 0; i < n; i++) {
    p.cell_a = p.cell_b = snas_cell(&cells, &r, i);
    candidate_ic(&p, 32, b, 1, NULL, ic, &t);
  }
  print_totals("SNASNet scaled-down search", &t);
  printf("  weight store misses in these %d candidates: %lld\n", n,
         (long long)(nn_init_cache_stats_of(ic).misses - ws.misses));
  /* the other way to use both cores: 2 threads inside each candidate (a wake-up and a wait per
   * layer call); the CPU beyond the one-thread figure is what the threads cost */
  totals t2 = {0};
  r = nn_rng_seed(44);
  g_threads = 2;
  for (int i = 0; i < n; i++) {
    p.cell_a = p.cell_b = snas_cell(&cells, &r, i);
    candidate_ic(&p, 32, b, 1, NULL, ic, &t2);
  }
  g_threads = 0;
  print_totals("  same, 2 threads inside each candidate", &t2);
  printf("  same scores with 2 threads per candidate: %s\n",
         t2.score_sum == t.score_sum ? "yes (sums bit-identical)" : "NO");
  r = nn_rng_seed(44);
  for (int i = 0; i < n; i++) {
    p.cell_a = p.cell_b = snas_cell(&cells, &r, i);
    candidate(&p, 32, b, 1, NULL, &u);
  }
  print_totals("  same, without the weight store", &u);
  printf("  same scores with and without the store: %s\n",
         t.score_sum == u.score_sum ? "yes (sums bit-identical)" : "NO");
  /* throughput on the machine's 2 cores, as the search scores (nn_fitness_many, one candidate
   * per thread; PyTorch's figures for the same cells: scripts/bench-fitness): the search builds a list of nets on one thread, scores them together and frees them, list after
   * list. The first lists fault in fresh pages for the nets' weights (8 MB each for the
   * classifier) until malloc keeps that memory; the steady state is the third list's figure,
   * and the first list's is printed too. */
  nn_net **nets = calloc((size_t)n, sizeof *nets);
  double *sc = calloc((size_t)n, sizeof *sc);
  double w = 0, c = 0, tb = 0, sum = 0;
  for (int list = 0; list < 3; list++) {
    r = nn_rng_seed(44);
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < n; i++) {
      p.cell_a = p.cell_b = snas_cell(&cells, &r, i);
      if (!(nets[i] = nn_net_new_cached(&p, ic, &err))) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return;
      }
    }
    tb = now_s() - t0;
    nn_fitness_many_opts mo = {2, NULL};
    if (nn_fitness_many(nets, (size_t)n, b, 1, &mo, sc, NULL, &err) != NN_OK) {
      fprintf(stderr, "bench: %s\n", err.msg);
      return;
    }
    w = now_s() - t0, c = cpu_s() - c0, sum = 0;
    for (int i = 0; i < n; i++) sum += sc[i], nn_net_free(nets[i]);
    if (list == 0) print_list("SNASNet scaled-down search, 2 cores, 1st", n, w, c, tb);
  }
  print_list("SNASNet scaled-down search, 2 cores", n, w, c, tb);
  printf("  same scores as one at a time: %s\n", sum == t.score_sum ? "yes (sums bit-identical)" : "NO");
  /* for scripts/bench-fitness's PyTorch comparison */
  printf("snas.ms1_wall=%.2f\nsnas.ms1_cpu=%.2f\nsnas.ms2_wall=%.2f\nsnas.ms2_cpu=%.2f\n", 1e3 * t.wall_s / n,
         1e3 * t.cpu_s / n, 1e3 * w / n, 1e3 * c / n);
  print_steal(tick0, steal0);
  free(nets), free(sc);
  nn_init_cache_free(ic);
  nn_tensor_free(x);
  free(cells.cell);
}

static void bench_kernel(void) {
  const int64_t cases[3][3] = {{64, 3136, 75}, {32, 16384, 75}, {256, 131072, 10}};
  for (int c = 0; c < 3; c++) {
    int64_t S = cases[c][0], N = cases[c][1], calls = cases[c][2], W = (N + 63) / 64;
    uint64_t *bits = malloc((size_t)(S * W) * 8);
    nn_rng r = nn_rng_seed(1);
    for (int64_t i = 0; i < S * W; i++) /* ~12 % firing */
      bits[i] = nn_rng_u64(&r) & nn_rng_u64(&r) & nn_rng_u64(&r);
    nn_kernel *k = nn_kernel_new(S, NULL);
    nn_spike_call call = {"bench.lif", 0, S, N, W, bits, 0};
    double t0 = now_s();
    for (int64_t i = 0; i < calls; i++) nn_kernel_add(k, &call, NULL);
    double t1 = now_s();
    printf("kernel S=%-4lld N=%-7lld %3lld calls: %8.2f ms (%.2f ms/call, %.2f G word-pairs/s)\n",
           (long long)S, (long long)N, (long long)calls, 1e3 * (t1 - t0),
           1e3 * (t1 - t0) / (double)calls,
           (double)S * (double)(S - 1) / 2 * (double)W * (double)calls / (t1 - t0) / 1e9);
    nn_kernel_free(k);
    free(bits);
  }
}

/* nn_fitness_many on n fashion-mnist candidates per stage, 1 vs 2 threads in the same run (the
 * nets are built through one initial-weight store and quantized once, serially, timed apart). */
static void bench_many(int n) {
  const char *src;
  nn_tensor *x = fm_batch(64, 0, &src);
  const nn_tensor *b[1] = {x};
  nn_net_params p = nn_net_params_default();
  nn_quant_params qp = nn_quant_params_default(); /* FxP8 */
  nn_net **nets = calloc((size_t)n, sizeof *nets);
  double *sc = calloc((size_t)n, sizeof *sc), *sc1 = calloc((size_t)n, sizeof *sc1);
  nn_error err;
  double est_wall[2] = {0, 0}, est_cpu[2] = {0, 0};
  nn_init_cache *ic = nn_init_cache_new((int64_t)1 << 28, &err);
  printf("fitness_many: fashion-mnist preset, batch 64 of %s, FxP8, %d candidates per stage\n", src, n);
  for (int stage = 1; stage <= 2; stage++) {
    nn_rng r = nn_rng_seed(42), rb = nn_rng_seed(7);
    double t0 = now_s(), c0 = cpu_s();
    p.cell_a = neuronas_cell(&r);
    for (int i = 0; i < n; i++) {
      p.cell_b = neuronas_cell(&rb);
      if (stage == 1) p.cell_a = p.cell_b;
      if (!(nets[i] = nn_net_new_quantized(&p, ic, &qp, &err))) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return;
      }
    }
    double bw = (now_s() - t0) / n, bc = (cpu_s() - c0) / n;
    printf("  stage %d: build, quantized (init cache)       %9.1f ms/cand wall, %9.1f ms cpu\n", stage,
           1e3 * bw, 1e3 * bc);
    for (int threads = 1; threads <= 2; threads++) {
      nn_fitness_cache *cache = stage == 2 ? nn_fitness_cache_new(NULL, &err) : NULL;
      nn_fitness_many_opts o = {threads, cache};
      t0 = now_s(), c0 = cpu_s();
      if (nn_fitness_many(nets, (size_t)n, b, 1, &o, threads == 1 ? sc1 : sc, NULL, &err) != NN_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return;
      }
      double w = (now_s() - t0) / n, c = (cpu_s() - c0) / n;
      printf("  stage %d: fitness_many, %d thread%s%s       %9.1f ms/cand wall, %9.1f ms cpu\n", stage,
             threads, threads > 1 ? "s" : " ", stage == 2 ? ", cache" : "       ", 1e3 * w, 1e3 * c);
      if (threads == 2) {
        est_wall[stage - 1] = 729 * (bw + w);
        est_cpu[stage - 1] = 729 * (bc + c);
        printf("    same scores with 1 and 2 threads: %s\n",
               memcmp(sc, sc1, (size_t)n * sizeof *sc) == 0 ? "yes (bit-identical)" : "NO");
      }
      nn_fitness_cache_free(cache);
    }
    for (int i = 0; i < n; i++) nn_net_free(nets[i]);
  }
  printf("  two-stage search estimate, 2 threads (729 + 729 candidates, serial build): %.1f s wall, %.1f s cpu\n",
         est_wall[0] + est_wall[1], est_cpu[0] + est_cpu[1]);
  free(nets), free(sc), free(sc1);
  nn_init_cache_free(ic);
  nn_tensor_free(x);
}

/* ---- paper size ---- */
/* CPU seconds of the calling thread: with the work split evenly, what one candidate's wall time
 * is when the process has the cores to itself (the caller runs its share and every serial part;
 * waiting for a slower worker is not counted, so it is a lower bound). */
static double thread_cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct paper_run {
  int ok;
  double wall_s, cpu_s, main_s, forward_s, kernel_s, score, hit_wall_s, hit_cpu_s, hit_main_s, hit_score;
  double cold_build_s; /* drawing every initial weight (the search's first candidate) */
  double first_s;      /* the first candidate's wall time (fresh pages; weights from the store) */
  int64_t hits;
  double rss_mib;
} paper_run;

/* Build p's net from the store ic, quantize it to FxP-bits (bits < 32), score it. */
static int paper_score(const nn_net_params *p, nn_init_cache *ic, int bits, const nn_tensor *const *b,
                       const nn_fitness_opts *o, double *score, nn_fitness_diag *d, nn_error *err) {
  nn_quant_params qp = nn_quant_params_default();
  qp.bits = bits;
  nn_net *net = bits < 32 ? nn_net_new_quantized(p, ic, &qp, err) : nn_net_new_cached(p, ic, err);
  const int ok = net && nn_fitness_eval(net, b, 2, o, score, d, err) == NN_OK;
  nn_net_free(net);
  return ok;
}

/* One case in a child process (its own peak RSS): build the net (A, B), quantize it to FxP-bits
 * (bits < 32; integer = 0 turns the conv's integer sums off, the float kernel's time) and score
 * it with `threads` threads; with `cell_b2`, a prefix cache is filled by (A, B) and then (A, B2),
 * a stage-2 candidate, is scored from it (timed apart: hit_*). Timed as a search's candidates
 * after its first: the net is built from a weight store that already holds its layers (stage 1
 * scores every cell at both positions, so every layer path is drawn early) and scored with
 * keep_memory after a candidate of the same size, whose pass buffers it reuses (without the
 * prefix cache, the same candidate scored once before: first_s). Drawing the weights, the
 * first candidate's extra cost, is timed apart (cold_build_s). */
static paper_run paper_case(const char *cell_a, const char *cell_b, const char *cell_b2, int threads, int bits,
                            int integer) {
  paper_run res;
  int fd[2];
  memset(&res, 0, sizeof res);
  if (pipe(fd) != 0) return res;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    nn_error err;
    nn_net_params p = nn_net_params_default();
    paper_run out;
    memset(&out, 0, sizeof out);
    close(fd[0]);
    nn_net_params_preset(&p, "cifar100", &err);
    nn_conv2d_events_set_integer(integer);
    nn_tensor *x1 = cifar_batch(256, 1), *x2 = cifar_batch(256, 2);
    const nn_tensor *b[2] = {x1, x2};
    nn_fitness_cache_params cp = nn_fitness_cache_params_default();
    nn_fitness_cache *cache = cell_b2 ? nn_fitness_cache_new(&cp, &err) : NULL;
    nn_fitness_opts o = {.cache = cache, .threads = threads, .keep_memory = 1}; /* as the search */
    nn_fitness_diag d;
    /* initial weights through a store, as the search builds its nets: stage 2's second net
     * draws only cell B's new convs */
    nn_init_cache *ic = nn_init_cache_new(INT64_C(1) << 31, &err);
    int ok = nn_cell_parse(cell_a, NN_CELL_FORM_AUTO, &p.cell_a, &err) == NN_OK &&
             nn_cell_parse(cell_b, NN_CELL_FORM_AUTO, &p.cell_b, &err) == NN_OK;
    double t0 = now_s();
    nn_net *net = ok ? nn_net_new_cached(&p, ic, &err) : NULL;
    out.cold_build_s = now_s() - t0;
    nn_net_free(net);
    if (ok && cell_b2) { /* stage 2's cell B was drawn (and quantized) in stage 1 too */
      nn_net_params p2 = p;
      nn_quant_params qp = nn_quant_params_default();
      qp.bits = bits;
      ok = nn_cell_parse(cell_b2, NN_CELL_FORM_AUTO, &p2.cell_b, &err) == NN_OK;
      nn_net_free(!ok ? NULL : bits < 32 ? nn_net_new_quantized(&p2, ic, &qp, &err) : nn_net_new_cached(&p2, ic, &err));
    }
    if (ok && !cell_b2) { /* a search's first candidate: its passes fault in fresh pages */
      t0 = now_s();
      ok = paper_score(&p, ic, bits, b, &o, &out.score, &d, &err);
      out.first_s = now_s() - t0;
    }
    double c0 = cpu_s(), m0 = thread_cpu_s();
    t0 = now_s();
    ok = ok && paper_score(&p, ic, bits, b, &o, &out.score, &d, &err);
    out.wall_s = now_s() - t0, out.cpu_s = cpu_s() - c0, out.main_s = thread_cpu_s() - m0;
    out.forward_s = d.forward_s, out.kernel_s = d.kernel_s;
    if (ok && cell_b2) {
      t0 = now_s(), c0 = cpu_s(), m0 = thread_cpu_s();
      ok = nn_cell_parse(cell_b2, NN_CELL_FORM_AUTO, &p.cell_b, &err) == NN_OK &&
           paper_score(&p, ic, bits, b, &o, &out.hit_score, &d, &err);
      out.hit_wall_s = now_s() - t0, out.hit_cpu_s = cpu_s() - c0, out.hit_main_s = thread_cpu_s() - m0;
      out.hits = d.cache_hits;
    }
    if (!ok) fprintf(stderr, "bench: %s\n", err.msg);
    nn_fitness_release_memory();
    out.ok = ok;
    nn_fitness_cache_free(cache);
    nn_init_cache_free(ic);
    nn_tensor_free(x1);
    nn_tensor_free(x2);
    _exit(write(fd[1], &out, sizeof out) == (ssize_t)sizeof out && ok ? 0 : 1);
  }
  close(fd[1]);
  if (pid < 0) {
    close(fd[0]);
    return res;
  }
  ssize_t got = read(fd[0], &res, sizeof res);
  close(fd[0]);
  int status;
  struct rusage ru;
  wait4(pid, &status, 0, &ru);
  if (got != (ssize_t)sizeof res || !WIFEXITED(status) || WEXITSTATUS(status) != 0) res.ok = 0;
  res.rss_mib = (double)ru.ru_maxrss / 1024.0;
  return res;
}

static void bench_paper(int threads) {
  static const char *cell = "0302 0030 3003 0000", *cell2 = "0303 0030 2002 0200";
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 1) load[0] = -1;
  printf("paper size: cifar100 preset (128 / 256 channels), batch 256, T=5, 2 repeats, FxP32, cell %s at "
         "both positions (SNASNet's README cell); load average %.2f at the start\n", cell, load[0]);
  paper_run one = paper_case(cell, cell, NULL, 1, 32, 1);
  paper_run two = paper_case(cell, cell, NULL, threads, 32, 1);
  paper_run st2 = paper_case(cell, cell, cell2, threads, 32, 1);
  paper_run q8 = paper_case(cell, cell, NULL, threads, 8, 1);
  paper_run q8f = paper_case(cell, cell, NULL, threads, 8, 0);
  paper_run q8s2 = paper_case(cell, cell, cell2, threads, 8, 1);
  if (!one.ok || !two.ok || !st2.ok || !q8.ok || !q8f.ok || !q8s2.ok) {
    printf("paper: a case failed (see above)\n");
    return;
  }
  printf("  (wall: elapsed time; cpu: all threads; caller: the calling thread's CPU, which is the wall time\n"
         "   when the process has its cores to itself, and what to compare on a busy machine)\n");
  printf("  (a candidate as a search scores it after its first: built from the weight store, which holds its\n"
         "   layers, and scored on the pass buffers the previous candidate kept (keep_memory); a search's\n"
         "   first candidate took %.2f s on 1 thread and %.2f s on %d (fresh pages), plus %.2f s of weight draws)\n",
         one.first_s, two.first_s, threads, one.cold_build_s);
  printf("  one candidate, 1 thread    %7.2f s wall, %6.2f s cpu, %6.2f s caller (forward %.2f, kernel %.2f wall), "
         "peak RSS %.0f MiB\n",
         one.wall_s, one.cpu_s, one.main_s, one.forward_s, one.kernel_s, one.rss_mib);
  printf("  one candidate, %d threads   %7.2f s wall, %6.2f s cpu, %6.2f s caller (forward %.2f, kernel %.2f wall), "
         "peak RSS %.0f MiB; 1 thread / %d threads: %.2fx wall, %.2fx caller\n",
         threads, two.wall_s, two.cpu_s, two.main_s, two.forward_s, two.kernel_s, two.rss_mib, threads,
         one.wall_s / two.wall_s, one.main_s / two.main_s);
  printf("  same score with 1 and %d threads: %s (%.17g)\n", threads,
         memcmp(&one.score, &two.score, sizeof one.score) == 0 ? "yes (bit-identical)" : "NO", one.score);
  printf("  stage 2, %d threads: prefix computed %.2f s wall; next cell B (%s) from the prefix cache %.2f s wall, "
         "%.2f s cpu, %.2f s caller (%lld prefix hits); peak RSS %.0f MiB with one cached prefix\n",
         threads, st2.wall_s, cell2, st2.hit_wall_s, st2.hit_cpu_s, st2.hit_main_s, (long long)st2.hits, st2.rss_mib);
  printf("  FxP8 (the search's default), quantizing included, %d threads: %.2f s wall, %.2f s cpu, %.2f s caller "
         "(integer conv sums); %.2f s wall, %.2f s cpu, %.2f s caller with them off (float kernel): %.2fx wall; "
         "same score: %s (%.17g)\n",
         threads, q8.wall_s, q8.cpu_s, q8.main_s, q8f.wall_s, q8f.cpu_s, q8f.main_s, q8f.wall_s / q8.wall_s,
         memcmp(&q8.score, &q8f.score, sizeof q8.score) == 0 ? "yes (bit-identical)" : "NO", q8.score);
  printf("  FxP8 stage 2, %d threads: next cell B from the prefix cache %.2f s wall, %.2f s cpu, %.2f s caller "
         "(%lld prefix hits)\n",
         threads, q8s2.hit_wall_s, q8s2.hit_cpu_s, q8s2.hit_main_s, (long long)q8s2.hits);
  /* for the search estimate: wall times, or the callers' CPU when the machine is busy: one
   * thread got less than its core, or with more threads the wall exceeds the calling thread's
   * CPU (a core taken by other processes: the candidate waited for its worker) */
  const int busy = one.wall_s > 1.2 * one.cpu_s || two.wall_s > 1.2 * two.main_s ||
                   st2.hit_wall_s > 1.2 * st2.hit_main_s || q8.wall_s > 1.2 * q8.main_s ||
                   q8s2.hit_wall_s > 1.2 * q8s2.hit_main_s;
  if (busy && one.wall_s <= 1.2 * one.cpu_s)
    printf("  the machine is busy: with %d threads the wall time (%.2f s) exceeds the calling thread's CPU (%.2f s),\n"
           "  other processes held the second core; the calling thread's CPU is the time with the cores to ourselves\n",
           threads, two.wall_s, two.main_s);
  printf("paper.t2_wall_s=%.3f\npaper.t2_cpu_s=%.3f\npaper.t2_caller_s=%.3f\n", two.wall_s, two.cpu_s, two.main_s);
  printf("paper.q8_t2_s=%.3f\npaper.q8_stage2_s=%.3f\n", busy ? q8.main_s : q8.wall_s,
         busy ? q8s2.hit_main_s : q8s2.hit_wall_s);
  printf("paper.t1_s=%.3f\npaper.t2_s=%.3f\npaper.stage2_s=%.3f\npaper.rss_mib=%.0f\npaper.threads=%d\npaper.basis=%s\n",
         busy ? one.main_s : one.wall_s, busy ? two.main_s : two.wall_s, busy ? st2.hit_main_s : st2.hit_wall_s,
         st2.rss_mib > two.rss_mib ? st2.rss_mib : two.rss_mib, threads,
         busy ? "calling-thread CPU (machine busy)" : "wall");
}

/* The neuronas space at paper size, by conv3x3 count, for the search estimate
 * (scripts/bench-fitness-paper.lua): a candidate's costs depend on how many of a cell's six edges
 * are conv3x3 (the others are skip or avgpool3x3), and so, nearly, does its scoring time. For
 * each count n the cell "n conv3x3, then skip and avgpool3x3 in turn" is scored as a search
 * scores its candidates after the first (FxP8 as the search's default, built from a warm weight
 * store, keep_memory, `threads` threads): stage 1 at both positions, stage 2 as cell B after a
 * fixed cell A whose prefix the cache holds. Prints "paper.s1_n<k>" and "paper.s2_n<k>" seconds:
 * wall, or the calling thread's CPU where the wall exceeds it by 20 % (a busy machine). */
static void bench_paper_space(int threads) {
  static const char *fixed_a = "conv3x3 skip avgpool3x3 conv3x3 skip avgpool3x3"; /* stage 2's A */
  nn_error err;
  nn_net_params p = nn_net_params_default();
  nn_net_params_preset(&p, "cifar100", &err);
  nn_tensor *x1 = cifar_batch(256, 1), *x2 = cifar_batch(256, 2);
  const nn_tensor *b[2] = {x1, x2};
  nn_fitness_cache_params cp = nn_fitness_cache_params_default();
  nn_fitness_cache *cache = nn_fitness_cache_new(&cp, &err);
  nn_init_cache *ic = nn_init_cache_new(INT64_C(1) << 31, &err);
  nn_quant_params qp = nn_quant_params_default();
  qp.bits = 8;
  nn_cell cells[7], a;
  int ok = cache && ic && nn_cell_parse(fixed_a, NN_CELL_FORM_NAMES, &a, &err) == NN_OK;
  for (int n = 0; n <= 6 && ok; n++) {
    char text[128] = "";
    for (int e = 0, rest = 0; e < 6; e++) {
      strcat(text, e < n ? "conv3x3" : rest++ % 2 ? "avgpool3x3" : "skip");
      if (e < 5) strcat(text, " ");
    }
    ok = nn_cell_parse(text, NN_CELL_FORM_NAMES, &cells[n], &err) == NN_OK;
  }
  /* every layer drawn (and quantized) once, as stage 1 does early; then one untimed candidate,
   * whose pass buffers the timed ones reuse */
  for (int n = 0; n <= 6 && ok; n++) {
    nn_net *net;
    p.cell_a = p.cell_b = cells[n];
    ok = (net = nn_net_new_quantized(&p, ic, &qp, &err)) != NULL;
    nn_net_free(net);
  }
  printf("paper size, the neuronas space by conv3x3 edges per cell (cifar100 preset, batch 256, T=5, 2 repeats, "
         "FxP8, %d threads; each count's cell: n conv3x3, then skip and avgpool3x3 in turn; stage 2: A = %s from "
         "the prefix cache)\n", threads, fixed_a);
  for (int stage = 0; stage <= 2 && ok; stage++) {
    /* stage 0: the untimed first candidate; stage 2 starts by filling the cache with (A, A) */
    for (int n = stage == 0 ? 6 : stage == 2 ? -1 : 0; n <= 6 && ok; n++) {
      nn_fitness_opts o = {.cache = stage == 2 ? cache : NULL, .threads = threads, .keep_memory = 1};
      nn_fitness_diag d;
      double score, t0 = now_s(), m0 = thread_cpu_s();
      p.cell_a = stage == 2 ? a : cells[n < 0 ? 0 : n];
      p.cell_b = n < 0 ? a : cells[n];
      nn_net *q = nn_net_new_quantized(&p, ic, &qp, &err);
      ok = q && nn_fitness_eval(q, b, 2, &o, &score, &d, &err) == NN_OK;
      const double wall = now_s() - t0, main = thread_cpu_s() - m0;
      nn_net_free(q);
      if (!ok || stage == 0 || n < 0) continue;
      printf("  stage %d, %d conv3x3 per cell: %6.2f s wall, %6.2f s caller%s\n", stage, n, wall, main,
             stage == 2 ? (d.cache_hits ? " (prefix from the cache)" : " (NO prefix hit)") : "");
      printf("paper.s%d_n%d=%.3f\n", stage, n, wall > 1.2 * main ? main : wall);
    }
  }
  if (!ok) fprintf(stderr, "bench: %s\n", err.msg);
  nn_fitness_release_memory();
  nn_fitness_cache_free(cache);
  nn_init_cache_free(ic);
  nn_tensor_free(x1);
  nn_tensor_free(x2);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "fm";
  int n = argc > 2 ? atoi(argv[2]) : 0;
  if (!strcmp(what, "fm")) bench_fm(n > 0 ? n : 40);
  else if (!strcmp(what, "cifar")) bench_cifar(n > 0 ? n : 1);
  else if (!strcmp(what, "snas")) bench_snas(n > 0 ? n : 40, argc > 3 ? argv[3] : NULL);
  else if (!strcmp(what, "kernel")) bench_kernel();
  else if (!strcmp(what, "many")) bench_many(n > 0 ? n : 40);
  else if (!strcmp(what, "paper")) bench_paper(n > 1 ? n : 2);
  else if (!strcmp(what, "paper-space")) bench_paper_space(n > 0 ? n : 2);
  else {
    fprintf(stderr, "usage: bench_fitness fm|cifar|kernel|many [candidates] | snas [candidates [cells-file]] | "
                    "paper [threads] | paper-space [threads]\n");
    return 2;
  }
  return 0;
}
