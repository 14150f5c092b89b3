/* The per-thread call record: what interrupt() needs to know about a call that runs,
 * and the rules by which it is delivered. Every file that masks, arms, takes or asks
 * about an interrupt does it through this API.
 *
 * A call made through this library (a direct call, or a job that an owner thread
 * runs) has one xi_callctx, on the stack of the thread that runs it. The interpreter's
 * record (interp.c) links it into its list of running calls (rec->active, guarded by
 * rec->mu), where the interrupter finds it; this unit keeps the thread's own chain of
 * calls (the innermost one and its `outer` ones) and every flag below. */
#ifndef XI_CALLCTX_H
#define XI_CALLCTX_H

#include "compat.h"

struct xi_interp;

/* A running call, for interrupt().
 *
 * interrupt() is delivered as an asynchronous KeyboardInterrupt, which CPython raises
 * at the next bytecode the thread runs in the call's interpreter. It is armed only
 * while the call runs its own code: while the library runs Python code for the call
 * (decoding, encoding, describing an exception, importing; see xi_callctx_mask) the
 * call is masked and an interrupt waits as `pending`, armed when the mask ends.
 * Otherwise an exception could land in importlib (leaving a module lock taken) or
 * between two steps of the library's own bookkeeping.
 *
 * The call's own code may also run CPython's Python code that holds a lock across
 * bytecodes, where an exception landing between taking and releasing it leaves the
 * lock taken for good (the import system: see interrupt.c, guarded_modules): there an
 * interrupt is `held`, pending until the thread has left that code, which
 * sys.monitoring reports and a poller thread checks too (xi_callctx_poll_held).
 *
 * One interrupt() is raised once per logical call: a call nested in a call of the same
 * thread into the same interpreter (X -> B -> X) takes the outer call's seq, and only
 * the innermost of them is hit (the outer one is masked meanwhile, and must not get it
 * again when the nested call returns). An interrupt still pending on such a nested
 * call as it returns goes to the outer call, which goes on.
 *
 * masked, pending, held and armed are only used with the GIL of the call's interpreter
 * held (by its thread, or by the interrupter, which takes that GIL), which serializes
 * them; only this unit changes them. The list links (next) are guarded by rec->mu;
 * outer belongs to the thread. */
typedef struct xi_callctx {
    struct xi_interp *rec;       /* the record of the call's interpreter */
    PyInterpreterState *interp;  /* that interpreter */
    unsigned long ident;         /* the OS thread running it */
    PyThreadState *ts;           /* its thread state in that interpreter */
    int masked;              /* > 0: the library runs code for it (or a nested call) */
    int pending;             /* an interrupt arrived while masked (or held) */
    int held;                /* pending because the thread ran guarded code */
    int armed;               /* the async exception is set and not raised yet */
    uint64_t seq;            /* when the call began (the record's next number; a call of
                                the same thread nested in a call into the same
                                interpreter takes the outer call's): an interrupt() hits
                                only calls that began before it */
    struct xi_callctx *next;     /* the record's list of running calls (rec->mu) */
    struct xi_callctx *outer;    /* the thread's enclosing call */
} xi_callctx;

/* What this unit asks of the layer that delivers interrupts (interrupt.c installs
 * them, before it first interrupts a call: no call has an interrupt before that). */
typedef struct {
    /* Whether the thread of call `c` runs guarded code: anywhere in the call, the
     * frames found then watched until it leaves them (innermost = 0; `c` runs on
     * another thread, or this one), or in its innermost frame (innermost = 1; `c` is
     * this thread's call). Keeps the caller's exception. */
    int (*guarded)(xi_callctx *c, int innermost);
    /* Sets (arm = 1) or takes back (arm = 0) the asynchronous exception of the thread
     * of `c`; its interpreter's GIL is held. */
    void (*set_async)(xi_callctx *c, int arm);
    /* An interrupt of a call of `rec` is held: makes sure that a poller runs. */
    void (*held)(struct xi_interp *rec);
} xi_callctx_hooks;

