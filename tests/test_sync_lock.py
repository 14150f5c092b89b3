"""Lock and RLock: threading's locks, shared by every interpreter they reach.

A Lock may be released by anyone; an RLock belongs to one (interpreter, thread)."""
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from helpers import QUICK, call_in_thread, count_during, in_thread, timed

# --- Lock in one interpreter -----------------------------------------------------------


def test_lock_basics():
    lock = xi.Lock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert lock.acquire(blocking=False) is False
    lock.release()
    assert not lock.locked()
    with lock as entered:
        assert entered is True
        assert lock.locked()
    assert not lock.locked()


def test_lock_with_releases_on_exception():
    lock = xi.Lock()
    with pytest.raises(KeyError):
        with lock:
            raise KeyError("x")
    assert not lock.locked()


def test_lock_release_from_another_thread():
    lock = xi.Lock()
    lock.acquire()
    in_thread(lock.release)()
    assert not lock.locked()


def test_lock_between_threads():
    lock = xi.Lock()
    acquired, release = xi.Event(), xi.Event()
    holder = in_thread(rf.hold_until, lock, acquired, release)
    assert acquired.wait(10)
    assert lock.acquire(timeout=0.05) is False
    waiter = in_thread(timed, lock.acquire, timeout=30)
    time.sleep(0.2)
    assert waiter.thread.is_alive(), "acquire() returned while another thread held the lock"
    release.set()
    assert holder() is True
    got, seconds = waiter()
    assert got is True
    assert seconds >= 0.15
    assert lock.locked()
    lock.release()


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.parametrize("where", ["main thread", "other thread"])
@pytest.mark.serial
def test_lock_acquire_timeout_is_honoured(timeout, where):
    lock = xi.Lock()
    lock.acquire()
    if where == "main thread":
        got, seconds = timed(lock.acquire, timeout=timeout)
    else:
        got, seconds = in_thread(timed, lock.acquire, timeout=timeout)()
    assert got is False
    assert timeout - 0.001 <= seconds < timeout + 0.45
    assert lock.locked()


@pytest.mark.parametrize("args, kwargs", [((False,), {}), ((), {"timeout": 0}),
                                          ((True, 0), {})])
@pytest.mark.serial
def test_lock_acquire_without_waiting(args, kwargs):
    lock = xi.Lock()
    lock.acquire()
    got, seconds = timed(lock.acquire, *args, **kwargs)
    assert got is False
    assert seconds < QUICK


def test_lock_blocked_acquire_releases_the_gil():
    lock = xi.Lock()
    lock.acquire()
    got, during = count_during(lock.acquire, timeout=0.5)
    assert got is False
    assert during > 1000  # the other thread ran while acquire() waited


@pytest.mark.parametrize("factory", [threading.Lock, xi.Lock, threading.RLock, xi.RLock],
                         ids=["threading.Lock", "xi.Lock", "threading.RLock", "xi.RLock"])
@pytest.mark.parametrize("kwargs, exc", [
    ({"blocking": False, "timeout": 1}, ValueError),
    ({"blocking": False, "timeout": 0}, ValueError),
    ({"timeout": -2}, ValueError),
    ({"timeout": -0.5}, ValueError),
    ({"timeout": "1"}, TypeError),
])
def test_lock_bad_acquire_arguments(factory, kwargs, exc):
    lock = factory()
    with pytest.raises(exc):
        lock.acquire(**kwargs)
    assert lock.acquire(False) is True  # the bad call took nothing
    lock.release()


@pytest.mark.parametrize("factory", [threading.Lock, xi.Lock])
def test_lock_release_unlocked_raises_runtime_error(factory):
    lock = factory()
    with pytest.raises(RuntimeError):
        lock.release()
    lock.acquire()
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_lock_constructor_takes_no_arguments():
    with pytest.raises(TypeError):
        xi.Lock(1)
    with pytest.raises(TypeError):
        xi.RLock(x=1)


# --- Lock across interpreters ----------------------------------------------------------


def test_lock_acquired_in_a_subinterpreter_is_held_here(interp):
    lock = xi.Lock()
    assert interp.run(rf.sync_acquire, lock) is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert interp.run(rf.sync_locked, lock) is True
    lock.release()
    assert interp.run(rf.sync_locked, lock) is False


