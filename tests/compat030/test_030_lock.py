"""0.3.0's tests/test_lock.py: Lock and RLock, in one interpreter and shared with another
by pickling them into run_string() code."""
import pickle
import threading
from functools import partial
from textwrap import dedent as D

import pytest

import extrainterpreters as ei

LOCKS = ["Lock", "RLock", "IntRLock"]


def lock_class(name):
    if name == "IntRLock":  # 0.3.0's private module extrainterpreters.lock
        import importlib

        return importlib.import_module("extrainterpreters.lock").IntRLock
    return getattr(ei, name)


@pytest.fixture
def interpreter(lowlevel):
    interp = ei.Interpreter().start()
    interp.run_string("import extrainterpreters as ei; ei.DEBUG=True", raise_=True)
    yield interp
    interp.close()


@pytest.mark.parametrize("name", LOCKS)
def test_locks_are_acquireable(name):
    lock = lock_class(name)()
    assert not lock.locked()
    lock.acquire()
    assert lock.locked()
    lock.release()
    assert not lock.locked()


@pytest.mark.parametrize("name", LOCKS)
def test_locks_work_as_context_manager(name):
    lock = lock_class(name)()
    assert not lock.locked()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_lock_cant_be_reacquired_same_interpreter():
    lock = ei.Lock()
    assert lock.acquire()
    assert not lock.acquire(blocking=False)


def test_lock_cant_be_reacquired_other_interpreter(interpreter):
    lock = ei.Lock()
    run = partial(interpreter.run_string, raise_=True)
    run(f"lock = pickle.loads({pickle.dumps(lock)})")
    run("assert lock.acquire(blocking=False)")
    assert not lock.acquire(blocking=False)
    run("assert not lock.acquire(blocking=False)")
    run("lock.release()")
    assert lock.acquire(blocking=False)
    run("assert not lock.acquire(blocking=False)")
    lock.release()
    run("assert lock.acquire(blocking=False)")
    run("lock.release()")


def test_lock_works_across_threads_in_same_interpreter():
    lock = ei.Lock()
    results = []
    # 0.3.0 ordered the steps with sleeps (25 ms, 85 ms, 100 ms); events order them here
    held, tried, released = threading.Event(), threading.Event(), threading.Event()

    def aux1():
        results.append((lock.acquire(blocking=False), "aux1 - first lock, should work"))
        held.set()
        tried.wait(30)
        lock.release()
        released.set()

    def aux2():
        held.wait(30)
        results.append((not lock.acquire(blocking=False), "aux2 - first lock, should fail"))
        tried.set()
        released.wait(30)
        results.append((lock.acquire(blocking=False), "aux2 - second lock, should work"))
        if lock.locked():
            lock.release()

    t1, t2 = threading.Thread(target=aux1), threading.Thread(target=aux2)
    t1.start()
    t2.start()
    t1.join()
    t2.join()
    assert len(results) == 3
    for status, message in results:
        assert status, message


@pytest.mark.parametrize("name", LOCKS)
def test_locks_can_be_passed_to_other_interpreter(name, interpreter):
    lock = lock_class(name)()
    lock_data = ei.utils._remote_memory(lock._lock._lock_address, 1)
    interpreter.run_string(D(f"""
        lock = pickle.loads({pickle.dumps(lock)})
        lock_data = ei.utils._remote_memory(lock._lock._lock_address, 1)
        assert lock_data[0] == 0
        """), raise_=True)
    lock_data[0] = 2
    interpreter.run_string("assert lock_data[0] == 2\nlock_data[0] = 5", raise_=True)
    assert lock_data[0] == 5
