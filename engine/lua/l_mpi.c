/* l_mpi.c: nn.core.mpi, the thin MPI layer under neuronas.search.mpi (docs/cluster.md).
 * Strings go point to point (the Lua side serialises candidates and results into them); a
 * tensor can be broadcast from rank 0 in place. Built with MPI when CMake finds it
 * (NEURONAS_HAVE_MPI); otherwise `available` is false and every call but `launched` raises.
 *
 * MPI is initialised by the first init() (the Lua module's first use), never by merely loading
 * the library, so a serial run never touches MPI; it is finalised at process exit (atexit), so a
 * script that ends with os.exit still leaves MPI cleanly. Errors on MPI_COMM_WORLD return
 * (MPI_ERRORS_RETURN) and become Lua errors; waits poll with a timeout, so a peer that never
 * answers is reported instead of hanging. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "l_aux.h"

/* () -> size or nil: the world size a launcher announced in the environment (OpenMPI's
 * mpirun, MPICH/Hydra and Slurm's PMI), without initialising MPI; nil when not launched. */
static int mpi_launched(lua_State *L) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
  for (int i = 0; vars[i]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) {
      char *end;
      long n = strtol(v, &end, 10);
      if (*end == 0 && n >= 1) {
        lua_pushinteger(L, n);
        return 1;
      }
    }
  }
  lua_pushnil(L);
  return 1;
}

#ifdef NEURONAS_HAVE_MPI
#include <mpi.h>

static int initialised;

/* What rank 0 is waiting for when the job is torn down (mpirun sends SIGTERM to every rank
 * when one dies): set by note(), written by the handler with async-signal-safe calls only. */
static char note_buf[4096];
static volatile sig_atomic_t note_len;

