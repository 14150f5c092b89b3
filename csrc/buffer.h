/* SharedBuffer: bytes that every interpreter reads and writes in place. */
#ifndef XI_BUFFER_H
#define XI_BUFFER_H

#include "registry.h"

extern PyType_Spec xi_buffer_spec;

/* A wrapper of this interpreter for a buffer found in the registry (a reference is
 * taken). */
PyObject *xi_buffer_wrap(xi_state *st, xi_shared *obj);

#endif /* XI_BUFFER_H */
