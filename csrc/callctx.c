/* The per-thread call record and the rules of interrupt delivery (see callctx.h). */
#include "callctx.h"

static const xi_callctx_hooks *hooks;

/* The innermost call this thread runs, if any (its outer ones hang from it). */
static _Thread_local xi_callctx *cur;

void
xi_callctx_set_hooks(const xi_callctx_hooks *h)
{
    hooks = h;
}

/* The innermost call of this thread, if it runs in the current interpreter. */
static xi_callctx *
call_here(void)
{
    xi_callctx *c = cur;
    return c != NULL && c->interp == PyInterpreterState_Get() ? c : NULL;
}

static void
arm(xi_callctx *c)
{
    hooks->set_async(c, 1);
    c->armed = 1;
}

/* Takes back the asynchronous exception armed on `c`, not raised yet. */
static void
disarm(xi_callctx *c)
{
    hooks->set_async(c, 0);
    c->armed = 0;
}

/* Arms `c` (unmasked, its interpreter's GIL held), or holds its interrupt while its
 * thread runs guarded code; returns 1 when held, and the caller makes sure that a
 * poller runs. */
static int
arm_or_hold(xi_callctx *c)
{
    if (hooks->guarded(c, 0)) {
        c->pending = 1;
        c->held = 1;
        return 1;
    }
    c->pending = 0;
    c->held = 0;
    arm(c); /* again even if armed: it may have been raised meanwhile */
    return 0;
}

static void
mask_call(xi_callctx *c)
{
    if (c->masked++ == 0) {
        if (c->armed) {
            disarm(c);
            c->pending = 1;
        }
        c->held = 0; /* pending: unmask_call arms or holds it again */
    }
}

static void
unmask_call(xi_callctx *c)
{
    if (--c->masked == 0 && c->pending && arm_or_hold(c)) {
        hooks->held(c->rec);
    }
}

void
xi_callctx_begin(xi_callctx *c, struct xi_interp *rec, PyInterpreterState *interp,
                 unsigned long ident, PyThreadState *ts, uint64_t seq)
{
    *c = (xi_callctx){.rec = rec, .interp = interp, .ident = ident, .ts = ts,
                      .masked = 1, .seq = seq};
    /* a call that this thread's call into the same interpreter makes is part of it: an
     * interrupt that reaches the outer call reaches it too */
    for (xi_callctx *o = cur; o != NULL; o = o->outer) {
        if (o->rec == rec && o->seq < c->seq) {
            c->seq = o->seq;
        }
    }
}

void
xi_callctx_enter(xi_callctx *c)
{
    c->outer = cur;
    cur = c;
}

void
xi_callctx_end(xi_callctx *c, xi_callctx **list, xi_mutex *mu)
{
    assert(c->masked > 0 && !c->armed);
    cur = c->outer;
    xi_callctx *outer = NULL;
    xi_lock(mu);
    for (xi_callctx **p = list; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    if (c->pending) {
        /* the next of the same logical call in the list is the next innermost */
        for (xi_callctx *b = *list; b != NULL && outer == NULL; b = b->next) {
            if (b->ident == c->ident && b->seq == c->seq) {
                outer = b;
            }
        }
    }
    c->pending = 0;
    c->held = 0;
    int poll = 0;
    if (outer != NULL) {
        if (outer->masked) {
            outer->pending = 1; /* (it is, in its call out: its unmask arms it) */
        }
        else {
            poll = arm_or_hold(outer);
        }
    }
    xi_unlock(mu);
    if (poll) {
        hooks->held(c->rec);
    }
}

void
xi_callctx_own_code(xi_callctx *c)
{
    unmask_call(c);
}

void
xi_callctx_own_code_end(xi_callctx *c)
{
    if (c->masked == 0) {
        mask_call(c);
    }
}

int
xi_callctx_in_call(void)
{
    return cur != NULL;
}

void
xi_callctx_mask(void)
{
    xi_callctx *c = call_here();
    if (c != NULL) {
        mask_call(c);
    }
}

void
xi_callctx_unmask(void)
{
    xi_callctx *c = call_here();
    if (c != NULL) {
        unmask_call(c);
    }
}

int
xi_callctx_take(void)
{
    xi_callctx *c = call_here();
    if (c == NULL) {
        return 0;
    }
    if (c->armed) {
        /* raise it here instead of at the next bytecode */
        disarm(c);
    }
    else if (c->pending) {
        if (c->held && hooks->guarded(c, 1)) {
            return 0; /* a wait of guarded code itself: raised once it has left */
        }
        /* (held, a wait that a module's code makes as it is imported: raised from
         * there, as any exception of the module's code) */
        c->pending = 0;
        c->held = 0;
    }
    else {
        return 0;
    }
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return 1;
}

void
xi_callctx_raised(void)
{
    PyInterpreterState *here = PyInterpreterState_Get();
    for (xi_callctx *c = cur; c != NULL; c = c->outer) {
        if (c->interp == here && c->armed) {
            c->armed = 0;
            break;
        }
    }
}

xi_callctx *
xi_callctx_holding(void)
{
    xi_callctx *c = call_here();
    return c != NULL && c->held && !c->masked ? c : NULL;
}

void
xi_callctx_release(xi_callctx *c, int arm_now)
{
    c->pending = 0;
    c->held = 0;
    if (arm_now) {
        arm(c);
    }
}

void
xi_callctx_after_fork(void)
{
    cur = NULL;
}

/* Whether `c` is the innermost of the calls of its thread that are one logical call:
 * a nested call into the same interpreter takes the outer call's seq, and is linked
 * into the list after it, so nearer the head. */
static int
innermost_of_its_call(xi_callctx *list, xi_callctx *c)
{
    for (xi_callctx *b = list; b != c; b = b->next) {
        if (b->ident == c->ident && b->seq == c->seq) {
            return 0;
        }
    }
    return 1;
}

int
xi_callctx_interrupt(xi_callctx *list, unsigned long ident, uint64_t before)
{
    int held = 0;
    for (xi_callctx *c = list; c != NULL; c = c->next) {
        if ((ident != 0 && c->ident != ident) || c->seq >= before) {
            continue; /* another thread's, or one that began after the request */
        }
        if (!innermost_of_its_call(list, c)) {
            continue; /* masked in a nested call, which gets it */
        }
        if (c->masked) {
            c->pending = 1;
        }
        else {
            held |= arm_or_hold(c);
        }
    }
    return held;
}

int
xi_callctx_poll_held(xi_callctx *list)
{
    int still = 0;
    for (xi_callctx *c = list; c != NULL; c = c->next) {
        if (!c->held) {
            continue;
        }
        if (c->masked) {
            c->held = 0;
        }
        else {
            still |= arm_or_hold(c);
        }
    }
    return still;
}

int
xi_callctx_any_held(const xi_callctx *list)
{
    for (const xi_callctx *c = list; c != NULL; c = c->next) {
        if (c->held) {
            return 1;
        }
    }
    return 0;
}

void
xi_callctx_rearm_others(xi_callctx *list, xi_callctx *except)
{
    for (xi_callctx *c = list; c != NULL; c = c->next) {
        if (c != except && c->armed) {
            hooks->set_async(c, 1);
        }
    }
}
