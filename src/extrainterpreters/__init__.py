"""Subinterpreters with their own GIL, made practical.

    import extrainterpreters as xi

    with xi.Interpreter() as interp:
        interp.run(func, *args, **kwargs)
"""
from ._xi import (
    ExecutionFailed,
    InterpreterError,
    InterpreterNotFoundError,
    NotShareableError,
)

# Every interpreter that receives a call imports this package (for the C core), so the
# parts that need more than the core load on first use: a new interpreter stays cheap.
_LAZY = {
    "Interpreter": "interpreter",
    "create": "interpreter",
    "get_current": "interpreter",
    "get_main": "interpreter",
    "list_all": "interpreter",
}

__all__ = sorted(
    ["ExecutionFailed", "InterpreterError", "InterpreterNotFoundError",
     "NotShareableError", *_LAZY]
)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
