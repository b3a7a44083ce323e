/* nn_fitness_eval.c: scoring a net (docs/fitness.md) from the spike observer of its forward pass,
 * with the stage-2 prefix cache (docs/search.md): the cell-B inputs of all T steps and the kernel
 * summed over the prefix LIF calls, keyed by what the prefix depends on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "neuronas/nn_fitness.h"
#include "neuronas/nn_blas.h"
#include "nn_fitness_impl.h"
#include "nn_net_impl.h"
#include "nn_scratch.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- per-module spike statistics ---- */
typedef struct mod_list {
  int n;
  nn_fitness_module m[NN_FITNESS_MAX_MODULES];
} mod_list;

static void mod_add(int *n, nn_fitness_module *m, const char *name, int64_t calls, int64_t fired,
                    int64_t neurons) {
  int i;
  for (i = 0; i < *n; i++)
    if (strcmp(m[i].name, name) == 0) break;
  if (i == *n) {
    if (*n == NN_FITNESS_MAX_MODULES) return; /* more modules than any macro-architecture has */
    memset(&m[i], 0, sizeof m[i]);
    snprintf(m[i].name, sizeof m[i].name, "%s", name);
    m[i].neurons = neurons;
    (*n)++;
  }
  m[i].calls += calls;
  m[i].fired += fired;
}

/* ---- the observer ---- */
typedef struct obs {
  nn_kernel *k;
  nn_par *par;      /* the kernel's threads (NULL: the calling thread) */
  mod_list *mods;   /* where this phase's module statistics go */
  int64_t calls;    /* LIF calls seen */
  double kernel_s;  /* seconds inside nn_kernel_add */
  nn_spike_fn also; /* the caller's observer (nn_fitness_opts.on_spikes), or NULL */
  void *also_ud;
  nn_status st;
  nn_error err;
} obs;

static void on_spikes(void *ud, const nn_spike_call *c) {
  obs *o = ud;
  double t0;
  if (o->st != NN_OK) return;
  t0 = now_s();
  o->st = nn_kernel_add_par(o->k, c, o->par, &o->err);
  o->kernel_s += now_s() - t0;
  o->calls++;
  mod_add(&o->mods->n, o->mods->m, c->module ? c->module : "?", 1, c->fired, c->neurons);
  if (o->also && o->st == NN_OK) o->also(o->also_ud, c);
}

/* ---- the cache ---- */
typedef struct ckey {
  nn_cell cell_a;
  int64_t in_ch, in_h, in_w, channels, stem_stride, timesteps;
  double tau, threshold;
  uint64_t seed;
  int64_t bits;
  uint64_t wh[2];            /* prefix layers' weights */
  uint64_t xh[2];            /* input batch */
  int64_t xshape[4], xndim;
} ckey;

/* One prefix result: the cell-B inputs of all T steps, the kernel summed over the prefix LIF
 * calls and their statistics. Reference-counted, because a cache entry and the jobs of
 * nn_fitness_many that read it may outlive each other; counts change on the calling thread
 * only (workers read a ready result or fill the one they produce). */
typedef struct pres {
  nn_tensor *cellb_in;
  nn_kernel *k;              /* prefix kernel sum */
  int64_t calls;
  mod_list mods;
  int refs;
  int ready;                 /* filled by a finished prefix forward */
} pres;

static pres *pres_new(void) {
  pres *p = calloc(1, sizeof *p);
  if (p) p->refs = 1;
  return p;
}

static pres *pres_ref(pres *p) {
  p->refs++;
  return p;
}

static void pres_unref(pres *p) {
  if (!p || --p->refs > 0) return;
  nn_tensor_free(p->cellb_in);
  nn_kernel_free(p->k);
  free(p);
}

typedef struct centry {
  ckey key;
  pres *r;                   /* one reference */
  int64_t bytes;
  uint64_t used;             /* LRU tick */
} centry;

struct nn_fitness_cache {
  nn_fitness_cache_params p;
  centry *e;                 /* p.max_entries slots, n used */
  int64_t n, bytes, hits, misses, evictions;
  uint64_t tick;
};

nn_fitness_cache_params nn_fitness_cache_params_default(void) {
  nn_fitness_cache_params p = {8, (int64_t)1 << 30};
  return p;
}

nn_fitness_cache *nn_fitness_cache_new(const nn_fitness_cache_params *p, nn_error *err) {
  nn_fitness_cache_params d = nn_fitness_cache_params_default();
  nn_fitness_cache *c;
  if (!p) p = &d;
  if (p->max_entries < 1 || p->max_entries > 1000000) {
    nn_fail(err, NN_EINVAL, "fitness cache: max_entries=%lld outside 1..1000000",
            (long long)p->max_entries);
    return NULL;
  }
  if (p->max_bytes < 0) {
    nn_fail(err, NN_EINVAL, "fitness cache: max_bytes=%lld is negative", (long long)p->max_bytes);
    return NULL;
  }
  c = calloc(1, sizeof *c);
  if (c) c->e = calloc((size_t)p->max_entries, sizeof *c->e);
  if (!c || !c->e) {
    free(c);
    nn_fail(err, NN_ENOMEM, "fitness cache: out of memory");
    return NULL;
  }
  c->p = *p;
  return c;
}

