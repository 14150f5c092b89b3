/* The wire format (see wire.h). */
#define _GNU_SOURCE 1 /* memmem */
#include "wire.h"
#include "callctx.h"
#include "byvalue.h"
#include "stream.h"

#include <marshal.h>

#include <stdarg.h>
#include <string.h>

/* bytes, bytearray and str storage at least this large go out of band; memoryviews
 * always do (pickle cannot serialize them in band). */
#define XI_OOB_MIN (16 * 1024)

/* ---------------------------------------------------------------- encoding */

static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *m = PyImport_ImportModule(module);
    if (m == NULL) {
        return NULL;
    }
    PyObject *attr = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return attr;
}

int
xi_wire_load_pickle(xi_state *st)
{
    if (st->SimpleNamespace != NULL) {
        return 0;
    }
    /* Imports release the GIL: other threads of the interpreter may be loading them
     * too, and one import may fail (an interrupt, no memory) while another succeeds.
     * A slot is only ever set to a loaded object, and SimpleNamespace, the sign that
     * all are loaded, last. */
    PyObject **slots[] = {&st->dumps, &st->loads, &st->PickleBuffer, &st->SimpleNamespace};
    const char *names[][2] = {{"_pickle", "dumps"}, {"_pickle", "loads"},
                              {"_pickle", "PickleBuffer"}, {"types", "SimpleNamespace"}};
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        if (*slots[i] != NULL) {
            continue;
        }
        PyObject *obj = import_attr(names[i][0], names[i][1]);
        if (obj == NULL) {
            return -1;
        }
        if (*slots[i] == NULL) {
            *slots[i] = obj;
        }
        else {
            Py_DECREF(obj);
        }
    }
    return 0;
}

static PyObject *
get_cloudpickle(xi_state *st)
{
    if (st->cp_dumps == NULL) {
        PyObject *mod = PyImport_ImportModule("extrainterpreters._byvalue");
        if (mod == NULL) {
            return NULL;
        }
        st->cp_dumps = PyObject_GetAttrString(mod, "dumps");
        Py_DECREF(mod);
    }
    return st->cp_dumps;
}

/* ------------------------------------------------------ out-of-band values */

/* An exact str's storage (PyUnicode_DATA, length * kind bytes) exported as a buffer,
 * so that a PickleBuffer over it sends the str out of band: the sender copies nothing
 * and encodes nothing, the receiver copies the storage once (segment_object).
 *
 * The export presents the buffer as writable (readonly 0). Pickle marks a read-only
 * out-of-band buffer with READONLY_BUFFER, and loading that opcode calls memoryview()
 * on the object the decoder supplies, which is a str here and has no buffer. Nothing
 * writes through it: an export is made only by subst_visit() below, for a PickleBuffer
 * that goes to the pickler and then into the packet (the out-of-band buffer list and
 * the export the packet holds); only the core reads through it, to describe the
 * segment, to copy it into an owned block (xi_packet_own) or to rebuild the str. The
 * type is not a module attribute and cannot be instantiated from Python, and neither
 * the export nor its PickleBuffer is tracked by the garbage collector. Python code run
 * while the value is pickled (a __reduce__) that searches the garbage collector's
 * objects for a container holding the PickleBuffer (the substituted copies, the
 * pickler's memo) could still write through it: deliberate code of that kind is the
 * one way to change the str. */
typedef struct {
    PyObject_HEAD
    PyObject *str; /* an exact str, strong reference */
} xi_str_export;

/* The bytes a str's storage takes. */
static Py_ssize_t
str_storage(PyObject *s)
{
    return PyUnicode_GET_LENGTH(s) * (Py_ssize_t)PyUnicode_KIND(s);
}

static void
str_export_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    Py_DECREF(((xi_str_export *)op)->str);
    PyObject_Free(op);
    Py_DECREF(tp);
}

static int
str_export_getbuffer(PyObject *op, Py_buffer *view, int flags)
{
    PyObject *s = ((xi_str_export *)op)->str;
    return PyBuffer_FillInfo(view, op, PyUnicode_DATA(s), str_storage(s), 0, flags);
}

static PyType_Slot str_export_slots[] = {
    {Py_tp_dealloc, str_export_dealloc},
    {Py_bf_getbuffer, str_export_getbuffer},
    {0, NULL},
};

PyType_Spec xi_str_export_spec = {
    .name = "extrainterpreters._xi._StrExport",
    .basicsize = sizeof(xi_str_export),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = str_export_slots,
};

/* Whether obj travels out of band in place of where it is: a memoryview, or an exact
 * bytes, bytearray or str of XI_OOB_MIN bytes or more. */
static int
is_oob_leaf(PyObject *obj)
{
    if (PyMemoryView_Check(obj)) {
        return 1;
    }
    if (PyBytes_CheckExact(obj)) {
        return PyBytes_GET_SIZE(obj) >= XI_OOB_MIN;
    }
    if (PyByteArray_CheckExact(obj)) {
        return PyByteArray_GET_SIZE(obj) >= XI_OOB_MIN;
    }
    if (PyUnicode_CheckExact(obj)) {
        return str_storage(obj) >= XI_OOB_MIN;
    }
    return 0;
}

/* A PickleBuffer over such a leaf. New reference. */
static PyObject *
oob_picklebuffer(xi_state *st, PyObject *obj)
{
    if (PyMemoryView_Check(obj)) {
        return xi_stream_picklebuffer(st, obj);
    }
    if (!PyUnicode_CheckExact(obj)) {
        return PyObject_CallOneArg(st->PickleBuffer, obj);
    }
    xi_str_export *e = PyObject_New(xi_str_export, st->StrExportType);
    if (e == NULL) {
        return NULL;
    }
    e->str = Py_NewRef(obj);
    PyObject *pb = PyObject_CallOneArg(st->PickleBuffer, (PyObject *)e);
    Py_DECREF(e);
    if (pb != NULL) {
        /* it refers to nothing but the export, which is in no cycle: untracked, it is
         * not among what gc.get_objects() lists */
        PyObject_GC_UnTrack(pb);
    }
    return pb;
}

/* Substitution: the leaves above, found at the top level of a value, inside exact
 * tuples down to XI_SUBST_DEPTH levels, or among the values of a call's keyword
 * arguments, are replaced by PickleBuffers, in copies of the tuples on the path to
 * each replacement (the value itself is never changed). Lists and dicts are not
 * entered: a copy of one would arrive as another object than the original that
 * something else in the value may also hold, where pickle keeps one object (the
 * kwargs dict is the call's own). A tuple is a value whose identity nobody changes;
 * as pickle would, a tuple met twice maps to one copy and a str or bytes met twice to
 * one PickleBuffer (the receiver rebuilds it once per occurrence). A tuple met again
 * on its own path (a cycle, through a list it holds) or a bytearray or memoryview met
 * twice (whose identity pickle keeps) stops the substitution: the value is then
 * pickled as it is. Python code may run meanwhile (a dict key's __hash__ when the
 * kwargs dict is copied) and change the containers (subst_container). */
#define XI_SUBST_DEPTH 3

typedef struct {
    xi_state *st;
    PyObject *memo;                    /* id -> (object, its replacement): the containers
                                          copied and the leaves replaced; NULL until the
                                          first */
    PyObject *path[XI_SUBST_DEPTH];    /* the containers being visited, borrowed */
    int npath;
    int stop;                          /* a cycle or a mutable leaf met twice */
    PyObject *kwargs;                  /* a call's keyword arguments (entered), or NULL */
} xi_subst;

/* The memo's entry for obj (borrowed), or NULL, with an exception set on failure. */
static PyObject *
subst_memo_get(xi_subst *s, PyObject *obj)
{
    if (s->memo == NULL) {
        return NULL;
    }
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL) {
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(s->memo, key);
    Py_DECREF(key);
    return entry;
}

