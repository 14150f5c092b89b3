/* The registry of shared objects (see registry.h). */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#define XI_BUCKETS 1024

static xi_mutex xi_shared_mu = PTHREAD_MUTEX_INITIALIZER;
static xi_shared *xi_buckets[XI_BUCKETS];
static uint64_t xi_next_id = XI_SHARED_ID_MIN;
static _Atomic long xi_live;

static inline size_t
bucket_of(uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 54) % XI_BUCKETS;
}

void
xi_shared_register(xi_shared *obj, const xi_shared_ops *ops)
{
    obj->ops = ops;
    atomic_init(&obj->refcnt, 1);
    xi_lock(&xi_shared_mu);
    obj->id = xi_next_id++;
    size_t b = bucket_of(obj->id);
    obj->next = xi_buckets[b];
    xi_buckets[b] = obj;
    xi_unlock(&xi_shared_mu);
    atomic_fetch_add(&xi_live, 1);
}

void
xi_shared_incref(xi_shared *obj)
{
    atomic_fetch_add(&obj->refcnt, 1);
}

void
xi_shared_decref(xi_shared *obj)
{
    if (atomic_fetch_sub(&obj->refcnt, 1) != 1) {
        return;
    }
    /* A lookup racing with this sees a zero count and treats the object as gone. */
    xi_lock(&xi_shared_mu);
    for (xi_shared **p = &xi_buckets[bucket_of(obj->id)]; *p != NULL; p = &(*p)->next) {
        if (*p == obj) {
            *p = obj->next;
            break;
        }
    }
    xi_unlock(&xi_shared_mu);
    atomic_fetch_sub(&xi_live, 1);
    obj->ops->free(obj);
}

xi_shared *
xi_shared_lookup(int kind, uint64_t id)
{
    xi_shared *found = NULL;
    xi_lock(&xi_shared_mu);
    for (xi_shared *o = xi_buckets[bucket_of(id)]; o != NULL; o = o->next) {
        if (o->id == id && (int)o->ops->kind == kind) {
            long n = atomic_load(&o->refcnt);
            while (n > 0 && !atomic_compare_exchange_weak(&o->refcnt, &n, n + 1)) {
            }
            found = n > 0 ? o : NULL;
            break;
        }
    }
    xi_unlock(&xi_shared_mu);
    return found;
}

void
xi_shared_atfork(int phase)
{
    if (phase == 0) {
        xi_lock(&xi_shared_mu);
    }
    else if (phase == 1) {
        xi_unlock(&xi_shared_mu);
    }
    else {
        xi_mutex_init(&xi_shared_mu);
    }
}

long
xi_shared_live(void)
{
    return atomic_load(&xi_live);
}

void
xi_shared_wake_all(void)
{
    /* references taken under the registry lock, the wakes made after it (each takes
     * its object's lock, and an object's last reference may go meanwhile) */
    xi_shared **objs = NULL;
    size_t n = 0, cap = (size_t)atomic_load(&xi_live) + 16;
    for (;;) {
        objs = PyMem_RawMalloc(cap * sizeof(xi_shared *));
        if (objs == NULL) {
            return;
        }
        n = 0;
        xi_lock(&xi_shared_mu);
        for (size_t b = 0; b < XI_BUCKETS; b++) {
            for (xi_shared *o = xi_buckets[b]; o != NULL; o = o->next) {
                if (o->ops->wake == NULL) {
                    continue;
                }
                long refs = atomic_load(&o->refcnt);
                if (n >= cap) {
                    n += refs > 0; /* no room: only counted */
                    continue;
                }
                while (refs > 0 && !atomic_compare_exchange_weak(&o->refcnt, &refs, refs + 1)) {
                }
                if (refs > 0) {
                    objs[n++] = o;
                }
            }
        }
        xi_unlock(&xi_shared_mu);
        if (n <= cap) {
            break;
        }
        for (size_t i = 0; i < cap; i++) {
            xi_shared_decref(objs[i]);
        }
        PyMem_RawFree(objs);
        cap = n + 16;
    }
    for (size_t i = 0; i < n; i++) {
        objs[i]->ops->wake(objs[i]);
        xi_shared_decref(objs[i]);
    }
    PyMem_RawFree(objs);
}

