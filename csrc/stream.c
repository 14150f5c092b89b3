/* Pickle streams in pieces (see stream.h). */
#include "stream.h"
#include "byvalue.h"

#include <string.h>

/* ------------------------------------------------------------------ the reader */

/* A file-like object over the pieces of a stream, for _pickle.Unpickler. It points
 * into memory it does not own: xi_stream_unpickle detaches it before that memory can
 * go, and nothing but the unpickler ever sees it. */
typedef struct {
    PyObject_HEAD
    const xi_seg *pieces;    /* NULL once detached */
    Py_ssize_t n;
    Py_ssize_t idx;          /* the piece being read */
    Py_ssize_t off;          /* the offset in it */
    Py_ssize_t left;         /* bytes not read yet */
    Py_ssize_t steps;        /* pieces looked at, for xi_stream_reader_steps */
} xi_reader;

/* Pieces that the readers of every interpreter have looked at, added as each stream
 * ends (for tests: reading a stream stays linear in its pieces). */
static _Atomic int64_t reader_steps;

int64_t
xi_stream_reader_steps(void)
{
    return atomic_load(&reader_steps);
}

static int
reader_check(xi_reader *r)
{
    if (r->pieces == NULL) {
        PyErr_SetString(PyExc_ValueError, "read of a stream that was already read");
        return -1;
    }
    return 0;
}

/* Copies up to `len` bytes of the stream to `dst` and advances; returns the count. */
static Py_ssize_t
reader_copy(xi_reader *r, char *dst, Py_ssize_t len)
{
    Py_ssize_t done = 0;
    while (done < len && r->idx < r->n) {
        const xi_seg *p = &r->pieces[r->idx];
        r->steps++;
        Py_ssize_t k = p->len - r->off;
        if (k > len - done) {
            k = len - done;
        }
        xi_copy_new(dst + done, p->ptr + r->off, (size_t)k);
        done += k;
        r->off += k;
        r->left -= k;
        if (r->off == p->len) {
            r->idx++;
            r->off = 0;
        }
    }
    return done;
}

/* read(n): a view of the stream's memory when the n bytes lie in one piece and are
 * less than 1 MiB (the unpickler reads each frame, about 64 KiB, in place), else a new
 * bytes object. The unpickler of CPython 3.15 reads a large str or bytes in chunks of
 * 1 MiB and more into the first object read() returned, which must then be bytes. */
