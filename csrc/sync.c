/* threading's primitives across interpreters (see sync.h): Lock, RLock, Semaphore,
 * BoundedSemaphore, Event, Condition, Barrier. Each is a shared object; every wait
 * happens in C with the thread state detached (wait.h). */
#include "sync.h"
#include "callctx.h"

#include "interp.h"
#include "wait.h"
#include "wire.h"

#include <limits.h>
#include <stddef.h>

/* ------------------------------------------------------------ the shared structs */

typedef struct {
    xi_shared hdr;
    xi_mutex mu;
    xi_cond cv;
    int sleepers;
    /* Lock: `count` is 0 or 1. RLock: recursion count, `owner` the owning
     * (interpreter, thread). Semaphore: `count` is the value, `bound` the initial value
     * for a BoundedSemaphore (-1 otherwise). Event: `count` is the flag. */
    _Atomic long count;
    uint64_t owner_thread;
    int64_t owner_interp;
    long bound;
    uint64_t generation;      /* Event: how many times set() ran */
    xi_fds async_waiters;     /* asyncio waiters (wait.h) */
} xi_basic;

/* A thread waiting on a Condition; lives on the waiter's stack. */
typedef struct xi_waiter {
    int notified;
    struct xi_waiter *next;
} xi_waiter;

typedef struct {
    xi_shared hdr;
    xi_mutex mu;
    xi_cond cv;
    int sleepers;
    xi_shared *lock;          /* the Lock or RLock (a reference) */
    xi_waiter *head, *tail;   /* FIFO of waiters */
} xi_condition;

enum { XI_B_FILLING = 0, XI_B_DRAINING = 1, XI_B_RESETTING = -1, XI_B_BROKEN = -2,
       XI_B_ACTION = 2 };

typedef struct {
    xi_shared hdr;
    xi_mutex mu;
    xi_cond cv;
    int sleepers;
    long parties;
    long count;
    int state;
    int64_t timeout_ns;       /* default timeout, -1: none */
    xi_packet action;         /* owned; size 0 when there is none */
    int has_action;
} xi_barrier;

static void
basic_free(xi_shared *obj)
{
    xi_basic *b = (xi_basic *)obj;
    xi_fds_fini(&b->async_waiters);
    xi_cond_fini(&b->cv);
    xi_mutex_fini(&b->mu);
    PyMem_RawFree(b);
}

static void
condition_free(xi_shared *obj)
{
    xi_condition *c = (xi_condition *)obj;
    xi_shared_decref(c->lock);
    xi_cond_fini(&c->cv);
    xi_mutex_fini(&c->mu);
    PyMem_RawFree(c);
}

static void
barrier_free(xi_shared *obj)
{
    xi_barrier *b = (xi_barrier *)obj;
    xi_packet_release(&b->action); /* owned: safe anywhere */
    xi_cond_fini(&b->cv);
    xi_mutex_fini(&b->mu);
    PyMem_RawFree(b);
}

/* every struct here starts with hdr, mu, cv: each waits on its one condition */
static void
any_wake(xi_shared *obj)
{
    xi_basic *b = (xi_basic *)obj;
    xi_lock(&b->mu);
    xi_broadcast(&b->cv);
    xi_unlock(&b->mu);
}

static const xi_shared_ops lock_ops = {XI_KIND_LOCK, "Lock", basic_free, any_wake};
static const xi_shared_ops rlock_ops = {XI_KIND_RLOCK, "RLock", basic_free, any_wake};
static const xi_shared_ops semaphore_ops = {XI_KIND_SEMAPHORE, "Semaphore", basic_free,
                                            any_wake};
static const xi_shared_ops event_ops = {XI_KIND_EVENT, "Event", basic_free, any_wake};
static const xi_shared_ops condition_ops = {XI_KIND_CONDITION, "Condition", condition_free,
                                            any_wake};
static const xi_shared_ops barrier_ops = {XI_KIND_BARRIER, "Barrier", barrier_free, any_wake};

static void *
shared_new(size_t size, const xi_shared_ops *ops)
{
    xi_basic *b = PyMem_RawCalloc(1, size);
    if (b == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    /* every struct here starts with hdr, mu, cv, sleepers */
    xi_mutex_init(&b->mu);
    xi_cond_init(&b->cv);
    xi_shared_register(&b->hdr, ops);
    return b;
}

/* ------------------------------------------------------------ wrappers */

typedef struct {
    PyObject_HEAD
    xi_shared *obj;
    PyObject *weakreflist;
} xi_sync_obj;

#define OBJ(self) (((xi_sync_obj *)(self))->obj)
#define BASIC(self) ((xi_basic *)OBJ(self))
#define COND(self) ((xi_condition *)OBJ(self))
#define BARRIER(self) ((xi_barrier *)OBJ(self))

static inline xi_state *
sync_state(PyObject *self)
{
    return (xi_state *)PyType_GetModuleState(Py_TYPE(self));
}

static PyObject *
wrap(PyTypeObject *tp, xi_shared *obj)
{
    xi_sync_obj *self = (xi_sync_obj *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->obj = obj; /* the reference passes to the wrapper */
    return (PyObject *)self;
}

/* Wraps a new object, or drops it on failure. */
static PyObject *
wrap_new(PyTypeObject *tp, xi_shared *obj)
{
    PyObject *self = wrap(tp, obj);
    if (self == NULL) {
        xi_shared_decref(obj);
    }
    return self;
}

static PyTypeObject *
type_for(xi_state *st, xi_shared *obj)
{
    xi_basic *b = (xi_basic *)obj;
    switch (obj->ops->kind) {
    case XI_KIND_LOCK:
        return st->LockType;
    case XI_KIND_RLOCK:
        return st->RLockType;
    case XI_KIND_SEMAPHORE:
        return b->bound >= 0 ? st->BoundedSemaphoreType : st->SemaphoreType;
    case XI_KIND_EVENT:
        return st->EventType;
    case XI_KIND_CONDITION:
        return st->ConditionType;
    case XI_KIND_BARRIER:
        return st->BarrierType;
    default:
        return NULL;
    }
}

PyObject *
xi_sync_wrap(xi_state *st, xi_shared *obj)
{
    PyTypeObject *tp = type_for(st, obj);
    if (tp == NULL) {
        PyErr_SetString(PyExc_ValueError, "not a synchronization primitive");
        return NULL;
    }
    xi_shared_incref(obj);
    return wrap_new(tp, obj);
}

static void
sync_dealloc(PyObject *op)
{
    xi_sync_obj *self = (xi_sync_obj *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    if (self->obj != NULL) {
        xi_shared_decref(self->obj);
        self->obj = NULL;
    }
    tp->tp_free(op);
    Py_DECREF(tp);
}

static int
sync_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    return 0;
}

static PyObject *
sync_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_shared *obj = OBJ(self);
    if (xi_refs_add(obj) < 0) {
        return NULL;
    }
    return Py_BuildValue("O(iK)", sync_state(self)->rebuild, (int)obj->ops->kind,
                         (unsigned long long)obj->id);
}

static PyObject *
sync_get_id(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(OBJ(self)->id);
}

static PyObject *
sync_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int same = OBJ(a) == OBJ(b);
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static Py_hash_t
sync_hash(PyObject *self)
{
    Py_hash_t h = (Py_hash_t)OBJ(self)->id;
    return h == -1 ? -2 : h;
}

static PyObject *
sync_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<extrainterpreters.%s id=%llu>", OBJ(self)->ops->name,
                                (unsigned long long)OBJ(self)->id);
}

