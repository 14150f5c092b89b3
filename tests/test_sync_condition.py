"""Condition: threading.Condition across interpreters, over an xi.Lock or xi.RLock."""
import threading
import time
from collections import Counter

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from helpers import QUICK, call_in_thread, in_thread, timed, wait_until

LOCKS = {"default": lambda: None, "Lock": xi.Lock, "RLock": xi.RLock}


def make(kind):
    lock = LOCKS[kind]()
    return (xi.Condition() if lock is None else xi.Condition(lock)), lock


# --- construction -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [threading.Lock(), threading.RLock(), 5, "lock",
                                 xi.Semaphore(), xi.Event()],
                         ids=["threading.Lock", "threading.RLock", "int", "str",
                              "Semaphore", "Event"])
def test_other_locks_raise_type_error(bad):
    with pytest.raises(TypeError):
        xi.Condition(bad)


def test_condition_accepts_lock_keyword():
    lock = xi.Lock()
    cond = xi.Condition(lock=lock)
    with cond:
        assert lock.locked()
    assert not lock.locked()


def test_default_lock_is_reentrant():
    cond = xi.Condition()
    with cond:
        assert cond.acquire(False) is True  # would be False for a plain Lock
        cond.release()
        cond.notify()
    # not held by this thread any more
    with pytest.raises(RuntimeError):
        cond.notify()


def test_condition_over_a_lock_is_not_reentrant():
    lock = xi.Lock()
    cond = xi.Condition(lock)
    with cond:
        assert cond.acquire(False) is False
        assert cond.acquire(timeout=0.05) is False
    assert not lock.locked()


def test_condition_shares_the_given_rlock():
    r = xi.RLock()
    cond = xi.Condition(r)
    with cond:
        assert r._is_owned()
        with r:
            cond.notify()
    assert not r._is_owned()
    assert in_thread(cond.acquire, False)() is True
    assert r.acquire(False) is False  # the other thread holds it through cond


# --- misuse ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LOCKS))
@pytest.mark.parametrize("op", ["wait", "notify", "notify_all", "wait_for"])
def test_use_without_the_lock_raises_runtime_error(kind, op):
    cond, _ = make(kind)
    tcond = threading.Condition(threading.Lock() if kind == "Lock" else None)
    args = {"wait": (0.01,), "notify": (), "notify_all": (),
            "wait_for": (lambda: False, 0.01)}[op]
    with pytest.raises(RuntimeError):
        getattr(tcond, op)(*args)
    with pytest.raises(RuntimeError):
        getattr(cond, op)(*args)


@pytest.mark.parametrize("kind", list(LOCKS))
@pytest.mark.parametrize("op, args", [("wait", (0,)), ("wait", (-1,)),
                                      ("wait_for", (lambda: False, 0))],
                         ids=["wait-0", "wait-neg", "wait_for-0"])
def test_use_without_the_lock_and_no_timeout_left_raises_runtime_error(kind, op, args):
    cond, _ = make(kind)
    tcond = threading.Condition(threading.Lock() if kind == "Lock" else None)
    with pytest.raises(RuntimeError):
        getattr(tcond, op)(*args)
    with pytest.raises(RuntimeError):
        getattr(cond, op)(*args)


@pytest.mark.parametrize("op", ["wait", "notify"])
def test_rlock_condition_held_by_another_thread_raises_runtime_error(op):
    cond = xi.Condition()
    acquired, release = xi.Event(), xi.Event()
    holder = in_thread(rf.hold_until, cond, acquired, release)
    try:
        assert acquired.wait(10)
        with pytest.raises(RuntimeError):
            getattr(cond, op)(*((0.01,) if op == "wait" else ()))
    finally:
        release.set()
    assert holder() is True


def test_release_without_holding_raises_runtime_error():
    for kind in LOCKS:
        cond, _ = make(kind)
        with pytest.raises(RuntimeError):
            cond.release()


# --- waiting in one interpreter ----------------------------------------------------------


