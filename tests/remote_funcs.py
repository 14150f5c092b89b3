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


def sleep_then_say_where(seconds):
    """Sleeps, then returns the id of the interpreter it ran in."""
    time.sleep(seconds)
    return current_id()


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


# --- queues ----------------------------------------------------------------------

STOP = "<stop>"  # end-of-stream marker the queue helpers agree on


def make_queue(maxsize=0):
    """A Queue created in the calling interpreter."""
    import extrainterpreters as xi
    return xi.Queue(maxsize)


def make_queue_with(items, maxsize=0):
    """A Queue created here and filled with ``items``."""
    import extrainterpreters as xi
    q = xi.Queue(maxsize)
    for item in items:
        q.put(item)
    return q


def same_shared(a, b):
    """Whether two wrappers name the same shared object (and their ids)."""
    return a == b, a.id, b.id


def queue_put(q, item, block=True, timeout=None):
    q.put(item, block, timeout)
    return True


def queue_put_all(q, items, timeout=30):
    for item in items:
        q.put(item, timeout=timeout)
    return len(items)


def queue_put_nowait(q, item):
    q.put_nowait(item)
    return True


def queue_get(q, timeout=30):
    return q.get(timeout=timeout)


def queue_get_nowait(q):
    return q.get_nowait()


def queue_get_n(q, n, timeout=30):
    return [q.get(timeout=timeout) for _ in range(n)]


def queue_get_outcome(q, block=True, timeout=None):
    """('ok', item) or (exception class name, str(exception)) of one get()."""
    try:
        return "ok", q.get(block, timeout)
    except Exception as e:
        return type(e).__name__, str(e)


def queue_put_outcome(q, item, block=True, timeout=None):
    try:
        q.put(item, block, timeout)
        return "ok", None
    except Exception as e:
        return type(e).__name__, str(e)


def queue_timed_get(q, timeout):
    """(outcome name, seconds) of one get() with a timeout."""
    t0 = time.monotonic()
    try:
        q.get(timeout=timeout)
        name = "ok"
    except Exception as e:
        name = type(e).__name__
    return name, time.monotonic() - t0


def queue_timed_get_after(q, started, timeout):
    """queue_timed_get(), setting the shared Event ``started`` just before the get."""
    started.set()
    return queue_timed_get(q, timeout)


def queue_echo(inq, outq, n, timeout=30):
    """Moves ``n`` items from ``inq`` to ``outq``; returns how many."""
    for _ in range(n):
        outq.put(inq.get(timeout=timeout), timeout=timeout)
    return n


def queue_ping(ping, pong, n, timeout=30):
    """Sends 0..n-1 on ``ping``; expects each back plus one on ``pong``."""
    import extrainterpreters as xi
    me = xi.get_current().id
    for i in range(n):
        ping.put((me, i), timeout=timeout)
        sender, value = pong.get(timeout=timeout)
        if value != i + 1:
            raise AssertionError(f"sent {i}, got {value} back from {sender}")
        if sender == me:
            raise AssertionError("got my own message back")
    return me, n


def queue_pong(ping, pong, n, timeout=30):
    import extrainterpreters as xi
    me = xi.get_current().id
    seen = set()
    for _ in range(n):
        sender, value = ping.get(timeout=timeout)
        seen.add(sender)
        pong.put((me, value + 1), timeout=timeout)
    return me, sorted(seen)


def queue_get_put_inner(outer, timeout=30):
    """Gets a dict item holding a Queue under 'reply', puts 'pong' into that queue.
    Returns the inner queue's id."""
    item = outer.get(timeout=timeout)
    reply = item["reply"]
    reply.put(("pong", item["payload"]), timeout=timeout)
    return reply.id


def queue_task_consumer(q, n, delay=0.0, timeout=30):
    """Gets ``n`` items, calling task_done() after each (``delay`` s of "work")."""
    got = []
    for _ in range(n):
        got.append(q.get(timeout=timeout))
        if delay:
            time.sleep(delay)
        q.task_done()
    return got


def queue_task_done(q):
    q.task_done()
    return True


def queue_join(q):
    t0 = time.monotonic()
    q.join()
    return time.monotonic() - t0


def queue_join_until(q):
    """Joins q; returns when it returned (time.monotonic() is the same clock in every
    interpreter of the process)."""
    q.join()
    return time.monotonic()


def queue_shutdown(q, immediate=False):
    q.shutdown(immediate=immediate)
    return True


