/* extrainterpreters._xi: the C core. The map of its state is in state.h. */
#include "buffer.h"
#include "byvalue.h"
#include "callctx.h"
#include "extinfo.h"
#include "handle.h"
#include "queue.h"
#include "registry.h"
#include "stream.h"
#include "sync.h"
#include "interp.h"
#include "interrupt.h"
#include "owner.h"
#include "tscache.h"
#include "loan.h"
#include "state.h"
#include "wire.h"

/* ------------------------------------------------------------ module functions */

/* The configuration tuple that interpreter.py makes of a config argument:
 * (use_main_obmalloc, allow_fork, allow_exec, allow_threads, allow_daemon_threads,
 * check_multi_interp_extensions: bools, gil: 'own', 'shared' or 'default'). */
static int
config_from_tuple(PyObject *t, PyInterpreterConfig *config)
{
    static const char *const names[] = {
        "use_main_obmalloc", "allow_fork", "allow_exec", "allow_threads",
        "allow_daemon_threads", "check_multi_interp_extensions",
    };
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 7) {
        PyErr_SetString(PyExc_TypeError, "config must be a tuple of 7 items");
        return -1;
    }
    int flags[6];
    for (Py_ssize_t i = 0; i < 6; i++) {
        PyObject *v = PyTuple_GET_ITEM(t, i);
        if (!PyBool_Check(v)) {
            PyErr_Format(PyExc_TypeError, "config field %s must be a bool, not %.100s",
                         names[i], Py_TYPE(v)->tp_name);
            return -1;
        }
        flags[i] = v == Py_True;
    }
    PyObject *gil = PyTuple_GET_ITEM(t, 6);
    if (!PyUnicode_Check(gil)) {
        PyErr_Format(PyExc_TypeError, "config field gil must be a str, not %.100s",
                     Py_TYPE(gil)->tp_name);
        return -1;
    }
    int gil_value;
    if (PyUnicode_CompareWithASCIIString(gil, "own") == 0) {
        gil_value = PyInterpreterConfig_OWN_GIL;
    }
    else if (PyUnicode_CompareWithASCIIString(gil, "shared") == 0) {
        gil_value = PyInterpreterConfig_SHARED_GIL;
    }
    else if (PyUnicode_CompareWithASCIIString(gil, "default") == 0) {
        gil_value = PyInterpreterConfig_DEFAULT_GIL; /* CPython shares the main GIL */
    }
    else {
        PyErr_Format(PyExc_ValueError, "config field gil must be 'own', 'shared' or "
                     "'default', not %R", gil);
        return -1;
    }
    if (!flags[0] && !flags[5]) {
        PyErr_SetString(PyExc_ValueError, "an interpreter with its own obmalloc "
                        "(use_main_obmalloc=False) needs check_multi_interp_extensions=True");
        return -1;
    }
    if (flags[0] && gil_value == PyInterpreterConfig_OWN_GIL) {
        PyErr_SetString(PyExc_ValueError, "an interpreter with its own GIL (gil='own') "
                        "needs its own obmalloc (use_main_obmalloc=False)");
        return -1;
    }
    *config = (PyInterpreterConfig){
        .use_main_obmalloc = flags[0],
        .allow_fork = flags[1],
        .allow_exec = flags[2],
        .allow_threads = flags[3],
        .allow_daemon_threads = flags[4],
        .check_multi_interp_extensions = flags[5],
        .gil = gil_value,
    };
    return 0;
}

static PyObject *
mod_create(PyObject *module, PyObject *args)
{
    PyObject *sys_path, *config_arg = Py_None;
    int bind_main = 0;
    if (!PyArg_ParseTuple(args, "O|Op:create", &sys_path, &config_arg, &bind_main)) {
        return NULL;
    }
    PyInterpreterConfig config;
    if (config_arg != Py_None && config_from_tuple(config_arg, &config) < 0) {
        return NULL;
    }
    xi_state *st = xi_state_of(module);
    xi_interp *rec = NULL;
    xi_err err = xi_interp_create(st, sys_path, config_arg != Py_None ? &config : NULL,
                                  bind_main, &rec);
    if (err != XI_OK) {
        return xi_raise(st, err, -1);
    }
    PyObject *h = xi_handle_new(st, rec, xi_interp_id(rec), 1);
    if (h == NULL) {
        xi_interp_orphan(rec);
    }
    xi_interp_decref(rec);
    return h;
}

static PyObject *
mod_handle(PyObject *module, PyObject *arg)
{
    xi_state *st = xi_state_of(module);
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    xi_interp *rec = xi_interp_lookup(id);
    if (rec == NULL) {
        /* the current interpreter is reachable even when this library did not make it */
        if (id == PyInterpreterState_GetID(PyInterpreterState_Get())) {
            return xi_handle_new(st, NULL, id, 0);
        }
        return xi_raise(st, XI_ERR_NOT_FOUND, id);
    }
    PyObject *h = xi_handle_new(st, rec, id, 0);
    xi_interp_decref(rec);
    return h;
}

