"""Subinterpreters with their own GIL, made practical.

    import extrainterpreters as xi

    with xi.Interpreter() as interp:
        interp.run(func, *args, **kwargs)
"""
import sys as _sys

from ._xi import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    InterpreterError,
    InterpreterNotFoundError,
    Lock,
    NotShareableError,
    Queue,
    QueueError,
    QueueNotFoundError,
    RLock,
    Semaphore,
    SharedBuffer,
    shared_objects,
)

# extrainterpreters 0.3.0's name of a queue with one consumer: any Queue is one
SingleQueue = Queue

# Every interpreter that receives a call imports this package (for the C core), so the
# parts that need more than the core load on first use: a new interpreter stays cheap.
_LAZY = {
    "BrokenInterpreterPool": "executor",
    "FallbackWarning": "executor",
    "InterpreterPoolExecutor": "executor",
    "aio": None,
    "Interpreter": "interpreter",
    "create": "interpreter",
    "get_current": "interpreter",
    "get_main": "interpreter",
    "list_all": "interpreter",
    "raw_list_all": "interpreter",
    "ResultNotReadyError": "interpreter",
}

_QUEUE_ERRORS = ("QueueEmpty", "QueueFull", "QueueShutDown")

_UNBOUND = ("UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE")

__all__ = sorted(
    ["ExecutionFailed", "InterpreterError", "InterpreterNotFoundError",
     "NotShareableError", "Queue", "QueueError", "QueueNotFoundError", "SharedBuffer",
     "SingleQueue",
     "create_queue", "is_shareable", "shared_objects", *_UNBOUND,
     "Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "Semaphore",
     *_QUEUE_ERRORS, *_LAZY]
)


def create_queue(maxsize=0, *, unbounditems=None):
    """A new Queue (the same as Queue(maxsize=maxsize)).

    unbounditems is accepted as in concurrent.interpreters (UNBOUND, UNBOUND_ERROR or
    UNBOUND_REMOVE) and changes nothing: an item of this library's Queue is a copy that
    outlives the interpreter that put it, so it never becomes unbound."""
    if unbounditems is not None and not _is_unbound_op(unbounditems):
        raise NotImplementedError(f"unsupported unbound replacement op {unbounditems!r}")
    return Queue(maxsize=maxsize)


def _is_unbound_op(value):
    # this package's markers, or the standard library's (Python 3.14 and later)
    import sys

    std = [sys.modules.get(f"concurrent.interpreters.{m}") for m in ("_crossinterp", "_queues")]
    return any(value is __getattr__(name) or any(value is getattr(m, name, None) for m in std)
               for name in _UNBOUND)


def is_shareable(obj):
    """Whether obj can be sent to another interpreter (as an argument, a result or a
    Queue item). This library sends anything pickle or cloudpickle can serialize, so
    it accepts more than concurrent.interpreters.is_shareable()."""
    import pickle

    try:
        pickle.dumps(obj, protocol=5)
        return True
    except Exception:
        pass
    try:
        import cloudpickle

        cloudpickle.dumps(obj, protocol=5)
        return True
    except Exception:
        return False


def __getattr__(name):
    if name == "__version__":
        from importlib.metadata import version

        return version("extrainterpreters")
    if name == "ExecutionFailed":
        # made on first use (on 3.14 and later it is concurrent.interpreters')
        from ._xi import ExecutionFailed

        globals()[name] = ExecutionFailed
        return ExecutionFailed
    if name in _UNBOUND:
        value = globals().get(name) or _Marker(name)
        globals()[name] = value
        return value
    if name in _QUEUE_ERRORS:
        # they derive from the queue module's exceptions, imported on first use
        from . import _xi

        errors = dict(zip(_QUEUE_ERRORS, _xi._queue_errors()))
        globals().update(errors)
        return errors[name]
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f"{__name__}.{_LAZY[name] or name}")
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


class _PickleOnFirstUse(type(_sys)):
    """__main__.pickle of a new interpreter until pickle is first used (_bind_main)."""

    def __getattr__(self, attr):
        import pickle

        main = _sys.modules["__main__"].__dict__
        if main.get("pickle") is self:
            main["pickle"] = pickle
        return getattr(pickle, attr)


def _bind_main():
    """Binds sys and pickle in the __main__ of a new interpreter made by
    Interpreter.start() (the C core calls it there; create() and a pool's workers start
    bare, as the standard library's), as extrainterpreters 0.3.0 did, so that code run with
    run_string() uses them without importing them. pickle is imported on first use, so
    that a new interpreter stays cheap: until then __main__.pickle is a stand-in module
    that imports pickle when one of its attributes is read, and puts the module in its
    place. Names already bound are left alone; a function sent by value that brings its
    own global sys or pickle (`import dill as pickle`) keeps it (module.c,
    rebind_to_main)."""
    main = _sys.modules["__main__"].__dict__
    main.setdefault("sys", _sys)
    main.setdefault("pickle", _sys.modules.get("pickle") or _PickleOnFirstUse("pickle"))


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"extrainterpreters.{self._name}"

    def __reduce__(self):
        return (__getattr__, (self._name,))


def __dir__():
    return __all__