void xi_callctx_set_hooks(const xi_callctx_hooks *hooks);

/* --- a call's life (the record's lock, where named, is taken by the caller) */

/* Fills `c` for a call of the current thread into `rec` (interpreter `interp`, thread
 * state `ts` there), numbered `seq`: the outer call's number instead when this thread
 * runs a call into the same record already (nested: one logical call). Masked until
 * the call's own code runs (xi_callctx_own_code). The caller links it into the
 * record's list (rec->mu held). */
void xi_callctx_begin(xi_callctx *c, struct xi_interp *rec, PyInterpreterState *interp,
                      unsigned long ident, PyThreadState *ts, uint64_t seq);

/* The call becomes this thread's innermost (it runs in its interpreter now). */
void xi_callctx_enter(xi_callctx *c);

/* The call returns: it leaves this thread, and `list` (the record's list of running
 * calls, guarded by `mu`, which this takes). It is masked and not armed: an interrupt
 * still pending arrived as it returned, and is dropped, unless the call is nested in
 * an outer call of the same thread into the same interpreter, which gets it. Runs in
 * the call's interpreter. */
void xi_callctx_end(xi_callctx *c, xi_callctx **list, xi_mutex *mu);

/* The call's own code runs between these two: the only part that interrupt() may hit.
 * own_code_end masks it again unless its code did already (_call_pending masks as the
 * call's code returns). */
void xi_callctx_own_code(xi_callctx *c);
void xi_callctx_own_code_end(xi_callctx *c);

/* --- the current thread */

/* Whether this thread runs a call made through this library (its blocking waits then
 * watch for interrupt()). */
int xi_callctx_in_call(void);

/* Library code that runs Python code for the current thread's call (encoding,
 * decoding, describing an exception, importing) runs between these two: interrupt()
 * does not raise there, but once the call's own code runs again. Nestable; the GIL is
 * held; nothing happens outside of calls, or in another interpreter than the
 * call's. */
void xi_callctx_mask(void);
void xi_callctx_unmask(void);

/* If interrupt() was aimed at this thread's current call and not delivered yet, raises
 * KeyboardInterrupt here (clearing the pending asynchronous one) and returns 1. A wait
 * of guarded code itself takes nothing: the interrupt is raised once it has left. */
int xi_callctx_take(void);

/* CPython raised the armed exception in this thread: its call here is not armed any
 * more. */
void xi_callctx_raised(void);

/* This thread's innermost call, when it runs in the current interpreter, is not
 * masked, and has an interrupt held; else NULL. */
xi_callctx *xi_callctx_holding(void);

/* The held interrupt of `c` (from xi_callctx_holding) is no longer held: armed now
 * (arm = 1), or raised by the caller (arm = 0). */
void xi_callctx_release(xi_callctx *c, int arm);

/* In a fork() child: the thread's calls are the parent's. */
void xi_callctx_after_fork(void);

/* --- the interrupter (the record's lock and its interpreter's GIL held) */

/* interrupt() for the calls on `list` that thread `ident` runs (0: every thread) and
 * that began before `before`: the innermost of each logical call is armed, or gets it
 * pending (masked) or held (guarded code). Returns whether one was held. */
int xi_callctx_interrupt(xi_callctx *list, unsigned long ident, uint64_t before);

/* One pass over the held interrupts on `list`: arms those whose thread left guarded
 * code; a masked call drops the hold (its unmask decides again). Returns whether one
 * is still held. */
int xi_callctx_poll_held(xi_callctx *list);

/* Whether a call on `list` has an interrupt held. */
int xi_callctx_any_held(const xi_callctx *list);

/* Sets again the asynchronous exception of every call on `list` but `except` that is
 * armed (CPython 3.12 keeps one flag per interpreter for them). */
void xi_callctx_rearm_others(xi_callctx *list, xi_callctx *except);

#endif /* XI_CALLCTX_H */
