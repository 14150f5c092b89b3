"""Helpers shared by the test modules (conftest.py puts tests/ on sys.path, so test
modules import them with ``from helpers import ...``)."""
import gc
import threading
import time

import extrainterpreters as xi

# a wait that should end at once may take this long on a busy machine
QUICK = 0.5


def waiter(thread, func, outcome, default_timeout=30):
    """A function ``wait(timeout=default_timeout)`` that joins ``thread``, fails if it
    still runs, and returns ``outcome()``; ``wait.thread`` is the thread."""

    def wait(timeout=default_timeout):
        thread.join(timeout)
        assert not thread.is_alive(), f"{func.__name__} still runs after {timeout} s"
        return outcome()

    wait.thread = thread
    return wait


def in_thread(func, *args, **kwargs):
    """Runs func in a new thread of this interpreter; returns a function that waits for
    it and returns its result (or raises its exception)."""
    box = {}

    def main():
        try:
            box["value"] = func(*args, **kwargs)
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=main)
    t.start()

    def outcome():
        if "error" in box:
            raise box["error"]
        return box["value"]

    return waiter(t, func, outcome)


def call_in_thread(it, func, *args, **kwargs):
    """Starts func in ``it`` in a new thread; returns a function that waits for it and
    returns its result (or raises its exception)."""
    return waiter(it.call_in_thread(func, *args, **kwargs), func, it.result)


def timed(func, *args, **kwargs):
    """(value, seconds) of ``func(*args, **kwargs)``."""
    t0 = time.monotonic()
    value = func(*args, **kwargs)
    return value, time.monotonic() - t0


def count_during(func, *args, **kwargs):
    """(func's value, how far another thread of this interpreter counted while func ran):
    the count grows only if func's wait releases the GIL."""
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        before = counter[0]
        value = func(*args, **kwargs)
        during = counter[0] - before
    finally:
        stop.set()
        t.join()
    return value, during


def wait_until(pred, timeout=10.0, interval=0.005):
    """Polls ``pred`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def parse(stdout):
    """Lines 'KEY value...' -> {KEY: 'value...'} (last wins)."""
    out = {}
    for line in stdout.splitlines():
        key, _, rest = line.partition(" ")
        out[key] = rest
    return out


def live_ids():
    """The ids of the live Interpreters."""
    return {it.id for it in xi.list_all()}


def live_objects():
    """The library's live shared objects, after a garbage collection."""
    gc.collect()
    return xi._xi._live_objects()
