"""Semaphore and BoundedSemaphore: threading's semaphores across interpreters."""
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from helpers import QUICK, call_in_thread, in_thread, timed

KINDS = [xi.Semaphore, xi.BoundedSemaphore]


def drain(sem):
    """How many non-blocking acquires succeed (the value the semaphore had)."""
    n = 0
    while sem.acquire(False):
        n += 1
        assert n < 10_000
    return n


# --- one interpreter ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_counts_like_threading(kind):
    sem = kind(3)
    assert [sem.acquire(False) for _ in range(4)] == [True, True, True, False]
    sem.release()
    assert sem.acquire(timeout=0) is True
    assert sem.acquire(timeout=0) is False
    sem.release(3)
    assert drain(sem) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_default_value_is_one(kind):
    sem = kind()
    with sem as entered:
        assert entered is True
        assert sem.acquire(False) is False
    assert drain(sem) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_keyword_arguments(kind):
    sem = kind(value=2)
    assert sem.acquire(blocking=True, timeout=1) is True
    sem.release(n=1)
    assert drain(sem) == 2


def test_zero_value():
    sem = xi.Semaphore(0)
    assert sem.acquire(False) is False
    sem.release()
    assert sem.acquire(False) is True


@pytest.mark.parametrize("tkind, xkind", [(threading.Semaphore, xi.Semaphore),
                                          (threading.BoundedSemaphore, xi.BoundedSemaphore)])
def test_negative_initial_value_raises_value_error(tkind, xkind):
    with pytest.raises(ValueError):
        tkind(-1)
    with pytest.raises(ValueError):
        xkind(-1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [0, -1])
def test_release_of_fewer_than_one_raises_value_error(kind, n):
    sem = kind(1)
    sem.acquire()
    with pytest.raises(ValueError):
        sem.release(n)
    assert drain(sem) == 0  # nothing was released
    sem.release()


@pytest.mark.parametrize("kind", [threading.BoundedSemaphore, xi.BoundedSemaphore])
def test_bounded_over_release_raises_value_error(kind):
    sem = kind(2)
    with pytest.raises(ValueError):
        sem.release()
    sem.acquire()
    with pytest.raises(ValueError):
        sem.release(2)
    sem.release()
    assert drain(sem) == 2


def test_unbounded_semaphore_grows_past_its_initial_value():
    sem = xi.Semaphore(1)
    sem.release(5)
    assert drain(sem) == 6


@pytest.mark.parametrize("kind", KINDS + [threading.Semaphore])
def test_non_blocking_acquire_with_timeout_raises_value_error(kind):
    sem = kind(1)
    with pytest.raises(ValueError):
        sem.acquire(blocking=False, timeout=1)
    assert drain(sem) == 1


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.parametrize("where", ["main thread", "other thread"])
@pytest.mark.serial
def test_acquire_timeout_is_honoured(timeout, where):
    sem = xi.Semaphore(0)
    if where == "main thread":
        got, seconds = timed(sem.acquire, timeout=timeout)
    else:
        got, seconds = in_thread(timed, sem.acquire, timeout=timeout)()
    assert got is False
    assert timeout - 0.001 <= seconds < timeout + 0.45


@pytest.mark.parametrize("timeout", [0, -1])
@pytest.mark.serial
def test_acquire_with_non_positive_timeout_does_not_wait(timeout):
    sem = xi.Semaphore(0)
    got, seconds = timed(sem.acquire, timeout=timeout)
    assert got is False and seconds < QUICK


def test_blocked_acquire_wakes_on_release_from_another_thread():
    sem = xi.Semaphore(0)
    waiter = in_thread(timed, sem.acquire, timeout=30)
    time.sleep(0.2)
    assert waiter.thread.is_alive()
    sem.release()
    got, seconds = waiter()
    assert got is True and seconds >= 0.15
    assert drain(sem) == 0