@pytest.mark.parametrize("kind", list(LOCKS))
@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.serial
def test_wait_timeout_is_honoured_and_the_lock_is_held_again(kind, timeout):
    cond, lock = make(kind)
    with cond:
        got, seconds = timed(cond.wait, timeout)
        assert got is False
        assert timeout - 0.001 <= seconds < timeout + 0.45
        if kind == "Lock":
            assert lock.locked()
        elif kind == "RLock":
            assert lock._is_owned()
        cond.notify()  # still allowed: the lock is held
    if lock is not None:
        assert not lock.locked()


@pytest.mark.serial
def test_wait_timeout_in_another_thread():
    cond = xi.Condition()

    def body():
        with cond:
            return timed(cond.wait, 0.1)

    got, seconds = in_thread(body)()
    assert got is False and 0.099 <= seconds < 0.6


@pytest.mark.serial
def test_wait_with_zero_timeout_does_not_wait():
    cond = xi.Condition()
    with cond:
        got, seconds = timed(cond.wait, 0)
    assert got is False and seconds < QUICK


def test_wait_releases_the_lock_for_others():
    for kind in LOCKS:
        cond, _ = make(kind)

        def notifier():
            time.sleep(0.1)
            with cond:  # only possible while the waiter is waiting
                cond.notify()
            return True

        with cond:
            n = in_thread(notifier)
            got, seconds = timed(cond.wait, 30)
        assert got is True and seconds < 10, kind
        assert n() is True


def test_wait_restores_every_rlock_level():
    r = xi.RLock()
    cond = xi.Condition(r)
    r.acquire()
    r.acquire()
    r.acquire()

    def notifier():
        with cond:  # needs every level released
            cond.notify()
        return True

    n = in_thread(notifier)
    assert cond.wait(30) is True
    assert n() is True
    r.release()
    r.release()
    assert r._is_owned()
    r.release()
    assert not r._is_owned()
    with pytest.raises(RuntimeError):
        r.release()


def test_timed_out_waiter_leaves_the_queue():
    cond = xi.Condition()
    with cond:
        assert cond.wait(0.05) is False
    ready = threading.Event()

    def waiter():
        with cond:
            ready.set()
            return cond.wait(10)

    w = in_thread(waiter)
    assert ready.wait(10)
    with cond:  # the waiter is queued once we hold the lock
        cond.notify(1)  # must go to the live waiter, not the timed-out one
    assert w() is True


def test_notify_n_wakes_n_threads_in_fifo_order():
    cond = xi.Condition()
    order = []
    queued = [0]

    def waiter(k):
        with cond:
            queued[0] += 1
            got = cond.wait(30)
            order.append(k)
            return got

    waiters = []
    for k in range(4):
        waiters.append(in_thread(waiter, k))
        assert wait_until(lambda: queued[0] == k + 1)
        with cond:  # k is waiting now
            pass
    with cond:
        cond.notify(2)
    assert wait_until(lambda: len(order) == 2)
    time.sleep(0.1)
    assert sorted(order) == [0, 1]
    with cond:
        cond.notify_all()
    assert [w() for w in waiters] == [True] * 4
    assert sorted(order[2:]) == [2, 3]


@pytest.mark.serial
def test_wait_for_returns_the_predicate_value():
    cond = xi.Condition()
    with cond:
        assert cond.wait_for(lambda: "yes") == "yes"
        got, seconds = timed(cond.wait_for, lambda: 0, 0.1)
    assert got == 0
    assert 0.099 <= seconds < 0.6


def test_wait_for_checks_again_after_each_notify():
    cond = xi.Condition()
    state = {"n": 0}

    def bump():
        for _ in range(3):
            time.sleep(0.05)
            with cond:
                state["n"] += 1
                cond.notify_all()
        return True

    b = in_thread(bump)
    with cond:
        assert cond.wait_for(lambda: state["n"] >= 3, 30) is True
        assert state["n"] == 3
    assert b() is True


def test_wait_for_predicate_error_propagates_and_lock_is_held():
    r = xi.RLock()
    cond = xi.Condition(r)
    with cond:
        with pytest.raises(ZeroDivisionError):
            cond.wait_for(lambda: 1 / 0)
        assert r._is_owned()
    assert not r._is_owned()


