/* Blocking waits: in C, with the thread state detached, honouring a deadline; the main
 * thread wakes every 50 ms to run signal handlers (Ctrl-C), and a thread running a call
 * made through this library, to notice interrupt(). */
#ifndef XI_WAIT_H
#define XI_WAIT_H

#include "compat.h"

#define XI_FOREVER (-1)

/* Converts (block, timeout) as queue.Queue takes them into an absolute monotonic
 * deadline: XI_FOREVER, or a time (now when not blocking). -1 with ValueError/TypeError
 * set on a bad timeout. */
int xi_deadline(int block, PyObject *timeout, int64_t *deadline);

/* Whether this is the main thread of the main interpreter (the one that handles
 * signals); known once the main interpreter has imported the module. */
int xi_is_main_thread(void);
void xi_set_main_thread(unsigned long ident);

/* Runs `attempt` (with `mu` held) until it returns nonzero, waiting on `cv` between
 * attempts, until `deadline`. `ready`, if not NULL, is polled without the lock for a
 * short spin before the first sleep. `*sleepers` counts the threads asleep on `cv`
 * (guarded by `mu`), so that wakers can skip signalling nobody. The GIL is held on entry
 * and on return, released in between.
 * Returns 1 when attempt succeeded, 0 on timeout, -1 with an exception set (a signal
 * handler raised). */
int xi_block(xi_mutex *mu, xi_cond *cv, int *sleepers, int (*attempt)(void *),
             int (*ready)(void *), void *arg, int64_t deadline);

/* Ctrl-C at exit: from now on every blocking wait on a shared object, in every thread
 * but the main thread, raises KeyboardInterrupt, and the waits in progress wake to do
 * so. Threads that the closing interpreters join then end (see docs/reliability.md).
 * Never undone: the process is exiting. */
void xi_interrupt_waits(void);

/* File descriptors (eventfds) of asyncio waiters: a primitive writes to each when its
 * state changes in their favour, and the waiter's event loop wakes and tries again.
 * Guarded by the primitive's mutex. */
typedef struct {
    int *fds;
    int n, cap;
} xi_fds;

/* The body of a primitive's _add_waiter/_remove_waiter: (un)registers the eventfd
 * `fd_obj` in `w` under `mu`. None, or NULL with ValueError (not a file descriptor) or
 * MemoryError set. */
PyObject *xi_fds_update(xi_fds *w, xi_mutex *mu, PyObject *fd_obj, int add);
void xi_fds_notify(const xi_fds *w);
void xi_fds_fini(xi_fds *w);

/* Calls extrainterpreters._async_waits.<name>(self, *args, **kwargs): the coroutine of
 * an awaitable method. */
PyObject *xi_async_call(const char *name, PyObject *self, PyObject *args, PyObject *kwargs);

#endif /* XI_WAIT_H */