static PyObject *
mod_list_all(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return xi_interp_list_ids();
}

static PyObject *
mod_current_id(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(PyInterpreterState_GetID(PyInterpreterState_Get()));
}

static PyObject *
mod_main_id(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(PyInterpreterState_GetID(PyInterpreterState_Main()));
}

static PyObject *
mod_fork_prepare(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return xi_interp_fork_prepare();
}

static PyObject *
mod_fork_done(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    xi_interp_fork_done();
    Py_RETURN_NONE;
}

static PyObject *
mod_close_all(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *daemons = NULL;
    if (!PyArg_ParseTuple(args, "|O:close_all", &daemons)) {
        return NULL;
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        PyErr_SetString(PyExc_RuntimeError, "close_all() runs in the main interpreter");
        return NULL;
    }
    PyObject *seq = daemons ? PySequence_Fast(daemons, "close_all() takes thread idents")
                            : PyTuple_New(0);
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    unsigned long *idents = PyMem_Malloc(sizeof(unsigned long) * (size_t)(n + 1));
    if (idents == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        idents[i] = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(seq, i));
        if (idents[i] == (unsigned long)-1 && PyErr_Occurred()) {
            PyMem_Free(idents);
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    xi_interp_close_all(idents, n);
    PyMem_Free(idents);
    Py_RETURN_NONE;
}

static PyObject *
mod_rebuild(PyObject *module, PyObject *args)
{
    xi_state *st = xi_state_of(module);
    int kind;
    PyObject *id_obj;
    if (!PyArg_ParseTuple(args, "iO!:_rebuild", &kind, &PyLong_Type, &id_obj)) {
        return NULL;
    }
    unsigned long long id = PyLong_AsUnsignedLongLong(id_obj);
    if (id == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    xi_shared *obj = (kind >= 1 && kind <= XI_KIND_MAX) ? xi_shared_lookup(kind, id) : NULL;
    if (obj == NULL) {
        return PyErr_Format(PyExc_ValueError,
                            "no shared object of kind %d with id %llu exists: it was "
                            "freed, or the handle is not one this process made",
                            kind, id);
    }
    PyObject *w = NULL;
    switch ((xi_kind)kind) {
    case XI_KIND_BUFFER:
        w = xi_buffer_wrap(st, obj);
        break;
    case XI_KIND_QUEUE:
        w = xi_queue_wrap(st, obj);
        break;
    default:
        w = xi_sync_wrap(st, obj);
        break;
    }
    xi_shared_decref(obj);
    return w;
}

static PyObject *
mod_describe_exception(PyObject *module, PyObject *exc)
{
    if (!PyExceptionInstance_Check(exc)) {
        PyErr_SetString(PyExc_TypeError, "_describe_exception() takes an exception");
        return NULL;
    }
    return xi_describe_exception(xi_state_of(module), exc,
                                 PyInterpreterState_GetID(PyInterpreterState_Get()));
}

static PyObject *
mod_raise_described(PyObject *module, PyObject *desc)
{
    if (!PyTuple_Check(desc)) {
        PyErr_SetString(PyExc_TypeError, "_raise_described() takes a description tuple");
        return NULL;
    }
    xi_raise_described(xi_state_of(module), desc);
    if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_SystemError, "_raise_described() raised nothing");
    }
    return NULL;
}

static PyObject *
mod_queue_errors(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return xi_queue_errors(xi_state_of(module));
}

static PyObject *
mod_queue_ids(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return xi_shared_ids(XI_KIND_QUEUE);
}

static PyObject *
mod_live_objects(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(xi_shared_live());
}

/* _decode_wire(data, marshal, exception, fdata=None, fname=False): decodes `data` as the
 * stream of a packet (a value, or with `exception` the description of one; with
 * `fdata`, a call whose callable is `fdata`, by name when `fname`). For tests that feed
 * the decoder arbitrary bytes: it must raise, never crash. */