static void entry_free(centry *e) {
  pres_unref(e->r);
  memset(e, 0, sizeof *e);
}

void nn_fitness_cache_clear(nn_fitness_cache *c) {
  if (!c) return;
  for (int64_t i = 0; i < c->n; i++) entry_free(&c->e[i]);
  c->n = 0;
  c->bytes = 0;
}

void nn_fitness_cache_free(nn_fitness_cache *c) {
  if (!c) return;
  nn_fitness_cache_clear(c);
  free(c->e);
  free(c);
}

nn_fitness_cache_stats nn_fitness_cache_stats_of(const nn_fitness_cache *c) {
  nn_fitness_cache_stats s;
  memset(&s, 0, sizeof s);
  if (!c) return s;
  s.hits = c->hits;
  s.misses = c->misses;
  s.evictions = c->evictions;
  s.entries = c->n;
  s.bytes = c->bytes;
  s.params = c->p;
  return s;
}

/* Two 64-bit lanes over the bytes of p (whole 8-byte words, then the tail), finalized with
 * SplitMix64's mixer: a 128-bit content fingerprint (not cryptographic). */
static void hash_bytes(uint64_t h[2], const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t a = h[0], c = h[1];
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, b + i, 8);
    a = (a ^ v) * 0x9E3779B97F4A7C15ull;
    a ^= a >> 31;
    c = (c + v) * 0xC2B2AE3D27D4EB4Full;
    c ^= c >> 29;
  }
  for (; i < n; i++) {
    a = (a ^ b[i]) * 0x100000001B3ull;
    c = (c + b[i]) * 0xFF51AFD7ED558CCDull;
  }
  h[0] = nn_rng_mix64(a ^ n);
  h[1] = nn_rng_mix64(c + n);
}

static int is_prefix_layer(const char *name) {
  return strncmp(name, "stem.", 5) == 0 || strncmp(name, "cellA.", 6) == 0 ||
         strncmp(name, "downconv.", 9) == 0;
}

static int is_running_stat(const char *name) {
  return strstr(name, ".running_") != NULL;
}

static void make_key(nn_net *net, const nn_tensor *x, ckey *k) {
  const nn_net_params *p = nn_net_params_of(net);
  memset(k, 0, sizeof *k);
  k->cell_a = p->cell_a;
  k->in_ch = p->in_ch;
  k->in_h = p->in_h;
  k->in_w = p->in_w;
  k->channels = p->channels;
  k->stem_stride = p->stem_stride;
  k->timesteps = p->timesteps;
  k->tau = p->tau;
  k->threshold = p->threshold;
  k->seed = p->seed;
  k->bits = nn_net_weight_bits(net);
  k->wh[0] = 0x243F6A8885A308D3ull;
  k->wh[1] = 0x13198A2E03707344ull;
  /* every stored tensor of the prefix that a training-mode forward reads: conv weights and
   * BN affine parameters (running statistics are only written in training mode) */
  for (size_t i = 0; i < nn_net_tensor_count(net); i++) {
    const char *name = nn_net_tensor_name(net, i);
    const nn_tensor *t = nn_net_tensor(net, i);
    if (!name || !t || !is_prefix_layer(name) || is_running_stat(name)) continue;
    hash_bytes(k->wh, name, strlen(name));
    hash_bytes(k->wh, nn_tensor_cdata(t), (size_t)nn_tensor_numel(t) * sizeof(float));
  }
  k->xndim = nn_tensor_ndim(x);
  for (int i = 0; i < 4; i++) k->xshape[i] = nn_tensor_dim(x, i);
  k->xh[0] = 0xA4093822299F31D0ull;
  k->xh[1] = 0x082EFA98EC4E6C89ull;
  hash_bytes(k->xh, nn_tensor_cdata(x), (size_t)nn_tensor_numel(x) * sizeof(float));
}

static int key_eq(const ckey *a, const ckey *b) {
  return memcmp(&a->cell_a, &b->cell_a, sizeof a->cell_a) == 0 && a->in_ch == b->in_ch &&
         a->in_h == b->in_h && a->in_w == b->in_w && a->channels == b->channels &&
         a->stem_stride == b->stem_stride && a->timesteps == b->timesteps &&
         a->tau == b->tau && a->threshold == b->threshold && a->seed == b->seed &&
         a->bits == b->bits && a->wh[0] == b->wh[0] && a->wh[1] == b->wh[1] &&
         a->xh[0] == b->xh[0] && a->xh[1] == b->xh[1] && a->xndim == b->xndim &&
         memcmp(a->xshape, b->xshape, sizeof a->xshape) == 0;
}