static int
no_arguments(const char *name, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ timeouts */

/* threading.TIMEOUT_MAX on 64-bit Linux */
#define XI_TIMEOUT_MAX 9223372036.0

/* threading's acquire(blocking=True, timeout=-1) for Lock and RLock. */
static int
lock_deadline(PyObject *args, PyObject *kwargs, int64_t *deadline)
{
    int blocking = 1;
    double timeout = -1;
    static char *kwlist[] = {"blocking", "timeout", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pd:acquire", kwlist, &blocking, &timeout)) {
        return -1;
    }
    if (!blocking && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return -1;
    }
    if (timeout != timeout || (timeout < 0 && timeout != -1)) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
        return -1;
    }
    if (timeout > XI_TIMEOUT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return -1;
    }
    if (!blocking) {
        *deadline = xi_now_ns();
    }
    else if (timeout == -1 || timeout > 1e9) {
        *deadline = XI_FOREVER;
    }
    else {
        *deadline = xi_now_ns() + (int64_t)(timeout * 1e9);
    }
    return 0;
}

/* A timeout argument that may be None (Semaphore, Event, Condition, Barrier); negative
 * values mean "do not wait", as in threading. */
static int
optional_deadline(PyObject *timeout, int64_t *deadline)
{
    if (timeout == NULL || timeout == Py_None) {
        *deadline = XI_FOREVER;
        return 0;
    }
    double secs = PyFloat_AsDouble(timeout);
    if (secs == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (secs != secs) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
        return -1;
    }
    if (secs > 1e9) {
        *deadline = XI_FOREVER;
    }
    else {
        *deadline = xi_now_ns() + (secs > 0 ? (int64_t)(secs * 1e9) : 0);
    }
    return 0;
}

/* Waits with the GIL released for attempt() (run under b->mu) to succeed. A first
 * attempt runs with the GIL held: no one holding these mutexes ever waits for a GIL.
 * 1 done, 0 timed out, -1 exception. */
static int
block_on(xi_basic *b, int (*attempt)(void *), void *arg, int64_t deadline)
{
    xi_lock(&b->mu);
    int done = attempt(arg);
    xi_unlock(&b->mu);
    if (done) {
        return 1;
    }
    if (deadline != XI_FOREVER && deadline <= xi_now_ns()) {
        return 0;
    }
    return xi_block(&b->mu, &b->cv, &b->sleepers, attempt, NULL, arg, deadline);
}

/* ------------------------------------------------------------ Lock */

static int
lock_try(void *arg)
{
    xi_basic *b = arg;
    long expected = 0;
    return atomic_compare_exchange_strong(&b->count, &expected, 1);
}

/* Releases a Lock; -1 with RuntimeError when it is not locked. */
static int
lock_release_raw(xi_basic *b)
{
    xi_lock(&b->mu);
    long expected = 1;
    if (!atomic_compare_exchange_strong(&b->count, &expected, 0)) {
        xi_unlock(&b->mu);
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return -1;
    }
    if (b->sleepers > 0) {
        xi_signal(&b->cv);
    }
    xi_fds_notify(&b->async_waiters);
    xi_unlock(&b->mu);
    return 0;
}

/* Acquires a Lock or an RLock until `deadline`; 1, 0 (timed out) or -1. */
static int rlock_acquire_raw(xi_basic *b, int64_t deadline);

static int
lock_acquire_raw(xi_basic *b, int64_t deadline)
{
    if (lock_try(b)) {
        return 1;
    }
    return block_on(b, lock_try, b, deadline);
}

static PyObject *
lock_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    if (!no_arguments("Lock", args, kwargs)) {
        return NULL;
    }
    xi_basic *b = shared_new(sizeof(xi_basic), &lock_ops);
    return b ? wrap_new(tp, &b->hdr) : NULL;
}

static PyObject *
lock_locked(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(atomic_load(&BASIC(self)->count) != 0);
}

/* ------------------------------------------------------------ RLock */

/* The caller's identity for RLock ownership: (interpreter, thread). */
static void
whoami(int64_t *interp, uint64_t *thread)
{
    *interp = PyInterpreterState_GetID(PyInterpreterState_Get());
    *thread = (uint64_t)PyThread_get_thread_ident();
}

typedef struct {
    xi_basic *b;
    int64_t interp;
    uint64_t thread;
    long count;     /* how many levels to take */
} xi_rlock_op;

