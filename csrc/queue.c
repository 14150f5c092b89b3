/* Queue (see queue.h). Items are serialized when put, into owned packets or, when
 * large and immutable, lent ones (loan.h); either way an item outlives the interpreter
 * that put it. Shared objects inside items stay shared (the packet holds references to
 * them). Waits happen in C with the thread state detached. */
#include "queue.h"
#include "callctx.h"

#include "wait.h"
#include "loan.h"
#include "wire.h"

#include <stddef.h>

typedef struct xi_item {
    xi_packet pkt;
    struct xi_item *next;
    int memory_errors;           /* rebuilds that raised MemoryError (see do_get) */
} xi_item;

/* A rebuild that runs out of memory puts the item back at the head, since memory may
 * come back; the item whose rebuild raises MemoryError this many times is dropped as
 * unbuildable, or it would keep every item behind it from every getter. */
#define XI_ITEM_MEMORY_TRIES 3

typedef struct {
    xi_shared hdr;
    xi_mutex mu;
    xi_cond not_empty, not_full, all_done;
    int getters, putters, joiners;   /* threads asleep on each condition */
    xi_item *head, *tail;
    Py_ssize_t count;
    _Atomic Py_ssize_t ready;        /* count, readable without the lock (for spinning) */
    Py_ssize_t maxsize;              /* <= 0: unbounded */
    Py_ssize_t unfinished;           /* put minus task_done */
    int shutdown;                    /* 1: shut down; 2: immediately (items dropped) */
    xi_fds async_getters, async_putters;  /* asyncio waiters (wait.h) */
} xi_queue;

typedef struct {
    PyObject_HEAD
    xi_queue *q;
    PyObject *weakreflist;
} xi_queue_obj;

static void
item_free(xi_item *it)
{
    xi_packet_release(&it->pkt); /* owned or lent: safe in any interpreter */
    PyMem_RawFree(it);
}

static void
queue_free(xi_shared *obj)
{
    xi_queue *q = (xi_queue *)obj;
    while (q->head != NULL) {
        xi_item *it = q->head;
        q->head = it->next;
        item_free(it);
    }
    xi_fds_fini(&q->async_getters);
    xi_fds_fini(&q->async_putters);
    xi_cond_fini(&q->not_empty);
    xi_cond_fini(&q->not_full);
    xi_cond_fini(&q->all_done);
    xi_mutex_fini(&q->mu);
    PyMem_RawFree(q);
}

static void
queue_wake(xi_shared *obj)
{
    xi_queue *q = (xi_queue *)obj;
    xi_lock(&q->mu);
    xi_broadcast(&q->not_empty);
    xi_broadcast(&q->not_full);
    xi_broadcast(&q->all_done);
    xi_unlock(&q->mu);
}

static const xi_shared_ops queue_ops = {XI_KIND_QUEUE, "Queue", queue_free, queue_wake};

/* ------------------------------------------------------------ exceptions */

/* Guards the publication of each interpreter's three classes (their pointers in the
 * module state), so that threads that hit their first queue error at once all raise
 * the same classes: each may make a set, the first to publish wins, the others drop
 * theirs before anyone saw them. Nothing that can release the GIL runs under it. */
static xi_mutex xi_errors_mu = PTHREAD_MUTEX_INITIALIZER;

void
xi_queue_atfork(int phase)
{
    if (phase == 0) {
        xi_lock(&xi_errors_mu);
    }
    else if (phase == 1) {
        xi_unlock(&xi_errors_mu);
    }
    else {
        xi_mutex_init(&xi_errors_mu);
    }
}

/* The published classes as a new tuple, or NULL (no exception set) if not made yet. */
static PyObject *
published_errors(xi_state *st)
{
    xi_lock(&xi_errors_mu);
    PyObject *empty = st->QueueEmpty, *full = st->QueueFull, *shut = st->QueueShutDown;
    xi_unlock(&xi_errors_mu);
    /* once published, they stay until the module state is cleared */
    return shut != NULL ? PyTuple_Pack(3, empty, full, shut) : NULL;
}