static centry *cache_find(nn_fitness_cache *c, const ckey *k) {
  for (int64_t i = 0; i < c->n; i++)
    if (key_eq(&c->e[i].key, k)) {
      c->e[i].used = ++c->tick;
      return &c->e[i];
    }
  return NULL;
}

static void evict_lru(nn_fitness_cache *c) {
  int64_t v = 0;
  for (int64_t i = 1; i < c->n; i++)
    if (c->e[i].used < c->e[v].used) v = i;
  c->bytes -= c->e[v].bytes;
  entry_free(&c->e[v]);
  c->e[v] = c->e[c->n - 1];
  memset(&c->e[c->n - 1], 0, sizeof c->e[0]);
  c->n--;
  c->evictions++;
}

/* Bytes a prefix result of net on batch x takes in the cache. */
static int64_t entry_bytes(const nn_net *net, const nn_tensor *x) {
  const nn_net_params *p = nn_net_params_of(net);
  int64_t S = nn_tensor_dim(x, 0), cellb = p->timesteps * S * 2 * p->channels * net->plan.h1 * net->plan.w1;
  return cellb * (int64_t)sizeof(float) + S * S * (int64_t)sizeof(double) +
         (int64_t)(sizeof(centry) + sizeof(pres));
}

/* Stores a (possibly not yet ready) prefix result under key, taking one more reference to r.
 * Does nothing when the entry is bigger than max_bytes. */
static void cache_put(nn_fitness_cache *c, const ckey *key, pres *r, int64_t bytes) {
  if (bytes > c->p.max_bytes) return;
  while (c->n > 0 && (c->n >= c->p.max_entries || c->bytes + bytes > c->p.max_bytes))
    evict_lru(c);
  centry *e = &c->e[c->n];
  memset(e, 0, sizeof *e);
  e->key = *key;
  e->r = pres_ref(r);
  e->bytes = bytes;
  e->used = ++c->tick;
  c->n++;
  c->bytes += bytes;
}

/* Drops the entries whose prefix was never computed (a failed or interrupted nn_fitness_many). */
static void cache_drop_unready(nn_fitness_cache *c) {
  for (int64_t i = c->n - 1; i >= 0; i--)
    if (!c->e[i].r->ready) {
      c->bytes -= c->e[i].bytes;
      entry_free(&c->e[i]);
      c->e[i] = c->e[c->n - 1];
      memset(&c->e[c->n - 1], 0, sizeof c->e[0]);
      c->n--;
    }
}

/* ---- BN running statistics: a training-mode forward updates them; scoring must not change
 * the net (and must leave it the same with and without a cache hit), so they are saved
 * before and restored after. ---- */
typedef struct saved_stats {
  size_t n;
  nn_tensor **t;   /* the net's tensors */
  nn_tensor **copy;
} saved_stats;

static void stats_restore_free(saved_stats *s) {
  for (size_t i = 0; i < s->n; i++)
    if (s->copy[i]) {
      nn_tensor_copy(s->t[i], s->copy[i], NULL);
      nn_tensor_free(s->copy[i]);
    }
  free(s->t);
  free(s->copy);
  memset(s, 0, sizeof *s);
}

static nn_status stats_save(nn_net *net, saved_stats *s, nn_error *err) {
  size_t n = nn_net_tensor_count(net);
  memset(s, 0, sizeof *s);
  s->t = calloc(n ? n : 1, sizeof *s->t);
  s->copy = calloc(n ? n : 1, sizeof *s->copy);
  if (!s->t || !s->copy) goto oom;
  for (size_t i = 0; i < n; i++) {
    const char *name = nn_net_tensor_name(net, i);
    if (!name || !is_running_stat(name)) continue;
    s->t[s->n] = nn_net_tensor(net, i);
    if (!(s->copy[s->n] = nn_tensor_clone(s->t[s->n], NULL))) goto oom;
    s->n++;
  }
  return NN_OK;
oom:
  stats_restore_free(s);
  return nn_fail(err, NN_ENOMEM, "fitness: out of memory");
}

/* ---- memory: a big net's passes reuse each other's pages ----
 * Through malloc every map of a cifar-sized pass (134 MB at batch 256) is fresh memory whose
 * pages the kernel zeroes on first touch: a sixth of a paper-size candidate's CPU time went to
 * page faults. While such a net is scored, the scoring thread's scratch cache may keep about one
 * pass's buffers, so the second repeat, the suffix and the next pass take the prefix's pages
 * again; the budget is restored (and the cache trimmed) when the scoring returns. Small nets
 * (the fashion default) stay under the default budget and are not affected. */
#define SCRATCH_RAISE_MIN ((size_t)256 << 20)

/* Bytes the buffers of one pass of net at batch S take, about: the cell-A maps (4 node and 3
 * backward states), one LIF state per LIF module, the stem output, the conv/pool scratch
 * (2 maps) and the cell-B inputs of all steps. */
static size_t pass_bytes(const nn_net *net, int64_t S) {
  const double map = (double)S * (double)net->plan.p.channels * (double)(net->plan.h0 * net->plan.w0) * sizeof(float);
  const double b = map * (double)(7 + net->plan.nlifs + 1 + 2) + map / 2 * (double)net->plan.p.timesteps;
  return b > 1e15 ? (size_t)1e15 : (size_t)b;
}