static int
rlock_try(void *arg)
{
    xi_rlock_op *op = arg;
    xi_basic *b = op->b;
    long n = atomic_load(&b->count);
    if (n == 0) {
        b->owner_interp = op->interp;
        b->owner_thread = op->thread;
        atomic_store(&b->count, op->count);
        return 1;
    }
    if (b->owner_interp == op->interp && b->owner_thread == op->thread) {
        atomic_store(&b->count, n + op->count);
        return 1;
    }
    if (b->owner_interp != op->interp && xi_interp_is_closed(b->owner_interp)) {
        /* its owner's interpreter has closed: nobody can release it any more */
        b->owner_interp = op->interp;
        b->owner_thread = op->thread;
        atomic_store(&b->count, op->count);
        return 1;
    }
    return 0;
}

static int
rlock_acquire_levels(xi_basic *b, long levels, int64_t deadline)
{
    xi_rlock_op op = {b, 0, 0, levels};
    whoami(&op.interp, &op.thread);
    /* waits in rounds: an owner whose interpreter closes never releases, and nothing
     * signals that; each round looks again */
    for (;;) {
        int64_t round = xi_now_ns() + 100 * 1000 * 1000;
        int rc = block_on(b, rlock_try, &op,
                          deadline == XI_FOREVER || deadline > round ? round : deadline);
        if (rc != 0 || (deadline != XI_FOREVER && xi_now_ns() >= deadline)) {
            return rc;
        }
    }
}

static int
rlock_acquire_raw(xi_basic *b, int64_t deadline)
{
    return rlock_acquire_levels(b, 1, deadline);
}

static int
rlock_is_owned(xi_basic *b)
{
    int64_t interp;
    uint64_t thread;
    whoami(&interp, &thread);
    xi_lock(&b->mu);
    int owned = atomic_load(&b->count) > 0 && b->owner_interp == interp &&
                b->owner_thread == thread;
    xi_unlock(&b->mu);
    return owned;
}

/* Releases `levels` levels (all of them when levels is 0); returns how many were
 * released, or -1 with RuntimeError when the caller does not own it. */
static long
rlock_release_levels(xi_basic *b, long levels)
{
    int64_t interp;
    uint64_t thread;
    whoami(&interp, &thread);
    xi_lock(&b->mu);
    long n = atomic_load(&b->count);
    if (n == 0 || b->owner_interp != interp || b->owner_thread != thread) {
        xi_unlock(&b->mu);
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return -1;
    }
    long released = (levels == 0 || levels > n) ? n : levels;
    atomic_store(&b->count, n - released);
    if (n - released == 0) {
        if (b->sleepers > 0) {
            xi_signal(&b->cv);
        }
        xi_fds_notify(&b->async_waiters);
    }
    xi_unlock(&b->mu);
    return released;
}

static PyObject *
rlock_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    if (!no_arguments("RLock", args, kwargs)) {
        return NULL;
    }
    xi_basic *b = shared_new(sizeof(xi_basic), &rlock_ops);
    return b ? wrap_new(tp, &b->hdr) : NULL;
}

static PyObject *
rlock_is_owned_meth(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(rlock_is_owned(BASIC(self)));
}


/* ------------------------------------------------------------ Lock, RLock, Condition */

static int
is_rlock(xi_shared *lock)
{
    return lock->ops->kind == XI_KIND_RLOCK;
}

/* The lock that acquire(), release() and `with` act on: a Lock or RLock itself, or a
 * Condition's lock. */
static xi_shared *
lock_of(PyObject *self)
{
    xi_shared *obj = OBJ(self);
    return obj->ops->kind == XI_KIND_CONDITION ? ((xi_condition *)obj)->lock : obj;
}

static int
any_lock_acquire(xi_shared *lk, int64_t deadline)
{
    xi_basic *b = (xi_basic *)lk;
    return is_rlock(lk) ? rlock_acquire_raw(b, deadline) : lock_acquire_raw(b, deadline);
}

static PyObject *
mutex_acquire(PyObject *self, PyObject *args, PyObject *kwargs)
{
    xi_shared *lk = lock_of(self);
    if (PyTuple_GET_SIZE(args) == 0 && kwargs == NULL && !is_rlock(lk) &&
        lock_try((xi_basic *)lk)) {
        Py_RETURN_TRUE; /* an uncontended Lock: one atomic operation */
    }
    int64_t deadline;
    if (lock_deadline(args, kwargs, &deadline) < 0) {
        return NULL;
    }
    int rc = any_lock_acquire(lk, deadline);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *mutex_release(PyObject *self, PyObject *ignored);

/* `with` takes an interrupt() aimed at its call inside __enter__, the lock released
 * again: raised once __enter__ has returned, CPython 3.14 would skip __exit__ and leave
 * the lock taken. The GIL is held from this check until __enter__ returns, and an
 * interrupt is set holding it, so none can land in between. */
static int
entered_interrupted(void)
{
    return xi_callctx_in_call() && xi_callctx_take();
}

static PyObject *
mutex_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    int rc = any_lock_acquire(lock_of(self), XI_FOREVER);
    if (rc < 0) {
        return NULL;
    }
    if (rc == 1 && entered_interrupted()) {
        PyObject *exc = PyErr_GetRaisedException();
        PyObject *r = mutex_release(self, NULL);
        Py_XDECREF(r);
        PyErr_Clear();
        PyErr_SetRaisedException(exc);
        return NULL;
    }
    return PyBool_FromLong(rc);
}