/* module.c defines them: they derive from the queue module's (and from the standard
 * library's QueueEmpty/QueueFull from Python 3.14 on) */
static PyObject *
make_errors(xi_state *st)
{
    PyObject *errors = PyObject_CallNoArgs(st->make_queue_errors);
    if (errors != NULL && (!PyTuple_Check(errors) || PyTuple_GET_SIZE(errors) != 3)) {
        Py_DECREF(errors);
        PyErr_SetString(PyExc_SystemError, "malformed queue errors");
        return NULL;
    }
    return errors;
}

PyObject *
xi_queue_errors(xi_state *st)
{
    PyObject *errors = published_errors(st);
    if (errors != NULL || PyErr_Occurred()) {
        return errors;
    }
    /* Importing queue and making classes can switch threads: another thread may
     * publish its set meanwhile. */
    PyObject *made = make_errors(st);
    if (made == NULL) {
        return NULL;
    }
    xi_lock(&xi_errors_mu);
    int won = st->QueueShutDown == NULL;
    if (won) {
        st->QueueEmpty = Py_NewRef(PyTuple_GET_ITEM(made, 0));
        st->QueueFull = Py_NewRef(PyTuple_GET_ITEM(made, 1));
        st->QueueShutDown = Py_NewRef(PyTuple_GET_ITEM(made, 2));
    }
    xi_unlock(&xi_errors_mu);
    if (won) {
        return made;
    }
    Py_DECREF(made);
    return published_errors(st);
}

/* 0: QueueEmpty, 1: QueueFull, 2: QueueShutDown */
static PyObject *
raise_queue_error(xi_state *st, int which, const char *msg)
{
    PyObject *errors = xi_queue_errors(st);
    if (errors != NULL) {
        PyErr_SetString(PyTuple_GET_ITEM(errors, which), msg);
        Py_DECREF(errors);
    }
    return NULL;
}

/* ------------------------------------------------------------ wrappers */

static inline xi_state *
queue_state(PyObject *self)
{
    return (xi_state *)PyType_GetModuleState(Py_TYPE(self));
}

static inline xi_queue *
Q(PyObject *self)
{
    return ((xi_queue_obj *)self)->q;
}

