"""Subinterpreters with their own GIL, made practical.

    import extrainterpreters as xi

    with xi.Interpreter() as interp:
        interp.run(func, *args, **kwargs)
"""
from ._xi import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    ExecutionFailed,
    InterpreterError,
    InterpreterNotFoundError,
    Lock,
    NotShareableError,
    Queue,
    RLock,
    Semaphore,
    SharedBuffer,
    shared_objects,
)

# Every interpreter that receives a call imports this package (for the C core), so the
# parts that need more than the core load on first use: a new interpreter stays cheap.
_LAZY = {
    "BrokenInterpreterPool": "executor",
    "InterpreterPoolExecutor": "executor",
    "aio": None,
    "Interpreter": "interpreter",
    "create": "interpreter",
    "get_current": "interpreter",
    "get_main": "interpreter",
    "list_all": "interpreter",
}

_QUEUE_ERRORS = ("QueueEmpty", "QueueFull", "QueueShutDown")

__all__ = sorted(
    ["ExecutionFailed", "InterpreterError", "InterpreterNotFoundError",
     "NotShareableError", "Queue", "SharedBuffer", "create_queue", "shared_objects",
     "Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "Semaphore",
     *_QUEUE_ERRORS, *_LAZY]
)


def create_queue(maxsize=0):
    """A new Queue (the same as Queue(maxsize))."""
    return Queue(maxsize)


def __getattr__(name):
    if name == "__version__":
        from importlib.metadata import version

        return version("extrainterpreters")
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


def __dir__():
    return __all__
