/* Queue: a FIFO of serialized items that any interpreter and thread can put to and get
 * from, with queue.Queue's API. */
#ifndef XI_QUEUE_H
#define XI_QUEUE_H

#include "registry.h"

extern PyType_Spec xi_queue_spec;

/* A wrapper of this interpreter for a queue found in the registry (a reference is
 * taken). */
PyObject *xi_queue_wrap(xi_state *st, xi_shared *obj);

/* The exception classes QueueEmpty, QueueFull and QueueShutDown of this interpreter,
 * made on first use (they derive from the queue module's). New reference to a tuple. */
PyObject *xi_queue_errors(xi_state *st);

/* Across fork(), as xi_shared_atfork: the lock that publishes those classes. */
void xi_queue_atfork(int phase);

#endif /* XI_QUEUE_H */