def queue_drain_until_shutdown(q, timeout=30):
    """Gets items until get() raises QueueShutDown; returns them."""
    import extrainterpreters as xi
    got = []
    while True:
        try:
            got.append(q.get(timeout=timeout))
        except xi.QueueShutDown:
            return got


def queue_put_ordinal_bytes(q, sizes, timeout=30):
    """Puts pattern(size, seed=size) for every size."""
    for size in sizes:
        q.put(pattern(size, size), timeout=timeout)
    return len(sizes)


def queue_get_described(q, n, timeout=30):
    return [describe(q.get(timeout=timeout)) for _ in range(n)]


def queue_producer(q, pid, n, timeout=60):
    for i in range(n):
        q.put((pid, i), timeout=timeout)
    return n


def in_threads(nthreads, func):
    """Runs ``func(t)`` for t < nthreads, each in its own thread of this interpreter;
    returns their results in order, or raises RuntimeError listing every failure."""
    results = [None] * nthreads
    errors = []

    def work(t):
        try:
            results[t] = func(t)
        except BaseException as e:  # reported to the caller below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise RuntimeError(errors)
    return results


def queue_threaded_producer(q, pid, nthreads, n, timeout=60):
    """``nthreads`` threads of this interpreter each put (pid, thread, i) for i < n."""
    def work(t):
        for i in range(n):
            q.put((pid, t, i), timeout=timeout)

    in_threads(nthreads, work)
    return nthreads * n


def queue_consumer(q, timeout=60):
    """Gets items until STOP; returns them in the order got."""
    got = []
    while True:
        item = q.get(timeout=timeout)
        if isinstance(item, str) and item == STOP:
            return got
        got.append(item)


def queue_threaded_consumer(q, nthreads, timeout=60):
    """``nthreads`` threads of this interpreter each get until they see STOP."""
    return in_threads(nthreads, lambda t: queue_consumer(q, timeout))


def import_only_here_and_put(q, directory, module, value):
    """Puts ``module.Thing(value)`` where ``module`` is importable in this interpreter
    only (``directory`` is added to this interpreter's sys.path)."""
    if directory not in sys.path:
        sys.path.insert(0, directory)
    mod = importlib.import_module(module)
    q.put(mod.Thing(value))
    return True


def get_thing_value(q, directory, module, timeout=30):
    if directory not in sys.path:
        sys.path.insert(0, directory)
    importlib.import_module(module)
    return q.get(timeout=timeout).value


class Forged:
    """Pickles as the handle (kind, id), whatever object that names."""

    def __init__(self, kind, id_):
        self.kind = kind
        self.id = id_

    def __reduce__(self):
        from extrainterpreters import _xi
        return _xi._rebuild, (self.kind, self.id)


# --- shared objects --------------------------------------------------------------

def live_objects():
    from extrainterpreters import _xi
    return _xi._live_objects()


def pickle_round_trip_same(obj):
    """Pickles and unpickles a shared object here; whether it is the same object."""
    import pickle
    other = pickle.loads(pickle.dumps(obj))
    return other == obj and other.id == obj.id and type(other) is type(obj)


def unpickle_outcome(data):
    """('ok', repr) or (exception class name, message) of pickle.loads(data)."""
    import pickle
    try:
        obj = pickle.loads(data)
    except Exception as e:
        return type(e).__name__, str(e)
    return "ok", type(obj).__name__


def unpickle_id(data):
    import pickle
    return pickle.loads(data).id


def shared_types_here():
    """Creates both shared types in this interpreter; returns them and facts about
    them."""
    import extrainterpreters as xi
    q = xi.Queue(3)
    b = xi.SharedBuffer(b"made here")
    q.put("from sub")
    return q, b, xi.get_current().id


def keep_in_main(name, value):
    import __main__
    setattr(__main__, name, value)
    return True


def drop_from_main(name):
    import __main__
    delattr(__main__, name)
    return True


# --- shared buffers --------------------------------------------------------------


def buffer_len(buf):
    return len(buf)


def buffer_write(buf, offset, data):
    memoryview(buf)[offset:offset + len(data)] = data
    return True


def buffer_read(buf, offset, n):
    return bytes(memoryview(buf)[offset:offset + n])


def buffer_digest(buf):
    return digest(memoryview(buf))


def buffer_fill_pattern(buf, seed):
    mv = memoryview(buf)
    mv[:] = pattern(len(mv), seed)
    return digest(mv)


