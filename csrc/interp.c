/* Interpreters: their records, the registry of records, fork() (see interp.h and
 * interp_rec.h). */
#include "interp_rec.h"
#include "wait.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static xi_mutex xi_registry_mu = PTHREAD_MUTEX_INITIALIZER;
#if XI_LIFECYCLE_LOCK
xi_mutex xi_lifecycle_mu = PTHREAD_MUTEX_INITIALIZER;
#endif
void (*xi_rec_after_fork_hook)(void);
static xi_interp *xi_registry;      /* every record not yet closed */
static xi_interp *xi_main_rec;      /* the main interpreter's (never closed) */
static int64_t *xi_closed_ids;      /* ids of closed interpreters, sorted */
static size_t xi_nclosed, xi_closed_cap;
static int xi_shutting_down;
/* At exit (xi_interp_close_all): the threads whose calls are interrupted rather than
 * waited for. Written once, before any record's `exiting` is set under its mutex, and
 * read under that mutex; never freed. */
static unsigned long *xi_exit_daemons;
static Py_ssize_t xi_exit_ndaemons;

int
xi_rec_is_exit_daemon(unsigned long ident)
{
    for (Py_ssize_t i = 0; i < xi_exit_ndaemons; i++) {
        if (xi_exit_daemons[i] == ident) {
            return 1;
        }
    }
    return 0;
}
/* fork(). A child has the thread that forked only: the interpreters made by its parent,
 * their owner threads and the threads that called them are not there. Each fork() child
 * starts a new epoch; a record of an older one is the parent's (xi_rec_forked): it is never
 * locked again (a thread that is gone may have held its mutex), and it refuses calls.
 * The child's registry holds the main interpreter's record only, reset, and the child
 * makes interpreters of its own.
 *
 * CPython's own code in the child (PyOS_AfterFork_Child) deletes the subinterpreters
 * the child inherited, and crashes doing so (every version, 3.12 to 3.15, with the
 * standard library's interpreters too). So a fork made by os.fork() waits, in its
 * before-hook (xi_interp_fork_prepare), for the interpreters being created or ended;
 * interpreters made meanwhile wait for the fork to be done (the gate); and a child
 * that would still inherit an interpreter of this library exits at once, saying so,
 * before CPython gets there (xi_interp_atfork_child). Across fork() itself the registry
 * lock is held, so that the child finds the registry whole. */
static unsigned xi_epoch;
static int xi_fork_gate;     /* a fork is being prepared: creations wait (registry_mu) */
static int xi_fork_python;   /* ... through os.fork(): the child runs PyOS_AfterFork_Child */
static int xi_creating;      /* creations in flight (registry_mu) */
static uint64_t xi_registry_gen; /* counts creations ended and records removed (registry_mu) */
static xi_cond xi_fork_cond; /* broadcast as xi_registry_gen or xi_fork_gate changes */
static int xi_fork_sleepers;

int
xi_rec_forked(const xi_interp *rec)
{
    return rec->epoch != xi_epoch;
}

int64_t
xi_interp_id(const xi_interp *rec)
{
    return rec->id;
}

void
xi_interp_incref(xi_interp *rec)
{
    atomic_fetch_add(&rec->refcnt, 1);
}

void
xi_rec_free_init_path(xi_interp *rec)
{
    for (Py_ssize_t i = 0; i < rec->init_path_len; i++) {
        PyMem_RawFree(rec->init_path[i]);
    }
    PyMem_RawFree(rec->init_path);
    rec->init_path = NULL;
    rec->init_path_len = 0;
}

void
xi_interp_decref(xi_interp *rec)
{
    if (atomic_fetch_sub(&rec->refcnt, 1) == 1) {
        PyMem_RawFree(rec->spare_close);
        xi_rec_free_init_path(rec);
        xi_cond_fini(&rec->wake);
        xi_cond_fini(&rec->changed);
        xi_mutex_fini(&rec->mu);
        PyMem_RawFree(rec);
    }
}

xi_interp *
xi_rec_new(void)
{
    xi_interp *rec = PyMem_RawCalloc(1, sizeof(xi_interp));
    xi_job *spare = PyMem_RawCalloc(1, sizeof(xi_job));
    if (rec == NULL || spare == NULL) {
        PyMem_RawFree(rec);
        PyMem_RawFree(spare);
        return NULL;
    }
    rec->spare_close = spare;
    rec->id = -1;
    rec->epoch = xi_epoch;
    atomic_init(&rec->refcnt, 1);
    xi_mutex_init(&rec->mu);
    xi_cond_init(&rec->wake);
    xi_cond_init(&rec->changed);
    rec->jobs_tail = &rec->jobs;
    atomic_init(&rec->njobs, 0);
    return rec;
}