typedef struct {
    const char *name;
    uint64_t id;
    long refs;
} xi_shared_info;

static int
info_by_id(const void *a, const void *b)
{
    uint64_t x = ((const xi_shared_info *)a)->id, y = ((const xi_shared_info *)b)->id;
    return (x > y) - (x < y);
}

PyObject *
xi_shared_list(void)
{
    /* a snapshot taken under the lock, turned into Python objects after it */
    xi_shared_info *infos = NULL;
    size_t n = 0, cap = (size_t)atomic_load(&xi_live) + 16;
    for (;;) {
        infos = PyMem_RawMalloc(cap * sizeof(xi_shared_info));
        if (infos == NULL) {
            return PyErr_NoMemory();
        }
        n = 0;
        xi_lock(&xi_shared_mu);
        for (size_t b = 0; b < XI_BUCKETS; b++) {
            for (xi_shared *o = xi_buckets[b]; o != NULL; o = o->next) {
                long refs = atomic_load(&o->refcnt);
                if (refs > 0) { /* 0: being freed */
                    if (n < cap) {
                        infos[n] = (xi_shared_info){o->ops->name, o->id, refs};
                    }
                    n++;
                }
            }
        }
        xi_unlock(&xi_shared_mu);
        if (n <= cap) {
            break;
        }
        PyMem_RawFree(infos); /* more than room for: again, larger */
        cap = n + 16;
    }
    qsort(infos, n, sizeof(xi_shared_info), info_by_id);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *t = Py_BuildValue("(sKl)", infos[i].name,
                                    (unsigned long long)infos[i].id, infos[i].refs);
        if (t == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    PyMem_RawFree(infos);
    return list;
}

PyObject *
xi_shared_ids(int kind)
{
    PyObject *ids = PyList_New(0);
    if (ids == NULL) {
        return NULL;
    }
    xi_lock(&xi_shared_mu);
    for (size_t b = 0; b < XI_BUCKETS && ids != NULL; b++) {
        for (xi_shared *o = xi_buckets[b]; o != NULL; o = o->next) {
            if ((int)o->ops->kind != kind || atomic_load(&o->refcnt) <= 0) {
                continue;
            }
            PyObject *id = PyLong_FromUnsignedLongLong(o->id);
            if (id == NULL || PyList_Append(ids, id) < 0) {
                Py_XDECREF(id);
                Py_CLEAR(ids);
                break;
            }
            Py_DECREF(id);
        }
    }
    xi_unlock(&xi_shared_mu);
    if (ids != NULL && PyList_Sort(ids) < 0) {
        Py_CLEAR(ids);
    }
    return ids;
}

/* ------------------------------------------------------------ collectors */

static _Thread_local xi_refs *xi_collector;

xi_refs *
xi_refs_begin(xi_refs *refs)
{
    xi_refs *previous = xi_collector;
    xi_collector = refs;
    return previous;
}

void
xi_refs_end(xi_refs *previous)
{
    xi_collector = previous;
}

int
xi_refs_add(xi_shared *obj)
{
    xi_refs *r = xi_collector;
    if (r == NULL) {
        return 0;
    }
    if (r->n == r->cap) {
        Py_ssize_t cap = r->cap ? r->cap * 2 : 4;
        xi_shared **items = PyMem_RawRealloc(r->items, sizeof(xi_shared *) * (size_t)cap);
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->items = items;
        r->cap = cap;
    }
    xi_shared_incref(obj);
    r->items[r->n++] = obj;
    return 0;
}

void
xi_refs_clear(xi_refs *refs)
{
    for (Py_ssize_t i = 0; i < refs->n; i++) {
        xi_shared_decref(refs->items[i]);
    }
    PyMem_RawFree(refs->items);
    refs->items = NULL;
    refs->n = refs->cap = 0;
}