/* The budget to restore when a call with keep_memory left a raised one in place (0: none). */
static _Thread_local size_t kept_base;

/* Raises the calling thread's scratch budget for net at batch S; returns the budget to restore
 * (0: nothing raised). */
static size_t scratch_raise(const nn_net *net, int64_t S) {
  const size_t want = pass_bytes(net, S);
  if (want < SCRATCH_RAISE_MIN) return 0;
  const size_t old = nn_scratch_set_limit(want);
  return kept_base ? kept_base : old;
}

/* Ends a call's raise: restores the budget (freeing the cached blocks above it), or with keep
 * leaves it for the next call. */
static void scratch_restore(size_t old, int keep) {
  const size_t base = old ? old : kept_base;
  if (!base) return;
  if (keep) {
    kept_base = base;
  } else {
    nn_scratch_set_limit(base);
    kept_base = 0;
  }
}

void nn_fitness_release_memory(void) { scratch_restore(0, 0); }

/* ---- scoring ---- */
static void merge_mods(nn_fitness_diag *d, const mod_list *m) {
  for (int i = 0; i < m->n; i++)
    mod_add(&d->modules, d->module, m->m[i].name, m->m[i].calls, m->m[i].fired,
            m->m[i].neurons);
}

/* Runs the prefix of net on x into r (kernel, cell-B inputs, call statistics); r->ready on
 * success. stem: the once steps' output on x, shared by nets with the same stem (NULL: run
 * them). Timings go to d. par: the threads for the forward and the kernel (NULL: one).
 * also (may be NULL): the caller's observer, handed every LIF call too. */
static nn_status run_prefix(nn_net *net, const nn_tensor *x, const nn_tensor *stem, pres *r, nn_fitness_diag *d,
                            nn_par *par, const nn_fitness_opts *also, nn_error *err) {
  nn_forward_opts fo;
  obs o;
  nn_status st;
  double t0;
  if (!r->k && !(r->k = nn_kernel_new(nn_tensor_dim(x, 0), err))) return NN_ENOMEM;
  memset(&o, 0, sizeof o);
  memset(&fo, 0, sizeof fo);
  o.k = r->k;
  o.mods = &r->mods;
  o.par = par;
  if (also) o.also = also->on_spikes, o.also_ud = also->spikes_ud;
  fo.threads = nn_par_threads(par);
  fo.train = 1;
  fo.on_spikes = on_spikes;
  fo.ud = &o;
  fo.spikes_only = 1;
  t0 = now_s();
  st = nn_net_forward_prefix_stem(net, x, stem, &fo, &r->cellb_in, err);
  d->forward_s += now_s() - t0 - o.kernel_s;
  d->kernel_s += o.kernel_s;
  if (st == NN_OK && o.st != NN_OK) st = nn_fail(err, o.st, "fitness: %s", o.err.msg);
  r->calls = o.calls;
  r->ready = st == NN_OK;
  return st;
}

/* One repeat from a ready prefix result: k = the prefix kernel plus every suffix LIF call. */
static nn_status run_suffix(nn_net *net, const pres *r, nn_kernel *k, nn_fitness_diag *d,
                            nn_par *par, const nn_fitness_opts *also, nn_error *err) {
  nn_forward_opts fo;
  mod_list *suf = calloc(1, sizeof *suf);
  nn_tensor *out = NULL;
  obs o;
  nn_status st;
  double t0;
  if (!suf) return nn_fail(err, NN_ENOMEM, "fitness: out of memory");
  nn_kernel_copy(k, r->k, NULL);
  d->lif_calls += r->calls;
  merge_mods(d, &r->mods);
  memset(&o, 0, sizeof o);
  memset(&fo, 0, sizeof fo);
  o.k = k;
  o.mods = suf;
  o.par = par;
  if (also) o.also = also->on_spikes, o.also_ud = also->spikes_ud;
  fo.threads = nn_par_threads(par);
  fo.train = 1;
  fo.on_spikes = on_spikes;
  fo.ud = &o;
  fo.spikes_only = 1; /* the score needs the spikes, not the logits */
  t0 = now_s();
  st = nn_net_forward_suffix(net, r->cellb_in, &fo, &out, err);
  d->forward_s += now_s() - t0 - o.kernel_s;
  d->kernel_s += o.kernel_s;
  d->lif_calls += o.calls;
  if (st == NN_OK && o.st != NN_OK) st = nn_fail(err, o.st, "fitness: %s", o.err.msg);
  if (st == NN_OK) merge_mods(d, suf);
  nn_tensor_free(out);
  free(suf);
  return st;
}

/* The prefix result for net on x, as a sequential evaluation finds it: from the cache (a hit,
 * counted) or a new one to compute (a miss, counted, and stored in the cache not yet ready).
 * With `observed` (an observer must see the prefix's LIF calls) a hit is not used: the prefix
 * is computed again, privately. *produce = 1 when the caller must compute it. Returns a
 * reference (NULL: out of memory). */