static void on_term(int sig) {
  static const char head[] = "neuronas: stopped by the MPI launcher (a rank died, or Ctrl-C); in flight: ";
  if (note_len > 0) {
    ssize_t w = write(2, head, sizeof head - 1);
    w = write(2, note_buf, (size_t)note_len);
    w = write(2, "\n", 1);
    (void)w;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Tag of the message rank 0 sends every other rank at exit (-1: none). MPI_Finalize waits for
 * every rank, so a rank 0 that leaves early (an error, os.exit) must first release the workers
 * waiting for its next message, or the job would hang. */
static int exit_stop_tag = -1;

static void finalize_at_exit(void) {
  int fin = 0, rank = 0, size = 1;
  MPI_Finalized(&fin);
  if (!initialised || fin) return;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank == 0 && exit_stop_tag >= 0)
    for (int r = 1; r < size; r++) MPI_Send("", 0, MPI_CHAR, r, exit_stop_tag, MPI_COMM_WORLD);
  MPI_Finalize();
}

/* tag or nil -> (): arms (or disarms) the stop message rank 0 sends at exit */
static int mpi_stop_at_exit(lua_State *L) {
  lua_Integer tag = luaL_optinteger(L, 1, -1);
  luaL_argcheck(L, tag >= -1 && tag <= 32767, 1, "tag in 0..32767 expected");
  exit_stop_tag = (int)tag;
  return 0;
}

static int mpi_raise(lua_State *L, int rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
  return luaL_error(L, "mpi: %s failed: %s", what, msg);
}

static void need_init(lua_State *L) {
  if (!initialised) luaL_error(L, "mpi: not initialised (call init() first)");
}

/* () -> rank, size: initialises MPI once (thread level FUNNELED: only the main thread calls
 * MPI, the scoring threads never do); later calls return the same pair. */
static int mpi_init(lua_State *L) {
  int rank, size, rc;
  if (!initialised) {
    int provided, already = 0;
    MPI_Initialized(&already);
    if (!already) {
      rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
      if (rc != MPI_SUCCESS) return luaL_error(L, "mpi: MPI_Init_thread failed (code %d)", rc);
    }
    initialised = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    atexit(finalize_at_exit);
    signal(SIGTERM, on_term);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  lua_pushinteger(L, rank);
  lua_pushinteger(L, size);
  return 2;
}

/* dest, tag, string -> (): a blocking standard-mode send */
static int mpi_send(lua_State *L) {
  size_t n;
  lua_Integer dest = luaL_checkinteger(L, 1), tag = luaL_checkinteger(L, 2);
  const char *s = luaL_checklstring(L, 3, &n);
  need_init(L);
  luaL_argcheck(L, n <= (size_t)0x7fffffff, 3, "message longer than 2 GiB");
  luaL_argcheck(L, tag >= 0 && tag <= 32767, 2, "tag in 0..32767 expected");
  int rc = MPI_Send(s, (int)n, MPI_CHAR, (int)dest, (int)tag, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_raise(L, rc, "send");
  return 0;
}

/* [source[, tag[, timeout_s]]] -> string, source, tag | nil on timeout.
 * source/tag nil or -1 = any. Polls with a sleep growing from 20 to 250 us, and to 1 ms once
 * the wait passed 20 ms: a quick answer is seen within ~250 us, and a rank waiting for long
 * (rank 0 while the workers compute) wakes 1000 times a second, not 4000, so it takes little
 * from the ranks computing beside it. Ctrl-C (the engine's cancel flag) raises "interrupted!". */
static int mpi_recv(lua_State *L) {
  int src = (int)luaL_optinteger(L, 1, -1), tag = (int)luaL_optinteger(L, 2, -1);
  double timeout = luaL_optnumber(L, 3, -1);
  MPI_Status st;
  int flag = 0, rc, n, size;
  long pause_ns = 20000;
  double waited = 0;
  struct timespec t0, now;
  luaL_argcheck(L, timeout == timeout && timeout <= 1e9, 3, "timeout in seconds (or -1: none) expected");
  need_init(L);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) return luaL_error(L, "mpi.recv: a one-rank job has no other rank to receive from");
  luaL_argcheck(L, src >= -1 && src < size, 1, "a rank of the job (or -1: any) expected");
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (src < 0) src = MPI_ANY_SOURCE;
  if (tag < 0) tag = MPI_ANY_TAG;
  for (;;) {
    rc = MPI_Iprobe(src, tag, MPI_COMM_WORLD, &flag, &st);
    if (rc != MPI_SUCCESS) return mpi_raise(L, rc, "probe");
    if (flag) break;
    if (nn_cancelled()) return luaL_error(L, "interrupted!");
    if (timeout >= 0 && waited >= timeout) {
      lua_pushnil(L);
      return 1;
    }
    struct timespec ts = {0, pause_ns};
    nanosleep(&ts, NULL);
    clock_gettime(CLOCK_MONOTONIC, &now);
    waited = (double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec);
    if (pause_ns < 250000) pause_ns *= 2;
    if (pause_ns > 250000) pause_ns = waited > 0.02 ? 1000000 : 250000;
  }
  MPI_Get_count(&st, MPI_CHAR, &n);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  rc = MPI_Recv(p, n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS) return mpi_raise(L, rc, "recv");
  luaL_pushresultsize(&b, (size_t)n);
  lua_pushinteger(L, st.MPI_SOURCE);
  lua_pushinteger(L, st.MPI_TAG);
  return 3;
}

/* string (on rank 0; ignored elsewhere) -> string: broadcast from rank 0 */
static int mpi_bcast(lua_State *L) {
  int rank, rc;
  long long n = 0;
  size_t len = 0;
  need_init(L);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char *s = rank == 0 ? luaL_checklstring(L, 1, &len) : NULL;
  luaL_argcheck(L, len <= (size_t)0x7fffffff, 1, "message longer than 2 GiB");
  n = (long long)len;
  rc = MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_raise(L, rc, "bcast");
  if (rank == 0) {
    rc = MPI_Bcast((void *)s, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_raise(L, rc, "bcast");
    lua_pushvalue(L, 1);
    return 1;
  }
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  rc = MPI_Bcast(p, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_raise(L, rc, "bcast");
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/* tensor -> tensor: overwrites the tensor's values with rank 0's (same numel on every rank;
 * the shape travels first through bcast). Sent in pieces of at most 2^30 floats. */
static int mpi_bcast_tensor(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  float *p = nn_tensor_data(t);
  int64_t n = nn_tensor_numel(t), done = 0;
  need_init(L);
  while (done < n) {
    int64_t k = n - done > (1 << 30) ? (1 << 30) : n - done;
    int rc = MPI_Bcast(p + done, (int)k, MPI_FLOAT, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_raise(L, rc, "bcast");
    done += k;
  }
  lua_settop(L, 1);
  return 1;
}

/* [code] -> never returns: stops every rank of the job (MPI_Abort) */
static int mpi_abort(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 1);
  need_init(L);
  fflush(stdout);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  return 0;
}

/* string -> (): the text reported if the launcher tears the job down (see on_term) */
static int mpi_note(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (n > sizeof note_buf) n = sizeof note_buf;
  note_len = 0;
  memcpy(note_buf, s, n);
  note_len = (sig_atomic_t)n;
  return 0;
}

/* () -> string: the MPI library's version line */
static int mpi_library(lua_State *L) {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);
  char *nl = strchr(v, '\n');
  if (nl) *nl = 0;
  lua_pushstring(L, v);
  return 1;
}
#else
static int mpi_missing(lua_State *L) {
  return luaL_error(L, "mpi: this neuronas was built without MPI (install libopenmpi-dev and rebuild)");
}
#endif

int nn_lua_open_mpi(lua_State *L) {
#ifdef NEURONAS_HAVE_MPI
  static const luaL_Reg fns[] = {{"launched", mpi_launched}, {"init", mpi_init},
                                 {"send", mpi_send},         {"recv", mpi_recv},
                                 {"bcast", mpi_bcast},       {"bcast_tensor", mpi_bcast_tensor},
                                 {"abort", mpi_abort},       {"note", mpi_note},
                                 {"library", mpi_library},   {"stop_at_exit", mpi_stop_at_exit},
                                 {NULL, NULL}};
#else
  static const luaL_Reg fns[] = {{"launched", mpi_launched}, {"init", mpi_missing},
                                 {"send", mpi_missing},      {"recv", mpi_missing},
                                 {"bcast", mpi_missing},     {"bcast_tensor", mpi_missing},
                                 {"abort", mpi_missing},     {"note", mpi_missing},
                                 {"library", mpi_missing},   {"stop_at_exit", mpi_missing},
                                 {NULL, NULL}};
#endif
  luaL_newlib(L, fns);
#ifdef NEURONAS_HAVE_MPI
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "available");
  lua_setfield(L, -2, "mpi");
  return 0;
}
