/* Interpreters: records, owner threads, thread-state cache, calls (see interp.h). */
#include "interp.h"
#include "loan.h"
#include "wait.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ records */

typedef enum {
    XI_ST_STARTING = 0,
    XI_ST_RUNNING = 1,
    XI_ST_CLOSING = 2,
    XI_ST_CLOSED = 3,
    XI_ST_FAILED = 4,
} xi_lifecycle;

/* A running call, for interrupt(). Lives on the stack of whoever runs the call.
 *
 * interrupt() is delivered as an asynchronous KeyboardInterrupt, which CPython raises
 * at the next bytecode the thread runs in the call's interpreter. It is armed only
 * while the call runs its own code: while the library runs Python code for the call
 * (decoding, encoding, describing an exception, importing; see xi_interp_mask) the
 * call is masked and an interrupt waits as `pending`, armed when the mask ends.
 * Otherwise an exception could land in importlib (leaving a module lock taken) or
 * between two steps of the library's own bookkeeping.
 *
 * The call's own code may also run CPython's Python code that holds a lock across
 * bytecodes, where an exception landing between taking and releasing it leaves the
 * lock taken for good (the import system: see guarded_modules): there an interrupt is
 * `held`, pending until the thread has left that code, which sys.monitoring reports
 * (guarded_exit) and a poller thread checks too (poll_held_locked).
 *
 * One interrupt() is raised once per logical call: a call nested in a call of the same
 * thread into the same interpreter (X -> B -> X) takes the outer call's seq, and only
 * the innermost of them is hit (the outer one is masked meanwhile, and must not get it
 * again when the nested call returns).
 *
 * masked, pending, held and armed are only used with the GIL of the call's interpreter
 * held (by its thread, or by the interrupter, which takes that GIL), which serializes
 * them. The list links (next) are guarded by rec->mu; outer belongs to the thread. */
typedef struct xi_active {
    xi_interp *rec;
    unsigned long ident;     /* the OS thread running it */
    PyThreadState *ts;       /* its thread state in rec's interpreter */
    int masked;              /* > 0: the library runs code for it (or a nested call) */
    int pending;             /* an interrupt arrived while masked (or held) */
    int held;                /* pending because the thread ran guarded code */
    int armed;               /* the async exception is set and not raised yet */
    uint64_t seq;            /* when the call began (rec->next_seq; a call of the same
                                thread nested in a call into the same interpreter takes
                                the outer call's): an interrupt() hits only calls that
                                began before it */
    struct xi_active *next;
    struct xi_active *outer; /* the thread's enclosing call (see xi_tls.call) */
} xi_active;

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
typedef struct xi_tsentry {
    xi_interp *rec;
    struct xi_tls *thr;
    PyThreadState *ts;
    PyThreadState *closing_ts; /* ts, while the closing record deletes it */
    int links;               /* 2, 1 or 0 (freed) */
    int dead;                /* the thread exited: its link is gone */
    struct xi_tsentry *next_rec;
    struct xi_tsentry *next_thr;
} xi_tsentry;

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

typedef enum {
    XI_JOB_POSTED = 0,
    XI_JOB_DECODING = 1,
    XI_JOB_RUNNING = 2,
    XI_JOB_DONE = 3,      /* the result is ready */
    XI_JOB_FINISHED = 4,  /* a borrowed result was released: the owner is done */
} xi_job_state;

/* A request handed to an owner thread. Two users (poster and owner), refcounted.
 *
 * The request packet `req` was encoded by the poster (the main thread, in the main
 * interpreter), which moved it into the job. Its owner is the poster, except when the
 * poster left while the job was still decoding it (`req_handed`, set under rec->mu
 * while the state is XI_JOB_DECODING): then the owner thread releases it once decoded,
 * in the main interpreter (owner_main_ts), since a borrowed packet points into that
 * interpreter's objects. The owner reads req_handed under rec->mu as it leaves
 * XI_JOB_DECODING, after which it never changes. */
typedef struct xi_job {
    int close;           /* a request to end the interpreter */
    xi_request kind;
    xi_packet req;       /* the request (see above) */
    int req_handed;      /* the owner thread releases `req` */
    xi_packet out;
    _Atomic int state;
    int abandoned;       /* the poster left; the owner cleans up */
    int consumed;        /* the poster has decoded a borrowed result */
    uint64_t seq;        /* when it was posted (rec->next_seq), for its xi_active */
    _Atomic int refcnt;
    struct xi_job *next;
} xi_job;

struct xi_interp {
    /* set before the record is shared, then read-only */
    int64_t id;
    PyInterpreterState *interp;
    int has_owner;                 /* 0 for the main interpreter's record */
    unsigned epoch;                /* xi_epoch when made: another one in a fork() child
                                      whose parent made it (see rec_forked) */
    _Atomic long refcnt;

    xi_mutex mu;
    xi_cond wake;                  /* the owner thread waits here for jobs */
    xi_cond changed;               /* waiters for jobs, calls and state */
    int state;                     /* xi_lifecycle */
    int nactive;                   /* calls running or queued */
    xi_active *active;
    xi_tsentry *cache;
    _Atomic int ndead;             /* entries of exited threads */
    int ninterrupters;
    int polling;                   /* an interrupter thread polls held interrupts */
    int watching;                  /* sys.monitoring watches for held interrupts
                                      (guarded by the interpreter's GIL) */
    uint64_t next_seq;             /* numbers the calls as they begin (xi_active.seq) */
    int orphaned;
    xi_job *spare_close;           /* the close request of an orphaned interpreter, made
                                      with the record so that posting it cannot fail
                                      (rec->mu; once posted, the owner thread's) */
    int exiting;                   /* closing at exit: daemon threads may not call in */
    xi_job *jobs;                  /* FIFO */
    xi_job **jobs_tail;
    _Atomic int njobs;
    char errmsg[512];

    /* owner thread only (owner_ident: written by it before the interpreter runs, then
     * read-only, also by threads whose jobs it runs) */
    PyThreadState *owner_ts;       /* the interpreter's first thread state */
    PyThreadState *owner_main_ts;  /* its main-interpreter thread state */
    unsigned long owner_ident;
    PyInterpreterConfig config;    /* how it is created (set before the owner starts) */
    char **init_path;
    Py_ssize_t init_path_len;
    int bind_main;                 /* bind sys and pickle in __main__ (set before the
                                      owner starts) */

    struct xi_interp *next;        /* registry (xi_registry_mu) */
};

static xi_mutex xi_registry_mu = PTHREAD_MUTEX_INITIALIZER;
/* CPython 3.12 corrupts memory when subinterpreters are created or ended concurrently
 * (seen as blocks freed into the wrong allocator at exit): there, one at a time. The
 * lock covers Py_NewInterpreterFromConfig and Py_EndInterpreter only, and is taken
 * with no thread state attached (before the GIL they run under): never around code
 * that may create or close an interpreter itself (site, the package import, atexit
 * hooks, joining threads, waiting for loan readers), which would wait for the lock
 * forever. */
#if PY_VERSION_HEX < 0x030D0000
#  define XI_LIFECYCLE_LOCK 1
static xi_mutex xi_lifecycle_mu = PTHREAD_MUTEX_INITIALIZER;
#  define LIFECYCLE_BEGIN() xi_lock(&xi_lifecycle_mu)
#  define LIFECYCLE_END() xi_unlock(&xi_lifecycle_mu)
/* Py_EndInterpreter itself runs finalizers (of __main__'s objects, say) under the
 * lock, on the owner thread, which sets this meanwhile. There a close() does not wait
 * for the interpreter to end (its owner thread needs the lock: it ends it once this
 * one is ended), and creating an interpreter is refused. */
static _Thread_local int xi_ending_locked;
#  define ENDING_LOCKED() xi_ending_locked
#else
#  define XI_LIFECYCLE_LOCK 0
#  define LIFECYCLE_BEGIN() ((void)0)
#  define LIFECYCLE_END() ((void)0)
#  define ENDING_LOCKED() 0
#endif
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

static int
is_exit_daemon(unsigned long ident)
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
 * starts a new epoch; a record of an older one is the parent's (rec_forked): it is never
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

static int
rec_forked(const xi_interp *rec)
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

static void
free_init_path(xi_interp *rec)
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
        free_init_path(rec);
        xi_cond_fini(&rec->wake);
        xi_cond_fini(&rec->changed);
        xi_mutex_fini(&rec->mu);
        PyMem_RawFree(rec);
    }
}

static xi_interp *
record_new(void)
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

/* Interpreter ids are never reused, so a closed one stays closed. */
static void
remember_closed(int64_t id)
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

/* Adds a new record, unless close_all() has run (-1). */
static int
registry_add(xi_interp *rec)
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

static void
registry_remove(xi_interp *rec)
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

static void tls_forget_after_fork(void);

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
    tls_forget_after_fork();
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
    xi_interp *rec = record_new();
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


/* ---------------------------------------------------------- per-thread state */

#define XI_MAX_NESTING 32

