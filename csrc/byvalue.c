/* Modules that cross by value (see byvalue.h). */
#define _GNU_SOURCE 1 /* memmem */
#include "byvalue.h"
#include "compat.h"

#include <string.h>

/* at most this many names are kept: each is searched for in streams that name a module
 * of the list (a process that fails to import this many has a problem elsewhere) */
#define XI_BYVALUE_MAX 256

static xi_mutex xi_byvalue_mu = PTHREAD_MUTEX_INITIALIZER;
static char *xi_byvalue_names[XI_BYVALUE_MAX]; /* guarded by xi_byvalue_mu */
static size_t xi_byvalue_count;               /* guarded by xi_byvalue_mu */
static _Atomic uint64_t xi_byvalue_version;    /* written under xi_byvalue_mu */

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
    int added = 0;
    xi_lock(&xi_byvalue_mu);
    int known = 0;
    for (size_t i = 0; i < xi_byvalue_count && !known; i++) {
        known = strcmp(xi_byvalue_names[i], copy) == 0;
    }
    if (!known && xi_byvalue_count < XI_BYVALUE_MAX) {
        xi_byvalue_names[xi_byvalue_count++] = copy;
        copy = NULL;
        added = 1;
        atomic_fetch_add(&xi_byvalue_version, 1);
    }
    xi_unlock(&xi_byvalue_mu);
    PyMem_RawFree(copy);
    return added;
}

int
xi_byvalue_sync(xi_state *st)
{
    uint64_t version = atomic_load(&xi_byvalue_version);
    if (version == st->byvalue_version) {
        return 0;
    }
    /* the names, copied under the lock into memory of this interpreter's */
    xi_lock(&xi_byvalue_mu);
    version = atomic_load(&xi_byvalue_version);
    size_t n = xi_byvalue_count, total = 0;
    for (size_t i = 0; i < n; i++) {
        total += strlen(xi_byvalue_names[i]) + 1;
    }
    char *buf = PyMem_RawMalloc(total ? total : 1);
    if (buf != NULL) {
        char *p = buf;
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(xi_byvalue_names[i]) + 1;
            memcpy(p, xi_byvalue_names[i], len);
            p += len;
        }
    }
    xi_unlock(&xi_byvalue_mu);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *names = PyList_New(0);
    const char *p = buf;
    for (size_t i = 0; names != NULL && i < n; i++) {
        PyObject *s = PyUnicode_FromString(p);
        if (s == NULL || PyList_Append(names, s) < 0) {
            Py_CLEAR(names);
        }
        Py_XDECREF(s);
        p += strlen(p) + 1;
    }
    PyMem_RawFree(buf);
    PyObject *tuple = names ? PyList_AsTuple(names) : NULL;
    PyObject *set = tuple ? PyFrozenSet_New(tuple) : NULL;
    Py_XDECREF(names);
    if (set == NULL) {
        Py_XDECREF(tuple);
        return -1;
    }
    Py_XSETREF(st->byvalue, set);
    Py_XSETREF(st->byvalue_names, tuple);
    st->byvalue_version = version;
    return 1;
}

int
xi_byvalue_has(xi_state *st, PyObject *module)
{
    if (st->byvalue == NULL || !PyUnicode_Check(module)) {
        return 0;
    }
    int rc = PySet_Contains(st->byvalue, module);
    if (rc != 0) {
        return rc;
    }
    /* a package it is part of: "a.b.c" -> "a.b", "a" */
    Py_ssize_t end = PyUnicode_GET_LENGTH(module);
    while ((end = PyUnicode_FindChar(module, '.', 0, end, -1)) > 0) {
        PyObject *parent = PyUnicode_Substring(module, 0, end);
        if (parent == NULL) {
            return -1;
        }
        rc = PySet_Contains(st->byvalue, parent);
        Py_DECREF(parent);
        if (rc != 0) {
            return rc;
        }
    }
    return end == -2 ? -1 : 0;
}

int
xi_byvalue_in_stream(xi_state *st, const char *p, size_t n)
{
    if (st->byvalue_names == NULL) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(st->byvalue_names); i++) {
        PyObject *name = PyTuple_GET_ITEM(st->byvalue_names, i);
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(name, &len);
        if (s == NULL) {
            PyErr_Clear();
            return 1; /* cannot tell: by value is always right */
        }
        if (memmem(p, n, s, (size_t)len) != NULL) {
            return 1;
        }
    }
    return 0;
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