static int
subst_memo_put(xi_subst *s, PyObject *obj, PyObject *replacement)
{
    if (s->memo == NULL && (s->memo = PyDict_New()) == NULL) {
        return -1;
    }
    PyObject *key = PyLong_FromVoidPtr(obj);
    PyObject *entry = key ? PyTuple_Pack(2, obj, replacement) : NULL;
    int rc = entry ? PyDict_SetItem(s->memo, key, entry) : -1;
    Py_XDECREF(key);
    Py_XDECREF(entry);
    return rc;
}

static PyObject *subst_visit(xi_subst *s, PyObject *obj, int depth);

/* A copy of the container with its items substituted, or obj itself when none was
 * (new reference; NULL with an exception set). Python code that runs meanwhile may
 * change a list or dict being read: each item is held while it is visited, a list's
 * size is checked at every step, a dict is walked by PyDict_Next, and the copy, made
 * at the first replaced item, is of the container as it is then. */
static PyObject *
subst_container(xi_subst *s, PyObject *obj, int depth)
{
    int is_tuple = PyTuple_CheckExact(obj), is_dict = PyDict_CheckExact(obj);
    PyObject *out = NULL; /* the copy: a dict, or a list (a tuple's items) */
    Py_ssize_t pos = 0;
    for (Py_ssize_t i = 0;; i++) {
        PyObject *key = NULL, *item, *k, *v;
        if (is_dict) {
            if (!PyDict_Next(obj, &pos, &k, &v)) {
                break;
            }
            key = Py_NewRef(k);
            item = Py_NewRef(v);
        }
        else if (i < (is_tuple ? PyTuple_GET_SIZE(obj) : PyList_GET_SIZE(obj))) {
            item = Py_NewRef(is_tuple ? PyTuple_GET_ITEM(obj, i) : PyList_GET_ITEM(obj, i));
        }
        else {
            break;
        }
        PyObject *r = subst_visit(s, item, depth + 1);
        int rc = r == NULL ? -1 : 0;
        if (rc == 0 && !s->stop && (r != item || out != NULL)) {
            if (out == NULL) {
                /* the items before this one, as they are now */
                if (is_dict) {
                    out = PyDict_Copy(obj);
                }
                else if (!is_tuple) {
                    out = PyList_GetSlice(obj, 0, i);
                }
                else {
                    PyObject *head = PyTuple_GetSlice(obj, 0, i);
                    out = head ? PySequence_List(head) : NULL;
                    Py_XDECREF(head);
                }
            }
            rc = out == NULL ? -1
                 : is_dict   ? (r != item ? PyDict_SetItem(out, key, r) : 0)
                             : PyList_Append(out, r);
        }
        Py_XDECREF(key);
        Py_DECREF(item);
        Py_XDECREF(r);
        if (rc < 0) {
            Py_XDECREF(out);
            return NULL;
        }
        if (s->stop) {
            Py_XDECREF(out);
            return Py_NewRef(obj);
        }
    }
    if (out == NULL) {
        return Py_NewRef(obj);
    }
    if (is_tuple) {
        Py_SETREF(out, PyList_AsTuple(out));
    }
    return out;
}

/* obj, or what replaces it (new reference; NULL with an exception set). Once s->stop
 * is set, what it returns does not matter. */
