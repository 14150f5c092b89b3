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

_cloudpickle_reduce_code = cloudpickle.Pickler.dispatch_table[types.CodeType]


def _reduce_code(code):
    try:
        data = marshal.dumps(code)
    except ValueError:
        # a constant that marshal cannot write (code built by hand with CodeType)
        return _cloudpickle_reduce_code(code)
    return marshal.loads, (data,)


class Pickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table)


def dumps(obj, protocol=None, buffer_callback=None):
    """cloudpickle.dumps, with this module's Pickler."""
    with io.BytesIO() as file:
        Pickler(file, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()
