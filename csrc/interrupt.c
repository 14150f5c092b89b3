/* interrupt(): the asynchronous exception it arms, the code where it is held (the
 * import system) and how a thread is seen leaving it (sys.monitoring, a poller), the
 * interrupter thread (see interrupt.h). What a call's interrupt state is, and when it
 * is armed, is callctx.c's; this unit acts on it. */
#include "interrupt.h"
#include "interp_rec.h"

#include <unistd.h>

/* The class armed as the asynchronous exception: CPython instantiates it when it
 * raises it, which tells the call that its interrupt was raised; it makes a plain
 * KeyboardInterrupt. */
static PyObject *
interrupt_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)type;
    (void)args;
    (void)kwargs;
    xi_callctx_raised();
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

/* The asynchronous exception that interrupt() arms. */
static PyObject *
interrupt_class(void)
{
    xi_state *st = xi_loaded_state();
    return st != NULL && st->InterruptType != NULL ? (PyObject *)st->InterruptType
                                                    : PyExc_KeyboardInterrupt;
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
reset_async_flag(xi_callctx *a)
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
    xi_lock(&a->rec->mu);
    xi_callctx_rearm_others(a->rec->active, a);
    xi_unlock(&a->rec->mu);
}
#endif

/* Sets (arm) or takes back (not raised yet) the asynchronous KeyboardInterrupt of call
 * `c`; its interpreter's GIL is held (the xi_callctx_hooks.set_async hook). */
static void
set_async(xi_callctx *c, int arm)
{
    PyThreadState_SetAsyncExc(c->ident, arm ? interrupt_class() : NULL);
#if PY_VERSION_HEX < 0x030D0000
    if (!arm) {
        reset_async_flag(c);
    }
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

static void monitor_release_if_idle(xi_interp *rec);

static PyObject *guarded_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *task_resumes(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

static PyMethodDef task_resumes_def = {
    "_task_resumes", (PyCFunction)(void (*)(void))task_resumes, METH_FASTCALL,
    "raises an interrupt held until now (the core's own use)"};

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
    xi_lock(&rec->mu);
    int held = xi_callctx_any_held(rec->active);
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

/* Whether the thread of call `c` runs guarded code (the xi_callctx_hooks.guarded
 * hook): in the whole call, watching the guarded frames found (sys.monitoring), or in
 * the current thread's innermost frame. */
static int
call_in_guarded_code(xi_callctx *c, int innermost)
{
    if (innermost) {
        return in_guarded_code(PyThreadState_Get(), WALK_INNERMOST, NULL);
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *found = PySet_New(NULL);
    if (found == NULL) {
        PyErr_Clear();
    }
    int guarded = in_guarded_code(c->ts, WALK_ALL, found);
    if (guarded && found != NULL) {
        monitor_watch(c->rec, found);
    }
    Py_XDECREF(found);
    PyErr_SetRaisedException(exc);
    return guarded;
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
    xi_callctx *a = xi_callctx_holding();
    if (a == NULL) {
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
            xi_callctx_release(a, 1);
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
    xi_callctx *a = xi_callctx_holding();
    if (a == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *exc = PyErr_GetRaisedException();
    int guarded = in_guarded_code(PyThreadState_Get(), WALK_ALL, NULL);
    PyErr_SetRaisedException(exc);
    if (guarded) {
        Py_RETURN_NONE; /* (this code runs inside an import again) */
    }
    xi_callctx_release(a, 0);
    monitor_release_if_idle(a->rec);
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return NULL;
}

static void start_poller(xi_interp *rec);

/* What callctx.c asks of this unit (see xi_callctx_hooks). */
static const xi_callctx_hooks interrupt_hooks = {
    .guarded = call_in_guarded_code,
    .set_async = set_async,
    .held = start_poller,
};

void
xi_interrupt_call_ended(xi_interp *rec)
{
    if (rec->watching) {
        monitor_release_if_idle(rec); /* (an interrupt held as the call returned) */
    }
    if (!rec->watching) {
        monitor_free_if_idle();
    }
}

/* ------------------------------------------------------------ the interrupter */

typedef struct {
    xi_interp *rec;
    unsigned long ident; /* 0: every call */
    uint64_t before;     /* only calls that began before the request (xi_callctx.seq);
                            0: none, only poll held interrupts */
} xi_interrupter;

/* One pass over the held interrupts (GIL and rec->mu held; xi_callctx_poll_held).
 * Ends the polling when none is held any more; returns whether it goes on. */
static int
poll_held_locked(xi_interp *rec)
{
    int still = xi_callctx_poll_held(rec->active);
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
        if (job->before != 0 && xi_callctx_interrupt(rec->active, job->ident, job->before) &&
            !rec->polling) {
            rec->polling = 1;
            poll = 1;
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
 * thread (the xi_callctx_hooks.held hook), with its interpreter's GIL held. Without memory or a
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

/* callctx.c uses its hooks only for a call that an interrupt() reached (armed, pending
 * or held): they are installed before the first interrupter starts. */
static void
install_hooks(void)
{
    xi_callctx_set_hooks(&interrupt_hooks);
}

xi_err
xi_interp_interrupt_thread(xi_interp *rec, unsigned long ident)
{
    static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&hooks_once, install_hooks);
    if (xi_rec_forked(rec)) {
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
