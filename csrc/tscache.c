/* The thread-state cache: per-thread data, and the thread state that each (thread,
 * interpreter) pair uses to enter the interpreter for a call (see tscache.h). */
#include "tscache.h"
#include "interp_rec.h"

/* One cached thread state for a (thread, interpreter) pair.
 *
 * Ownership: an entry has two links, its thread's (the thread's list, next_thr) and its
 * record's (rec->cache, next_rec). Each holder drops its link once, under rec->mu, and
 * whoever drops the last one frees the entry (and its record reference), after
 * unlocking; until it has dropped its link, a holder may read the entry. ts, links and
 * dead are guarded by rec->mu; next_thr belongs to the thread, next_rec and closing_ts
 * to the record's holder. The record deletes the thread state: when the thread has
 * exited (`dead`), or when the interpreter closes (`ts` set to NULL: "retired"; the
 * thread then drops its link, at its next call into any interpreter, counted in its
 * `nretired`, or when it calls that record again).
 *
 * `thr` is the thread's data (xi_tls), which lives as long as the thread holds its
 * link: the record may touch it (its nretired) under rec->mu while links == 2. */
struct xi_tsentry {
    xi_interp *rec;
    struct xi_tls *thr;
    PyThreadState *ts;
    PyThreadState *closing_ts; /* ts, while the closing record deletes it */
    int links;               /* 2, 1 or 0 (freed) */
    int dead;                /* the thread exited: its link is gone */
    struct xi_tsentry *next_rec;
    struct xi_tsentry *next_thr;
};

/* Drops one link of `e` (rec->mu held); returns 1 when the caller must free it. */
static int
tsentry_unlink_locked(xi_tsentry *e)
{
    return --e->links == 0;
}

static void
tsentry_free(xi_tsentry *e)
{
    xi_interp *rec = e->rec;
    PyMem_RawFree(e);
    xi_interp_decref(rec);
}

/* ---------------------------------------------------------- per-thread state */

#define XI_MAX_NESTING 32

typedef struct xi_tls {
    xi_tsentry *entries;
    _Atomic int nretired;     /* entries retired since the thread last dropped them */
    int depth;
    PyThreadState *saved[XI_MAX_NESTING]; /* thread states left to enter another */
} xi_tls;

static pthread_key_t xi_tls_key;
static pthread_once_t xi_tls_once = PTHREAD_ONCE_INIT;
static _Thread_local xi_tls *xi_tls_cur;

/* At thread exit: the thread drops its link of each entry; the records delete the
 * thread states of those still cached (when next entered, or when they close). */
static void
tls_destroy(void *arg)
{
    xi_tls *t = arg;
    if (xi_tls_cur == t) {
        xi_tls_cur = NULL;
    }
    xi_tsentry *e = t->entries;
    while (e != NULL) {
        xi_tsentry *next = e->next_thr;
        xi_interp *rec = e->rec;
        xi_lock(&rec->mu);
        if (e->ts != NULL) {
            e->dead = 1;
            rec->ndead++;
        }
        int last = tsentry_unlink_locked(e);
        xi_unlock(&rec->mu);
        if (last) {
            tsentry_free(e);
        }
        e = next;
    }
    PyMem_RawFree(t);
}

static void tls_forget_after_fork(void);

static void
tls_key_create(void)
{
    (void)pthread_key_create(&xi_tls_key, tls_destroy);
    xi_rec_after_fork_hook = tls_forget_after_fork;
}

static xi_tls *
tls_get(void)
{
    if (xi_tls_cur == NULL) {
        pthread_once(&xi_tls_once, tls_key_create);
        xi_tls *t = PyMem_RawCalloc(1, sizeof(xi_tls));
        if (t == NULL) {
            return NULL;
        }
        if (pthread_setspecific(xi_tls_key, t) != 0) {
            PyMem_RawFree(t);
            return NULL;
        }
        xi_tls_cur = t;
    }
    return xi_tls_cur;
}

Py_ssize_t
xi_interp_thread_cache_len(void)
{
    Py_ssize_t n = 0;
    for (xi_tsentry *e = xi_tls_cur ? xi_tls_cur->entries : NULL; e != NULL; e = e->next_thr) {
        n++;
    }
    return n;
}

/* In a fork() child: the thread's cache entries and calls are the parent's (dropped,
 * leaked: their records stay allocated, so no new record takes their address). */
static void
tls_forget_after_fork(void)
{
    xi_tls *t = xi_tls_cur;
    if (t != NULL) {
        t->entries = NULL;
        atomic_store(&t->nretired, 0);
    }
}

