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
from .interpreter import Interpreter, create, get_current, get_main, list_all

__all__ = [
    "ExecutionFailed",
    "Interpreter",
    "InterpreterError",
    "InterpreterNotFoundError",
    "NotShareableError",
    "create",
    "get_current",
    "get_main",
    "list_all",
]
