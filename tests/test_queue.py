"""Queue: the same FIFO in every interpreter it reaches, with queue.Queue's API."""
import math
import pickle
import queue as stdlib_queue
import sys
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit
from helpers import parse, waiter

KiB = 1 << 10
MiB = 1 << 20


def call_in_thread(it, func, *args):
    """Starts func(*args) in ``it`` in a new thread; returns a function that waits
    for it and returns its result (or raises its exception)."""
    return waiter(it.call_in_thread(func, *args), func, it.result, default_timeout=60)


def timed(func, *args, **kwargs):
    """(outcome, seconds): outcome is the value or the exception class."""
    t0 = time.monotonic()
    try:
        out = func(*args, **kwargs)
    except Exception as e:
        out = type(e)
    return out, time.monotonic() - t0


# --- basics ---------------------------------------------------------------------------


def test_fifo_and_introspection():
    q = xi.Queue()
    assert q.maxsize == 0 and q.qsize() == 0 and q.empty() and not q.full()
    for i in range(5):
        q.put(i)
    assert q.qsize() == 5 and not q.empty() and not q.full()
    assert [q.get() for _ in range(5)] == list(range(5))
    assert q.empty()


def test_create_queue_is_queue():
    q = xi.create_queue(3)
    assert type(q) is xi.Queue and q.maxsize == 3
    assert xi.create_queue().maxsize == 0


@pytest.mark.parametrize("maxsize", [0, -1, -5])
def test_non_positive_maxsize_is_unbounded(maxsize):
    q = xi.Queue(maxsize)
    assert q.maxsize == maxsize
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full() and q.qsize() == 1000


def test_bad_constructor_arguments():
    with pytest.raises(TypeError):
        xi.Queue("3")
    with pytest.raises(TypeError):
        xi.Queue(1.5)
    with pytest.raises(OverflowError):
        xi.Queue(2**80)
    assert xi.Queue(maxsize=2).maxsize == 2


def test_queue_ids_are_unique():
    qs = [xi.Queue() for _ in range(20)]
    assert len({q.id for q in qs}) == 20


def test_repr_names_id_and_maxsize():
    q = xi.Queue(7)
    r = repr(q)
    assert str(q.id) in r and "7" in r and "Queue" in r


# --- routes to another interpreter, both ways -------------------------------------------


def test_route_run_argument(interp):
    q = xi.Queue()
    assert interp.run(rf.queue_put, q, "from sub") is True
    assert q.get(timeout=5) == "from sub"
    q.put("from main")
    assert interp.run(rf.queue_get, q) == "from main"
    assert q.empty()


def test_route_run_keyword_argument_and_nested(interp):
    q = xi.Queue()
    args, kwargs = interp.run(rf.echo_args, [q], k={"q": q})
    assert args[0][0] == q and kwargs["k"]["q"] == q


def test_route_run_result(interp):
    interp.exec("import extrainterpreters as xi\nq = xi.Queue(5)\nq.put('made there')")
    q = interp.run(rf.get_main_attr, "q")
    assert q.maxsize == 5
    assert q.get(timeout=5) == "made there"
    q.put("to there")
    interp.exec("got = q.get(timeout=5)")
    assert interp.run(rf.get_main_attr, "got") == "to there"


def test_route_result_of_a_queue_the_subinterpreter_dropped(interp):
    q = interp.run(rf.make_queue_with, ["a", "b"], 4)
    assert q.maxsize == 4 and q.qsize() == 2
    assert [q.get_nowait(), q.get_nowait()] == ["a", "b"]


def test_route_prepare_main(interp):
    q = xi.Queue()
    interp.prepare_main(q=q)
    interp.exec("q.put(('sub', 1))")
    assert q.get(timeout=5) == ("sub", 1)
    q.put(("main", 2))
    interp.exec("got = q.get(timeout=5)")
    assert interp.run(rf.get_main_attr, "got") == ("main", 2)


def test_route_prepare_main_mapping_form(interp):
    q = xi.Queue()
    interp.prepare_main({"qq": q})
    interp.exec("qq.put('ok')")
    assert q.get(timeout=5) == "ok"


def test_route_inside_another_queues_item(interp):
    carrier, reply = xi.Queue(), xi.Queue()
    carrier.put({"reply": reply, "payload": 42})
    assert interp.run(rf.queue_get_put_inner, carrier) == reply.id
    assert reply.get(timeout=5) == ("pong", 42)


