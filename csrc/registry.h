/* Shared objects: C structs in process-global memory that every interpreter reaches
 * through a wrapper object of its own.
 *
 * Each object starts with an xi_shared header: its kind, a process-unique id and an
 * atomic reference count. Wrappers and packets in flight each hold a reference; the
 * object is freed when the last one goes. The registry maps (kind, id) to live objects:
 * a pickled wrapper is only that pair, so a forged, stale or corrupted handle finds
 * nothing and raises, and no address ever leaves the process's C code. */
#ifndef XI_REGISTRY_H
#define XI_REGISTRY_H

#include "compat.h"
#include "state.h"

typedef enum {
    XI_KIND_QUEUE = 1,
    XI_KIND_BUFFER = 2,
    XI_KIND_LOCK = 3,
    XI_KIND_RLOCK = 4,
    XI_KIND_SEMAPHORE = 5,   /* BoundedSemaphore too */
    XI_KIND_EVENT = 6,
    XI_KIND_CONDITION = 7,
    XI_KIND_BARRIER = 8,
    XI_KIND_MAX = 8,
} xi_kind;

typedef struct xi_shared xi_shared;

typedef struct {
    xi_kind kind;
    const char *name;               /* as users know it, for messages */
    void (*free)(xi_shared *obj);   /* frees the object; runs in no interpreter */
    void (*wake)(xi_shared *obj);   /* wakes every thread waiting on it (NULL: none wait);
                                       runs in no interpreter, takes only its own lock */
} xi_shared_ops;

struct xi_shared {
    const xi_shared_ops *ops;
    uint64_t id;
    _Atomic long refcnt;
    xi_shared *next;                /* registry chain */
};

/* Ids start here, far above any sensible Queue maxsize: Queue(n) with n this large
 * looks up the queue with id n instead of making one. */
#define XI_SHARED_ID_MIN ((uint64_t)1 << 32)

/* Gives the object (refcount 1, owned by the caller) an id and makes it reachable. */
void xi_shared_register(xi_shared *obj, const xi_shared_ops *ops);

void xi_shared_incref(xi_shared *obj);
void xi_shared_decref(xi_shared *obj);

/* A new reference to the live object of that kind and id, or NULL. */
xi_shared *xi_shared_lookup(int kind, uint64_t id);

/* How many shared objects are alive (for tests). */
long xi_shared_live(void);

/* Across fork() (pthread_atfork, module.c): 0 before (takes the registry lock, so
 * that the child finds the registry whole), 1 in the parent after (releases it), 2 in
 * the child (makes it anew: the child has this one thread). */
void xi_shared_atfork(int phase);

/* Calls every live object's wake (see xi_interrupt_waits in wait.h). */
void xi_shared_wake_all(void);

/* A new list of (kind name, id, references) for every shared object alive now, in
 * the order of their ids; NULL with an exception set. */
PyObject *xi_shared_list(void);
/* The ids of the live objects of that kind, ascending (a new list), or NULL with an
 * exception set. */
PyObject *xi_shared_ids(int kind);

/* Packets record the shared objects their stream names, holding a reference to each,
 * so that an object lives while it is in flight. While an encoder runs, the wrappers'
 * __reduce__ adds their objects to the current thread's collector. */
typedef struct {
    xi_shared **items;
    Py_ssize_t n, cap;
} xi_refs;

/* Starts collecting on this thread; returns the collector that was active (restore it
 * with xi_refs_end). */
xi_refs *xi_refs_begin(xi_refs *refs);
void xi_refs_end(xi_refs *previous);
/* Adds a reference to `obj` to the active collector, if any. 0, or -1 (MemoryError). */
int xi_refs_add(xi_shared *obj);
/* Drops every reference held. */
void xi_refs_clear(xi_refs *refs);

#endif /* XI_REGISTRY_H */
