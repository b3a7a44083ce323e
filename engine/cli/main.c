/* main.c: the `neuronas` command, on lua.c's skeleton:
 * main -> lua_pcall(pmain) -> docall(msghandler) -> report. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "neuronas/nn.h"

int luaopen_neuronas_core(lua_State *L);

#ifndef NEURONAS_SOURCE_LUA_DIR
#define NEURONAS_SOURCE_LUA_DIR ""
#endif
#ifndef NEURONAS_SOURCE_SCRIPTS_DIR
#define NEURONAS_SOURCE_SCRIPTS_DIR ""
#endif
#ifndef NEURONAS_INSTALL_SCRIPTS_DIR
#define NEURONAS_INSTALL_SCRIPTS_DIR ""
#endif

static const char *progname = "neuronas";
static lua_State *globalL;
static int interrupted;
static int debug_flag; /* `neuronas --debug ...` */

/* Whether an error shows its Lua traceback: `neuronas --debug`, NEURONAS_DEBUG set (not "" or
 * "0"), or a script's `--debug` flag (neuronas.cli sets registry["neuronas.debug"]). By default
 * an error is one line: user errors (bad flag values, a refused --resume, a constraint typo)
 * are reported, not debugged (docs/reliability.md). */
static int want_traceback(lua_State *L) {
  const char *env = getenv("NEURONAS_DEBUG");
  int on = debug_flag || (env && *env && strcmp(env, "0") != 0);
  if (!on) {
    lua_getfield(L, LUA_REGISTRYINDEX, "neuronas.debug");
    on = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return on;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Whether path names a folder (a script path must not: `run ""` or `run scripts/` would
 * otherwise reach the bundled scripts folder and fail on reading it, exit 1). */
static int is_folder(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- Ctrl-C, as lua.c: the signal sets a hook that raises at the next instruction ---- */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void laction(int i) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  signal(i, SIG_DFL); /* a second Ctrl-C kills */
  interrupted = 1;
  nn_cancel_set(1);
  lua_sethook(globalL, lstop, flag, 1);
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  /* the message on line 1, then the traceback when asked for */
  if (want_traceback(L)) luaL_traceback(L, L, msg, 1);
  else lua_pushstring(L, msg);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int status;
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  signal(SIGINT, laction);
  status = lua_pcall(L, narg, nres, base);
  signal(SIGINT, SIG_DFL);
  lua_remove(L, base);
  return status;
}

static void report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
    fprintf(stderr, "%s: %s\n", progname, msg);
    fflush(stderr);
    lua_pop(L, 1);
  }
}

/* Directory of this executable (for the installed layout), or "" */
static void exe_dir(char *buf, size_t n) {
  ssize_t len = readlink("/proc/self/exe", buf, n - 1);
  if (len <= 0) {
    buf[0] = 0;
    return;
  }
  buf[len] = 0;
  char *slash = strrchr(buf, '/');
  if (slash) *slash = 0;
}

/* Puts the Lua half of the library first on package.path: an install next to the binary
 * (<prefix>/share/lua/5.4) wins, else the source tree this binary was built from;
 * NEURONAS_LUA_DIR overrides both. Preloads the C half as neuronas.core. */
