"""The handle mechanism behind Queue and SharedBuffer: a shared object pickles to a
handle (kind, id) that names the same object in every interpreter of the process, a
handle that names nothing raises ValueError, and an object is freed when its last
wrapper and its last in-flight packet are gone."""
import gc
import pickle
import pickletools
import threading

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit
from helpers import live_objects

KIND_QUEUE = 1
KIND_BUFFER = 2


def make(kind):
    return xi.Queue(4) if kind == "queue" else xi.SharedBuffer(b"0123456789")


def handle_args(data):
    """The (kind, id) integers the pickle of a shared object carries."""
    ints = [arg for op, arg, _ in pickletools.genops(data)
            if op.name in ("BININT1", "BININT2", "BININT", "LONG1", "INT")]
    assert len(ints) == 2, list(pickletools.genops(data))
    return tuple(ints)


def forge(data, new_id):
    """The pickle ``data`` with its id replaced by ``new_id`` (re-encoded properly)."""
    kind, _ = handle_args(data)
    return pickle.dumps(rf.Forged(kind, new_id))


KINDS = ["queue", "buffer"]


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_is_a_small_handle(kind):
    obj = make(kind)
    data = pickle.dumps(obj)
    assert len(data) < 120
    assert handle_args(data) == ({"queue": KIND_QUEUE, "buffer": KIND_BUFFER}[kind], obj.id)


def test_pickle_of_a_large_buffer_carries_no_data():
    buf = xi.SharedBuffer(8 << 20)
    assert len(pickle.dumps(buf, protocol=5)) < 120


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_round_trip_in_one_interpreter(kind, protocol):
    obj = make(kind)
    other = pickle.loads(pickle.dumps(obj, protocol=protocol))
    assert type(other) is type(obj)
    assert other == obj and other.id == obj.id and hash(other) == hash(obj)


def test_round_tripped_queue_is_the_same_queue():
    q = xi.Queue()
    other = pickle.loads(pickle.dumps(q))
    q.put("through the original")
    assert other.qsize() == 1
    assert other.get_nowait() == "through the original"
    assert q.empty()


def test_round_tripped_buffer_is_the_same_memory():
    buf = xi.SharedBuffer(16)
    other = pickle.loads(pickle.dumps(buf))
    memoryview(other)[3:6] = b"abc"
    assert bytes(memoryview(buf)[3:6]) == b"abc"


def test_distinct_objects_are_not_equal():
    a, b = xi.Queue(), xi.Queue()
    assert a != b and a.id != b.id
    c, d = xi.SharedBuffer(1), xi.SharedBuffer(1)
    assert c != d and c.id != d.id
    assert a != c  # different kinds never compare equal


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_a_subinterpreter(interp, kind):
    obj = make(kind)
    back = interp.run(rf.identity, obj)
    assert type(back) is type(obj)
    assert back == obj and back.id == obj.id
    assert interp.run(rf.same_shared, obj, obj) == (True, obj.id, obj.id)


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_round_trip_inside_a_subinterpreter(interp, kind):
    assert interp.run(rf.pickle_round_trip_same, make(kind)) is True


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_bytes_made_here_unpickle_there(interp, kind):
    obj = make(kind)
    data = pickle.dumps(obj)
    # plain bytes cross; the object is alive here, so the handle finds it there
    assert interp.run(rf.unpickle_id, data) == obj.id


def test_pickle_bytes_made_there_unpickle_here(interp):
    interp.run(rf.keep_in_main, "q", rf.make_queue(2))
    interp.exec("import pickle\ndata = pickle.dumps(q)\nq.put('hello')")
    data = interp.run(rf.get_main_attr, "data")
    q = pickle.loads(data)
    assert q.maxsize == 2 and q.get_nowait() == "hello"


def test_same_handle_from_two_subinterpreters(interp):
    q = xi.Queue()
    with xi.Interpreter() as other:
        a = interp.run(rf.identity, q)
        b = other.run(rf.identity, q)
    assert a == b == q


