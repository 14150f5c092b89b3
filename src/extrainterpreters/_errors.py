"""Messages that lead to the cause of a failure, made only when something failed.

- A value that cannot be sent: the object inside it that cannot be pickled, and where
  it sits (a closure variable, a global or a default of a function sent by value, an
  attribute, an item).
- An extension module that refuses subinterpreters: said so, with what to do.
- A call whose callable or arguments could not be unpickled in the target: raised as
  the standard library raises it, NotShareableError("args not shareable") from
  NotShareableError("object could not be unpickled").

Imported by the C core on those error paths only; the standard library only.
"""
import re
import types

# CPython's message when an extension module refuses a subinterpreter
_REFUSED = re.compile(r"module (\S+) does not support loading in subinterpreters")

# how deep the search for an unpicklable object goes, and how many objects it tries
_MAX_DEPTH = 8
_MAX_TRIES = 500

# never the culprit: pickled whatever they hold
_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None), range, slice)


def refused_extension(exc):
    """The name of the extension module whose refusal of subinterpreters caused
    ``exc`` (found in its message or in its chain of causes), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        m = _REFUSED.search(str(exc))
        if m:
            return m.group(1)
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif not exc.__suppress_context__:
            exc = exc.__context__
        else:
            exc = None
    return None


def refused_message(exc):
    """The message for a failure caused by an extension module that refuses
    subinterpreters, or None when ``exc`` is not one."""
    if not isinstance(exc, ImportError):
        return None  # another error, raised while handling one: its own message stays
    name = refused_extension(exc)
    if name is None:
        return None
    return (f"module {name!r} does not support subinterpreters (a limit of that module, "
            f"not of extrainterpreters): run code that needs it in the main interpreter; "
            f"see docs/compatibility.md")


_NOT_UNPICKLED = "object could not be unpickled"


def not_unpickled(exc):
    """In the target: the error that a call's callable or arguments raised while they
    were unpickled, as NotShareableError raised from it. The refusal of an extension
    module is named in its message, which reaches the caller."""
    from . import NotShareableError

    refused = refused_message(exc)
    err = NotShareableError(_NOT_UNPICKLED if refused is None else f"{_NOT_UNPICKLED}: {refused}")
    err.__cause__ = exc
    return err


def call_not_shareable(exc, what):
    """In the caller: NotShareableError("func not shareable" or "args not shareable")
    raised from ``exc``, the rebuilt error of not_unpickled()."""
    from . import NotShareableError

    msg = f"{what} not shareable"
    text = str(exc)
    if text.startswith(f"{_NOT_UNPICKLED}: "):
        msg += text[len(_NOT_UNPICKLED):]
    err = NotShareableError(msg)
    err.__cause__ = exc
    return err


def _pickle_error(obj):
    """The exception pickling obj raises here as this library sends it, or None."""
    try:
        import cloudpickle as pickler
    except ImportError:
        import pickle as pickler
    try:
        # into a file that keeps nothing: a large part costs no memory here
        pickler.Pickler(_Discard(), protocol=5).dump(obj)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return exc
    return None


class _Discard:
    """A file that drops what is written to it."""

    @staticmethod
    def write(data):
        return len(data)


def _global_names(code, seen=None):
    """The names code (and the code nested in it) may read as globals."""
    seen = set() if seen is None else seen
    if id(code) in seen:
        return []
    seen.add(id(code))
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(n for n in _global_names(const, seen) if n not in names)
    return names


def _function_parts(func):
    code = func.__code__
    for name, cell in zip(code.co_freevars, func.__closure__ or ()):
        try:
            yield f"closure variable {name!r}", cell.cell_contents
        except ValueError:  # an empty cell
            continue
    defaults = func.__defaults__ or ()
    if defaults:
        positional = code.co_varnames[:code.co_argcount]
        for name, value in zip(positional[len(positional) - len(defaults):], defaults):
            yield f"default of parameter {name!r}", value
    for name, value in (func.__kwdefaults__ or {}).items():
        yield f"default of parameter {name!r}", value
    glob = func.__globals__
    for name in _global_names(code):
        if name in glob:
            yield f"global {name!r}", glob[name]


def _parts(obj):
    """(label, value) for each object that pickling obj pickles as well."""
    import functools

    if isinstance(obj, types.FunctionType):
        yield from _function_parts(obj)
    elif isinstance(obj, types.MethodType):
        yield "bound object", obj.__self__
        yield "function", obj.__func__
    elif isinstance(obj, functools.partial):
        yield "function", obj.func
        for i, value in enumerate(obj.args):
            yield f"argument {i}", value
        for name, value in obj.keywords.items():
            yield f"argument {name!r}", value
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield f"item {key!r}", value
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield f"item {i}", value
    elif isinstance(obj, (set, frozenset)):
        for value in obj:
            yield "element", value
    else:
        try:
            attrs = vars(obj)
        except TypeError:
            attrs = {}
        if isinstance(attrs, dict):
            for name, value in list(attrs.items()):
                yield f"attribute {name!r}", value


def _locate(obj, budget, depth=0, seen=None):
    """[(label, value, error), ...]: the path from obj (which fails to pickle) down to
    the innermost part that fails too."""
    seen = set() if seen is None else seen
    if depth >= _MAX_DEPTH or id(obj) in seen:
        return []
    seen.add(id(obj))
    for label, value in _parts(obj):
        if budget[0] <= 0:
            return []
        if isinstance(value, _ATOMS):
            continue
        budget[0] -= 1
        error = _pickle_error(value)
        if error is not None:
            return [(label, value, error)] + _locate(value, budget, depth + 1, seen)
    return []


def _type_name(obj):
    tp = type(obj)
    if tp.__module__ == "builtins":
        return tp.__qualname__
    return f"{tp.__module__}.{tp.__qualname__}"


def _describe(obj):
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        return (f"function {obj.__qualname__} (defined in {obj.__module__}, "
                f"line {code.co_firstlineno})")
    return None


def not_shareable_message(culprit, message, cause):
    """The message of the NotShareableError raised for culprit, whose pickling raised
    cause: ``message`` unless the unpicklable object inside culprit is found (or culprit
    is a function, named with where it was defined)."""
    refused = refused_message(cause) if isinstance(cause, BaseException) else None
    if refused is not None:
        # pickling it imported a module that this interpreter cannot load
        return f"{_type_name(culprit)} object cannot be shared with another interpreter: {refused}"
    import pickle

    path = []
    # searched only when something could not be pickled (not, say, a BufferError of a
    # buffer resized meanwhile): the search pickles the parts again, running their
    # reduce methods
    if isinstance(cause, (TypeError, AttributeError, pickle.PicklingError)):
        try:
            path = _locate(culprit, [_MAX_TRIES])
        except Exception:  # noqa: BLE001 - a search that fails leaves the message as it is
            path = []
    described = _describe(culprit)
    if not path:
        if described is None:
            return message
        return f"{described} cannot be shared with another interpreter: {cause}"
    head = described or f"{_type_name(culprit)} object"
    where = " -> ".join(label for label, _, _ in path)
    if where.startswith("default of parameter"):
        where = "the default of its" + where[len("default of"):]
    else:
        where = "its " + where
    _, leaf, error = path[-1]
    return (f"{head} cannot be shared with another interpreter: {where} holds a "
            f"'{_type_name(leaf)}' object, which cannot be pickled ({error})")