#define XI_READ_VIEW_MAX ((Py_ssize_t)1 << 20)
static PyObject *
reader_read(PyObject *op, PyObject *arg)
{
    xi_reader *r = (xi_reader *)op;
    Py_ssize_t want = PyLong_AsSsize_t(arg);
    if (want == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (reader_check(r) < 0) {
        return NULL;
    }
    if (want < 0 || want > r->left) {
        want = r->left;
    }
    while (r->idx < r->n && r->pieces[r->idx].len == r->off) {
        r->idx++;
        r->off = 0;
        r->steps++;
    }
    if (want < XI_READ_VIEW_MAX && r->idx < r->n && r->pieces[r->idx].len - r->off >= want) {
        PyObject *view = PyMemoryView_FromMemory((char *)r->pieces[r->idx].ptr + r->off,
                                                 want, PyBUF_READ);
        if (view != NULL) {
            r->off += want;
            r->left -= want;
            if (r->off == r->pieces[r->idx].len) {
                r->idx++;
                r->off = 0;
            }
        }
        return view;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, want);
    if (out != NULL) {
        (void)reader_copy(r, PyBytes_AS_STRING(out), want);
    }
    return out;
}

/* readinto(b): the one copy of a large bytes or bytearray, into its final place. */
static PyObject *
reader_readinto(PyObject *op, PyObject *arg)
{
    xi_reader *r = (xi_reader *)op;
    if (reader_check(r) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    Py_ssize_t done = reader_copy(r, view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(done);
}

static PyObject *
reader_readline(PyObject *op, PyObject *Py_UNUSED(arg))
{
    xi_reader *r = (xi_reader *)op;
    if (reader_check(r) < 0) {
        return NULL;
    }
    /* the length up to and including the next newline */
    Py_ssize_t len = 0, idx = r->idx, off = r->off;
    int found = 0;
    while (idx < r->n && !found) {
        const xi_seg *p = &r->pieces[idx];
        r->steps++;
        const char *nl = memchr(p->ptr + off, '\n', (size_t)(p->len - off));
        if (nl != NULL) {
            len += nl - (p->ptr + off) + 1;
            found = 1;
        }
        else {
            len += p->len - off;
            idx++;
            off = 0;
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, len);
    if (out != NULL) {
        (void)reader_copy(r, PyBytes_AS_STRING(out), len);
    }
    return out;
}

static void
reader_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_Free(op);
    Py_DECREF(tp);
}

static PyMethodDef reader_methods[] = {
    {"read", reader_read, METH_O, "read($self, n, /)\n--\n\n"},
    {"readinto", reader_readinto, METH_O, "readinto($self, buffer, /)\n--\n\n"},
    {"readline", reader_readline, METH_NOARGS, "readline($self, /)\n--\n\n"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot reader_slots[] = {
    {Py_tp_dealloc, reader_dealloc},
    {Py_tp_methods, reader_methods},
    {0, NULL},
};

static PyType_Spec reader_spec = {
    .name = "extrainterpreters._xi._StreamReader",
    .basicsize = sizeof(xi_reader),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = reader_slots,
};

static int ensure_pickler(xi_state *st);

PyObject *
xi_stream_unpickle(xi_state *st, const xi_seg *pieces, Py_ssize_t n, PyObject *buffers)
{
    if (ensure_pickler(st) < 0) {
        return NULL;
    }
    xi_reader *r = PyObject_New(xi_reader, st->StreamReaderType);
    if (r == NULL) {
        return NULL;
    }
    r->pieces = pieces;
    r->n = n;
    r->idx = r->off = r->steps = 0;
    r->left = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        r->left += pieces[i].len;
    }
    r->steps = n;
    PyObject *argv[2] = {(PyObject *)r, buffers};
    PyObject *unpickler = PyObject_Vectorcall(st->Unpickler, argv, 1,
                                              buffers ? st->kw_loads : NULL);
    PyObject *value = NULL;
    if (unpickler != NULL) {
        value = PyObject_CallMethodNoArgs(unpickler, st->str_load);
        /* the unpickler holds a view of the last piece it read until it goes */
        Py_DECREF(unpickler);
    }
    r->pieces = NULL;
    atomic_fetch_add(&reader_steps, (int64_t)r->steps);
    Py_DECREF(r);
    return value;
}

/* ------------------------------------------------------------------ the writer */

/* The file a pickler writes to. Each write is either a flush of the pickler's buffer
 * (the protocol header, whole frames, and at its end possibly the unframed header of a
 * large bytes or bytearray) or that large object itself, written next by itself. The
 * writer appends each to `chunks`; a bytearray as a memoryview of it, so that it is
 * exported (cannot be resized) from the moment it is part of the stream. It searches
 * the frames, not the large objects, for "__main__": a name of __main__ that
 * reducer_override could not see (an object whose __reduce__ returns a global name,
 * a function whose __module__ is None) is written there. */
typedef struct {
    PyObject_HEAD
    PyObject *chunks;
    Py_ssize_t expect;   /* the large object the last flush announced is next: its length */
    Py_ssize_t framed;   /* bytes of flushes (frames) written in this dump */
    int names_main;      /* a frame has "__main__" in it */
} xi_writer;

/* A reused pickler keeps the memo table it grew to: clear_memo empties it, but every
 * later clear walks its whole size. A dump whose frames exceed this marks the pickler
 * grown; it is kept while dumps stay that large (its table saves them growing one), and
 * dropped after the first smaller one, so that small dumps do not pay for the table. */
#define XI_PK_KEEP_MAX (32 * 1024)

static uint64_t
le_u(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* A flush: [PROTO] frames* unframed-tail, where the unframed tail is a frame too small
 * to be framed (under 4 bytes) and/or the header of a large object written next. */
static void
writer_scan_flush(xi_writer *w, const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t pos = 0;
    if (n >= 2 && p[0] == 0x80) { /* PROTO */
        pos = 2;
    }
    while (pos + 9 <= n && p[pos] == 0x95) { /* FRAME */
        uint64_t len = le_u(p + pos + 1, 8);
        if (len > (uint64_t)(n - pos - 9)) {
            break;
        }
        if (memmem(p + pos + 9, (size_t)len, "__main__", 8) != NULL) {
            w->names_main = 1;
        }
        pos += 9 + (Py_ssize_t)len;
    }
    Py_ssize_t rest = n - pos;
    w->expect = -1;
    if (rest >= 5 && rest <= 8 && p[n - 5] == 0x42) { /* BINBYTES */
        w->expect = (Py_ssize_t)le_u(p + n - 4, 4);
    }
    else if (rest >= 9 && rest <= 12 && (p[n - 9] == 0x8e || p[n - 9] == 0x96)) {
        /* BINBYTES8, BYTEARRAY8 */
        w->expect = (Py_ssize_t)le_u(p + n - 8, 8);
    }
    else if (rest > 0 && memmem(p + pos, (size_t)rest, "__main__", 8) != NULL) {
        w->names_main = 1; /* not the structure expected: search it all */
    }
}

static PyObject *
writer_write(PyObject *op, PyObject *obj)
{
    xi_writer *w = (xi_writer *)op;
    Py_ssize_t expect = w->expect;
    w->expect = -1;
    PyObject *item;
    if (PyByteArray_Check(obj)) {
        item = PyMemoryView_FromObject(obj); /* exported from now on */
    }
    else if (PyBytes_Check(obj)) {
        if (PyBytes_GET_SIZE(obj) != expect) {
            writer_scan_flush(w, (const unsigned char *)PyBytes_AS_STRING(obj),
                              PyBytes_GET_SIZE(obj));
            w->framed += PyBytes_GET_SIZE(obj);
        }
        item = Py_NewRef(obj);
    }
    else {
        item = PyMemoryView_FromObject(obj);
    }
    if (item == NULL) {
        return NULL;
    }
    int rc = PyList_Append(w->chunks, item);
    Py_DECREF(item);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static int
writer_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(((xi_writer *)op)->chunks);
    return 0;
}

static int
writer_clear(PyObject *op)
{
    Py_CLEAR(((xi_writer *)op)->chunks);
    return 0;
}

static void
writer_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    (void)writer_clear(op);
    PyObject_GC_Del(op);
    Py_DECREF(tp);
}

static PyMethodDef writer_methods[] = {
    {"write", writer_write, METH_O, "write($self, data, /)\n--\n\n"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot writer_slots[] = {
    {Py_tp_dealloc, writer_dealloc},
    {Py_tp_traverse, writer_traverse},
    {Py_tp_clear, writer_clear},
    {Py_tp_methods, writer_methods},
    {0, NULL},
};

static PyType_Spec writer_spec = {
    .name = "extrainterpreters._xi._StreamWriter",
    .basicsize = sizeof(xi_writer),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = writer_slots,
};

static xi_writer *
new_writer(xi_state *st, PyObject *chunks)
{
    xi_writer *w = PyObject_GC_New(xi_writer, st->StreamWriterType);
    if (w == NULL) {
        return NULL;
    }
    w->chunks = Py_NewRef(chunks);
    w->expect = -1;
    w->names_main = 0;
    PyObject_GC_Track(w);
    return w;
}

/* ------------------------------------------------------------------ the pickler */

/* Is `obj` (a function, a class, or an instance of a class) defined in __main__, or in
 * a module that crosses by value (byvalue.h)?
 * -1 with an exception set on error. */
static int
names_main(xi_state *st, PyObject *obj)
{
    PyObject *module = NULL;
    if (PyFunction_Check(obj)) {
        module = Py_XNewRef(PyFunction_GetModule(obj));
    }
    else {
        PyObject *type = PyType_Check(obj) ? obj : (PyObject *)Py_TYPE(obj);
        if (!PyType_HasFeature((PyTypeObject *)type, Py_TPFLAGS_HEAPTYPE)) {
            return 0; /* static types live in extension modules */
        }
        if (type == st->pk_type_seen) {
            return 0; /* the type of the last instance checked, in this dump (the
                         memo keeps it alive meanwhile) */
        }
        module = PyObject_GetAttr(type, st->str_module);
        if (module == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                return -1;
            }
            PyErr_Clear();
        }
    }
    int is_main = module != NULL && PyUnicode_Check(module) &&
                  PyUnicode_CompareWithASCIIString(module, "__main__") == 0;
    if (!is_main && module != NULL) {
        /* a module that crosses by value is treated as __main__ is */
        is_main = xi_byvalue_has(st, module);
    }
    Py_XDECREF(module);
    if (is_main < 0) {
        return -1;
    }
    if (!is_main && !PyFunction_Check(obj) && !PyType_Check(obj)) {
        st->pk_type_seen = (PyObject *)Py_TYPE(obj);
    }
    return is_main;
}

static int
is_array(PyObject *obj)
{
    /* array.array itself (a subclass pickles as it says) */
    return strcmp(Py_TYPE(obj)->tp_name, "array.array") == 0 && PyObject_CheckBuffer(obj);
}

PyObject *
xi_stream_picklebuffer(xi_state *st, PyObject *obj)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0) {
        return NULL; /* a released memoryview: ValueError */
    }
    int contiguous = PyBuffer_IsContiguous(&view, 'C');
    int readonly = view.readonly;
    PyBuffer_Release(&view);
    PyObject *src;
    if (contiguous) {
        src = Py_NewRef(obj);
    }
    else {
        /* a contiguous copy, writable if the view was, of the same format and shape */
        PyObject *flat = PyMemoryView_GetContiguous(obj, PyBUF_READ, 'C');
        src = flat;
        if (flat != NULL && !readonly) {
            /* the copy is read-only: make it writable, as the view was, if its format
             * allows the cast back (native single formats) */
            PyObject *base = PyByteArray_FromObject(flat);
            PyObject *format = base ? PyObject_GetAttrString(obj, "format") : NULL;
            PyObject *shape = format ? PyObject_GetAttrString(obj, "shape") : NULL;
            PyObject *mv = shape ? PyMemoryView_FromObject(base) : NULL;
            PyObject *cast = mv ? PyObject_CallMethod(mv, "cast", "OO", format, shape) : NULL;
            if (cast != NULL) {
                Py_SETREF(src, cast);
            }
            PyErr_Clear();
            Py_XDECREF(base);
            Py_XDECREF(format);
            Py_XDECREF(shape);
            Py_XDECREF(mv);
        }
    }
    if (src == NULL) {
        return NULL;
    }
    PyObject *pb = PyObject_CallOneArg(st->PickleBuffer, src);
    Py_DECREF(src);
    return pb;
}

/* Whether obj is a multiprocessing.managers proxy: 1, 0, or -1 with an exception set.
 * Nothing is imported: until this interpreter imported multiprocessing.managers, no
 * object is one. */
static int
is_mp_proxy(xi_state *st, PyObject *obj)
{
    if (st->mp_BaseProxy == NULL) {
        PyObject *managers = PyImport_GetModule(st->str_mp_managers);
        if (managers == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
        if (managers == Py_None) {
            /* sys.modules holds None there: the program keeps it from being imported */
            Py_DECREF(managers);
            return 0;
        }
        PyObject *base = PyObject_GetAttrString(managers, "BaseProxy");
        Py_DECREF(managers);
        PyObject *helpers = base ? PyImport_ImportModule("extrainterpreters._mp_proxies") : NULL;
        PyObject *reduce = helpers ? PyObject_GetAttrString(helpers, "reduce") : NULL;
        Py_XDECREF(helpers);
        if (reduce == NULL || !PyType_Check(base)) {
            if (reduce != NULL) {
                PyErr_SetString(PyExc_TypeError, "multiprocessing.managers.BaseProxy is not a class");
            }
            Py_XDECREF(base);
            Py_XDECREF(reduce);
            return -1;
        }
        st->mp_BaseProxy = base;
        st->mp_reduce_proxy = reduce;
    }
    return PyType_IsSubtype(Py_TYPE(obj), (PyTypeObject *)st->mp_BaseProxy);
}

/* reducer_override(obj): memoryview and array.array objects travel as out-of-band
 * buffers (rebuilt as they were by the decoder, wire.c's segment_object); a
 * multiprocessing proxy travels with its authentication key (_mp_proxies.py); a name
 * of __main__ stops the pickling (st->MainReference); everything else pickles as
 * usual. */
static PyObject *
pickler_reducer_override(PyObject *self, PyObject *obj)
{
    xi_state *st = PyType_GetModuleState(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    if (PyMemoryView_Check(obj) || is_array(obj)) {
        PyObject *pb = xi_stream_picklebuffer(st, obj);
        if (pb == NULL) {
            return NULL;
        }
        return Py_BuildValue("(O(N))", st->buffer_value, pb);
    }
    int proxy = is_mp_proxy(st, obj);
    if (proxy < 0) {
        return NULL;
    }
    if (proxy) {
        return PyObject_CallOneArg(st->mp_reduce_proxy, obj);
    }
    int main = names_main(st, obj);
    if (main < 0) {
        return NULL;
    }
    if (main) {
        PyErr_SetString(st->MainReference, "a name of __main__");
        return NULL;
    }
    Py_RETURN_NOTIMPLEMENTED;
}

static PyMethodDef pickler_methods[] = {
    {"reducer_override", pickler_reducer_override, METH_O, "reducer_override($self, obj, /)\n--\n\n"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot pickler_slots[] = {
    {Py_tp_methods, pickler_methods},
    {0, NULL},
};

static PyType_Spec pickler_spec = {
    .name = "extrainterpreters._xi._Pickler",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = pickler_slots,
};

/* A pickler of class `cls` writing to `chunks` and `oob` (lists): this module's
 * (arguments file, protocol, fix_imports, buffer_callback), or cloudpickle's (file,
 * protocol, buffer_callback). New reference. */
static PyObject *
new_pickler_of(xi_state *st, PyObject *cls, PyObject *chunks, PyObject *oob,
               PyObject **writer)
{
    PyObject *pk = NULL;
    xi_writer *file = new_writer(st, chunks);
    PyObject *callback = file ? PyObject_GetAttrString(oob, "append") : NULL;
    if (callback == NULL) {
        goto done;
    }
    /* positional: a keyword call of a C function made here first would build its
     * keyword tuple in this interpreter (see module.c's warm_keyword_parsers) */
    if (cls == (PyObject *)st->PicklerType) {
        PyObject *argv[4] = {(PyObject *)file, st->protocol, Py_True, callback};
        pk = PyObject_Vectorcall(cls, argv, 4, NULL);
    }
    else {
        PyObject *argv[3] = {(PyObject *)file, st->protocol, callback};
        pk = PyObject_Vectorcall(cls, argv, 3, NULL);
    }
    if (pk != NULL && writer != NULL) {
        *writer = Py_NewRef((PyObject *)file);
    }
done:
    Py_XDECREF(callback);
    Py_XDECREF((PyObject *)file);
    return pk;
}

/* The pickler type, made on first need (it derives from _pickle.Pickler), and the
 * unpickler. */
static int
ensure_pickler(xi_state *st)
{
    if (st->PicklerType != NULL) {
        return 0;
    }
    PyObject *module = PyType_GetModule(st->StreamReaderType);
    PyObject *pickle = module ? PyImport_ImportModule("_pickle") : NULL;
    PyObject *base = pickle ? PyObject_GetAttrString(pickle, "Pickler") : NULL;
    PyObject *unpickler = pickle ? PyObject_GetAttrString(pickle, "Unpickler") : NULL;
    Py_XDECREF(pickle);
    if (base == NULL || unpickler == NULL) {
        Py_XDECREF(base);
        Py_XDECREF(unpickler);
        return -1;
    }
    PyObject *type = PyType_FromModuleAndSpec(module, &pickler_spec, base);
    Py_DECREF(base);
    if (type == NULL) {
        Py_DECREF(unpickler);
        return -1;
    }
    st->PicklerType = (PyTypeObject *)type;
    st->Unpickler = unpickler;
    return 0;
}

/* Moves the items of `list` into a new list. */
static PyObject *
take_items(PyObject *list)
{
    PyObject *items = PyList_GetSlice(list, 0, PY_SSIZE_T_MAX);
    if (items != NULL && PyList_SetSlice(list, 0, PY_SSIZE_T_MAX, NULL) < 0) {
        Py_CLEAR(items);
    }
    return items;
}

int
xi_stream_pickle(xi_state *st, PyObject *obj, PyObject **chunks, PyObject **oob)
{
    *chunks = *oob = NULL;
    if (ensure_pickler(st) < 0) {
        return -1;
    }
    /* this interpreter's pickler, or a new one while it is in use (a thread switch
     * or a nested encode during a dump) */
    PyObject *pk = NULL, *pk_chunks, *pk_oob, *writer = NULL;
    int cached = !st->pk_busy;
    if (st->pk_busy || st->pk == NULL) {
        pk_chunks = PyList_New(0);
        pk_oob = PyList_New(0);
        if (pk_chunks != NULL && pk_oob != NULL) {
            pk = new_pickler_of(st, (PyObject *)st->PicklerType, pk_chunks, pk_oob, &writer);
        }
        if (pk == NULL) {
            Py_XDECREF(pk_chunks);
            Py_XDECREF(pk_oob);
            return -1;
        }
        if (cached) {
            /* kept for the next dumps */
            st->pk = Py_NewRef(pk);
            st->pk_chunks = Py_NewRef(pk_chunks);
            st->pk_oob = Py_NewRef(pk_oob);
            st->pk_writer = Py_NewRef(writer);
        }
    }
    else {
        pk = Py_NewRef(st->pk);
        pk_chunks = Py_NewRef(st->pk_chunks);
        pk_oob = Py_NewRef(st->pk_oob);
        writer = Py_NewRef(st->pk_writer);
    }
    if (cached) {
        st->pk_busy = 1;
    }
    xi_writer *w = (xi_writer *)writer;
    w->expect = -1;
    w->framed = 0;
    w->names_main = 0;
    st->pk_type_seen = NULL;
    PyObject *r = PyObject_CallMethodOneArg(pk, st->str_dump, obj);
    /* the type is kept alive by this dump's memo only: never by a later dump */
    st->pk_type_seen = NULL;
    int rc = r == NULL ? -1 : 0;
    Py_XDECREF(r);
    if (rc == 0 && w->names_main) {
        PyErr_SetString(st->MainReference, "a name of __main__");
        rc = -1;
    }
    /* the memo holds references to what was pickled; the lists, to the pieces */
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *cleared = PyObject_CallMethodNoArgs(pk, st->str_clear_memo);
    Py_XDECREF(cleared);
    int stale = cleared == NULL; /* a pickler whose state is not known to be clean */
    if (rc == 0 && cleared != NULL) {
        *chunks = take_items(pk_chunks);
        *oob = *chunks ? take_items(pk_oob) : NULL;
        if (*oob == NULL) {
            Py_CLEAR(*chunks);
            rc = -1;
            stale = 1;
        }
    }
    else {
        rc = -1;
        PyObject *err = PyErr_GetRaisedException(); /* clear_memo's, if it failed */
        if (PyList_SetSlice(pk_chunks, 0, PY_SSIZE_T_MAX, NULL) < 0 ||
            PyList_SetSlice(pk_oob, 0, PY_SSIZE_T_MAX, NULL) < 0) {
            stale = 1;
            if (err == NULL) {
                err = PyErr_GetRaisedException();
            }
            PyErr_Clear();
        }
        PyErr_SetRaisedException(err);
    }
    if (exc != NULL) {
        PyErr_Clear();
        PyErr_SetRaisedException(exc);
    }
    if (cached) {
        st->pk_busy = 0;
        int large = w->framed > XI_PK_KEEP_MAX;
        int drop = stale || (st->pk_grown && !large);
        st->pk_grown = large && !drop;
        if (drop) {
            Py_CLEAR(st->pk);
            Py_CLEAR(st->pk_chunks);
            Py_CLEAR(st->pk_oob);
            Py_CLEAR(st->pk_writer);
        }
    }
    Py_DECREF(pk);
    Py_DECREF(pk_chunks);
    Py_DECREF(pk_oob);
    Py_DECREF(writer);
    return rc;
}

int
xi_stream_pickle_by_value(xi_state *st, PyObject *obj, PyObject **chunks, PyObject **oob)
{
    *chunks = *oob = NULL;
    if (st->cp_Pickler == NULL) {
        PyObject *cp = PyImport_ImportModule("extrainterpreters._byvalue");
        st->cp_Pickler = cp ? PyObject_GetAttrString(cp, "Pickler") : NULL;
        Py_XDECREF(cp);
        if (st->cp_Pickler == NULL) {
            return -1;
        }
    }
    PyObject *c = PyList_New(0), *o = PyList_New(0);
    PyObject *pk = (c && o) ? new_pickler_of(st, st->cp_Pickler, c, o, NULL) : NULL;
    PyObject *r = pk ? PyObject_CallMethodOneArg(pk, st->str_dump, obj) : NULL;
    Py_XDECREF(pk);
    if (r == NULL) {
        Py_XDECREF(c);
        Py_XDECREF(o);
        return -1;
    }
    Py_DECREF(r);
    *chunks = c;
    *oob = o;
    return 0;
}

/* ------------------------------------------------------------------ module */

/* _xi._buffer_value(x) -> x: what a memoryview or array.array pickled by
 * reducer_override is rebuilt with (the decoder rebuilt it already). */
static PyObject *
buffer_value(PyObject *Py_UNUSED(module), PyObject *x)
{
    return Py_NewRef(x);
}

static PyMethodDef buffer_value_def = {
    "_buffer_value", buffer_value, METH_O, "_buffer_value(x, /)\n--\n\n-> x"};

int
xi_stream_init(PyObject *module, xi_state *st)
{
    st->StreamReaderType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &reader_spec, NULL);
    st->StreamWriterType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &writer_spec, NULL);
    if (st->StreamReaderType == NULL || st->StreamWriterType == NULL) {
        return -1;
    }
    st->MainReference = PyErr_NewException("extrainterpreters._xi._MainReference", NULL, NULL);
    st->buffer_value = PyCMethod_New(&buffer_value_def, module, NULL, NULL);
    st->str_dump = PyUnicode_InternFromString("dump");
    st->str_clear_memo = PyUnicode_InternFromString("clear_memo");
    st->str_load = PyUnicode_InternFromString("load");
    st->str_module = PyUnicode_InternFromString("__module__");
    st->str_mp_managers = PyUnicode_InternFromString("multiprocessing.managers");
    if (st->MainReference == NULL || st->buffer_value == NULL || st->str_dump == NULL ||
        st->str_clear_memo == NULL || st->str_load == NULL || st->str_module == NULL ||
        st->str_mp_managers == NULL) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "_buffer_value", st->buffer_value);
}
