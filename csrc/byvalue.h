/* Modules that cross by value: those that an interpreter of this process failed to
 * import while it unpickled something. From then on the functions and classes of such
 * a module (or of its submodules) are pickled by value (cloudpickle), with the globals
 * they use, instead of by name: a task defined in a module that imports something an
 * isolated interpreter refuses runs without importing that module there.
 *
 * PROCESS-GLOBAL STATE
 *   byvalue.c  the names learned (raw-allocated UTF-8 strings) and a version counter,
 *              guarded by xi_byvalue_mu; the version is also read without the lock, so
 *              that an interpreter notices with one atomic load that its copy is stale.
 *
 * PER-INTERPRETER STATE (xi_state)
 *   byvalue          frozenset of the names, this interpreter's copy (NULL: none learned)
 *   byvalue_names    the same names as a tuple, to search streams for
 *   byvalue_version  the version that copy reflects
 */
#ifndef XI_BYVALUE_H
#define XI_BYVALUE_H

#include "state.h"

/* Records `name` (a module name). 1 when it is new, 0 when it was known, -1 with an
 * exception set. */
int xi_byvalue_learn(PyObject *name);

/* Brings this interpreter's copy up to date, and then empties st->func_out (callables
 * cached as named by reference). 1 when it changed, 0 when not, -1 with an exception
 * set. */
int xi_byvalue_sync(xi_state *st);

/* Whether the module named `module` (a str), or a package it is part of, crosses by
 * value: 1, 0, or -1 with an exception set. Uses the copy xi_byvalue_sync() made. */
int xi_byvalue_has(xi_state *st, PyObject *module);

/* Whether a pickle stream of `n` bytes at `p` may name such a module (it holds one of
 * the names): 1 or 0. Uses the copy xi_byvalue_sync() made. */
int xi_byvalue_in_stream(xi_state *st, const char *p, size_t n);

/* _xi._by_value_modules() and _xi._learn_by_value(name) */
PyObject *xi_mod_by_value_modules(PyObject *module, PyObject *unused);
PyObject *xi_mod_learn_by_value(PyObject *module, PyObject *name);

#endif /* XI_BYVALUE_H */
