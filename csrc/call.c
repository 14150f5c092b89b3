/* Calls: running a request in the target interpreter, directly (any thread but the
 * main one) or as a job posted to the owner thread (the main thread), and leaving a
 * call that was interrupted (see call.h). */
#include "call.h"
#include "interp_rec.h"
#include "interrupt.h"
#include "tscache.h"
#include "wait.h"

/* A call returns (callctx.h, xi_callctx_end, then the interrupter's bookkeeping);
 * runs in its interpreter. */
static void
call_end(xi_interp *rec, xi_callctx *c)
{
    xi_callctx_end(c, &rec->active, &rec->mu);
    xi_interrupt_call_ended(rec);
}

/* Ends one unit of activity (rec->mu held); closes an orphaned interpreter once idle. */
static void
activity_done_locked(xi_interp *rec)
{
    rec->nactive--;
    if (rec->nactive == 0 && rec->orphaned && rec->state == XI_ST_RUNNING &&
        rec->spare_close != NULL) {
        xi_jobs_post_close_locked(rec, rec->spare_close);
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

/* Runs the decoded request of call `a` (its own code unmasked): the result (a new
 * reference), or NULL with an exception set. Consumes func, args and kwargs. */
static PyObject *
run_decoded(xi_state *st, xi_callctx *a, xi_request kind, PyObject *payload,
            PyObject *func, PyObject *args, PyObject *kwargs)
{
    PyObject *result = NULL;
    switch (kind) {
    case XI_REQ_CALL:
        /* the call's own code: the only part that interrupt() may hit */
        xi_callctx_own_code(a);
        result = xi_call_in_main(st, func, args, kwargs);
        xi_callctx_own_code_end(a);
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
            return NULL;
        }
        xi_callctx_own_code(a);
        result = PyRun_StringFlags(code, Py_file_input, globals, globals, NULL);
        xi_callctx_own_code_end(a);
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
            return NULL;
        }
        result = Py_NewRef(Py_None);
        break;
    }
    }
    return result;
}

/* Runs a request in the current interpreter (the target), filling `out` with the result
 * or the exception. Results with little out-of-band data are owned at once; larger
 * ones stay borrowed (one copy less) and must be released here later. */
static void
run_request(xi_interp *rec, xi_callctx *a, xi_request kind, const xi_packet *in,
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
    result = run_decoded(st, a, kind, payload, func, args, kwargs);
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
    xi_err err = xi_tscache_enter(rec, &e);
    if (err != XI_OK) {
        return xi_raise(st, err, rec->id);
    }
    xi_packet out = XI_PACKET_INIT;
    xi_tscache_switch_in(&e);
    xi_callctx_enter(&e.active);
    run_request(rec, &e.active, kind, req, &out, NULL, e.temporary);
    call_end(rec, &e.active);
    xi_tscache_switch_out(&e);
    PyObject *result = xi_decode(st, &out);
    if (xi_packet_is_borrowed(&out)) {
        PyObject *exc = PyErr_GetRaisedException();
        xi_tscache_switch_in(&e);
        xi_packet_release(&out);
        xi_tscache_switch_out(&e);
        PyErr_SetRaisedException(exc);
    }
    else {
        xi_packet_release(&out);
    }
    activity_done(rec);
    return result;
}

/* ------------------------------------------------------------ jobs (the owner thread's side) */

void
xi_job_decref(xi_job *job)
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

void
xi_jobs_post_close_locked(xi_interp *rec, xi_job *job)
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
pop_job_locked(xi_interp *rec, xi_callctx *act)
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
        xi_callctx_begin(act, rec, rec->interp, rec->owner_ident, rec->owner_ts, job->seq);
        act->next = rec->active;
        rec->active = act;
    }
    return job;
}

/* Takes the next job, spinning briefly before sleeping. The GIL is not held. */
xi_job *
xi_jobs_next(xi_interp *rec, xi_callctx *act)
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

/* Runs a job popped with pop_job_locked(rec, act). */
void
xi_jobs_serve(xi_interp *rec, xi_job *job, xi_callctx *act)
{
    PyEval_RestoreThread(rec->owner_ts);
    xi_callctx_enter(act);
    run_request(rec, act, job->kind, &job->req, &job->out, job, 0);
    call_end(rec, act);
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
                xi_callctx nested_act;
                xi_job *nested = pop_job_locked(rec, &nested_act);
                xi_unlock(&rec->mu);
                xi_jobs_serve(rec, nested, &nested_act);
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
    xi_job_decref(job);
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
            xi_job_decref(job); /* the owner's reference */
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
    xi_job_decref(job);
    return result;
}

PyObject *
xi_interp_run(xi_state *st, xi_interp *rec, xi_request kind, xi_packet *req)
{
    if (xi_rec_forked(rec)) {
        return xi_raise(st, XI_ERR_FORKED, rec->id);
    }
    if (rec->has_owner && xi_is_main_thread()) {
        return run_on_owner(st, rec, kind, req);
    }
    return run_direct(st, rec, kind, req);
}

