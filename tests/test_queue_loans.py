"""Large immutable Queue items are lent: they stay in the interpreter that put them until
read, are copied once by get(), and still outlive that interpreter."""
import pickle
import random
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit, close_interp
from helpers import in_thread, waiter

KiB = 1 << 10
MiB = 1 << 20
LEND_MIN = 64 * KiB
LEND_MAX = 64 * MiB


def loans():
    return xi._xi._loans()


def collect():
    """A put and a get on a scratch queue: both release the loans that came back."""
    scratch = xi.Queue()
    scratch.put(None)
    scratch.get_nowait()


@pytest.fixture(autouse=True)
def no_loans_left():
    collect()
    assert loans() == (0, 0, 0)
    yield
    collect()
    assert loans() == (0, 0, 0)


def test_large_bytes_are_lent_until_read_then_released_here(interp):
    data = rf.pattern(1 * MiB, 1)
    refs = sys.getrefcount(data)
    q = xi.Queue()
    q.put(data)
    out, returned, nbytes = loans()
    assert (out, returned) == (1, 0) and MiB <= nbytes < MiB + KiB
    assert sys.getrefcount(data) > refs  # the item is the object itself, not a copy
    assert interp.run(rf.queue_get_described, q, 1) == [rf.describe(data)]
    assert loans()[:2] == (0, 1)  # read there, released here on the next put or get
    q.put(1)
    assert loans() == (1 - 1, 0, 0)
    assert sys.getrefcount(data) == refs
    assert q.get_nowait() == 1


def test_a_get_in_the_lending_interpreter_releases_at_once():
    data = rf.pattern(256 * KiB)
    refs = sys.getrefcount(data)
    q = xi.Queue()
    q.put(data)
    assert loans()[0] == 1
    assert q.get_nowait() == data
    assert loans() == (0, 0, 0)
    assert sys.getrefcount(data) == refs


