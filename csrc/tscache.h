/* The thread-state cache. A thread other than the main one calls an interpreter
 * directly: it switches to it with a thread state cached for that (thread,
 * interpreter) pair, runs the call, and switches back; the thread's data (its cache
 * entries, the thread states it left to enter another interpreter) is freed when it
 * exits. */
#ifndef XI_TSCACHE_H
#define XI_TSCACHE_H

#include "callctx.h"
#include "interp.h"

typedef struct xi_tsentry xi_tsentry;

/* How a thread is inside another interpreter for one call. */
typedef struct {
    xi_interp *rec;
    int same;               /* the target is the current interpreter: no switch */
    int temporary;          /* ts is deleted on leaving (see xi_tscache_enter) */
    PyThreadState *ts;      /* the thread state used in the target */
    PyThreadState *saved;   /* the caller's, detached while inside */
    xi_callctx active;
} xi_entry;

/* Registers a call in `rec` (it can no longer close; its xi_callctx is begun and on
 * the record's list) and picks the thread state that the current thread uses there.
 * The caller's GIL is held. */
xi_err xi_tscache_enter(xi_interp *rec, xi_entry *e);

/* Switches the current thread into the target of `e` and back. */
void xi_tscache_switch_in(xi_entry *e);
void xi_tscache_switch_out(xi_entry *e);

/* Whether this thread runs in rec's interpreter, or left a thread state there to call
 * another one. */
int xi_tscache_inside(const xi_interp *rec);

/* The interpreter of `rec` ends: its cache entries are retired (rec->mu held), then
 * their thread states deleted, in that interpreter (its GIL held). */
xi_tsentry *xi_tscache_retire_locked(xi_interp *rec);
void xi_tscache_delete(xi_interp *rec, xi_tsentry *entries);

/* How many thread states the current thread has cached (the entries on its list,
 * retired ones included): for tests. */
Py_ssize_t xi_interp_thread_cache_len(void);

#endif /* XI_TSCACHE_H */
