#include "errors.h"

PyObject *
xi_raise(xi_state *st, xi_err code, int64_t id)
{
    switch (code) {
    case XI_OK:
    case XI_ERR_PYTHON:
        assert(code == XI_OK || PyErr_Occurred());
        break;
    case XI_ERR_NOMEM:
        PyErr_NoMemory();
        break;
    case XI_ERR_NOT_FOUND:
        PyErr_Format(st->InterpreterNotFoundError,
                     "interpreter %lld does not exist (closed or never created)",
                     (long long)id);
        break;
    case XI_ERR_CLOSED:
        PyErr_Format(st->InterpreterNotFoundError, "interpreter %lld is closed", (long long)id);
        break;
    case XI_ERR_RUNNING:
        PyErr_Format(st->InterpreterError,
                     "interpreter %lld is running code; it can be closed once that "
                     "code returns (interrupt() stops it)", (long long)id);
        break;
    case XI_ERR_CREATE:
        if (!PyErr_Occurred()) {
            PyErr_SetString(st->InterpreterError, "the interpreter could not be created");
        }
        break;
    case XI_ERR_NESTING:
        PyErr_SetString(st->InterpreterError,
                        "calls nested across interpreters too deeply in one thread");
        break;
    case XI_ERR_FINALIZING:
        PyErr_SetString(st->InterpreterError, "the Python runtime is shutting down");
        break;
    case XI_ERR_CURRENT:
        PyErr_Format(st->InterpreterError,
                     "interpreter %lld cannot close itself", (long long)id);
        break;
    case XI_ERR_THREAD:
        PyErr_SetString(st->InterpreterError, "could not start an OS thread");
        break;
    case XI_ERR_FORKED:
        PyErr_Format(st->InterpreterNotFoundError,
                     "interpreter %lld does not exist in this process: it was made by the "
                     "parent of this os.fork() child", (long long)id);
        break;
    case XI_ERR_NOT_OWNER:
        PyErr_Format(st->InterpreterError,
                     "this object does not own interpreter %lld and cannot close it",
                     (long long)id);
        break;
    }
    return NULL;
}