static PyObject *
wrap(PyTypeObject *tp, xi_queue *q)
{
    xi_queue_obj *self = (xi_queue_obj *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->q = q; /* the reference passes to the wrapper */
    return (PyObject *)self;
}

/* One wrapper per queue in each interpreter (as concurrent.interpreters: Queue(id) is
 * the same object), found through st->queue_wrappers. New reference or NULL (no error). */
static PyObject *
cached_wrapper(xi_state *st, uint64_t id)
{
    PyObject *key = st->queue_wrappers ? PyLong_FromUnsignedLongLong(id) : NULL;
    PyObject *ref = key ? PyDict_GetItemWithError(st->queue_wrappers, key) : NULL;
    PyObject *w = NULL;
    Py_XDECREF(key);
    if (ref != NULL) {
#if PY_VERSION_HEX >= 0x030D0000
        if (PyWeakref_GetRef(ref, &w) < 0) {
            w = NULL;
        }
#else
        w = PyWeakref_GetObject(ref);
        w = (w == NULL || w == Py_None) ? NULL : Py_NewRef(w);
#endif
    }
    PyErr_Clear();
    return w;
}

static void
remember_wrapper(xi_state *st, uint64_t id, PyObject *w)
{
    if (st->queue_wrappers == NULL) {
        st->queue_wrappers = PyDict_New();
    }
    PyObject *key = st->queue_wrappers ? PyLong_FromUnsignedLongLong(id) : NULL;
    PyObject *ref = key ? PyWeakref_NewRef(w, NULL) : NULL;
    if (ref != NULL) {
        (void)PyDict_SetItem(st->queue_wrappers, key, ref);
    }
    Py_XDECREF(key);
    Py_XDECREF(ref);
    PyErr_Clear(); /* without the cache, Queue(id) only makes another wrapper */
}

PyObject *
xi_queue_wrap(xi_state *st, xi_shared *obj)
{
    PyObject *w = cached_wrapper(st, obj->id);
    if (w != NULL) {
        return w;
    }
    xi_shared_incref(obj);
    w = wrap(st->QueueType, (xi_queue *)obj);
    if (w == NULL) {
        xi_shared_decref(obj);
        return NULL;
    }
    remember_wrapper(st, obj->id, w);
    return w;
}

static PyObject *
queue_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t maxsize = 0;
    static char *kwlist[] = {"maxsize", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:Queue", kwlist, &maxsize)) {
        return NULL;
    }
    if (maxsize > 0 && (uint64_t)maxsize >= XI_SHARED_ID_MIN) {
        /* Queue(id): an existing queue, never a new one */
        xi_state *st = (xi_state *)PyType_GetModuleState(tp);
        xi_shared *obj = xi_shared_lookup(XI_KIND_QUEUE, (uint64_t)maxsize);
        if (obj == NULL) {
            return PyErr_Format(st->QueueNotFoundError, "queue %zd not found", maxsize);
        }
        PyObject *w = xi_queue_wrap(st, obj);
        xi_shared_decref(obj);
        return w;
    }
    xi_queue *q = PyMem_RawCalloc(1, sizeof(xi_queue));
    if (q == NULL) {
        return PyErr_NoMemory();
    }
    xi_mutex_init(&q->mu);
    xi_cond_init(&q->not_empty);
    xi_cond_init(&q->not_full);
    xi_cond_init(&q->all_done);
    q->maxsize = maxsize;
    atomic_init(&q->ready, 0);
    xi_shared_register(&q->hdr, &queue_ops);
    PyObject *self = wrap(tp, q);
    if (self == NULL) {
        xi_shared_decref(&q->hdr);
    }
    else {
        remember_wrapper((xi_state *)PyType_GetModuleState(tp), q->hdr.id, self);
    }
    return self;
}

static void
queue_dealloc(PyObject *op)
{
    xi_queue_obj *self = (xi_queue_obj *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    if (self->q != NULL) {
        xi_state *st = (xi_state *)PyType_GetModuleState(tp);
        if (st != NULL && st->queue_wrappers != NULL) {
            PyObject *exc = PyErr_GetRaisedException();
            /* The entry may already be another wrapper's: a collection clears the
             * weak references of all its garbage before freeing any, and code run
             * meanwhile (a finalizer) may have made a new wrapper for this queue. */
            PyObject *live = cached_wrapper(st, self->q->hdr.id);
            if (live == NULL) {
                PyObject *key = PyLong_FromUnsignedLongLong(self->q->hdr.id);
                if (key != NULL && PyDict_DelItem(st->queue_wrappers, key) < 0) {
                    PyErr_Clear();
                }
                Py_XDECREF(key);
            }
            Py_XDECREF(live);
            PyErr_SetRaisedException(exc);
        }
        xi_shared_decref(&self->q->hdr);
        self->q = NULL;
    }
    tp->tp_free(op);
    Py_DECREF(tp);
}

static int
queue_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    return 0;
}

/* ------------------------------------------------------------ put / get */

enum { XI_Q_OK = 0, XI_Q_SHUTDOWN = 1 };

typedef struct {
    xi_queue *q;
    xi_item *item;
    int status;
} xi_qop;

