"""The pickler of what crosses by value: functions and classes that the receiving
interpreter cannot import by name (defined in ``__main__``, locally, lambdas, or in a
module that an interpreter of the process failed to import).

It is cloudpickle's, with these changes:

- code objects cross as marshal writes them. That copy is exact (cloudpickle rebuilds
  code with the ``CodeType`` constructor, which keeps what the code does but drops what
  the compiler recorded about the kind of each local, e.g. which are arguments) and
  faster to write and read;
- functions and classes of the modules in ``_xi._by_value_modules()`` cross by value,
  with the globals they use: the receiver never imports their module;
- a function of a script's ``__main__`` that cannot cross by value (a global it uses
  cannot be pickled) crosses by name instead: the receiver imports the script as
  ``__mp_main__`` (see _script.py). The choice is made once per function, and made
  again when one of the globals it uses is rebound (a cache filled later).
"""
import io
import marshal
import os
import sys
import threading
import types
import weakref
from collections import ChainMap

import cloudpickle
from cloudpickle import cloudpickle as _cp

from . import _mp_proxies, _xi  # type: ignore[attr-defined]  # the C core has no stub

_cloudpickle_table = cloudpickle.Pickler.dispatch_table
_cloudpickle_reduce_code = _cloudpickle_table[types.CodeType]

# constants that marshal writes and reads back as the same type (it writes any other
# object with a buffer, a bytes subclass say, as bytes)
_EXACT = frozenset({type(None), bool, int, float, complex, str, bytes, type(Ellipsis),
                    slice})


def _marshals_exactly(consts):
    for c in consts:
        t = type(c)
        if t is types.CodeType:
            if not _marshals_exactly(c.co_consts):
                return False
        elif t is tuple or t is frozenset:
            if not _marshals_exactly(c):
                return False
        elif t not in _EXACT:
            return False
    return True


def _reduce_code(code):
    if _marshals_exactly(code.co_consts):
        try:
            return marshal.loads, (marshal.dumps(code),)
        except ValueError:
            pass  # a constant this version's marshal cannot write (a slice before 3.14)
    # constants put there by hand (CodeType, code.replace()), of other types
    return _cloudpickle_reduce_code(code)


# -- modules that cross by value ---------------------------------------------------

def _crosses_by_value(module):
    """Whether functions and classes of `module` (a name) cross by value."""
    names = _xi._by_value_modules()
    if not names or not isinstance(module, str):
        return False
    while True:
        if module in names:
            return True
        module, dot, _ = module.rpartition(".")
        if not dot:
            return False


# -- functions of a script's __main__ ------------------------------------------------

_BY_NAME = "by name"  # the function crosses by name: the receiver imports the script


class _ByValue:
    """A __main__ function that crosses by value, with what its globals were when it
    was last found to: a global rebound (or a container grown or shrunk) since then
    makes the choice again."""

    __slots__ = ("marks",)

    def __init__(self, func):
        self.marks = _marks(func)


def _marks(func):
    glob = func.__globals__
    marks = []
    for name in _cp._extract_code_globals(func.__code__):
        value = glob.get(name)
        marks.append((id(value), len(value) if type(value) in (dict, list, set) else -1))
    return marks


# function -> _BY_NAME or _ByValue
_main_choice: "weakref.WeakKeyDictionary[types.FunctionType, object]" = weakref.WeakKeyDictionary()
# functions being tried by value in this thread (their own trial pickles them by value)
_trying = threading.local()


def _script_source():
    """How a receiver finds this script: ("module", name) for ``python -m name``,
    ("path", file) for a script file, None for code without a file (-c, the REPL,
    a notebook)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if name and name != "__main__":
        return ("module", name)
    path = getattr(main, "__file__", None)
    if isinstance(path, str) and os.path.isfile(path):
        return ("path", os.path.abspath(path))
    return None


def _findable_in_main(func):
    """Whether func is __main__.<its qualified name>."""
    obj = sys.modules.get("__main__")
    try:
        for part in func.__qualname__.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        return False
    return obj is func


def _fails_by_value(func):
    """Whether pickling func by value raises (it is pickled into nothing)."""
    trying = getattr(_trying, "funcs", None)
    if trying is None:
        trying = _trying.funcs = set()
    trying.add(id(func))
    try:
        Pickler(_Discard(), protocol=5).dump(func)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException:  # noqa: BLE001 - any failure is the answer
        return True
    finally:
        trying.discard(id(func))
    return False


def main_choice(func):
    """_BY_NAME when func (a function of __main__) crosses by name, else None."""
    if id(func) in getattr(_trying, "funcs", ()):
        return None  # its own trial: by value, whatever another thread chose meanwhile
    choice = _main_choice.get(func)
    if choice is _BY_NAME:
        return _BY_NAME
    if choice is not None and choice.marks == _marks(func):
        return None
    if (_script_source() is not None and "<locals>" not in func.__qualname__
            and _findable_in_main(func) and _fails_by_value(func)):
        # results naming classes of the script, pickled by the receiver as
        # __mp_main__'s, are found here, as multiprocessing does
        sys.modules.setdefault("__mp_main__", sys.modules["__main__"])
        _main_choice[func] = _BY_NAME
        return _BY_NAME
    _main_choice[func] = _ByValue(func)
    return None


def _function_of_script(func):
    from . import _script

    return _script.function, (_script_source(), func.__qualname__)


class Pickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({types.CodeType: _reduce_code},
                              *getattr(_cloudpickle_table, "maps", [_cloudpickle_table]))

    def _function_reduce(self, obj):
        module = obj.__module__
        if module == "__main__":
            if main_choice(obj) is _BY_NAME:
                return _function_of_script(obj)
        elif _crosses_by_value(module):
            return self._dynamic_function_reduce(obj)
        return super()._function_reduce(obj)

    def reducer_override(self, obj):
        if isinstance(obj, type) and _crosses_by_value(getattr(obj, "__module__", None)):
            return _cp._dynamic_class_reduce(obj)
        managers = sys.modules.get("multiprocessing.managers")
        if managers is not None and isinstance(obj, managers.BaseProxy):
            return _mp_proxies.reduce(obj)
        return super().reducer_override(obj)


class _Discard:
    """A file that drops what is written to it."""

    @staticmethod
    def write(data):
        return len(data)


def dumps(obj, protocol=None, buffer_callback=None):
    """cloudpickle.dumps, with this module's Pickler."""
    with io.BytesIO() as file:
        Pickler(file, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()
