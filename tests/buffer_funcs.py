"""Functions the buffer tests run inside interpreters (importable everywhere)."""
import array
import dataclasses
import hashlib


@dataclasses.dataclass
class Record:
    name: str
    payload: object
    extra: object = None


class Holder:
    def __init__(self, data, more=None):
        self.data = data
        self.more = more

    def __eq__(self, other):
        return type(other) is Holder and (self.data, self.more) == (other.data, other.more)


class ArraySub(array.array):
    pass


def identity(x):
    return x


def fingerprint(x):
    """A structure-and-content summary that only depends on the value: types, lengths
    and digests of buffers, recursively."""
    if isinstance(x, (bytes, bytearray)):
        return (type(x).__name__, len(x), hashlib.sha1(x).hexdigest())
    if isinstance(x, memoryview):
        return ("memoryview", x.format, x.shape, x.readonly, hashlib.sha1(x.tobytes()).hexdigest())
    if isinstance(x, array.array):
        return ("array", x.typecode, len(x), hashlib.sha1(x.tobytes()).hexdigest())
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [fingerprint(i) for i in x])
    if isinstance(x, (set, frozenset)):
        return (type(x).__name__, sorted(repr(fingerprint(i)) for i in x))
    if isinstance(x, dict):
        return ("dict", [(fingerprint(k), fingerprint(v)) for k, v in x.items()])
    if isinstance(x, Record):
        return ("Record", x.name, fingerprint(x.payload), fingerprint(x.extra))
    if isinstance(x, Holder):
        return ("Holder", fingerprint(x.data), fingerprint(x.more))
    return (type(x).__name__, repr(x))


def make(kind, size, seed=0):
    """remote_funcs.make_payload, and an array.array of bytes too."""
    import remote_funcs as rf

    if kind == "array":
        return array.array("B", rf.pattern(size, seed))
    return rf.make_payload(kind, size, seed)


def nested(kind, size):
    """A block of each shape a value can hide it in, built where it is called."""
    b = make(kind, size, 1)
    return {"list": [b], "tuple": (1, b), "dict": {"k": b}, "record": Record("r", b),
            "holder": Holder([b], more=(b,))}


class ShrinksOnReduce:
    """Resizes a bytearray while a value holding both is pickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        del self.target[: len(self.target) // 2]
        return (int, (0,))
