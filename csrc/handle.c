/* _xi.Handle: one interpreter seen from the current one. An owning handle (made by
 * create()) closes its interpreter when it is collected; other handles (handle(id))
 * only call into it. */
#include "handle.h"
#include "call.h"
#include "interrupt.h"
#include "owner.h"
#include "callctx.h"

#include <stddef.h>

typedef struct {
    PyObject_HEAD
    xi_interp *rec;  /* NULL: an interpreter this library did not make */
    int64_t id;
    int owner;
    PyObject *weakreflist;
} xi_handle;

static inline xi_state *
handle_state(PyObject *self)
{
    return (xi_state *)PyType_GetModuleState(Py_TYPE(self));
}

PyObject *
xi_handle_new(xi_state *st, xi_interp *rec, int64_t id, int owner)
{
    xi_handle *h = PyObject_GC_New(xi_handle, st->HandleType);
    if (h == NULL) {
        return NULL;
    }
    if (rec != NULL) {
        xi_interp_incref(rec);
    }
    h->rec = rec;
    h->id = id;
    h->owner = owner;
    h->weakreflist = NULL;
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

static int
handle_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void
handle_dealloc(PyObject *self)
{
    xi_handle *h = (xi_handle *)self;
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (h->weakreflist != NULL) {
        PyObject_ClearWeakRefs(self);
    }
    if (h->rec != NULL) {
        if (h->owner) {
            xi_interp_orphan(h->rec);
        }
        xi_interp_decref(h->rec);
        h->rec = NULL;
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

static xi_interp *
handle_rec(xi_state *st, xi_handle *h)
{
    if (h->rec == NULL) {
        PyErr_Format(st->InterpreterNotFoundError,
                     "interpreter %lld was not made by extrainterpreters; it cannot be "
                     "called from here", (long long)h->id);
    }
    return h->rec;
}

static PyObject *
handle_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    xi_state *st = handle_state(self);
    xi_interp *rec = handle_rec(st, (xi_handle *)self);
    if (rec == NULL) {
        return NULL;
    }
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "call() needs the callable as first argument");
        return NULL;
    }
    PyObject *func = args[0], *posargs = NULL, *kwargs = NULL, *result = NULL;
    if (!PyCallable_Check(func)) {
        PyErr_Format(PyExc_TypeError, "'%.200s' object is not callable", Py_TYPE(func)->tp_name);
        return NULL;
    }
    if ((posargs = PyTuple_New(nargs - 1)) == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyTuple_SET_ITEM(posargs, i - 1, Py_NewRef(args[i]));
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nkw > 0) {
        if ((kwargs = PyDict_New()) == NULL) {
            goto done;
        }
        for (Py_ssize_t i = 0; i < nkw; i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                goto done;
            }
        }
    }
    xi_packet req = XI_PACKET_INIT;
    xi_callctx_mask(); /* the library's part of the caller's own call, if any */
    if (xi_encode_call(st, func, posargs, kwargs, &req) == 0) {
        result = xi_interp_run(st, rec, XI_REQ_CALL, &req);
        xi_packet_release(&req);
    }
    xi_callctx_unmask();
done:
    Py_DECREF(posargs);
    Py_XDECREF(kwargs);
    return result;
}

static PyObject *
run_value(PyObject *self, xi_request kind, PyObject *value)
{
    xi_state *st = handle_state(self);
    xi_interp *rec = handle_rec(st, (xi_handle *)self);
    if (rec == NULL) {
        return NULL;
    }
    xi_packet req = XI_PACKET_INIT;
    PyObject *result = NULL;
    xi_callctx_mask();
    if (xi_encode_value(st, value, &req) == 0) {
        result = xi_interp_run(st, rec, kind, &req);
        xi_packet_release(&req);
    }
    xi_callctx_unmask();
    return result;
}

static PyObject *
handle_exec(PyObject *self, PyObject *code)
{
    if (!PyUnicode_Check(code)) {
        PyErr_Format(PyExc_TypeError, "exec() takes source code as a str, not %.200s",
                     Py_TYPE(code)->tp_name);
        return NULL;
    }
    /* the source travels as a C string: a NUL would end it there */
    if (PyUnicode_FindChar(code, 0, 0, PyUnicode_GET_LENGTH(code), 1) >= 0) {
        PyErr_SetString(PyExc_SyntaxError, "source code string cannot contain null bytes");
        return NULL;
    }
    return run_value(self, XI_REQ_EXEC, code);
}

static PyObject *
handle_prepare_main(PyObject *self, PyObject *ns)
{
    if (!PyDict_Check(ns)) {
        PyErr_Format(PyExc_TypeError, "prepare_main() takes a dict, not %.200s",
                     Py_TYPE(ns)->tp_name);
        return NULL;
    }
    PyObject *key;
    Py_ssize_t pos = 0;
    while (PyDict_Next(ns, &pos, &key, NULL)) {
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "prepare_main() names must be str, not %.200s",
                         Py_TYPE(key)->tp_name);
            return NULL;
        }
    }
    return run_value(self, XI_REQ_PREPARE, ns);
}