static PyObject *
mod_decode_wire(PyObject *module, PyObject *args)
{
    xi_state *st = xi_state_of(module);
    Py_buffer data, fdata = {0};
    int marshal, exception, fname = 0;
    if (!PyArg_ParseTuple(args, "y*pp|z*p:_decode_wire", &data, &marshal, &exception, &fdata,
                          &fname)) {
        return NULL;
    }
    xi_packet pkt = XI_PACKET_INIT;
    pkt.kind = exception ? XI_PKT_EXCEPTION : XI_PKT_VALUE;
    pkt.marshal = (uint8_t)marshal;
    pkt.data = data.buf;
    pkt.size = data.len;
    PyObject *result = NULL;
    if (fdata.buf != NULL) {
        pkt.fdata = fdata.buf;
        pkt.fsize = fdata.len;
        pkt.fname = (uint8_t)fname;
        PyObject *func, *fargs, *kwargs;
        if (xi_decode_call(st, &pkt, &func, &fargs, &kwargs, NULL) == 0) {
            result = Py_BuildValue("(NNN)", func, fargs, kwargs ? kwargs : Py_NewRef(Py_None));
        }
    }
    else {
        result = xi_decode(st, &pkt);
    }
    PyBuffer_Release(&data);
    if (fdata.obj != NULL) {
        PyBuffer_Release(&fdata);
    }
    return result;
}

static PyObject *
mod_shared_objects(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return xi_shared_list();
}

static PyObject *
mod_thread_cache_len(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(xi_interp_thread_cache_len());
}

static PyObject *
mod_loans(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return xi_lender_stats(xi_state_of(module));
}

static PyObject *
mod_reader_steps(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong((long long)xi_stream_reader_steps());
}

/* _encode(obj) -> (stream bytes, pieces, out-of-band segments, bytes held in place):
 * encodes obj as a call argument or queue item would be, then releases it. */
static PyObject *
mod_encode(PyObject *module, PyObject *obj)
{
    xi_packet pkt = XI_PACKET_INIT;
    if (xi_encode_value(xi_state_of(module), obj, &pkt) < 0) {
        return NULL;
    }
    PyObject *r = Py_BuildValue("(nnnn)", pkt.size, pkt.npieces, pkt.nsegs,
                                xi_packet_oob_bytes(&pkt));
    xi_packet_release(&pkt);
    return r;
}


/* ExecutionFailed is a module attribute made on first use (xi_execution_failed). */
static PyObject *
mod_getattr(PyObject *module, PyObject *name)
{
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "ExecutionFailed") == 0) {
        return Py_XNewRef(xi_execution_failed(xi_state_of(module)));
    }
    return PyErr_Format(PyExc_AttributeError, "module 'extrainterpreters._xi' has no "
                        "attribute %R", name);
}