void
xi_rec_remember_closed(int64_t id)
{
    xi_lock(&xi_registry_mu);
    if (xi_nclosed == xi_closed_cap) {
        size_t cap = xi_closed_cap ? xi_closed_cap * 2 : 64;
        int64_t *ids = PyMem_RawRealloc(xi_closed_ids, cap * sizeof(int64_t));
        if (ids == NULL) {
            xi_unlock(&xi_registry_mu);
            return; /* then it is only not known as closed */
        }
        xi_closed_ids = ids;
        xi_closed_cap = cap;
    }
    size_t i = xi_nclosed;
    while (i > 0 && xi_closed_ids[i - 1] > id) {
        xi_closed_ids[i] = xi_closed_ids[i - 1];
        i--;
    }
    xi_closed_ids[i] = id;
    xi_nclosed++;
    xi_unlock(&xi_registry_mu);
}

int
xi_interp_is_closed(int64_t id)
{
    xi_lock(&xi_registry_mu);
    size_t lo = 0, hi = xi_nclosed;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (xi_closed_ids[mid] < id) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    int closed = lo < xi_nclosed && xi_closed_ids[lo] == id;
    xi_unlock(&xi_registry_mu);
    return closed;
}

int
xi_rec_register(xi_interp *rec)
{
    xi_lock(&xi_registry_mu);
    if (xi_shutting_down) {
        xi_unlock(&xi_registry_mu);
        return -1;
    }
    xi_interp_incref(rec);
    rec->next = xi_registry;
    xi_registry = rec;
    xi_unlock(&xi_registry_mu);
    return 0;
}

void
xi_rec_unregister(xi_interp *rec)
{
    int found = 0;
    xi_lock(&xi_registry_mu);
    for (xi_interp **p = &xi_registry; *p != NULL; p = &(*p)->next) {
        if (*p == rec) {
            *p = rec->next;
            found = 1;
            break;
        }
    }
    xi_registry_gen++;
    if (xi_fork_sleepers > 0) {
        xi_broadcast(&xi_fork_cond);
    }
    xi_unlock(&xi_registry_mu);
    if (found) {
        xi_interp_decref(rec);
    }
}

xi_interp *
xi_interp_lookup(int64_t id)
{
    xi_interp *found = NULL;
    xi_lock(&xi_registry_mu);
    for (xi_interp *r = xi_registry; r != NULL; r = r->next) {
        if (r->id == id) {
            found = r;
            xi_interp_incref(r);
            break;
        }
    }
    xi_unlock(&xi_registry_mu);
    return found;
}

/* Takes a reference to every record of this library in the registry (a new array of *n,
 * NULL when out of memory). The registry lock is never held while a record's is taken:
 * the fork's prepare handler takes the registry lock while CPython's own locks are held,
 * and some holders of a record's lock wait for those. */
static xi_interp **
registry_snapshot(Py_ssize_t *n)
{
    *n = 0;
    Py_ssize_t cap = 16;
    for (;;) {
        xi_interp **recs = PyMem_RawMalloc((size_t)cap * sizeof(xi_interp *));
        if (recs == NULL) {
            return NULL;
        }
        Py_ssize_t count = 0;
        xi_lock(&xi_registry_mu);
        for (xi_interp *r = xi_registry; r != NULL; r = r->next) {
            if (r->has_owner) {
                if (count < cap) {
                    xi_interp_incref(r);
                    recs[count] = r;
                }
                count++;
            }
        }
        xi_unlock(&xi_registry_mu);
        if (count <= cap) {
            *n = count;
            return recs;
        }
        for (Py_ssize_t i = 0; i < cap; i++) {
            xi_interp_decref(recs[i]);
        }
        PyMem_RawFree(recs);
        cap = count + 16;
    }
}

static void
snapshot_free(xi_interp **recs, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        xi_interp_decref(recs[i]);
    }
    PyMem_RawFree(recs);
}