typedef struct xi_tls {
    xi_tsentry *entries;
    _Atomic int nretired;     /* entries retired since the thread last dropped them */
    xi_active *call;          /* the innermost call this thread runs, if any */
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

static void
tls_key_create(void)
{
    (void)pthread_key_create(&xi_tls_key, tls_destroy);
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
        t->call = NULL;
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

/* How a thread is inside another interpreter for one call. */
typedef struct {
    xi_interp *rec;
    int same;               /* the target is the current interpreter: no switch */
    int temporary;          /* ts is deleted on leaving (see enter_register) */
    PyThreadState *ts;      /* the thread state used in the target */
    PyThreadState *saved;   /* the caller's, detached while inside */
    xi_active active;
} xi_entry;

/* Registers a call in `rec` (it can no longer close) and picks the thread state that
 * the current thread uses there. The caller's GIL is held. */
static xi_err
enter_register(xi_interp *rec, xi_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->rec = rec;
    e->active.rec = rec;
    e->active.ident = PyThread_get_thread_ident();
    e->active.masked = 1; /* until run_request runs the call's own code */
    PyThreadState *cur = PyThreadState_Get();
    e->same = PyThreadState_GetInterpreter(cur) == rec->interp;

    xi_tls *t = NULL;
    xi_tsentry *ent = NULL, *fresh = NULL;
    if (!e->same) {
        if ((t = tls_get()) == NULL) {
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
        if (e->ts == NULL) {
            for (xi_tsentry **p = &t->entries; *p != NULL; p = &(*p)->next_thr) {
                if ((*p)->rec == rec) {
                    ent = *p;
                    break;
                }
            }
            if (ent != NULL && is_retired(ent)) {
                /* the interpreter closed: drop the entry (only this thread has it) */
                unlink_thread_entry(t, ent);
                return XI_ERR_CLOSED;
            }
            if (ent == NULL && (fresh = PyMem_RawCalloc(1, sizeof(xi_tsentry))) == NULL) {
                return XI_ERR_NOMEM;
            }
        }
    }

    xi_lock(&rec->mu);
    if (rec->state != XI_ST_RUNNING ||
        (rec->exiting && is_exit_daemon(e->active.ident))) {
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
            e->ts = PyThreadState_New(rec->interp);
            if (e->ts == NULL) {
                xi_unlock(&rec->mu);
                PyMem_RawFree(fresh);
                return XI_ERR_NOMEM;
            }
            if (PyGILState_GetThisThreadState() == e->ts) {
                /* This thread had no thread state of its own, so the new one became
                 * its PyGILState one; such a thread state may only be deleted by its
                 * thread, so it is not cached. */
                e->temporary = 1;
                PyMem_RawFree(fresh);
            }
            else {
                fresh->rec = rec;
                fresh->thr = t;
                fresh->ts = e->ts;
                fresh->links = 2;
                fresh->next_rec = rec->cache;
                rec->cache = fresh;
                fresh->next_thr = t->entries;
                t->entries = fresh;
                xi_interp_incref(rec);
            }
            fresh = NULL;
        }
    }
    e->active.ts = e->same ? cur : e->ts;
    rec->nactive++;
    e->active.seq = rec->next_seq++;
    /* a call that this thread's call into the same interpreter makes is part of it: an
     * interrupt that reaches the outer call reaches it too */
    for (xi_active *o = xi_tls_cur ? xi_tls_cur->call : NULL; o != NULL; o = o->outer) {
        if (o->rec == rec && o->seq < e->active.seq) {
            e->active.seq = o->seq;
        }
    }
    e->active.next = rec->active;
    rec->active = &e->active;
    xi_unlock(&rec->mu);
    PyMem_RawFree(fresh);
    return XI_OK;
}

static void
switch_in(xi_entry *e)
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

static void
switch_out(xi_entry *e)
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

static void monitor_release_if_idle(xi_interp *rec);
static void monitor_free_if_idle(void);

static int arm_or_hold(xi_active *a);
static void start_poller(xi_interp *rec);

/* Unlinks a running call; runs in the target interpreter, masked: nothing is armed,
 * and an interrupt still pending arrived as the call returned, so it is dropped;
 * unless the call is nested in an outer call of the same thread into the same
 * interpreter (one logical call, same seq, which interrupt() skipped for this
 * innermost one): the outer call gets it, since it goes on. */
static void
active_remove(xi_interp *rec, xi_active *a)
{
    assert(a->masked > 0 && !a->armed);
    xi_active *outer = NULL;
    xi_lock(&rec->mu);
    for (xi_active **p = &rec->active; *p != NULL; p = &(*p)->next) {
        if (*p == a) {
            *p = a->next;
            break;
        }
    }
    if (a->pending) {
        /* the next of the same logical call in the list is the next innermost */
        for (xi_active *b = rec->active; b != NULL && outer == NULL; b = b->next) {
            if (b->ident == a->ident && b->seq == a->seq) {
                outer = b;
            }
        }
    }
    a->pending = 0;
    a->held = 0;
    int poll = 0;
    if (outer != NULL) {
        if (outer->masked) {
            outer->pending = 1; /* (it is, in its call out: unmask_call arms it) */
        }
        else {
            poll = arm_or_hold(outer);
        }
    }
    xi_unlock(&rec->mu);
    if (poll) {
        start_poller(rec);
    }
    if (rec->watching) {
        monitor_release_if_idle(rec); /* (an interrupt held as the call returned) */
    }
    if (!rec->watching) {
        monitor_free_if_idle();
    }
}

/* The class armed as the asynchronous exception: CPython instantiates it when it
 * raises it, which tells the call that its interrupt was raised; it makes a plain
 * KeyboardInterrupt. */
static PyObject *
interrupt_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)type;
    (void)args;
    (void)kwargs;
    xi_tls *t = xi_tls_cur;
    PyInterpreterState *here = PyInterpreterState_Get();
    for (xi_active *a = t != NULL ? t->call : NULL; a != NULL; a = a->outer) {
        if (a->rec->interp == here && a->armed) {
            a->armed = 0;
            break;
        }
    }
    return PyObject_CallNoArgs(PyExc_KeyboardInterrupt);
}

static PyType_Slot interrupt_slots[] = {
    {Py_tp_new, interrupt_new},
    {0, NULL},
};

PyType_Spec xi_interrupt_spec = {
    .name = "extrainterpreters._xi._Interrupt",
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = interrupt_slots,
};

/* Arms the asynchronous KeyboardInterrupt of call `a`; its interpreter's GIL is held. */
static void
arm(xi_active *a)
{
    xi_state *st = xi_loaded_state();
    PyObject *exc = st != NULL && st->InterruptType != NULL ? (PyObject *)st->InterruptType
                                                             : PyExc_KeyboardInterrupt;
    PyThreadState_SetAsyncExc(a->ident, exc);
    a->armed = 1;
}

#if PY_VERSION_HEX < 0x030D0000
/* 3.12: PyThreadState_SetAsyncExc(id, NULL) leaves the interpreter's "asynchronous
 * exception pending" flag set, and with it the eval breaker, until an asynchronous
 * exception is raised in that interpreter: every backward jump and every call of each
 * of its threads goes through the eval loop's slow path (a tight loop twice as slow).
 * So an asynchronous exception is raised at once in this thread (the call's own, its
 * interpreter's GIL held) by running a line of code, and caught: that resets the flag.
 * The flag is the interpreter's, not the thread's: the interrupts still armed on other
 * calls there are armed again. (3.13 and later keep the flag per thread and reset it
 * whenever they look.) */
static void
reset_async_flag(xi_active *a)
{
    if (a->ident != PyThread_get_thread_ident()) {
        return;
    }
    PyObject *saved = PyErr_GetRaisedException();
    PyObject *code = Py_CompileString("None", "<extrainterpreters>", Py_eval_input);
    PyObject *globals = PyDict_New();
    if (code != NULL && globals != NULL) {
        PyThreadState_SetAsyncExc(a->ident, PyExc_RuntimeError);
        PyObject *res = PyEval_EvalCode(code, globals, globals);
        if (res != NULL) {
            /* not raised (it cannot be): not left for later either */
            PyThreadState_SetAsyncExc(a->ident, NULL);
            Py_DECREF(res);
        }
    }
    Py_XDECREF(code);
    Py_XDECREF(globals);
    PyErr_Clear();
    PyErr_SetRaisedException(saved);
    xi_state *st = xi_loaded_state();
    PyObject *exc = st != NULL && st->InterruptType != NULL ? (PyObject *)st->InterruptType
                                                             : PyExc_KeyboardInterrupt;
    xi_lock(&a->rec->mu);
    for (xi_active *o = a->rec->active; o != NULL; o = o->next) {
        if (o != a && o->armed) {
            PyThreadState_SetAsyncExc(o->ident, exc);
        }
    }
    xi_unlock(&a->rec->mu);
}
#endif

/* Takes back the asynchronous exception armed on call `a`, not raised yet. */
static void
disarm(xi_active *a)
{
    PyThreadState_SetAsyncExc(a->ident, NULL);
    a->armed = 0;
#if PY_VERSION_HEX < 0x030D0000
    reset_async_flag(a);
#endif
}

/* Modules of CPython's Python code that hold an interpreter-wide lock across
 * bytecodes, which an asynchronous exception landing there leaves taken: the import
 * system (importlib's bootstrap, under its frozen and its public names, and
 * zipimport). `_imp.acquire_lock()` then `try:` in _get_module_lock and in the
 * module-lock weakref callback (which runs at any dealloc), _ModuleLock's own lock and
 * its waiter bookkeeping: a lock left taken there hangs every later import of the
 * interpreter, the library's own (unpickling imports) included. While a thread runs
 * such code (also a module's top-level code that it imports, and what that calls) an
 * interrupt is held. Its entry points that a call's code reaches (_find_and_load,
 * _handle_fromlist, _lock_unlock_module, _gcd_import, the weakref callback) take
 * their locks after their first bytecode, so an interrupt raised as one begins leaves
 * nothing taken.
 *
 * Not guarded: threading's module-level locks are C locks taken by `with`, which an
 * interrupt cannot split (except CPython 3.14's skipped __exit__, as without this
 * library); the Python-level steps of threading.Condition and Semaphore (an interrupt
 * raised as Condition.__exit__ begins skips its release) belong to objects of the
 * call's own, like every lock of queue, logging and the call's code: an interrupt
 * treats them as Ctrl-C treats a program's main thread. The library's Lock, RLock,
 * Condition and Semaphore take an interrupt safely (their __enter__ and __exit__ are
 * C). */
static const char *const guarded_modules[] = {
    "_frozen_importlib", "_frozen_importlib_external", "importlib._bootstrap",
    "importlib._bootstrap_external", "zipimport", NULL,
};

static int
is_guarded_frame(PyFrameObject *f)
{
    PyObject *globals = PyFrame_GetGlobals(f);
    PyObject *name = globals != NULL && PyDict_Check(globals)
                         ? PyDict_GetItemString(globals, "__name__") /* borrowed */
                         : NULL;
    int guarded = 0;
    if (name != NULL && PyUnicode_Check(name)) {
        for (int i = 0; guarded_modules[i] != NULL && !guarded; i++) {
            guarded = PyUnicode_CompareWithASCIIString(name, guarded_modules[i]) == 0;
        }
    }
    Py_XDECREF(globals);
    return guarded;
}