static PyMethodDef module_methods[] = {
    {"_encode", mod_encode, METH_O,
     "_encode(obj, /)\n--\n\n-> (stream bytes, pieces, out-of-band segments, bytes held in place): "
     "how obj is encoded (for tests and benchmarks)"},
    {"__getattr__", mod_getattr, METH_O, "__getattr__(name, /)\n--\n\nExecutionFailed, made on first use"},
    {"_rebuild", mod_rebuild, METH_VARARGS,
     "_rebuild(kind, id, /)\n--\n\nthis interpreter's object for a shared object"},
    {"_describe_exception", mod_describe_exception, METH_O,
     "_describe_exception(exc, /)\n--\n\na picklable description of exc, for _raise_described()"},
    {"_raise_described", mod_raise_described, METH_O,
     "_raise_described(desc, /)\n--\n\nraise the exception described, as a call would"},
    {"_queue_errors", mod_queue_errors, METH_NOARGS,
     "_queue_errors()\n--\n\n(QueueEmpty, QueueFull, QueueShutDown), made on first use"},
    {"_queue_ids", mod_queue_ids, METH_NOARGS, "_queue_ids()\n--\n\nids of the live queues of the process"},
    {"_live_objects", mod_live_objects, METH_NOARGS,
     "_live_objects()\n--\n\nhow many shared objects are alive in the process (for tests)"},
    {"_decode_wire", mod_decode_wire, METH_VARARGS,
     "_decode_wire(data, marshal, exception, fdata=None, fname=False, /)\n--\n\ndecode raw packet "
     "streams (for tests)"},
    {"shared_objects", mod_shared_objects, METH_NOARGS,
     "shared_objects()\n--\n\n-> [(kind, id, references)]: every shared object alive in the "
     "process, by id. References count wrappers in every interpreter and items or "
     "calls in flight that hold the object."},
    {"_thread_cache_len", mod_thread_cache_len, METH_NOARGS,
     "_thread_cache_len()\n--\n\nthe current thread's cached thread states, in every "
     "interpreter (for tests)"},
    {"_reader_steps", mod_reader_steps, METH_NOARGS,
     "_reader_steps()\n--\n\npieces of pickle streams that readers looked at, process-wide "
     "(for tests)"},
    {"_loans", mod_loans, METH_NOARGS,
     "_loans()\n--\n\n(out, returned, bytes): Queue items this interpreter lent (for tests)"},
    {"create", mod_create, METH_VARARGS,
     "create(sys_path, config=None, bind_main=False, /)\n--\n\n-> Handle: a new interpreter "
     "with that sys.path; config: None (isolated: own GIL) or (use_main_obmalloc, "
     "allow_fork, allow_exec, allow_threads, allow_daemon_threads, "
     "check_multi_interp_extensions, gil); bind_main: its __main__ starts with sys and "
     "pickle"},
    {"handle", mod_handle, METH_O, "handle(id, /)\n--\n\n-> Handle: a non-owning handle"},
    {"list_all", mod_list_all, METH_NOARGS, "list_all()\n--\n\nids of the live interpreters made here"},
    {"current_id", mod_current_id, METH_NOARGS, "current_id()\n--\n\nid of the current interpreter"},
    {"main_id", mod_main_id, METH_NOARGS, "main_id()\n--\n\nid of the main interpreter"},
    {"close_all", mod_close_all, METH_VARARGS,
     "close_all(daemons=(), /)\n--\n\nclose every interpreter once its calls return (calls run "
     "by the threads whose idents are given are interrupted instead); no new ones "
     "afterwards"},
    {"_by_value_modules", xi_mod_by_value_modules, METH_NOARGS,
     "_by_value_modules()\n--\n\n-> frozenset: the modules whose functions and classes cross "
     "by value (an interpreter of the process failed to import them)"},
    {"_learn_by_value", xi_mod_learn_by_value, METH_O,
     "_learn_by_value(name, /)\n--\n\nfrom now on the functions and classes of module name (and "
     "of its submodules) cross by value; True when it was not known"},
    {"_fork_prepare", mod_fork_prepare, METH_NOARGS,
     "_fork_prepare()\n--\n\n-> (busy ids, idle ids): before os.fork(), once no interpreter is "
     "being created or ended (5 s at most); new ones wait for _fork_done()"},
    {"_fork_done", mod_fork_done, METH_NOARGS,
     "_fork_done()\n--\n\nafter os.fork(), in the parent: interpreters may be made again"},
    {"_extension_kind", xi_mod_extension_kind, METH_O,
     "_extension_kind(module, /)\n--\n\n-> (init, multiple_interpreters, gil): what a module's "
     "definition declares about subinterpreters"},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------ module state */

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    xi_state *st = xi_state_of(module);
    Py_VISIT(st->InterpreterError);
    Py_VISIT(st->InterpreterNotFoundError);
    Py_VISIT(st->ExecutionFailed);
    Py_VISIT(st->NotShareableError);
    Py_VISIT(st->QueueError);
    Py_VISIT(st->QueueNotFoundError);
    Py_VISIT(st->make_queue_errors);
    Py_VISIT(st->make_execution_failed);
    Py_VISIT(st->call_code);
    Py_VISIT(st->HandleType);
    Py_VISIT(st->BufferType);
    Py_VISIT(st->QueueType);
    Py_VISIT(st->LockType);
    Py_VISIT(st->RLockType);
    Py_VISIT(st->SemaphoreType);
    Py_VISIT(st->BoundedSemaphoreType);
    Py_VISIT(st->EventType);
    Py_VISIT(st->ConditionType);
    Py_VISIT(st->BarrierType);
    Py_VISIT(st->InterruptType);
    Py_VISIT(st->StrExportType);
    Py_VISIT(st->mon_codes);
    Py_VISIT(st->mon_resume);
    Py_VISIT(st->rebuild);
    Py_VISIT(st->QueueEmpty);
    Py_VISIT(st->QueueFull);
    Py_VISIT(st->QueueShutDown);
    Py_VISIT(st->queue_wrappers);
    Py_VISIT(st->dumps);
    Py_VISIT(st->loads);
    Py_VISIT(st->PickleBuffer);
    Py_VISIT(st->cp_dumps);
    Py_VISIT(st->format_exc);
    Py_VISIT(st->SimpleNamespace);
    Py_VISIT(st->kw_dumps);
    Py_VISIT(st->kw_dumps_cb);
    Py_VISIT(st->kw_loads);
    Py_VISIT(st->protocol);
    Py_VISIT(st->func_out);
    Py_VISIT(st->func_in);
    Py_VISIT(st->byvalue);
    Py_VISIT(st->byvalue_names);
    Py_VISIT(st->StreamReaderType);
    Py_VISIT(st->StreamWriterType);
    Py_VISIT(st->pk_writer);
    Py_VISIT(st->PicklerType);
    Py_VISIT(st->Unpickler);
    Py_VISIT(st->pk);
    Py_VISIT(st->pk_chunks);
    Py_VISIT(st->pk_oob);
    Py_VISIT(st->MainReference);
    Py_VISIT(st->buffer_value);
    Py_VISIT(st->cp_Pickler);
    Py_VISIT(st->mp_BaseProxy);
    Py_VISIT(st->mp_reduce_proxy);
    Py_VISIT(st->str_dump);
    Py_VISIT(st->str_clear_memo);
    Py_VISIT(st->str_load);
    Py_VISIT(st->str_module);
    Py_VISIT(st->str_mp_managers);
    return 0;
}

