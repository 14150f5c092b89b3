/* Error codes used below the Python boundary, and the one place that turns them
 * into exceptions. */
#ifndef XI_ERRORS_H
#define XI_ERRORS_H

#include <stdint.h>
#include "state.h"

typedef enum {
    XI_OK = 0,
    XI_ERR_PYTHON = -1,     /* a Python exception is already set */
    XI_ERR_NOMEM = -2,      /* the raw allocator failed */
    XI_ERR_NOT_FOUND = -3,  /* no interpreter with that id */
    XI_ERR_CLOSED = -4,     /* the interpreter is closed or closing */
    XI_ERR_RUNNING = -5,    /* the interpreter is running code */
    XI_ERR_CREATE = -6,     /* the interpreter could not be created */
    XI_ERR_NESTING = -7,    /* calls nested across interpreters too deeply */
    XI_ERR_FINALIZING = -8, /* the runtime is shutting down */
    XI_ERR_CURRENT = -9,    /* the operation targets the interpreter it runs in */
    XI_ERR_THREAD = -10,    /* an OS thread could not be started */
    XI_ERR_NOT_OWNER = -11, /* the handle does not own the interpreter */
    XI_ERR_FORKED = -12,    /* this process is a fork() child of the one that made it */
} xi_err;

/* Sets the exception that matches `code` (does nothing for XI_ERR_PYTHON, whose
 * exception is already set) and returns NULL. `id` names the interpreter, -1 if none. */
PyObject *xi_raise(xi_state *st, xi_err code, int64_t id);

#endif /* XI_ERRORS_H */