def buffer_view_facts(buf):
    mv = memoryview(buf)
    return mv.readonly, mv.format, mv.itemsize, mv.nbytes, mv.ndim, mv.c_contiguous


def buffer_bounds_errors(buf):
    """Out-of-range operations on a memoryview of ``buf``: the exception class name
    of each (or 'no error'), and whether the memory was left unchanged."""
    import struct
    mv = memoryview(buf)
    n = len(mv)
    before = bytes(mv)

    def outcome(op):
        try:
            op()
        except Exception as e:
            return type(e).__name__
        return "no error"

    def setitem(i, v):
        mv[i] = v

    def setslice(a, b, data):
        mv[a:b] = data

    results = [
        outcome(lambda: mv[n]),
        outcome(lambda: mv[-n - 1]),
        outcome(lambda: setitem(n, 1)),
        outcome(lambda: setslice(n - 1, n + 3, b"abcd")),
        outcome(lambda: struct.pack_into("<q", mv, n - 4, 1)),
        outcome(lambda: struct.unpack_from("<q", mv, n - 4)),
    ]
    return results, bytes(mv) == before


def buffer_spin_until(buf, offset, value, timeout=30.0):
    """Waits until byte ``offset`` of ``buf`` is ``value``; returns the seconds waited."""
    mv = memoryview(buf)
    t0 = time.monotonic()
    while mv[offset] != value:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"byte {offset} stayed {mv[offset]}, expected {value}")
        time.sleep(0.0005)
    return time.monotonic() - t0


def buffer_ping(buf, rounds, me, other, timeout=30.0):
    """Turn-taking through byte 0 of ``buf``: waits for ``me``, counts up in byte 1,
    hands the turn to ``other``. Returns the rounds played."""
    mv = memoryview(buf)
    for _ in range(rounds):
        buffer_spin_until(buf, 0, me, timeout)
        mv[1] = (mv[1] + 1) % 256
        mv[0] = other
    return rounds


# --- synchronization primitives ----------------------------------------------------

def outcome(func, *args, **kwargs):
    """('ok', value) or (exception class name, message) of func(*args, **kwargs)."""
    try:
        return "ok", func(*args, **kwargs)
    except Exception as e:
        return type(e).__name__, str(e)


def sync_op(obj, name, *args, **kwargs):
    """The outcome of calling method (or reading attribute) ``name`` of ``obj`` here."""
    attr = getattr(obj, name)
    if not callable(attr):
        return "ok", attr
    return outcome(attr, *args, **kwargs)


def sync_acquire(obj, *args, **kwargs):
    return obj.acquire(*args, **kwargs)


def sync_release(obj, *args, **kwargs):
    obj.release(*args, **kwargs)
    return True


def sync_release_outcome(obj, *args, **kwargs):
    return outcome(obj.release, *args, **kwargs)


def sync_locked(lock):
    return lock.locked()


def rlock_is_owned(rlock):
    return rlock._is_owned()


def rlock_facts_after_acquire(rlock, levels):
    """Acquires ``levels`` times, then releases all: what _is_owned said along the way."""
    seen = []
    for _ in range(levels):
        seen.append(rlock.acquire(timeout=10))
    seen.append(rlock._is_owned())
    for _ in range(levels):
        rlock.release()
    seen.append(rlock._is_owned())
    return seen


def timed_call(obj, name, *args, **kwargs):
    """(outcome name, value or None, seconds) of one method call."""
    t0 = time.monotonic()
    try:
        value = getattr(obj, name)(*args, **kwargs)
        kind = "ok"
    except Exception as e:
        value = None
        kind = type(e).__name__
    return kind, value, time.monotonic() - t0


def started_then(started, obj, name, *args, **kwargs):
    """Sets the Event ``started``, then calls obj.name(*args, **kwargs) and returns
    (its value, seconds it took)."""
    started.set()
    t0 = time.monotonic()
    value = getattr(obj, name)(*args, **kwargs)
    return value, time.monotonic() - t0


def started_then_cond_wait(started, cond, timeout=None):
    """With ``cond`` held: sets ``started``, waits; returns what wait() returned."""
    with cond:
        started.set()
        result = cond.wait(timeout)
    return result


def hold_until(lock, acquired, release):
    """Acquires ``lock``, sets the Event ``acquired``, waits for the Event ``release``,
    releases. Returns True."""
    if not lock.acquire(timeout=30):
        raise TimeoutError("could not acquire")
    try:
        acquired.set()
        if not release.wait(30):
            raise TimeoutError("release never came")
    finally:
        lock.release()
    return True


