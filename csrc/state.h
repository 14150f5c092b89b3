/* extrainterpreters._xi: the two kinds of state.
 *
 * PROCESS-GLOBAL STATE (no PyObject* anywhere; raw allocator; OS locks)
 *
 *   interp.c   xi_interps        list of xi_interp records, one per interpreter made
 *                                by this library, guarded by xi_interps_mu.
 *              xi_interp         id, PyInterpreterState*, lifecycle state, refcount
 *                                (atomic), active calls, the per-thread thread-state
 *                                cache, the owner thread and its job queue; fields
 *                                after the header are guarded by xi_interp.mu.
 *              xi_job            one request handed to an owner thread: packets in and
 *                                out, state word; refcounted by its two users.
 *   tscache.c  xi_tls (TLS)      per OS thread: the thread's cache entries and the
 *                                stack of thread states it left to enter another
 *                                interpreter. Freed by a pthread-key destructor.
 *   loan.c     xi_lender         per interpreter that lent Queue items: its loans out
 *                                and returned, guarded by its mutex; refcounted by the
 *                                module state and the lent packets.
 *   packet.c   xi_packet         serialized value (wire.c makes and reads them): a
 *                                stream (in one piece or in pieces) plus out-of-band
 *                                segments, whose storage is of one mode (`store`):
 *                                borrowed from live objects of the interpreter that
 *                                made it (released there), owned (one raw block), or
 *                                lent (a lender's, loan.h). xi_packet_release frees
 *                                every mode.
 *
 * PER-INTERPRETER STATE (module state, one per interpreter that imports _xi)
 *
 *   xi_state   below: every PyObject* the C core keeps, including its heap types and
 *              exception classes. The module object is also stored in the
 *              interpreter's own dict (PyInterpreterState_GetDict) so that the core
 *              finds it when it switches into that interpreter.
 */
#ifndef XI_STATE_H
#define XI_STATE_H

#include <Python.h>