# --- handles that name nothing ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_stale_handle_raises_value_error(kind):
    obj = make(kind)
    data = pickle.dumps(obj)
    del obj
    gc.collect()
    with pytest.raises(ValueError):
        pickle.loads(data)


@pytest.mark.parametrize("kind", KINDS)
def test_stale_handle_stays_stale_after_new_objects(kind):
    obj = make(kind)
    data = pickle.dumps(obj)
    old_id = obj.id
    del obj
    gc.collect()
    fresh = [make(kind) for _ in range(50)]  # ids are not reused
    assert old_id not in {o.id for o in fresh}
    with pytest.raises(ValueError):
        pickle.loads(data)


@pytest.mark.parametrize("kind", KINDS)
def test_stale_handle_in_a_subinterpreter(interp, kind):
    obj = make(kind)
    data = pickle.dumps(obj)
    del obj
    gc.collect()
    name, msg = interp.run(rf.unpickle_outcome, data)
    assert name == "ValueError", msg
    assert interp.run(len, "abc") == 3  # still usable


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad_id", [0, 10**12, 2**64 - 1])
def test_forged_id_raises_value_error(kind, bad_id):
    obj = make(kind)
    data = forge(pickle.dumps(obj), bad_id)
    with pytest.raises(ValueError):
        pickle.loads(data)
    assert handle_args(pickle.dumps(obj))[1] == obj.id  # the real one still works
    assert pickle.loads(pickle.dumps(obj)) == obj


def test_handle_of_the_wrong_kind_raises_value_error():
    q, buf = xi.Queue(), xi.SharedBuffer(4)
    with pytest.raises(ValueError):
        xi._xi._rebuild(KIND_BUFFER, q.id)
    with pytest.raises(ValueError):
        xi._xi._rebuild(KIND_QUEUE, buf.id)
    assert xi._xi._rebuild(KIND_QUEUE, q.id) == q
    assert xi._xi._rebuild(KIND_BUFFER, buf.id) == buf


@pytest.mark.parametrize("kind", [0, 3, 99, -1, 2**31 - 1])
def test_unknown_kind_raises_value_error(kind):
    q = xi.Queue()
    with pytest.raises(ValueError):
        xi._xi._rebuild(kind, q.id)


@pytest.mark.parametrize("args", [(), (1,), ("1", 1), (1, "x"), (1, 1.5), (1, 2, 3)])
def test_rebuild_with_malformed_arguments_raises_type_error(args):
    with pytest.raises(TypeError):
        xi._xi._rebuild(*args)


def test_corrupted_pickle_bytes_raise_and_do_not_crash(run_py):
    # Every value of the id's argument byte(s): each finds no object (ValueError) or
    # by chance names a live object of the right kind — never a crash.
    proc = run_py("""
        import pickle, pickletools
        import extrainterpreters as xi
        keep = [xi.Queue(), xi.SharedBuffer(3)]
        for obj in keep:
            data = pickle.dumps(obj)
            op, pos = [(op, p) for op, arg, p in pickletools.genops(data)
                       if op.name.startswith("BININT")][-1]
            width = {"BININT1": 1, "BININT2": 2, "BININT": 4}[op.name]
            outcomes = set()
            for i in range(pos + 1, pos + 1 + width):
                for value in range(256):
                    bad = bytearray(data)
                    bad[i] = value
                    try:
                        got = pickle.loads(bytes(bad))
                    except ValueError:
                        outcomes.add("ValueError")
                    else:
                        assert got in keep or type(got) not in (xi.Queue, xi.SharedBuffer)
                        outcomes.add("ok")
            assert "ValueError" in outcomes, outcomes
        print("DONE")
    """)
    assert_clean_exit(proc)
    assert "DONE" in proc.stdout


def test_forged_handle_inside_a_queue_item_raises_once():
    q = xi.Queue()
    q.put(rf.Forged(KIND_QUEUE, 10**12))  # pickles fine; names nothing
    q.put("next")
    with pytest.raises(ValueError):
        q.get_nowait()
    assert q.qsize() == 1
    assert q.get_nowait() == "next"


