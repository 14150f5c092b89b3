/* SharedBuffer (see buffer.h): fixed-size memory in no interpreter, exported through
 * the buffer protocol. A memoryview keeps its wrapper alive, and the wrapper keeps the
 * memory alive, so the memory outlives every view in every interpreter. */
#include "buffer.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    xi_shared hdr;
    Py_ssize_t size;
    char *data;
} xi_buffer;

typedef struct {
    PyObject_HEAD
    xi_buffer *buf;
    PyObject *weakreflist;
} xi_buffer_obj;

static void
buffer_free(xi_shared *obj)
{
    xi_buffer *b = (xi_buffer *)obj;
    free(b->data);
    PyMem_RawFree(b);
}

static const xi_shared_ops buffer_ops = {XI_KIND_BUFFER, "SharedBuffer", buffer_free, NULL};

static PyObject *
wrap(PyTypeObject *tp, xi_buffer *buf)
{
    xi_buffer_obj *self = (xi_buffer_obj *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->buf = buf; /* the reference passes to the wrapper */
    return (PyObject *)self;
}

PyObject *
xi_buffer_wrap(xi_state *st, xi_shared *obj)
{
    xi_shared_incref(obj);
    PyObject *w = wrap(st->BufferType, (xi_buffer *)obj);
    if (w == NULL) {
        xi_shared_decref(obj);
    }
    return w;
}

static PyObject *
buffer_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    PyObject *init;
    static char *kwlist[] = {"size", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:SharedBuffer", kwlist, &init)) {
        return NULL;
    }
    Py_ssize_t size;
    Py_buffer src = {0};
    if (PyIndex_Check(init)) {
        size = PyNumber_AsSsize_t(init, PyExc_OverflowError);
        if (size == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (size < 0) {
            PyErr_SetString(PyExc_ValueError, "SharedBuffer size must be >= 0");
            return NULL;
        }
    }
    else if (PyObject_CheckBuffer(init)) {
        if (PyObject_GetBuffer(init, &src, PyBUF_C_CONTIGUOUS) < 0) {
            return NULL;
        }
        size = src.len;
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "SharedBuffer() takes a size or a bytes-like object, not %.200s",
                     Py_TYPE(init)->tp_name);
        return NULL;
    }
    xi_buffer *buf = PyMem_RawCalloc(1, sizeof(xi_buffer));
    /* calloc: zero-filled, and large sizes come as fresh pages, untouched until used */
    char *data = buf ? calloc(1, size ? (size_t)size : 1) : NULL;
    if (data == NULL) {
        PyMem_RawFree(buf);
        PyBuffer_Release(&src);
        return PyErr_NoMemory();
    }
    if (src.obj != NULL) {
        memcpy(data, src.buf, (size_t)size);
        PyBuffer_Release(&src);
    }
    buf->size = size;
    buf->data = data;
    xi_shared_register(&buf->hdr, &buffer_ops);
    PyObject *self = wrap(tp, buf);
    if (self == NULL) {
        xi_shared_decref(&buf->hdr);
    }
    return self;
}

static void
buffer_dealloc(PyObject *op)
{
    xi_buffer_obj *self = (xi_buffer_obj *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    if (self->buf != NULL) {
        xi_shared_decref(&self->buf->hdr);
        self->buf = NULL;
    }
    tp->tp_free(op);
    Py_DECREF(tp);
}

static int
buffer_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    return 0;
}

static int
buffer_getbuffer(PyObject *op, Py_buffer *view, int flags)
{
    xi_buffer *b = ((xi_buffer_obj *)op)->buf;
    return PyBuffer_FillInfo(view, op, b->data, b->size, 0, flags);
}

static Py_ssize_t
buffer_length(PyObject *op)
{
    return ((xi_buffer_obj *)op)->buf->size;
}

static PyObject *
buffer_get_size(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(((xi_buffer_obj *)op)->buf->size);
}

static PyObject *
buffer_get_id(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(((xi_buffer_obj *)op)->buf->hdr.id);
}

static PyObject *
buffer_reduce(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    xi_buffer *b = ((xi_buffer_obj *)op)->buf;
    xi_state *st = (xi_state *)PyType_GetModuleState(Py_TYPE(op));
    if (xi_refs_add(&b->hdr) < 0) {
        return NULL;
    }
    return Py_BuildValue("O(iK)", st->rebuild, (int)XI_KIND_BUFFER,
                         (unsigned long long)b->hdr.id);
}

static PyObject *
buffer_repr(PyObject *op)
{
    xi_buffer *b = ((xi_buffer_obj *)op)->buf;
    return PyUnicode_FromFormat("<extrainterpreters.SharedBuffer id=%llu size=%zd>",
                                (unsigned long long)b->hdr.id, b->size);
}

static PyObject *
buffer_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int same = ((xi_buffer_obj *)a)->buf == ((xi_buffer_obj *)b)->buf;
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static Py_hash_t
buffer_hash(PyObject *op)
{
    Py_hash_t h = (Py_hash_t)((xi_buffer_obj *)op)->buf->hdr.id;
    return h == -1 ? -2 : h;
}

static PyMethodDef buffer_methods[] = {
    {"__reduce__", buffer_reduce, METH_NOARGS, "__reduce__($self, /)\n--\n\n"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef buffer_getset[] = {
    {"size", buffer_get_size, NULL, "size in bytes", NULL},
    {"id", buffer_get_id, NULL, "process-wide id of the shared memory", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef buffer_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(xi_buffer_obj, weakreflist), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot buffer_slots[] = {
    {Py_tp_new, buffer_new},
    {Py_tp_dealloc, buffer_dealloc},
    {Py_tp_traverse, buffer_traverse},
    {Py_bf_getbuffer, buffer_getbuffer},
    {Py_sq_length, buffer_length},
    {Py_mp_length, buffer_length},
    {Py_tp_methods, buffer_methods},
    {Py_tp_getset, buffer_getset},
    {Py_tp_members, buffer_members},
    {Py_tp_repr, buffer_repr},
    {Py_tp_richcompare, buffer_richcompare},
    {Py_tp_hash, buffer_hash},
    {Py_tp_doc,
     "SharedBuffer(size)\n--\n\n"
     "SharedBuffer(size | bytes-like)\n\n"
     "Zero-filled (or initialised) memory shared by every interpreter it is passed to:\n"
     "memoryview(buf) reads and writes it in place, without copying."},
    {0, NULL},
};

PyType_Spec xi_buffer_spec = {
    .name = "extrainterpreters.SharedBuffer",
    .basicsize = sizeof(xi_buffer_obj),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = buffer_slots,
};