static pres *prefix_lookup(nn_net *net, const nn_tensor *x, nn_fitness_cache *cache,
                           nn_fitness_diag *d, int observed, int *produce) {
  ckey key;
  centry *hit = NULL;
  pres *r;
  if (cache) {
    make_key(net, x, &key);
    hit = cache_find(cache, &key);
    if (hit && observed) hit = NULL, cache = NULL;
  }
  if (hit) {
    cache->hits++;
    d->cache_hits++;
    *produce = 0;
    return pres_ref(hit->r);
  }
  if (!(r = pres_new())) return NULL;
  if (cache) {
    cache->misses++;
    d->cache_misses++;
    cache_put(cache, &key, r, entry_bytes(net, x));
  }
  *produce = 1;
  return r;
}

/* One repeat: the prefix (cached or run, then stored) and the suffix into k. With an observer
 * (also) the prefix is always run, so the observer sees all its calls; a new one is still
 * stored for the calls without an observer. */
static nn_status one_batch(nn_net *net, const nn_tensor *x, nn_fitness_cache *cache,
                           nn_kernel *k, nn_fitness_diag *d, nn_par *par,
                           const nn_fitness_opts *also, nn_error *err) {
  int produce;
  nn_status st = NN_OK;
  pres *r = prefix_lookup(net, x, cache, d, also != NULL, &produce);
  if (!r) return nn_fail(err, NN_ENOMEM, "fitness: out of memory");
  if (produce) {
    st = run_prefix(net, x, NULL, r, d, par, also, err);
    if (st != NN_OK && cache) cache_drop_unready(cache);
  }
  if (st == NN_OK) st = run_suffix(net, r, k, d, par, also, err);
  pres_unref(r);
  return st;
}

static void finish_rates(nn_fitness_diag *d, int64_t S) {
  for (int i = 0; i < d->modules; i++) {
    nn_fitness_module *m = &d->module[i];
    double denom = (double)m->calls * (double)S * (double)m->neurons;
    m->firing_rate = denom > 0 ? (double)m->fired / denom : 0;
  }
}

/* Checks a batch list: 1..MAX repeats of S x C x H x W tensors with one S >= 2. */
static nn_status check_batches(const nn_tensor *const *batches, int repeats, int64_t *S,
                               nn_error *err) {
  if (repeats < 1 || repeats > NN_FITNESS_MAX_REPEAT)
    return nn_fail(err, NN_EINVAL, "fitness: repeat=%d outside 1..%d", repeats,
                   NN_FITNESS_MAX_REPEAT);
  for (int r = 0; r < repeats; r++)
    if (!batches[r] || nn_tensor_ndim(batches[r]) != 4)
      return nn_fail(err, NN_EINVAL, "fitness: batch %d: S x C x H x W tensor expected", r + 1);
  *S = nn_tensor_dim(batches[0], 0);
  for (int r = 1; r < repeats; r++)
    if (nn_tensor_dim(batches[r], 0) != *S)
      return nn_fail(err, NN_EINVAL, "fitness: batch %d has %lld samples, batch 1 %lld", r + 1,
                     (long long)nn_tensor_dim(batches[r], 0), (long long)*S);
  if (*S < 2)
    return nn_fail(err, NN_EINVAL, "fitness: batch of %lld samples (at least 2 expected)",
                   (long long)*S);
  return NN_OK;
}