static PyObject *
mutex_release(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_shared *lk = lock_of(self);
    xi_basic *b = (xi_basic *)lk;
    int rc = is_rlock(lk) ? (rlock_release_levels(b, 1) < 0 ? -1 : 0) : lock_release_raw(b);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
mutex_exit(PyObject *self, PyObject *Py_UNUSED(args))
{
    return mutex_release(self, NULL);
}

/* ------------------------------------------------------------ Semaphore */

static int
semaphore_try(void *arg)
{
    xi_basic *b = arg;
    long n = atomic_load(&b->count);
    if (n > 0) {
        atomic_store(&b->count, n - 1);
        return 1;
    }
    return 0;
}

static PyObject *
semaphore_make(PyTypeObject *tp, PyObject *args, PyObject *kwargs, int bounded)
{
    long value = 1;
    static char *kwlist[] = {"value", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, bounded ? "|l:BoundedSemaphore"
                                                           : "|l:Semaphore",
                                     kwlist, &value)) {
        return NULL;
    }
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError, "semaphore initial value must be >= 0");
        return NULL;
    }
    xi_basic *b = shared_new(sizeof(xi_basic), &semaphore_ops);
    if (b == NULL) {
        return NULL;
    }
    atomic_store(&b->count, value);
    b->bound = bounded ? value : -1;
    return wrap_new(tp, &b->hdr);
}

static PyObject *
semaphore_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    return semaphore_make(tp, args, kwargs, 0);
}

static PyObject *
bounded_semaphore_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    return semaphore_make(tp, args, kwargs, 1);
}

static PyObject *
semaphore_acquire(PyObject *self, PyObject *args, PyObject *kwargs)
{
    int blocking = 1;
    PyObject *timeout = Py_None;
    static char *kwlist[] = {"blocking", "timeout", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:acquire", kwlist, &blocking, &timeout)) {
        return NULL;
    }
    if (!blocking && timeout != Py_None) {
        PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
        return NULL;
    }
    int64_t deadline = xi_now_ns();
    if (blocking && optional_deadline(timeout, &deadline) < 0) {
        return NULL;
    }
    int rc = block_on(BASIC(self), semaphore_try, BASIC(self), deadline);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *semaphore_release(PyObject *self, PyObject *args, PyObject *kwargs);

static PyObject *
semaphore_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    int rc = block_on(BASIC(self), semaphore_try, BASIC(self), XI_FOREVER);
    if (rc < 0) {
        return NULL;
    }
    if (rc == 1 && entered_interrupted()) {
        PyObject *exc = PyErr_GetRaisedException();
        PyObject *empty = PyTuple_New(0);
        PyObject *r = empty ? semaphore_release(self, empty, NULL) : NULL;
        Py_XDECREF(r);
        Py_XDECREF(empty);
        PyErr_Clear();
        PyErr_SetRaisedException(exc);
        return NULL;
    }
    return PyBool_FromLong(rc);
}

static PyObject *
semaphore_release(PyObject *self, PyObject *args, PyObject *kwargs)
{
    long n = 1;
    static char *kwlist[] = {"n", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|l:release", kwlist, &n)) {
        return NULL;
    }
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be one or more");
        return NULL;
    }
    xi_basic *b = BASIC(self);
    xi_lock(&b->mu);
    long value = atomic_load(&b->count);
    if (b->bound >= 0 && n > b->bound - value) {
        xi_unlock(&b->mu);
        PyErr_SetString(PyExc_ValueError, "Semaphore released too many times");
        return NULL;
    }
    if (n > LONG_MAX - value) {
        xi_unlock(&b->mu);
        PyErr_SetString(PyExc_OverflowError, "Semaphore value too large");
        return NULL;
    }
    atomic_store(&b->count, value + n);
    if (b->sleepers > 0) {
        if (n == 1) {
            xi_signal(&b->cv);
        }
        else {
            xi_broadcast(&b->cv);
        }
    }
    xi_fds_notify(&b->async_waiters);
    xi_unlock(&b->mu);
    Py_RETURN_NONE;
}

static PyObject *
semaphore_exit(PyObject *self, PyObject *args)
{
    (void)args;
    PyObject *empty = PyTuple_New(0);
    PyObject *r = empty ? semaphore_release(self, empty, NULL) : NULL;
    Py_XDECREF(empty);
    return r;
}

/* ------------------------------------------------------------ Event */

typedef struct {
    xi_basic *b;
    uint64_t generation;
} xi_event_op;

/* Set, or set since the wait began (a set() then clear() still wakes the waiter, as
 * in threading). */
static int
event_was_set(void *arg)
{
    xi_event_op *op = arg;
    return atomic_load(&op->b->count) != 0 || op->b->generation != op->generation;
}

static PyObject *
event_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    if (!no_arguments("Event", args, kwargs)) {
        return NULL;
    }
    xi_basic *b = shared_new(sizeof(xi_basic), &event_ops);
    return b ? wrap_new(tp, &b->hdr) : NULL;
}

static PyObject *
event_set(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_basic *b = BASIC(self);
    xi_lock(&b->mu);
    atomic_store(&b->count, 1);
    b->generation++;
    if (b->sleepers > 0) {
        xi_broadcast(&b->cv);
    }
    xi_fds_notify(&b->async_waiters);
    xi_unlock(&b->mu);
    Py_RETURN_NONE;
}

static PyObject *
event_clear(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_basic *b = BASIC(self);
    xi_lock(&b->mu);
    atomic_store(&b->count, 0);
    xi_unlock(&b->mu);
    Py_RETURN_NONE;
}

static PyObject *
event_is_set(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(atomic_load(&BASIC(self)->count) != 0);
}

static PyObject *
event_wait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *timeout = Py_None;
    static char *kwlist[] = {"timeout", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", kwlist, &timeout)) {
        return NULL;
    }
    xi_basic *b = BASIC(self);
    if (atomic_load(&b->count) != 0) {
        Py_RETURN_TRUE;
    }
    int64_t deadline;
    if (optional_deadline(timeout, &deadline) < 0) {
        return NULL;
    }
    xi_lock(&b->mu);
    xi_event_op op = {b, b->generation};
    xi_unlock(&b->mu);
    int rc = block_on(b, event_was_set, &op, deadline);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

/* ------------------------------------------------------------ Condition */


/* Whether the caller may wait/notify: it holds the lock (owns it, for an RLock). */
static int
lock_held_by_caller(xi_shared *lock)
{
    xi_basic *b = (xi_basic *)lock;
    return is_rlock(lock) ? rlock_is_owned(b) : atomic_load(&b->count) != 0;
}