static int
module_clear(PyObject *module)
{
    xi_state *st = xi_state_of(module);
    Py_CLEAR(st->InterpreterError);
    Py_CLEAR(st->InterpreterNotFoundError);
    Py_CLEAR(st->ExecutionFailed);
    Py_CLEAR(st->NotShareableError);
    Py_CLEAR(st->QueueError);
    Py_CLEAR(st->QueueNotFoundError);
    Py_CLEAR(st->make_queue_errors);
    Py_CLEAR(st->make_execution_failed);
    Py_CLEAR(st->call_code);
    Py_CLEAR(st->HandleType);
    Py_CLEAR(st->BufferType);
    Py_CLEAR(st->QueueType);
    Py_CLEAR(st->LockType);
    Py_CLEAR(st->RLockType);
    Py_CLEAR(st->SemaphoreType);
    Py_CLEAR(st->BoundedSemaphoreType);
    Py_CLEAR(st->EventType);
    Py_CLEAR(st->ConditionType);
    Py_CLEAR(st->BarrierType);
    Py_CLEAR(st->InterruptType);
    Py_CLEAR(st->StrExportType);
    Py_CLEAR(st->mon_codes);
    Py_CLEAR(st->mon_resume);
    Py_CLEAR(st->rebuild);
    Py_CLEAR(st->QueueEmpty);
    Py_CLEAR(st->QueueFull);
    Py_CLEAR(st->QueueShutDown);
    Py_CLEAR(st->queue_wrappers);
    Py_CLEAR(st->dumps);
    Py_CLEAR(st->loads);
    Py_CLEAR(st->PickleBuffer);
    Py_CLEAR(st->cp_dumps);
    Py_CLEAR(st->format_exc);
    Py_CLEAR(st->SimpleNamespace);
    Py_CLEAR(st->kw_dumps);
    Py_CLEAR(st->kw_dumps_cb);
    Py_CLEAR(st->kw_loads);
    Py_CLEAR(st->protocol);
    Py_CLEAR(st->func_out);
    Py_CLEAR(st->func_in);
    Py_CLEAR(st->byvalue);
    Py_CLEAR(st->byvalue_names);
    st->byvalue_version = 0;
    Py_CLEAR(st->StreamReaderType);
    Py_CLEAR(st->StreamWriterType);
    Py_CLEAR(st->pk_writer);
    Py_CLEAR(st->PicklerType);
    Py_CLEAR(st->Unpickler);
    Py_CLEAR(st->pk);
    Py_CLEAR(st->pk_chunks);
    Py_CLEAR(st->pk_oob);
    Py_CLEAR(st->MainReference);
    Py_CLEAR(st->buffer_value);
    Py_CLEAR(st->cp_Pickler);
    Py_CLEAR(st->mp_BaseProxy);
    Py_CLEAR(st->mp_reduce_proxy);
    Py_CLEAR(st->str_dump);
    Py_CLEAR(st->str_clear_memo);
    Py_CLEAR(st->str_load);
    Py_CLEAR(st->str_module);
    Py_CLEAR(st->str_mp_managers);
    return 0;
}

static void
module_free(void *module)
{
    xi_state *st = xi_state_of((PyObject *)module);
    /* an interpreter not made by this library ends here */
    xi_lender_close(st, PyInterpreterState_Get() == PyInterpreterState_Main());
    xi_lender_forget(st);
    module_clear((PyObject *)module);
}

/* The exception classes, defined in Python. Their bases are the same on every version:
 * InterpreterError is a RuntimeError, NotShareableError a TypeError, QueueError a
 * RuntimeError. From Python 3.14 on each also is (or derives from) the standard
 * library's class of its name (concurrent.interpreters), so that code catching either
 * name catches them: the standard library's NotShareableError and queue errors have the
 * same bases and are used as they are; its InterpreterError derives from Exception only,
 * so InterpreterError, InterpreterNotFoundError and ExecutionFailed are subclasses of
 * the standard library's and of RuntimeError. Before 3.14, classes of the same shape:
 * ExecutionFailed has the standard library's constructor and str(). The queue errors are
 * made on first use (they derive from the queue module's). */