def test_release_n_wakes_n_waiters():
    sem = xi.Semaphore(0)
    waiters = [in_thread(sem.acquire, timeout=30) for _ in range(3)]
    time.sleep(0.2)
    sem.release(2)
    deadline = time.monotonic() + 10
    while sum(w.thread.is_alive() for w in waiters) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert sum(w.thread.is_alive() for w in waiters) == 1
    sem.release()
    assert [w() for w in waiters] == [True] * 3
    assert drain(sem) == 0


# --- across interpreters -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_value_is_shared_with_a_subinterpreter(interp, kind):
    sem = kind(2)
    assert interp.run(rf.sync_acquire, sem) is True
    assert sem.acquire(False) is True
    assert interp.run(rf.sync_acquire, sem, False) is False
    assert interp.run(rf.sync_release, sem) is True
    assert sem.acquire(False) is True
    sem.release(2)
    assert interp.run(rf.sync_release_outcome, sem)[0] == (
        "ValueError" if kind is xi.BoundedSemaphore else "ok")


def test_bounded_errors_in_a_subinterpreter(interp):
    sem = xi.BoundedSemaphore(1)
    assert interp.run(rf.sync_release_outcome, sem)[0] == "ValueError"
    assert interp.run(rf.sync_release_outcome, sem, 0)[0] == "ValueError"
    assert interp.run(rf.sync_op, sem, "acquire", False, 1)[0] == "ValueError"
    assert drain(sem) == 1


def test_subinterpreter_waits_for_a_release_here(interp):
    sem = xi.Semaphore(0)
    started = xi.Event()
    wait = call_in_thread(interp, rf.started_then, started, sem, "acquire", timeout=30)
    assert started.wait(10)
    time.sleep(0.2)
    assert wait.thread.is_alive()
    sem.release()
    got, seconds = wait()
    assert got is True and seconds >= 0.15
    assert drain(sem) == 0


def test_main_waits_for_a_release_in_a_subinterpreter(interp):
    sem = xi.Semaphore(0)
    releaser = threading.Timer(0.2, interp.run, (rf.sync_release, sem))
    releaser.start()
    got, seconds = timed(sem.acquire, timeout=30)
    releaser.join()
    assert got is True and 0.1 <= seconds < 10


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.serial
def test_acquire_timeout_in_a_subinterpreter(interp, timeout):
    sem = xi.Semaphore(0)
    kind, value, seconds = interp.run(rf.timed_call, sem, "acquire", timeout=timeout)
    assert (kind, value) == ("ok", False)
    assert timeout - 0.001 <= seconds < timeout + 0.45


def test_release_n_wakes_n_subinterpreters(interps):
    its = interps(3)
    sem = xi.Semaphore(0)
    started = [xi.Event() for _ in its]
    waits = [call_in_thread(it, rf.started_then, ev, sem, "acquire", timeout=30)
             for it, ev in zip(its, started)]
    assert all(ev.wait(10) for ev in started)
    time.sleep(0.2)
    sem.release(2)
    deadline = time.monotonic() + 10
    while sum(w.thread.is_alive() for w in waits) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert sum(w.thread.is_alive() for w in waits) == 1
    sem.release()
    assert [w()[0] for w in waits] == [True] * 3
    assert drain(sem) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_semaphore_admits_at_most_value_holders(interps, kind):
    """4 interpreters x 2 threads pass through Semaphore(2): never more than 2 inside."""
    its = interps(4)
    sem, lock = kind(2), xi.Lock()
    buf = xi.SharedBuffer(16)
    rounds = 15
    waits = [call_in_thread(it, rf.threaded_semaphore_occupancy, sem, lock, buf, 2, rounds)
             for it in its]
    assert [w(120) for w in waits] == [2 * rounds] * 4
    inside, most = memoryview(buf).cast("q")
    assert inside == 0
    assert most == 2  # the limit was reached and never passed
    assert drain(sem) == 2