def test_route_inside_an_item_from_the_subinterpreter(interp):
    carrier = xi.Queue()
    interp.prepare_main(carrier=carrier)
    interp.exec(
        "import extrainterpreters as xi\n"
        "mine = xi.Queue()\n"
        "carrier.put(('here is my queue', mine))\n"
    )
    label, mine = carrier.get(timeout=5)
    assert label == "here is my queue"
    mine.put("answer")
    interp.exec("got = mine.get(timeout=5)")
    assert interp.run(rf.get_main_attr, "got") == "answer"
    assert interp.run(rf.same_shared, mine, mine)[0]


def test_queue_put_into_itself_is_the_same_queue():
    q = xi.Queue()
    q.put(q)
    same = q.get_nowait()
    assert same == q and same.id == q.id
    same.put(1)
    assert q.get_nowait() == 1


def test_queue_id_keeps_a_wrapper_made_while_the_old_one_is_collected():
    # a collection clears weak references to all its garbage, then runs finalizers,
    # then frees: a wrapper made by a finalizer stays the one Queue(id) returns
    import gc

    made = []

    class Finalizer:
        def __del__(self):
            made.append(xi.Queue(self.qid))

    for _ in range(20):
        q = xi.Queue()
        holder = Finalizer()
        holder.qid = q.id
        holder.cycle = (holder, q)
        qid = q.id
        del q, holder
        gc.collect()
        assert made, "the finalizer did not run"
        again = made.pop()
        assert xi.Queue(qid) is again


def test_route_pickle_embedded_in_exec_code(interp):
    q = xi.Queue()
    interp.exec(f"import pickle\nq = pickle.loads({pickle.dumps(q)!r})\nq.put('via exec')")
    assert q.get(timeout=5) == "via exec"
    q.put("back")
    interp.exec("got = q.get(timeout=5)")
    assert interp.run(rf.get_main_attr, "got") == "back"


def test_route_pickle_made_in_the_subinterpreter(interp):
    interp.exec(
        "import pickle, extrainterpreters as xi\n"
        "q = xi.Queue()\n"
        "data = pickle.dumps(q)\n"
        "q.put('ready')\n"
    )
    q = pickle.loads(interp.run(rf.get_main_attr, "data"))
    assert q.get(timeout=5) == "ready"


def test_sub_to_sub_while_the_main_thread_waits(interp):
    ping, pong = xi.Queue(), xi.Queue()
    with xi.Interpreter() as other:
        wait_a = call_in_thread(interp, rf.queue_ping, ping, pong, 300)
        wait_b = call_in_thread(other, rf.queue_pong, ping, pong, 300)
        a_id, n = wait_a()
        b_id, senders = wait_b()
    assert n == 300 and a_id == interp.id and b_id == other.id
    assert senders == [interp.id]
    assert ping.empty() and pong.empty()


def test_sub_to_sub_with_a_queue_one_of_them_created(interp):
    with xi.Interpreter() as other:
        interp.exec("import extrainterpreters as xi\nq = xi.Queue()")
        q = interp.run(rf.get_main_attr, "q")
        other.prepare_main(q=q)
        del q
        interp.exec("q.put({'from': 'a', 'data': b'x' * 1000})")
        other.exec("got = q.get(timeout=5)")
        assert other.run(rf.get_main_attr, "got") == {"from": "a", "data": b"x" * 1000}


def test_sub_to_sub_blocking_get_wakes_on_put(interp):
    q = xi.Queue()
    with xi.Interpreter() as other:
        started = xi.Event()
        wait_get = call_in_thread(interp, rf.queue_timed_get_after, q, started, 30)
        assert started.wait(30)
        time.sleep(0.2)  # the get is blocked by now (or about to block, with no item)
        other.run(rf.queue_put, q, "wake up")
        name, seconds = wait_get()
    assert name == "ok"
    assert 0.15 < seconds < 10


# --- producers and consumers in threads of several interpreters ---------------------------


