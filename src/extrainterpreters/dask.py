"""Dask on interpreter pools, on one machine and on a distributed cluster.

One machine: an InterpreterPoolExecutor is a Dask scheduler as it is.

    with dask.config.set(scheduler=xi.InterpreterPoolExecutor(4)):
        result = graph.compute()

A cluster: the worker plugin InterpreterExecutor gives each worker an interpreter pool,
which runs the tasks annotated with ``dask.annotate(executor="interpreters")``.

    client.register_plugin(InterpreterExecutor(name="interpreters"))
    with dask.annotate(executor="interpreters"):
        futures = client.map(func, items)

A worker runs a task by calling distributed's own wrapper in its executor. That wrapper
lives in ``distributed``, which cannot be imported in an interpreter with its own GIL, so
the pool runs only the task itself (its function and dependencies) there and builds
distributed's result message in the worker's main interpreter.

This module imports ``distributed`` only when InterpreterExecutor is first used.
"""
import concurrent.futures as _cf
import sys
import time

from ._remote import run_task
from .executor import InterpreterPoolExecutor

__all__ = ["InterpreterExecutor", "WorkerInterpreterPool"]


# The first 3.13 release measured without that defect of sys._current_frames() (3.13.0
# aborts; the releases in between were not tried).
_CLUSTER_PYTHON = (3, 13, 18)


def _check_python():
    """Refuses the CPython versions on which Dask's workers crash or cannot load in
    interpreter pools."""
    if sys.version_info < (3, 13):
        raise RuntimeError(
            "Dask in interpreter pools needs CPython 3.13 or later: on 3.12, dask.bag "
            "cannot load in a subinterpreter (ctypes refuses one) and importing dask "
            "there makes the process abort at exit")
    if sys.version_info < _CLUSTER_PYTHON:
        raise RuntimeError(
            "Dask's cluster workers with interpreter pools need CPython 3.13.18 or later "
            "(or 3.14 or later): in earlier 3.13 releases sys._current_frames(), which a "
            "worker's profiler calls every 10 ms, makes frame objects of subinterpreters "
            "running under their own GIL and the worker process aborts (\"free(): "
            "invalid pointer\"); the local scheduler "
            "(dask.config.set(scheduler=InterpreterPoolExecutor(...))) works on every 3.13")


class _Outcome:
    """A graph node stand-in that hands distributed's wrapper an outcome already known."""

    __slots__ = ("ok", "value")

    def __init__(self, ok, value):
        self.ok = ok
        self.value = value

    def __call__(self, data):
        if self.ok:
            return self.value
        raise self.value


class WorkerInterpreterPool(_cf.Executor):
    """The executor a worker gets from InterpreterExecutor: an InterpreterPoolExecutor
    that runs a task's own function and data in the pool, not distributed's wrapper."""

    def __init__(self, max_workers=None, fallback="process"):
        _check_python()
        self._pool = InterpreterPoolExecutor(
            max_workers, thread_name_prefix="Dask-Interpreter-Pool", fallback=fallback)
        self._max_workers = self._pool._max_workers
        from distributed.worker import _run_task_simple

        self._wrapper = _run_task_simple

    def submit(self, fn, /, *args, **kwargs):
        if fn is not self._wrapper:
            return self._pool.submit(fn, *args, **kwargs)
        task, data, time_delay = args
        outer = _cf.Future()
        inner = self._pool.submit(run_task, task, data)
        queued = time.time()

        def done(inner):
            if not outer.set_running_or_notify_cancel():
                return
            try:
                start, stop, result = inner.result()
                outcome = _Outcome(True, result)
            except BaseException as exc:
                start = stop = None
                outcome = _Outcome(False, exc)
            try:
                # distributed's wrapper makes the message; only the times are ours
                msg = self._wrapper(outcome, {}, time_delay)
            except BaseException as exc:  # KeyboardInterrupt and SystemExit pass
                outer.set_exception(exc)
                return
            if start is None:
                start, stop = queued, time.time()
            msg["start"] = start + time_delay
            msg["stop"] = stop + time_delay
            outer.set_result(msg)

        inner.add_done_callback(done)
        return outer

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _plugin_class():
    from distributed import WorkerPlugin

    class InterpreterExecutor(WorkerPlugin):
        """A worker plugin: each worker gets an interpreter pool of max_workers
        interpreters (default: the worker's thread count) as its executor ``name``.
        Tasks annotated with ``dask.annotate(executor=name)`` run there; the others
        keep the worker's default executor."""

        def __init__(self, name="interpreters", max_workers=None, fallback="process"):
            _check_python()
            if fallback not in (None, "process"):
                raise ValueError(f"fallback must be None or 'process', not {fallback!r}")
            self.name = name
            self.max_workers = max_workers
            self.fallback = fallback

        def setup(self, worker):
            old = worker.executors.get(self.name)
            worker.executors[self.name] = WorkerInterpreterPool(
                self.max_workers or worker.state.nthreads, self.fallback)
            if isinstance(old, WorkerInterpreterPool):
                old.shutdown(wait=False)

        def teardown(self, worker):
            pool = worker.executors.get(self.name)
            if isinstance(pool, WorkerInterpreterPool):
                del worker.executors[self.name]
                pool.shutdown(wait=False)

    InterpreterExecutor.__module__ = __name__
    return InterpreterExecutor


def __getattr__(name):
    if name == "InterpreterExecutor":
        cls = globals()[name] = _plugin_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
