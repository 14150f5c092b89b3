"""What the joblib and Dask integrations run inside pool interpreters.

This module imports only the standard library: neither joblib nor distributed loads in
an interpreter with its own GIL (each imports extension modules that refuse one), so the
integrations send the user's own functions and data, with these small runners, instead of
the wrappers those libraries would run in their own workers.
"""
import time


def run_calls(calls):
    """One joblib batch: [(func, args, kwargs), ...] -> [results], in order."""
    return [func(*args, **kwargs) for func, args, kwargs in calls]


def run_task(task, data):
    """One Dask task (a callable graph node) on its dependencies' values.
    Returns (start, stop, result), wall-clock times as time.time() gives them."""
    start = time.time()
    result = task(data)
    return start, time.time(), result
