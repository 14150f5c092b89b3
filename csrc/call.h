/* Calls into an interpreter. The main thread never enters a subinterpreter, so it keeps
 * handling signals: it posts its calls to the interpreter's owner thread as jobs and
 * waits for them with its GIL released, checking for signals while it waits. Every
 * other thread calls directly (tscache.h). */
#ifndef XI_CALL_H
#define XI_CALL_H

#include "callctx.h"
#include "interp.h"
#include "wire.h"

typedef struct xi_job xi_job;

/* Runs a request in the interpreter and returns its result in the current one (new
 * reference), or NULL with an exception set. `req` is a packet encoded in the current
 * interpreter; the caller releases it afterwards (it is empty when an interrupted call
 * kept it: a call abandoned while the target decodes it). */
PyObject *xi_interp_run(xi_state *st, xi_interp *rec, xi_request kind, xi_packet *req);

/* The owner thread's side (owner.c). It takes the next job, waiting for one with the
 * GIL released (a close request, or a call begun as `act`); it serves a call job (its
 * reference is dropped). */
xi_job *xi_jobs_next(xi_interp *rec, xi_callctx *act);
void xi_jobs_serve(xi_interp *rec, xi_job *job, xi_callctx *act);
void xi_job_decref(xi_job *job);

/* Posts the request to end the interpreter (rec->mu held): it is closing from now on. */
void xi_jobs_post_close_locked(xi_interp *rec, xi_job *job);

#endif /* XI_CALL_H */
