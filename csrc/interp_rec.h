/* The interpreter record, shared by the units that make up interpreters: interp.c
 * (records, the registry, fork()), tscache.c, interrupt.c, call.c and owner.c; the
 * rest of the core uses interp.h and those units' headers. The functions declared here
 * are interp.c's. */
#ifndef XI_INTERP_REC_H
#define XI_INTERP_REC_H

#include "callctx.h"
#include "interp.h"
#include "wire.h"

typedef enum {
    XI_ST_STARTING = 0,
    XI_ST_RUNNING = 1,
    XI_ST_CLOSING = 2,
    XI_ST_CLOSED = 3,
    XI_ST_FAILED = 4,
} xi_lifecycle;

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
    uint64_t seq;        /* when it was posted (rec->next_seq), for its xi_callctx */
    _Atomic int refcnt;
    struct xi_job *next;
} xi_job;

struct xi_interp {
    /* set before the record is shared, then read-only */
    int64_t id;
    PyInterpreterState *interp;
    int has_owner;                 /* 0 for the main interpreter's record */
    unsigned epoch;                /* xi_epoch when made: another one in a fork() child
                                      whose parent made it (see xi_rec_forked) */
    _Atomic long refcnt;

    xi_mutex mu;
    xi_cond wake;                  /* the owner thread waits here for jobs */
    xi_cond changed;               /* waiters for jobs, calls and state */
    int state;                     /* xi_lifecycle */
    int nactive;                   /* calls running or queued */
    xi_callctx *active;            /* the calls running in it (callctx.h) */
    struct xi_tsentry *cache;      /* the thread states cached for it (tscache.c) */
    _Atomic int ndead;             /* entries of exited threads */
    int ninterrupters;
    int polling;                   /* an interrupter thread polls held interrupts */
    int watching;                  /* sys.monitoring watches for held interrupts
                                      (guarded by the interpreter's GIL) */
    uint64_t next_seq;             /* numbers the calls as they begin (xi_callctx.seq) */
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

/* CPython 3.12 corrupts memory when subinterpreters are created or ended concurrently
 * (seen as blocks freed into the wrong allocator at exit): there, one at a time. The
 * lock covers Py_NewInterpreterFromConfig and Py_EndInterpreter only, and is taken
 * with no thread state attached (before the GIL they run under): never around code
 * that may create or close an interpreter itself (site, the package import, atexit
 * hooks, joining threads, waiting for loan readers), which would wait for the lock
 * forever. */
#if PY_VERSION_HEX < 0x030D0000
#  define XI_LIFECYCLE_LOCK 1
extern xi_mutex xi_lifecycle_mu;
#else
#  define XI_LIFECYCLE_LOCK 0
#endif

/* Whether the record is a fork() parent's (see interp.c, "fork()"): it is never locked
 * again, and refuses calls. */
int xi_rec_forked(const xi_interp *rec);

/* A new record (one reference), with the spare close request; NULL out of memory. */
xi_interp *xi_rec_new(void);
void xi_rec_free_init_path(xi_interp *rec);

/* Interpreter ids are never reused, so a closed one stays closed. */
void xi_rec_remember_closed(int64_t id);

/* Adds a new record to the registry, unless close_all() has run (-1). */
int xi_rec_register(xi_interp *rec);
void xi_rec_unregister(xi_interp *rec);

/* A creation begins: it waits while a fork is being prepared (the child must not
 * inherit an interpreter). 0, or -1 with an exception set. Ended by
 * xi_rec_creation_end. */
int xi_rec_creation_begin(void);
void xi_rec_creation_end(void);

/* At exit: no record is added from now on (xi_rec_shutting_down), and the calls of the
 * threads `daemons` are interrupted rather than waited for (xi_rec_is_exit_daemon,
 * under a record's lock once its `exiting` is set). */
void xi_rec_shut_down(const unsigned long *daemons, Py_ssize_t n);
int xi_rec_shutting_down(void);
int xi_rec_is_exit_daemon(unsigned long ident);

/* A new reference to a record in the registry that has an owner thread, or NULL. */
xi_interp *xi_rec_first_owned(void);

/* Set by tscache.c: forgets the forking thread's cache entries in a fork() child
 * (called by interp.c's child handler, which takes no lock and allocates nothing). */
extern void (*xi_rec_after_fork_hook)(void);

#endif /* XI_INTERP_REC_H */