nn_status nn_fitness_eval(nn_net *net, const nn_tensor *const *batches, int repeats,
                          const nn_fitness_opts *opts, double *score, nn_fitness_diag *diag,
                          nn_error *err) {
  nn_fitness_diag *d = calloc(1, sizeof *d);
  nn_kernel *k = NULL;
  nn_status st = NN_OK;
  double t_all = now_s(), sum = 0;
  int64_t S;
  int kept = 0; /* opts->kernels filled so far (freed again on failure) */
  int blas_threads = 0;
  size_t scratch_old = 0;
  nn_par *par = NULL;
  saved_stats saved = {0, NULL, NULL};
  if (!d) return nn_fail(err, NN_ENOMEM, "fitness: out of memory");
  if (!net || !batches || !score) {
    st = nn_fail(err, NN_EINVAL, "fitness: net, batches and score expected");
    goto done;
  }
  if ((st = check_batches(batches, repeats, &S, err)) != NN_OK) goto done;
  if (opts && (opts->threads < 0 || opts->threads > NN_FITNESS_MAX_THREADS)) {
    st = nn_fail(err, NN_EINVAL, "fitness: threads=%d outside 0..%d", opts->threads, NN_FITNESS_MAX_THREADS);
    goto done;
  }
  /* one team for the whole evaluation (forward passes and kernel); a team that cannot start
   * leaves everything to this thread: the same bits */
  if (opts && opts->threads > 1) par = nn_par_new(opts->threads);
  scratch_old = scratch_raise(net, S);
  if (!(k = nn_kernel_new(S, err))) {
    st = NN_ENOMEM;
    goto done;
  }
  if ((st = stats_save(net, &saved, err)) != NN_OK) goto done;
  d->repeats = repeats;
  d->samples = S;
  /* OpenBLAS's sgemm rounds differently with 1 and 2 threads (it splits the work by thread
   * count): scores run with one BLAS thread, so they do not depend on the BLAS setting and
   * nn_fitness_many (whose workers must run BLAS on one thread) gives the same bits. */
  blas_threads = nn_blas_get_threads();
  nn_blas_set_threads(1);
  for (int r = 0; r < repeats && st == NN_OK; r++) {
    if (nn_cancelled()) {
      st = nn_fail(err, NN_EINTR, "fitness: interrupted");
      break;
    }
    st = one_batch(net, batches[r], opts ? opts->cache : NULL, k, d, par,
                   r == 0 && opts && opts->on_spikes ? opts : NULL, err);
    if (st != NN_OK) break;
    double t0 = now_s();
    st = nn_kernel_score(k, &d->scores[r], &d->signs[r], err);
    d->logdet_s += now_s() - t0;
    sum += d->scores[r];
    if (st == NN_OK && opts && opts->kernels) {
      if (!(opts->kernels[r] = nn_kernel_new(S, err))) st = NN_ENOMEM;
      else nn_kernel_copy(opts->kernels[r], k, NULL);
      kept = r + 1;
    }
  }
  if (st == NN_OK) {
    *score = sum / repeats; /* -inf if any repeat is singular; never NaN (no +inf scores) */
    finish_rates(d, S);
    d->total_s = now_s() - t_all;
    if (diag) *diag = *d;
  }
done:
  nn_par_free(par);
  scratch_restore(scratch_old, opts && opts->keep_memory);
  if (blas_threads > 0) nn_blas_set_threads(blas_threads);
  stats_restore_free(&saved);
  if (st != NN_OK && opts && opts->kernels)
    for (int r = 0; r < kept; r++) {
      nn_kernel_free(opts->kernels[r]);
      opts->kernels[r] = NULL;
    }
  nn_kernel_free(k);
  free(d);
  return st;
}

/* ---- nn_fitness_many: several nets scored concurrently ----
 * Plan (everything that touches the cache runs on the calling thread, in net order, so the
 * cache ends as sequential nn_fitness_eval calls leave it and every diag counts the same hits):
 * 1. lookup: for net i, repeat r, the prefix result a sequential evaluation would use (a hit, or
 *    a miss stored in the cache not yet ready, which net i must produce) and a copy of the BN
 *    running statistics;
 * 2. workers: every net runs the missing prefixes that the cache or other nets will read (one
 *    job per net: a net is never used by two threads at once);
 * 3. workers: every net runs its suffixes from the now ready results and scores its kernels; a
 *    prefix nobody else reads (no cache, or too big for it) runs here, just before its suffix,
 *    and its cell-B inputs are freed right after, so memory stays at one prefix per thread;
 * 4. the running statistics are restored, unready cache entries (after a failure) dropped.
 * Before 2, nets with the same stem (nn_net_same_stem: the conv and BatchNorm run once per pass
 * before the timesteps) that will run prefixes get its output computed once per batch (a
 * SNASNet-setting list shares one: 40 stems of ~0.9 ms each became one).
 * Workers are pthreads pulling job numbers from an atomic counter; OpenBLAS runs on one thread
 * meanwhile (two levels of threads on 2 cores only yield to each other) and is restored after. */
#include <pthread.h>
#include <unistd.h>

typedef struct many_net {
  nn_net *net;
  pres *src[NN_FITNESS_MAX_REPEAT];
  nn_tensor *stem[NN_FITNESS_MAX_REPEAT]; /* the once steps' output, computed once for a group
                                           * of nets with the same stem (NULL: run them); owned
                                           * by the group's first net (stem_owner) */
  int stem_owner;
  int produce[NN_FITNESS_MAX_REPEAT]; /* 0 read, 1 compute in phase 2 (shared), 2 in phase 3 (private) */
  int nshared; /* produce[r] == 1 */
  saved_stats saved;
  nn_fitness_diag *d;
  double score, t0;
  nn_status st;
  nn_error err;
} many_net;

typedef struct many_ctx {
  many_net *m;
  size_t count, next;
  const nn_tensor *const *batches;
  int repeats, phase;
  int64_t S;
  const nn_net *biggest; /* the net whose passes take the most scratch */
} many_ctx;