typedef struct {
    /* exception classes (module attributes, re-exported by the package) */
    PyObject *InterpreterError;
    PyObject *InterpreterNotFoundError;
    PyObject *ExecutionFailed;   /* made on first use: xi_execution_failed() */
    PyObject *make_execution_failed;
    PyObject *NotShareableError;
    PyObject *QueueError;
    PyObject *QueueNotFoundError;
    PyObject *make_queue_errors; /* () -> (QueueEmpty, QueueFull, QueueShutDown) */
    PyObject *call_code;         /* the code of the frame every call runs in */

    /* heap types */
    PyTypeObject *HandleType;
    PyTypeObject *BufferType;
    PyTypeObject *QueueType;
    PyTypeObject *LockType;
    PyTypeObject *RLockType;
    PyTypeObject *SemaphoreType;
    PyTypeObject *BoundedSemaphoreType;
    PyTypeObject *EventType;
    PyTypeObject *ConditionType;
    PyTypeObject *BarrierType;
    PyTypeObject *InterruptType; /* armed by interrupt() (interrupt.c), not exported */
    PyTypeObject *StrExportType; /* a str's storage for a PickleBuffer (wire.c), not
                                    exported */
    /* interrupt.c: the sys.monitoring tool that sees a thread leave guarded code while
     * an interrupt is held (tool id + 1; 0: not claimed yet, -1: none was free), and
     * the code objects whose returns it watches meanwhile (a set, or NULL) */
    int mon_tool;
    PyObject *mon_codes;
    PyObject *mon_resume;        /* code objects whose next instruction raises a held
                                    interrupt (a set, or NULL) */
    PyObject *QueueEmpty;      /* made on first use: they derive from queue's; the three
                                  are published together under queue.c's xi_errors_mu */
    PyObject *QueueFull;
    PyObject *QueueShutDown;
    PyObject *queue_wrappers;  /* queue id -> weakref to this interpreter's one wrapper */

    /* _xi._rebuild: what a pickled shared object calls to find itself again */
    PyObject *rebuild;

    /* wire: pickle entry points and helpers (the first four imported on first need) */
    PyObject *dumps;           /* _pickle.dumps */
    PyObject *loads;           /* _pickle.loads */
    PyObject *PickleBuffer;    /* _pickle.PickleBuffer */
    PyObject *cp_dumps;        /* _byvalue.dumps (cloudpickle with marshalled code), on first need */
    PyObject *format_exc;      /* traceback.format_exception, imported on first need */
    PyObject *SimpleNamespace; /* types.SimpleNamespace */
    PyObject *kw_dumps;        /* ("protocol",) */
    PyObject *kw_dumps_cb;     /* ("protocol", "buffer_callback") */
    PyObject *kw_loads;        /* ("buffers",) */
    PyObject *protocol;        /* 5 */
    PyObject *collect;         /* builtin used as buffer_callback */
    PyObject *func_out;        /* callable -> its pickle, for callables named by reference */
    PyObject *func_in;         /* such a pickle -> the callable it names here */
    PyObject *byvalue;         /* byvalue.h: modules that cross by value (frozenset) */
    PyObject *byvalue_names;   /* ... the same names (tuple) */
    uint64_t byvalue_version;  /* ... the version of the process's list they reflect */

    /* stream.c: pickling in pieces */
    PyTypeObject *StreamReaderType;
    PyTypeObject *StreamWriterType;
    PyTypeObject *PicklerType; /* derives from _pickle.Pickler; made on first need */
    PyObject *Unpickler;       /* _pickle.Unpickler, with PicklerType */
    PyObject *pk;              /* this interpreter's pickler while not in use (pk_busy) */
    PyObject *pk_chunks;       /* ... the list it writes its stream to */
    PyObject *pk_oob;          /* ... and its out-of-band buffers */
    PyObject *pk_writer;       /* ... through this file object */
    int pk_busy;
    int pk_grown;              /* ... its last dump was large (stream.c: XI_PK_KEEP_MAX) */
    PyObject *pk_type_seen;    /* borrowed: a type reducer_override found not of __main__
                                  in a dump under way (whose memo keeps it alive); every
                                  dump's start and end clear it */
    PyObject *MainReference;   /* raised by the pickler at a name of __main__ */
    PyObject *buffer_value;    /* _xi._buffer_value */
    PyObject *cp_Pickler;      /* _byvalue.Pickler, imported on first need */
    PyObject *mp_BaseProxy;    /* multiprocessing.managers.BaseProxy, once imported here */
    PyObject *mp_reduce_proxy; /* _mp_proxies.reduce, imported with it */
    PyObject *str_dump, *str_clear_memo, *str_load, *str_module, *str_mp_managers;

    /* Queue items this interpreter lent (loan.h): raw memory, made on first loan */
    struct xi_lender *lender;
    int lending_closed;        /* the interpreter is ending: puts copy */
} xi_state;

/* The accessors below are defined in state.c, which uses nothing else of the core: the
 * module is found by its name (XI_MODULE_KEY) in the interpreter's dict, where
 * module.c stores it. */
#define XI_MODULE_KEY "extrainterpreters._xi"

/* The module state of the current interpreter (imports _xi there if needed).
 * Returns a borrowed pointer, or NULL with an exception set. */
xi_state *xi_current_state(void);

/* The module state of the current interpreter if it imported _xi, else NULL (no
 * exception). */
xi_state *xi_loaded_state(void);

/* The ExecutionFailed class (borrowed), or NULL with an exception set. */
PyObject *xi_execution_failed(xi_state *st);

/* func(*args, **kwargs) (kwargs may be NULL) in a Python frame whose globals are this
 * interpreter's __main__; a function from another interpreter's __main__ runs with this
 * one's __main__ as its globals. The frame runs st->call_code, whose _call_pending
 * (module.c) makes the call through xi_take_pending_call. */
PyObject *xi_call_in_main(xi_state *st, PyObject *func, PyObject *args, PyObject *kwargs);

/* The call xi_call_in_main prepared on this thread (borrowed references), taken: 0, or
 * -1 with RuntimeError set when none is pending. */
int xi_take_pending_call(PyObject **func, PyObject **args, PyObject **kwargs);

static inline xi_state *
xi_state_of(PyObject *module)
{
    return (xi_state *)PyModule_GetState(module);
}

#endif /* XI_STATE_H */