PyObject *
xi_interp_list_ids(void)
{
    Py_ssize_t n;
    xi_interp **recs = registry_snapshot(&n);
    if (recs == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *ids = PyList_New(0);
    for (Py_ssize_t i = 0; i < n && ids != NULL; i++) {
        xi_interp *r = recs[i];
        xi_lock(&r->mu);
        int live = r->state == XI_ST_RUNNING;
        xi_unlock(&r->mu);
        PyObject *id = live ? PyLong_FromLongLong(r->id) : NULL;
        if (live && (id == NULL || PyList_Append(ids, id) < 0)) {
            Py_CLEAR(ids);
        }
        Py_XDECREF(id);
    }
    snapshot_free(recs, n);
    return ids;
}

void
xi_interp_atfork_prepare(void)
{
    xi_lock(&xi_registry_mu);
}

void
xi_interp_atfork_parent(void)
{
    xi_unlock(&xi_registry_mu);
}

/* In the child, which has this one thread: new locks (a thread that is gone may have
 * held the old ones), a new epoch, the parent's records out of the registry. It takes
 * no lock and allocates nothing. */
void
xi_interp_atfork_child(void)
{
    xi_mutex_init(&xi_registry_mu);
#if XI_LIFECYCLE_LOCK
    xi_mutex_init(&xi_lifecycle_mu);
#endif
    xi_cond_init(&xi_fork_cond);
    xi_fork_sleepers = 0;
    xi_epoch++;
    long open = xi_creating;
    for (xi_interp *r = xi_registry; r != NULL; r = r->next) {
        /* (the parent's records stay allocated: their references are never all
         * dropped here, since their owner threads are gone) */
        open += r->has_owner;
    }
    xi_creating = 0;
    xi_fork_gate = 0;
    xi_registry = NULL;
    if (xi_main_rec != NULL) {
        /* CPython deleted the main interpreter's other thread states: the cache
         * entries of the threads that are gone are dropped (leaked) with them */
        xi_interp *m = xi_main_rec;
        xi_mutex_init(&m->mu);
        xi_cond_init(&m->wake);
        xi_cond_init(&m->changed);
        m->epoch = xi_epoch;
        m->cache = NULL;
        m->ndead = 0;
        m->active = NULL;
        m->nactive = 0;
        m->ninterrupters = 0;
        m->polling = 0;
        m->watching = 0;
        m->next = NULL;
        xi_registry = m;
        xi_set_main_thread(PyThread_get_thread_ident());
    }
    if (xi_rec_after_fork_hook != NULL) {
        xi_rec_after_fork_hook();
    }
    xi_callctx_after_fork();
    if (open > 0 && xi_fork_python) {
        /* PyOS_AfterFork_Child would crash deleting the interpreters */
        char msg[400];
        int len = snprintf(msg, sizeof(msg),
            "extrainterpreters: os.fork() was called while %ld interpreter(s) made by "
            "extrainterpreters were open in the parent; CPython cannot remove them from "
            "the child (it would crash there), so the child exits with status %d. Close "
            "them before forking, or use multiprocessing's forkserver or spawn context.\n",
            open, XI_FORK_EXIT_STATUS);
        if (len > 0) {
            ssize_t w = write(2, msg, (size_t)len < sizeof(msg) ? (size_t)len : sizeof(msg) - 1);
            (void)w;
        }
        _exit(XI_FORK_EXIT_STATUS);
    }
    xi_fork_python = 0;
}

static void
init_fork_cond(void)
{
    xi_cond_init(&xi_fork_cond);
}

/* (module.c registers the fork handlers, xi_interp_atfork_* among those of the other
 * units, when it is first imported) */
static void
ensure_fork_cond(void)
{
    static pthread_once_t fork_cond_once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&fork_cond_once, init_fork_cond);
}

/* (xi_registry_mu held) Whether creations ended or records left since *gen. */
static int
registry_changed(void *gen)
{
    return xi_registry_gen != *(uint64_t *)gen;
}

#define XI_FORK_WAIT_NS (5 * 1000 * 1000 * 1000LL)

PyObject *
xi_interp_fork_prepare(void)
{
    ensure_fork_cond();
    xi_lock(&xi_registry_mu);
    xi_fork_gate = 1;
    xi_fork_python = 1;
    xi_unlock(&xi_registry_mu);
    PyObject *busy = PyList_New(0);
    PyObject *idle = PyList_New(0);
    if (busy == NULL || idle == NULL) {
        goto fail;
    }
    int64_t deadline = xi_now_ns() + XI_FORK_WAIT_NS;
    for (;;) {
        xi_lock(&xi_registry_mu);
        uint64_t gen = xi_registry_gen;
        int creating = xi_creating;
        xi_unlock(&xi_registry_mu);
        Py_ssize_t n;
        xi_interp **recs = registry_snapshot(&n);
        if (recs == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        int closing = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            xi_lock(&recs[i]->mu);
            closing += recs[i]->state == XI_ST_CLOSING;
            xi_unlock(&recs[i]->mu);
        }
        if ((creating == 0 && closing == 0) || xi_now_ns() >= deadline) {
            int rc = 0;
            for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
                xi_interp *r = recs[i];
                xi_lock(&r->mu);
                int open = r->state == XI_ST_RUNNING || r->state == XI_ST_CLOSING;
                int running = r->nactive > 0;
                xi_unlock(&r->mu);
                PyObject *id = open ? PyLong_FromLongLong(r->id) : NULL;
                if (open) {
                    rc = id == NULL ? -1 : PyList_Append(running ? busy : idle, id);
                }
                Py_XDECREF(id);
            }
            snapshot_free(recs, n);
            if (rc < 0) {
                goto fail;
            }
            return Py_BuildValue("(NN)", busy, idle);
        }
        snapshot_free(recs, n);
        if (xi_block(&xi_registry_mu, &xi_fork_cond, &xi_fork_sleepers, registry_changed,
                     NULL, &gen, deadline) < 0) {
            goto fail;
        }
    }