static void many_job(many_ctx *c, many_net *m) {
  if (m->st != NN_OK) return;
  if (c->phase == 2) {
    for (int r = 0; r < c->repeats && m->st == NN_OK; r++)
      if (m->produce[r] == 1) m->st = run_prefix(m->net, c->batches[r], m->stem[r], m->src[r], m->d, NULL, NULL, &m->err);
    return;
  }
  nn_kernel *k = nn_kernel_new(c->S, &m->err);
  double sum = 0;
  if (!k) {
    m->st = NN_ENOMEM;
    return;
  }
  for (int r = 0; r < c->repeats && m->st == NN_OK; r++) {
    if (nn_cancelled()) {
      m->st = nn_fail(&m->err, NN_EINTR, "fitness: interrupted");
      break;
    }
    if (m->produce[r] == 2 &&
        (m->st = run_prefix(m->net, c->batches[r], m->stem[r], m->src[r], m->d, NULL, NULL, &m->err)) != NN_OK)
      break;
    m->st = run_suffix(m->net, m->src[r], k, m->d, NULL, NULL, &m->err);
    if (m->produce[r] == 2) { /* private: nobody reads it again */
      nn_tensor_free(m->src[r]->cellb_in);
      m->src[r]->cellb_in = NULL;
    }
    if (m->st != NN_OK) break;
    double t0 = now_s();
    m->st = nn_kernel_score(k, &m->d->scores[r], &m->d->signs[r], &m->err);
    m->d->logdet_s += now_s() - t0;
    sum += m->d->scores[r];
  }
  nn_kernel_free(k);
  if (m->st == NN_OK) {
    m->score = sum / c->repeats;
    finish_rates(m->d, c->S);
    m->d->total_s = now_s() - m->t0;
  }
}

static void *many_worker(void *arg) {
  many_ctx *c = arg;
  size_t old = scratch_raise(c->biggest, c->S);
  for (;;) {
    size_t i = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);
    if (i >= c->count) break;
    if (c->phase == 2 && c->m[i].nshared == 0) continue;
    many_job(c, &c->m[i]);
  }
  scratch_restore(old, 0);
  return NULL;
}

/* Runs phase c->phase over all nets on `threads` threads (the caller is one of them). A
 * thread that cannot be created leaves its share to the others. */
static void many_phase(many_ctx *c, int phase, int threads) {
  pthread_t tid[NN_FITNESS_MAX_THREADS];
  int started = 0;
  c->phase = phase;
  c->next = 0;
  for (int t = 1; t < threads; t++)
    if (pthread_create(&tid[started], NULL, many_worker, c) == 0) started++;
  many_worker(c);
  for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
}

/* Stems shared no further than this (the outputs of a group's stem for all repeats): a paper-size
 * batch's stem output is 134 MB, and such nets are scored one at a time anyway. */
#define STEM_SHARE_MAX_BYTES ((int64_t)64 << 20)

static int runs_prefix(const many_net *m, int repeats) {
  for (int r = 0; r < repeats; r++)
    if (m->produce[r]) return 1;
  return 0;
}

/* For every group of two or more nets that will run prefixes on the batches and have the same
 * stem, that stem's outputs, computed by the group's first net (nn_net_forward_stem, on
 * `threads` threads: the same bits as on one). Only a speed-up: where a stem output cannot be
 * made (no memory, a bad batch), the nets run their own stems, and report the error. Called
 * with BLAS on one thread. */
static void share_stems(many_net *m, size_t count, const nn_tensor *const *batches, int repeats, int64_t S,
                        int threads) {
  for (size_t i = 0; i < count; i++) {
    if (!runs_prefix(&m[i], repeats) || m[i].stem[0]) continue;
    const nn_plan_step *s0 = &m[i].net->plan.steps[0]; /* the stem's conv: the stem output's shape */
    const double bytes = (double)repeats * (double)S * (double)nn_plan_step_out_numel(s0) * sizeof(float);
    if (bytes > (double)STEM_SHARE_MAX_BYTES) continue;
    size_t j = i + 1; /* the first net that would share it, if any */
    while (j < count && !(!m[j].stem[0] && runs_prefix(&m[j], repeats) && nn_net_same_stem(m[i].net, m[j].net, 1))) j++;
    if (j == count) continue;
    nn_forward_opts fo;
    memset(&fo, 0, sizeof fo);
    fo.train = 1;
    fo.threads = threads;
    double t0 = now_s();
    int ok = 1;
    for (int r = 0; r < repeats && ok; r++) ok = nn_net_forward_stem(m[i].net, batches[r], &fo, &m[i].stem[r], NULL) == NN_OK;
    if (!ok) {
      for (int r = 0; r < repeats; r++) nn_tensor_free(m[i].stem[r]), m[i].stem[r] = NULL;
      continue;
    }
    m[i].d->forward_s += now_s() - t0;
    m[i].stem_owner = 1;
    for (; j < count; j++)
      if (!m[j].stem[0] && runs_prefix(&m[j], repeats) && nn_net_same_stem(m[i].net, m[j].net, 1))
        for (int r = 0; r < repeats; r++) m[j].stem[r] = m[i].stem[r];
  }
}

int nn_fitness_default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > NN_FITNESS_MAX_THREADS) n = NN_FITNESS_MAX_THREADS;
  return (int)n;
}

