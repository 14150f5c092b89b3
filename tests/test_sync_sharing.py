"""Every primitive pickles to a handle: passed to run(), put in a Queue, bound by
prepare_main or sent through pickle, it is the same object in every interpreter. It
lives while a wrapper (or a packet in flight) names it."""
import functools
import pickle

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from helpers import live_objects


FACTORIES = {
    "Lock": xi.Lock,
    "RLock": xi.RLock,
    "Semaphore": lambda: xi.Semaphore(1),
    "BoundedSemaphore": lambda: xi.BoundedSemaphore(1),
    "Event": xi.Event,
    "Condition": xi.Condition,
    "Condition-Lock": lambda: xi.Condition(xi.Lock()),
    "Barrier": lambda: xi.Barrier(2),
}
KINDS = list(FACTORIES)



def acquired_elsewhere(obj):
    """Whether another thread finds ``obj`` taken (a non-blocking acquire fails)."""
    import threading
    got = []
    t = threading.Thread(target=lambda: got.append(obj.acquire(False)))
    t.start()
    t.join(10)
    return got == [False]


# code run on the object bound as ``obj`` (in a fresh state), and how to see its effect
CHANGE = {
    "Lock": ("obj.acquire()", lambda o: o.locked()),
    "RLock": ("obj.acquire()", lambda o: o.locked()),
    "Semaphore": ("obj.acquire()", acquired_elsewhere),
    "BoundedSemaphore": ("obj.acquire()", acquired_elsewhere),
    "Event": ("obj.set()", lambda o: o.is_set()),
    "Condition": ("obj.acquire()", acquired_elsewhere),
    "Condition-Lock": ("obj.acquire()", acquired_elsewhere),
    "Barrier": ("obj.abort()", lambda o: o.broken),
}