def put_current_interp_id(q):
    """A Barrier action: puts the id of the interpreter it runs in into ``q``."""
    from extrainterpreters import _xi
    q.put(_xi.current_id())


def raise_in_action(msg):
    raise ValueError(msg)


def _add_to_counter(mv, yield_inside, violations):
    """One read-modify-write of the '<q' counter at offset 0 of ``mv``. The '<q' at
    offset 8 marks a holder of the lock: it must be 0 on entering."""
    import struct
    if struct.unpack_from("<q", mv, 8)[0] != 0:
        violations.append(1)
    struct.pack_into("<q", mv, 8, 1)
    value = struct.unpack_from("<q", mv, 0)[0]
    if yield_inside:
        time.sleep(0)
    struct.pack_into("<q", mv, 0, value + 1)
    struct.pack_into("<q", mv, 8, 0)


def _one_increment(prim, kind, mv, violations, yield_inside):
    if kind == "RLock":
        with prim:
            with prim:  # re-entrant
                _add_to_counter(mv, yield_inside, violations)
    elif kind == "acquire":
        if not prim.acquire(timeout=60):
            raise TimeoutError("acquire timed out")
        try:
            _add_to_counter(mv, yield_inside, violations)
        finally:
            prim.release()
    else:
        with prim:
            _add_to_counter(mv, yield_inside, violations)


def locked_increments(prim, buf, n, kind="with", yield_inside=False):
    """Adds 1 to the '<q' counter at offset 0 of ``buf`` ``n`` times, each under
    ``prim``. Returns how many times the lock was seen held by someone else inside."""
    mv = memoryview(buf)
    violations = []
    for _ in range(n):
        _one_increment(prim, kind, mv, violations, yield_inside)
    return len(violations)


def threaded_locked_increments(prim, buf, nthreads, n, kind="with", yield_inside=False):
    """``nthreads`` threads of this interpreter each run locked_increments(n)."""
    return sum(in_threads(nthreads,
                          lambda t: locked_increments(prim, buf, n, kind, yield_inside)))


def semaphore_occupancy(sem, lock, buf, rounds, hold=0.002):
    """``rounds`` times: inside ``sem``, counts itself in (under ``lock``) at offset 0
    of ``buf`` and records the maximum seen at offset 8."""
    import struct
    mv = memoryview(buf)
    for _ in range(rounds):
        with sem:
            with lock:
                now = struct.unpack_from("<q", mv, 0)[0] + 1
                struct.pack_into("<q", mv, 0, now)
                if now > struct.unpack_from("<q", mv, 8)[0]:
                    struct.pack_into("<q", mv, 8, now)
            time.sleep(hold)
            with lock:
                struct.pack_into("<q", mv, 0, struct.unpack_from("<q", mv, 0)[0] - 1)
    return rounds


def threaded_semaphore_occupancy(sem, lock, buf, nthreads, rounds, hold=0.002):
    in_threads(nthreads, lambda t: semaphore_occupancy(sem, lock, buf, rounds, hold))
    return nthreads * rounds


# A ring of '<q' slots in a SharedBuffer guarded by a Condition: offset 0 holds the
# number of items ever put, offset 8 the number ever got, the slots follow.

RING_HEADER = 16


def ring_put(cond, buf, capacity, value, timeout=60):
    import struct
    mv = memoryview(buf)

    def has_room():
        put, got = struct.unpack_from("<qq", mv, 0)
        return put - got < capacity

    with cond:
        if not cond.wait_for(has_room, timeout):
            raise TimeoutError("ring stayed full")
        put = struct.unpack_from("<q", mv, 0)[0]
        struct.pack_into("<q", mv, RING_HEADER + 8 * (put % capacity), value)
        struct.pack_into("<q", mv, 0, put + 1)
        cond.notify_all()


def ring_get(cond, buf, capacity, timeout=60):
    import struct
    mv = memoryview(buf)

    def has_item():
        put, got = struct.unpack_from("<qq", mv, 0)
        return put > got

    with cond:
        if not cond.wait_for(has_item, timeout):
            raise TimeoutError("ring stayed empty")
        got = struct.unpack_from("<q", mv, 8)[0]
        value = struct.unpack_from("<q", mv, RING_HEADER + 8 * (got % capacity))[0]
        struct.pack_into("<q", mv, 8, got + 1)
        cond.notify_all()
    return value