def test_lock_released_by_another_interpreter(interp):
    lock = xi.Lock()
    lock.acquire()
    assert interp.run(rf.sync_acquire, lock, False) is False
    assert interp.run(rf.sync_release, lock) is True
    assert not lock.locked()
    assert interp.run(rf.sync_release_outcome, lock)[0] == "RuntimeError"


def test_lock_blocks_a_subinterpreter_until_released(interp):
    lock = xi.Lock()
    started = xi.Event()
    lock.acquire()
    wait = call_in_thread(interp, rf.started_then, started, lock, "acquire", timeout=30)
    assert started.wait(10)
    time.sleep(0.25)
    assert wait.thread.is_alive(), "the subinterpreter got a lock held here"
    lock.release()
    got, seconds = wait()
    assert got is True
    assert 0.2 <= seconds < 10
    assert lock.locked()  # the subinterpreter's call holds it now
    lock.release()


def test_subinterpreter_lock_blocks_main(interp):
    lock = xi.Lock()
    acquired, release = xi.Event(), xi.Event()
    wait = call_in_thread(interp, rf.hold_until, lock, acquired, release)
    assert acquired.wait(10)
    got, seconds = timed(lock.acquire, timeout=0.1)
    assert got is False and seconds >= 0.099
    releaser = threading.Timer(0.2, release.set)
    releaser.start()
    got, seconds = timed(lock.acquire, timeout=30)
    assert got is True
    assert 0.1 <= seconds < 10
    assert wait() is True
    lock.release()
    releaser.join()


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.serial
def test_lock_acquire_timeout_in_a_subinterpreter(interp, timeout):
    lock = xi.Lock()
    lock.acquire()
    kind, value, seconds = interp.run(rf.timed_call, lock, "acquire", timeout=timeout)
    assert (kind, value) == ("ok", False)
    assert timeout - 0.001 <= seconds < timeout + 0.45


def test_lock_held_by_a_closed_interpreter_stays_locked():
    it = xi.Interpreter().start()
    lock = xi.Lock()
    assert it.run(rf.sync_acquire, lock) is True
    it.close()
    assert lock.locked()
    assert lock.acquire(timeout=0.1) is False
    lock.release()  # anyone may release it, as for a threading.Lock
    assert not lock.locked()
    assert lock.acquire(False) is True
    lock.release()


def test_lock_waiter_in_a_subinterpreter_gets_it_from_a_closed_holder():
    holder, waiter = xi.Interpreter().start(), xi.Interpreter().start()
    try:
        lock = xi.Lock()
        started = xi.Event()
        assert holder.run(rf.sync_acquire, lock) is True
        wait = call_in_thread(waiter, rf.started_then, started, lock, "acquire", timeout=30)
        assert started.wait(10)
        holder.close()
        time.sleep(0.2)
        assert wait.thread.is_alive()  # still locked
        lock.release()
        got, _ = wait()
        assert got is True
    finally:
        holder.close()
        waiter.close()


# --- RLock in one interpreter ----------------------------------------------------------


def test_rlock_basics():
    r = xi.RLock()
    assert not r._is_owned()
    assert r.acquire() is True
    assert r.acquire(False) is True
    assert r.acquire(timeout=0) is True
    assert r._is_owned()
    r.release()
    r.release()
    assert r._is_owned()
    r.release()
    assert not r._is_owned()
    with pytest.raises(RuntimeError):
        r.release()
    with r:
        with r:
            assert r._is_owned()
        assert r._is_owned()
    assert not r._is_owned()


def test_rlock_non_owner_thread_cannot_acquire_or_release():
    r = xi.RLock()
    r.acquire()
    r.acquire()
    assert in_thread(r.acquire, False)() is False
    assert in_thread(r._is_owned)() is False
    with pytest.raises(RuntimeError):
        in_thread(r.release)()
    # the owner still holds both levels
    assert r._is_owned()
    r.release()
    assert r._is_owned()
    r.release()
    assert not r._is_owned()
    assert in_thread(r.acquire, False)() is True  # that thread ended holding it
    assert not r._is_owned()


