"""A joblib parallel backend that runs batches in subinterpreters.

    import extrainterpreters.joblib  # registers the backend "interpreters"
    from joblib import Parallel, delayed, parallel_config

    with parallel_config("interpreters", n_jobs=4):
        results = Parallel()(delayed(f)(i) for i in range(100))

Each joblib batch runs in a worker of an InterpreterPoolExecutor: its calls and their
results cross by pickle (cloudpickle for __main__ functions, lambdas and closures), and
CPU-bound batches run in parallel, one GIL per interpreter. The pool is kept between
Parallel calls with the same n_jobs, as loky keeps its workers.

Code that runs in the pool cannot import joblib itself (joblib loads extension modules
that refuse an interpreter with its own GIL): the backend sends each batch's own calls,
not joblib's wrapper. A batch that runs in a process of the fallback runs inside
joblib's wrapper there, as in loky's workers, and its nested Parallel calls get joblib's
usual nested backends: threads one level down, sequential below. A Parallel call with
this backend that is nested inside a running batch of any backend runs sequentially.
"""
import os
import threading

from joblib import register_parallel_backend
from joblib._parallel_backends import (
    AutoBatchingMixin,
    FallbackToBackend,
    ParallelBackendBase,
    SequentialBackend,
    ThreadingBackend,
)

from . import _fork, _xi
from ._remote import run_calls
from .executor import InterpreterPoolExecutor

__all__ = ["InterpretersBackend", "InterpreterBackend"]

# Pools shared by the Parallel calls of this process, by size: starting interpreters
# costs milliseconds each, so consecutive calls reuse them.
_pools = {}
_pools_lock = threading.Lock()


def _new_lock_in_child(_):
    # a thread that held it stayed in the parent
    global _pools_lock
    _pools_lock = threading.Lock()


_fork.add(lambda: None, lambda _: None, _new_lock_in_child)


def _shared_pool(n_jobs, fallback, initializer=None, initargs=()):
    # One pool per size and fallback. As loky's reusable executor, a call whose
    # initializer or initargs are not the same objects as the pool's replaces it.
    with _pools_lock:
        entry = _pools.get((n_jobs, fallback))
        if entry is not None and (entry[1] is not initializer or len(entry[2]) != len(initargs)
                                  or any(a is not b for a, b in zip(entry[2], initargs))):
            entry[0].shutdown(wait=False)
            entry = None
        if entry is None:
            pool = InterpreterPoolExecutor(
                n_jobs, thread_name_prefix=f"joblib-interpreters-{n_jobs}",
                initializer=initializer, initargs=initargs, fallback=fallback)
            entry = _pools[n_jobs, fallback] = (pool, initializer, initargs)
        return entry[0]


def _run_batch(batch):
    """A batch in a process of the fallback: joblib's BatchedCalls, which sets the
    nested backend (get_nested_backend) for its calls. Unpickling this function there imports
    this module, which registers the backend in that process too."""
    return batch()


def _discard_pool(pool):
    with _pools_lock:
        for key, entry in list(_pools.items()):
            if entry[0] is pool:
                del _pools[key]


class InterpretersBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib backend "interpreters": batches run in an InterpreterPoolExecutor.

    Named as joblib names its backends (the name, titled, + "Backend");
    InterpreterBackend is the same class."""

    supports_retrieve_callback = True
    supports_sharedmem = False
    # A batch costs tens of microseconds to dispatch (a process pool's, hundreds), so
    # batches can be ten times shorter than loky's: the work stays balanced to the end.
    MIN_IDEAL_BATCH_DURATION = 0.02
    MAX_IDEAL_BATCH_DURATION = 0.2
    uses_threads = False

    _pool = None
    parallel = None

    def __init__(self, *args, fallback="process", **kwargs):
        # fallback: as InterpreterPoolExecutor's; "process" by default, since a backend
        # runs code its user does not control (a batch that needs an extension module
        # refusing interpreters runs again in a process)
        if fallback not in (None, "process"):
            raise ValueError(f"fallback must be None or 'process', not {fallback!r}")
        super().__init__(*args, **kwargs)
        self.fallback = fallback

    def effective_n_jobs(self, n_jobs):
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if self.nesting_level or _xi.current_id() != _xi.main_id():
            # inside a running batch (of this or another backend): no nested pools
            return 1
        if n_jobs < 0:
            n_jobs = max((os.cpu_count() or 1) + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None,
                  **backend_kwargs):
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        # initializer and initargs, as loky's and multiprocessing's: given to the
        # backend (parallel_config) or to the Parallel call
        options = {**self.backend_kwargs, **backend_kwargs}
        initializer, initargs = options.get("initializer"), options.get("initargs", ())
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable, not {type(initializer).__name__}")
        self.parallel = parallel
        self._pool = _shared_pool(n_jobs, self.fallback, initializer, tuple(initargs))
        return n_jobs

    def get_nested_backend(self):
        # As joblib's own backends: a Parallel call in a batch (which can only run in a
        # process of the fallback: joblib cannot be imported in an interpreter) gets
        # threads, one level down, and runs sequentially deeper down.
        level = (self.nesting_level or 0) + 1
        if level > 1:
            return SequentialBackend(nesting_level=level), None
        return ThreadingBackend(nesting_level=level), None

    def submit(self, func, callback=None):
        calls = getattr(func, "items", None)  # joblib's BatchedCalls
        if calls is not None:
            # a batch refused by interpreters goes to a process with its first function,
            # where joblib's own wrapper runs it
            future = self._pool._submit(run_calls, (calls,), {}, calls[0][0] if calls else None,
                                        in_process=(_run_batch, (func,), {}))
        else:
            future = self._pool.submit(func)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, future):
        return future.result()

    def terminate(self):
        # the pool stays for the next Parallel call; batch statistics do not
        self._pool = None
        self.reset_batch_stats()

    def abort_everything(self, ensure_ready=True):
        """Cancel the batches not started, interrupt the running ones (they raise
        KeyboardInterrupt in their interpreter) and end the pool's workers."""
        pool = self._pool
        self._pool = None
        if pool is not None:
            _discard_pool(pool)
            pool._terminate()
        if ensure_ready and self.parallel is not None:
            self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel,
                           **self.parallel._backend_kwargs)


InterpreterBackend = InterpretersBackend

register_parallel_backend("interpreters", InterpretersBackend)