def test_threads_of_several_interpreters_exactly_once():
    q = xi.Queue(50)
    nthreads, n = 2, 1500
    producers = [xi.Interpreter().start() for _ in range(3)]
    consumer_interp = xi.Interpreter().start()
    got_main = [[] for _ in range(2)]
    errors = []

    def main_consumer(k):
        try:
            got_main[k].extend(rf.queue_consumer(q, timeout=60))
        except BaseException as e:
            errors.append(e)

    try:
        main_threads = [threading.Thread(target=main_consumer, args=(k,)) for k in range(2)]
        for t in main_threads:
            t.start()
        wait_sub_consumer = call_in_thread(consumer_interp, rf.queue_threaded_consumer, q, 2)
        waits = [call_in_thread(p, rf.queue_threaded_producer, q, pid, nthreads, n)
                 for pid, p in enumerate(producers)]
        assert [w() for w in waits] == [nthreads * n] * 3
        for _ in range(4):  # one STOP per consuming thread
            q.put(rf.STOP, timeout=30)
        sub_results = wait_sub_consumer()
        for t in main_threads:
            t.join(60)
        assert not errors, errors
    finally:
        for it in producers + [consumer_interp]:
            it.close()
    streams = got_main + sub_results
    everything = [tuple(x) for s in streams for x in s]
    expected = {(pid, t, i) for pid in range(3) for t in range(nthreads) for i in range(n)}
    assert len(everything) == len(expected)
    assert set(everything) == expected
    # FIFO: each consumer sees each producer thread's items in order
    for s in streams:
        last = {}
        for pid, t, i in s:
            assert i > last.get((pid, t), -1)
            last[(pid, t)] = i
    assert q.empty()


def test_many_blocked_getters_all_wake():
    q = xi.Queue()
    results = []
    lock = threading.Lock()

    def getter():
        item = q.get(timeout=30)
        with lock:
            results.append(item)

    threads = [threading.Thread(target=getter) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    for i in range(6):
        q.put(i)
    for t in threads:
        t.join(30)
    assert sorted(results) == list(range(6))


# --- bounded queues ----------------------------------------------------------------------


def test_full_and_put_nowait():
    q = xi.Queue(2)
    q.put_nowait(1)
    q.put(2, block=False)
    assert q.full() and q.qsize() == 2
    with pytest.raises(xi.QueueFull):
        q.put_nowait(3)
    with pytest.raises(stdlib_queue.Full):
        q.put(3, block=False)
    with pytest.raises(xi.QueueFull):
        q.put(3, block=False, timeout=10)  # block=False ignores the timeout
    assert q.qsize() == 2
    assert q.get_nowait() == 1
    assert not q.full()
    q.put_nowait(3)
    assert [q.get_nowait(), q.get_nowait()] == [2, 3]


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.serial
def test_put_timeout_is_honoured(timeout):
    q = xi.Queue(1)
    q.put("x")
    out, seconds = timed(q.put, "y", timeout=timeout)
    assert out is xi.QueueFull
    assert timeout <= seconds < timeout + 0.45
    assert q.qsize() == 1


@pytest.mark.serial
def test_put_timeout_zero_fails_at_once():
    q = xi.Queue(1)
    q.put("x")
    out, seconds = timed(q.put, "y", timeout=0)
    assert out is xi.QueueFull and seconds < 0.2


def test_blocked_put_proceeds_when_another_interpreter_gets(interp):
    q = xi.Queue(1)
    q.put("first")
    getter = threading.Timer(0.2, lambda: interp.run(rf.queue_get, q))
    getter.start()
    try:
        out, seconds = timed(q.put, "second", timeout=20)
    finally:
        getter.join()
    assert out is None
    assert 0.15 < seconds < 10
    assert q.get_nowait() == "second"


def test_blocked_put_in_a_subinterpreter(interp):
    q = xi.Queue(1)
    q.put("first")
    wait = call_in_thread(interp, rf.queue_put_all, q, ["a", "b", "c"])
    got = [q.get(timeout=10) for _ in range(4)]
    assert wait() == 3
    assert got == ["first", "a", "b", "c"]


@pytest.mark.serial
def test_put_timeout_in_a_subinterpreter(interp):
    q = xi.Queue(1)
    q.put(0)
    out, seconds = timed(interp.run, rf.queue_put_outcome, q, 1, True, 0.05)
    assert out[0] == "QueueFull"
    assert 0.05 <= seconds < 1.0


# --- get ----------------------------------------------------------------------------------


def test_get_nowait_on_empty():
    q = xi.Queue()
    with pytest.raises(xi.QueueEmpty):
        q.get_nowait()
    with pytest.raises(stdlib_queue.Empty):
        q.get(block=False)
    with pytest.raises(xi.QueueEmpty):
        q.get(False, 10)  # block=False ignores the timeout


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.serial
def test_get_timeout_is_honoured(timeout):
    q = xi.Queue()
    out, seconds = timed(q.get, timeout=timeout)
    assert out is xi.QueueEmpty
    assert timeout <= seconds < timeout + 0.45


@pytest.mark.serial
def test_get_timeout_in_a_subinterpreter(interp):
    q = xi.Queue()
    name, seconds = interp.run(rf.queue_timed_get, q, 0.05)
    assert name == "QueueEmpty"
    assert 0.05 <= seconds < 0.5


@pytest.mark.serial
def test_get_timeout_in_a_non_main_thread():
    q = xi.Queue()
    box = []
    t = threading.Thread(target=lambda: box.append(timed(q.get, timeout=0.05)))
    t.start()
    t.join(10)
    out, seconds = box[0]
    assert out is xi.QueueEmpty and 0.05 <= seconds < 0.5


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan])
def test_bad_timeout_raises_value_error(bad):
    q = xi.Queue(1)
    with pytest.raises(ValueError):
        q.get(timeout=bad)
    q.put(1)
    with pytest.raises(ValueError):
        q.put(2, timeout=bad)
    assert q.qsize() == 1