enum { WALK_ALL, WALK_INNERMOST, WALK_OUTER };

/* Whether the thread of `ts` (of the current interpreter, whose GIL is held; the
 * thread is not running Python code meanwhile, or is the current one) runs guarded
 * code for its call: a frame of a guarded module between its innermost frame and the
 * frame the call runs in (st->call_code; the frames below it are an outer call's).
 * WALK_INNERMOST looks at the innermost frame only, WALK_OUTER at all but it. With
 * `found` (a set), every guarded frame's code is added to it. Runs no Python code: it
 * reads frames (the frame objects it makes are new, and 3.12+ collects garbage only at
 * an eval-breaker check); the caller keeps its exception, if any. */
static int
in_guarded_code(PyThreadState *ts, int mode, PyObject *found)
{
    xi_state *st = xi_loaded_state();
    PyObject *base = st != NULL ? st->call_code : NULL;
    PyFrameObject *f = ts != NULL ? PyThreadState_GetFrame(ts) : NULL;
    int guarded = 0, first = 1;
    while (f != NULL && (!guarded || found != NULL)) {
        PyCodeObject *code = PyFrame_GetCode(f);
        if ((PyObject *)code == base) {
            Py_DECREF(code);
            break;
        }
        if (!(first && mode == WALK_OUTER) && is_guarded_frame(f)) {
            guarded = 1;
            if (found != NULL && PySet_Add(found, (PyObject *)code) < 0) {
                PyErr_Clear();
            }
        }
        Py_DECREF(code);
        if (mode == WALK_INNERMOST) {
            break;
        }
        first = 0;
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
    return guarded;
}

/* Seeing a thread leave guarded code: a held interrupt waits until the outermost
 * guarded frame of its thread returns (or unwinds). sys.monitoring (3.12+) reports
 * that: a tool of this module, claimed in an interpreter while an interrupt is
 * held there and given back after (monitor_free_if_idle; ids 4 or 3, which CPython
 * leaves unnamed; none free: the poller alone),
 * watches the returns (a local event) of the code objects of the guarded frames found
 * on held threads, and every unwinding frame (a global event), while an interrupt is
 * held in the interpreter. The callback runs in the returning thread; once no other
 * guarded frame remains, it watches the next instruction (a local event) of the frame
 * that goes on, whose callback raises the interrupt there. The poller (below) is kept
 * for what this misses. Everything here runs with the interpreter's GIL held. */

static PyObject *
monitoring_event(PyObject *mon, const char *name)
{
    PyObject *events = PyObject_GetAttrString(mon, "events");
    PyObject *ev = events != NULL ? PyObject_GetAttrString(events, name) : NULL;
    Py_XDECREF(events);
    return ev;
}

static PyObject *guarded_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *task_resumes(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

static PyMethodDef task_resumes_def = {
    "_task_resumes", (PyCFunction)(void (*)(void))task_resumes, METH_FASTCALL,
    "raises an interrupt held until now (the core's own use)"};
static xi_active *call_here(void);

static PyMethodDef guarded_exit_def = {
    "_guarded_exit", (PyCFunction)(void (*)(void))guarded_exit, METH_FASTCALL,
    "sees a thread leave code where interrupts are held (the core's own use)"};

/* The claimed tool id, claiming it on first use; -1 when none. */
static int
monitor_tool(xi_state *st, PyObject *mon)
{
    if (st->mon_tool != 0) {
        return st->mon_tool - 1;
    }
    st->mon_tool = -1; /* none, unless claimed below */
    static const int ids[] = {4, 3};
    for (int i = 0; i < 2 && st->mon_tool < 0; i++) {
        PyObject *r = PyObject_CallMethod(mon, "use_tool_id", "is", ids[i],
                                          "extrainterpreters");
        if (r == NULL) {
            PyErr_Clear();
            continue;
        }
        Py_DECREF(r);
        PyObject *cb = PyCFunction_New(&guarded_exit_def, NULL);
        PyObject *cb2 = PyCFunction_New(&task_resumes_def, NULL);
        PyObject *ret = monitoring_event(mon, "PY_RETURN");
        PyObject *unwind = monitoring_event(mon, "PY_UNWIND");
        PyObject *instr = monitoring_event(mon, "INSTRUCTION");
        PyObject *r1 = cb && ret ? PyObject_CallMethod(mon, "register_callback", "iOO",
                                                       ids[i], ret, cb) : NULL;
        PyObject *r2 = r1 && unwind ? PyObject_CallMethod(mon, "register_callback",
                                                          "iOO", ids[i], unwind, cb)
                                    : NULL;
        PyObject *r3 = r2 && cb2 && instr
                           ? PyObject_CallMethod(mon, "register_callback", "iOO", ids[i],
                                                 instr, cb2)
                           : NULL;
        Py_XDECREF(r3 != NULL ? r2 : NULL);
        r2 = r3;
        Py_XDECREF(cb2);
        Py_XDECREF(instr);
        if (r2 != NULL) {
            st->mon_tool = ids[i] + 1;
        }
        else {
            PyErr_Clear();
            PyObject *f = PyObject_CallMethod(mon, "free_tool_id", "i", ids[i]);
            Py_XDECREF(f);
            PyErr_Clear();
        }
        Py_XDECREF(r1);
        Py_XDECREF(r2);
        Py_XDECREF(cb);
        Py_XDECREF(ret);
        Py_XDECREF(unwind);
    }
    return st->mon_tool > 0 ? st->mon_tool - 1 : -1;
}

/* Watches the returns of the code objects in `found` (and unwinding). */
static void
monitor_watch(xi_interp *rec, PyObject *found)
{
    xi_state *st = xi_loaded_state();
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    int tool = st != NULL && mon != NULL ? monitor_tool(st, mon) : -1;
    if (tool < 0) {
        return;
    }
    if (st->mon_codes == NULL && (st->mon_codes = PySet_New(NULL)) == NULL) {
        PyErr_Clear();
        return;
    }
    PyObject *ret = monitoring_event(mon, "PY_RETURN");
    PyObject *unwind = monitoring_event(mon, "PY_UNWIND");
    if (ret == NULL || unwind == NULL) {
        PyErr_Clear();
        Py_XDECREF(ret);
        Py_XDECREF(unwind);
        return;
    }
    if (PySet_GET_SIZE(st->mon_codes) == 0) {
        PyObject *r = PyObject_CallMethod(mon, "set_events", "iO", tool, unwind);
        Py_XDECREF(r);
    }
    rec->watching = 1;
    PyObject *it = PyObject_GetIter(found), *code;
    while (it != NULL && (code = PyIter_Next(it)) != NULL) {
        if (PySet_Contains(st->mon_codes, code) == 0) {
            PyObject *r = PyObject_CallMethod(mon, "set_local_events", "iOO", tool, code,
                                              ret);
            if (r != NULL && PySet_Add(st->mon_codes, code) < 0) {
                PyErr_Clear();
            }
            Py_XDECREF(r);
        }
        Py_DECREF(code);
    }
    Py_XDECREF(it);
    PyErr_Clear();
    Py_DECREF(ret);
    Py_DECREF(unwind);
}

/* Stops watching once no interrupt of `rec` is held. */
static void
monitor_release_if_idle(xi_interp *rec)
{
    xi_state *st = xi_loaded_state();
    if (st == NULL || st->mon_codes == NULL || PySet_GET_SIZE(st->mon_codes) == 0) {
        rec->watching = 0;
        return;
    }
    int held = 0;
    xi_lock(&rec->mu);
    for (xi_active *a = rec->active; a != NULL && !held; a = a->next) {
        held = a->held;
    }
    xi_unlock(&rec->mu);
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    if (held || mon == NULL || st->mon_tool <= 0) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    int tool = st->mon_tool - 1;
    PyObject *codes = st->mon_codes;
    st->mon_codes = NULL;
    rec->watching = 0;
    PyObject *it = PyObject_GetIter(codes), *code;
    while (it != NULL && (code = PyIter_Next(it)) != NULL) {
        PyObject *r = PyObject_CallMethod(mon, "set_local_events", "iOi", tool, code, 0);
        Py_XDECREF(r);
        Py_DECREF(code);
    }
    Py_XDECREF(it);
    PyObject *resume = st->mon_resume;
    st->mon_resume = NULL;
    it = resume != NULL ? PyObject_GetIter(resume) : NULL;
    while (it != NULL && (code = PyIter_Next(it)) != NULL) {
        PyObject *r = PyObject_CallMethod(mon, "set_local_events", "iOi", tool, code, 0);
        Py_XDECREF(r);
        Py_DECREF(code);
    }
    PyObject *r = PyObject_CallMethod(mon, "set_events", "ii", tool, 0);
    Py_XDECREF(r);
    Py_XDECREF(it);
    Py_XDECREF(resume);
    Py_DECREF(codes);
    PyErr_Clear();
    PyErr_SetRaisedException(exc);
}

/* Gives the tool id back once nothing is watched (monitor_release_if_idle did its
 * work), so that the interpreter's own code may claim it: the next held interrupt
 * claims one again. Not from a callback of the tool (it would unregister the running
 * callback): at a call's end and at the poller's. */
static void
monitor_free_if_idle(void)
{
    xi_state *st = xi_loaded_state();
    if (st == NULL || st->mon_tool <= 0 || st->mon_codes != NULL || st->mon_resume != NULL) {
        return;
    }
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    if (mon == NULL) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    int tool = st->mon_tool - 1;
    st->mon_tool = 0;
    static const char *const names[] = {"PY_RETURN", "PY_UNWIND", "INSTRUCTION"};
    for (int i = 0; i < 3; i++) {
        PyObject *ev = monitoring_event(mon, names[i]);
        PyObject *r = ev != NULL ? PyObject_CallMethod(mon, "register_callback", "iOO",
                                                       tool, ev, Py_None)
                                 : NULL;
        Py_XDECREF(r);
        Py_XDECREF(ev);
    }
    PyObject *r = PyObject_CallMethod(mon, "set_events", "ii", tool, 0);
    Py_XDECREF(r);
    r = PyObject_CallMethod(mon, "free_tool_id", "i", tool);
    Py_XDECREF(r);
    PyErr_Clear();
    PyErr_SetRaisedException(exc);
}

static void start_poller(xi_interp *rec);

/* Arms call `a` (unmasked, its interpreter's GIL held), or holds its interrupt while
 * its thread runs guarded code; returns 1 when held, and the caller makes sure that a
 * poller runs (rec->polling). */
static int
arm_or_hold(xi_active *a)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *found = PySet_New(NULL);
    if (found == NULL) {
        PyErr_Clear();
    }
    int guarded = in_guarded_code(a->ts, WALK_ALL, found);
    if (guarded && found != NULL) {
        monitor_watch(a->rec, found);
    }
    Py_XDECREF(found);
    PyErr_SetRaisedException(exc);
    if (guarded) {
        a->pending = 1;
        a->held = 1;
        return 1;
    }
    a->pending = 0;
    a->held = 0;
    arm(a); /* again even if armed: it may have been raised meanwhile */
    return 0;
}

/* Makes the next instruction of `code` (run by the thread of a held interrupt, whose
 * frame goes on) call task_resumes; returns 0 when it cannot. */
static int
monitor_resume(xi_interp *rec, PyObject *code)
{
    xi_state *st = xi_loaded_state();
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    if (st == NULL || mon == NULL || st->mon_tool <= 0) {
        return 0;
    }
    if (st->mon_resume == NULL && (st->mon_resume = PySet_New(NULL)) == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *instr = monitoring_event(mon, "INSTRUCTION");
    PyObject *ret = monitoring_event(mon, "PY_RETURN");
    PyObject *events = NULL, *r = NULL;
    if (instr != NULL && ret != NULL) {
        int also_return = st->mon_codes != NULL && PySet_Contains(st->mon_codes, code) == 1;
        events = also_return ? PyNumber_Or(instr, ret) : Py_NewRef(instr);
    }
    if (events != NULL) {
        r = PyObject_CallMethod(mon, "set_local_events", "iOO", st->mon_tool - 1, code,
                                events);
    }
    int ok = r != NULL && PySet_Add(st->mon_resume, code) == 0;
    rec->watching = 1;
    Py_XDECREF(r);
    Py_XDECREF(events);
    Py_XDECREF(instr);
    Py_XDECREF(ret);
    PyErr_Clear();
    return ok;
}

/* The monitoring callback (PY_RETURN: code, offset, value; PY_UNWIND: code, offset,
 * exception), in the thread whose frame returns or unwinds. When no other guarded
 * frame remains, the interrupt is raised at the next instruction of the frame that
 * goes on (task_resumes), not armed at once: clearing the returning frame may run
 * importlib's module-lock weakref callback, which would swallow it. */
static PyObject *
guarded_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)args;
    (void)nargs;
    xi_tls *t = xi_tls_cur;
    if (t == NULL || t->call == NULL) {
        Py_RETURN_NONE;
    }
    xi_active *a = call_here();
    if (a == NULL || !a->held || a->masked) {
        Py_RETURN_NONE;
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyThreadState *ts = PyThreadState_Get();
    if (!in_guarded_code(ts, WALK_OUTER, NULL)) {
        xi_state *st = xi_loaded_state();
        PyFrameObject *f = PyThreadState_GetFrame(ts);
        PyFrameObject *back = f != NULL ? PyFrame_GetBack(f) : NULL;
        PyCodeObject *code = back != NULL ? PyFrame_GetCode(back) : NULL;
        int resumes = code != NULL && st != NULL && (PyObject *)code != st->call_code &&
                      monitor_resume(a->rec, (PyObject *)code);
        Py_XDECREF(code);
        Py_XDECREF(back);
        Py_XDECREF(f);
        if (!resumes) {
            /* the call's own frame goes on (it returns), or no watch: at once */
            a->pending = 0;
            a->held = 0;
            arm(a);
            monitor_release_if_idle(a->rec);
        }
    }
    PyErr_SetRaisedException(exc);
    Py_RETURN_NONE;
}

/* The monitoring callback (INSTRUCTION: code, offset) of a frame that went on after
 * the guarded code it called returned: raises the held interrupt there, as the
 * instruction's own exception. */
static PyObject *
task_resumes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)args;
    (void)nargs;
    xi_tls *t = xi_tls_cur;
    if (t == NULL || t->call == NULL) {
        Py_RETURN_NONE;
    }
    xi_active *a = call_here();
    if (a == NULL || !a->held || a->masked) {
        Py_RETURN_NONE;
    }
    PyObject *exc = PyErr_GetRaisedException();
    int guarded = in_guarded_code(PyThreadState_Get(), WALK_ALL, NULL);
    PyErr_SetRaisedException(exc);
    if (guarded) {
        Py_RETURN_NONE; /* (this code runs inside an import again) */
    }
    a->pending = 0;
    a->held = 0;
    monitor_release_if_idle(a->rec);
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return NULL;
}

