/* Modules that cross by value (see byvalue.h). */
#define _GNU_SOURCE 1 /* memmem */
#include "byvalue.h"
#include "compat.h"

#include <string.h>

/* at most this many names are kept: each is searched for in streams that name a module
 * of the list (a process that fails to import this many has a problem elsewhere) */
#define XI_BYVALUE_MAX 256

/* Never held while Python code runs or memory is allocated (an allocator hook may take
 * a GIL). Made again in a forked child, whose copy may be held by a thread that does
 * not exist there. */
static xi_mutex xi_byvalue_mu = PTHREAD_MUTEX_INITIALIZER;
static char *xi_byvalue_names[XI_BYVALUE_MAX]; /* guarded by xi_byvalue_mu */
static size_t xi_byvalue_count;               /* guarded by xi_byvalue_mu */
static _Atomic uint64_t xi_byvalue_version;    /* written under xi_byvalue_mu */
static pthread_once_t xi_byvalue_once = PTHREAD_ONCE_INIT;

static void
after_fork_in_child(void)
{
    pthread_mutex_init(&xi_byvalue_mu, NULL);
}

static void
register_at_fork(void)
{
    (void)pthread_atfork(NULL, NULL, after_fork_in_child);
}

int
xi_byvalue_learn(PyObject *name)
{
    Py_ssize_t len;
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &len) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "a module name must be a str");
        }
        return -1;
    }
    if (len == 0 || (size_t)len != strlen(s)) {
        PyErr_SetString(PyExc_ValueError, "not a module name");
        return -1;
    }
    char *copy = PyMem_RawMalloc((size_t)len + 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, s, (size_t)len + 1);
    pthread_once(&xi_byvalue_once, register_at_fork);
    int rc = 0;
    xi_lock(&xi_byvalue_mu);
    int known = 0;
    for (size_t i = 0; i < xi_byvalue_count && !known; i++) {
        known = strcmp(xi_byvalue_names[i], copy) == 0;
    }
    if (!known && xi_byvalue_count < XI_BYVALUE_MAX) {
        xi_byvalue_names[xi_byvalue_count++] = copy;
        copy = NULL;
        rc = 1;
        atomic_fetch_add(&xi_byvalue_version, 1);
    }
    else if (!known) {
        rc = -1;
    }
    xi_unlock(&xi_byvalue_mu);
    PyMem_RawFree(copy);
    if (rc < 0) {
        PyErr_Format(PyExc_RuntimeError, "cannot record more than %d modules that cross by "
                     "value", XI_BYVALUE_MAX);
    }
    return rc;
}

/* The names as one block of NUL-terminated strings (raw memory, freed by the caller),
 * their number and the version they are of. NULL with an exception set on failure. */