static int
try_put(void *arg)
{
    xi_qop *op = arg;
    xi_queue *q = op->q;
    if (q->shutdown) {
        op->status = XI_Q_SHUTDOWN;
        return 1;
    }
    if (q->maxsize > 0 && q->count >= q->maxsize) {
        return 0;
    }
    op->item->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = op->item;
    }
    else {
        q->head = op->item;
    }
    q->tail = op->item;
    q->count++;
    q->unfinished++;
    atomic_store_explicit(&q->ready, q->count, memory_order_release);
    if (q->getters > 0) {
        xi_signal(&q->not_empty);
    }
    xi_fds_notify(&q->async_getters);
    op->item = NULL;
    op->status = XI_Q_OK;
    return 1;
}

static int
try_get(void *arg)
{
    xi_qop *op = arg;
    xi_queue *q = op->q;
    if (q->count > 0) {
        xi_item *it = q->head;
        q->head = it->next;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        q->count--;
        atomic_store_explicit(&q->ready, q->count, memory_order_release);
        if (q->putters > 0) {
            xi_signal(&q->not_full);
        }
        xi_fds_notify(&q->async_putters);
        op->item = it;
        op->status = XI_Q_OK;
        return 1;
    }
    if (q->shutdown) {
        op->status = XI_Q_SHUTDOWN;
        return 1;
    }
    return 0;
}

static int
can_get(void *arg)
{
    xi_qop *op = arg;
    return atomic_load_explicit(&op->q->ready, memory_order_acquire) > 0;
}

/* One attempt with the GIL held (no one holding q->mu ever waits for a GIL), then a
 * blocking wait if needed. 1: done, 0: timed out / would block, -1: exception. */
static int
run_op(xi_queue *q, int (*attempt)(void *), int (*ready)(void *), xi_cond *cv,
       int *sleepers, xi_qop *op, int64_t deadline)
{
    xi_lock(&q->mu);
    int done = attempt(op);
    xi_unlock(&q->mu);
    if (done) {
        return 1;
    }
    if (deadline != XI_FOREVER && deadline <= xi_now_ns()) {
        return 0;
    }
    return xi_block(&q->mu, cv, sleepers, attempt, ready, op, deadline);
}

static int
parse_block_timeout(PyObject *block_obj, PyObject *timeout, int64_t *deadline)
{
    int block = block_obj ? PyObject_IsTrue(block_obj) : 1;
    if (block < 0) {
        return -1;
    }
    return xi_deadline(block, timeout, deadline);
}

static PyObject *
do_put(PyObject *self, PyObject *obj, PyObject *block, PyObject *timeout)
{
    xi_state *st = queue_state(self);
    xi_queue *q = Q(self);
    int64_t deadline;
    if (parse_block_timeout(block, timeout, &deadline) < 0) {
        return NULL;
    }
    /* malloc, not calloc: glibc serves it from its per-thread cache */
    xi_item *item = PyMem_RawMalloc(sizeof(xi_item));
    if (item == NULL) {
        return PyErr_NoMemory();
    }
    *item = (xi_item){0};
    if (xi_encode_value(st, obj, &item->pkt) < 0) {
        PyMem_RawFree(item);
        return NULL;
    }
    xi_lender_collect(st);
    if (!xi_lend(st, &item->pkt) && xi_packet_own(&item->pkt) < 0) {
        item_free(item);
        return NULL;
    }
    xi_qop op = {q, item, XI_Q_OK};
    int rc = run_op(q, try_put, NULL, &q->not_full, &q->putters, &op, deadline);
    if (op.item != NULL) {
        item_free(op.item); /* not enqueued */
        xi_lender_collect(st);
    }
    if (rc < 0) {
        return NULL;
    }
    if (rc == 0) {
        return raise_queue_error(st, 1, "the Queue is full");
    }
    if (op.status == XI_Q_SHUTDOWN) {
        return raise_queue_error(st, 2, "the Queue is shut down");
    }
    Py_RETURN_NONE;
}

/* Puts an item back at the head of the queue: its rebuild was cut short by an error
 * of the interpreter itself, not of the item. */