def test_timeout_of_wrong_type_raises_type_error():
    q = xi.Queue()
    with pytest.raises(TypeError):
        q.get(timeout="1")
    with pytest.raises(TypeError):
        q.put(1, timeout=[1])
    assert q.empty()


def test_blocked_get_releases_the_gil():
    q = xi.Queue()
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    def put_later():
        time.sleep(0.3)
        q.put("done")

    threads = [threading.Thread(target=count), threading.Thread(target=put_later)]
    for t in threads:
        t.start()
    try:
        before = counter[0]
        out, seconds = timed(q.get, timeout=20)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert out == "done"
    assert seconds < 10
    assert counter[0] - before > 1000  # the other thread ran while get() waited


# --- shutdown ---------------------------------------------------------------------------


def test_shutdown_then_put_raises_and_get_drains():
    q = xi.Queue()
    for i in range(3):
        q.put(i)
    q.shutdown()
    with pytest.raises(xi.QueueShutDown):
        q.put(99)
    with pytest.raises(xi.QueueShutDown):
        q.put_nowait(99)
    assert q.qsize() == 3
    assert [q.get(), q.get_nowait(), q.get(timeout=1)] == [0, 1, 2]
    with pytest.raises(xi.QueueShutDown):
        q.get()  # would block forever without the shutdown
    with pytest.raises(xi.QueueShutDown):
        q.get_nowait()
    q.shutdown()  # again: harmless
    with pytest.raises(xi.QueueShutDown):
        q.get(timeout=1)


@pytest.mark.serial
def test_shutdown_immediate_drops_items():
    q = xi.Queue()
    for i in range(3):
        q.put(i)
    q.shutdown(immediate=True)
    assert q.qsize() == 0 and q.empty()
    out, seconds = timed(q.get)
    assert out is xi.QueueShutDown and seconds < 1
    with pytest.raises(xi.QueueShutDown):
        q.put(1)


def test_shutdown_error_class():
    q = xi.Queue()
    q.shutdown()
    with pytest.raises(xi.QueueShutDown) as info:
        q.put(1)
    assert not isinstance(info.value, (stdlib_queue.Empty, stdlib_queue.Full))
    if sys.version_info >= (3, 13):
        assert isinstance(info.value, stdlib_queue.ShutDown)


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_a_get_blocked_in_a_subinterpreter(interp, immediate):
    q = xi.Queue()
    wait = call_in_thread(interp, rf.queue_timed_get, q, 30)
    time.sleep(0.2)
    q.shutdown(immediate=immediate)
    name, seconds = wait(timeout=20)
    assert name == "QueueShutDown"
    assert seconds < 10


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_a_blocked_put(interp, immediate):
    q = xi.Queue(1)
    q.put("full")
    wait = call_in_thread(interp, rf.queue_put_outcome, q, "more", True, 30)
    time.sleep(0.2)
    t0 = time.monotonic()
    q.shutdown(immediate=immediate)
    name, _ = wait(timeout=20)
    assert name == "QueueShutDown"
    assert time.monotonic() - t0 < 10
    assert q.qsize() == (0 if immediate else 1)


def test_shutdown_from_a_subinterpreter(interp):
    q = xi.Queue()
    q.put("left")
    interp.run(rf.queue_shutdown, q)
    with pytest.raises(xi.QueueShutDown):
        q.put("more")
    assert interp.run(rf.queue_drain_until_shutdown, q) == ["left"]


def test_shutdown_drain_across_interpreters(interp):
    q = xi.Queue()
    wait = call_in_thread(interp, rf.queue_drain_until_shutdown, q)
    for i in range(100):
        q.put(i)
    q.shutdown()
    assert wait() == list(range(100))