def test_forged_handle_in_a_call_argument(interp):
    with pytest.raises(xi.NotShareableError, match="^args not shareable$") as ei:
        interp.run(rf.identity, rf.Forged(KIND_BUFFER, 10**12))
    assert ei.value.__cause__.__cause__.excinfo.type.__name__ == "NotShareableError"
    assert "ValueError" in ei.value.__cause__.__cause__.excinfo.errdisplay
    assert interp.run(rf.add, 1, 2) == 3


# --- live objects ---------------------------------------------------------------------


def test_live_count_follows_creation_and_release():
    base = live_objects()
    q = xi.Queue()
    assert live_objects() == base + 1
    buf = xi.SharedBuffer(10)
    assert live_objects() == base + 2
    q2 = pickle.loads(pickle.dumps(q))  # a second wrapper, not a second object
    assert live_objects() == base + 2
    del q
    assert live_objects() == base + 2
    del q2
    assert live_objects() == base + 1
    del buf
    assert live_objects() == base


def test_failed_constructor_leaves_no_object():
    base = live_objects()
    for bad in (-1, "x", None, 1.5):
        with pytest.raises((ValueError, TypeError)):
            xi.SharedBuffer(bad)
    with pytest.raises(TypeError):
        xi.Queue("x")
    assert live_objects() == base


def test_passing_to_a_subinterpreter_leaves_no_reference(interp):
    q, buf = xi.Queue(), xi.SharedBuffer(100)
    base = live_objects()
    for _ in range(20):
        interp.run(rf.identity, q)
        interp.run(rf.buffer_len, buf)
        interp.run(rf.echo_args, [q, {"b": buf}], k=(buf, q))
    assert live_objects() == base
    del q, buf
    assert live_objects() == base - 2


def test_reference_held_by_a_subinterpreter_keeps_the_object(interp):
    base = live_objects()
    q = xi.Queue()
    interp.prepare_main(kept=q)
    q.put("still here")
    del q
    assert live_objects() == base + 1
    q = interp.run(rf.get_main_attr, "kept")
    assert q.get_nowait() == "still here"
    del q
    interp.run(rf.drop_from_main, "kept")
    assert live_objects() == base


def test_closing_the_interpreter_that_holds_the_last_reference_frees_it():
    base = live_objects()
    it = xi.Interpreter().start()
    try:
        it.prepare_main(q=xi.Queue(), b=xi.SharedBuffer(1 << 20))
        assert live_objects() == base + 2
    finally:
        it.close()
    assert live_objects() == base


def test_objects_created_in_a_subinterpreter_that_closes(interp):
    base = live_objects()
    it = xi.Interpreter().start()
    q, buf, where = it.run(rf.shared_types_here)
    it.close()
    assert where != xi.get_current().id
    assert live_objects() == base + 2
    assert q.get_nowait() == "from sub" and q.maxsize == 3
    assert bytes(buf) == b"made here"
    del q, buf
    assert live_objects() == base


def test_item_in_flight_keeps_a_buffer_alive():
    base = live_objects()
    q = xi.Queue()
    buf = xi.SharedBuffer(b"payload")
    q.put({"buf": buf})
    del buf
    assert live_objects() == base + 2  # the queue, and the buffer held by the queued item
    item = q.get_nowait()
    assert live_objects() == base + 2
    assert bytes(item["buf"]) == b"payload"
    del item
    assert live_objects() == base + 1
    del q
    assert live_objects() == base


def test_item_in_flight_keeps_a_buffer_alive_across_interpreters(interp):
    base = live_objects()
    q = xi.Queue()
    buf = xi.SharedBuffer(b"payload")
    q.put(buf)
    del buf
    assert live_objects() == base + 2
    interp.prepare_main(q=q)
    interp.exec("b = q.get(timeout=5)\ndata = bytes(b)\ndel b, q")
    assert interp.run(rf.get_main_attr, "data") == b"payload"
    assert live_objects() == base + 1  # got and dropped in the subinterpreter
    del q
    assert live_objects() == base


