/* Interpreters made by this library, and the main one: their records.
 *
 * Every interpreter made by this library has an xi_interp record (process-global, see
 * state.h) and an owner thread: an OS thread that creates the interpreter, ends it,
 * and runs the calls that the main thread makes. The units, each using only those
 * before it:
 *   interp.c     records, the registry of records, fork() (this header; interp_rec.h
 *                for the units below)
 *   tscache.c    per-thread data and the thread-state cache: entering an interpreter
 *   interrupt.c  interrupt(): the interrupter thread, held interrupts (callctx.h has
 *                the rules)
 *   call.c       calls: direct, or posted to the owner thread as jobs; abandoning one
 *   owner.c      owner threads, creating and closing interpreters */
#ifndef XI_INTERP_H
#define XI_INTERP_H

#include "compat.h"
#include "errors.h"
#include "state.h"

typedef struct xi_interp xi_interp;

typedef enum {
    XI_REQ_CALL = 0,     /* payload: (func, args, kwargs or None); result: the value */
    XI_REQ_EXEC = 1,     /* payload: source code (str); result: None */
    XI_REQ_PREPARE = 2,  /* payload: dict merged into __main__; result: None */
} xi_request;

/* Module start-up in the main interpreter: records the main thread, registers the main
 * interpreter. 0, or -1 with an exception set. */
int xi_interp_init_main(void);

/* A new reference to the record with that id, or NULL (XI_ERR_NOT_FOUND). */
xi_interp *xi_interp_lookup(int64_t id);

void xi_interp_incref(xi_interp *rec);
void xi_interp_decref(xi_interp *rec);

int64_t xi_interp_id(const xi_interp *rec);

int xi_interp_is_running(xi_interp *rec);

/* Whether the interpreter with that id was made by this library and has closed. */
int xi_interp_is_closed(int64_t id);

/* Ids of the live interpreters made by this library (a new list). */
PyObject *xi_interp_list_ids(void);

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
