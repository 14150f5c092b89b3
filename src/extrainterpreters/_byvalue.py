"""The pickler of what crosses by value: functions and classes that the receiving
interpreter cannot import by name (defined in ``__main__``, locally, or lambdas).

It is cloudpickle's, with one change: code objects cross as marshal writes them.
That copy is exact (cloudpickle rebuilds code with the ``CodeType`` constructor,
which keeps what the code does but drops what the compiler recorded about the kind
of each local, e.g. which are arguments) and faster to write and read.
"""
import io
import marshal
import types
from collections import ChainMap

import cloudpickle

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


class Pickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({types.CodeType: _reduce_code},
                              *getattr(_cloudpickle_table, "maps", [_cloudpickle_table]))


def dumps(obj, protocol=None, buffer_callback=None):
    """cloudpickle.dumps, with this module's Pickler."""
    with io.BytesIO() as file:
        Pickler(file, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()