def test_join_unblocks_on_immediate_shutdown():
    q = xi.Queue()
    for i in range(3):
        q.put(i)
    joined = threading.Event()
    t = threading.Thread(target=lambda: (q.join(), joined.set()))
    t.start()
    assert not joined.wait(0.2)
    q.shutdown(immediate=True)
    assert joined.wait(10)
    t.join()


def test_join_after_immediate_shutdown_waits_for_got_items():
    # As queue.Queue: items got before the shutdown still need task_done().
    q = xi.Queue()
    for i in range(3):
        q.put(i)
    q.get()
    joined = threading.Event()
    t = threading.Thread(target=lambda: (q.join(), joined.set()))
    t.start()
    q.shutdown(immediate=True)
    assert not joined.wait(0.2)
    q.task_done()
    assert joined.wait(10)
    t.join()
    with pytest.raises(ValueError):
        q.task_done()


def test_plain_shutdown_does_not_release_join():
    q = xi.Queue()
    q.put(1)
    joined = threading.Event()
    t = threading.Thread(target=lambda: (q.join(), joined.set()))
    t.start()
    q.shutdown()
    assert not joined.wait(0.2)
    q.get()
    q.task_done()
    assert joined.wait(10)
    t.join()


# --- task_done / join ---------------------------------------------------------------------


@pytest.mark.serial
def test_join_on_a_fresh_queue_returns():
    out, seconds = timed(xi.Queue().join)
    assert out is None and seconds < 1


def test_too_many_task_done():
    q = xi.Queue()
    with pytest.raises(ValueError):
        q.task_done()
    q.put(1)
    q.get()
    q.task_done()
    with pytest.raises(ValueError):
        q.task_done()


def test_too_many_task_done_in_a_subinterpreter(interp):
    q = xi.Queue()
    q.put(1)
    assert interp.run(rf.queue_task_done, q) is True  # task_done needs no get first
    with pytest.raises(ValueError):
        interp.run(rf.queue_task_done, q)


def test_join_waits_for_task_done_in_another_interpreter(interp):
    q = xi.Queue()
    for i in range(5):
        q.put(i)
    wait = call_in_thread(interp, rf.queue_task_consumer, q, 5, 0.05)
    out, seconds = timed(q.join)
    assert out is None
    assert seconds >= 0.2  # five items at 0.05 s each
    assert wait() == list(range(5))


def test_join_in_a_subinterpreter_waits_for_task_done_here(interp):
    q = xi.Queue()
    q.put("a")
    q.put("b")
    wait = call_in_thread(interp, rf.queue_join_until, q)
    time.sleep(0.2)
    q.get()
    q.task_done()
    time.sleep(0.1)
    assert interp.is_alive()
    q.get()
    last_done = time.monotonic()
    q.task_done()
    assert wait() >= last_done


# --- differential check against queue.Queue ------------------------------------------------

HAS_SHUTDOWN = sys.version_info >= (3, 13)

ops = st.one_of(
    st.tuples(st.just("put"), st.integers(-5, 5)),
    st.just(("get",)),
    st.just(("task_done",)),
    *([st.tuples(st.just("shutdown"), st.booleans())] if HAS_SHUTDOWN else []),
)


def apply(q, op):
    try:
        if op[0] == "put":
            q.put_nowait(op[1])
            out = None
        elif op[0] == "get":
            out = q.get_nowait()
        elif op[0] == "task_done":
            out = q.task_done()
        else:
            out = q.shutdown(immediate=op[1])
    except stdlib_queue.Empty:
        out = "Empty"
    except stdlib_queue.Full:
        out = "Full"
    except ValueError:
        out = "ValueError"
    except Exception as e:
        if HAS_SHUTDOWN and isinstance(e, stdlib_queue.ShutDown):
            out = "ShutDown"
        else:
            raise
    return out, q.qsize(), q.empty(), q.full()


@settings(max_examples=80)
@given(maxsize=st.sampled_from([0, 1, 2, 3, -1]), program=st.lists(ops, max_size=30))
def test_same_behaviour_as_queue_queue(maxsize, program):
    ours, theirs = xi.Queue(maxsize), stdlib_queue.Queue(maxsize)
    for op in program:
        assert apply(ours, op) == apply(theirs, op), op


# --- items ----------------------------------------------------------------------------