static void
mask_call(xi_active *a)
{
    if (a->masked++ == 0) {
        if (a->armed) {
            disarm(a);
            a->pending = 1;
        }
        a->held = 0; /* pending: unmask_call arms or holds it again */
    }
}

static void
unmask_call(xi_active *a)
{
    if (--a->masked == 0 && a->pending && arm_or_hold(a)) {
        start_poller(a->rec);
    }
}

/* The innermost call of this thread, if it runs in the current interpreter. */
static xi_active *
call_here(void)
{
    xi_tls *t = xi_tls_cur;
    xi_active *a = t != NULL ? t->call : NULL;
    return a != NULL && a->rec->interp == PyInterpreterState_Get() ? a : NULL;
}

void
xi_interp_mask(void)
{
    xi_active *a = call_here();
    if (a != NULL) {
        mask_call(a);
    }
}

void
xi_interp_unmask(void)
{
    xi_active *a = call_here();
    if (a != NULL) {
        unmask_call(a);
    }
}

static void post_close_locked(xi_interp *rec, xi_job *job);

/* Ends one unit of activity (rec->mu held); closes an orphaned interpreter once idle. */
static void
activity_done_locked(xi_interp *rec)
{
    rec->nactive--;
    if (rec->nactive == 0 && rec->orphaned && rec->state == XI_ST_RUNNING &&
        rec->spare_close != NULL) {
        post_close_locked(rec, rec->spare_close);
        rec->spare_close = NULL;
    }
    xi_broadcast(&rec->changed);
}

static void
activity_done(xi_interp *rec)
{
    xi_lock(&rec->mu);
    activity_done_locked(rec);
    xi_unlock(&rec->mu);
}

/* ------------------------------------------------------------ requests */

static void job_decref(xi_job *job);

/* The job's request is decoded (or failed to be): the job is running. Returns 1 when
 * its poster has left meanwhile (the call is then not made). */
static int
job_decoded(xi_interp *rec, xi_job *job)
{
    xi_lock(&rec->mu);
    atomic_store(&job->state, (int)XI_JOB_RUNNING);
    int abandoned = job->abandoned;
    xi_broadcast(&rec->changed);
    xi_unlock(&rec->mu);
    return abandoned;
}

static PyObject *
main_dict(void)
{
    PyObject *main = PyImport_AddModule("__main__"); /* borrowed */
    return main ? PyModule_GetDict(main) : NULL;
}

/* Runs a request in the current interpreter (the target), filling `out` with the result
 * or the exception. Results with little out-of-band data are owned at once; larger
 * ones stay borrowed (one copy less) and must be released here later. */
static void
run_request(xi_interp *rec, xi_active *a, xi_request kind, const xi_packet *in,
            xi_packet *out, xi_job *job, int must_own)
{
    PyObject *payload = NULL, *result = NULL;
    xi_state *st = xi_current_state();
    if (st == NULL) {
        PyErr_Clear();
        memset(out, 0, sizeof(*out));
        out->kind = XI_PKT_EXCEPTION; /* "could not be described" */
        if (job != NULL) {
            (void)job_decoded(rec, job);
        }
        return;
    }
    PyObject *func = NULL, *args = NULL, *kwargs = NULL;
    uint8_t unshareable = XI_UNSHAREABLE_NONE;
    int rc = kind == XI_REQ_CALL ? xi_decode_call(st, in, &func, &args, &kwargs, &unshareable)
                                 : ((payload = xi_decode(st, in)) == NULL ? -1 : 0);
    if (job != NULL && job_decoded(rec, job) && rc == 0) {
        /* the caller was interrupted while the request was decoded, and left: the
         * call is not made */
        Py_CLEAR(func);
        Py_CLEAR(args);
        Py_CLEAR(kwargs);
        Py_CLEAR(payload);
        PyErr_SetNone(PyExc_KeyboardInterrupt);
        goto fail;
    }
    if (rc < 0) {
        /* as the standard library: the caller raises NotShareableError("args not
         * shareable") from NotShareableError("object could not be unpickled") */
        if (unshareable != XI_UNSHAREABLE_NONE && !xi_replace_unpickling_error()) {
            unshareable = XI_UNSHAREABLE_NONE;
        }
        goto fail;
    }
    switch (kind) {
    case XI_REQ_CALL:
        /* the call's own code: the only part that interrupt() may hit */
        unmask_call(a);
        result = xi_call_in_main(st, func, args, kwargs);
        if (a->masked == 0) {
            mask_call(a); /* the call did not start (_call_pending masks as it returns) */
        }
        Py_DECREF(func);
        Py_DECREF(args);
        Py_XDECREF(kwargs);
        break;
    case XI_REQ_EXEC: {
        PyObject *globals = main_dict();
        const char *code = PyUnicode_Check(payload) ? PyUnicode_AsUTF8(payload) : NULL;
        if (globals == NULL || code == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "exec() needs source code as a str");
            }
            goto fail;
        }
        unmask_call(a);
        result = PyRun_StringFlags(code, Py_file_input, globals, globals, NULL);
        mask_call(a);
        if (result != NULL) {
            Py_SETREF(result, Py_NewRef(Py_None));
        }
        break;
    }
    case XI_REQ_PREPARE: {
        PyObject *globals = main_dict();
        if (globals == NULL || !PyDict_Check(payload) || PyDict_Update(globals, payload) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "prepare_main() needs a dict");
            }
            goto fail;
        }
        result = Py_NewRef(Py_None);
        break;
    }
    }
    if (result == NULL || xi_encode_value(st, result, out) < 0) {
        goto fail;
    }
    if ((must_own || xi_packet_oob_bytes(out) <= XI_OWN_MAX) && xi_packet_own(out) < 0) {
        xi_packet_release(out);
        goto fail;
    }
    Py_XDECREF(payload);
    Py_DECREF(result);
    return;