static PyObject *
condition_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    PyObject *lock = Py_None;
    static char *kwlist[] = {"lock", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:Condition", kwlist, &lock)) {
        return NULL;
    }
    xi_state *st = (xi_state *)PyType_GetModuleState(tp);
    xi_shared *lk;
    if (lock == Py_None) {
        xi_basic *b = shared_new(sizeof(xi_basic), &rlock_ops);
        if (b == NULL) {
            return NULL;
        }
        lk = &b->hdr;
    }
    else if (Py_TYPE(lock) == st->LockType || Py_TYPE(lock) == st->RLockType) {
        lk = OBJ(lock);
        xi_shared_incref(lk);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "Condition() takes an extrainterpreters Lock or RLock, not %.200s",
                     Py_TYPE(lock)->tp_name);
        return NULL;
    }
    xi_condition *c = shared_new(sizeof(xi_condition), &condition_ops);
    if (c == NULL) {
        xi_shared_decref(lk);
        return NULL;
    }
    c->lock = lk;
    return wrap_new(tp, &c->hdr);
}

static int
waiter_notified(void *arg)
{
    return ((xi_waiter *)arg)->notified;
}

/* Condition.wait: 1 notified, 0 timed out, -1 exception (the lock is held again in
 * every case). */
static int
condition_wait_raw(xi_condition *c, int64_t deadline)
{
    xi_shared *lk = c->lock;
    xi_basic *b = (xi_basic *)lk;
    if (!lock_held_by_caller(lk)) {
        PyErr_SetString(PyExc_RuntimeError, "cannot wait on un-acquired lock");
        return -1;
    }
    xi_waiter me = {0, NULL};
    xi_lock(&c->mu);
    if (c->tail != NULL) {
        c->tail->next = &me;
    }
    else {
        c->head = &me;
    }
    c->tail = &me;
    xi_unlock(&c->mu);

    long levels = 1;
    if (is_rlock(lk)) {
        levels = rlock_release_levels(b, 0);
    }
    else {
        (void)lock_release_raw(b); /* held: checked above */
    }

    int rc = xi_block(&c->mu, &c->cv, &c->sleepers, waiter_notified, NULL, &me, deadline);
    PyObject *exc = rc < 0 ? PyErr_GetRaisedException() : NULL;

    xi_lock(&c->mu);
    if (!me.notified) {
        /* timed out or interrupted: leave the queue */
        xi_waiter *prev = NULL;
        for (xi_waiter *w = c->head; w != NULL; prev = w, w = w->next) {
            if (w == &me) {
                if (prev != NULL) {
                    prev->next = me.next;
                }
                else {
                    c->head = me.next;
                }
                if (c->tail == &me) {
                    c->tail = prev;
                }
                break;
            }
        }
    }
    int notified = me.notified;
    xi_unlock(&c->mu);

    /* take the lock back, whatever happened (as threading does); a Ctrl-C while doing
     * so is kept for after */
    for (;;) {
        int got = is_rlock(lk) ? rlock_acquire_levels(b, levels, XI_FOREVER)
                               : lock_acquire_raw(b, XI_FOREVER);
        if (got > 0) {
            break;
        }
        if (exc == NULL) {
            exc = PyErr_GetRaisedException();
        }
        else {
            PyErr_Clear();
        }
    }
    if (exc != NULL) {
        PyErr_SetRaisedException(exc);
        return -1;
    }
    return notified ? 1 : (rc > 0 ? 1 : 0);
}

static PyObject *
condition_wait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *timeout = Py_None;
    static char *kwlist[] = {"timeout", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", kwlist, &timeout)) {
        return NULL;
    }
    int64_t deadline;
    if (optional_deadline(timeout, &deadline) < 0) {
        return NULL;
    }
    int rc = condition_wait_raw(COND(self), deadline);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *
condition_wait_for(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *predicate, *timeout = Py_None;
    static char *kwlist[] = {"predicate", "timeout", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:wait_for", kwlist, &predicate,
                                     &timeout)) {
        return NULL;
    }
    int64_t deadline;
    if (optional_deadline(timeout, &deadline) < 0) {
        return NULL;
    }
    /* threading's algorithm: the first wait happens even with no time left */
    int first = 1;
    PyObject *result = PyObject_CallNoArgs(predicate);
    while (result != NULL) {
        int truth = PyObject_IsTrue(result);
        if (truth != 0) {
            if (truth < 0) {
                Py_CLEAR(result);
            }
            break;
        }
        if (!first && deadline != XI_FOREVER && xi_now_ns() >= deadline) {
            break;
        }
        first = 0;
        Py_DECREF(result);
        if (condition_wait_raw(COND(self), deadline) < 0) {
            return NULL;
        }
        result = PyObject_CallNoArgs(predicate);
    }
    return result;
}

static PyObject *
condition_notify(PyObject *self, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t n = 1;
    static char *kwlist[] = {"n", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:notify", kwlist, &n)) {
        return NULL;
    }
    xi_condition *c = COND(self);
    if (!lock_held_by_caller(c->lock)) {
        PyErr_SetString(PyExc_RuntimeError, "cannot notify on un-acquired lock");
        return NULL;
    }
    xi_lock(&c->mu);
    int woke = 0;
    while (n-- > 0 && c->head != NULL) {
        xi_waiter *w = c->head;
        c->head = w->next;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        w->notified = 1;
        woke = 1;
    }
    if (woke) {
        xi_broadcast(&c->cv);
    }
    xi_unlock(&c->mu);
    Py_RETURN_NONE;
}

static PyObject *
condition_notify_all(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *args = Py_BuildValue("(n)", PY_SSIZE_T_MAX);
    PyObject *r = args ? condition_notify(self, args, NULL) : NULL;
    Py_XDECREF(args);
    return r;
}

/* ------------------------------------------------------------ Barrier */