def canon(x):
    """A comparable description of a value: its types, float signs, and order."""
    if isinstance(x, float):
        return ("float", x.hex())
    if isinstance(x, complex):
        return ("complex", x.real.hex(), x.imag.hex())
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [canon(e) for e in x])
    if isinstance(x, dict):
        return ("dict", [(canon(k), canon(v)) for k, v in x.items()])
    if isinstance(x, (set, frozenset)):
        return (type(x).__name__, sorted(repr(canon(e)) for e in x))
    return (type(x).__name__, x)


scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**64, max_value=2**200)
    | st.floats(allow_nan=False) | st.complex_numbers(allow_nan=False)
    | st.text(max_size=40) | st.binary(max_size=300)
    | st.binary(max_size=300).map(bytearray)
)
hashables = st.none() | st.integers() | st.text(max_size=10) | st.binary(max_size=10)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(hashables, children, max_size=5)
        | st.sets(hashables, max_size=5)
        | st.frozensets(hashables, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=40)
@given(value=values)
def test_nested_values_round_trip_through_a_subinterpreter(shared_interp, value):
    to_sub, from_sub = xi.Queue(), xi.Queue()
    to_sub.put(value)
    assert shared_interp.run(rf.queue_echo, to_sub, from_sub, 1) == 1
    got = from_sub.get(timeout=10)
    assert got == value
    assert canon(got) == canon(value)
    assert to_sub.empty() and from_sub.empty()


@settings(max_examples=15)
@given(items=st.lists(values, min_size=1, max_size=8))
def test_many_items_keep_their_order_across_interpreters(shared_interp, items):
    to_sub, from_sub = xi.Queue(), xi.Queue()
    for item in items:
        to_sub.put(item)
    shared_interp.run(rf.queue_echo, to_sub, from_sub, len(items))
    got = [from_sub.get_nowait() for _ in items]
    assert [canon(g) for g in got] == [canon(i) for i in items]


SIZES = [0, 1, 64 * KiB, 1 * MiB, 16 * MiB]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
def test_bytes_main_to_sub(interp, size):
    q = xi.Queue()
    data = rf.pattern(size, size)
    q.put(data)
    del data
    assert interp.run(rf.queue_get_described, q, 1) == [rf.describe(rf.pattern(size, size))]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
def test_bytes_sub_to_main(interp, size):
    q = xi.Queue()
    assert interp.run(rf.queue_put_ordinal_bytes, q, [size]) == 1
    got = q.get(timeout=10)
    assert type(got) is bytes
    assert rf.describe(got) == rf.describe(rf.pattern(size, size))


def test_bytes_of_every_size_in_one_queue(interp):
    q = xi.Queue()
    sizes = SIZES + [3, 4095, 4096, 4097, 256 * KiB + 1]
    interp.run(rf.queue_put_ordinal_bytes, q, sizes)
    for size in sizes:
        assert rf.describe(q.get(timeout=10)) == rf.describe(rf.pattern(size, size))


def test_mutating_an_item_after_put_does_not_change_it(interp):
    q = xi.Queue()
    data = bytearray(b"before")
    nested = {"list": [1, 2]}
    q.put(data)
    q.put(nested)
    data[:] = b"after!"
    nested["list"].append(3)
    assert interp.run(rf.queue_get_n, q, 2) == [bytearray(b"before"), {"list": [1, 2]}]


def test_importable_class_instances(interp):
    q = xi.Queue()
    q.put(rf.Point(1, 2))
    q.put(rf.CustomErrorWithFields(3, "x"))
    p, err = interp.run(rf.queue_get_n, q, 2)
    assert p == rf.Point(1, 2)
    assert type(err) is rf.CustomErrorWithFields and (err.code, err.text) == (3, "x")


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("make_bad", [
    threading.Lock,
    lambda: (i for i in range(3)),
    lambda: [1, {"deep": threading.Lock()}],
], ids=["lock", "generator", "nested-lock"])
def test_unserializable_item_raises_and_leaves_the_queue_unchanged(make_bad):
    q = xi.Queue(2)
    q.put("kept")
    with pytest.raises(xi.NotShareableError):
        q.put(make_bad())
    with pytest.raises(TypeError):  # NotShareableError is a TypeError
        q.put_nowait(make_bad())
    assert q.qsize() == 1 and not q.full()
    q.put("next")
    assert [q.get_nowait(), q.get_nowait()] == ["kept", "next"]
    q.task_done()
    q.task_done()
    with pytest.raises(ValueError):  # the failed puts counted no unfinished task
        q.task_done()