nn_status nn_fitness_many(nn_net *const *nets, size_t count, const nn_tensor *const *batches,
                          int repeats, const nn_fitness_many_opts *opts, double *scores,
                          nn_fitness_diag *diags, nn_error *err) {
  nn_fitness_cache *cache = opts ? opts->cache : NULL;
  int threads = opts && opts->threads > 0 ? opts->threads : nn_fitness_default_threads();
  many_ctx c;
  many_net *m = NULL;
  nn_fitness_diag *dd = NULL;
  nn_status st = NN_OK;
  size_t bad = count;
  if (count == 0) return NN_OK;
  if (!nets || !batches || !scores) return nn_fail(err, NN_EINVAL, "fitness_many: nets, batches and scores expected");
  if (opts && (opts->threads < 0 || opts->threads > NN_FITNESS_MAX_THREADS))
    return nn_fail(err, NN_EINVAL, "fitness_many: threads=%d outside 0..%d", opts->threads,
                   NN_FITNESS_MAX_THREADS);
  memset(&c, 0, sizeof c);
  if ((st = check_batches(batches, repeats, &c.S, err)) != NN_OK) return st;
  for (size_t i = 0; i < count; i++) {
    if (!nets[i]) return nn_fail(err, NN_EINVAL, "fitness_many: net %zu is missing", i + 1);
    for (size_t j = 0; j < i; j++)
      if (nets[j] == nets[i])
        return nn_fail(err, NN_EINVAL, "fitness_many: net %zu is net %zu again (score it once)",
                       i + 1, j + 1);
  }
  m = calloc(count, sizeof *m);
  dd = calloc(count, sizeof *dd);
  if (!m || !dd) {
    free(m), free(dd);
    return nn_fail(err, NN_ENOMEM, "fitness_many: out of memory");
  }
  /* 1. lookups, in net order */
  for (size_t i = 0; i < count && st == NN_OK; i++) {
    m[i].net = nets[i];
    m[i].d = &dd[i];
    m[i].t0 = now_s();
    dd[i].repeats = repeats;
    dd[i].samples = c.S;
    if ((st = stats_save(nets[i], &m[i].saved, err)) != NN_OK) break;
    for (int r = 0; r < repeats; r++) {
      if (!(m[i].src[r] = prefix_lookup(nets[i], batches[r], cache, &dd[i], 0, &m[i].produce[r]))) {
        st = nn_fail(err, NN_ENOMEM, "fitness_many: out of memory");
        break;
      }
    }
  }
  /* a prefix only its own job holds (not in the cache, no later reader) is private */
  for (size_t i = 0; i < count && st == NN_OK; i++)
    for (int r = 0; r < repeats; r++)
      if (m[i].produce[r]) {
        int shared = m[i].src[r]->refs > 1;
        m[i].produce[r] = shared ? 1 : 2;
        m[i].nshared += shared;
      }
  if (st == NN_OK) {
    int saved_threads = nn_blas_get_threads();
    nn_blas_set_threads(1); /* as every score: see nn_fitness_eval */
    share_stems(m, count, batches, repeats, c.S, threads);
    c.m = m;
    c.count = count;
    c.biggest = nets[0];
    for (size_t i = 1; i < count; i++)
      if (pass_bytes(nets[i], c.S) > pass_bytes(c.biggest, c.S)) c.biggest = nets[i];
    c.batches = batches;
    c.repeats = repeats;
    if (threads > (int)count) threads = (int)count;
    nn_blas_set_threads(1);
    many_phase(&c, 2, threads);
    /* a failed prefix fails every net that reads it: check before any suffix runs */
    for (size_t i = 0; i < count && bad == count; i++) {
      if (m[i].st != NN_OK) bad = i;
      for (int r = 0; r < repeats && bad == count; r++)
        if (m[i].produce[r] != 2 && !m[i].src[r]->ready) bad = i;
    }
    if (bad == count) {
      many_phase(&c, 3, threads);
      for (size_t i = 0; i < count && bad == count; i++)
        if (m[i].st != NN_OK) bad = i;
    }
    nn_blas_set_threads(saved_threads);
  }
  if (st == NN_OK && bad < count) {
    /* the first failing net in order, as sequential calls would have stopped there */
    if (m[bad].st != NN_OK) {
      st = m[bad].st;
      if (err) *err = m[bad].err;
    } else { /* cannot happen: a prefix's producer precedes its readers */
      st = nn_fail(err, NN_EINVAL, "fitness_many: net %zu: its prefix was not computed", bad + 1);
    }
  }
  if (st == NN_OK)
    for (size_t i = 0; i < count; i++) {
      scores[i] = m[i].score;
      if (diags) diags[i] = dd[i];
    }
  for (size_t i = 0; i < count; i++) {
    stats_restore_free(&m[i].saved);
    for (int r = 0; r < repeats; r++) {
      pres_unref(m[i].src[r]);
      if (m[i].stem_owner) nn_tensor_free(m[i].stem[r]);
    }
  }
  if (cache) cache_drop_unready(cache);
  free(m);
  free(dd);
  return st;
}