fail:
    Py_XDECREF(payload);
    Py_XDECREF(result);
    xi_encode_exception(st, rec->id, out);
    out->unshareable = unshareable;
}

/* The direct path: this thread switches into the target. */
static PyObject *
run_direct(xi_state *st, xi_interp *rec, xi_request kind, xi_packet *req)
{
    xi_entry e;
    xi_err err = enter_register(rec, &e);
    if (err != XI_OK) {
        return xi_raise(st, err, rec->id);
    }
    xi_packet out = XI_PACKET_INIT;
    switch_in(&e);
    xi_tls *t = tls_get();
    if (t != NULL) {
        e.active.outer = t->call;
        t->call = &e.active;
    }
    run_request(rec, &e.active, kind, req, &out, NULL, e.temporary);
    if (t != NULL) {
        t->call = e.active.outer;
    }
    active_remove(rec, &e.active);
    switch_out(&e);
    PyObject *result = xi_decode(st, &out);
    if (xi_packet_is_borrowed(&out)) {
        PyObject *exc = PyErr_GetRaisedException();
        switch_in(&e);
        xi_packet_release(&out);
        switch_out(&e);
        PyErr_SetRaisedException(exc);
    }
    else {
        xi_packet_release(&out);
    }
    activity_done(rec);
    return result;
}

/* ------------------------------------------------------------ owner thread */

static void
job_decref(xi_job *job)
{
    if (atomic_fetch_sub(&job->refcnt, 1) == 1) {
        PyMem_RawFree(job);
    }
}

static void
post_locked(xi_interp *rec, xi_job *job)
{
    job->next = NULL;
    job->seq = rec->next_seq++;
    *rec->jobs_tail = job;
    rec->jobs_tail = &job->next;
    atomic_fetch_add(&rec->njobs, 1);
    xi_signal(&rec->wake);
}

static void
post_close_locked(xi_interp *rec, xi_job *job)
{
    job->close = 1;
    atomic_init(&job->refcnt, 1);
    rec->state = XI_ST_CLOSING;
    post_locked(rec, job);
}

static int
has_jobs(void *rec)
{
    return atomic_load_explicit(&((xi_interp *)rec)->njobs, memory_order_acquire) > 0;
}

static int
job_is_done(void *job)
{
    return atomic_load_explicit(&((xi_job *)job)->state, memory_order_acquire) >= XI_JOB_DONE;
}

static xi_job *
pop_job_locked(xi_interp *rec, xi_active *act)
{
    xi_job *job = rec->jobs;
    rec->jobs = job->next;
    if (rec->jobs == NULL) {
        rec->jobs_tail = &rec->jobs;
    }
    atomic_fetch_sub(&rec->njobs, 1);
    if (!job->close) {
        atomic_store(&job->state, XI_JOB_DECODING);
        /* running from now on, for interrupt() too (masked until its own code runs) */
        *act = (xi_active){.rec = rec, .ident = rec->owner_ident, .ts = rec->owner_ts,
                           .masked = 1, .seq = job->seq};
        act->next = rec->active;
        rec->active = act;
    }
    return job;
}

/* Takes the next job, spinning briefly before sleeping. The GIL is not held. */
static xi_job *
next_job(xi_interp *rec, xi_active *act)
{
    (void)xi_spin_until(has_jobs, rec);
    xi_lock(&rec->mu);
    while (rec->jobs == NULL) {
        xi_wait(&rec->wake, &rec->mu);
    }
    xi_job *job = pop_job_locked(rec, act);
    xi_unlock(&rec->mu);
    return job;
}

static void serve_job(xi_interp *rec, xi_job *job, xi_active *act);

/* Runs a job popped with pop_job_locked(rec, act). */
static void
serve_job(xi_interp *rec, xi_job *job, xi_active *act)
{
    PyEval_RestoreThread(rec->owner_ts);
    xi_tls *t = tls_get();
    if (t != NULL) {
        act->outer = t->call;
        t->call = act;
    }
    run_request(rec, act, job->kind, &job->req, &job->out, job, 0);
    if (t != NULL) {
        t->call = act->outer;
    }
    active_remove(rec, act);
    if (job->req_handed) {
        /* the poster left while the request was decoded (see xi_job): released in
         * the poster's interpreter, the main one */
        PyEval_SaveThread();
        PyEval_RestoreThread(rec->owner_main_ts);
        xi_packet_release(&job->req);
        PyEval_SaveThread();
        PyEval_RestoreThread(rec->owner_ts);
    }

    /* The activity ends before the poster sees the result, so that it may close the
     * interpreter as soon as its call returns. */
    xi_lock(&rec->mu);
    int abandoned = job->abandoned;
    int borrowed = xi_packet_is_borrowed(&job->out);
    if (!abandoned && !borrowed) {
        activity_done_locked(rec);
    }
    if (!abandoned) {
        atomic_store(&job->state, XI_JOB_DONE);
        xi_broadcast(&rec->changed);
    }
    xi_unlock(&rec->mu);
    if (!abandoned && borrowed) {
        /* The poster copies straight out of our objects; let it finish, serving the
         * calls it may make meanwhile (rebuilding the result can call back here). */
        PyEval_SaveThread();
        xi_lock(&rec->mu);
        while (!job->consumed && !job->abandoned) {
            if (rec->jobs != NULL && !rec->jobs->close) {
                xi_active nested_act;
                xi_job *nested = pop_job_locked(rec, &nested_act);
                xi_unlock(&rec->mu);
                serve_job(rec, nested, &nested_act);
                xi_lock(&rec->mu);
                continue;
            }
            xi_wait(&rec->wake, &rec->mu);
        }
        xi_unlock(&rec->mu);
        PyEval_RestoreThread(rec->owner_ts);
    }
    if (abandoned || borrowed) {
        xi_packet_release(&job->out);
        xi_lock(&rec->mu);
        activity_done_locked(rec);
        atomic_store(&job->state, XI_JOB_FINISHED);
        xi_broadcast(&rec->changed);
        xi_unlock(&rec->mu);
    }
    PyEval_SaveThread();
    job_decref(job);
}

#if PY_VERSION_HEX < 0x030E0000
/* Thread states other than the owner's (threads started inside the interpreter).
 * Runs with its GIL held. */
static Py_ssize_t
other_thread_states(xi_interp *rec)
{
    Py_ssize_t n = 0;
    for (PyThreadState *t = PyInterpreterState_ThreadHead(rec->interp); t != NULL;
         t = PyThreadState_Next(t)) {
        n += t != rec->owner_ts;
    }
    return n;
}

/* Live non-daemon threads of the threading module, other than this one and its main
 * thread: those that Py_EndInterpreter joins. (The main thread of a subinterpreter's
 * threading module is whichever thread imported it, or, from 3.13 on, the process's
 * main thread: a thread state of neither is left here now.) */
static Py_ssize_t
joinable_threads(void)
{
    Py_ssize_t n = 0;
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *threading = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    /* (not threading.current_thread(): on this thread it would make a dummy Thread) */
    PyObject *current = threading ? PyObject_CallMethod(threading, "get_ident", NULL) : NULL;
    PyObject *main = current ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
    PyObject *threads = main ? PyObject_CallMethod(threading, "enumerate", NULL) : NULL;
    PyObject *seq = threads ? PySequence_Fast(threads, "enumerate()") : NULL;
    for (Py_ssize_t i = 0; seq != NULL && i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        if (t == main) {
            continue;
        }
        PyObject *ident = PyObject_GetAttrString(t, "ident");
        PyObject *daemon = PyObject_GetAttrString(t, "daemon");
        if (ident != NULL && daemon != NULL && !PyObject_IsTrue(daemon) &&
            PyObject_RichCompareBool(ident, current, Py_EQ) == 0) {
            n++;
        }
        Py_XDECREF(ident);
        Py_XDECREF(daemon);
    }
    PyErr_Clear();
    Py_XDECREF(seq);
    Py_XDECREF(threads);
    Py_XDECREF(main);
    Py_XDECREF(current);
    Py_XDECREF(threading);
    return n;
}
#endif /* before 3.14 */

#if XI_LIFECYCLE_LOCK
/* threading._shutdown() then atexit._run_exitfuncs(), in the current interpreter, as
 * Py_EndInterpreter runs them; errors are reported like theirs and cleared. The atexit
 * hooks run are removed; threading._shutdown is then replaced by a function that does
 * nothing, since Py_EndInterpreter calls it again and, on the thread that imported
 * threading, a second call fails (its main thread is already stopped). */
static void
run_exit_work(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *res = threading ? PyObject_CallMethod(threading, "_shutdown", NULL) : NULL;
    if (res == NULL) {
        PyErr_WriteUnraisable(threading);
    }
    Py_XDECREF(res);
    if (threading != NULL) {
        PyObject *globals = PyDict_New();
        PyObject *noop = globals ? PyRun_String("lambda: None", Py_eval_input, globals, globals)
                                 : NULL;
        if (noop == NULL || PyObject_SetAttrString(threading, "_shutdown", noop) < 0) {
            PyErr_WriteUnraisable(threading);
        }
        Py_XDECREF(noop);
        Py_XDECREF(globals);
    }
    Py_XDECREF(threading);
    PyObject *atexit = PyImport_ImportModule("atexit");
    res = atexit ? PyObject_CallMethod(atexit, "_run_exitfuncs", NULL) : NULL;
    if (res == NULL) {
        PyErr_WriteUnraisable(atexit);
    }
    Py_XDECREF(res);
    Py_XDECREF(atexit);
}
#endif