def same(a, b):
    return type(a) is type(b) and a == b and a.id == b.id and hash(a) == hash(b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_round_trip_gives_the_same_object(kind, protocol):
    obj = FACTORIES[kind]()
    other = pickle.loads(pickle.dumps(obj, protocol=protocol))
    assert same(obj, other)
    assert not (obj != other)
    assert len(pickle.dumps(obj, protocol=protocol)) < 120


@pytest.mark.parametrize("kind", KINDS)
def test_round_tripped_wrapper_shares_state(kind):
    obj = FACTORIES[kind]()
    other = pickle.loads(pickle.dumps(obj))
    code, changed = CHANGE[kind]
    exec(code, {"obj": other})
    assert changed(obj)


@pytest.mark.parametrize("kind", KINDS)
def test_distinct_objects_differ(kind):
    a, b = FACTORIES[kind](), FACTORIES[kind]()
    assert a != b and a.id != b.id
    assert not (a == b)
    assert {a, b, pickle.loads(pickle.dumps(a))} == {a, b}


def test_ids_are_unique_across_kinds():
    objs = [f() for f in FACTORIES.values()]
    assert len({o.id for o in objs}) == len(objs)


def test_different_kinds_are_never_equal():
    lock, rlock = xi.Lock(), xi.RLock()
    assert lock != rlock
    assert xi.Semaphore() != xi.BoundedSemaphore()


@pytest.mark.parametrize("kind", KINDS)
def test_repr_names_the_id(kind):
    obj = FACTORIES[kind]()
    text = repr(obj)
    assert text.startswith("<extrainterpreters.") and f" id={obj.id}>" in text


@pytest.mark.parametrize("kind", KINDS)
def test_run_argument_and_result_are_the_same_object(interp, kind):
    obj = FACTORIES[kind]()
    back = interp.run(rf.identity, obj)
    assert same(obj, back)
    assert interp.run(rf.pickle_round_trip_same, obj) is True
    assert interp.run(rf.same_shared, obj, back) == (True, obj.id, obj.id)


@pytest.mark.parametrize("kind", KINDS)
def test_through_a_queue_both_ways(interp, kind):
    obj = FACTORIES[kind]()
    q = xi.Queue()
    q.put(obj)
    got = interp.run(rf.queue_get, q, 10)
    assert same(obj, got)
    assert interp.run(rf.queue_put, q, {"nested": [obj]}) is True
    assert same(q.get(timeout=10)["nested"][0], obj)


@pytest.mark.parametrize("kind", KINDS)
def test_prepare_main_binds_the_same_object(kind):
    obj = FACTORIES[kind]()
    q = xi.Queue()
    it = xi.Interpreter().start()
    try:
        it.prepare_main(obj=obj, q=q)
        it.exec("q.put(obj.id)")
        assert q.get(timeout=10) == obj.id
        code, changed = CHANGE[kind]
        it.exec(code)
        assert changed(obj)
    finally:
        it.close()


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_bytes_cross_interpreters(interp, kind):
    obj = FACTORIES[kind]()
    assert interp.run(rf.unpickle_id, pickle.dumps(obj)) == obj.id
    data = interp.run(rf.pickle_dumps, obj)
    assert same(pickle.loads(data), obj)


@pytest.mark.parametrize("name, args", [
    ("Lock", ()), ("RLock", ()), ("Semaphore", (3,)), ("BoundedSemaphore", (2,)),
    ("Event", ()), ("Condition", ()), ("Barrier", (2,)),
])
def test_made_in_a_subinterpreter_that_closes(name, args):
    base = live_objects()
    it = xi.Interpreter().start()
    obj, where = it.run(rf.make_sync, name, *args)
    it.close()
    assert where == it.id
    assert type(obj) is getattr(xi, name)
    assert live_objects() == base + (2 if name == "Condition" else 1)
    # it works here after its maker has gone
    if name == "Lock":
        assert [obj.acquire(False), obj.acquire(False)] == [True, False]
    elif name == "RLock":
        assert [obj.acquire(False), obj.acquire(False)] == [True, True]
    elif name == "Semaphore":
        assert [obj.acquire(False) for _ in range(4)] == [True] * 3 + [False]
    elif name == "BoundedSemaphore":
        with pytest.raises(ValueError):
            obj.release()
    elif name == "Event":
        obj.set()
        assert obj.wait(0)
    elif name == "Condition":
        with obj:
            assert obj.wait(0.01) is False
    else:
        assert obj.parties == 2
    del obj
    assert live_objects() == base


def test_condition_made_there_keeps_its_lock(interp):
    cond, lock = interp.run(rf.make_condition_with_lock)
    with cond:
        assert lock.locked()
    assert not lock.locked()


# --- live objects ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_live_count_returns_to_start(interp, kind):
    base = live_objects()
    obj = FACTORIES[kind]()
    created = live_objects() - base
    assert created == (2 if kind.startswith("Condition") else 1)
    copies = [pickle.loads(pickle.dumps(obj)) for _ in range(3)]
    assert live_objects() == base + created
    for _ in range(5):
        interp.run(rf.identity, obj)
        interp.run(rf.pickle_round_trip_same, obj)
    q = xi.Queue()
    q.put(obj)
    q.put([obj, obj])
    assert interp.run(rf.queue_get_n, q, 2, 10)
    assert live_objects() == base + created + 1  # + the queue
    del q, copies
    assert live_objects() == base + created
    del obj
    assert live_objects() == base


def test_live_count_with_prepare_main_and_close():
    base = live_objects()
    it = xi.Interpreter().start()
    try:
        it.prepare_main(lock=xi.Lock(), cond=xi.Condition(), bar=xi.Barrier(3))
        assert live_objects() == base + 4  # the Condition's RLock too
    finally:
        it.close()
    assert live_objects() == base


def test_item_in_flight_keeps_the_primitive_alive(interp):
    base = live_objects()
    q = xi.Queue()
    ev = xi.Event()
    ev_id = ev.id
    q.put(ev)
    del ev
    assert live_objects() == base + 2
    got = interp.run(rf.queue_get, q, 10)
    assert got.id == ev_id
    del got, q
    assert live_objects() == base


def test_condition_keeps_its_lock_alive():
    base = live_objects()
    lock = xi.Lock()
    cond = xi.Condition(lock)
    del lock
    assert live_objects() == base + 2
    with cond:
        assert cond.acquire(False) is False
    del cond
    assert live_objects() == base


def test_barrier_action_keeps_what_it_names_alive(interp):
    base = live_objects()
    q = xi.Queue()
    bar = xi.Barrier(1, action=functools.partial(rf.put_current_interp_id, q))
    del q
    assert live_objects() == base + 2
    assert bar.wait() == 0
    assert interp.run(rf.barrier_wait_outcome, bar, 10) == ("ok", 0)
    assert bar.wait() == 0  # the action still finds its queue
    del bar
    assert live_objects() == base


def test_barrier_action_reaches_its_queue_each_time(interp):
    q = xi.Queue()
    bar = xi.Barrier(1, action=functools.partial(rf.put_current_interp_id, q))
    assert bar.wait() == 0
    assert interp.run(rf.barrier_wait_outcome, bar, 10) == ("ok", 0)
    assert bar.wait() == 0
    here = xi._xi.current_id()
    assert [q.get(timeout=5) for _ in range(3)] == [here, interp.id, here]


def test_failed_constructors_leave_no_object():
    base = live_objects()
    bad = [
        (xi.Semaphore, (-1,)), (xi.BoundedSemaphore, (-5,)), (xi.Semaphore, ("x",)),
        (xi.Condition, (5,)), (xi.Barrier, (0,)), (xi.Barrier, (2, 5)),
        (xi.Barrier, (2, None, -1)), (xi.Lock, (1,)), (xi.Event, (1,)),
    ]
    for factory, args in bad:
        with pytest.raises((ValueError, TypeError)):
            factory(*args)
    assert live_objects() == base