static int
is_retired(xi_tsentry *e)
{
    xi_lock(&e->rec->mu);
    int retired = e->ts == NULL;
    xi_unlock(&e->rec->mu);
    return retired;
}

/* Drops this thread's link of a retired entry. */
static void
unlink_thread_entry(xi_tls *t, xi_tsentry *e)
{
    for (xi_tsentry **p = &t->entries; *p != NULL; p = &(*p)->next_thr) {
        if (*p == e) {
            *p = e->next_thr;
            break;
        }
    }
    xi_lock(&e->rec->mu);
    int last = tsentry_unlink_locked(e);
    xi_unlock(&e->rec->mu);
    if (last) {
        tsentry_free(e);
    }
}

/* Drops this thread's links of the entries that closed interpreters retired: a
 * long-lived thread that calls many interpreters in turn keeps only live ones. */
static void
drop_retired_entries(xi_tls *t)
{
    if (atomic_exchange(&t->nretired, 0) == 0) {
        return;
    }
    xi_tsentry *e = t->entries;
    while (e != NULL) {
        xi_tsentry *next = e->next_thr;
        if (is_retired(e)) {
            unlink_thread_entry(t, e);
        }
        e = next;
    }
}

/* Deletes the thread states of exited threads; runs in rec's interpreter. An entry
 * taken off the list here had only the record's link left. */
static void
prune_dead(xi_interp *rec)
{
    xi_tsentry *dead = NULL;
    xi_lock(&rec->mu);
    for (xi_tsentry **p = &rec->cache; *p != NULL;) {
        xi_tsentry *e = *p;
        if (e->dead) {
            *p = e->next_rec;
            e->next_rec = dead;
            dead = e;
            rec->ndead--;
            int last = tsentry_unlink_locked(e);
            assert(last);
            (void)last;
        }
        else {
            p = &e->next_rec;
        }
    }
    xi_unlock(&rec->mu);
    while (dead != NULL) {
        xi_tsentry *next = dead->next_rec;
        PyThreadState_Clear(dead->ts);
        PyThreadState_Delete(dead->ts);
        tsentry_free(dead); /* not the record's last reference: the caller holds one */
        dead = next;
    }
}

/* ------------------------------------------------------------ entering */

/* The current thread's side of entering `rec` (another interpreter than the current
 * one), before rec->mu is taken: a thread state that an outer call of this thread
 * left there (e->ts), or else this thread's cache entry for `rec` (*ent), or else a
 * new entry to fill (*fresh). */
static xi_err
find_cached(xi_interp *rec, xi_entry *e, xi_tls **tp, xi_tsentry **ent, xi_tsentry **fresh)
{
    xi_tls *t = *tp = tls_get();
    if (t == NULL) {
        return XI_ERR_NOMEM;
    }
    if (t->depth >= XI_MAX_NESTING) {
        return XI_ERR_NESTING;
    }
    drop_retired_entries(t);
    /* an outer call of this thread left a thread state there: reuse it */
    for (int i = t->depth - 1; i >= 0 && e->ts == NULL; i--) {
        if (PyThreadState_GetInterpreter(t->saved[i]) == rec->interp) {
            e->ts = t->saved[i];
        }
    }
    if (e->ts != NULL) {
        return XI_OK;
    }
    for (xi_tsentry **p = &t->entries; *p != NULL; p = &(*p)->next_thr) {
        if ((*p)->rec == rec) {
            *ent = *p;
            break;
        }
    }
    if (*ent != NULL && is_retired(*ent)) {
        /* the interpreter closed: drop the entry (only this thread has it) */
        unlink_thread_entry(t, *ent);
        return XI_ERR_CLOSED;
    }
    if (*ent == NULL && (*fresh = PyMem_RawCalloc(1, sizeof(xi_tsentry))) == NULL) {
        return XI_ERR_NOMEM;
    }
    return XI_OK;
}

/* Makes the thread state of this thread in `rec` (rec->mu held), cached in `fresh`
 * (which it then owns) unless it must be temporary. */
static xi_err
new_thread_state_locked(xi_interp *rec, xi_entry *e, xi_tls *t, xi_tsentry *fresh)
{
    e->ts = PyThreadState_New(rec->interp);
    if (e->ts == NULL) {
        return XI_ERR_NOMEM;
    }
    if (PyGILState_GetThisThreadState() == e->ts) {
        /* This thread had no thread state of its own, so the new one became its
         * PyGILState one; such a thread state may only be deleted by its thread, so
         * it is not cached. */
        e->temporary = 1;
        PyMem_RawFree(fresh);
        return XI_OK;
    }
    fresh->rec = rec;
    fresh->thr = t;
    fresh->ts = e->ts;
    fresh->links = 2;
    fresh->next_rec = rec->cache;
    rec->cache = fresh;
    fresh->next_thr = t->entries;
    t->entries = fresh;
    xi_interp_incref(rec);
    return XI_OK;
}