/* Ends the interpreter whose first thread state (owner_ts) is current on the owner
 * thread: after a normal life and after a failed set-up alike. */
static void
finalize_owned(xi_interp *rec)
{
#if PY_VERSION_HEX < 0x030E0000
    /* Py_EndInterpreter joins the threads started with threading, but before 3.14 it
     * aborts the process if any other thread state is left (daemon threads, threads
     * started with _thread): wait for those threads to end first, and say so when the
     * wait is long. From 3.14 on it ends the interpreter with them still there (they
     * stop when they next need its GIL), as the standard library's close() does. */
    int waits = 0;
    while (other_thread_states(rec) > joinable_threads()) {
        if (++waits == 400) { /* 2 s */
            if (PyErr_WarnEx(PyExc_RuntimeWarning,
                             "closing an interpreter waits for its daemon threads (or threads "
                             "started with _thread) to end: CPython 3.12 and 3.13 cannot end "
                             "an interpreter while they run", 1) < 0) {
                PyErr_WriteUnraisable(NULL);
            }
        }
        Py_BEGIN_ALLOW_THREADS
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS
    }
#endif
#if XI_LIFECYCLE_LOCK
    /* What Py_EndInterpreter would do first, done here, outside of the lock: join the
     * threads started with threading, run the atexit hooks (either may create or close
     * interpreters). Py_EndInterpreter then finds nothing left to do there. */
    run_exit_work();
#endif
    /* Queue items it lent become owned before its objects go */
    xi_state *st = xi_loaded_state();
    if (st != NULL) {
        xi_lender_close(st, 0);
    }
#if XI_LIFECYCLE_LOCK
    /* The lock is taken before any GIL, as where interpreters are created: an
     * interpreter that shares the main GIL would otherwise hold it while waiting for
     * the lock, which a creation holds while it waits for the main GIL. */
    PyEval_SaveThread();
    LIFECYCLE_BEGIN();
    PyEval_RestoreThread(rec->owner_ts);
    xi_ending_locked = 1;
#endif
    Py_EndInterpreter(rec->owner_ts);
#if XI_LIFECYCLE_LOCK
    xi_ending_locked = 0;
#endif
    LIFECYCLE_END();
    rec->owner_ts = NULL;
}

/* Ends the interpreter; runs on the owner thread, which holds nothing. */
static void
end_interpreter(xi_interp *rec)
{
    xi_lock(&rec->mu);
    while (rec->ninterrupters > 0) {
        xi_wait(&rec->changed, &rec->mu);
    }
    /* Take the cache and retire its entries under the lock; delete the thread states
     * after it, since clearing runs arbitrary finalizers. The record keeps its links
     * meanwhile, so no entry is freed under this walk. */
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
    xi_unlock(&rec->mu);

    PyEval_RestoreThread(rec->owner_ts);
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
    finalize_owned(rec);
}

static void
drop_main_thread_state(xi_interp *rec)
{
    PyEval_RestoreThread(rec->owner_main_ts);
    PyThreadState_Clear(rec->owner_main_ts);
    PyThreadState_DeleteCurrent();
    rec->owner_main_ts = NULL;
}

static void
finish(xi_interp *rec, int state)
{
    xi_lock(&rec->mu);
    rec->state = state;
    xi_broadcast(&rec->changed);
    xi_unlock(&rec->mu);
}

static void
describe_error(xi_interp *rec, const char *what)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *s = exc ? PyObject_Str(exc) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    PyErr_Clear();
    snprintf(rec->errmsg, sizeof(rec->errmsg), "%s: %s: %s", what,
             exc ? Py_TYPE(exc)->tp_name : "error", msg ? msg : "?");
    Py_XDECREF(s);
    Py_XDECREF(exc);
}

/* Runs in the new interpreter: binds sys and pickle (the latter imported on first use)
 * in __main__, as extrainterpreters 0.3.0 did (__init__.py, _bind_main). The package is
 * imported already: this module is part of it. */
static int
bind_main_names(void)
{
    PyObject *mod = PyImport_ImportModule("extrainterpreters");
    if (mod == NULL) {
        return -1;
    }
    PyObject *r = PyObject_CallMethod(mod, "_bind_main", NULL);
    Py_DECREF(mod);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Runs in the new interpreter: sys.path as the creator's, then this module, then (with
 * bind_main) the names __main__ starts with. */
static int
setup_interpreter(xi_interp *rec)
{
    PyObject *path = PyList_New(rec->init_path_len);
    if (path == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < rec->init_path_len; i++) {
        PyObject *s = PyUnicode_DecodeFSDefault(rec->init_path[i]);
        if (s == NULL) {
            Py_DECREF(path);
            return -1;
        }
        PyList_SET_ITEM(path, i, s);
    }
    int rc = PySys_SetObject("path", path);
    Py_DECREF(path);
    if (rc < 0) {
        return -1;
    }
    if (xi_current_state() == NULL) {
        return -1;
    }
    return rec->bind_main ? bind_main_names() : 0;
}

static void *
owner_main(void *arg)
{
    xi_interp *rec = arg;
    rec->owner_ident = PyThread_get_thread_ident();
    LIFECYCLE_BEGIN();
    rec->owner_main_ts = PyThreadState_New(PyInterpreterState_Main());
    if (rec->owner_main_ts == NULL) {
        snprintf(rec->errmsg, sizeof(rec->errmsg), "out of memory");
        LIFECYCLE_END();
        finish(rec, XI_ST_FAILED);
        xi_interp_decref(rec);
        return NULL;
    }
    PyEval_RestoreThread(rec->owner_main_ts);
    PyThreadState *ts = NULL;
    PyStatus status = Py_NewInterpreterFromConfig(&ts, &rec->config);
    LIFECYCLE_END();
    if (PyStatus_Exception(status) || ts == NULL) {
        /* the main-interpreter thread state is current again */
        snprintf(rec->errmsg, sizeof(rec->errmsg), "%s",
                 status.err_msg ? status.err_msg : "Py_NewInterpreterFromConfig failed");
        PyThreadState_Clear(rec->owner_main_ts);
        PyThreadState_DeleteCurrent();
        finish(rec, XI_ST_FAILED);
        xi_interp_decref(rec);
        return NULL;
    }
    rec->owner_ts = ts;
    rec->interp = PyThreadState_GetInterpreter(ts);
    rec->id = PyInterpreterState_GetID(rec->interp);
    if (setup_interpreter(rec) < 0) {
        describe_error(rec, "setting up the interpreter failed");
        finalize_owned(rec);
        drop_main_thread_state(rec);
        finish(rec, XI_ST_FAILED);
        xi_interp_decref(rec);
        return NULL;
    }
    free_init_path(rec);
    PyEval_SaveThread();
    finish(rec, XI_ST_RUNNING);

    for (;;) {
        xi_active act;
        xi_job *job = next_job(rec, &act);
        if (job->close) {
            job_decref(job);
            break;
        }
        serve_job(rec, job, &act);
    }
    end_interpreter(rec);
    drop_main_thread_state(rec);
    remember_closed(rec->id);
    registry_remove(rec);
    finish(rec, XI_ST_CLOSED);
    xi_interp_decref(rec);
    return NULL;
}

/* ------------------------------------------------------------ creation */

static int
copy_path(xi_interp *rec, PyObject *sys_path)
{
    PyObject *seq = PySequence_Fast(sys_path, "sys.path must be a list");
    if (seq == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    rec->init_path = PyMem_RawCalloc(n ? (size_t)n : 1, sizeof(char *));
    if (rec->init_path == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(item)) {
            continue; /* sys.path may hold other objects; only str entries are copied */
        }
        PyObject *b = PyUnicode_EncodeFSDefault(item);
        if (b == NULL) {
            Py_DECREF(seq);
            return -1;
        }
        size_t len = (size_t)PyBytes_GET_SIZE(b);
        char *s = PyMem_RawMalloc(len + 1);
        if (s == NULL) {
            Py_DECREF(b);
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(s, PyBytes_AS_STRING(b), len + 1);
        Py_DECREF(b);
        rec->init_path[rec->init_path_len++] = s;
    }
    Py_DECREF(seq);
    return 0;
}

/* The isolated configuration: its own GIL and obmalloc, single-phase extension
 * modules refused. */
static const PyInterpreterConfig isolated_config = {
    .use_main_obmalloc = 0,
    .allow_fork = 0,
    .allow_exec = 0,
    .allow_threads = 1,
    .allow_daemon_threads = 0,
    .check_multi_interp_extensions = 1,
    .gil = PyInterpreterConfig_OWN_GIL,
};

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

static void
creation_end(void)
{
    xi_lock(&xi_registry_mu);
    xi_creating--;
    xi_registry_gen++;
    if (xi_fork_sleepers > 0) {
        xi_broadcast(&xi_fork_cond);
    }
    xi_unlock(&xi_registry_mu);
}

static xi_err create(xi_state *st, PyObject *sys_path, const PyInterpreterConfig *config,
                     int bind_main, xi_interp **out);

xi_err
xi_interp_create(xi_state *st, PyObject *sys_path, const PyInterpreterConfig *config,
                 int bind_main, xi_interp **out)
{
    *out = NULL;
    if (ENDING_LOCKED()) {
        PyErr_SetString(st->InterpreterError,
                        "cannot create an interpreter in a finalizer that ending an "
                        "interpreter runs: CPython 3.12 creates and ends interpreters "
                        "one at a time");
        return XI_ERR_PYTHON;
    }
    ensure_fork_cond();
    /* a fork being prepared goes first: the child must not inherit an interpreter */
    if (xi_block(&xi_registry_mu, &xi_fork_cond, &xi_fork_sleepers, creation_may_begin,
                 NULL, NULL, XI_FOREVER) < 0) {
        return XI_ERR_PYTHON;
    }
    xi_err err = create(st, sys_path, config, bind_main, out);
    creation_end();
    return err;
}

static xi_err
create(xi_state *st, PyObject *sys_path, const PyInterpreterConfig *config, int bind_main,
       xi_interp **out)
{
    if (xi_shutting_down) {
        return XI_ERR_FINALIZING;
    }
    xi_interp *rec = record_new();
    if (rec == NULL) {
        return XI_ERR_NOMEM;
    }
    rec->has_owner = 1;
    rec->config = config != NULL ? *config : isolated_config;
    rec->bind_main = bind_main;
    if (copy_path(rec, sys_path) < 0) {
        xi_interp_decref(rec);
        return XI_ERR_PYTHON;
    }
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* the owner runs Python code: give it the stack the main thread usually has */
    pthread_attr_setstacksize(&attr, 8 * 1024 * 1024);
    xi_interp_incref(rec); /* the owner thread's */
    int rc = pthread_create(&thread, &attr, owner_main, rec);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        xi_interp_decref(rec);
        xi_interp_decref(rec);
        return XI_ERR_THREAD;
    }
    Py_BEGIN_ALLOW_THREADS
    xi_lock(&rec->mu);
    while (rec->state == XI_ST_STARTING) {
        xi_wait(&rec->changed, &rec->mu);
    }
    xi_unlock(&rec->mu);
    Py_END_ALLOW_THREADS
    if (rec->state == XI_ST_FAILED) {
        PyErr_Format(st->InterpreterError, "the interpreter could not be created (%s)",
                     rec->errmsg);
        xi_interp_decref(rec);
        return XI_ERR_CREATE;
    }
    if (registry_add(rec) < 0) {
        /* close_all() ran meanwhile: this one must not outlive it either */
        (void)xi_interp_close(rec);
        xi_interp_decref(rec);
        return XI_ERR_FINALIZING;
    }
    *out = rec;
    return XI_OK;
}