/* interrupt(thread=None): every call, or those of the thread with that ident only */
static PyObject *
handle_interrupt(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    xi_state *st = handle_state(self);
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "interrupt() takes at most one argument");
        return NULL;
    }
    unsigned long ident = 0;
    if (nargs == 1 && args[0] != Py_None) {
        ident = PyLong_AsUnsignedLong(args[0]);
        if (ident == (unsigned long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        if (ident == 0) {
            PyErr_SetString(PyExc_ValueError, "not a thread identifier");
            return NULL;
        }
    }
    xi_interp *rec = handle_rec(st, (xi_handle *)self);
    if (rec == NULL) {
        return NULL;
    }
    xi_err err = xi_interp_interrupt_thread(rec, ident);
    if (err != XI_OK) {
        return xi_raise(st, err, xi_interp_id(rec));
    }
    Py_RETURN_NONE;
}

static PyObject *
handle_is_running(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_state *st = handle_state(self);
    xi_interp *rec = handle_rec(st, (xi_handle *)self);
    if (rec == NULL) {
        return NULL;
    }
    return PyBool_FromLong(xi_interp_is_running(rec));
}

static PyObject *
handle_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_handle *h = (xi_handle *)self;
    xi_state *st = handle_state(self);
    xi_interp *rec = handle_rec(st, h);
    if (rec == NULL) {
        return NULL;
    }
    /* as concurrent.interpreters: any object of an interpreter this library made may
     * close it; the main interpreter is never closed */
    if (!h->owner && h->id == PyInterpreterState_GetID(PyInterpreterState_Main())) {
        return xi_raise(st, XI_ERR_NOT_OWNER, h->id);
    }
    xi_err err = xi_interp_close(rec);
    if (err != XI_OK) {
        return xi_raise(st, err, h->id);
    }
    Py_RETURN_NONE;
}

/* Ends the interpreter once it is idle, without waiting (owning handles only). */
static PyObject *
handle_close_soon(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    xi_handle *h = (xi_handle *)self;
    xi_state *st = handle_state(self);
    if (h->rec == NULL || !h->owner) {
        return xi_raise(st, XI_ERR_NOT_OWNER, h->id);
    }
    xi_interp_orphan(h->rec);
    Py_RETURN_NONE;
}

static PyObject *
handle_get_id(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(((xi_handle *)self)->id);
}

static PyObject *
handle_get_owner(PyObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((xi_handle *)self)->owner);
}

static PyObject *
handle_repr(PyObject *self)
{
    xi_handle *h = (xi_handle *)self;
    return PyUnicode_FromFormat("<_xi.Handle interpreter=%lld%s>", (long long)h->id,
                                h->owner ? " owner" : "");
}

static PyMethodDef handle_methods[] = {
    {"call", (PyCFunction)(void (*)(void))handle_call, METH_FASTCALL | METH_KEYWORDS,
     "call($self, func, /, *args, **kwargs)\n--\n\nrun func there and return its result"},
    {"exec", handle_exec, METH_O, "exec($self, code, /)\n--\n\nrun source code in its __main__"},
    {"prepare_main", handle_prepare_main, METH_O,
     "prepare_main($self, ns, /)\n--\n\nbind the dict's items as names in its __main__"},
    {"interrupt", (PyCFunction)(void (*)(void))handle_interrupt, METH_FASTCALL,
     "interrupt($self, thread=None, /)\n--\n\nraise KeyboardInterrupt in every call running there, or in\n"
     "those that the thread with that ident runs there"},
    {"is_running", handle_is_running, METH_NOARGS, "is_running($self, /)\n--\n\nwhether any call is running there"},
    {"close", handle_close, METH_NOARGS, "close($self, /)\n--\n\nend the interpreter (owning handles only)"},
    {"_close_soon", handle_close_soon, METH_NOARGS,
     "_close_soon($self, /)\n--\n\nend the interpreter once idle, without waiting (owning "
     "handles only)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
    {"id", handle_get_id, NULL, "the interpreter's id", NULL},
    {"owner", handle_get_owner, NULL, "whether this handle owns the interpreter", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef handle_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(xi_handle, weakreflist), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot handle_slots[] = {
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, handle_traverse},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {Py_tp_members, handle_members},
    {Py_tp_repr, handle_repr},
    {Py_tp_doc, "An interpreter seen from this one (made by create() or handle())."},
    {0, NULL},
};

PyType_Spec xi_handle_spec = {
    .name = "extrainterpreters._xi.Handle",
    .basicsize = sizeof(xi_handle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = handle_slots,
};