def test_item_in_flight_keeps_a_queue_alive():
    base = live_objects()
    outer, inner = xi.Queue(), xi.Queue()
    inner.put("inner item")
    outer.put([inner])
    del inner
    assert live_objects() == base + 2
    (inner,) = outer.get_nowait()
    assert inner.get_nowait() == "inner item"
    del inner
    assert live_objects() == base + 1


def test_dropping_a_queue_frees_the_objects_its_items_hold():
    base = live_objects()
    q = xi.Queue()
    for _ in range(3):
        q.put(xi.SharedBuffer(10))
    assert live_objects() == base + 4
    del q
    assert live_objects() == base


def test_immediate_shutdown_frees_the_objects_dropped_items_hold():
    base = live_objects()
    q = xi.Queue()
    q.put(xi.SharedBuffer(10))
    q.put((xi.Queue(), xi.SharedBuffer(1)))
    assert live_objects() == base + 4
    q.shutdown(immediate=True)
    assert live_objects() == base + 1


def test_rejected_put_releases_references():
    base = live_objects()
    buf = xi.SharedBuffer(10)
    q = xi.Queue(1)
    with pytest.raises(xi.NotShareableError):
        q.put([buf, threading.Lock()])
    q.put("filler")
    with pytest.raises(xi.QueueFull):
        q.put_nowait([buf])
    with pytest.raises(xi.QueueFull):
        q.put([buf], timeout=0.01)
    q.shutdown()
    with pytest.raises(xi.QueueShutDown):
        q.put([buf])
    assert live_objects() == base + 2
    del buf
    assert live_objects() == base + 1


def test_failed_call_releases_references(interp):
    base = live_objects()
    buf = xi.SharedBuffer(10)
    with pytest.raises(xi.NotShareableError):
        interp.run(rf.identity, [buf, threading.Lock()])
    with pytest.raises(ValueError):
        interp.run(rf.raise_value_error, buf)
    del buf
    assert live_objects() == base


def test_memoryview_keeps_a_buffer_alive():
    base = live_objects()
    buf = xi.SharedBuffer(8)
    mv = memoryview(buf)
    del buf
    assert live_objects() == base + 1
    mv[0] = 7
    assert mv[0] == 7
    mv.release()
    assert live_objects() == base


# --- the C module in a subinterpreter --------------------------------------------------


def test_module_loads_in_a_subinterpreter(interp):
    interp.exec("import extrainterpreters._xi as m\nok = callable(m._rebuild)")
    assert interp.run(rf.get_main_attr, "ok") is True
    assert interp.run(rf.live_objects) == xi._xi._live_objects()  # one count per process


def test_objects_created_in_a_subinterpreter_come_back(interp):
    q, buf, where = interp.run(rf.shared_types_here)
    assert where == interp.id
    assert type(q) is xi.Queue and type(buf) is xi.SharedBuffer
    assert q.maxsize == 3 and q.get_nowait() == "from sub"
    assert bytes(buf) == b"made here"
    # and they go back as the same objects
    assert interp.run(rf.same_shared, q, q)[0] is True
    assert interp.run(rf.identity, buf) == buf


def test_queue_errors_from_a_subinterpreter_are_the_package_errors(interp):
    q = xi.Queue(1)
    with pytest.raises(xi.QueueEmpty):
        interp.run(rf.queue_get_nowait, q)
    q.put(1)
    with pytest.raises(xi.QueueFull):
        interp.run(rf.queue_put_nowait, q, 2)
    q.shutdown()
    with pytest.raises(xi.QueueShutDown):
        interp.run(rf.queue_put_nowait, q, 3)
    assert interp.run(rf.queue_get_outcome, q, False) == ("ok", 1)
    assert interp.run(rf.queue_get_outcome, q, False)[0] == "QueueShutDown"


def test_error_classes_subclass_the_queue_module():
    import queue
    import sys

    assert issubclass(xi.QueueEmpty, queue.Empty)
    assert issubclass(xi.QueueFull, queue.Full)
    if sys.version_info >= (3, 13):
        assert issubclass(xi.QueueShutDown, queue.ShutDown)
    else:
        assert issubclass(xi.QueueShutDown, Exception)
    assert issubclass(xi.NotShareableError, TypeError)
