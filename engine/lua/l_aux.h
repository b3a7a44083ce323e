/* l_aux.h: shared helpers of the Lua bindings: boxed userdata, checked accessors, errors,
 * and the field-descriptor tables that drive option parsing and settable constants. */
#ifndef NEURONAS_L_AUX_H
#define NEURONAS_L_AUX_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

#include "neuronas/nn.h"

/* One metatable name per userdata type. */
#define NN_MT_TENSOR "neuronas.Tensor"
#define NN_MT_RNG "neuronas.Rng"
#define NN_MT_CELL "neuronas.Cell"
#define NN_MT_SPACE "neuronas.Space"
#define NN_MT_NET "neuronas.Net"
#define NN_MT_QUANTIZER "neuronas.Quantizer"
#define NN_MT_DATASET "neuronas.Dataset"
#define NN_MT_ELA "neuronas.ELA"

/* Every binding file l_<name>.c defines `int nn_lua_open_<name>(lua_State *L)`, which adds
 * its constructors to the module table on top of the stack and leaves the stack as it was.
 * CMake collects them (see the generated nn_bindings.h), so adding a binding needs no edit
 * of l_core.c. */

/* Raw pointers and Lua code: a binding resolves its userdata to raw pointers (l_checkopen) only
 * after everything that can run Lua code is done: reading fields of caller tables (__index,
 * __len), calling callbacks (a dataset's batch), and allocating (a collection may run
 * finalizers). A callback may close or drop any object, so a pointer taken before it may dangle.
 * Values gathered from caller tables are kept on the stack or in a table the binding owns, and
 * resolved from there.
 *
 * A box is the userdata: { void *p; } plus `nuv` user values for pinned dependencies.
 * l_newbox pushes a *closed* box (p = NULL) with metatable mt; the caller acquires the
 * object afterwards and stores it in box->p. */
typedef struct l_box {
  void *p;
} l_box;

l_box *l_newbox(lua_State *L, const char *mt, int nuv);
/* The box at idx, of type mt (raises "bad argument" otherwise); may be closed. */
l_box *l_checkbox(lua_State *L, int idx, const char *mt);
/* The open object at idx; raises "attempt to use a closed neuronas.X" when closed. */
void *l_checkopen(lua_State *L, int idx, const char *mt);
/* The open object at idx when it is of type mt, else NULL (no error). */
void *l_testopen(lua_State *L, int idx, const char *mt);

/* For the shared __gc/__close/close function of type mt, before it frees: raises when the call
 * comes from inside a finalizer of another object (a Lua __gc function that closes this one).
 * A finalizer may run during any allocation, also in the middle of a binding that holds this
 * object's raw pointer, so closing there could free memory in use; the object is freed by its
 * own __gc once unreachable instead. The object's own __gc is always allowed. */
void l_check_close(lua_State *L, const char *mt);

/* Creates metatable mt (with __name, __index = methods table unless meta has __index). */
void l_newtype(lua_State *L, const char *mt, const luaL_Reg *meta, const luaL_Reg *methods);

/* Raises err->msg as a Lua error (never as a format string), as it is: the engine's messages
 * name the file, field or argument themselves, and the caller's position (a line of the Lua
 * library that made the call) would only be noise in front of them. */
int l_raise(lua_State *L, const nn_error *err);

/* Strings the engine parses (genotypes, paths, names, options) are C strings, so a NUL byte would
 * silently cut them: these refuse it. l_checkstring is luaL_checkstring raising "bad argument
 * #arg (what: string without NUL bytes expected, ...)"; l_tolstring_nonul returns the string at
 * idx (and its length) or NULL when the value is not a string or holds a NUL (never raises). */
const char *l_checkstring(lua_State *L, int arg, const char *what);
const char *l_tolstring_nonul(lua_State *L, int idx, size_t *len);
/* luaL_checkoption over NUL-free strings ("dense\0x" is not "dense"). */
int l_checkoption(lua_State *L, int arg, const char *def, const char *const lst[]);