def test_unserializable_item_in_a_subinterpreter(interp):
    q = xi.Queue()
    interp.prepare_main(q=q)
    interp.exec(
        "import threading\n"
        "try:\n"
        "    q.put(threading.Lock())\n"
        "    err = None\n"
        "except Exception as e:\n"
        "    err = type(e).__name__\n"
    )
    assert interp.run(rf.get_main_attr, "err") == "NotShareableError"
    assert q.qsize() == 0


def test_item_that_cannot_be_rebuilt_raises_once_and_the_queue_goes_on(interp, private_module):
    directory, name = private_module
    q = xi.Queue()
    assert interp.run(rf.import_only_here_and_put, q, directory, name, 7)
    q.put("second")
    q.put("third")
    with pytest.raises(ModuleNotFoundError) as info:
        q.get(timeout=1)
    assert "removed it from the Queue" in "".join(getattr(info.value, "__notes__", []))
    # the getter that took it got its error; nothing behind it is lost or stuck
    assert q.qsize() == 2
    assert q.get_nowait() == "second"
    assert q.get_nowait() == "third"
    assert q.empty()


def test_unbuildable_items_count_as_done_for_join(interp, private_module):
    directory, name = private_module
    q = xi.Queue()
    assert interp.run(rf.import_only_here_and_put, q, directory, name, 1)
    q.put("ok")
    with pytest.raises(ModuleNotFoundError):
        q.get_nowait()
    assert q.get_nowait() == "ok"
    q.task_done()
    q.join()  # returns: the item that raised needs no task_done()
    with pytest.raises(ValueError):
        q.task_done()


def test_many_unbuildable_items_among_good_ones(interp, private_module):
    """Every bad item raises exactly once; every good one arrives, in order."""
    directory, name = private_module
    q = xi.Queue()
    expected = []
    for i in range(60):
        if i % 3 == 0:
            assert interp.run(rf.import_only_here_and_put, q, directory, name, i)
        else:
            q.put(i)
            expected.append(i)
    got, errors = [], 0
    for _ in range(60):  # one get() per item put
        try:
            got.append(q.get_nowait())
        except ModuleNotFoundError:
            errors += 1
    assert got == expected and errors == 20 and q.empty()


def test_item_interrupted_while_rebuilt_goes_back_to_the_head():
    """An error of the interpreter itself (Ctrl-C here) while an item is rebuilt is not
    the item's fault: the item stays first."""
    q = xi.Queue()
    q.put(rf.RebuildRaises("KeyboardInterrupt"))
    q.put("second")
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            q.get_nowait()
        assert q.qsize() == 2
    q.put(rf.RebuildRaises("ValueError"))
    q.shutdown(immediate=True)
    assert q.qsize() == 0


def test_item_whose_rebuild_always_runs_out_of_memory_does_not_block_the_queue():
    """MemoryError while an item is rebuilt puts it back at the head (memory may come
    back), but not for ever: an item that can never be rebuilt here (its rebuild raises
    MemoryError every time) would keep every item behind it from every getter."""
    q = xi.Queue()
    q.put(rf.RebuildRaises("MemoryError"))
    q.put("second")
    errors = 0
    for _ in range(10):
        try:
            got = q.get_nowait()
            break
        except MemoryError as exc:
            errors += 1
            last = exc
    else:
        pytest.fail("the item went back to the head of the queue every time")
    assert got == "second" and q.empty()
    assert 1 < errors <= 3  # retried, then given up
    assert "removed it from the Queue" in "".join(getattr(last, "__notes__", []))
    q.task_done()
    q.join()  # the dropped item counts as done


def test_item_whose_rebuild_raises_is_dropped_for_that_getter():
    q = xi.Queue()
    q.put(rf.RebuildRaises("ValueError"))
    q.put("next")
    with pytest.raises(ValueError, match="cannot rebuild"):
        q.get_nowait()
    assert q.get_nowait() == "next"


def test_item_that_cannot_be_rebuilt_in_a_subinterpreter(interp, private_module):
    directory, name = private_module
    sys.path.insert(0, directory)
    try:
        mod = __import__(name)
        q = xi.Queue()
        q.put(mod.Thing(5))  # made here, where the module imports
        q.put(mod.Thing(6))
        sys.path.remove(directory)
        with xi.Interpreter() as blind:  # sys.path is copied at start: no directory
            name_, msg = blind.run(rf.queue_get_outcome, q, True, 1)
            assert name_ == "ModuleNotFoundError", msg
        assert q.qsize() == 1
        assert q.get_nowait().value == 6
    finally:
        if directory in sys.path:
            sys.path.remove(directory)