/* ------------------------------------------------------------ the main thread's path */

/* Waits for a job with the GIL released. Returns 0 when it is done, or -1 with the
 * signal handler's exception set (the GIL held in both cases). */
static int
wait_job(xi_interp *rec, xi_job *job)
{
    PyThreadState *saved = PyEval_SaveThread();
    (void)xi_spin_until(job_is_done, job);
    for (;;) {
        xi_lock(&rec->mu);
        int64_t deadline = xi_now_ns() + 50 * 1000 * 1000;
        while (atomic_load(&job->state) < XI_JOB_DONE) {
            if (xi_wait_until(&rec->changed, &rec->mu, deadline) == ETIMEDOUT) {
                break;
            }
        }
        int done = atomic_load(&job->state) >= XI_JOB_DONE;
        xi_unlock(&rec->mu);
        PyEval_RestoreThread(saved);
        if (done) {
            return 0;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        saved = PyEval_SaveThread();
    }
}

/* After an interruption: give the call a moment (200 ms) to stop, then leave it to the
 * owner. A job still decoding its request then keeps the request (req_handed): the
 * owner releases it once decoded, and does not make the call. */
static void
abandon_job(xi_interp *rec, xi_job *job)
{
    PyThreadState *saved = PyEval_SaveThread();
    xi_lock(&rec->mu);
    int interrupted = 0;
    int64_t deadline = xi_now_ns() + 200 * 1000 * 1000;
    for (;;) {
        int st = atomic_load(&job->state);
        if (st >= XI_JOB_DONE) {
            break;
        }
        if (st == XI_JOB_POSTED) {
            /* not started: take it back */
            for (xi_job **p = &rec->jobs; *p != NULL; p = &(*p)->next) {
                if (*p == job) {
                    *p = job->next;
                    if (rec->jobs_tail == &job->next) {
                        rec->jobs_tail = p;
                    }
                    atomic_fetch_sub(&rec->njobs, 1);
                    break;
                }
            }
            activity_done_locked(rec);
            xi_unlock(&rec->mu);
            PyEval_RestoreThread(saved);
            job_decref(job); /* the owner's reference */
            return;
        }
        if (!interrupted) {
            /* Past POSTED, the job is on rec->active until it is done, so this
             * reaches it. Only the owner thread's call: other threads' calls into
             * the interpreter are not ours. */
            xi_unlock(&rec->mu);
            (void)xi_interp_interrupt_thread(rec, rec->owner_ident);
            xi_lock(&rec->mu);
            interrupted = 1;
            continue;
        }
        if (xi_wait_until(&rec->changed, &rec->mu, deadline) == ETIMEDOUT) {
            break;
        }
    }
    /* Who releases a finished result is decided here, under the lock: a borrowed one
     * is the owner's (it waits for `consumed` or `abandoned`, then releases it in its
     * interpreter), an owned one ours. Once we unlock, the owner may be releasing it,
     * so the packet is not even looked at again unless it is ours. The same for the
     * request of a job still decoding it: the owner's from now on. */
    int st = atomic_load(&job->state);
    int done = st >= XI_JOB_DONE;
    int ours = done && !xi_packet_is_borrowed(&job->out);
    if (done) {
        job->consumed = 1; /* we will not read the result */
    }
    if (st == XI_JOB_DECODING) {
        job->req_handed = 1;
    }
    job->abandoned = 1;
    xi_broadcast(&rec->changed);
    xi_broadcast(&rec->wake);
    xi_unlock(&rec->mu);
    PyEval_RestoreThread(saved);
    if (ours) {
        xi_packet_release(&job->out);
    }
}

static PyObject *
run_on_owner(xi_state *st, xi_interp *rec, xi_request kind, xi_packet *req)
{
    xi_job *job = PyMem_RawMalloc(sizeof(xi_job)); /* glibc's per-thread cache */
    if (job == NULL) {
        return PyErr_NoMemory();
    }
    *job = (xi_job){0};
    job->kind = kind;
    job->req = *req; /* moved in: given back below unless the owner keeps it */
    *req = (xi_packet)XI_PACKET_INIT;
    atomic_init(&job->state, XI_JOB_POSTED);
    atomic_init(&job->refcnt, 2);
    xi_lock(&rec->mu);
    if (rec->state != XI_ST_RUNNING) {
        xi_unlock(&rec->mu);
        *req = job->req;
        PyMem_RawFree(job);
        return xi_raise(st, XI_ERR_CLOSED, rec->id);
    }
    rec->nactive++;
    post_locked(rec, job);
    xi_unlock(&rec->mu);

    PyObject *result = NULL;
    if (wait_job(rec, job) < 0) {
        abandon_job(rec, job);
    }
    else {
        result = xi_decode(st, &job->out);
        if (xi_packet_is_borrowed(&job->out)) {
            Py_BEGIN_ALLOW_THREADS
            xi_lock(&rec->mu);
            job->consumed = 1;
            xi_broadcast(&rec->wake);
            while (atomic_load(&job->state) != XI_JOB_FINISHED) {
                xi_wait(&rec->changed, &rec->mu);
            }
            xi_unlock(&rec->mu);
            Py_END_ALLOW_THREADS
        }
        else {
            xi_packet_release(&job->out);
        }
    }
    if (!job->req_handed) {
        *req = job->req; /* the caller releases it */
    }
    job_decref(job);
    return result;
}

PyObject *
xi_interp_run(xi_state *st, xi_interp *rec, xi_request kind, xi_packet *req)
{
    if (rec_forked(rec)) {
        return xi_raise(st, XI_ERR_FORKED, rec->id);
    }
    if (rec->has_owner && xi_is_main_thread()) {
        return run_on_owner(st, rec, kind, req);
    }
    return run_direct(st, rec, kind, req);
}

/* ------------------------------------------------------------ interrupting */

typedef struct {
    xi_interp *rec;
    unsigned long ident; /* 0: every call */
    uint64_t before;     /* only calls that began before the request (xi_active.seq);
                            0: none, only poll held interrupts */
} xi_interrupter;

/* Whether `a` is the innermost of the calls of its thread that are one logical call
 * (rec->mu held): a nested call into the same interpreter takes the outer call's seq,
 * and is linked into rec->active after it, so nearer the head. */
static int
innermost_of_its_call(xi_interp *rec, xi_active *a)
{
    for (xi_active *b = rec->active; b != a; b = b->next) {
        if (b->ident == a->ident && b->seq == a->seq) {
            return 0;
        }
    }
    return 1;
}

/* One pass over the held interrupts (GIL and rec->mu held): arms those whose thread
 * left guarded code; a masked call drops the hold (unmask_call decides again). Ends
 * the polling when none is held any more; returns whether it goes on. */
static int
poll_held_locked(xi_interp *rec)
{
    int still = 0;
    for (xi_active *a = rec->active; a != NULL; a = a->next) {
        if (!a->held) {
            continue;
        }
        if (a->masked) {
            a->held = 0;
        }
        else {
            still |= arm_or_hold(a);
        }
    }
    if (!still) {
        rec->polling = 0;
    }
    return still;
}

static void *
interrupter_main(void *arg)
{
    xi_interrupter *job = arg;
    xi_interp *rec = job->rec;
    PyThreadState *ts = PyThreadState_New(rec->interp);
    if (ts != NULL) {
        PyEval_RestoreThread(ts);
        int poll = 0;
        xi_lock(&rec->mu);
        for (xi_active *a = rec->active; a != NULL && job->before != 0; a = a->next) {
            if ((job->ident != 0 && a->ident != job->ident) || a->seq >= job->before) {
                continue; /* another thread's, or one that began after the request */
            }
            if (!innermost_of_its_call(rec, a)) {
                continue; /* masked in a nested call, which gets it */
            }
            if (a->masked) {
                a->pending = 1;
            }
            else if (arm_or_hold(a) && !rec->polling) {
                rec->polling = 1;
                poll = 1;
            }
        }
        if (job->before == 0) {
            poll = 1; /* started as the poller (rec->polling set by start_poller) */
        }
        xi_unlock(&rec->mu);
        /* Polls until no interrupt is held: a thread leaves an import within
         * milliseconds, mostly; the delay grows to 20 ms for one that takes long. */
        unsigned delay_us = 500;
        while (poll) {
            PyEval_SaveThread();
            usleep(delay_us);
            delay_us = delay_us < 20000 ? delay_us * 2 : 20000;
            PyEval_RestoreThread(ts);
            xi_lock(&rec->mu);
            poll = poll_held_locked(rec);
            xi_unlock(&rec->mu);
        }
        monitor_release_if_idle(rec);
        if (!rec->watching) {
            monitor_free_if_idle();
        }
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent();
    }
    else if (job->before == 0) {
        xi_lock(&rec->mu);
        rec->polling = 0; /* (held interrupts wait for the next interrupt() or unmask) */
        xi_unlock(&rec->mu);
    }
    PyMem_RawFree(job);
    xi_lock(&rec->mu);
    rec->ninterrupters--;
    xi_broadcast(&rec->changed);
    xi_unlock(&rec->mu);
    xi_interp_decref(rec);
    return NULL;
}

/* Starts an interrupter thread for `job` (rec->ninterrupters already counts it). */
static xi_err
start_interrupter(xi_interrupter *job)
{
    xi_interp *rec = job->rec;
    xi_interp_incref(rec);
    /* A thread of its own: taking the target's GIL may take a while, and the caller
     * (often the main thread handling Ctrl-C) must not wait for it. */
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thread, &attr, interrupter_main, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        PyMem_RawFree(job);
        xi_lock(&rec->mu);
        rec->ninterrupters--;
        xi_broadcast(&rec->changed);
        xi_unlock(&rec->mu);
        xi_interp_decref(rec);
        return XI_ERR_THREAD;
    }
    return XI_OK;
}