static PyObject *
subst_visit(xi_subst *s, PyObject *obj, int depth)
{
    int leaf = is_oob_leaf(obj);
    if (!leaf && !PyTuple_CheckExact(obj) && !(s->kwargs == obj && depth == 0)) {
        return Py_NewRef(obj);
    }
    /* a container just below the last level is not entered, but is looked up: it may be
     * one on the path or one already copied */
    for (int i = 0; i < s->npath; i++) {
        if (s->path[i] == obj) {
            s->stop = 1; /* a cycle */
            return Py_NewRef(obj);
        }
    }
    PyObject *entry = subst_memo_get(s, obj);
    if (entry != NULL) {
        if (PyByteArray_CheckExact(obj) || PyMemoryView_Check(obj)) {
            s->stop = 1; /* two references to one mutable buffer */
            return Py_NewRef(obj);
        }
        return Py_NewRef(PyTuple_GET_ITEM(entry, 1));
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *r;
    if (leaf) {
        r = oob_picklebuffer(s->st, obj);
    }
    else if (depth >= XI_SUBST_DEPTH) {
        return Py_NewRef(obj);
    }
    else {
        s->path[s->npath++] = obj;
        r = subst_container(s, obj, depth);
        s->npath--;
    }
    if (r != NULL && r != obj && !s->stop && subst_memo_put(s, obj, r) < 0) {
        Py_CLEAR(r);
    }
    return r;
}

/* Substitutes the values (a call's args tuple and kwargs dict, which may be NULL) into
 * out[] (new references), each value itself when the substitution stopped; `kwargs`
 * is the one of them that is a call's keyword arguments, or NULL. 0, or -1 with an
 * exception set. */
static int
substitute(xi_state *st, PyObject *const *values, PyObject **out, int n, PyObject *kwargs)
{
    xi_subst s = {.st = st, .kwargs = kwargs};
    int i, rc = 0;
    for (i = 0; i < n; i++) {
        out[i] = NULL;
    }
    for (i = 0; i < n && !s.stop; i++) {
        if (values[i] != NULL && (out[i] = subst_visit(&s, values[i], 0)) == NULL) {
            rc = -1;
            break;
        }
    }
    if (rc < 0 || s.stop) {
        for (i = 0; i < n; i++) {
            Py_CLEAR(out[i]);
            if (rc == 0 && values[i] != NULL) {
                out[i] = Py_NewRef(values[i]);
            }
        }
    }
    Py_XDECREF(s.memo);
    return rc;
}

static PyObject *
call_dumps(xi_state *st, PyObject *dumps, PyObject *obj, PyObject *callback)
{
    PyObject *argv[3] = {obj, st->protocol, callback};
    return PyObject_Vectorcall(dumps, argv, 1, callback ? st->kw_dumps_cb : st->kw_dumps);
}

/* Whether the error being raised came from outside: Ctrl-C, interrupt(), exit, or
 * memory running out (never to be replaced by another error). */
static int
interrupted_or_no_memory(void)
{
    return PyErr_ExceptionMatches(PyExc_MemoryError) ||
           !PyErr_ExceptionMatches(PyExc_Exception);
}

/* Replaces the error being raised by helper(error[, extra]) of extrainterpreters._errors,
 * an exception raised from it. Not an interruption or MemoryError, and not when the
 * helper fails: then the error stays as it is, unless the helper was interrupted or ran
 * out of memory (Ctrl-C, exit or MemoryError goes out, the error as its context).
 * 1 when replaced, 0 otherwise. */
static int
replace_error(const char *helper, const char *extra)
{
    if (interrupted_or_no_memory()) {
        return 0;
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *errors = PyImport_ImportModule("extrainterpreters._errors");
    PyObject *replaced = errors == NULL  ? NULL
                         : extra == NULL ? PyObject_CallMethod(errors, helper, "O", exc)
                                         : PyObject_CallMethod(errors, helper, "Os", exc, extra);
    Py_XDECREF(errors);
    if (replaced == NULL && interrupted_or_no_memory()) {
        PyObject *outside = PyErr_GetRaisedException();
        PyException_SetContext(outside, exc); /* steals exc */
        PyErr_SetRaisedException(outside);
        return 0;
    }
    if (replaced == NULL || !PyExceptionInstance_Check(replaced)) {
        Py_XDECREF(replaced);
        PyErr_Clear();
        PyErr_SetRaisedException(exc);
        return 0;
    }
    Py_DECREF(exc);
    PyErr_SetRaisedException(replaced);
    return 1;
}

int
xi_replace_unpickling_error(void)
{
    return replace_error("not_unpickled", NULL);
}

/* Whether a stream may name something of __main__ (which differs in every interpreter),
 * of a module that crosses by value (byvalue.h), or hold a multiprocessing proxy: then
 * _byvalue's pickler (cloudpickle) pickles it. */
static int
needs_by_value(xi_state *st, PyObject *stream)
{
    const char *p = PyBytes_AS_STRING(stream);
    size_t n = (size_t)PyBytes_GET_SIZE(stream);
    /* "RebuildProxy": a multiprocessing proxy, which _byvalue's pickler sends with its
     * key (_mp_proxies.py) */
    return memmem(p, n, "__main__", 8) != NULL || memmem(p, n, "RebuildProxy", 12) != NULL ||
           xi_byvalue_in_stream(st, p, n);
}

/* Whether, after the C pickler raised first_error, the error cloudpickle raised (the
 * one set now) is the one to report: when the C pickler failed only to find an object
 * by name (a lambda, a local or __main__ function: pickle.PicklingError, or
 * AttributeError on 3.12), cloudpickle pickled it by value and names what inside it
 * cannot be pickled. Not when cloudpickle itself is missing. */
static int
by_value_names_culprit(xi_state *st, PyObject *first_error)
{
    (void)st;
    if (!PyErr_Occurred()) {
        return 0;
    }
    if (interrupted_or_no_memory()) {
        return 1; /* Ctrl-C, exit or no memory: that goes out, not a pickling error */
    }
    if (PyErr_ExceptionMatches(PyExc_ImportError)) {
        return 0;
    }
    if (PyObject_TypeCheck(first_error, (PyTypeObject *)PyExc_AttributeError)) {
        return 1;
    }
    PyObject *current = PyErr_GetRaisedException();
    PyObject *pickling_error = import_attr("pickle", "PicklingError");
    if (pickling_error == NULL && interrupted_or_no_memory()) {
        Py_DECREF(current);
        return 1;
    }
    int rc = pickling_error ? PyObject_IsInstance(first_error, pickling_error) : 0;
    Py_XDECREF(pickling_error);
    PyErr_Clear();
    PyErr_SetRaisedException(current);
    return rc == 1;
}

/* Pickles obj: the C pickler when it can name everything (and names nothing of
 * __main__, which differs in every interpreter), cloudpickle otherwise. Out-of-band
 * buffers are appended to `buffers` when it is not NULL. New reference to the stream,
 * or NULL with the pickler's exception set. */
static PyObject *
pickle_value(xi_state *st, PyObject *obj, PyObject *buffers, int *by_value)
{
    PyObject *callback = NULL, *stream = NULL, *first_error = NULL;
    if (by_value != NULL) {
        *by_value = 0;
    }
    if (xi_wire_load_pickle(st) < 0) {
        return NULL;
    }
    if (buffers != NULL && (callback = PyObject_GetAttrString(buffers, "append")) == NULL) {
        return NULL;
    }
    if (xi_byvalue_sync(st) < 0) {
        goto done;
    }
    stream = call_dumps(st, st->dumps, obj, callback);
    if (stream != NULL && !needs_by_value(st, stream)) {
        goto done;
    }
    if (stream == NULL) {
        if (interrupted_or_no_memory()) {
            goto done;
        }
        first_error = PyErr_GetRaisedException();
    }
    Py_CLEAR(stream);
    if (by_value != NULL) {
        *by_value = 1;
    }
    if (buffers != NULL && PyList_SetSlice(buffers, 0, PY_SSIZE_T_MAX, NULL) < 0) {
        goto done;
    }
    PyObject *cp = get_cloudpickle(st);
    if (cp != NULL) {
        stream = call_dumps(st, cp, obj, callback);
    }
    if (stream == NULL && first_error != NULL && !by_value_names_culprit(st, first_error)) {
        /* the C pickler's message is the clearer one */
        PyErr_Clear();
        PyErr_SetRaisedException(first_error);
        first_error = NULL;
    }
done:
    Py_XDECREF(first_error);
    Py_XDECREF(callback);
    return stream;
}

/* Pickles a payload into pieces (stream.h): this interpreter's pickler when it can
 * name everything (and names nothing of __main__, which differs in every interpreter),
 * cloudpickle otherwise. *chunks, the stream's pieces, and *oob, its out-of-band
 * buffers, are new lists. 0, or -1 with the pickler's exception set. */
static int
pickle_pieces(xi_state *st, PyObject *obj, PyObject **chunks, PyObject **oob)
{
    if (xi_wire_load_pickle(st) < 0 || xi_byvalue_sync(st) < 0) {
        return -1;
    }
    if (xi_stream_pickle(st, obj, chunks, oob) == 0) {
        return 0;
    }
    if (interrupted_or_no_memory()) {
        return -1;
    }
    PyObject *first_error = NULL;
    if (PyErr_ExceptionMatches(st->MainReference)) {
        PyErr_Clear();
    }
    else {
        first_error = PyErr_GetRaisedException();
    }
    int rc = get_cloudpickle(st) == NULL ? -1 : xi_stream_pickle_by_value(st, obj, chunks, oob);
    if (rc < 0 && first_error != NULL && !by_value_names_culprit(st, first_error)) {
        /* the C pickler's message is the clearer one */
        PyErr_Clear();
        PyErr_SetRaisedException(first_error);
        first_error = NULL;
    }
    Py_XDECREF(first_error);
    return rc;
}

/* An array.array's typecode (not its buffer format: 'u' exports as 'w'). */
static int
array_typecode(PyObject *array, char *out, size_t size)
{
    PyObject *tc = PyObject_GetAttrString(array, "typecode");
    const char *s = tc && PyUnicode_Check(tc) ? PyUnicode_AsUTF8(tc) : NULL;
    int ok = s != NULL && strlen(s) < size;
    if (ok) {
        strcpy(out, s);
    }
    Py_XDECREF(tc);
    PyErr_Clear();
    return ok ? 0 : -1;
}

/* Describes one out-of-band buffer from the export `v` (held by the packet). */
static void
fill_segment(xi_state *st, xi_seg *seg, const Py_buffer *v)
{
    memset(seg, 0, sizeof(*seg));
    seg->ptr = v->buf;
    seg->len = v->len;
    seg->readonly = (uint8_t)(v->readonly != 0);
    if (v->obj != NULL && Py_IS_TYPE(v->obj, st->StrExportType)) {
        PyObject *s = ((xi_str_export *)v->obj)->str;
        seg->kind = XI_SEG_STR;
        seg->readonly = 1;
        seg->format[0] = PyUnicode_IS_ASCII(s)                    ? 'a'
                         : PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND ? '1'
                         : PyUnicode_KIND(s) == PyUnicode_2BYTE_KIND ? '2'
                                                                     : '4';
    }
    else if (v->obj != NULL && PyBytes_CheckExact(v->obj)) {
        seg->kind = XI_SEG_BYTES;
    }
    else if (v->obj != NULL && PyByteArray_CheckExact(v->obj)) {
        seg->kind = XI_SEG_BYTEARRAY;
    }
    else if (v->obj != NULL && PyMemoryView_Check(v->obj)) {
        seg->kind = XI_SEG_MEMORYVIEW;
        const char *fmt = v->format ? v->format : "B";
        if ((strcmp(fmt, "B") != 0 || v->ndim != 1) && v->ndim >= 1 &&
            v->ndim <= XI_MV_MAXDIM && strlen(fmt) < sizeof(seg->format)) {
            seg->ndim = (uint8_t)v->ndim;
            strcpy(seg->format, fmt);
            for (int i = 0; i < v->ndim; i++) {
                seg->shape[i] = v->shape[i];
            }
        }
    }
    else if (v->obj != NULL && strcmp(Py_TYPE(v->obj)->tp_name, "array.array") == 0 &&
             array_typecode(v->obj, seg->format, sizeof(seg->format)) == 0) {
        seg->kind = XI_SEG_ARRAY;
    }
    else {
        seg->kind = XI_SEG_OTHER;
    }
}

/* Values that marshal serializes faster than pickle, exactly (exact builtin types, a
 * little nesting). */
static int
is_simple(PyObject *obj, int depth)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (obj == Py_None || tp == &PyBool_Type || tp == &PyLong_Type ||
        tp == &PyFloat_Type) {
        return 1;
    }
    if (tp == &PyUnicode_Type) {
        /* a large one travels out of band, which marshal cannot do */
        return str_storage(obj) < XI_OOB_MIN;
    }
    if (tp == &PyBytes_Type) {
        return PyBytes_GET_SIZE(obj) < XI_OOB_MIN;
    }
    if (depth >= 2) {
        return 0;
    }
    if (tp == &PyTuple_Type || tp == &PyList_Type) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
        if (n > 32) {
            return 0;
        }
        PyObject **items = PySequence_Fast_ITEMS(obj);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!is_simple(items[i], depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    if (tp == &PyDict_Type) {
        if (PyDict_GET_SIZE(obj) > 32) {
            return 0;
        }
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(obj, &pos, &key, &value)) {
            if (!is_simple(key, depth + 1) || !is_simple(value, depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

/* Encodes `obj` (already substituted) into a borrowed packet: marshal for simple
 * values, pickle otherwise. */
static int
encode(xi_state *st, PyObject *obj, int simple, xi_packet *pkt)
{
    PyObject *chunks = NULL, *buffers = NULL, *stream = NULL;
    if (simple) {
        stream = PyMarshal_WriteObjectToString(obj, Py_MARSHAL_VERSION);
        if (stream == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
            /* beyond marshal's sizes (an int of billions of digits): pickle it */
            PyErr_Clear();
            simple = 0;
        }
        else if (stream == NULL) {
            return -1;
        }
        else {
            pkt->marshal = 1;
        }
    }
    if (!simple) {
        if (pickle_pieces(st, obj, &chunks, &buffers) < 0) {
            return -1;
        }
        if (PyList_GET_SIZE(chunks) == 1 && PyBytes_CheckExact(PyList_GET_ITEM(chunks, 0))) {
            stream = Py_NewRef(PyList_GET_ITEM(chunks, 0)); /* the stream in one piece */
            Py_CLEAR(chunks);
        }
        if (PyList_GET_SIZE(buffers) == 0) {
            Py_CLEAR(buffers);
        }
        pkt->marshal = 0;
    }
    Py_ssize_t n = buffers ? PyList_GET_SIZE(buffers) : 0;
    Py_ssize_t m = chunks ? PyList_GET_SIZE(chunks) : 0;
    xi_seg *segs = NULL, *pieces = NULL;
    Py_buffer *views = NULL;
    Py_ssize_t nviews = 0, total = 0;
    if (n + m > 0) {
        /* One export per buffer and per piece, held until the packet is released: the
         * memory stays put even if a PickleBuffer is released or its owner resized
         * meanwhile. */
        segs = PyMem_RawCalloc((size_t)(n + m), sizeof(xi_seg) + sizeof(Py_buffer));
        if (segs == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        pieces = segs + n;
        views = (Py_buffer *)(segs + n + m);
        for (Py_ssize_t i = 0; i < n; i++, nviews++) {
            if (PyObject_GetBuffer(PyList_GET_ITEM(buffers, i), &views[i], PyBUF_FULL_RO) < 0) {
                goto fail;
            }
            if (!PyBuffer_IsContiguous(&views[i], 'C')) {
                PyBuffer_Release(&views[i]);
                PyErr_SetString(PyExc_BufferError, "a non-contiguous out-of-band buffer");
                goto fail;
            }
            fill_segment(st, &segs[i], &views[i]);
        }
        for (Py_ssize_t i = 0; i < m; i++, nviews++) {
            Py_buffer *v = &views[n + i];
            if (PyObject_GetBuffer(PyList_GET_ITEM(chunks, i), v, PyBUF_SIMPLE) < 0) {
                goto fail;
            }
            pieces[i] = (xi_seg){.ptr = v->buf, .len = v->len, .kind = XI_SEG_PIECE,
                                 .readonly = (uint8_t)(v->readonly != 0)};
            total += v->len;
        }
    }
    /* keep: (stream or pieces, buffers or None, callable stream or None) */
    PyObject *keep = PyTuple_New(3);
    if (keep == NULL) {
        goto fail;
    }
    PyTuple_SET_ITEM(keep, 0, stream ? stream : chunks);
    PyTuple_SET_ITEM(keep, 1, buffers ? buffers : Py_NewRef(Py_None));
    PyTuple_SET_ITEM(keep, 2, Py_NewRef(Py_None));
    pkt->kind = XI_PKT_VALUE;
    pkt->data = stream ? PyBytes_AS_STRING(stream) : NULL;
    pkt->size = stream ? PyBytes_GET_SIZE(stream) : total;
    pkt->npieces = m;
    pkt->pieces = m ? pieces : NULL;
    pkt->nsegs = n;
    pkt->segs = n ? segs : NULL;
    pkt->views = views;
    pkt->block = segs;
    pkt->keep = keep;
    pkt->store = XI_STORE_BORROWED;
    return 0;
fail:
    for (Py_ssize_t i = 0; i < nviews; i++) {
        PyBuffer_Release(&views[i]);
    }
    PyMem_RawFree(segs);
    Py_XDECREF(stream);
    Py_XDECREF(chunks);
    Py_XDECREF(buffers);
    return -1;
}

static int
set_not_shareable(xi_state *st, PyObject *culprit)
{
    PyObject *cause = PyErr_GetRaisedException();
    PyObject *msg = PyUnicode_FromFormat(
        "%s object cannot be shared with another interpreter: %S",
        Py_TYPE(culprit)->tp_name, cause ? cause : Py_None);
    if (msg == NULL) {
        Py_XDECREF(cause);
        return -1;
    }
    /* the unpicklable object inside culprit, named (Python code: error path only) */
    PyObject *helpers = PyImport_ImportModule("extrainterpreters._errors");
    PyObject *better = helpers ? PyObject_CallMethod(helpers, "not_shareable_message", "OOO",
                                                     culprit, msg, cause ? cause : Py_None)
                               : NULL;
    Py_XDECREF(helpers);
    if (better != NULL && PyUnicode_Check(better)) {
        Py_SETREF(msg, better);
    }
    else {
        Py_XDECREF(better);
        if (PyErr_Occurred() && interrupted_or_no_memory()) {
            /* out of memory, or interrupted (KeyboardInterrupt): that is raised */
            Py_DECREF(msg);
            Py_XDECREF(cause);
            return -1;
        }
        PyErr_Clear();
    }
    PyObject *exc = PyObject_CallOneArg(st->NotShareableError, msg);
    Py_DECREF(msg);
    if (exc == NULL) {
        Py_XDECREF(cause);
        return -1;
    }
    PyException_SetCause(exc, cause); /* steals */
    PyErr_SetRaisedException(exc);
    return -1;
}

/* On a failed encode of several values, finds the first one that fails alone. */
static PyObject *
find_culprit(xi_state *st, PyObject *const *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = pickle_value(st, items[i], NULL, NULL);
        if (s == NULL) {
            PyErr_Clear();
            return items[i];
        }
        Py_DECREF(s);
    }
    return NULL;
}

static int
is_serialization_error(void)
{
    /* Errors of the interpreter itself are passed through unchanged. */
    return !(PyErr_ExceptionMatches(PyExc_MemoryError) ||
             PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
             PyErr_ExceptionMatches(PyExc_SystemExit));
}

static int
encode_value(xi_state *st, PyObject *obj, xi_packet *pkt)
{
    if (is_simple(obj, 0)) {
        return encode(st, obj, 1, pkt);
    }
    PyObject *v = NULL;
    if (xi_wire_load_pickle(st) < 0) {
        return -1;
    }
    /* a failed substitution (a released memoryview) fails as the encoding would */
    int rc = substitute(st, &obj, &v, 1, NULL);
    if (rc == 0) {
        rc = encode(st, v, 0, pkt);
        Py_DECREF(v);
    }
    if (rc < 0 && is_serialization_error()) {
        return set_not_shareable(st, obj);
    }
    return rc;
}

/* Callables that are found by name (module-level functions, classes, builtins) travel
 * as their (module, qualname), resolved once per receiving interpreter, the way pickle
 * names them but without a pickler on either side. */
static int
func_nameable_kind(PyObject *func)
{
    if (PyFunction_Check(func) || PyType_Check(func)) {
        return 1;
    }
    if (PyCFunction_Check(func)) {
        PyObject *self = PyCFunction_GET_SELF(func);
        return self == NULL || PyModule_Check(self);
    }
    return 0;
}

static PyObject *resolve_qualified(PyObject *module, PyObject *qualname);

/* The marshalled (module, qualname) of func when importing that name gives func back
 * (and the module is not __main__, which differs in every interpreter); NULL without an
 * exception otherwise. */
static PyObject *
name_of(xi_state *st, PyObject *func)
{
    PyObject *module = NULL, *qualname = NULL, *found = NULL, *pair = NULL, *stream = NULL;
    module = PyObject_GetAttrString(func, "__module__");
    qualname = module ? PyObject_GetAttrString(func, "__qualname__") : NULL;
    if (qualname == NULL || !PyUnicode_Check(module) || !PyUnicode_Check(qualname) ||
        PyUnicode_CompareWithASCIIString(module, "__main__") == 0 ||
        PyUnicode_FindChar(qualname, '<', 0, PyUnicode_GET_LENGTH(qualname), 1) != -1 ||
        xi_byvalue_has(st, module) != 0) {
        goto done;
    }
    PyObject *mod = PyImport_GetModule(module);
    if (mod == NULL) {
        goto done;
    }
    Py_DECREF(mod);
    found = resolve_qualified(module, qualname);
    if (found != func) {
        goto done;
    }
    pair = PyTuple_Pack(2, module, qualname);
    stream = pair ? PyMarshal_WriteObjectToString(pair, Py_MARSHAL_VERSION) : NULL;
done:
    PyErr_Clear();
    Py_XDECREF(module);
    Py_XDECREF(qualname);
    Py_XDECREF(found);
    Py_XDECREF(pair);
    return stream;
}

#define XI_FUNC_CACHE_MAX 1024

static PyObject *
encode_func(xi_state *st, PyObject *func, int *named)
{
    *named = 0;
    if (xi_byvalue_sync(st) < 0) {
        return NULL;
    }
    uint64_t version = st->byvalue_version;
    if (func_nameable_kind(func)) {
        /* keyed by identity (a class's metaclass may define __eq__), the value holding
         * the callable so that its address stays its own */
        PyObject *key = PyLong_FromVoidPtr(func);
        if (key == NULL) {
            return NULL;
        }
        PyObject *hit = PyDict_GetItemWithError(st->func_out, key);
        if (hit != NULL && PyTuple_GET_ITEM(hit, 0) == func) {
            Py_DECREF(key);
            *named = 1;
            return Py_NewRef(PyTuple_GET_ITEM(hit, 1));
        }
        PyObject *stream = PyErr_Occurred() ? NULL : name_of(st, func);
        PyObject *entry = stream ? PyTuple_Pack(2, func, stream) : NULL;
        if (entry != NULL && st->byvalue_version != version) {
            /* a module was learned meanwhile (name_of runs code): choose again */
            Py_DECREF(entry);
            Py_DECREF(key);
            Py_DECREF(stream);
            return encode_func(st, func, named);
        }
        if (entry != NULL) {
            if (PyDict_GET_SIZE(st->func_out) >= XI_FUNC_CACHE_MAX) {
                PyDict_Clear(st->func_out);
            }
            int rc = PyDict_SetItem(st->func_out, key, entry);
            Py_DECREF(entry);
            Py_DECREF(key);
            if (rc < 0) {
                Py_DECREF(stream);
                return NULL;
            }
            *named = 1;
            return stream;
        }
        Py_DECREF(key);
        Py_XDECREF(stream);
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return pickle_value(st, func, NULL, NULL);
}

static int
encode_call(xi_state *st, PyObject *func, PyObject *args, PyObject *kwargs,
            xi_packet *pkt)
{
    int rc = -1, named = 0;
    PyObject *a = NULL, *k = NULL, *payload = NULL, *fstream = NULL;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) == 0) {
        kwargs = NULL;
    }
    fstream = encode_func(st, func, &named);
    if (fstream == NULL) {
        if (is_serialization_error()) {
            set_not_shareable(st, func);
        }
        return -1;
    }
    if (is_simple(args, 0) && (kwargs == NULL || is_simple(kwargs, 0))) {
        if ((payload = PyTuple_Pack(2, args, kwargs ? kwargs : Py_None)) == NULL) {
            goto done;
        }
        rc = encode(st, payload, 1, pkt);
    }
    else {
        PyObject *parts[2] = {args, kwargs}, *subst[2];
        if (xi_wire_load_pickle(st) < 0) {
            goto done;
        }
        /* a failed substitution (a released memoryview) fails as the encoding would */
        if (substitute(st, parts, subst, 2, kwargs) == 0) {
            a = subst[0];
            k = subst[1];
            payload = PyTuple_Pack(2, a, k ? k : Py_None);
            rc = payload ? encode(st, payload, 0, pkt) : -1;
        }
    }
    if (rc == 0) {
        Py_SETREF(PyTuple_GET_ITEM(pkt->keep, 2), Py_NewRef(fstream));
        pkt->fdata = PyBytes_AS_STRING(fstream);
        pkt->fsize = PyBytes_GET_SIZE(fstream);
        pkt->fname = (uint8_t)named;
    }
    else if (is_serialization_error()) {
        PyObject *saved = PyErr_GetRaisedException();
        Py_ssize_t n = PyTuple_GET_SIZE(args) + (kwargs ? PyDict_GET_SIZE(kwargs) : 0);
        PyObject **items = PyMem_Malloc(sizeof(PyObject *) * (size_t)(n + 1));
        PyObject *culprit = NULL;
        if (items != NULL) {
            Py_ssize_t j = 0, pos = 0;
            PyObject *key, *value;
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
                items[j++] = PyTuple_GET_ITEM(args, i);
            }
            while (kwargs && PyDict_Next(kwargs, &pos, &key, &value)) {
                items[j++] = value;
            }
            culprit = find_culprit(st, items, j);
            PyMem_Free(items);
        }
        PyErr_SetRaisedException(saved);
        set_not_shareable(st, culprit ? culprit : args);
    }
done:
    Py_XDECREF(fstream);
    Py_XDECREF(a);
    Py_XDECREF(k);
    Py_XDECREF(payload);
    return rc;
}

static PyObject *
decode_func(xi_state *st, const xi_packet *pkt)
{
    if (!pkt->fname) {
        if (xi_wire_load_pickle(st) < 0) {
            return NULL;
        }
        PyObject *view = PyMemoryView_FromMemory((char *)pkt->fdata, pkt->fsize, PyBUF_READ);
        PyObject *func = view ? PyObject_CallOneArg(st->loads, view) : NULL;
        Py_XDECREF(view);
        return func;
    }
    PyObject *key = PyBytes_FromStringAndSize(pkt->fdata, pkt->fsize);
    if (key == NULL) {
        return NULL;
    }
    PyObject *func = PyDict_GetItemWithError(st->func_in, key);
    if (func != NULL) {
        Py_DECREF(key);
        return Py_NewRef(func);
    }
    PyObject *pair = PyErr_Occurred() ? NULL
                     : PyMarshal_ReadObjectFromString(pkt->fdata, pkt->fsize);
    if (pair != NULL && PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2 &&
        PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)) && PyUnicode_Check(PyTuple_GET_ITEM(pair, 1))) {
        func = resolve_qualified(PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
    }
    else if (pair != NULL) {
        PyErr_SetString(PyExc_SystemError, "malformed callable name");
    }
    Py_XDECREF(pair);
    if (func != NULL) {
        if (PyDict_GET_SIZE(st->func_in) >= XI_FUNC_CACHE_MAX) {
            PyDict_Clear(st->func_in);
        }
        if (PyDict_SetItem(st->func_in, key, func) < 0) {
            Py_CLEAR(func);
        }
    }
    Py_DECREF(key);
    return func;
}

PyObject *xi_decode(xi_state *st, const xi_packet *pkt);

int
xi_decode_call(xi_state *st, const xi_packet *pkt, PyObject **func, PyObject **args,
               PyObject **kwargs, uint8_t *what)
{
    uint8_t ignored;
    what = what ? what : &ignored;
    *what = XI_UNSHAREABLE_NONE;
    *func = *args = *kwargs = NULL;
    if (pkt->fdata == NULL) {
        PyErr_SetString(PyExc_SystemError, "malformed call packet");
        return -1;
    }
    /* the callable first, as the standard library: when both fail, it is named */
    if ((*func = decode_func(st, pkt)) == NULL) {
        *what = XI_UNSHAREABLE_FUNC;
        return -1;
    }
    PyObject *payload = xi_decode(st, pkt);
    if (payload == NULL) {
        Py_CLEAR(*func);
        *what = XI_UNSHAREABLE_ARGS;
        return -1;
    }
    if (!PyTuple_CheckExact(payload) || PyTuple_GET_SIZE(payload) != 2 ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(payload, 0)) ||
        (PyTuple_GET_ITEM(payload, 1) != Py_None &&
         !PyDict_CheckExact(PyTuple_GET_ITEM(payload, 1)))) {
        Py_DECREF(payload);
        Py_CLEAR(*func);
        PyErr_SetString(PyExc_SystemError, "malformed call payload");
        return -1;
    }
    PyObject *k = PyTuple_GET_ITEM(payload, 1);
    *args = Py_NewRef(PyTuple_GET_ITEM(payload, 0));
    *kwargs = k == Py_None ? NULL : Py_NewRef(k);
    Py_DECREF(payload);
    return 0;
}

/* Encoders run with a collector of the shared objects their streams name; a packet
 * keeps those references until it is released. */
int
xi_encode_value(xi_state *st, PyObject *obj, xi_packet *pkt)
{
    xi_refs refs = {0};
    xi_refs *previous = xi_refs_begin(&refs);
    xi_callctx_mask(); /* pickling may import: not where interrupt() may raise */
    int rc = encode_value(st, obj, pkt);
    xi_callctx_unmask();
    xi_refs_end(previous);
    if (rc < 0) {
        xi_refs_clear(&refs);
    }
    else {
        pkt->refs = refs;
    }
    return rc;
}

int
xi_encode_call(xi_state *st, PyObject *func, PyObject *args, PyObject *kwargs,
               xi_packet *pkt)
{
    xi_refs refs = {0};
    xi_refs *previous = xi_refs_begin(&refs);
    int rc = encode_call(st, func, args, kwargs, pkt);
    xi_refs_end(previous);
    if (rc < 0) {
        xi_refs_clear(&refs);
    }
    else {
        pkt->refs = refs;
    }
    return rc;
}

/* ---------------------------------------------------------------- exceptions */

static PyObject *
format_exception(xi_state *st, PyObject *exc)
{
    if (st->format_exc == NULL) {
        PyObject *tb = PyImport_ImportModule("traceback");
        if (tb == NULL) {
            return NULL;
        }
        st->format_exc = PyObject_GetAttrString(tb, "format_exception");
        Py_DECREF(tb);
        if (st->format_exc == NULL) {
            return NULL;
        }
    }
    PyObject *lines = PyObject_CallOneArg(st->format_exc, exc);
    if (lines == NULL) {
        return NULL;
    }
    PyObject *empty = PyUnicode_FromStringAndSize(NULL, 0);
    PyObject *text = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(lines);
    return text;
}

/* str(obj) or a fallback; never fails except on memory exhaustion. */
static PyObject *
safe_str(PyObject *obj, const char *fallback)
{
    PyObject *s = obj ? PyObject_Str(obj) : NULL;
    if (s == NULL) {
        PyErr_Clear();
        s = PyUnicode_FromString(fallback);
    }
    return s;
}

/* Plain pickle of obj, or None when it cannot be pickled. */
static PyObject *
pickle_or_none(xi_state *st, PyObject *obj)
{
    PyObject *s = call_dumps(st, st->dumps, obj, NULL);
    if (s == NULL) {
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    return s;
}

static void
own_stream(PyObject *stream, xi_packet *pkt)
{
    size_t n = (size_t)PyBytes_GET_SIZE(stream);
    char *block = PyMem_RawMalloc(n ? n : 1);
    memset(pkt, 0, sizeof(*pkt));
    pkt->kind = XI_PKT_EXCEPTION;
    pkt->store = XI_STORE_OWNED;
    pkt->block = block;
    if (block != NULL) {
        memcpy(block, PyBytes_AS_STRING(stream), n);
        pkt->data = block;
        pkt->size = (Py_ssize_t)n;
    }
    else {
        pkt->data = NULL;
        pkt->size = 0;
    }
}

PyObject *
xi_describe_exception(xi_state *st, PyObject *exc, int64_t interp_id)
{
    if (xi_wire_load_pickle(st) < 0) {
        return NULL;
    }
    PyObject *module = NULL, *qualname = NULL, *name = NULL, *msg = NULL;
    PyObject *formatted = NULL, *args = NULL, *state = NULL, *desc = NULL;
    PyTypeObject *tp = exc ? Py_TYPE(exc) : (PyTypeObject *)PyExc_SystemError;

    module = PyObject_GetAttrString((PyObject *)tp, "__module__");
    if (module == NULL || !PyUnicode_Check(module)) {
        PyErr_Clear();
        Py_XSETREF(module, PyUnicode_FromString("builtins"));
    }
    qualname = PyType_GetQualName(tp);
    if (qualname == NULL) {
        PyErr_Clear();
    }
    name = PyType_GetName(tp);
    if (name == NULL) {
        PyErr_Clear();
    }
    msg = safe_str(exc, "<str() of the exception failed>");
    formatted = exc ? format_exception(st, exc) : NULL;
    if (formatted == NULL) {
        PyErr_Clear();
        formatted = PyUnicode_FromString("");
    }
    PyObject *refused = NULL;
    if (exc != NULL) {
        /* an extension module refused this interpreter (maybe under a message of the
         * package that imported it): said so, with what to do */
        PyObject *helpers = PyImport_ImportModule("extrainterpreters._errors");
        refused = helpers ? PyObject_CallMethod(helpers, "refused_message", "O", exc) : NULL;
        Py_XDECREF(helpers);
        if (refused == NULL || !PyUnicode_Check(refused)) {
            PyErr_Clear();
            Py_CLEAR(refused);
        }
        else if (msg != NULL && PyUnicode_Contains(msg, refused) != 1) {
            PyErr_Clear();
            Py_SETREF(msg, Py_NewRef(refused));
        }
    }
    if (exc != NULL) {
        PyObject *a = PyObject_GetAttrString(exc, "args");
        if (a == NULL) {
            PyErr_Clear();
        }
        if (refused != NULL && msg != NULL && PyUnicode_Compare(msg, refused) == 0 &&
            PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_ImportError)) {
            /* the ImportError raised again in the caller says it too */
            Py_XSETREF(a, PyTuple_Pack(1, refused));
            if (a == NULL) {
                PyErr_Clear();
            }
        }
        args = pickle_or_none(st, a ? a : Py_None);
        Py_XDECREF(a);
        PyObject *d = PyObject_GenericGetDict(exc, NULL);
        if (d == NULL) {
            PyErr_Clear();
        }
        state = (d != NULL && PyDict_GET_SIZE(d) > 0) ? pickle_or_none(st, d)
                                                      : Py_NewRef(Py_None);
        Py_XDECREF(d);
    }
    if (module && qualname && name && msg && formatted) {
        desc = Py_BuildValue("(OOOOOOOL)", module, qualname, name, msg, formatted,
                             args ? args : Py_None, state ? state : Py_None,
                             (long long)interp_id);
    }
    Py_XDECREF(module);
    Py_XDECREF(qualname);
    Py_XDECREF(name);
    Py_XDECREF(msg);
    Py_XDECREF(formatted);
    Py_XDECREF(args);
    Py_XDECREF(state);
    Py_XDECREF(refused);
    return desc;
}

static void
encode_exception(xi_state *st, int64_t interp_id, xi_packet *pkt)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *desc = xi_describe_exception(st, exc, interp_id);
    PyObject *stream = desc ? call_dumps(st, st->dumps, desc, NULL) : NULL;
    if (stream == NULL) {
        PyErr_Clear();
        memset(pkt, 0, sizeof(*pkt));
        pkt->kind = XI_PKT_EXCEPTION; /* data NULL: "could not be described" */
    }
    else {
        own_stream(stream, pkt);
    }
    Py_XDECREF(exc);
    Py_XDECREF(desc);
    Py_XDECREF(stream);
    assert(!PyErr_Occurred());
}

void
xi_encode_exception(xi_state *st, int64_t interp_id, xi_packet *pkt)
{
    xi_refs refs = {0};
    xi_refs *previous = xi_refs_begin(&refs);
    encode_exception(st, interp_id, pkt);
    xi_refs_end(previous);
    pkt->refs = refs;
}

/* ---------------------------------------------------------------- decoding */

/* A new bytes (or bytearray) holding a copy of the segment. */
static PyObject *
bytes_from(const xi_seg *seg, int immutable)
{
    PyObject *o = immutable ? PyBytes_FromStringAndSize(NULL, seg->len)
                            : PyByteArray_FromStringAndSize(NULL, seg->len);
    if (o != NULL) {
        xi_copy_new(immutable ? PyBytes_AS_STRING(o) : PyByteArray_AS_STRING(o), seg->ptr,
                    (size_t)seg->len);
    }
    return o;
}

/* array.array(typecode) filled with the segment's bytes: one copy. */
static PyObject *
array_from_segment(const xi_seg *seg)
{
    PyObject *module = PyImport_ImportModule("array");
    PyObject *array = module ? PyObject_CallMethod(module, "array", "s", seg->format) : NULL;
    Py_XDECREF(module);
    if (array == NULL) {
        return NULL;
    }
    PyObject *view = PyMemoryView_FromMemory((char *)seg->ptr, seg->len, PyBUF_READ);
    PyObject *r = view ? PyObject_CallMethod(array, "frombytes", "O", view) : NULL;
    if (view != NULL) {
        /* nothing may keep a view of packet memory */
        PyObject *released = PyObject_CallMethod(view, "release", NULL);
        if (released == NULL) {
            Py_CLEAR(r);
        }
        Py_XDECREF(released);
        Py_DECREF(view);
    }
    if (r == NULL) {
        Py_DECREF(array);
        return NULL;
    }
    Py_DECREF(r);
    return array;
}

/* A new str holding a copy of a XI_SEG_STR segment: one copy of the storage, which the
 * sender's str had canonical, so the new str's is. */
static PyObject *
str_from(const xi_seg *seg)
{
    Py_ssize_t width;
    Py_UCS4 maxchar;
    switch (seg->format[0]) {
    case 'a':
        width = 1, maxchar = 0x7f;
        break;
    case '1':
        width = 1, maxchar = 0xff;
        break;
    case '2':
        width = 2, maxchar = 0xffff;
        break;
    case '4':
        width = 4, maxchar = 0x10ffff;
        break;
    default:
        width = 0, maxchar = 0;
    }
    if (width == 0 || seg->len < 0 || seg->len % width != 0) {
        PyErr_SetString(PyExc_SystemError, "malformed str segment");
        return NULL;
    }
    PyObject *s = PyUnicode_New(seg->len / width, maxchar);
    if (s != NULL && seg->len > 0) {
        xi_copy_new(PyUnicode_DATA(s), seg->ptr, (size_t)seg->len);
    }
    return s;
}

static PyObject *
segment_object(const xi_seg *seg)
{
    int writable;
    switch (seg->kind) {
    case XI_SEG_STR:
        return str_from(seg);
    case XI_SEG_BYTES:
        return bytes_from(seg, 1);
    case XI_SEG_BYTEARRAY:
        return bytes_from(seg, 0);
    case XI_SEG_OTHER:
        return bytes_from(seg, seg->readonly);
    case XI_SEG_MEMORYVIEW:
        writable = !seg->readonly;
        break;
    case XI_SEG_ARRAY:
        return array_from_segment(seg);
    default:
        PyErr_SetString(PyExc_SystemError, "malformed packet segment");
        return NULL;
    }
    PyObject *base = bytes_from(seg, !writable);
    if (base == NULL) {
        return NULL;
    }
    PyObject *mv = PyMemoryView_FromObject(base);
    Py_DECREF(base);
    if (mv == NULL || seg->ndim == 0) {
        return mv;
    }
    PyObject *shape = PyTuple_New(seg->ndim);
    if (shape == NULL) {
        Py_DECREF(mv);
        return NULL;
    }
    for (int i = 0; i < seg->ndim; i++) {
        PyObject *d = PyLong_FromSsize_t(seg->shape[i]);
        if (d == NULL) {
            Py_DECREF(shape);
            Py_DECREF(mv);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, i, d);
    }
    PyObject *cast = PyObject_CallMethod(mv, "cast", "sO", seg->format, shape);
    Py_DECREF(shape);
    if (cast == NULL) {
        /* a format memoryview.cast() does not know: the bytes arrive as a flat view */
        PyErr_Clear();
        return mv;
    }
    Py_DECREF(mv);
    return cast;
}

/* module.qualname, importing the module if needed. New reference or NULL with an
 * exception set. */
static PyObject *
resolve_qualified(PyObject *module, PyObject *qualname)
{
    PyObject *obj = PyImport_GetModule(module);
    if (obj == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        obj = PyImport_Import(module);
        if (obj == NULL) {
            return NULL;
        }
    }
    PyObject *dot = PyUnicode_FromString(".");
    PyObject *parts = dot ? PyUnicode_Split(qualname, dot, -1) : NULL;
    Py_XDECREF(dot);
    if (parts == NULL) {
        Py_DECREF(obj);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts) && obj != NULL; i++) {
        Py_SETREF(obj, PyObject_GetAttr(obj, PyList_GET_ITEM(parts, i)));
    }
    Py_DECREF(parts);
    return obj;
}