/* Tells Lua's collector about engine memory (nn_mem_live_bytes) that grew since the last call:
 * a step as if that many bytes had been allocated in Lua. l_newbox calls it, so every object
 * made from Lua pays for what the objects before it left outside Lua's heap. May run
 * finalizers: resolve raw pointers (l_checkopen) only after it. */
void l_gc_external(lua_State *L);

/* Bounds of the binding itself (docs/reliability.md "Bounds"; nn.bounds lists them with the
 * engine's): cells one Space:sample call returns (a list of 2^20 cells is ~100 MB), nets one
 * fitness_many call scores. */
#define NN_SPACE_MAX_SAMPLES (1 << 20)
#define NN_FITNESS_MAX_NETS 1000000

/* ---- field descriptors ---- */
typedef enum l_ftype {
  L_F_INT,    /* int64_t, integral, within [lo, hi] */
  L_F_INT32,  /* int, integral, within [lo, hi] */
  L_F_NUM,    /* double, finite, within [lo, hi] */
  L_F_BOOL,   /* int 0/1 */
  L_F_ENUM,   /* int index into choices (a NULL-terminated list of names) */
  L_F_U64,    /* uint64_t seed: integer >= 0 */
  L_F_SKIP    /* accepted key handled by the caller (no storage) */
} l_ftype;

typedef struct l_field {
  const char *name;
  l_ftype type;
  double lo, hi;
  size_t offset;
  const char *const *choices;
  const char *doc; /* unit or meaning, shown by tostring/help */
} l_field;

/* Parses the table at idx (nil/none = keep defaults) into dst. Unknown keys, wrong types and
 * out-of-range values raise "bad argument #argn to 'f' (field 'x': ... expected, got ...)".
 * Keys of type L_F_SKIP are left for the caller. */
void l_parse_fields(lua_State *L, int idx, int argn, const l_field *fields, void *dst);
/* Reads/writes one field by name: l_field_push pushes the value and returns 1, or 0 when the
 * name is not a field; l_field_set checks the value at vidx (error names the field). */
const l_field *l_field_find(const l_field *fields, const char *name);
int l_field_push(lua_State *L, const l_field *f, const void *src);
void l_field_set(lua_State *L, const l_field *f, void *dst, int vidx, const char *what);
/* "a, b, c" list of field names, for "unknown field" errors. */
void l_push_field_names(lua_State *L, const l_field *fields);

/* Check the value at idx is a table or nil: returns 1 for a table. */
int l_opttable(lua_State *L, int idx);


/* ---- shared accessors of the core types (l_tensor.c, l_rng.c) ---- */
#include "neuronas/nn_rng.h"
#include "neuronas/nn_tensor.h"
/* The open tensor at idx (raises otherwise). */
nn_tensor *l_checktensor(lua_State *L, int idx);
/* Pushes a closed neuronas.Tensor box; store the tensor in ->p right after creating it. */
l_box *l_pushtensorbox(lua_State *L);
/* The rng userdata at idx (its state advances as it is drawn from). */
nn_rng *l_checkrng(lua_State *L, int idx);
/* Pushes a new neuronas.Rng holding r. */
void l_pushrng(lua_State *L, nn_rng r);

/* ---- accessors implemented by the other binding files (one per type) ---- */
#include "neuronas/nn_cell.h"
struct nn_net;
/* l_cell.c: the neuronas.Cell value at idx; a string at idx is parsed as a genotype
 * (any accepted form) into *tmp and tmp is returned, so APIs take cells or strings. */
const nn_cell *l_tocell(lua_State *L, int idx, nn_cell *tmp);
void l_pushcell(lua_State *L, const nn_cell *c);
/* l_net.c: the open neuronas.Net at idx. */
struct nn_net *l_checknet(lua_State *L, int idx);
#endif