static void
put_back(xi_queue *q, xi_item *it)
{
    xi_lock(&q->mu);
    if (q->shutdown == 2) {
        /* dropped, as the items were by shutdown(immediate=True) */
        if (q->unfinished > 0 && --q->unfinished == 0) {
            xi_broadcast(&q->all_done);
        }
        xi_unlock(&q->mu);
        item_free(it);
        return;
    }
    /* (it may make a bounded queue one item over its maxsize for a moment) */
    it->next = q->head;
    q->head = it;
    if (q->tail == NULL) {
        q->tail = it;
    }
    q->count++;
    atomic_store_explicit(&q->ready, q->count, memory_order_release);
    if (q->getters > 0) {
        xi_signal(&q->not_empty);
    }
    xi_fds_notify(&q->async_getters);
    xi_unlock(&q->mu);
}

/* Whether the error being raised stopped the rebuild of `it` from outside: Ctrl-C,
 * interrupt(), exit, or memory running out (the first XI_ITEM_MEMORY_TRIES - 1 times).
 * Any other error is the item's. */
static int
interrupted_rebuild(xi_item *it)
{
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
        return ++it->memory_errors < XI_ITEM_MEMORY_TRIES;
    }
    return !PyErr_ExceptionMatches(PyExc_Exception);
}

/* An item that get() took but could not rebuild here: its error goes to that getter
 * alone, and the queue goes on without it. It counts as done for join(): no one can
 * process it, and a getter that got an error has no item to call task_done() for. */