def ring_produce(cond, buf, capacity, pid, n, timeout=60):
    """Puts pid * 1_000_000 + i for i < n."""
    for i in range(n):
        ring_put(cond, buf, capacity, pid * 1_000_000 + i, timeout)
    return n


def ring_consume(cond, buf, capacity, timeout=60):
    """Gets values until a negative one; returns them in order."""
    got = []
    while True:
        value = ring_get(cond, buf, capacity, timeout)
        if value < 0:
            return got
        got.append(value)


def cond_count_and_wait(cond, buf, timeout=30):
    """With ``cond`` held, adds 1 to the '<q' at offset 0 of ``buf`` and waits; returns
    (wait result, seconds waited)."""
    import struct
    mv = memoryview(buf)
    with cond:
        struct.pack_into("<q", mv, 0, struct.unpack_from("<q", mv, 0)[0] + 1)
        t0 = time.monotonic()
        result = cond.wait(timeout)
        return result, time.monotonic() - t0


def cond_notify(cond, n=1):
    with cond:
        cond.notify(n)
    return True


def cond_notify_all(cond):
    with cond:
        cond.notify_all()
    return True


def cond_set_flag_and_notify(cond, buf, value):
    """Under ``cond``: stores ``value`` in byte 0 of ``buf``, notify_all()."""
    with cond:
        memoryview(buf)[0] = value
        cond.notify_all()
    return True


def cond_wait_for_flag(cond, buf, value, timeout=30):
    mv = memoryview(buf)
    with cond:
        return cond.wait_for(lambda: mv[0] == value, timeout)


def barrier_wait_outcome(barrier, timeout=None):
    """('ok', index) or (exception class name, message) of barrier.wait(timeout)."""
    return outcome(barrier.wait, timeout)


def barrier_wait_with_id(barrier, timeout=30):
    from extrainterpreters import _xi
    return _xi.current_id(), barrier.wait(timeout)


def barrier_rounds(barrier, buf, slot, rounds, timeout=60):
    """Each round: writes the round number to byte ``slot`` of ``buf``, waits at the
    barrier, then checks every slot reached this round. Returns the indices got and
    the rounds where a party was seen behind."""
    mv = memoryview(buf)
    parties = barrier.parties
    indices = []
    behind = []
    for r in range(1, rounds + 1):
        mv[slot] = r
        indices.append(barrier.wait(timeout))
        if any(mv[s] < r for s in range(parties)):
            behind.append(r)
        # nobody may write round r + 1 before all have checked round r
        barrier.wait(timeout)
    return indices, behind


def pickle_dumps(obj):
    import pickle
    return pickle.dumps(obj)


def make_sync(name, *args, **kwargs):
    """A new extrainterpreters.<name>(*args, **kwargs) made in this interpreter, with
    the id of this interpreter."""
    import extrainterpreters as xi
    return getattr(xi, name)(*args, **kwargs), xi._xi.current_id()


def make_condition_with_lock():
    import extrainterpreters as xi
    lock = xi.Lock()
    return xi.Condition(lock), lock


# --- executor and asyncio ----------------------------------------------------------

def interp_id(*_args):
    """The id of the interpreter this runs in (any arguments are ignored)."""
    from extrainterpreters import _xi
    return _xi.current_id()


def square(x):
    return x * x


def fail_at(x, bad):
    """Returns ``x``; raises ValueError when ``x == bad``."""
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def arrive_and_wait(q, release, timeout=30):
    """Puts this interpreter's id into ``q``, waits for the Event ``release``."""
    from extrainterpreters import _xi
    me = _xi.current_id()
    q.put(me)
    if not release.wait(timeout):
        raise TimeoutError("release never came")
    return me


def put_after(q, delay, item):
    time.sleep(delay)
    q.put(item, timeout=30)
    return True


def get_after(q, delay, timeout=30):
    time.sleep(delay)
    return q.get(timeout=timeout)


def set_after(event, delay):
    time.sleep(delay)
    event.set()
    return True


def write_then_sleep(path, seconds, value):
    """Creates ``path``, then sleeps ``seconds``; returns ``value``."""
    with open(path, "w"):
        pass
    time.sleep(seconds)
    return value


# --- loans (large immutable Queue items stay where they were put until read) ---------

def loans():
    """(loans out, loans returned and not yet released, bytes lent) of this interpreter."""
    from extrainterpreters import _xi
    return _xi._loans()


def loans_after_collect():
    """loans() after a put and a get here, which release the loans that came back."""
    from extrainterpreters import _xi
    scratch = _xi.Queue()
    scratch.put(None)
    scratch.get_nowait()
    return loans()


