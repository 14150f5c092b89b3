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
import sys
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
    return _refusal_in_chain(exc, (_REFUSED,))


def _refusal_in_chain(exc, patterns):
    """The module named by the first of `patterns` that matches the message of exc or
    of an exception of its chain (causes, and contexts not suppressed), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = _refusal_in_text(str(exc), patterns)
        if name is not None:
            return name
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif not exc.__suppress_context__:
            exc = exc.__context__
        else:
            exc = None
    return None


def _refusal_in_text(text, patterns):
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return m.group(1)
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


# modules that never cross by value: this package, and the scripts' __main__ (which
# crosses by value or by name, see _byvalue.py)
_NEVER_BY_VALUE = ("extrainterpreters", "__main__", "__mp_main__")


def unimportable_module(exc):
    """In the target: the module whose import raised ``exc`` (an ImportError) while a
    value was unpickled, or None. The unpickler imports the module of each name it
    meets; the outermost module whose top-level code the traceback shows is the one it
    imported (a module it imports fails inside it). A module not found at all shows no
    code: then it is the one named by the error."""
    if not isinstance(exc, ImportError):
        return None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "<module>":
            name = frame.f_globals.get("__name__")
            if isinstance(name, str) and not name.startswith(("importlib.", "_frozen_importlib")):
                return _learnable(name)
        tb = tb.tb_next
    if isinstance(exc, ModuleNotFoundError):
        return _learnable(exc.name)
    return None


def _learnable(name):
    if not isinstance(name, str) or not name:
        return None
    top = name.partition(".")[0]
    if top in _NEVER_BY_VALUE or top in sys.stdlib_module_names:
        return None
    return name


def not_unpickled(exc):
    """In the target: the error that a call's callable or arguments raised while they
    were unpickled, as NotShareableError raised from it. The refusal of an extension
    module is named in its message, which reaches the caller. When importing a module
    failed, the process learns that module's functions and classes cross by value from
    now on, and the error names it (``unimportable``), so that the caller sends again."""
    from . import NotShareableError, _xi

    refused = refused_message(exc)
    err = NotShareableError(_NOT_UNPICKLED if refused is None else f"{_NOT_UNPICKLED}: {refused}")
    err.__cause__ = exc
    module = unimportable_module(exc)
    if module is not None:
        _xi._learn_by_value(module)
        err.unimportable = module
    return err


def learn_from_failed_rebuild(exc):
    """In the interpreter where a Queue item could not be rebuilt: when importing a
    module failed, the process learns that the module's functions and classes cross by
    value from now on (as for a call, not_unpickled), and the error says so."""
    from . import _xi

    module = unimportable_module(exc)
    if module is not None:
        _xi._learn_by_value(module)
        exc.add_note(
            f"extrainterpreters: module {module!r} cannot be imported in this interpreter: "
            "from now on its functions and classes cross by value, so the same item put "
            "again can be rebuilt here")


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
            f"'{_type_name(leaf)}' object, which cannot be pickled ({error})"
            f"{_main_ways(culprit)}")


_ADVICE = ("Create the object it needs inside the function, or in a module that the "
           "interpreter can import; or run it in a process, e.g. with "
           "InterpreterPoolExecutor(fallback=\"process\").")


def _main_ways(func):
    """For a function of __main__ that could not cross by value: why it could not cross
    by name either, and what to do."""
    if not isinstance(func, types.FunctionType) or func.__module__ != "__main__":
        return ""
    from . import _byvalue

    if _byvalue._script_source() is None:
        why = "the program has no script file to import it from (-c, the REPL, a notebook)"
    elif "<locals>" in func.__qualname__ or not _byvalue._findable_in_main(func):
        why = f"it is not a name of the script's module ({func.__qualname__})"
    else:
        return ""
    return f".\nBy value it cannot cross, and not by name: {why}. {_ADVICE}"


def _reason(exc):
    """What made a call's unpickling fail in the target, in one line: the message after
    "func/args not shareable: ", else the message of the innermost error."""
    text = str(exc)
    for prefix in ("func not shareable: ", "args not shareable: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}"


def no_way_to_send(func, failures, last, interp_id):
    """In the caller: the NotShareableError of a call that could be sent by no way.
    ``failures``: [(module, error)] for each module that the target could not import,
    whose functions and classes were then sent by value; ``last``: the error of the
    last try."""
    from . import NotShareableError

    what = _describe(func) or f"{_type_name(func)} object"
    lines = [f"the call of {what} could not be sent to interpreter {interp_id}:"]
    for module, exc in failures:
        if exc is None:
            lines.append(f"- by reference: not tried, module {module!r} was found not "
                         f"importable in interpreters of this process before")
        else:
            lines.append(f"- by reference: importing module {module!r} there failed "
                         f"({_reason(exc)})")
    module = getattr(last.__cause__, "unimportable", None)
    if module is not None:
        lines.append(f"- by value: it still needs module {module!r}, whose import failed "
                     f"there ({_reason(last)})")
    else:
        lines.append(f"- by value: {_reason(last) if last.__cause__ is not None else last}")
    if refused_message_in(last) is not None:
        lines.append("It needs an extension module that isolated interpreters cannot load: "
                     "run it in a process, e.g. with InterpreterPoolExecutor("
                     "fallback=\"process\"), or in an Interpreter(config=\"legacy\") if "
                     "the module supports several interpreters.")
    else:
        lines.append(_ADVICE)
    return NotShareableError("\n".join(lines))


def no_way_from_script(func, exc, interp_id):
    """In the caller: the NotShareableError of a call of func, a function of the script's
    __main__ that could not cross by value (a global it uses cannot be pickled) and was
    sent by name, when the target could not import the script (exc)."""
    from . import NotShareableError

    by_value = not_shareable_message(func, "a global it uses cannot be pickled",
                                     _pickle_error(func))
    by_value = by_value.split(" cannot be shared with another interpreter: ", 1)[-1]
    lines = [f"the call of {_describe(func)} could not be sent to interpreter {interp_id}:",
             f"- by value: {by_value}",
             f"- by name: importing the script there failed ({_reason(exc)})"]
    if refused_message_in(exc) is not None:
        lines.append("The script imports an extension module that isolated interpreters "
                     "cannot load: run the task in a process, e.g. with "
                     "InterpreterPoolExecutor(fallback=\"process\"), or create the object "
                     "it needs inside the function.")
    else:
        lines.append(_ADVICE)
    return NotShareableError("\n".join(lines))


_REFUSED_REWORDED = re.compile(r"module '([^']+)' does not support subinterpreters")
_BOTH_WORDINGS = (_REFUSED, _REFUSED_REWORDED)


def refused_in_description(desc):
    """The extension module named by a refusal in an exception described by
    _xi._describe_exception() (its message), or None."""
    try:
        text = desc[3]
    except (TypeError, IndexError):
        return None
    if not isinstance(text, str):
        return None
    return _refusal_in_text(text, _BOTH_WORDINGS)


# modules that calls from this interpreter found not importable in isolated interpreters
# because an extension module refused them: module -> that extension module
_refused_modules: dict[str, str] = {}


def note_unimportable(module, exc):
    """In the caller: the target failed to import module with exc (see not_unpickled)."""
    name = refused_message_in(exc)
    if name is not None:
        _refused_modules[module] = name


def refusal_keeping_out(obj):
    """The extension module whose refusal keeps the module of obj (a function or class)
    out of isolated interpreters, as calls from here found it, else None."""
    module = getattr(obj, "__module__", None)
    if not _refused_modules or not isinstance(module, str):
        return None
    while module:
        if module in _refused_modules:
            return _refused_modules[module]
        module = module.rpartition(".")[0]
    return None


def refused_message_in(exc):
    """The extension module named by a refusal in the messages of exc and its causes,
    as CPython or this library words it, or None."""
    return _refusal_in_chain(exc, _BOTH_WORDINGS)