static char *
copy_names(size_t *count, uint64_t *version)
{
    for (;;) {
        xi_lock(&xi_byvalue_mu);
        uint64_t seen = atomic_load(&xi_byvalue_version);
        size_t total = 1;
        for (size_t i = 0; i < xi_byvalue_count; i++) {
            total += strlen(xi_byvalue_names[i]) + 1;
        }
        xi_unlock(&xi_byvalue_mu);
        char *buf = PyMem_RawMalloc(total); /* not under the lock */
        if (buf == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        xi_lock(&xi_byvalue_mu);
        int same = atomic_load(&xi_byvalue_version) == seen;
        if (same) {
            char *p = buf;
            for (size_t i = 0; i < xi_byvalue_count; i++) {
                size_t len = strlen(xi_byvalue_names[i]) + 1;
                memcpy(p, xi_byvalue_names[i], len);
                p += len;
            }
            *count = xi_byvalue_count;
            *version = seen;
        }
        xi_unlock(&xi_byvalue_mu);
        if (same) {
            return buf;
        }
        PyMem_RawFree(buf); /* a name was learned meanwhile: again */
    }
}

int
xi_byvalue_sync(xi_state *st)
{
    if (atomic_load(&xi_byvalue_version) == st->byvalue_version) {
        return 0;
    }
    size_t n = 0;
    uint64_t version = 0;
    char *buf = copy_names(&n, &version);
    if (buf == NULL) {
        return -1;
    }
    PyObject *names = PyTuple_New((Py_ssize_t)n);
    const char *p = buf;
    for (size_t i = 0; names != NULL && i < n; i++) {
        PyObject *s = PyUnicode_FromString(p);
        if (s == NULL) {
            Py_CLEAR(names);
            break;
        }
        PyTuple_SET_ITEM(names, (Py_ssize_t)i, s);
        p += strlen(p) + 1;
    }
    PyMem_RawFree(buf);
    PyObject *set = names ? PyFrozenSet_New(names) : NULL;
    if (set == NULL) {
        Py_XDECREF(names);
        return -1;
    }
    /* callables cached as named may now cross by value */
    if (st->func_out != NULL) {
        PyDict_Clear(st->func_out);
    }
    PyObject *old_set = st->byvalue, *old_names = st->byvalue_names;
    st->byvalue = set;
    st->byvalue_names = names;
    st->byvalue_version = version;
    Py_XDECREF(old_set);
    Py_XDECREF(old_names);
    return 1;
}

int
xi_byvalue_has(xi_state *st, PyObject *module)
{
    if (st->byvalue == NULL || !PyUnicode_Check(module)) {
        return 0;
    }
    /* held: a str subclass's __eq__ or __hash__ may run code that replaces the copy */
    PyObject *set = Py_NewRef(st->byvalue);
    int rc = PySet_Contains(set, module);
    /* a package it is part of: "a.b.c" -> "a.b", "a" */
    Py_ssize_t end = PyUnicode_GET_LENGTH(module);
    while (rc == 0 && (end = PyUnicode_FindChar(module, '.', 0, end, -1)) > 0) {
        PyObject *parent = PyUnicode_Substring(module, 0, end);
        rc = parent ? PySet_Contains(set, parent) : -1;
        Py_XDECREF(parent);
    }
    if (rc == 0 && end == -2) {
        rc = -1;
    }
    Py_DECREF(set);
    return rc;
}

/* Whether the `len` bytes of `name` at `at` in a stream are (the start of) a string
 * of the pickle: after SHORT_BINUNICODE and its length, or BINUNICODE and its length,
 * the whole string or the part before a dot. */
static int
names_at(const unsigned char *start, const unsigned char *end, const unsigned char *at,
         size_t len)
{
    size_t slen;
    if (at - start >= 2 && at[-2] == 0x8c) { /* SHORT_BINUNICODE */
        slen = at[-1];
    }
    else if (at - start >= 5 && at[-5] == 0x58) { /* BINUNICODE */
        slen = (size_t)at[-4] | (size_t)at[-3] << 8 | (size_t)at[-2] << 16 |
               (size_t)at[-1] << 24;
    }
    else {
        return 0;
    }
    return slen == len || (slen > len && at + len < end && at[len] == '.');
}

int
xi_byvalue_in_stream(xi_state *st, const char *p, size_t n)
{
    if (st->byvalue_names == NULL) {
        return 0;
    }
    PyObject *names = Py_NewRef(st->byvalue_names);
    const unsigned char *start = (const unsigned char *)p, *end = start + n;
    int found = 0;
    for (Py_ssize_t i = 0; !found && i < PyTuple_GET_SIZE(names); i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(names, i), &len);
        if (s == NULL) {
            PyErr_Clear();
            found = 1; /* cannot tell: by value is always right */
            break;
        }
        const unsigned char *at = start;
        while (!found && at < end &&
               (at = memmem(at, (size_t)(end - at), s, (size_t)len)) != NULL) {
            found = names_at(start, end, at, (size_t)len);
            at++;
        }
    }
    Py_DECREF(names);
    return found;
}

PyObject *
xi_mod_by_value_modules(PyObject *module, PyObject *Py_UNUSED(unused))
{
    xi_state *st = xi_state_of(module);
    if (xi_byvalue_sync(st) < 0) {
        return NULL;
    }
    return st->byvalue ? Py_NewRef(st->byvalue) : PyFrozenSet_New(NULL);
}

PyObject *
xi_mod_learn_by_value(PyObject *Py_UNUSED(module), PyObject *name)
{
    int rc = xi_byvalue_learn(name);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}