/* Makes sure that a poller runs for the held interrupts of `rec`; called by a call's
 * thread (in unmask_call), with its interpreter's GIL held. Without memory or a
 * thread, the interrupt stays pending: a later interrupt() or unmask tries again. */
static void
start_poller(xi_interp *rec)
{
    xi_interrupter *job = PyMem_RawMalloc(sizeof(xi_interrupter));
    if (job == NULL) {
        return;
    }
    *job = (xi_interrupter){.rec = rec, .ident = 0, .before = 0};
    xi_lock(&rec->mu);
    if (rec->polling) {
        xi_unlock(&rec->mu);
        PyMem_RawFree(job);
        return;
    }
    rec->polling = 1;
    rec->ninterrupters++;
    xi_unlock(&rec->mu);
    if (start_interrupter(job) != XI_OK) {
        xi_lock(&rec->mu);
        rec->polling = 0;
        xi_unlock(&rec->mu);
    }
}

xi_err
xi_interp_interrupt_thread(xi_interp *rec, unsigned long ident)
{
    if (rec_forked(rec)) {
        return XI_OK;
    }
    xi_interrupter *job = PyMem_RawMalloc(sizeof(xi_interrupter));
    if (job == NULL) {
        return XI_ERR_NOMEM;
    }
    job->rec = rec;
    job->ident = ident;
    xi_lock(&rec->mu);
    if (rec->state != XI_ST_RUNNING || rec->active == NULL) {
        xi_unlock(&rec->mu);
        PyMem_RawFree(job);
        return XI_OK;
    }
    rec->ninterrupters++;
    job->before = rec->next_seq;
    xi_unlock(&rec->mu);
    return start_interrupter(job);
}

xi_err
xi_interp_interrupt(xi_interp *rec)
{
    return xi_interp_interrupt_thread(rec, 0);
}

int
xi_interp_is_running(xi_interp *rec)
{
    if (rec_forked(rec)) {
        return 0;
    }
    xi_lock(&rec->mu);
    int running = rec->nactive > 0;
    xi_unlock(&rec->mu);
    return running;
}

int
xi_interp_in_call(void)
{
    return xi_tls_cur != NULL && xi_tls_cur->call != NULL;
}

int
xi_interp_take_interrupt(void)
{
    xi_active *a = call_here();
    if (a == NULL) {
        return 0;
    }
    if (a->armed) {
        /* raise it here instead of at the next bytecode */
        disarm(a);
    }
    else if (a->pending) {
        if (a->held && in_guarded_code(PyThreadState_Get(), WALK_INNERMOST, NULL)) {
            return 0; /* a wait of guarded code itself: raised once it has left */
        }
        /* (held, a wait that a module's code makes as it is imported: raised from
         * there, as any exception of the module's code) */
        a->pending = 0;
        a->held = 0;
    }
    else {
        return 0;
    }
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return 1;
}

/* ------------------------------------------------------------ closing */

static int
is_closed(void *rec)
{
    return ((xi_interp *)rec)->state == XI_ST_CLOSED;
}

/* Waits for the owner thread to end the interpreter (which joins the threads started
 * in it). Interruptible in the main thread: the closing then goes on without waiter. */
static xi_err
wait_closed(xi_interp *rec)
{
    int sleepers = 0;
    return xi_block(&rec->mu, &rec->changed, &sleepers, is_closed, NULL, rec, XI_FOREVER) < 0
               ? XI_ERR_PYTHON : XI_OK;
}

/* Whether this thread runs in rec's interpreter, or left a thread state there to call
 * another one. By id: an interpreter being ended may already be freed, and its address
 * taken by a new one. */
static int
current_thread_is_inside(xi_interp *rec)
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

xi_err
xi_interp_close(xi_interp *rec)
{
    if (!rec->has_owner) {
        return XI_ERR_NOT_OWNER;
    }
    if (rec_forked(rec)) {
        return XI_OK;
    }
    xi_job *job = PyMem_RawCalloc(1, sizeof(xi_job));
    xi_lock(&rec->mu);
    if (current_thread_is_inside(rec)) {
        /* also while it closes: its own threads (which ending it joins) and the
         * finalizers that ending it runs would wait for themselves */
        xi_unlock(&rec->mu);
        PyMem_RawFree(job);
        return XI_ERR_CURRENT;
    }
    if (rec->state == XI_ST_RUNNING) {
        if (rec->nactive > 0) {
            xi_unlock(&rec->mu);
            PyMem_RawFree(job);
            return XI_ERR_RUNNING;
        }
        if (job == NULL) {
            job = rec->spare_close;
            rec->spare_close = NULL;
        }
        if (job == NULL) {
            xi_unlock(&rec->mu);
            return XI_ERR_NOMEM;
        }
        post_close_locked(rec, job);
        job = NULL;
    }
    xi_unlock(&rec->mu);
    PyMem_RawFree(job);
    if (ENDING_LOCKED()) {
        return XI_OK; /* it ends once this thread's interpreter has ended */
    }
    return wait_closed(rec);
}

void
xi_interp_orphan(xi_interp *rec)
{
    if (rec_forked(rec)) {
        return;
    }
    xi_lock(&rec->mu);
    rec->orphaned = 1;
    if (rec->state == XI_ST_RUNNING && rec->nactive == 0 && rec->spare_close != NULL) {
        post_close_locked(rec, rec->spare_close);
        rec->spare_close = NULL;
    }
    xi_unlock(&rec->mu);
}

/* At exit: interrupts the calls that the threads `daemons` run in `rec` (see
 * xi_interp_close_all), as interrupt() does, one thread at a time. */
static void
interrupt_daemon_calls(xi_interp *rec, const unsigned long *daemons, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        xi_lock(&rec->mu);
        int found = 0;
        for (xi_active *a = rec->active; a != NULL && !found; a = a->next) {
            found = a->ident == daemons[i];
        }
        xi_unlock(&rec->mu);
        if (found) {
            (void)xi_interp_interrupt_thread(rec, daemons[i]);
        }
    }
}

typedef struct {
    xi_interp *rec;
    xi_job *job;        /* the close request, until posted */
} xi_closer;

/* (rec->mu held) Posts the close once the interpreter is idle; 1 when it is closing. */
static int
close_when_idle(void *arg)
{
    xi_closer *c = arg;
    if (c->rec->state != XI_ST_RUNNING) {
        return 1;
    }
    if (c->rec->nactive > 0) {
        return 0;
    }
    post_close_locked(c->rec, c->job);
    c->job = NULL;
    return 1;
}

void
xi_interp_close_all(const unsigned long *daemons, Py_ssize_t ndaemons)
{
    xi_lock(&xi_registry_mu);
    xi_shutting_down = 1;
    if (xi_exit_daemons == NULL && ndaemons > 0 &&
        (xi_exit_daemons = PyMem_RawMalloc(sizeof(unsigned long) * (size_t)ndaemons)) != NULL) {
        memcpy(xi_exit_daemons, daemons, sizeof(unsigned long) * (size_t)ndaemons);
        xi_exit_ndaemons = ndaemons;
    }
    xi_unlock(&xi_registry_mu);
    for (;;) {
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
        if (rec == NULL) {
            return;
        }
        /* let running calls finish (those of daemon threads: interrupted, every 100 ms
         * while they keep it busy), then close: posted under the lock that saw it idle,
         * so a daemon thread that calls again at once cannot keep it open */
        /* from now on its daemon threads cannot call in again: a thread that keeps
         * calling would keep it busy for ever */
        xi_closer closer = {rec, PyMem_RawCalloc(1, sizeof(xi_job))};
        xi_lock(&rec->mu);
        rec->exiting = 1;
        if (closer.job == NULL) {
            closer.job = rec->spare_close;
            rec->spare_close = NULL;
        }
        xi_unlock(&rec->mu);
        int sleepers = 0, idle = 0; /* (stays 0 when out of memory) */
        while (closer.job != NULL) {
            interrupt_daemon_calls(rec, daemons, ndaemons);
            idle = xi_block(&rec->mu, &rec->changed, &sleepers, close_when_idle, NULL,
                            &closer, xi_now_ns() + 100 * 1000 * 1000);
            if (idle != 0) {
                break;
            }
        }
        xi_err err = idle > 0 ? wait_closed(rec) : idle < 0 ? XI_ERR_PYTHON : XI_ERR_NOMEM;
        PyMem_RawFree(closer.job); /* NULL once posted */
        if (err == XI_ERR_PYTHON) {
            /* Ctrl-C at exit: interrupt the calls still running there and every wait
             * on a shared object, and go on waiting (the runtime must not finalize
             * under a running interpreter) */
            PyErr_Clear();
            (void)xi_interp_interrupt(rec);
            xi_interrupt_waits();
            xi_interp_decref(rec);
            continue;
        }
        if (err != XI_OK && err != XI_ERR_RUNNING) {
            /* this thread is inside it (or out of memory): leave it to the runtime */
            registry_remove(rec);
        }
        xi_interp_decref(rec);
    }
}