static PyObject *
resolve_exception_type(PyObject *module, PyObject *qualname)
{
    PyObject *obj = resolve_qualified(module, qualname);
    if (obj != NULL && !(PyType_Check(obj) &&
                         PyType_IsSubtype((PyTypeObject *)obj,
                                          (PyTypeObject *)PyExc_BaseException))) {
        Py_CLEAR(obj);
        PyErr_SetString(PyExc_TypeError, "not an exception class");
    }
    return obj;
}

/* The remote exception as an instance of the same class here, or NULL (no error set)
 * when that is not possible. */
static PyObject *
rebuild_exception(xi_state *st, PyObject *module, PyObject *qualname,
                  PyObject *args_pickle, PyObject *state_pickle)
{
    PyObject *cls = NULL, *args = NULL, *exc = NULL;
    if (!PyBytes_Check(args_pickle)) {
        return NULL;
    }
    if ((cls = resolve_exception_type(module, qualname)) == NULL) {
        goto fail;
    }
    if ((args = PyObject_CallOneArg(st->loads, args_pickle)) == NULL) {
        goto fail;
    }
    if (!PyTuple_Check(args)) {
        goto fail;
    }
    if ((exc = PyObject_Call(cls, args, NULL)) == NULL) {
        goto fail;
    }
    if (!PyExceptionInstance_Check(exc)) {
        Py_CLEAR(exc);
        goto fail;
    }
    if (PyBytes_Check(state_pickle)) {
        PyObject *state = PyObject_CallOneArg(st->loads, state_pickle);
        PyObject *d = state ? PyObject_GenericGetDict(exc, NULL) : NULL;
        if (d == NULL || !PyDict_Check(state) || PyDict_Update(d, state) < 0) {
            PyErr_Clear();
        }
        Py_XDECREF(d);
        Py_XDECREF(state);
    }
fail:
    PyErr_Clear();
    Py_XDECREF(cls);
    Py_XDECREF(args);
    return exc;
}

