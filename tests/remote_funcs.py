"""Module-level functions and classes the tests send into subinterpreters.

Everything here is importable by name (it lives on ``sys.path`` next to the tests),
so pickle sends these by reference. The module imports only the standard library
at the top so that loading it inside a subinterpreter stays cheap. (It avoids ``hashlib``:
on CPython 3.12.1 importing it in an isolated subinterpreter makes the process abort
at exit with "free(): invalid pointer", whatever library drives the interpreter.)
"""
import importlib
import os
import random
import sys
import threading
import time
import zlib

COUNTER = 0


class CustomError(Exception):
    """An exception class importable on both sides."""


class CustomErrorWithFields(Exception):
    def __init__(self, code, text):
        super().__init__(code, text)
        self.code = code
        self.text = text


class NotRecreatable(Exception):
    """Pickles, but unpickling calls ``NotRecreatable(*args)`` with one argument
    fewer than ``__init__`` needs, so it cannot be recreated in the caller."""

    def __init__(self, a, b):
        super().__init__(a)
        self.b = b


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm2(self):
        return self.x * self.x + self.y * self.y

    def scaled(self, k):
        return Point(self.x * k, self.y * k)

    @classmethod
    def origin(cls):
        return cls(0, 0)

    @staticmethod
    def static_add(a, b):
        return a + b

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        return f"Point({self.x!r}, {self.y!r})"


# --- plain calls -----------------------------------------------------------------

def identity(x):
    return x


def add(a, b=0, *, c=0):
    return a + b + c


def echo_args(*args, **kwargs):
    return args, kwargs


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


# The busy loops call into C only now and then: on CPython 3.13.0 a
# KeyboardInterrupt raised right after ``time.monotonic()`` in a ``while``
# condition skips the enclosing ``except KeyboardInterrupt`` of the same function.

def busy(seconds):
    """Pure-Python loop (interruptible between bytecodes) for ``seconds``."""
    end = time.monotonic() + seconds
    n = 0
    while True:
        n += 1
        if n % 4096 == 0 and time.monotonic() > end:
            return n


def busy_until_file(path, limit=30.0):
    """Pure-Python loop that ends when ``path`` exists (or after ``limit`` s)."""
    end = time.monotonic() + limit
    n = 0
    while True:
        n += 1
        if n % 4096 == 0 and (os.path.exists(path) or time.monotonic() > end):
            return n


def busy_marking_interrupt(seconds, marker, started=None):
    """Busy loop; writes ``marker`` if it is ended by KeyboardInterrupt.

    ``started`` (a path) is created once the loop is entered, so a caller can
    interrupt the loop itself and not the set-up of the call."""
    try:
        if started:
            with open(started, "w"):
                pass
        return busy(seconds)
    except KeyboardInterrupt:
        with open(marker, "w") as f:
            f.write("interrupted")
        raise


def cpu_work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def touch(path, *args, **kwargs):
    with open(path, "w") as f:
        f.write("ran")
    return True


# --- introspection ---------------------------------------------------------------

def current_id():
    import extrainterpreters as xi
    return xi.get_current().id


def main_id():
    import extrainterpreters as xi
    return xi.get_main().id


def close_current():
    import extrainterpreters as xi
    try:
        xi.get_current().close()
    except xi.InterpreterError as e:
        return type(e).__name__
    return "closed"


def list_all_ids():
    import extrainterpreters as xi
    return sorted(i.id for i in xi.list_all())


def is_imported(name):
    return name in sys.modules


def import_and_check(name):
    importlib.import_module(name)
    return name in sys.modules


def sys_path():
    return list(sys.path)


def getcwd():
    return os.getcwd()


MISSING = "<missing>"


def get_main_attr(name):
    import __main__
    return getattr(__main__, name, MISSING)


def call_main_attr(name, *args):
    import __main__
    return getattr(__main__, name)(*args)


def get_module_attr(module, name):
    mod = importlib.import_module(module)
    return getattr(mod, name, MISSING)


def set_module_attr(module, name, value):
    mod = importlib.import_module(module)
    setattr(mod, name, value)


def bump_counter():
    global COUNTER
    COUNTER += 1
    return COUNTER


def get_counter():
    return COUNTER


def thread_ident():
    return threading.get_ident()


# --- errors ----------------------------------------------------------------------

def raise_value_error(msg):
    raise ValueError(msg)


def raise_custom(msg):
    raise CustomError(msg)


def raise_custom_fields(code, text):
    raise CustomErrorWithFields(code, text)


def raise_not_recreatable():
    raise NotRecreatable("first", "second")


def raise_with_unpicklable_arg():
    raise ValueError(threading.Lock())


def raise_system_exit(code):
    raise SystemExit(code)


def call_sys_exit(code):
    sys.exit(code)


def raise_keyboard_interrupt():
    raise KeyboardInterrupt("remote ctrl-c")


def make_lock():
    return threading.Lock()


# --- payloads --------------------------------------------------------------------

def pattern(size, seed=0):
    """Deterministic bytes of ``size`` whose every page differs."""
    if size == 0:
        return b""
    block = random.Random(seed).randbytes(1 << 16)  # 64 KiB
    reps, rest = divmod(size, len(block))
    data = bytearray(block * reps + block[:rest])
    # make each 64 KiB block distinct so a misplaced block changes the digest
    for i in range(0, size, len(block)):
        data[i:i + 8] = (i // len(block)).to_bytes(8, "little")[: min(8, size - i)]
    return bytes(data)


def digest(data):
    mv = memoryview(data).cast("B")
    return f"{zlib.crc32(mv):08x}{zlib.adler32(mv):08x}"


def describe(obj):
    """(type name, length, checksum) of a bytes-like object."""
    return type(obj).__name__, len(memoryview(obj).cast("B")), digest(obj)


def describe_nested(items):
    return [describe(x) for x in items]


def make_payload(kind, size, seed=0):
    data = pattern(size, seed)
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(bytearray(data))
    raise ValueError(kind)


def make_nested_payload(size):
    return [make_payload("bytes", size, 1), {"ba": make_payload("bytearray", size, 2)},
            (make_payload("bytes", 3, 3),)]


def payload_len(obj):
    return len(memoryview(obj).cast("B"))


def payload_mutate_and_return(buf):
    """Changes the first byte of a received bytearray and returns it."""
    buf[0] = (buf[0] + 1) % 256
    return buf


# --- nesting ---------------------------------------------------------------------

def nested_call(a, b):
    """Creates an interpreter from inside an interpreter and calls into it."""
    import extrainterpreters as xi
    outer = xi.get_current().id
    with xi.Interpreter() as inner:
        return outer, inner.id, inner.run(add, a, b), inner.run(current_id)


_kept = []


def create_and_keep():
    import extrainterpreters as xi
    it = xi.Interpreter().start()
    _kept.append(it)
    return it.id


def close_kept():
    while _kept:
        _kept.pop().close()
    return True