def test_items_outlive_the_interpreter_that_put_them():
    q = xi.Queue()
    it = xi.Interpreter().start()
    try:
        it.run(rf.queue_put_all, q, ["a", (1, 2.5), {"k": [None]}, rf.Point(3, 4)])
        it.run(rf.queue_put_ordinal_bytes, q, [1 * MiB, 10])
        it.prepare_main(q=q)
        it.exec(
            "import extrainterpreters as xi\n"
            "b = xi.SharedBuffer(b'made in a closed interpreter')\n"
            "inner = xi.Queue()\n"
            "inner.put('inner item')\n"
            "q.put((b, inner))\n"
            "del b, inner\n"
        )
    finally:
        it.close()
    assert [q.get_nowait() for _ in range(4)] == ["a", (1, 2.5), {"k": [None]}, rf.Point(3, 4)]
    assert rf.describe(q.get_nowait()) == rf.describe(rf.pattern(1 * MiB, 1 * MiB))
    assert q.get_nowait() == rf.pattern(10, 10)
    buf, inner = q.get_nowait()
    assert bytes(buf) == b"made in a closed interpreter"
    assert inner.get_nowait() == "inner item"
    assert q.empty()


def test_items_put_in_several_closed_interpreters_keep_their_order():
    q = xi.Queue()
    for k in range(3):
        with xi.Interpreter() as it:
            it.run(rf.queue_put_all, q, [(k, 0), (k, 1)])
    assert [q.get_nowait() for _ in range(6)] == [(k, i) for k in range(3) for i in range(2)]


# --- Ctrl-C ---------------------------------------------------------------------------

KI_SCRIPT = """
import os, signal, threading, time
import extrainterpreters as xi

q = xi.Queue({maxsize})
{setup}
sent = []

def ctrl_c():
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)

threading.Timer(0.3, ctrl_c).start()
t0 = time.monotonic()
try:
    {op}
    print("RETURNED", flush=True)
except KeyboardInterrupt:
    print("KI", time.monotonic() - sent[0], flush=True)
print("BLOCKED", time.monotonic() - t0, flush=True)
print("QSIZE", q.qsize(), flush=True)
q2 = xi.Queue()
q2.put("after")
print("AFTER", q2.get(timeout=5), flush=True)
"""


@pytest.mark.parametrize("maxsize,setup,op,qsize", [
    (0, "", "q.get()", 0),
    (0, "", "q.get(timeout=60)", 0),
    (1, "q.put(1)", "q.put(2)", 1),
    (1, "q.put(1)", "q.put(2, timeout=60)", 1),
    (0, "q.put(1)", "q.join()", 1),
], ids=["get", "get-timeout", "put", "put-timeout", "join"])
@pytest.mark.serial
def test_ctrl_c_in_a_blocked_main_thread(run_py, maxsize, setup, op, qsize):
    proc = run_py(KI_SCRIPT.format(maxsize=maxsize, setup=setup, op=op), timeout=60)
    assert_clean_exit(proc)
    res = parse(proc.stdout)
    assert "RETURNED" not in res
    assert "KI" in res, proc.stdout + proc.stderr
    assert float(res["KI"]) < 0.5
    assert float(res["BLOCKED"]) >= 0.25
    assert res["QSIZE"] == str(qsize)
    assert res["AFTER"] == "after"


@pytest.mark.serial
def test_ctrl_c_while_a_subinterpreter_waits_on_the_same_queue(run_py):
    proc = run_py("""
        import os, signal, sys, threading, time
        sys.path.insert(0, sys.argv[1])
        import extrainterpreters as xi
        import remote_funcs as rf

        q = xi.Queue()
        it = xi.Interpreter().start()
        waiter = it.call_in_thread(rf.queue_timed_get, q, 30)
        sent = []

        def ctrl_c():
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        threading.Timer(0.3, ctrl_c).start()
        try:
            q.get()
        except KeyboardInterrupt:
            print("KI", time.monotonic() - sent[0], flush=True)
        q.put("for the sub")
        waiter.join(20)
        print("SUB", it.result()[0], flush=True)
        it.close()
    """, args=[rf.__file__.rsplit("/", 1)[0]])
    assert_clean_exit(proc)
    res = parse(proc.stdout)
    assert float(res["KI"]) < 0.5
    assert res["SUB"] == "ok"