static const char errors_source[] =
"import sys\n"
"if sys.version_info >= (3, 14):\n"
"    import _interpreters\n"
"    from _interpreters import NotShareableError\n"
"    from _interpqueues import QueueError, QueueNotFoundError\n"
"    class InterpreterError(_interpreters.InterpreterError, RuntimeError):\n"
"        'An interpreter could not do what was asked.'\n"
"    class InterpreterNotFoundError(_interpreters.InterpreterNotFoundError,\n"
"                                   InterpreterError):\n"
"        'No interpreter with that id exists (or it is closed).'\n"
"    for _cls in (InterpreterError, InterpreterNotFoundError):\n"
"        _cls.__module__ = 'extrainterpreters'\n"
"    def _execution_failed():\n"
"        # on first use: importing concurrent.interpreters costs a new interpreter\n"
"        # milliseconds, and only a caller raises ExecutionFailed\n"
"        from concurrent.interpreters import ExecutionFailed as std_failed\n"
"        class ExecutionFailed(std_failed, InterpreterError):\n"
"            'Code raised an exception in another interpreter; .excinfo describes it.'\n"
"        ExecutionFailed.__module__ = 'extrainterpreters'\n"
"        ExecutionFailed.__qualname__ = 'ExecutionFailed'\n"
"        return ExecutionFailed\n"
"    def _queue_errors():\n"
"        import queue\n"
"        from concurrent.interpreters._queues import QueueEmpty, QueueFull\n"
"        class QueueShutDown(queue.ShutDown):\n"
"            'The Queue was shut down.'\n"
"        QueueShutDown.__module__ = 'extrainterpreters'\n"
"        QueueShutDown.__qualname__ = 'QueueShutDown'\n"
"        return QueueEmpty, QueueFull, QueueShutDown\n"
"else:\n"
"    class InterpreterError(RuntimeError):\n"
"        'An interpreter could not do what was asked.'\n"
"    class InterpreterNotFoundError(InterpreterError):\n"
"        'No interpreter with that id exists (or it is closed).'\n"
"    class ExecutionFailed(InterpreterError):\n"
"        'Code raised an exception in another interpreter; .excinfo describes it.'\n"
"        def __init__(self, excinfo):\n"
"            msg = excinfo.formatted\n"
"            if not msg:\n"
"                if excinfo.type and excinfo.msg:\n"
"                    msg = f'{excinfo.type.__name__}: {excinfo.msg}'\n"
"                else:\n"
"                    msg = excinfo.type.__name__ or excinfo.msg\n"
"            super().__init__(msg)\n"
"            self.excinfo = excinfo\n"
"        def __str__(self):\n"
"            try:\n"
"                formatted = self.excinfo.errdisplay\n"
"            except Exception:\n"
"                return super().__str__()\n"
"            return f'{super().__str__()}\\n\\nUncaught in the interpreter:\\n\\n{formatted}'\n"
"    def _execution_failed():\n"
"        return ExecutionFailed\n"
"    class NotShareableError(TypeError):\n"
"        'A value cannot be serialized for another interpreter.'\n"
"    class QueueError(RuntimeError):\n"
"        'A Queue could not do what was asked.'\n"
"    class QueueNotFoundError(QueueError):\n"
"        'No Queue with that id exists.'\n"
"    for _cls in (InterpreterError, InterpreterNotFoundError, ExecutionFailed,\n"
"                 NotShareableError, QueueError, QueueNotFoundError):\n"
"        _cls.__module__ = 'extrainterpreters'\n"
"    def _queue_errors():\n"
"        import queue\n"
"        class QueueEmpty(QueueError, queue.Empty):\n"
"            'get() found the Queue empty.'\n"
"        class QueueFull(QueueError, queue.Full):\n"
"            'put() found the Queue full.'\n"
"        class QueueShutDown(getattr(queue, 'ShutDown', Exception)):\n"
"            'The Queue was shut down.'\n"
"        for cls in (QueueEmpty, QueueFull, QueueShutDown):\n"
"            cls.__module__, cls.__qualname__ = 'extrainterpreters', cls.__name__\n"
"        return QueueEmpty, QueueFull, QueueShutDown\n";

/* Every call runs under a module-level frame whose globals and locals are the target's
 * __main__ (as code run by exec() there), so that eval(), exec(), globals(), dir() and
 * sys._getframe() at the top of a call see __main__. The frame's code is
 * `{0: '__xi'}[0]()` (a form no compiler warns about) with that constant replaced by
 * _call_pending, which makes the call this thread
 * prepared just before (xi_call_in_main). */
static const char call_source[] =
"_code = compile(\"{0: '__xi'}[0]()\", '<extrainterpreters>', 'eval')\n"
"call_code = _code.replace(co_consts=tuple(\n"
"    _call_pending if c == '__xi' else c for c in _code.co_consts))\n";

static PyObject *
mod_call_pending(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *func, *args, *kwargs;
    if (xi_take_pending_call(&func, &args, &kwargs) < 0) {
        return NULL;
    }
    PyObject *result = PyObject_Call(func, args, kwargs);
    /* the call's own code ends here: an interrupt that comes now must not replace its
     * result as this frame returns (run_request unmasked it) */
    xi_callctx_mask();
    return result;
}

static PyMethodDef call_pending_def = {
    "_call_pending", mod_call_pending, METH_NOARGS,
    "_call_pending()\n--\n\nthe call being made into this interpreter (the core's own use)"};