static PyObject *
broken_barrier_error(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *cls = threading ? PyObject_GetAttrString(threading, "BrokenBarrierError") : NULL;
    Py_XDECREF(threading);
    if (cls != NULL) {
        PyErr_SetNone(cls);
        Py_DECREF(cls);
    }
    return NULL;
}

static PyObject *
barrier_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    long parties;
    PyObject *action = Py_None, *timeout = Py_None;
    static char *kwlist[] = {"parties", "action", "timeout", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "l|OO:Barrier", kwlist, &parties, &action,
                                     &timeout)) {
        return NULL;
    }
    if (parties < 1) {
        PyErr_SetString(PyExc_ValueError, "parties must be >= 1");
        return NULL;
    }
    double secs = -1;
    if (timeout != Py_None) {
        secs = PyFloat_AsDouble(timeout);
        if (secs == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        if (secs != secs || secs < 0) {
            PyErr_SetString(PyExc_ValueError, "timeout must be a non-negative number");
            return NULL;
        }
    }
    if (action != Py_None && !PyCallable_Check(action)) {
        PyErr_Format(PyExc_TypeError, "action must be callable, not %.200s",
                     Py_TYPE(action)->tp_name);
        return NULL;
    }
    xi_state *st = (xi_state *)PyType_GetModuleState(tp);
    xi_packet pkt = XI_PACKET_INIT;
    if (action != Py_None &&
        (xi_encode_value(st, action, &pkt) < 0 || xi_packet_own(&pkt) < 0)) {
        xi_packet_release(&pkt);
        return NULL;
    }
    xi_barrier *b = shared_new(sizeof(xi_barrier), &barrier_ops);
    if (b == NULL) {
        xi_packet_release(&pkt);
        return NULL;
    }
    b->parties = parties;
    b->timeout_ns = secs < 0 ? -1 : (secs > 1e9 ? -1 : (int64_t)(secs * 1e9));
    b->action = pkt;
    b->has_action = action != Py_None;
    return wrap_new(tp, &b->hdr);
}

static int
barrier_not_busy(void *arg)
{
    xi_barrier *b = arg;
    return b->state != XI_B_DRAINING && b->state != XI_B_RESETTING &&
           b->state != XI_B_ACTION;
}

static int
barrier_not_filling(void *arg)
{
    return ((xi_barrier *)arg)->state != XI_B_FILLING;
}

static int
barrier_idle(void *arg)
{
    return ((xi_barrier *)arg)->state != XI_B_ACTION;
}

/* After the last waiter leaves a draining or resetting barrier, it fills again. */
static void
barrier_exit_locked(xi_barrier *b)
{
    b->count--;
    if (b->count == 0 && (b->state == XI_B_RESETTING || b->state == XI_B_DRAINING)) {
        b->state = XI_B_FILLING;
        xi_broadcast(&b->cv);
    }
}

static void
barrier_break_locked(xi_barrier *b)
{
    b->state = XI_B_BROKEN;
    xi_broadcast(&b->cv);
}

static PyObject *
barrier_wait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *timeout = Py_None;
    static char *kwlist[] = {"timeout", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", kwlist, &timeout)) {
        return NULL;
    }
    xi_barrier *b = BARRIER(self);
    int64_t deadline;
    if (timeout == Py_None) {
        deadline = b->timeout_ns < 0 ? XI_FOREVER : xi_now_ns() + b->timeout_ns;
    }
    else if (optional_deadline(timeout, &deadline) < 0) {
        return NULL;
    }
    /* enter: wait while the barrier drains or resets (it may be busy again between
     * the wait and the lock: then wait again) */
    for (;;) {
        if (xi_block(&b->mu, &b->cv, &b->sleepers, barrier_not_busy, NULL, b,
                     XI_FOREVER) < 0) {
            return NULL;
        }
        xi_lock(&b->mu);
        if (barrier_not_busy(b)) {
            break;
        }
        xi_unlock(&b->mu);
    }
    if (b->state == XI_B_BROKEN) {
        xi_unlock(&b->mu);
        return broken_barrier_error();
    }
    long index = b->count++;
    if (index + 1 == b->parties) {
        /* the last one: run the action here, outside the lock, then release all */
        int has_action = b->has_action;
        b->state = XI_B_ACTION;
        xi_unlock(&b->mu);
        int ok = 1;
        if (has_action) {
            xi_state *st = sync_state(self);
            PyObject *action = xi_decode(st, &b->action);
            PyObject *r = action ? PyObject_CallNoArgs(action) : NULL;
            Py_XDECREF(action);
            ok = r != NULL;
            Py_XDECREF(r);
        }
        xi_lock(&b->mu);
        /* abort() (or a waiter timing out) during the action wins */
        ok = ok && b->state == XI_B_ACTION;
        if (ok) {
            b->state = XI_B_DRAINING;
            xi_broadcast(&b->cv);
        }
        else {
            int action_failed = PyErr_Occurred() != NULL;
            barrier_break_locked(b);
            if (!action_failed) {
                barrier_exit_locked(b);
                xi_unlock(&b->mu);
                return broken_barrier_error();
            }
        }
        barrier_exit_locked(b);
        xi_unlock(&b->mu);
        return ok ? PyLong_FromLong(index) : NULL;
    }
    xi_unlock(&b->mu);
    int rc = xi_block(&b->mu, &b->cv, &b->sleepers, barrier_not_filling, NULL, b, deadline);
    PyObject *exc = rc < 0 ? PyErr_GetRaisedException() : NULL;
    xi_lock(&b->mu);
    if (rc == 0 && b->state == XI_B_ACTION) {
        /* timed out as the last party runs the action: its outcome decides */
        xi_unlock(&b->mu);
        if (xi_block(&b->mu, &b->cv, &b->sleepers, barrier_idle, NULL, b, XI_FOREVER) < 0 &&
            exc == NULL) {
            exc = PyErr_GetRaisedException();
        }
        xi_lock(&b->mu);
    }
    else if (rc == 0 && b->state == XI_B_FILLING) {
        /* timed out while filling: the barrier breaks, as in threading */
        barrier_break_locked(b);
    }
    /* an exception (Ctrl-C) leaves the barrier as it is, as in threading */
    int broken = b->state == XI_B_BROKEN || b->state == XI_B_RESETTING;
    barrier_exit_locked(b);
    xi_unlock(&b->mu);
    if (exc != NULL) {
        PyErr_SetRaisedException(exc);
        return NULL;
    }
    if (broken) {
        return broken_barrier_error();
    }
    return PyLong_FromLong(index);
}

