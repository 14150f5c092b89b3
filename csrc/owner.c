/* Owner threads: each interpreter made by this library has one, an OS thread that
 * creates the interpreter, serves the jobs posted to it, and ends it; creating and
 * closing interpreters (see owner.h). */
#include "owner.h"
#include "call.h"
#include "interp_rec.h"
#include "interrupt.h"
#include "loan.h"
#include "tscache.h"
#include "wait.h"

#include <string.h>

#if XI_LIFECYCLE_LOCK
#  define LIFECYCLE_BEGIN() xi_lock(&xi_lifecycle_mu)
#  define LIFECYCLE_END() xi_unlock(&xi_lifecycle_mu)
/* Py_EndInterpreter itself runs finalizers (of __main__'s objects, say) under the
 * lock, on the owner thread, which sets this meanwhile. There a close() does not wait
 * for the interpreter to end (its owner thread needs the lock: it ends it once this
 * one is ended), and creating an interpreter is refused. */
static _Thread_local int xi_ending_locked;
#  define ENDING_LOCKED() xi_ending_locked
#else
#  define LIFECYCLE_BEGIN() ((void)0)
#  define LIFECYCLE_END() ((void)0)
#  define ENDING_LOCKED() 0
#endif

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
    xi_tsentry *entries = xi_tscache_retire_locked(rec);
    xi_unlock(&rec->mu);
    PyEval_RestoreThread(rec->owner_ts);
    xi_tscache_delete(rec, entries);
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
    xi_rec_free_init_path(rec);
    PyEval_SaveThread();
    finish(rec, XI_ST_RUNNING);

    for (;;) {
        xi_callctx act;
        xi_job *job = xi_jobs_next(rec, &act);
        if (job->close) {
            xi_job_decref(job);
            break;
        }
        xi_jobs_serve(rec, job, &act);
    }
    end_interpreter(rec);
    drop_main_thread_state(rec);
    xi_rec_remember_closed(rec->id);
    xi_rec_unregister(rec);
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
    if (xi_rec_creation_begin() < 0) {
        return XI_ERR_PYTHON;
    }
    xi_err err = create(st, sys_path, config, bind_main, out);
    xi_rec_creation_end();
    return err;
}

static xi_err
create(xi_state *st, PyObject *sys_path, const PyInterpreterConfig *config, int bind_main,
       xi_interp **out)
{
    if (xi_rec_shutting_down()) {
        return XI_ERR_FINALIZING;
    }
    xi_interp *rec = xi_rec_new();
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
    if (xi_rec_register(rec) < 0) {
        /* close_all() ran meanwhile: this one must not outlive it either */
        (void)xi_interp_close(rec);
        xi_interp_decref(rec);
        return XI_ERR_FINALIZING;
    }
    *out = rec;
    return XI_OK;
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

xi_err
xi_interp_close(xi_interp *rec)
{
    if (!rec->has_owner) {
        return XI_ERR_NOT_OWNER;
    }
    if (xi_rec_forked(rec)) {
        return XI_OK;
    }
    xi_job *job = PyMem_RawCalloc(1, sizeof(xi_job));
    xi_lock(&rec->mu);
    if (xi_tscache_inside(rec)) {
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
        xi_jobs_post_close_locked(rec, job);
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
    if (xi_rec_forked(rec)) {
        return;
    }
    xi_lock(&rec->mu);
    rec->orphaned = 1;
    if (rec->state == XI_ST_RUNNING && rec->nactive == 0 && rec->spare_close != NULL) {
        xi_jobs_post_close_locked(rec, rec->spare_close);
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
        for (xi_callctx *a = rec->active; a != NULL && !found; a = a->next) {
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
    xi_jobs_post_close_locked(c->rec, c->job);
    c->job = NULL;
    return 1;
}

void
xi_interp_close_all(const unsigned long *daemons, Py_ssize_t ndaemons)
{
    xi_rec_shut_down(daemons, ndaemons);
    for (;;) {
        xi_interp *rec = xi_rec_first_owned();
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
            xi_rec_unregister(rec);
        }
        xi_interp_decref(rec);
    }
}