def queue_put_patterns(q, sizes, seed=0):
    """Puts ``pattern(size, seed + i)`` for each size; returns loans() afterwards."""
    for i, size in enumerate(sizes):
        q.put(pattern(size, seed + i))
    return loans()


def queue_get_described(q, n, timeout=30):
    return [describe(q.get(timeout=timeout)) for _ in range(n)]


def put_thing_with(q, directory, module, size):
    """Puts ``module.Thing(pattern(size))`` where only this interpreter imports it."""
    import_only_here_and_put(q, directory, module, pattern(size))
    return loans()


def queue_put_filled(q, size, byte):
    """Puts ``bytes([byte]) * size``; returns loans() afterwards."""
    q.put(bytes([byte]) * size)
    return loans()


def put_in_mp_queue(q, value):
    """Puts value in a multiprocessing queue (run in a child process)."""
    q.put(value)
# --- queue errors ------------------------------------------------------------------

def first_queue_errors_at_once(nthreads=8):
    """``nthreads`` threads of an interpreter that has raised no queue error yet each
    hit one at once: half get() from an empty Queue, half put() into a full one.
    Returns (distinct classes raised, caught by ``except xi.QueueEmpty``/``QueueFull``,
    caught by nothing of the two, whether the classes are the ones ``xi`` exports)."""
    import extrainterpreters as xi

    empty, full = xi.Queue(), xi.Queue(1)
    full.put(0)
    start = threading.Barrier(nthreads)
    raised, caught, missed = [], [], []

    def work(t):
        start.wait()
        try:
            # the except clauses name the classes only once the error is raised
            if t % 2:
                full.put_nowait(t)
            else:
                empty.get_nowait()
        except (xi.QueueEmpty, xi.QueueFull) as e:
            raised.append(type(e))
            caught.append(t)
        except Exception as e:
            raised.append(type(e))
            missed.append(t)

    in_threads(nthreads, work)
    exported = all(c in (xi.QueueEmpty, xi.QueueFull) for c in raised)
    return len(set(raised)), len(caught), len(missed), exported


class RebuildRaises:
    """Pickles; unpickling it raises the builtin exception named ``exc_name``."""

    def __init__(self, exc_name):
        self.exc_name = exc_name

    def __reduce__(self):
        return rebuild_raising, (self.exc_name,)


def rebuild_raising(exc_name):
    import builtins
    raise getattr(builtins, exc_name)("cannot rebuild this item")


def str_facts(s):
    """(len(s), its first two and last two characters): cheap facts of a huge str."""
    return len(s), s[:2] + s[-2:]


def noop():
    return None


def barrier_wait_tickets(barrier, tickets, nthreads, timeout=60):
    """``nthreads`` threads here each take a ticket from the Semaphore ``tickets`` and
    pass ``barrier``, until no ticket is left; returns every index got. With an even
    number of tickets in all, every wait has a partner."""
    def work(t):
        got = []
        while tickets.acquire(blocking=False):
            got.append(barrier.wait(timeout))
        return got

    return [i for per_thread in in_threads(nthreads, work) for i in per_thread]


def shared_objects_here():
    import extrainterpreters as xi
    return xi.shared_objects()
# --- parity with concurrent.interpreters (test_stdlib_parity) ---------------------------

def frame_globals_name():
    """The __name__ of the globals of the frame that called this function."""
    import sys

    return sys._getframe(1).f_globals["__name__"]


def script_function():
    # run by exec() as a script: its body runs in __main__
    globals()["from_function"] = "set"


def identity_id(interp):
    """The id of an Interpreter received as an argument."""
    return interp.id


def close_interp_by_id(id_):
    import extrainterpreters as xi

    xi.Interpreter(id_).close()


def put_in_queue_by_id(qid, item):
    import extrainterpreters as xi

    xi.Queue(qid).put(item)



class FailsToUnpickle:
    """Pickles, and raises RuntimeError("gotcha") where it is unpickled (as CPython's
    PickleShenanigans)."""

    def __init__(self, value=0):
        if value == 1:
            raise RuntimeError("gotcha")

    def __reduce__(self):
        return (type(self), (1,))


class CallableFailsToUnpickle(FailsToUnpickle):
    def __call__(self):
        return "called"


def call_from_queue(q, arg):
    """Takes a callable from q and calls it with arg."""
    return q.get(timeout=30)(arg)
