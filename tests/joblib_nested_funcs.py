"""Task functions of a module that imports joblib, which no isolated interpreter can
import: their batches run in processes of the backend's fallback."""
import os
import time

from joblib import Parallel, delayed, parallel


class TaskError(Exception):
    pass


def square(x):
    return x * x


def nested_info(n):
    """A nested Parallel call: where it ran, and the backend it got."""
    backend, _ = parallel.get_active_backend()
    inner = Parallel(n_jobs=2)(delayed(square)(i) for i in range(n))
    return os.getpid(), type(backend).__name__, backend.nesting_level, inner


def sleep_then_fail(seconds, message):
    """Runs in a process: it uses joblib."""
    parallel.get_active_backend()
    if message is not None:
        raise TaskError(message)
    time.sleep(seconds)