static void setup_paths(lua_State *L, char *scripts_dir, size_t sdn) {
  char exe[PATH_MAX], dir[PATH_MAX + 256], probe[PATH_MAX + 256];
  const char *env = getenv("NEURONAS_LUA_DIR");
  exe_dir(exe, sizeof exe);
  dir[0] = 0;
  snprintf(probe, sizeof probe, "%s/../share/lua/5.4/neuronas/init.lua", exe);
  if (env && *env)
    snprintf(dir, sizeof dir, "%s", env);
  else if (exe[0] && exists(probe))
    snprintf(dir, sizeof dir, "%s/../share/lua/5.4", exe);
  else
    snprintf(dir, sizeof dir, "%s", NEURONAS_SOURCE_LUA_DIR);
  snprintf(probe, sizeof probe, "%s/../share/neuronas/scripts", exe);
  if (exe[0] && exists(probe))
    snprintf(scripts_dir, sdn, "%s", probe);
  else
    snprintf(scripts_dir, sdn, "%s", NEURONAS_SOURCE_SCRIPTS_DIR);

  lua_getglobal(L, "package");
  if (dir[0]) {
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
  }
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_neuronas_core);
  lua_setfield(L, -2, "neuronas.core");
  lua_pop(L, 2);
  lua_pushstring(L, scripts_dir);
  lua_setglobal(L, "NEURONAS_SCRIPTS"); /* read by `neuronas help` and scripts; not a module global */
}

static void print_usage(FILE *f) {
  fprintf(f,
          "usage: %s run SCRIPT [ARGS...]   run a Lua script (arg and ... hold ARGS)\n"
          "       %s -e 'CODE'               run a Lua chunk\n"
          "       %s version                 print the version\n"
          "       %s help                    this text, the bundled scripts, the docs\n"
          "       %s --debug run|-e ...      errors show their Lua traceback (also NEURONAS_DEBUG=1)\n",
          progname, progname, progname, progname, progname);
}

static int cmd_help(const char *scripts_dir) {
  print_usage(stdout);
  printf("\nBundled scripts (%s):\n", scripts_dir[0] ? scripts_dir : "not found");
  if (scripts_dir[0]) {
    char cmd[PATH_MAX + 320];
    FILE *p;
    snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null", scripts_dir);
    p = popen(cmd, "r");
    if (p) {
      char line[512];
      while (fgets(line, sizeof line, p))
        if (strstr(line, ".lua")) printf("  %s", line);
      pclose(p);
    }
  }
  printf("\nRun one with `%s run NAME.lua` (found here when not in the current folder).\n"
         "Docs: README.md (the user guide) and docs/*.md (the reference), installed in\n"
         "<prefix>/share/doc/neuronas; `man neuronas` for the commands and exit codes.\n",
         progname);
  return 0;
}

struct args {
  int argc;
  char **argv;
  int script; /* index of the script in argv, or 0 for -e */
  const char *code;
  const char *scripts_dir;
};

