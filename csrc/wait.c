/* Blocking waits (see wait.h). */
#include "wait.h"
#include "callctx.h"

#include "registry.h"

#include <math.h>
#include <stdint.h>
#include <unistd.h>

/* How often the main thread wakes from a wait to run signal handlers. */
#define XI_SIGNAL_SLICE_NS (50 * 1000 * 1000)

int
xi_deadline(int block, PyObject *timeout, int64_t *deadline)
{
    if (!block) {
        *deadline = xi_now_ns();
        return 0;
    }
    if (timeout == NULL || timeout == Py_None) {
        *deadline = XI_FOREVER;
        return 0;
    }
    double secs = PyFloat_AsDouble(timeout);
    if (secs == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (isnan(secs) || secs < 0) {
        PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
        return -1;
    }
    if (secs > 1e9) { /* about 31 years: the same as forever */
        *deadline = XI_FOREVER;
        return 0;
    }
    *deadline = xi_now_ns() + (int64_t)(secs * 1e9);
    return 0;
}

static _Atomic unsigned long xi_main_ident;

void
xi_set_main_thread(unsigned long ident)
{
    atomic_store(&xi_main_ident, ident);
}

int
xi_is_main_thread(void)
{
    unsigned long main_ident = atomic_load(&xi_main_ident);
    return main_ident != 0 && PyThread_get_thread_ident() == main_ident &&
           PyInterpreterState_Get() == PyInterpreterState_Main();
}

/* Set by xi_interrupt_waits; read by waiters with their object's lock held, before they
 * sleep, so a wait either sees it or is asleep when its object is woken. */
static _Atomic int xi_waits_interrupted;

void
xi_interrupt_waits(void)
{
    atomic_store(&xi_waits_interrupted, 1);
    xi_shared_wake_all();
}

int
xi_block(xi_mutex *mu, xi_cond *cv, int *sleepers, int (*attempt)(void *),
         int (*ready)(void *), void *arg, int64_t deadline)
{
    /* The main thread wakes to run signal handlers; a thread running a call, to see
     * whether interrupt() was aimed at it. */
    int main_thread = xi_is_main_thread();
    int in_call = xi_callctx_in_call();
    int sliced = main_thread || in_call;
    if (in_call && xi_callctx_take()) {
        return -1;
    }
    PyThreadState *ts = PyEval_SaveThread();
    if (ready != NULL && deadline != xi_now_ns()) {
        (void)xi_spin_until(ready, arg);
    }
    xi_lock(mu);
    for (;;) {
        if (attempt(arg)) {
            xi_unlock(mu);
            PyEval_RestoreThread(ts);
            return 1;
        }
        int64_t now = xi_now_ns();
        if (deadline != XI_FOREVER && now >= deadline) {
            xi_unlock(mu);
            PyEval_RestoreThread(ts);
            return 0;
        }
        if (!main_thread && atomic_load(&xi_waits_interrupted)) {
            xi_unlock(mu);
            PyEval_RestoreThread(ts);
            PyErr_SetString(PyExc_KeyboardInterrupt,
                            "the process is exiting (Ctrl-C): waits on shared objects end");
            return -1;
        }
        int64_t until = deadline;
        if (sliced && (until == XI_FOREVER || until > now + XI_SIGNAL_SLICE_NS)) {
            until = now + XI_SIGNAL_SLICE_NS;
        }
        (*sleepers)++;
        if (until == XI_FOREVER) {
            xi_wait(cv, mu);
        }
        else {
            (void)xi_wait_until(cv, mu, until);
        }
        (*sleepers)--;
        if (sliced && xi_now_ns() >= until && until != deadline) {
            /* a slice ended: let signal handlers run, look for interrupt() */
            xi_unlock(mu);
            PyEval_RestoreThread(ts);
            if ((main_thread && PyErr_CheckSignals() < 0) ||
                (in_call && xi_callctx_take())) {
                /* a wake-up meant for this waiter goes to the next one */
                xi_lock(mu);
                xi_signal(cv);
                xi_unlock(mu);
                return -1;
            }
            ts = PyEval_SaveThread();
            xi_lock(mu);
        }
    }
}

/* ------------------------------------------------------------ asyncio waiters */

static int
fds_add(xi_fds *w, int fd)
{
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 4;
        int *fds = PyMem_RawRealloc(w->fds, sizeof(int) * (size_t)cap);
        if (fds == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        w->fds = fds;
        w->cap = cap;
    }
    w->fds[w->n++] = fd;
    return 0;
}

static void
fds_remove(xi_fds *w, int fd)
{
    for (int i = 0; i < w->n; i++) {
        if (w->fds[i] == fd) {
            w->fds[i] = w->fds[--w->n];
            return;
        }
    }
}

PyObject *
xi_fds_update(xi_fds *w, xi_mutex *mu, PyObject *fd_obj, int add)
{
    long fd = PyLong_AsLong(fd_obj);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "not a file descriptor");
        return NULL;
    }
    xi_lock(mu);
    int rc = 0;
    if (add) {
        rc = fds_add(w, (int)fd);
    }
    else {
        fds_remove(w, (int)fd);
    }
    xi_unlock(mu);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

void
xi_fds_notify(const xi_fds *w)
{
    const uint64_t one = 1;
    for (int i = 0; i < w->n; i++) {
        /* non-blocking eventfd: a full counter already means "wake up" */
        ssize_t rc = write(w->fds[i], &one, sizeof(one));
        (void)rc;
    }
}

void
xi_fds_fini(xi_fds *w)
{
    PyMem_RawFree(w->fds);
    w->fds = NULL;
    w->n = w->cap = 0;
}

/* The coroutines live in Python (extrainterpreters._async_waits). */
PyObject *
xi_async_call(const char *name, PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *mod = PyImport_ImportModule("extrainterpreters._async_waits");
    PyObject *fn = mod ? PyObject_GetAttrString(mod, name) : NULL;
    Py_XDECREF(mod);
    if (fn == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *full = PyTuple_New(n + 1);
    if (full == NULL) {
        Py_DECREF(fn);
        return NULL;
    }
    PyTuple_SET_ITEM(full, 0, Py_NewRef(self));
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    PyObject *coro = PyObject_Call(fn, full, kwargs);
    Py_DECREF(full);
    Py_DECREF(fn);
    return coro;
}

