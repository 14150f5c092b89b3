/* The Python face of an interpreter record: _xi.Handle. */
#ifndef XI_HANDLE_H
#define XI_HANDLE_H

#include "interp.h"

extern PyType_Spec xi_handle_spec;

/* A new Handle for `rec` (a reference is taken), owning or not. */
PyObject *xi_handle_new(xi_state *st, xi_interp *rec, int64_t id, int owner);

#endif /* XI_HANDLE_H */