# --- across interpreters -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LOCKS))
def test_notify_here_wakes_a_waiter_in_a_subinterpreter(interp, kind):
    cond, _ = make(kind)
    buf = xi.SharedBuffer(8)
    wait = call_in_thread(interp, rf.cond_count_and_wait, cond, buf, 30)
    assert wait_until(lambda: memoryview(buf).cast("q")[0] == 1)
    time.sleep(0.1)
    with cond:
        cond.notify()
    got, seconds = wait()
    assert got is True and 0.05 <= seconds < 10


def test_notify_in_a_subinterpreter_wakes_main(interp):
    cond = xi.Condition()
    notifier = threading.Timer(0.2, interp.run, (rf.cond_notify, cond))
    with cond:
        notifier.start()
        got, seconds = timed(cond.wait, 30)
    notifier.join()
    assert got is True and 0.1 <= seconds < 10


def test_wait_for_a_flag_set_by_another_interpreter(interps):
    a, b = interps(2)
    cond = xi.Condition(xi.Lock())
    buf = xi.SharedBuffer(1)
    wait = call_in_thread(a, rf.cond_wait_for_flag, cond, buf, 3, 30)
    for value in (1, 2, 3):
        time.sleep(0.05)
        assert b.run(rf.cond_set_flag_and_notify, cond, buf, value) is True
    assert wait() is True


@pytest.mark.serial
def test_wait_timeout_in_a_subinterpreter(interp):
    cond = xi.Condition()
    kind, value, seconds = interp.run(rf.timed_call, cond, "wait_for", bool, 0.1)
    # wait_for without holding the lock is an error there too
    assert kind == "RuntimeError"
    buf = xi.SharedBuffer(8)
    got, seconds = interp.run(rf.cond_count_and_wait, cond, buf, 0.1)
    assert got is False and 0.099 <= seconds < 0.6


def test_notify_2_of_3_waiting_interpreters(interps):
    its = interps(3)
    cond = xi.Condition()
    buf = xi.SharedBuffer(8)
    waits = [call_in_thread(it, rf.cond_count_and_wait, cond, buf, 30) for it in its]
    counter = memoryview(buf).cast("q")
    assert wait_until(lambda: counter[0] == 3)
    with cond:  # every waiter released the lock inside wait(): all are queued
        cond.notify(2)
    assert wait_until(lambda: sum(w.thread.is_alive() for w in waits) <= 1)
    time.sleep(0.2)
    assert sum(w.thread.is_alive() for w in waits) == 1
    with cond:
        cond.notify_all()
    assert [w()[0] for w in waits] == [True] * 3


def test_notify_all_from_a_subinterpreter_wakes_all(interps):
    *waiting, notifier = interps(4)
    cond = xi.Condition(xi.Lock())
    buf = xi.SharedBuffer(8)
    waits = [call_in_thread(it, rf.cond_count_and_wait, cond, buf, 30) for it in waiting]
    counter = memoryview(buf).cast("q")
    assert wait_until(lambda: counter[0] == 3)
    assert notifier.run(rf.cond_notify_all, cond) is True
    assert [w()[0] for w in waits] == [True] * 3


@pytest.mark.parametrize("kind", ["default", "Lock"])
def test_producers_and_consumers_in_four_interpreters(interps, kind):
    producers, consumers = interps(2), interps(2)
    cond, _ = make(kind)
    capacity, n = 4, 300
    buf = xi.SharedBuffer(rf.RING_HEADER + 8 * capacity)
    cons = [call_in_thread(c, rf.ring_consume, cond, buf, capacity, 60) for c in consumers]
    prods = [call_in_thread(p, rf.ring_produce, cond, buf, capacity, pid, n, 60)
             for pid, p in enumerate(producers)]
    assert [p(120) for p in prods] == [n, n]
    for _ in consumers:
        rf.ring_put(cond, buf, capacity, -1, 60)
    streams = [c(120) for c in cons]
    everything = [v for s in streams for v in s]
    assert Counter(everything) == Counter(pid * 1_000_000 + i
                                          for pid in range(2) for i in range(n))
    for s in streams:  # each producer's values in order
        for pid in range(2):
            mine = [v for v in s if v // 1_000_000 == pid]
            assert mine == sorted(mine)
    put, got = memoryview(buf).cast("q")[:2]
    assert put == got == 2 * n + 2