/* Locks the barrier once no action runs (threading runs the action under its lock, so
 * reset() and abort() wait for it). 0, or -1 with an exception set. */
static int
lock_idle_barrier(xi_barrier *b)
{
    for (;;) {
        if (xi_block(&b->mu, &b->cv, &b->sleepers, barrier_idle, NULL, b, XI_FOREVER) < 0) {
            return -1;
        }
        xi_lock(&b->mu);
        if (barrier_idle(b)) {
            return 0;
        }
        xi_unlock(&b->mu);
    }
}

static PyObject *
barrier_reset(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_barrier *b = BARRIER(self);
    if (lock_idle_barrier(b) < 0) {
        return NULL;
    }
    if (b->count > 0) {
        if (b->state == XI_B_FILLING || b->state == XI_B_BROKEN) {
            b->state = XI_B_RESETTING;
        }
    }
    else {
        b->state = XI_B_FILLING;
    }
    xi_broadcast(&b->cv);
    xi_unlock(&b->mu);
    Py_RETURN_NONE;
}

static PyObject *
barrier_abort(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_barrier *b = BARRIER(self);
    if (lock_idle_barrier(b) < 0) {
        return NULL;
    }
    barrier_break_locked(b);
    xi_unlock(&b->mu);
    Py_RETURN_NONE;
}

static PyObject *
barrier_get_parties(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(BARRIER(self)->parties);
}

static PyObject *
barrier_get_n_waiting(PyObject *self, void *Py_UNUSED(closure))
{
    xi_barrier *b = BARRIER(self);
    xi_lock(&b->mu);
    long n = b->state == XI_B_FILLING ? b->count : 0;
    xi_unlock(&b->mu);
    return PyLong_FromLong(n);
}

static PyObject *
barrier_get_broken(PyObject *self, void *Py_UNUSED(closure))
{
    xi_barrier *b = BARRIER(self);
    xi_lock(&b->mu);
    int broken = b->state == XI_B_BROKEN;
    xi_unlock(&b->mu);
    return PyBool_FromLong(broken);
}

/* ------------------------------------------------------------ asyncio */

static PyObject *
basic_add_waiter(PyObject *self, PyObject *fd)
{
    return xi_fds_update(&BASIC(self)->async_waiters, &BASIC(self)->mu, fd, 1);
}

static PyObject *
basic_remove_waiter(PyObject *self, PyObject *fd)
{
    return xi_fds_update(&BASIC(self)->async_waiters, &BASIC(self)->mu, fd, 0);
}

static PyObject *
lock_acquire_async(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return xi_async_call("lock_acquire", self, args, kwargs);
}

static PyObject *
event_wait_async(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return xi_async_call("event_wait", self, args, kwargs);
}

#define ASYNC_WAITER_METHODS                                                            \
    {"_add_waiter", basic_add_waiter, METH_O, "_add_waiter($self, fd, /)\n--\n\n"},                                    \
    {"_remove_waiter", basic_remove_waiter, METH_O, "_remove_waiter($self, fd, /)\n--\n\n"}

/* ------------------------------------------------------------ types */

#define COMMON_METHODS {"__reduce__", sync_reduce, METH_NOARGS, "__reduce__($self, /)\n--\n\n"}
#define KW (METH_VARARGS | METH_KEYWORDS)
#define F(fn) ((PyCFunction)(void (*)(void))(fn))

