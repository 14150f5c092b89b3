/* threading's synchronization primitives, shared across interpreters. */
#ifndef XI_SYNC_H
#define XI_SYNC_H

#include "registry.h"

extern PyType_Spec xi_lock_spec, xi_rlock_spec, xi_semaphore_spec, xi_bounded_semaphore_spec,
    xi_event_spec, xi_condition_spec, xi_barrier_spec;

/* A wrapper of this interpreter for a primitive found in the registry (a reference is
 * taken). */
PyObject *xi_sync_wrap(xi_state *st, xi_shared *obj);

#endif /* XI_SYNC_H */