@pytest.mark.parametrize("item", [
    pytest.param(b"x" * (LEND_MIN // 2), id="small-bytes"),
    pytest.param(bytearray(rf.pattern(MiB)), id="bytearray"),
    pytest.param(memoryview(rf.pattern(MiB)), id="memoryview"),
])
def test_small_or_mutable_items_are_copied(item):
    q = xi.Queue()
    q.put(item)
    assert loans() == (0, 0, 0)
    got = q.get_nowait()
    assert type(got) is type(item) or isinstance(item, memoryview)


@pytest.mark.parametrize("wrap", [
    lambda b: b,
    lambda b: [b],  # the stream refers to the bytearray itself: copied too
    lambda b: {"k": (1, b)},
], ids=["bytearray", "list-of-bytearray", "nested-bytearray"])
def test_a_mutable_item_is_what_it_was_at_put(wrap):
    buf = bytearray(rf.pattern(MiB))
    before = rf.describe(bytes(buf))
    q = xi.Queue()
    q.put(wrap(buf))
    assert loans()[0] == 0
    buf[:8] = b"changed!"
    got = q.get_nowait()
    assert got == wrap(bytearray(rf.pattern(MiB)))
    assert rf.describe(bytes(buf)) != before


@pytest.mark.parametrize("item", [
    pytest.param("é" * MiB, id="str"),
    pytest.param((rf.pattern(MiB), 7), id="tuple-with-bytes"),
    pytest.param({"k": rf.pattern(200 * KiB)}, id="dict-with-bytes"),
    pytest.param(rf.Point(rf.pattern(MiB), 1), id="object"),
])
def test_other_large_immutable_streams_are_lent_too(interp, item):
    q = xi.Queue()
    q.put(item)
    assert loans()[0] == 1
    q2 = xi.Queue()
    interp.run(rf.queue_echo, q, q2, 1)
    assert q2.get(timeout=30) == item


def test_lent_items_outlive_their_interpreter():
    q = xi.Queue()
    sizes = [LEND_MIN, MiB, 3 * MiB, 200 * KiB, 5 * MiB]
    it = xi.Interpreter().start()
    try:
        out, returned, nbytes = it.run(rf.queue_put_patterns, q, sizes, 10)
        assert out == len(sizes) and returned == 0 and nbytes >= sum(sizes)
    finally:
        it.close()
    got = [rf.describe(q.get_nowait()) for _ in sizes]
    assert got == [rf.describe(rf.pattern(s, 10 + i)) for i, s in enumerate(sizes)]


def test_lent_items_read_by_another_interpreter_after_their_lender_closed(interps):
    producer, consumer = interps(2)
    q = xi.Queue()
    producer.run(rf.queue_put_patterns, q, [MiB] * 3, 20)
    producer.close()
    got = consumer.run(rf.queue_get_described, q, 3)
    assert got == [rf.describe(rf.pattern(MiB, 20 + i)) for i in range(3)]


def test_at_most_the_budget_is_lent_the_rest_is_copied():
    q = xi.Queue()
    items = [rf.pattern(MiB, i) for i in range(LEND_MAX // MiB + 20)]
    for item in items:
        q.put(item)
    out, returned, nbytes = loans()
    assert out < len(items) and nbytes <= LEND_MAX and out >= LEND_MAX // MiB - 1
    for item in items:
        assert q.get_nowait() == item
    assert loans() == (0, 0, 0)


def test_a_freed_queue_returns_its_lent_items(interp):
    data = rf.pattern(MiB)
    refs = sys.getrefcount(data)
    q = xi.Queue()
    q.put(data)
    q.put(data)
    assert interp.run(rf.same_shared, q, q)  # the queue went there and back
    del q
    assert loans()[:2] == (0, 2)
    collect()
    assert sys.getrefcount(data) == refs


def test_shutdown_immediate_returns_lent_items():
    data = rf.pattern(MiB)
    q = xi.Queue()
    q.put(data)
    q.shutdown(immediate=True)
    assert loans()[:2] == (0, 1)
    collect()
    assert loans() == (0, 0, 0)


def test_a_put_that_times_out_releases_its_loan():
    q = xi.Queue(1)
    q.put(1)
    with pytest.raises(xi.QueueFull):
        q.put(rf.pattern(MiB), timeout=0.01)
    assert loans() == (0, 0, 0)
    assert q.get_nowait() == 1


def test_lent_item_that_cannot_be_rebuilt_is_released(private_module):
    """A lent item that a getter cannot rebuild raises there once; its loan goes back
    to its lender, and the items behind it arrive whole."""
    directory, name = private_module
    q = xi.Queue()
    lender = xi.Interpreter().start()
    try:
        out, _, nbytes = lender.run(rf.put_thing_with, q, directory, name, MiB)
        assert out == 1 and nbytes > MiB
        lender.run(rf.queue_put_ordinal_bytes, q, [MiB])
        with pytest.raises(ModuleNotFoundError):
            q.get_nowait()
        assert q.qsize() == 1
        assert rf.describe(q.get_nowait()) == rf.describe(rf.pattern(MiB, MiB))
        assert lender.run(rf.loans_after_collect)[:2] == (0, 0)
    finally:
        lender.close()


def test_loans_read_while_their_lender_closes(interps):
    """The lender ends while a consumer reads its items: each item is read whole,
    either from the lender's object or from the copy made as it ends."""
    for rnd in range(6):
        producer, consumer = interps(2)
        q = xi.Queue()
        n = 40
        sizes = [64 * KiB * (1 + (i * 7 + rnd) % 16) for i in range(n)]
        producer.run(rf.queue_put_patterns, q, sizes, rnd * 100)
        reader = waiter(consumer.call_in_thread(rf.queue_get_described, q, n),
                        "consumer", consumer.result, default_timeout=60)
        close_interp(producer)
        got = reader()
        assert got == [rf.describe(rf.pattern(s, rnd * 100 + i)) for i, s in enumerate(sizes)]
        close_interp(consumer)


def test_a_large_loan_read_while_its_lender_copies_it():
    """A getter that arrives while the ending lender copies a 48 MiB item waits for
    the copy, and gets the item whole."""
    rng = random.Random(7)
    size = 48 * MiB
    for i in range(8):
        q = xi.Queue()
        it = xi.Interpreter().start()
        assert it.run(rf.queue_put_filled, q, size, i)[0] == 1
        delay = rng.uniform(0, 0.03)

        def get():
            time.sleep(delay)
            v = q.get(timeout=30)
            return len(v) == size and v.count(bytes([i])) == size

        getter = in_thread(get)
        it.close()
        assert getter() is True


def test_several_lenders_and_readers_every_item_once_and_whole(interps):
    producers = interps(3)
    consumers = interps(2)
    q = xi.Queue(16)
    per = 60
    sizes = [LEND_MIN + 4096 * (i % 9) for i in range(per)]
    readers = [waiter(c.call_in_thread(rf.queue_get_described, q, len(producers) * per // 2),
                      "consumer", c.result, default_timeout=120) for c in consumers]
    writers = [waiter(p.call_in_thread(rf.queue_put_patterns, q, sizes, 1000 * k),
                      "producer", p.result, default_timeout=120)
               for k, p in enumerate(producers)]
    for w in writers:
        w()
    for p in producers[:2]:
        close_interp(p)  # some lenders end before everything is read
    got = sorted(d for r in readers for d in r())
    want = sorted(rf.describe(rf.pattern(s, 1000 * k + i))
                  for k in range(len(producers)) for i, s in enumerate(sizes))
    assert got == want


def _stdlib_interpreter():
    """(create, exec, destroy) of the stdlib's low-level interpreters module."""
    if sys.version_info >= (3, 13):
        import _interpreters as m

        def run(iid, code):
            err = m.exec(iid, code)
            assert err is None, err
        return (lambda: m.create("isolated")), run, m.destroy
    import _xxsubinterpreters as m
    return (lambda: m.create(isolated=True)), m.run_string, m.destroy


def test_interpreter_made_elsewhere_copies_its_loans_when_it_ends():
    create, run, destroy = _stdlib_interpreter()
    q = xi.Queue()
    iid = create()
    try:
        run(iid, f"import sys; sys.path[:] = {sys.path!r}\n"
                 "import pickle, remote_funcs as rf\n"
                 f"q = pickle.loads({pickle.dumps(q)!r})\n"
                 "assert rf.queue_put_patterns(q, [2 * 2**20], 5)[0] == 1\n")
    finally:
        destroy(iid)
    assert rf.describe(q.get_nowait()) == rf.describe(rf.pattern(2 * MiB, 5))


@settings(max_examples=30)
@given(st.lists(st.tuples(st.sampled_from(["main", "sub"]),
                          st.sampled_from(["bytes", "bytearray", "str"]),
                          st.integers(0, 300 * KiB)), min_size=1, max_size=12))
def test_any_mix_of_items_comes_out_whole_and_in_order(shared_interp, puts):
    q = xi.Queue()
    want = []
    for i, (where, kind, size) in enumerate(puts):
        data = rf.pattern(size, i)
        item = {"bytes": data, "bytearray": bytearray(data),
                "str": data.decode("latin-1")}[kind]
        if where == "main":
            q.put(item)
        else:
            shared_interp.run(rf.queue_put, q, item)
        want.append(item)
    half = len(want) // 2
    got = shared_interp.run(rf.queue_get_n, q, half)
    got += [q.get_nowait() for _ in range(len(want) - half)]
    assert got == want
    assert q.empty()


EXIT_WHILE_READING = """
import sys, threading, time
sys.path.insert(0, {directory!r})
import extrainterpreters as xi
from {module} import Slow
q = xi.Queue()
q.put(Slow(b"x" * (1 << 20)))  # lent by the main interpreter
print("LOANS", xi._xi._loans()[0], flush=True)
threading.Thread(target=q.get, daemon=True).start()  # reads it for 30 s
time.sleep(0.3)
print("EXITING", flush=True)
"""

SLOW_MODULE = """
import time

class Slow:
    def __init__(self, data):
        self.data = data

    def __setstate__(self, state):
        time.sleep(30)
        self.__dict__.update(state)
"""


def test_exit_while_a_daemon_thread_reads_a_loan(run_py, tmp_path):
    (tmp_path / "xi_slow_state.py").write_text(SLOW_MODULE)
    t0 = time.monotonic()
    proc = run_py(EXIT_WHILE_READING.format(directory=str(tmp_path), module="xi_slow_state"),
                  timeout=60)
    assert_clean_exit(proc)
    assert "LOANS 1" in proc.stdout and "EXITING" in proc.stdout
    assert time.monotonic() - t0 < 20  # the exit does not wait for the reader


HOLDER_MODULE = """
import threading

lock = threading.Lock()


class Holder:
    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        return (rebuild, (self.data,))


def rebuild(data):
    with lock:  # a getter rebuilding this waits for whoever holds the lock
        return len(data)


def put_items(q):
    q.put(Holder(b"x" * (1 << 20)))
    q.put(b"y" * (1 << 20))
"""


def test_getters_never_wait_for_a_closing_lender(tmp_path):
    """A getter of one loan does not wait for the lender's close, which waits for
    another getter still rebuilding its item (here: blocked on a lock)."""
    (tmp_path / "xi_holder_mod.py").write_text(HOLDER_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        import xi_holder_mod as mod
        q = xi.Queue()
        it = xi.Interpreter().start()
        it.run(sys.path.insert, 0, str(tmp_path))
        it.run(mod.put_items, q)
        mod.lock.acquire()
        try:
            first = in_thread(q.get, timeout=30)  # pins item 1, blocks in rebuild()
            time.sleep(0.3)
            closing = in_thread(it.close)
            time.sleep(0.3)  # the close copies item 2 and waits for item 1
            t0 = time.monotonic()
            assert q.get(timeout=10) == b"y" * MiB
            assert time.monotonic() - t0 < 5
        finally:
            mod.lock.release()
        assert first() == MiB
        closing()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("xi_holder_mod", None)
