/* What an extension module declares about subinterpreters (for `python -m
 * extrainterpreters check`). */
#ifndef XI_EXTINFO_H
#define XI_EXTINFO_H

#include <Python.h>

/* _extension_kind(module) -> (init, multiple_interpreters, gil):
 *   init: "single-phase" or "multi-phase" for a module defined by a PyModuleDef,
 *         None for any other module (Python source, a namespace package);
 *   multiple_interpreters: the value of its Py_mod_multiple_interpreters slot
 *         (0 not supported, 1 supported with a shared GIL only, 2 per-interpreter GIL
 *         supported), or None without that slot;
 *   gil: the value of its Py_mod_gil slot (3.13+), or None without it. */
PyObject *xi_mod_extension_kind(PyObject *self, PyObject *module);

#endif /* XI_EXTINFO_H */
