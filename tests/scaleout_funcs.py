"""Task functions for the joblib and Dask tests.

They run inside pool interpreters, where neither joblib nor distributed can be imported,
so this module imports only the standard library at the top (the test modules, which
import those libraries, cannot be loaded there).
"""
import os
import sys
import time


class TaskError(Exception):
    """Raised by a task; importable on both sides."""


def square(x):
    return x * x


def where():
    """(interpreter id, process id, whether distributed is loaded here)."""
    from extrainterpreters import _xi

    return _xi.current_id(), os.getpid(), "distributed" in sys.modules


def square_where(x):
    return (x * x,) + where()


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def fail_task(message):
    raise TaskError(message)


def add(a, b):
    return a + b


def wait_event(event, value, timeout=60):
    """Returns value once ``event`` (an extrainterpreters.Event) is set."""
    if not event.wait(timeout):
        raise TimeoutError("the event was not set")
    return value


def set_event(event, value):
    event.set()
    return value


def _spin():
    while True:
        pass


def spin_forever(started=None):
    """Runs until interrupted (KeyboardInterrupt raised in its interpreter)."""
    if started is not None:
        started.set()
    _spin()


def fail_when_set(event, message):
    """Waits for ``event``, then raises TaskError(message)."""
    if not event.wait(60):
        raise TimeoutError("the event was not set")
    raise TaskError(message)


def rendezvous(folder, count, timeout=60):
    """Waits until ``count`` tasks of this process are inside; returns where() and the
    number that were. Fails with TimeoutError when they do not run at the same time."""
    me = where()
    name = os.path.join(folder, f"{os.getpid()}-{me[0]}-{time.monotonic_ns()}")
    open(name, "w").close()
    deadline = time.monotonic() + timeout
    prefix = f"{os.getpid()}-"
    while True:
        inside = [n for n in os.listdir(folder) if n.startswith(prefix)]
        if len(inside) >= count:
            return me + (len(inside),)
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(inside)} of {count} tasks ran at once")
        time.sleep(0.01)


def busy_work(n):
    """Pure-Python CPU work: a sum over n items."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