static void
drop_unbuildable(xi_queue *q, xi_item *it)
{
    xi_lock(&q->mu);
    if (q->unfinished > 0 && --q->unfinished == 0) {
        xi_broadcast(&q->all_done);
    }
    xi_unlock(&q->mu);
    item_free(it);
    /* tell the user why the item is gone (best effort: the error stays as it is) */
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *r = PyObject_CallMethod(
        exc, "add_note", "s",
        "extrainterpreters: this Queue item cannot be rebuilt in this interpreter; "
        "get() removed it from the Queue");
    if (r == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(r);
    /* a module this interpreter cannot import: the process learns that its functions
     * and classes cross by value from now on (_errors.learn_from_failed_rebuild). The
     * library's part of the call: masked, so an interrupt is not swallowed with that
     * code's errors (it waits, and is raised in the call's code) */
    xi_callctx_mask();
    PyObject *errors = PyImport_ImportModule("extrainterpreters._errors");
    r = errors ? PyObject_CallMethod(errors, "learn_from_failed_rebuild", "O", exc) : NULL;
    if (r == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(r);
    Py_XDECREF(errors);
    PyErr_SetRaisedException(exc);
    xi_callctx_unmask();
}

static PyObject *
do_get(PyObject *self, PyObject *block, PyObject *timeout)
{
    xi_state *st = queue_state(self);
    xi_queue *q = Q(self);
    int64_t deadline;
    if (parse_block_timeout(block, timeout, &deadline) < 0) {
        return NULL;
    }
    xi_lender_collect(st);
    xi_qop op = {q, NULL, XI_Q_OK};
    int rc = run_op(q, try_get, can_get, &q->not_empty, &q->getters, &op, deadline);
    if (rc < 0) {
        return NULL;
    }
    if (rc == 0) {
        return raise_queue_error(st, 0, "the Queue is empty");
    }
    if (op.status == XI_Q_SHUTDOWN) {
        return raise_queue_error(st, 2, "the Queue is shut down");
    }
    xi_loan_pin(&op.item->pkt);
    PyObject *value = xi_decode(st, &op.item->pkt);
    int lost = op.item->pkt.kind == XI_PKT_LOST; /* read while it cannot change */
    xi_loan_unpin(&op.item->pkt);
    if (value == NULL) {
        if (!lost && interrupted_rebuild(op.item)) {
            /* not the item's fault: it goes back to the head, nothing is lost */
            put_back(q, op.item);
        }
        else {
            drop_unbuildable(q, op.item);
        }
        return NULL;
    }
    item_free(op.item);
    xi_lender_collect(st);
    return value;
}

/* unbounditems, as concurrent.interpreters takes it (None, UNBOUND, UNBOUND_ERROR or
 * UNBOUND_REMOVE): checked, and nothing else. An item is a copy owned by the queue,
 * independent of the interpreter that put it, so it never becomes unbound when that
 * interpreter is destroyed. 0, or -1 with NotImplementedError (as the standard
 * library) for any other value. */
static int
check_unbounditems(PyObject *unbounditems)
{
    if (unbounditems == NULL || unbounditems == Py_None) {
        return 0;
    }
    PyObject *pkg = PyImport_ImportModule("extrainterpreters");
    PyObject *ok = pkg ? PyObject_CallMethod(pkg, "_is_unbound_op", "O", unbounditems) : NULL;
    Py_XDECREF(pkg);
    if (ok == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(ok);
    Py_DECREF(ok);
    if (truth < 0) {
        return -1;
    }
    if (!truth) {
        PyErr_Format(PyExc_NotImplementedError, "unsupported unbound replacement op %R",
                     unbounditems);
        return -1;
    }
    return 0;
}

static PyObject *
queue_put(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *obj, *block = NULL, *timeout = Py_None, *unbounditems = NULL;
    static char *kwlist[] = {"item", "block", "timeout", "unbounditems", NULL};
    if (kwargs == NULL) { /* the common case, without the keyword parser's cost */
        if (!PyArg_UnpackTuple(args, "put", 1, 3, &obj, &block, &timeout)) {
            return NULL;
        }
        return do_put(self, obj, block, timeout);
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO$O:put", kwlist, &obj, &block,
                                     &timeout, &unbounditems)) {
        return NULL;
    }
    if (check_unbounditems(unbounditems) < 0) {
        return NULL;
    }
    return do_put(self, obj, block, timeout);
}

static PyObject *
queue_put_nowait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *obj, *unbounditems = NULL;
    static char *kwlist[] = {"item", "unbounditems", NULL};
    if (kwargs == NULL && PyTuple_GET_SIZE(args) == 1) {
        obj = PyTuple_GET_ITEM(args, 0);
    }
    else if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:put_nowait", kwlist, &obj,
                                          &unbounditems)) {
        return NULL;
    }
    if (check_unbounditems(unbounditems) < 0) {
        return NULL;
    }
    return do_put(self, obj, Py_False, Py_None);
}

static PyObject *
queue_get(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *block = NULL, *timeout = Py_None;
    static char *kwlist[] = {"block", "timeout", NULL};
    if (kwargs == NULL) { /* the common case, without the keyword parser's cost */
        if (!PyArg_UnpackTuple(args, "get", 0, 2, &block, &timeout)) {
            return NULL;
        }
    }
    else if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:get", kwlist, &block,
                                          &timeout)) {
        return NULL;
    }
    return do_get(self, block, timeout);
}

static PyObject *
queue_get_nowait(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return do_get(self, Py_False, Py_None);
}

/* ------------------------------------------------------------ the rest of queue.Queue */

static PyObject *
queue_task_done(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_queue *q = Q(self);
    xi_lock(&q->mu);
    if (q->unfinished <= 0) {
        xi_unlock(&q->mu);
        PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
        return NULL;
    }
    if (--q->unfinished == 0) {
        xi_broadcast(&q->all_done);
    }
    xi_unlock(&q->mu);
    Py_RETURN_NONE;
}

static int
all_done(void *arg)
{
    return ((xi_queue *)arg)->unfinished == 0;
}