static PyGetSetDef common_getset[] = {
    {"id", sync_get_id, NULL, "process-wide id of the primitive", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef common_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(xi_sync_obj, weakreflist), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef lock_methods[] = {
    {"acquire_async", F(lock_acquire_async), KW, "acquire_async($self, /, timeout=None)\n--\n\nawaitable acquire() -> bool; False on timeout"},
    ASYNC_WAITER_METHODS,
    {"acquire", F(mutex_acquire), KW, "acquire($self, /, blocking=True, timeout=-1)\n--\n\n-> bool"},
    {"release", mutex_release, METH_NOARGS, "release($self, /)\n--\n\nrelease the lock (any thread may)"},
    {"locked", lock_locked, METH_NOARGS, "locked($self, /)\n--\n\nwhether the lock is held"},
    {"__enter__", mutex_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n"},
    {"__exit__", mutex_exit, METH_VARARGS, "__exit__($self, /, *exc_info)\n--\n\n"},
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMethodDef rlock_methods[] = {
    {"acquire_async", F(lock_acquire_async), KW, "acquire_async($self, /, timeout=None)\n--\n\nawaitable acquire() -> bool; False on timeout"},
    ASYNC_WAITER_METHODS,
    {"acquire", F(mutex_acquire), KW, "acquire($self, /, blocking=True, timeout=-1)\n--\n\n-> bool"},
    {"release", mutex_release, METH_NOARGS, "release($self, /)\n--\n\nrelease one level (the owner only)"},
    {"locked", lock_locked, METH_NOARGS, "locked($self, /)\n--\n\nwhether the lock is held"},
    {"_is_owned", rlock_is_owned_meth, METH_NOARGS,
     "_is_owned($self, /)\n--\n\nwhether this (interpreter, thread) owns it"},
    {"__enter__", mutex_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n"},
    {"__exit__", mutex_exit, METH_VARARGS, "__exit__($self, /, *exc_info)\n--\n\n"},
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMethodDef semaphore_methods[] = {
    {"acquire_async", F(lock_acquire_async), KW, "acquire_async($self, /, timeout=None)\n--\n\nawaitable acquire() -> bool; False on timeout"},
    ASYNC_WAITER_METHODS,
    {"acquire", F(semaphore_acquire), KW, "acquire($self, /, blocking=True, timeout=None)\n--\n\n-> bool"},
    {"release", F(semaphore_release), KW, "release($self, /, n=1)\n--\n\nrelease n times"},
    {"__enter__", semaphore_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n"},
    {"__exit__", semaphore_exit, METH_VARARGS, "__exit__($self, /, *exc_info)\n--\n\n"},
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMethodDef event_methods[] = {
    {"wait_async", F(event_wait_async), KW, "wait_async($self, /, timeout=None)\n--\n\nawaitable wait() -> bool"},
    ASYNC_WAITER_METHODS,
    {"set", event_set, METH_NOARGS, "set($self, /)\n--\n\nset the flag and wake every waiter"},
    {"clear", event_clear, METH_NOARGS, "clear($self, /)\n--\n\nclear the flag"},
    {"is_set", event_is_set, METH_NOARGS, "is_set($self, /)\n--\n\nwhether the flag is set"},
    {"wait", F(event_wait), KW, "wait($self, /, timeout=None)\n--\n\n-> bool"},
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMethodDef condition_methods[] = {
    {"acquire", F(mutex_acquire), KW, "acquire($self, /, blocking=True, timeout=-1)\n--\n\nacquire the underlying lock"},
    {"release", mutex_release, METH_NOARGS, "release($self, /)\n--\n\nrelease the underlying lock"},
    {"wait", F(condition_wait), KW, "wait($self, /, timeout=None)\n--\n\n-> bool"},
    {"wait_for", F(condition_wait_for), KW, "wait_for($self, /, predicate, timeout=None)\n--\n\nwait until predicate() is true; returns its last value"},
    {"notify", F(condition_notify), KW, "notify($self, /, n=1)\n--\n\nwake up to n waiters"},
    {"notify_all", condition_notify_all, METH_NOARGS, "notify_all($self, /)\n--\n\nwake every waiter"},
    {"__enter__", mutex_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n"},
    {"__exit__", mutex_exit, METH_VARARGS, "__exit__($self, /, *exc_info)\n--\n\n"},
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMethodDef barrier_methods[] = {
    {"wait", F(barrier_wait), KW, "wait($self, /, timeout=None)\n--\n\n-> index"},
    {"reset", barrier_reset, METH_NOARGS, "reset($self, /)\n--\n\nback to the empty state; waiters get "
                                          "BrokenBarrierError"},
    {"abort", barrier_abort, METH_NOARGS, "abort($self, /)\n--\n\nbreak the barrier"},
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef barrier_getset[] = {
    {"id", sync_get_id, NULL, "process-wide id of the primitive", NULL},
    {"parties", barrier_get_parties, NULL, "parties needed to pass", NULL},
    {"n_waiting", barrier_get_n_waiting, NULL, "parties waiting now", NULL},
    {"broken", barrier_get_broken, NULL, "whether the barrier is broken", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define TYPE_SLOTS(new_fn, methods, getset, doc)                                         \
    {                                                                                   \
        {Py_tp_new, new_fn}, {Py_tp_dealloc, sync_dealloc},                             \
        {Py_tp_traverse, sync_traverse}, {Py_tp_methods, methods},                      \
        {Py_tp_getset, getset}, {Py_tp_members, common_members},                        \
        {Py_tp_repr, sync_repr}, {Py_tp_richcompare, sync_richcompare},                 \
        {Py_tp_hash, sync_hash}, {Py_tp_doc, doc}, {0, NULL},                           \
    }

static PyType_Slot lock_slots[] = TYPE_SLOTS(
    lock_new, lock_methods, common_getset,
    "Lock()\n--\n\nthreading.Lock, shared by every interpreter it is passed to.");
static PyType_Slot rlock_slots[] = TYPE_SLOTS(
    rlock_new, rlock_methods, common_getset,
    "RLock()\n--\n\nthreading.RLock across interpreters; the owner is an (interpreter, "
    "thread) pair.");
static PyType_Slot semaphore_slots[] = TYPE_SLOTS(
    semaphore_new, semaphore_methods, common_getset,
    "Semaphore(value=1)\n--\n\nthreading.Semaphore across interpreters.");
static PyType_Slot bounded_semaphore_slots[] = TYPE_SLOTS(
    bounded_semaphore_new, semaphore_methods, common_getset,
    "BoundedSemaphore(value=1)\n--\n\nthreading.BoundedSemaphore across interpreters.");
static PyType_Slot event_slots[] = TYPE_SLOTS(
    event_new, event_methods, common_getset,
    "Event()\n--\n\nthreading.Event across interpreters.");
static PyType_Slot condition_slots[] = TYPE_SLOTS(
    condition_new, condition_methods, common_getset,
    "Condition(lock=None)\n--\n\nthreading.Condition across interpreters; lock is an "
    "extrainterpreters Lock or RLock (a new RLock by default).");
static PyType_Slot barrier_slots[] = TYPE_SLOTS(
    barrier_new, barrier_methods, barrier_getset,
    "Barrier(parties, action=None, timeout=None)\n--\n\nthreading.Barrier across "
    "interpreters; the action runs in the interpreter of the thread that completes "
    "the barrier.");

#define SPEC(varname, tpname, slot_array)                                                \
    PyType_Spec varname = {                                                             \
        .name = "extrainterpreters." tpname,                                            \
        .basicsize = sizeof(xi_sync_obj),                                               \
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,    \
        .slots = slot_array,                                                            \
    }

SPEC(xi_lock_spec, "Lock", lock_slots);
SPEC(xi_rlock_spec, "RLock", rlock_slots);
SPEC(xi_semaphore_spec, "Semaphore", semaphore_slots);
SPEC(xi_bounded_semaphore_spec, "BoundedSemaphore", bounded_semaphore_slots);
SPEC(xi_event_spec, "Event", event_slots);
SPEC(xi_condition_spec, "Condition", condition_slots);
SPEC(xi_barrier_spec, "Barrier", barrier_slots);