static int
init_exceptions(PyObject *module, xi_state *st)
{
    PyObject *builtins = PyImport_ImportModule("builtins");
    PyObject *ns = builtins ? PyDict_New() : NULL;
    PyObject *name = ns ? PyModule_GetNameObject(module) : NULL;
    int rc = -1;
    if (name == NULL || PyDict_SetItemString(ns, "__builtins__", builtins) < 0 ||
        PyDict_SetItemString(ns, "__name__", name) < 0) {
        goto done;
    }
    PyObject *r = PyRun_String(errors_source, Py_file_input, ns, ns);
    if (r == NULL) {
        goto done;
    }
    Py_DECREF(r);
    struct {
        PyObject **slot;
        const char *name;
        int export;
    } names[] = {
        {&st->InterpreterError, "InterpreterError", 1},
        {&st->InterpreterNotFoundError, "InterpreterNotFoundError", 1},
        {&st->make_execution_failed, "_execution_failed", 0},
        {&st->NotShareableError, "NotShareableError", 1},
        {&st->QueueError, "QueueError", 1},
        {&st->QueueNotFoundError, "QueueNotFoundError", 1},
        {&st->make_queue_errors, "_queue_errors", 0},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        PyObject *obj = PyDict_GetItemString(ns, names[i].name); /* borrowed */
        if (obj == NULL) {
            PyErr_Format(PyExc_SystemError, "%s was not defined", names[i].name);
            goto done;
        }
        *names[i].slot = Py_NewRef(obj);
        if (names[i].export && PyModule_AddObjectRef(module, names[i].name, obj) < 0) {
            goto done;
        }
    }
    /* without a reference to the module: the frame's code object holds it among its
     * constants, which the garbage collector does not traverse */
    PyObject *pending = PyCFunction_New(&call_pending_def, NULL);
    if (pending == NULL || PyDict_SetItemString(ns, "_call_pending", pending) < 0) {
        Py_XDECREF(pending);
        goto done;
    }
    Py_DECREF(pending);
    r = PyRun_String(call_source, Py_file_input, ns, ns);
    if (r == NULL) {
        goto done;
    }
    Py_DECREF(r);
    st->call_code = PyDict_GetItemString(ns, "call_code"); /* borrowed */
    if (st->call_code == NULL || !PyCode_Check(st->call_code)) {
        st->call_code = NULL;
        PyErr_SetString(PyExc_SystemError, "no code for the call frame");
        goto done;
    }
    Py_INCREF(st->call_code);
    rc = 0;
done:
    Py_XDECREF(builtins);
    Py_XDECREF(ns);
    Py_XDECREF(name);
    return rc;
}

static int
init_wire(xi_state *st)
{
    st->kw_dumps = Py_BuildValue("(s)", "protocol");
    st->kw_dumps_cb = Py_BuildValue("(ss)", "protocol", "buffer_callback");
    st->kw_loads = Py_BuildValue("(s)", "buffers");
    st->protocol = PyLong_FromLong(5);
    st->func_out = PyDict_New();
    st->func_in = PyDict_New();
    if (st->func_out == NULL || st->func_in == NULL || st->kw_dumps == NULL ||
        st->kw_dumps_cb == NULL || st->kw_loads == NULL || st->protocol == NULL) {
        return -1;
    }
    return 0;
}

/* CPython 3.12 builds the keyword-name tuple of a C function's argument parser the
 * first time the function is called with keywords, in whatever interpreter calls it,
 * and keeps it for the process: built in a subinterpreter, it is later freed into the
 * main interpreter's allocator and corrupts it. Calling the keyword forms used here
 * once in the main interpreter builds those tuples where they belong. */
