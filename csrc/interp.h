/* Interpreters: creation, calls, interruption and closing.
 *
 * Every interpreter made by this library has an xi_interp record (process-global, see
 * state.h) and an owner thread: an OS thread that creates the interpreter, ends it,
 * and runs the calls that the main thread makes. The main thread never enters a
 * subinterpreter, so it keeps handling signals: it waits for its calls with its GIL
 * released and checks for signals while it waits. Every other thread calls directly:
 * it switches to the target interpreter with a thread state cached for that
 * (thread, interpreter) pair, runs the call, and switches back. */
#ifndef XI_INTERP_H
#define XI_INTERP_H

#include "compat.h"
#include "errors.h"
#include "state.h"
#include "wire.h"

typedef struct xi_interp xi_interp;

typedef enum {
    XI_REQ_CALL = 0,     /* payload: (func, args, kwargs or None); result: the value */
    XI_REQ_EXEC = 1,     /* payload: source code (str); result: None */
    XI_REQ_PREPARE = 2,  /* payload: dict merged into __main__; result: None */
} xi_request;

/* Module start-up in the main interpreter: records the main thread, registers the main
 * interpreter. 0, or -1 with an exception set. */
int xi_interp_init_main(void);

/* Creates an interpreter whose sys.path is `sys_path` (a list; its str items are
 * copied), with `config` (NULL: the isolated configuration, its own GIL); with
 * bind_main, its __main__ starts with sys and pickle (as in extrainterpreters 0.3.0).
 * On success *out holds a new reference to the record. */
xi_err xi_interp_create(xi_state *st, PyObject *sys_path, const PyInterpreterConfig *config,
                        int bind_main, xi_interp **out);

/* A new reference to the record with that id, or NULL (XI_ERR_NOT_FOUND). */
xi_interp *xi_interp_lookup(int64_t id);

void xi_interp_incref(xi_interp *rec);
void xi_interp_decref(xi_interp *rec);

int64_t xi_interp_id(const xi_interp *rec);

/* Runs a request in the interpreter and returns its result in the current one (new
 * reference), or NULL with an exception set. `req` is a packet encoded in the current
 * interpreter; the caller releases it afterwards (it is empty when an interrupted call
 * kept it: a call abandoned while the target decodes it). */
PyObject *xi_interp_run(xi_state *st, xi_interp *rec, xi_request kind, xi_packet *req);

/* Ends the interpreter and waits for it. XI_OK when it is closed (or was already). */
xi_err xi_interp_close(xi_interp *rec);

/* The owning handle is gone: close the interpreter as soon as it is idle, without
 * waiting. */
void xi_interp_orphan(xi_interp *rec);

/* Raises KeyboardInterrupt in every call running in the interpreter. Does not wait. */
xi_err xi_interp_interrupt(xi_interp *rec);

/* The same, for the calls that the OS thread `ident` runs there only (0: every call). */
xi_err xi_interp_interrupt_thread(xi_interp *rec, unsigned long ident);

int xi_interp_is_running(xi_interp *rec);

/* Whether the interpreter with that id was made by this library and has closed. */
int xi_interp_is_closed(int64_t id);

/* Whether this thread runs a call made through this library (its blocking waits then
 * watch for interrupt()). */
int xi_interp_in_call(void);

/* If interrupt() was aimed at this thread's current call and not delivered yet, raises
 * KeyboardInterrupt here (clearing the pending asynchronous one) and returns 1. */
int xi_interp_take_interrupt(void);

/* Library code that runs Python code for the current thread's call (encoding,
 * decoding, describing an exception, importing) runs between these two: interrupt()
 * does not raise there, but once the call's own code runs again. Nestable; the GIL is
 * held; nothing happens outside of calls. */
void xi_interp_mask(void);
void xi_interp_unmask(void);

/* The class of the asynchronous exception that interrupt() arms (module state). */
extern PyType_Spec xi_interrupt_spec;

/* How many thread states the current thread has cached (the entries on its list,
 * retired ones included): for tests. */
Py_ssize_t xi_interp_thread_cache_len(void);

/* Ids of the live interpreters made by this library (a new list). */
PyObject *xi_interp_list_ids(void);

/* Closes every interpreter made by this library, waiting for running calls to finish;
 * no interpreter can be created afterwards. Run once, at exit. Calls running on the OS
 * threads `daemons` (n of them: the main interpreter's threads that exit does not
 * join) are interrupted instead, again while they keep the interpreter busy. Ctrl-C
 * while it waits interrupts the calls still running and every wait on a shared object
 * (xi_interrupt_waits), so that the threads the closing interpreters join can end. */
void xi_interp_close_all(const unsigned long *daemons, Py_ssize_t n);

/* os.fork() (see interp.c, "fork()"). The before-hook of os.fork() calls
 * xi_interp_fork_prepare: interpreters that are made from then on wait until
 * xi_interp_fork_done (the after-hook in the parent); it waits (5 s at most) for those
 * being created or ended, and returns ([busy ids], [idle ids]): the interpreters still
 * open, running calls or not. NULL with an exception set. A child that inherits an
 * open interpreter exits with XI_FORK_EXIT_STATUS, before CPython would crash it. */
#define XI_FORK_EXIT_STATUS 70
PyObject *xi_interp_fork_prepare(void);
void xi_interp_fork_done(void);

/* fork() itself (pthread_atfork handlers, which module.c calls among those of the other
 * units): before it, the registry lock is taken; after it, the parent releases it and
 * the child starts a new epoch with the main interpreter's record alone (and exits with
 * XI_FORK_EXIT_STATUS when os.fork() left it an interpreter of this library). */
void xi_interp_atfork_prepare(void);
void xi_interp_atfork_parent(void);
void xi_interp_atfork_child(void);

#endif /* XI_INTERP_H */
