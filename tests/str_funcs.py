"""Functions the str transfer tests run inside interpreters (importable everywhere)."""
import gc

KiB = 1 << 10
MiB = 1 << 20

# one character of each storage CPython picks for a str
CHARS = {
    "ascii": "a",
    "latin1": "\xe9",
    "ucs2": "\u20ac",
    "ucs4": "\U0001f600",
    "surrogate": "\ud800",  # a lone surrogate: UCS-2 storage
}
WIDTH = {"ascii": 1, "latin1": 1, "ucs2": 2, "ucs4": 4, "surrogate": 2}


def make(kind, storage):
    """A str of `kind` whose storage takes `storage` bytes (a multiple of its width):
    varied characters, one of them the kind's own so that the storage is that kind's."""
    n = storage // WIDTH[kind]
    body = "".join(chr(0x20 + i % 90) for i in range(min(n, 1000)))
    s = (body * (n // max(len(body), 1) + 1))[: n - 1] + CHARS[kind] if n else ""
    return s


def storage_of(s):
    """(length, bytes a character) of a str, computed the way CPython picks its
    storage."""
    top = max(map(ord, s), default=0)
    return len(s), 1 if top < 0x100 else 2 if top < 0x10000 else 4


def identity(x):
    return x


def describe(x):
    """What a value is, shallowly: its type and, for a str, its length and a hash."""
    if type(x) in (tuple, list):
        return (type(x).__name__, [describe(i) for i in x])
    if type(x) is dict:
        return ("dict", {k: describe(v) for k, v in x.items()})
    if isinstance(x, str):
        return (type(x).__name__, len(x), hash(x))
    return (type(x).__name__, repr(x))


def same(a, b):
    return a is b


def nest(value, shape, depth):
    """value at `depth` levels inside containers of `shape` (tuple, list or dict)."""
    for _ in range(depth):
        value = {"k": value} if shape == "dict" else (value,) if shape == "tuple" else [value]
    return value


def made(kind, storage, shape="none", depth=0):
    """A str made in the interpreter that runs this, maybe nested: a result."""
    return nest(make(kind, storage), shape, depth)


def length(s):
    return len(s)


def aliasing(a, b):
    return a is b, a[0] is b[0]


def self_contained(lst):
    return lst[1] is lst, lst[0]


class MyStr(str):
    """A str subclass: it must cross as itself, pickled."""

    def tag(self):
        return "mine"


def subclass_back(s):
    return type(s) is MyStr, s.tag(), str(s)


def inside_checks():
    """Run inside a subinterpreter: encodings and a queue round trip made there."""
    from extrainterpreters import Queue, _xi

    out = []
    for kind in CHARS:
        s = make(kind, 64 * KiB)
        size, pieces, segs, held = _xi._encode(s)
        out.append((kind, segs, held))
        q = Queue()
        q.put([(s,)])
        back = q.get()
        assert back == [(s,)] and type(back[0][0]) is str, kind
    return out


# Key.__hash__ runs while a dict holding a large str is copied (wire.c substitution):
# it empties the containers listed here
TARGETS = []


class Key:
    def __hash__(self):
        for t in TARGETS:
            t.clear()
        return 1

    def __eq__(self, other):
        return type(other) is Key


class Spy:
    """Pickled with the value: looks for str exports among what the collector tracks."""

    def __reduce__(self):
        found = [type(o).__name__ for o in gc.get_objects()
                 if type(o).__name__ in ("_StrExport", "PickleBuffer")]
        return (list, (found,))
