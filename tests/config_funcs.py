"""Functions that tests/test_config.py runs in interpreters."""
import os
import time


def import_singlephase():
    """Imports CPython's single-phase-init test module; returns its name."""
    import _testsinglephase
    return _testsinglephase.__name__


def singlephase_in_new_interpreter(config):
    """From inside an interpreter: a new one with `config` imports the module."""
    import extrainterpreters as xi
    with xi.Interpreter(config=config) as it:
        return it.call(import_singlephase)


def put_under_lock(q, lock, value):
    with lock:
        q.put(value)
    return "put"


def hold_lock_until_released(lock, started, release):
    """Takes `lock`, reports it on `started`, keeps it until `release` is set."""
    with lock:
        started.put("locked")
        release.wait(30)
    return "released"


def get_one(q):
    return q.get(timeout=30)


def _spin(limit, pause):
    end = time.monotonic() + limit
    n = 0
    while True:
        n += 1
        if n % 4096 == 0:
            if time.monotonic() > end:
                return "not interrupted"
            if pause:
                time.sleep(0.001)


def spin_until_interrupted(started, pause=False):
    """A pure-Python loop that reports its start on `started` and ends when a
    KeyboardInterrupt reaches it (or after 30 s). pause: it sleeps now and then (where
    other interpreters' threads get a shared GIL only when it blocks). The loop is a
    function of its own: on 3.14 an interrupt landing in a loop may miss a try of the
    same function."""
    started.put("spinning")
    try:
        return _spin(30, pause)
    except KeyboardInterrupt:
        return "interrupted"


def spin_until_file(path, limit=60.0):
    """A pure-Python loop that ends once `path` exists (or after `limit` s)."""
    end = time.monotonic() + limit
    n = 0
    while True:
        n += 1
        if n % 4096 == 0 and (os.path.exists(path) or time.monotonic() > end):
            return os.path.exists(path)