fail:
    Py_XDECREF(busy);
    Py_XDECREF(idle);
    return NULL;
}

void
xi_interp_fork_done(void)
{
    ensure_fork_cond();
    xi_lock(&xi_registry_mu);
    xi_fork_gate = 0;
    xi_fork_python = 0;
    xi_registry_gen++;
    xi_broadcast(&xi_fork_cond);
    xi_unlock(&xi_registry_mu);
}

int
xi_interp_init_main(void)
{
    PyInterpreterState *main = PyInterpreterState_Main();
    if (PyInterpreterState_Get() != main) {
        return 0;
    }
    xi_lock(&xi_registry_mu);
    int done = xi_main_rec != NULL;
    xi_unlock(&xi_registry_mu);
    if (done) {
        return 0;
    }
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *thread = threading ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
    PyObject *ident = thread ? PyObject_GetAttrString(thread, "ident") : NULL;
    Py_XDECREF(threading);
    Py_XDECREF(thread);
    if (ident == NULL) {
        return -1;
    }
    unsigned long main_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred()) {
        return -1;
    }
    ensure_fork_cond();
    xi_interp *rec = xi_rec_new();
    if (rec == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    rec->interp = main;
    rec->id = PyInterpreterState_GetID(main);
    rec->state = XI_ST_RUNNING;
    xi_lock(&xi_registry_mu);
    if (xi_main_rec == NULL) {
        xi_set_main_thread(main_ident);
        xi_main_rec = rec;
        rec->next = xi_registry;
        xi_registry = rec;
        rec = NULL;
    }
    xi_unlock(&xi_registry_mu);
    if (rec != NULL) {
        xi_interp_decref(rec);
    }
    return 0;
}

int
xi_interp_is_running(xi_interp *rec)
{
    if (xi_rec_forked(rec)) {
        return 0;
    }
    xi_lock(&rec->mu);
    int running = rec->nactive > 0;
    xi_unlock(&rec->mu);
    return running;
}

void
xi_rec_shut_down(const unsigned long *daemons, Py_ssize_t ndaemons)
{
    xi_lock(&xi_registry_mu);
    xi_shutting_down = 1;
    if (xi_exit_daemons == NULL && ndaemons > 0 &&
        (xi_exit_daemons = PyMem_RawMalloc(sizeof(unsigned long) * (size_t)ndaemons)) != NULL) {
        memcpy(xi_exit_daemons, daemons, sizeof(unsigned long) * (size_t)ndaemons);
        xi_exit_ndaemons = ndaemons;
    }
    xi_unlock(&xi_registry_mu);
}

int
xi_rec_shutting_down(void)
{
    return xi_shutting_down;
}

xi_interp *
xi_rec_first_owned(void)
{
    xi_interp *rec = NULL;
    xi_lock(&xi_registry_mu);
    for (xi_interp *r = xi_registry; r != NULL; r = r->next) {
        if (r->has_owner) {
            rec = r;
            xi_interp_incref(rec);
            break;
        }
    }
    xi_unlock(&xi_registry_mu);
    return rec;
}

/* (xi_registry_mu held) A creation may begin unless a fork is being prepared. */
static int
creation_may_begin(void *arg)
{
    (void)arg;
    if (xi_fork_gate) {
        return 0;
    }
    xi_creating++;
    return 1;
}

void
xi_rec_creation_end(void)
{
    xi_lock(&xi_registry_mu);
    xi_creating--;
    xi_registry_gen++;
    if (xi_fork_sleepers > 0) {
        xi_broadcast(&xi_fork_cond);
    }
    xi_unlock(&xi_registry_mu);
}

int
xi_rec_creation_begin(void)
{
    ensure_fork_cond();
    /* a fork being prepared goes first: the child must not inherit an interpreter */
    return xi_block(&xi_registry_mu, &xi_fork_cond, &xi_fork_sleepers, creation_may_begin,
                    NULL, NULL, XI_FOREVER) < 0 ? -1 : 0;
}
