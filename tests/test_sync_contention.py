"""Mutual exclusion under contention: threads of several interpreters (each with its own
GIL, so truly in parallel) add to a counter in a SharedBuffer under one shared lock.
The counter ends exact and no thread ever finds another inside the lock."""
import struct
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf

PRIMS = {
    "Lock-with": (xi.Lock, "with"),
    "Lock-acquire": (xi.Lock, "acquire"),
    "RLock": (xi.RLock, "RLock"),
    "RLock-acquire": (xi.RLock, "acquire"),
    "Semaphore": (lambda: xi.Semaphore(1), "with"),
    "BoundedSemaphore": (lambda: xi.BoundedSemaphore(1), "acquire"),
    "Condition": (xi.Condition, "with"),
    "Condition-Lock": (lambda: xi.Condition(xi.Lock()), "acquire"),
}


def counter(buf):
    return struct.unpack_from("<q", memoryview(buf), 0)[0]


def start_all(its, func, *args):
    threads = [it.call_in_thread(func, *args) for it in its]

    def wait(timeout=300):
        for t in threads:
            t.join(timeout)
            assert not t.is_alive(), "a worker did not finish"
        return [it.result() for it in its]

    return wait


@pytest.mark.parametrize("name", list(PRIMS))
def test_four_interpreters_two_threads_each(interps, name):
    factory, kind = PRIMS[name]
    prim = factory()
    buf = xi.SharedBuffer(16)
    its = interps(4)
    n = 1500
    wait = start_all(its, rf.threaded_locked_increments, prim, buf, 2, n, kind, True)
    violations = wait()
    assert violations == [0, 0, 0, 0]
    assert counter(buf) == 4 * 2 * n
    assert memoryview(buf)[8:16] == b"\0" * 8
    # the lock ends free
    assert prim.acquire(False) is True
    prim.release()


def test_interpreters_and_main_threads_together(interps):
    lock = xi.Lock()
    buf = xi.SharedBuffer(16)
    its = interps(4)
    n = 1500
    wait = start_all(its, rf.threaded_locked_increments, lock, buf, 2, n, "with", True)
    here = []
    threads = [threading.Thread(target=lambda: here.append(
        rf.locked_increments(lock, buf, n, "acquire", True))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert wait() == [0, 0, 0, 0]
    assert here == [0, 0]
    assert counter(buf) == (4 * 2 + 2) * n
    assert not lock.locked()


def test_threads_of_one_interpreter(interp):
    """A drop-in for threading.Lock between threads of one (sub)interpreter."""
    lock = xi.Lock()
    buf = xi.SharedBuffer(16)
    n = 3000
    assert interp.run(rf.threaded_locked_increments, lock, buf, 4, n, "with", True) == 0
    assert counter(buf) == 4 * n


def test_hundred_thousand_increments_by_four_interpreters(interps):
    lock = xi.Lock()
    buf = xi.SharedBuffer(16)
    its = interps(4)
    t0 = time.monotonic()
    wait = start_all(its, rf.locked_increments, lock, buf, 25_000, "with")
    assert wait() == [0, 0, 0, 0]
    assert counter(buf) == 100_000
    assert not lock.locked()
    assert time.monotonic() - t0 < 120