static PyObject *
make_namespace(xi_state *st, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *kw = Py_VaBuildValue(fmt, va);
    va_end(va);
    if (kw == NULL) {
        return NULL;
    }
    PyObject *empty = PyTuple_New(0);
    PyObject *ns = empty ? PyObject_Call(st->SimpleNamespace, empty, kw) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(kw);
    return ns;
}

/* Raises the exception a XI_PKT_EXCEPTION description stands for. */
void
xi_raise_described(xi_state *st, PyObject *desc)
{
    PyObject *module, *qualname, *name, *msg, *formatted, *args_pickle, *state_pickle;
    long long interp_id;
    if (!PyArg_ParseTuple(desc, "UUUUUOOL", &module, &qualname, &name, &msg, &formatted,
                          &args_pickle, &state_pickle, &interp_id)) {
        return;
    }
    PyObject *type_ns = make_namespace(st, "{sOsOsO}", "__name__", name, "__qualname__",
                                       qualname, "__module__", module);
    if (type_ns == NULL) {
        return;
    }
    /* as the standard library: formatted is one line, errdisplay the traceback; the
     * module is named unless it is builtins or __main__ */
    int plain = PyUnicode_CompareWithASCIIString(module, "builtins") == 0 ||
                PyUnicode_CompareWithASCIIString(module, "__main__") == 0;
    PyObject *line;
    if (PyUnicode_GET_LENGTH(msg) == 0) {
        line = plain ? Py_NewRef(qualname) : PyUnicode_FromFormat("%U.%U", module, qualname);
    }
    else {
        line = plain ? PyUnicode_FromFormat("%U: %U", qualname, msg)
                     : PyUnicode_FromFormat("%U.%U: %U", module, qualname, msg);
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(formatted);
    while (n > 0 && PyUnicode_READ_CHAR(formatted, n - 1) == '\n') {
        n--;
    }
    PyObject *errdisplay = PyUnicode_Substring(formatted, 0, n);
    PyObject *excinfo = NULL;
    if (line != NULL && errdisplay != NULL) {
        excinfo = make_namespace(st, "{sOsOsOsOsL}", "type", type_ns, "msg", msg,
                                 "formatted", line, "errdisplay", errdisplay,
                                 "interpreter", interp_id);
    }
    Py_XDECREF(line);
    Py_XDECREF(errdisplay);
    Py_DECREF(type_ns);
    if (excinfo == NULL) {
        return;
    }
    PyObject *cls = xi_execution_failed(st);
    PyObject *failed = cls ? PyObject_CallOneArg(cls, excinfo) : NULL;
    Py_DECREF(excinfo);
    if (failed == NULL) {
        return;
    }
    PyObject *exc = rebuild_exception(st, module, qualname, args_pickle, state_pickle);
    if (exc == NULL) {
        PyErr_SetRaisedException(failed);
        return;
    }
    PyException_SetCause(exc, failed); /* steals */
    PyErr_SetRaisedException(exc);
}

PyObject *
xi_decode(xi_state *st, const xi_packet *pkt)
{
    if (pkt->kind == XI_PKT_EXCEPTION && pkt->data == NULL) {
        PyObject *excinfo = make_namespace(
            st, "{sOsssOss}", "type", Py_None, "msg", "", "errdisplay", Py_None,
            "formatted", "the call failed and its exception could not be described");
        PyObject *cls = excinfo ? xi_execution_failed(st) : NULL;
        PyObject *failed = cls ? PyObject_CallOneArg(cls, excinfo) : NULL;
        Py_XDECREF(excinfo);
        if (failed != NULL) {
            PyErr_SetRaisedException(failed);
        }
        return NULL;
    }
    if (pkt->kind == XI_PKT_LOST) {
        PyErr_SetString(PyExc_MemoryError,
                        "this item was lost: the interpreter that put it ended and there "
                        "was no memory to copy it");
        return NULL;
    }
    if (pkt->marshal) {
        return PyMarshal_ReadObjectFromString(pkt->data, pkt->size);
    }
    if (xi_wire_load_pickle(st) < 0) {
        return NULL;
    }
    PyObject *buffers = NULL, *view = NULL, *value = NULL;
    if (pkt->nsegs > 0) {
        if ((buffers = PyList_New(pkt->nsegs)) == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < pkt->nsegs; i++) {
            PyObject *o = segment_object(&pkt->segs[i]);
            if (o == NULL) {
                goto done;
            }
            PyList_SET_ITEM(buffers, i, o);
        }
    }
    if (pkt->npieces > 0) {
        value = xi_stream_unpickle(st, pkt->pieces, pkt->npieces, buffers);
    }
    else {
        view = PyMemoryView_FromMemory((char *)pkt->data, pkt->size, PyBUF_READ);
        if (view == NULL) {
            goto done;
        }
        PyObject *argv[2] = {view, buffers};
        value = PyObject_Vectorcall(st->loads, argv, 1, buffers ? st->kw_loads : NULL);
    }
    if (value != NULL && pkt->kind == XI_PKT_EXCEPTION) {
        xi_raise_described(st, value);
        Py_CLEAR(value);
        if (pkt->unshareable != XI_UNSHAREABLE_NONE) {
            replace_error("call_not_shareable",
                          pkt->unshareable == XI_UNSHAREABLE_FUNC ? "func" : "args");
        }
    }
done:
    Py_XDECREF(view);
    Py_XDECREF(buffers);
    return value;
}