xi_err
xi_tscache_enter(xi_interp *rec, xi_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->rec = rec;
    unsigned long ident = PyThread_get_thread_ident();
    PyThreadState *cur = PyThreadState_Get();
    e->same = PyThreadState_GetInterpreter(cur) == rec->interp;

    xi_tls *t = NULL;
    xi_tsentry *ent = NULL, *fresh = NULL;
    if (!e->same) {
        xi_err err = find_cached(rec, e, &t, &ent, &fresh);
        if (err != XI_OK) {
            return err;
        }
    }

    xi_lock(&rec->mu);
    if (rec->state != XI_ST_RUNNING ||
        (rec->exiting && xi_rec_is_exit_daemon(ident))) {
        xi_unlock(&rec->mu);
        PyMem_RawFree(fresh);
        return XI_ERR_CLOSED;
    }
    if (!e->same && e->ts == NULL) {
        if (ent != NULL) {
            e->ts = ent->ts;
            assert(e->ts != NULL); /* retired only once the record is closed */
        }
        else {
            if (new_thread_state_locked(rec, e, t, fresh) != XI_OK) {
                xi_unlock(&rec->mu);
                PyMem_RawFree(fresh);
                return XI_ERR_NOMEM;
            }
            fresh = NULL;
        }
    }
    rec->nactive++;
    /* masked until run_request runs the call's own code */
    xi_callctx_begin(&e->active, rec, rec->interp, ident, e->same ? cur : e->ts,
                     rec->next_seq++);
    e->active.next = rec->active;
    rec->active = &e->active;
    xi_unlock(&rec->mu);
    PyMem_RawFree(fresh);
    return XI_OK;
}

void
xi_tscache_switch_in(xi_entry *e)
{
    if (e->same) {
        return;
    }
    xi_tls *t = xi_tls_cur;
    e->saved = PyEval_SaveThread();
    t->saved[t->depth++] = e->saved;
    PyEval_RestoreThread(e->ts);
    if (e->rec->ndead > 0) {
        prune_dead(e->rec);
    }
}

void
xi_tscache_switch_out(xi_entry *e)
{
    if (e->same) {
        return;
    }
    xi_tls *t = xi_tls_cur;
    t->depth--;
    if (e->temporary) {
        PyThreadState_Clear(e->ts);
        PyThreadState_DeleteCurrent();
        e->ts = NULL;
    }
    else {
        PyEval_SaveThread();
    }
    PyEval_RestoreThread(e->saved);
}

/* Whether this thread runs in rec's interpreter, or left a thread state there to call
 * another one. By id: an interpreter being ended may already be freed, and its address
 * taken by a new one. */
int
xi_tscache_inside(const xi_interp *rec)
{
    if (PyInterpreterState_GetID(PyInterpreterState_Get()) == rec->id) {
        return 1;
    }
    xi_tls *t = xi_tls_cur;
    for (int i = 0; t != NULL && i < t->depth; i++) {
        if (PyInterpreterState_GetID(PyThreadState_GetInterpreter(t->saved[i])) == rec->id) {
            return 1;
        }
    }
    return 0;
}

/* Takes the cache of a record whose interpreter ends and retires its entries (rec->mu
 * held); xi_tscache_delete deletes their thread states after it, since clearing runs
 * arbitrary finalizers. The record keeps its links meanwhile, so no entry is freed
 * under this walk. */
xi_tsentry *
xi_tscache_retire_locked(xi_interp *rec)
{
    xi_tsentry *entries = rec->cache;
    rec->cache = NULL;
    rec->ndead = 0;
    for (xi_tsentry *e = entries; e != NULL; e = e->next_rec) {
        e->closing_ts = e->ts;
        e->ts = NULL; /* retired */
        if (e->links == 2) {
            /* its thread is alive (see xi_tsentry): it drops the entry next time */
            atomic_fetch_add(&e->thr->nretired, 1);
        }
    }
    return entries;
}

void
xi_tscache_delete(xi_interp *rec, xi_tsentry *entries)
{
    while (entries != NULL) {
        xi_tsentry *next = entries->next_rec;
        PyThreadState_Clear(entries->closing_ts);
        PyThreadState_Delete(entries->closing_ts);
        xi_lock(&rec->mu);
        int last = tsentry_unlink_locked(entries);
        xi_unlock(&rec->mu);
        if (last) {
            tsentry_free(entries);
        }
        entries = next;
    }
}