def test_rlock_blocks_other_threads_until_fully_released():
    r = xi.RLock()
    r.acquire()
    r.acquire()
    waiter = in_thread(timed, r.acquire, timeout=30)
    time.sleep(0.15)
    r.release()
    time.sleep(0.15)
    assert waiter.thread.is_alive(), "acquired while the owner kept one level"
    r.release()
    got, seconds = waiter()
    assert got is True and seconds >= 0.25
    assert not r._is_owned()


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.serial
def test_rlock_acquire_timeout_is_honoured(timeout):
    r = xi.RLock()
    acquired, release = xi.Event(), xi.Event()
    holder = in_thread(rf.hold_until, r, acquired, release)
    try:
        assert acquired.wait(10)
        got, seconds = timed(r.acquire, timeout=timeout)
        assert got is False
        assert timeout - 0.001 <= seconds < timeout + 0.45
    finally:
        release.set()
        holder()


# --- RLock across interpreters ---------------------------------------------------------


def test_rlock_levels_in_a_subinterpreter(interp):
    r = xi.RLock()
    assert interp.run(rf.rlock_facts_after_acquire, r, 3) == [True, True, True, True, False]
    assert r.acquire(False) is True
    r.release()


def test_rlock_non_owner_release_from_another_interpreter(interp):
    r = xi.RLock()
    r.acquire()
    kind, _ = interp.run(rf.sync_release_outcome, r)
    assert kind == "RuntimeError"
    assert interp.run(rf.rlock_is_owned, r) is False
    assert interp.run(rf.sync_acquire, r, False) is False
    assert r._is_owned()
    r.release()
    assert not r._is_owned()


def test_rlock_owned_by_a_subinterpreter_cannot_be_released_here(interp):
    r = xi.RLock()
    acquired, release = xi.Event(), xi.Event()
    wait = call_in_thread(interp, rf.hold_until, r, acquired, release)
    try:
        assert acquired.wait(10)
        assert not r._is_owned()
        with pytest.raises(RuntimeError):
            r.release()
        assert r.acquire(timeout=0.05) is False
    finally:
        release.set()
    assert wait() is True  # the owner's own release worked
    assert r.acquire(False) is True
    r.release()


def test_rlock_ownership_between_main_and_a_subinterpreter(interp):
    r = xi.RLock()
    r.acquire()
    assert interp.run(rf.rlock_is_owned, r) is False
    assert interp.run(rf.sync_acquire, r, False) is False
    assert interp.run(rf.sync_release_outcome, r)[0] == "RuntimeError"
    r.release()
    # and the other way round
    assert interp.run(rf.sync_acquire, r) is True
    assert not r._is_owned()
    assert r.acquire(False) is False
    with pytest.raises(RuntimeError):
        r.release()
    assert interp.run(rf.rlock_is_owned, r) is True
    assert interp.run(rf.sync_release, r) is True
    assert r.acquire(False) is True
    r.release()


@pytest.mark.serial
def test_rlock_owned_by_a_closed_interpreter_can_be_acquired():
    it = xi.Interpreter().start()
    r = xi.RLock()
    assert it.run(rf.sync_acquire, r) is True
    assert it.run(rf.sync_acquire, r) is True  # two levels
    assert r.acquire(False) is False
    it.close()
    got, seconds = timed(r.acquire, timeout=5)
    assert got is True
    assert seconds < 0.5
    assert r._is_owned()
    r.release()  # one level: the dead owner's levels are gone
    assert not r._is_owned()
    assert in_thread(r.acquire, False)() is True


@pytest.mark.serial
def test_rlock_waiter_gets_it_when_the_owners_interpreter_closes():
    it = xi.Interpreter().start()
    r = xi.RLock()
    assert it.run(rf.sync_acquire, r) is True
    waiter = in_thread(timed, r.acquire, timeout=30)
    time.sleep(0.2)
    assert waiter.thread.is_alive()
    t0 = time.monotonic()
    it.close()
    got, _ = waiter(10)
    after_close = time.monotonic() - t0
    assert got is True
    assert after_close < 1.0  # acquired within a few tenths of a second


def test_rlock_non_blocking_acquire_after_the_owners_interpreter_closed():
    it = xi.Interpreter().start()
    r = xi.RLock()
    assert it.run(rf.sync_acquire, r) is True
    it.close()
    assert r.acquire(False) is True
    assert r._is_owned()
    r.release()