/* Builds `arg` as lua.c does: arg[0] = script, arg[1..] = its arguments, negatives before. */
static void create_arg(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int pmain(lua_State *L) {
  struct args *a = lua_touserdata(L, 1);
  int status, n;
  char scripts_dir[PATH_MAX + 256];
  luaL_checkversion(L);
  luaL_openlibs(L);
  setup_paths(L, scripts_dir, sizeof scripts_dir);
  a->scripts_dir = NULL;
  if (a->code) {
    create_arg(L, a->argv, a->argc, 2);
    status = luaL_loadbuffer(L, a->code, strlen(a->code), "=(command line)");
    if (status == LUA_OK) status = docall(L, 0, 0);
    if (status != LUA_OK) report(L, status);
    lua_pushboolean(L, status == LUA_OK);
    return 1;
  }
  {
    const char *script = a->argv[a->script];
    char alt[PATH_MAX + 512];
    /* a missing, empty or folder path is one line, exit 2, as a missing script */
    if (!script[0]) {
      fprintf(stderr, "%s: cannot open script '' (empty path)\n", progname);
      lua_pushinteger(L, 2);
      return 1;
    }
    /* a relative path that names nothing here is looked up among the bundled scripts, also
     * in the clone's form scripts/NAME.lua, so README's commands work from any folder */
    if (!exists(script) && script[0] != '/' && scripts_dir[0]) {
      const char *rel = script;
      if (strncmp(rel, "./", 2) == 0) rel += 2;
      snprintf(alt, sizeof alt, "%s/%s", scripts_dir, rel);
      if (!exists(alt) && strncmp(rel, "scripts/", 8) == 0)
        snprintf(alt, sizeof alt, "%s/%s", scripts_dir, rel + 8);
      if (exists(alt) && !is_folder(alt)) script = alt;
    }
    if (!exists(script)) {
      fprintf(stderr, "%s: cannot open script '%s' (no such file)\n", progname, a->argv[a->script]);
      lua_pushinteger(L, 2);
      return 1;
    }
    if (is_folder(script)) {
      fprintf(stderr, "%s: cannot open script '%s' (a folder, a Lua file expected)\n", progname,
              a->argv[a->script]);
      lua_pushinteger(L, 2);
      return 1;
    }
    create_arg(L, a->argv, a->argc, a->script);
    status = luaL_loadfile(L, script);
    if (status == LUA_OK) {
      n = a->argc - a->script - 1;
      luaL_checkstack(L, n + 3, "too many arguments to script");
      for (int i = 1; i <= n; i++) lua_pushstring(L, a->argv[a->script + i]);
      status = docall(L, n, 0);
    }
    if (status != LUA_OK) report(L, status);
    lua_pushboolean(L, status == LUA_OK);
    return 1;
  }
}

/* A build without MPI started by mpirun/srun with several ranks would run the whole search
 * once per rank, all writing the same journal: refuse (docs/cluster.md). The launchers announce
 * the world size in the environment. MPI itself is initialised by neuronas.search.mpi on first
 * use and finalised at exit (engine/lua/l_mpi.c), not here. */
static int refuse_without_mpi(void) {
#ifndef NEURONAS_HAVE_MPI
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
  for (int i = 0; vars[i]; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 1) {
      fprintf(stderr,
              "%s: started with %s ranks (%s), but this neuronas was built without MPI; "
              "install libopenmpi-dev (or MPICH) and rebuild, or run a single process\n",
              progname, v, vars[i]);
      return 1;
    }
  }
#endif
  return 0;
}

int main(int argc, char **argv) {
  struct args a = {argc, argv, 0, NULL, NULL};
  lua_State *L;
  int status, result, code;
  if (argc >= 2 && strcmp(argv[1], "--debug") == 0) {
    debug_flag = 1;
    argv++;
    argc--;
    a.argc = argc;
    a.argv = argv;
  }
  if (refuse_without_mpi()) return 2;
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("neuronas %s (%s)\n", NN_VERSION, LUA_RELEASE);
    return 0;
  }
  if (strcmp(argv[1], "run") == 0) {
    if (argc < 3) {
      fprintf(stderr, "%s: 'run' needs a script (usage: %s run SCRIPT [ARGS...])\n", progname,
              progname);
      return 2;
    }
    a.script = 2;
  } else if (strcmp(argv[1], "-e") == 0) {
    if (argc < 3) {
      fprintf(stderr, "%s: '-e' needs Lua code\n", progname);
      return 2;
    }
    a.code = argv[2];
  } else if (strcmp(argv[1], "help") != 0 && strcmp(argv[1], "--help") != 0 &&
             strcmp(argv[1], "-h") != 0) {
    fprintf(stderr, "%s: unknown command '%s' (expected run, -e, version or help)\n", progname,
            argv[1]);
    return 2;
  }
  L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "%s: cannot create Lua state: not enough memory\n", progname);
    return 1;
  }
  if (!a.script && !a.code) {
    char dir[PATH_MAX + 256];
    luaL_openlibs(L);
    setup_paths(L, dir, sizeof dir);
    code = cmd_help(dir);
    lua_close(L);
    return code;
  }
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &a);
  status = lua_pcall(L, 1, 1, 0);
  if (status != LUA_OK) {
    report(L, status);
    code = 1;
  } else if (lua_isinteger(L, -1)) {
    code = (int)lua_tointeger(L, -1);
  } else {
    result = lua_toboolean(L, -1);
    code = result ? 0 : (interrupted ? 130 : 1);
  }
  lua_close(L);
  return code;
}