static PyObject *
queue_join(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_queue *q = Q(self);
    if (xi_block(&q->mu, &q->all_done, &q->joiners, all_done, NULL, q, XI_FOREVER) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
queue_shutdown(PyObject *self, PyObject *args, PyObject *kwargs)
{
    int immediate = 0;
    static char *kwlist[] = {"immediate", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:shutdown", kwlist, &immediate)) {
        return NULL;
    }
    xi_queue *q = Q(self);
    xi_item *dropped = NULL;
    xi_lock(&q->mu);
    q->shutdown = immediate ? 2 : (q->shutdown ? q->shutdown : 1);
    if (immediate) {
        dropped = q->head;
        q->unfinished -= q->count;
        if (q->unfinished < 0) {
            q->unfinished = 0;
        }
        q->head = q->tail = NULL;
        q->count = 0;
        atomic_store(&q->ready, 0);
    }
    xi_broadcast(&q->not_empty);
    xi_broadcast(&q->not_full);
    xi_fds_notify(&q->async_getters);
    xi_fds_notify(&q->async_putters);
    if (q->unfinished == 0) {
        xi_broadcast(&q->all_done);
    }
    xi_unlock(&q->mu);
    while (dropped != NULL) {
        xi_item *next = dropped->next;
        item_free(dropped);
        dropped = next;
    }
    Py_RETURN_NONE;
}

static PyObject *
queue_qsize(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_queue *q = Q(self);
    xi_lock(&q->mu);
    Py_ssize_t n = q->count;
    xi_unlock(&q->mu);
    return PyLong_FromSsize_t(n);
}

static PyObject *
queue_empty(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_queue *q = Q(self);
    xi_lock(&q->mu);
    int empty = q->count == 0;
    xi_unlock(&q->mu);
    return PyBool_FromLong(empty);
}

static PyObject *
queue_full(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_queue *q = Q(self);
    xi_lock(&q->mu);
    int full = q->maxsize > 0 && q->count >= q->maxsize;
    xi_unlock(&q->mu);
    return PyBool_FromLong(full);
}

/* ------------------------------------------------------------ asyncio */

/* _add_waiter(fd, putter) / _remove_waiter(fd, putter) */
static PyObject *
update_waiter(PyObject *self, PyObject *args, int add)
{
    PyObject *fd;
    int putter;
    if (!PyArg_ParseTuple(args, "Op", &fd, &putter)) {
        return NULL;
    }
    xi_queue *q = Q(self);
    return xi_fds_update(putter ? &q->async_putters : &q->async_getters, &q->mu, fd, add);
}

static PyObject *
queue_add_waiter(PyObject *self, PyObject *args)
{
    return update_waiter(self, args, 1);
}

static PyObject *
queue_remove_waiter(PyObject *self, PyObject *args)
{
    return update_waiter(self, args, 0);
}

static PyObject *
queue_get_async(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return xi_async_call("queue_get", self, args, kwargs);
}

static PyObject *
queue_put_async(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return xi_async_call("queue_put", self, args, kwargs);
}

static PyObject *
queue_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_queue *q = Q(self);
    xi_state *st = queue_state(self);
    if (xi_refs_add(&q->hdr) < 0) {
        return NULL;
    }
    return Py_BuildValue("O(iK)", st->rebuild, (int)XI_KIND_QUEUE,
                         (unsigned long long)q->hdr.id);
}

static PyObject *
queue_get_maxsize(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(Q(self)->maxsize);
}

static PyObject *
queue_get_id(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(Q(self)->hdr.id);
}

static PyObject *
queue_repr(PyObject *self)
{
    xi_queue *q = Q(self);
    return PyUnicode_FromFormat("<extrainterpreters.Queue id=%llu maxsize=%zd>",
                                (unsigned long long)q->hdr.id, q->maxsize);
}

static PyObject *
queue_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int same = Q(a) == Q(b);
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static Py_hash_t
queue_hash(PyObject *self)
{
    Py_hash_t h = (Py_hash_t)Q(self)->hdr.id;
    return h == -1 ? -2 : h;
}

static PyMethodDef queue_methods[] = {
    {"put", (PyCFunction)(void (*)(void))queue_put, METH_VARARGS | METH_KEYWORDS,
     "put($self, /, item, block=True, timeout=None, *, unbounditems=None)\n--\n\n"
     "put item at the tail; QueueFull when the timeout expires. unbounditems is accepted "
     "as in concurrent.interpreters (UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE) and changes "
     "nothing: an item is a copy that outlives the interpreter that put it."},
    {"put_nowait", (PyCFunction)(void (*)(void))queue_put_nowait,
     METH_VARARGS | METH_KEYWORDS,
     "put_nowait($self, /, item, *, unbounditems=None)\n--\n\nput(item, block=False)"},
    {"get", (PyCFunction)(void (*)(void))queue_get, METH_VARARGS | METH_KEYWORDS,
     "get($self, /, block=True, timeout=None)\n--\n\n-> item at the head; QueueEmpty when the timeout expires"},
    {"get_nowait", queue_get_nowait, METH_NOARGS, "get_nowait($self, /)\n--\n\nget(block=False)"},
    {"task_done", queue_task_done, METH_NOARGS, "task_done($self, /)\n--\n\na got item is processed"},
    {"join", queue_join, METH_NOARGS, "join($self, /)\n--\n\nwait until every item put is processed"},
    {"shutdown", (PyCFunction)(void (*)(void))queue_shutdown, METH_VARARGS | METH_KEYWORDS,
     "shutdown($self, /, immediate=False)\n--\n\nput() raises QueueShutDown from now on; get() too once "
     "the queue is empty (at once with immediate=True, which drops the items)"},
    {"qsize", queue_qsize, METH_NOARGS, "qsize($self, /)\n--\n\nnumber of items"},
    {"empty", queue_empty, METH_NOARGS, "empty($self, /)\n--\n\nwhether there is no item"},
    {"full", queue_full, METH_NOARGS, "full($self, /)\n--\n\nwhether there are maxsize items"},
    {"get_async", (PyCFunction)(void (*)(void))queue_get_async, METH_VARARGS | METH_KEYWORDS,
     "get_async($self, /, timeout=None)\n--\n\nawaitable get() that does not occupy a thread"},
    {"put_async", (PyCFunction)(void (*)(void))queue_put_async, METH_VARARGS | METH_KEYWORDS,
     "put_async($self, /, item, timeout=None)\n--\n\nawaitable put() that does not occupy a thread"},
    {"_add_waiter", queue_add_waiter, METH_VARARGS, "_add_waiter($self, fd, putter, /)\n--\n\n"},
    {"_remove_waiter", queue_remove_waiter, METH_VARARGS, "_remove_waiter($self, fd, putter, /)\n--\n\n"},
    {"__reduce__", queue_reduce, METH_NOARGS, "__reduce__($self, /)\n--\n\n"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef queue_getset[] = {
    {"maxsize", queue_get_maxsize, NULL, "the bound (0: none)", NULL},
    {"id", queue_get_id, NULL, "process-wide id of the queue", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef queue_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(xi_queue_obj, weakreflist), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot queue_slots[] = {
    {Py_tp_new, queue_new},
    {Py_tp_dealloc, queue_dealloc},
    {Py_tp_traverse, queue_traverse},
    {Py_tp_methods, queue_methods},
    {Py_tp_getset, queue_getset},
    {Py_tp_members, queue_members},
    {Py_tp_repr, queue_repr},
    {Py_tp_richcompare, queue_richcompare},
    {Py_tp_hash, queue_hash},
    {Py_tp_doc,
     "Queue(maxsize=0)\n--\n\n"
     "A FIFO queue that every interpreter it is passed to shares, with queue.Queue's "
     "API."},
    {0, NULL},
};

PyType_Spec xi_queue_spec = {
    .name = "extrainterpreters.Queue",
    .basicsize = sizeof(xi_queue_obj),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = queue_slots,
};