static int
warm_keyword_parsers(xi_state *st)
{
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        return 0;
    }
    if (xi_wire_load_pickle(st) < 0) {
        return -1;
    }
    PyObject *pickle_module = PyImport_ImportModule("_pickle");
    if (pickle_module == NULL) {
        return -1;
    }
    PyObject *argv[3] = {Py_None, st->protocol, Py_None};
    PyObject *stream = PyObject_Vectorcall(st->dumps, argv, 1, st->kw_dumps_cb);
    if (stream == NULL) {
        Py_DECREF(pickle_module);
        return -1;
    }
    PyObject *empty = PyTuple_New(0);
    PyObject *largv[2] = {stream, empty};
    PyObject *none = empty ? PyObject_Vectorcall(st->loads, largv, 1, st->kw_loads) : NULL;
    Py_DECREF(stream);
    Py_XDECREF(empty);
    if (none == NULL) {
        Py_DECREF(pickle_module);
        return -1;
    }
    Py_DECREF(none);
    /* cloudpickle makes a _pickle.Pickler(file, protocol=..., buffer_callback=...) */
    PyObject *pickler = NULL, *io = PyImport_ImportModule("io");
    PyObject *file = io ? PyObject_CallMethod(io, "BytesIO", NULL) : NULL;
    PyObject *Pickler = file ? PyObject_GetAttrString(pickle_module, "Pickler") : NULL;
    if (Pickler != NULL) {
        PyObject *pargv[3] = {file, st->protocol, Py_None};
        pickler = PyObject_Vectorcall(Pickler, pargv, 1, st->kw_dumps_cb);
    }
    /* the decoder makes a _pickle.Unpickler(file, buffers=...) (stream.c) */
    PyObject *unpickler = NULL, *Unpickler = NULL, *ufile = NULL;
    if (pickler != NULL && (Unpickler = PyObject_GetAttrString(pickle_module, "Unpickler")) != NULL &&
        (ufile = PyObject_CallMethod(io, "BytesIO", "y", "N.")) != NULL &&
        (empty = PyTuple_New(0)) != NULL) {
        PyObject *uargv[2] = {ufile, empty};
        unpickler = PyObject_Vectorcall(Unpickler, uargv, 1, st->kw_loads);
        Py_DECREF(empty);
    }
    Py_XDECREF(io);
    Py_XDECREF(file);
    Py_XDECREF(Pickler);
    Py_XDECREF(pickler);
    Py_XDECREF(Unpickler);
    Py_XDECREF(ufile);
    Py_DECREF(pickle_module);
    if (unpickler == NULL) {
        return -1;
    }
    Py_DECREF(unpickler);
    return 0;
}

/* fork(): the handlers of the units that hold locks across it. Before it, interp's
 * registry lock is taken first, then the shared-object registry's lock, then queue's
 * error-class lock; after it, in the parent and in the child alike, they are released
 * or made anew in the reverse order. Registered once, at the first import. */
static void
atfork_prepare(void)
{
    xi_interp_atfork_prepare();
    xi_shared_atfork(0);
    xi_queue_atfork(0);
}

static void
atfork_parent(void)
{
    xi_queue_atfork(1);
    xi_shared_atfork(1);
    xi_interp_atfork_parent();
}

static void
atfork_child(void)
{
    xi_queue_atfork(2);
    xi_shared_atfork(2);
    xi_interp_atfork_child();
}

static void
register_atfork(void)
{
    (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static int
module_exec(PyObject *module)
{
    static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&atfork_once, register_atfork);
    xi_state *st = xi_state_of(module);
    if (init_exceptions(module, st) < 0) {
        return -1;
    }
    if (init_wire(st) < 0 || warm_keyword_parsers(st) < 0) {
        return -1;
    }
    st->HandleType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &xi_handle_spec, NULL);
    if (st->HandleType == NULL || PyModule_AddType(module, st->HandleType) < 0) {
        return -1;
    }
    st->BufferType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &xi_buffer_spec, NULL);
    if (st->BufferType == NULL || PyModule_AddType(module, st->BufferType) < 0) {
        return -1;
    }
    struct {
        PyTypeObject **slot;
        PyType_Spec *spec;
    } types[] = {
        {&st->QueueType, &xi_queue_spec},
        {&st->LockType, &xi_lock_spec},
        {&st->RLockType, &xi_rlock_spec},
        {&st->SemaphoreType, &xi_semaphore_spec},
        {&st->BoundedSemaphoreType, &xi_bounded_semaphore_spec},
        {&st->EventType, &xi_event_spec},
        {&st->ConditionType, &xi_condition_spec},
        {&st->BarrierType, &xi_barrier_spec},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        *types[i].slot = (PyTypeObject *)PyType_FromModuleAndSpec(module, types[i].spec, NULL);
        if (*types[i].slot == NULL || PyModule_AddType(module, *types[i].slot) < 0) {
            return -1;
        }
    }
    st->InterruptType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &xi_interrupt_spec, PyExc_KeyboardInterrupt);
    if (st->InterruptType == NULL) {
        return -1;
    }
    st->StrExportType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &xi_str_export_spec, NULL);
    if (st->StrExportType == NULL) {
        return -1;
    }
    if ((st->rebuild = PyObject_GetAttrString(module, "_rebuild")) == NULL) {
        return -1;
    }
    if (xi_stream_init(module, st) < 0) {
        return -1;
    }
    if (xi_interp_init_main() < 0) {
        return -1;
    }
    /* so that the core finds this interpreter's module state when it switches in */
    PyObject *dict = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (dict == NULL || PyDict_SetItemString(dict, XI_MODULE_KEY, module) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "no interpreter dict");
        }
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "extrainterpreters._xi",
    .m_doc = "The C core of extrainterpreters.",
    .m_size = sizeof(xi_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__xi(void)
{
    return PyModuleDef_Init(&module_def);
}
