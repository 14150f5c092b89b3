"""InterpreterPoolExecutor: a concurrent.futures.Executor whose workers are interpreters.

Each worker is a thread of this interpreter that owns one subinterpreter and calls into
it directly (the C core's fastest path), so a task costs what a ThreadPoolExecutor task
costs plus one cross-interpreter call, and CPU-bound tasks run in parallel.
"""
import collections
import concurrent.futures as _cf
import itertools
import logging
import os
import sys
import queue
import threading
import time
import weakref

from . import _fork, _xi
from .interpreter import Interpreter

__all__ = ["BrokenInterpreterPool", "FallbackWarning", "InterpreterPoolExecutor"]


class FallbackWarning(RuntimeWarning):
    """A task of an InterpreterPoolExecutor(fallback="process") runs in a process: an
    extension module it needs refuses isolated interpreters. Emitted once per module."""


FallbackWarning.__module__ = "extrainterpreters"
_FALLBACKS = (None, "process")
# modules already warned about, in this interpreter
_warned = set()
_warned_lock = threading.Lock()


if sys.version_info >= (3, 14):
    # the standard library's own class, so that code catching either name catches both
    from concurrent.futures.interpreter import BrokenInterpreterPool
else:
    # the bases of the standard library's class (a BrokenThreadPool, as this pool is a
    # ThreadPoolExecutor), so that the same except clauses catch it on every version
    from concurrent.futures.thread import BrokenThreadPool

    class BrokenInterpreterPool(BrokenThreadPool):
        """A worker's initializer failed: the pool takes no more work."""

    BrokenInterpreterPool.__module__ = "extrainterpreters"
_LOGGER = logging.getLogger("concurrent.futures")


class _Slot:
    """A worker's interpreter, and whether the worker uses it (guarded by the pool's
    lock). An idle worker's interpreter may be ended before os.fork(): the worker
    starts another for its next task."""

    __slots__ = ("interp", "busy")

    def __init__(self):
        self.interp = None
        self.busy = False


class _WorkItem:
    __slots__ = ("future", "fn", "args", "kwargs", "task", "in_process")

    def __init__(self, future, fn, args, kwargs, task, in_process=None):
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.task = task  # the user's function (fn may be a wrapper of the pool's)
        # (fn, args, kwargs) that a fallback process runs instead, or None
        self.in_process = in_process


def _in_process(payload):
    """Runs in a fallback process: fn(*args, **kwargs) from their pickle."""
    import pickle

    fn, args, kwargs = pickle.loads(payload)
    return fn(*args, **kwargs)


def _pickled_for_process(fn, args, kwargs):
    """(fn, args, kwargs) pickled for a process worker: by name as pickle does (the
    worker imports a script's functions from the script, as multiprocessing's do), else
    by value with cloudpickle (lambdas, closures)."""
    import pickle

    try:
        return pickle.dumps((fn, args, kwargs), protocol=5)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception:  # noqa: BLE001 - cloudpickle is the other way
        import cloudpickle

        return cloudpickle.dumps((fn, args, kwargs), protocol=5)


def _module_names(preload):
    """preload as a tuple of module names (a str is one name)."""
    names = (preload,) if isinstance(preload, str) else tuple(preload)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"preload must name modules (str), not {type(name).__name__}")
        if not name or not all(part.isidentifier() for part in name.split(".")):
            raise ValueError(f"preload: {name!r} is not a module name")
    return names


def _task_name(task):
    qualname = getattr(task, "__qualname__", None) or type(task).__qualname__
    module = getattr(task, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


def _call(fn, /, *args, **kwargs):
    """Runs in a worker interpreter: a task whose fn is not callable in the caller."""
    return fn(*args, **kwargs)


def _run_chunk(fn, chunk):
    """Runs in a worker interpreter: one task for many map() items. Each item's outcome
    is kept, so that map() delivers every result before a failing item and raises that
    item's exception (with its remote traceback) exactly where ThreadPoolExecutor would.
    """
    from . import _xi

    outcomes = []
    for args in chunk:
        try:
            outcomes.append((True, fn(*args)))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            outcomes.append((False, _xi._describe_exception(exc)))
    # tuples, not lists: large str and bytes values inside tuples cross out of band
    return tuple(outcomes)


# map() items whose encoded form is at least this large are not batched.
_LARGE_ITEM = 1 << 20

def _batches(n, chunksize, workers):
    """(start, stop) of the batches of a map of n items: guided self-scheduling. Each
    batch takes a share of the items still left (1 / (2 * workers), at least
    chunksize), so that a few large batches carry the fixed cost of a task while the
    last ones, single items when chunksize is 1, keep every worker busy to the end
    when the items take uneven times."""
    out, start = [], 0
    while start < n:
        stop = min(n, start + max(chunksize, (n - start) // (2 * workers)))
        out.append((start, stop))
        start = stop
    return out


def _encoded_size(item):
    """The size of an item's encoded form (0 when it cannot be encoded: that error is
    raised when its task runs, as for any other item)."""
    try:
        return _xi._encode(item)[0]
    except Exception:
        return 0


# Pools alive in this interpreter, so that exit can stop their workers first.
_pools = weakref.WeakSet()
_exiting = False


def _at_exit():
    global _exiting
    _exiting = True
    for pool in list(_pools):
        pool._terminate()


threading._register_atexit(_at_exit)


def _fork_before():
    # Every pool's lock is held across the fork: no worker takes a task (nor starts an
    # interpreter) meanwhile. The interpreters of idle workers end now, since the child
    # would inherit them (see _fork.py); those workers start new ones for their next task.
    pools = sorted(_pools, key=id)  # one order, for every thread that forks
    locked = []
    try:
        for pool in pools:
            pool._lock.acquire()
            locked.append(pool)
        for pool in pools:
            pool._end_idle_interpreters()
    except BaseException:
        _fork_parent(locked)
        raise
    return locked


def _fork_parent(locked):
    for pool in locked:
        pool._lock.release()


def _fork_child(locked):
    for pool in list(_pools):
        pool._reset_after_fork()


_fork.add(_fork_before, _fork_parent, _fork_child)


class InterpreterPoolExecutor(_cf.ThreadPoolExecutor):
    """An Executor running each task in one of max_workers subinterpreters.

    As the standard library's, it is a ThreadPoolExecutor (so that asyncio takes it as
    its default executor); it shares no state with that class's implementation."""

    _counter = itertools.count().__next__

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None,
                 initargs=(), *, fallback=None, preload=()):
        if fallback not in _FALLBACKS:
            raise ValueError(f"fallback must be None or 'process', not {fallback!r}")
        preload = _module_names(preload)
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._max_workers = max_workers
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._thread_name_prefix = (thread_name_prefix
                                    or f"InterpreterPoolExecutor-{self._counter()}")
        self._idle = threading.Semaphore(0)
        self._work = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = []
        self._slots = []
        self._shutdown = False
        self._terminating = False
        self._broken = None
        # fallback="process": a process pool beside the interpreters, started on first
        # need, for the tasks whose functions were refused (function -> module)
        self._fallback = fallback
        self._processes = None
        self._refused = {}
        # preload: every worker starts now and imports these as its interpreter starts
        self._preload = preload
        _pools.add(self)
        if preload:
            with self._lock:
                for _ in range(max_workers):
                    self._add_worker(eager=True)

    # -- submitting ------------------------------------------------------------

    def submit(self, fn, /, *args, **kwargs):
        return self._submit(fn, args, kwargs, fn)

    def _submit(self, fn, args, kwargs, task, in_process=None):
        with self._lock:
            if self._broken:
                raise BrokenInterpreterPool(self._broken)
            if self._shutdown or _exiting:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if not callable(fn):
                # as the standard pool: it fails in the worker, raising TypeError there
                # (or NotShareableError when it cannot even be unpickled there)
                fn, args = _call, (fn, *args)
            future = _cf.Future()
            item = _WorkItem(future, fn, args, kwargs, task, in_process)
            to_process = bool(self._refused) and self._refused_task(task)
            if not to_process:
                self._work.put(item)
                self._adjust_workers()
        if to_process:
            # refused before: straight to a process
            future.set_running_or_notify_cancel()
            self._run_in_process(item)
        return future

    submit.__doc__ = _cf.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None):
        """Like Executor.map. Items are sent to the workers in batches (at least
        chunksize items each: large ones first, then smaller ones, down to chunksize at
        the end), which changes only how the work is split, not the results or their
        order. With buffersize, at most
        that many items are submitted (one task each) and not yet yielded: the
        iterables are read as the results are consumed."""
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None:
            return self._map_buffered(fn, iterables, timeout, buffersize)
        end = None if timeout is None else time.monotonic() + timeout
        items = tuple(zip(*iterables))  # (its slices, the batches, are tuples too)
        if items and _encoded_size(items[0]) >= _LARGE_ITEM:
            # batching saves a task's fixed cost, which large items dwarf, and each
            # worker rebuilds its batch's buffers all at once: send them as they come
            bounds = [(i, min(len(items), i + chunksize))
                      for i in range(0, len(items), chunksize)]
        else:
            bounds = _batches(len(items), chunksize, self._max_workers)
        futures = [self._submit(_run_chunk, (fn, items[i:j]), {}, fn) for i, j in bounds]

        def results():
            try:
                futures.reverse()
                while futures:
                    future = futures.pop()
                    if end is None:
                        chunk = future.result()
                    else:
                        chunk = future.result(end - time.monotonic())
                    for ok, value in chunk:
                        if not ok:
                            _xi._raise_described(value)
                        yield value
            finally:
                for future in futures:
                    future.cancel()

        return results()

    def _map_buffered(self, fn, iterables, timeout, buffersize):
        # as concurrent.futures.Executor.map with a buffersize (Python 3.14)
        end = None if timeout is None else time.monotonic() + timeout
        args_iter = zip(*iterables)
        fs = collections.deque(self.submit(fn, *args)
                               for args in itertools.islice(args_iter, buffersize))
        pool = weakref.ref(self)

        def results():
            try:
                fs.reverse()
                while fs:
                    if (executor := pool()) is not None and (args := next(args_iter, None)):
                        fs.appendleft(executor.submit(fn, *args))
                    del executor
                    future = fs.pop()
                    try:
                        if end is None:
                            yield future.result()
                        else:
                            yield future.result(end - time.monotonic())
                    finally:
                        future.cancel()
                        del future
            finally:
                for future in fs:
                    future.cancel()

        return results()

    # -- workers -----------------------------------------------------------------

    def _adjust_workers(self):
        # as ThreadPoolExecutor: a new worker only when none is idle; each worker
        # creates its interpreter in its own thread, so they start in parallel
        if self._idle.acquire(timeout=0):
            return
        if len(self._threads) < self._max_workers:
            self._add_worker(eager=False)

    def _add_worker(self, eager):
        thread = threading.Thread(target=self._worker, args=(eager,),
                                  name=f"{self._thread_name_prefix}_{len(self._threads)}",
                                  daemon=False)
        self._threads.append(thread)
        thread.start()

    def _worker(self, eager):
        # the interpreter starts with the worker's first task (and again after a fork
        # ended it): a worker that has no task has no interpreter being made, and a
        # fork ends the interpreters of idle workers only. An eager worker (preload)
        # starts its interpreter at once.
        slot = _Slot()
        with self._lock:
            self._slots.append(slot)
            start_now = eager and not self._terminating
            if start_now:
                slot.busy = True
        try:
            if start_now:
                started = self._start_interpreter(slot)
                with self._lock:
                    slot.busy = False
                if not started:
                    return
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    self._idle.release()
                    item = self._work.get()
                if item is None:
                    self._work.put(None)  # wake the next worker too
                    return
                if not item.future.set_running_or_notify_cancel():
                    continue
                with self._lock:
                    slot.busy = True
                    interp = slot.interp
                    terminating = self._terminating
                if interp is None and not terminating:
                    # the first task, or the first after a fork: the initializer runs
                    if not self._start_interpreter(slot):
                        item.future.set_exception(BrokenInterpreterPool(self._broken))
                        return
                    with self._lock:
                        interp = slot.interp
                        terminating = self._terminating
                if terminating:
                    # _terminate() interrupted the running tasks while this one was
                    # not running yet: it ends as they do
                    outcome = (False, KeyboardInterrupt())
                else:
                    try:
                        outcome = (True, interp.run(item.fn, *item.args, **item.kwargs))
                    except BaseException as exc:
                        outcome = (False, exc)
                del interp
                # idle before the future is done: a fork right after it ends the
                # interpreter instead of finding it in use
                with self._lock:
                    slot.busy = False
                if outcome[0]:
                    if not (self._fallback and item.fn is _run_chunk
                            and self._chunk_refused(item, outcome[1])):
                        item.future.set_result(outcome[1])
                elif not (self._fallback and not terminating
                          and self._refused_now(item, outcome[1])):
                    item.future.set_exception(outcome[1])
                del item, outcome
        finally:
            with self._lock:
                if slot in self._slots:
                    self._slots.remove(slot)
                interp, slot.interp = slot.interp, None
            if interp is not None:
                interp.close()

    def _start_interpreter(self, slot):
        """Starts the worker's interpreter and runs the initializer there; on failure
        the pool breaks and False is returned."""
        try:
            interp = Interpreter()
            interp._bare_main = True  # as the standard library's workers
            interp.start()
        except BaseException as exc:
            self._break(f"a worker interpreter could not start: {exc!r}")
            return False
        with self._lock:
            slot.interp = interp
        for name in self._preload:
            try:
                interp.exec(f"import {name}")
            except BaseException as exc:
                from . import _errors

                if self._fallback and _errors.refused_message_in(exc) is not None:
                    # refused in interpreters: the tasks that need it go to processes
                    continue
                self._break(f"a worker interpreter could not import {name!r} (preload): "
                            f"{exc!r}")
                return False
        if self._initializer is not None:
            try:
                interp.call(self._initializer, *self._initargs)
            except BaseException as exc:
                _LOGGER.critical("Exception in initializer:", exc_info=True)
                self._break(f"an initializer failed: {exc!r}")
                return False
        return True

    def _end_idle_interpreters(self):
        """Before os.fork(), with the lock held: ends the interpreters of idle workers
        (the fork waits for them to end, all at once)."""
        for slot in self._slots:
            if not slot.busy and slot.interp is not None:
                interp, slot.interp = slot.interp, None
                interp._close_soon()

    def _reset_after_fork(self):
        """In a fork() child: the workers and their interpreters stayed in the parent,
        and so did the tasks not started (the parent runs them). The pool starts
        workers of its own for new tasks."""
        self._lock = threading.Lock()
        self._idle = threading.Semaphore(0)
        self._work = queue.SimpleQueue()
        self._threads = []
        self._slots = []
        # the fallback's processes belong to the parent: the child starts its own
        self._processes = None
        if self._shutdown:
            self._work.put(None)

    # -- the process fallback --------------------------------------------------------

    def _refused_task(self, task):
        try:
            return task in self._refused
        except TypeError:  # unhashable
            return False

    def _refused_now(self, item, exc):
        """After item failed in its interpreter with exc: when an extension module
        refused the interpreter, runs it again, from the start, in a process, and
        returns True. So does a task whose module such a refusal keeps out of
        interpreters when it cannot be sent by value either (it uses objects that do
        not pickle, such as joblib's own classes)."""
        from . import NotShareableError, _errors

        module = _errors.refused_message_in(exc)
        if module is None and isinstance(exc, NotShareableError):
            module = _errors.refusal_keeping_out(item.task)
        if module is None:
            return False
        self._note_refusal(item, module)
        self._run_in_process(item)
        return True

    def _chunk_refused(self, item, outcomes):
        """After a map() batch ran: its items that an extension module refused run again
        in processes, and item's future gets every outcome once they are in. True when
        some did, False when none was refused."""
        from . import _errors

        refused = [i for i, (ok, value) in enumerate(outcomes)
                   if not ok and _errors.refused_in_description(value) is not None]
        if not refused:
            return False
        self._note_refusal(item, _errors.refused_in_description(outcomes[refused[0]][1]))
        fn, chunk = item.args
        outcomes = list(outcomes)
        left = [len(refused)]
        lock = threading.Lock()

        def one_done(i, inner):
            try:
                outcomes[i] = (True, inner.result())
            except BaseException as exc:
                outcomes[i] = (False, _xi._describe_exception(exc))
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                item.future.set_result(outcomes)

        for i in refused:
            inner = _cf.Future()
            inner.set_running_or_notify_cancel()
            self._run_in_process(_WorkItem(inner, fn, chunk[i], {}, item.task))
            inner.add_done_callback(lambda f, i=i: one_done(i, f))
        return True

    def _note_refusal(self, item, module):
        try:
            self._refused[item.task] = module
        except TypeError:
            pass  # unhashable: each of its tasks tries an interpreter first
        with _warned_lock:
            first = module not in _warned
            _warned.add(module)
        if first:
            import warnings

            warnings.warn(FallbackWarning(
                f"module {module!r} refuses isolated interpreters: {_task_name(item.task)} "
                f"and its later tasks run in a process of the pool's fallback"), stacklevel=1)

    def _run_in_process(self, item):
        """Runs item (already marked running) in the fallback process pool; its future
        gets the outcome."""
        future = item.future
        try:
            payload = _pickled_for_process(*(item.in_process or (item.fn, item.args, item.kwargs)))
            with self._lock:
                if self._processes is None:
                    import multiprocessing

                    method = ("forkserver" if "forkserver" in
                              multiprocessing.get_all_start_methods() else "spawn")
                    self._processes = _cf.ProcessPoolExecutor(
                        self._max_workers, mp_context=multiprocessing.get_context(method),
                        initializer=self._initializer, initargs=self._initargs)
                processes = self._processes
            inner = processes.submit(_in_process, payload)
        except BaseException as exc:
            future.set_exception(exc)
            return

        def done(inner):
            try:
                future.set_result(inner.result())
            except BaseException as exc:
                future.set_exception(exc)

        inner.add_done_callback(done)

    def _break(self, reason):
        with self._lock:
            self._broken = reason
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is None:
                continue
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(BrokenInterpreterPool(reason))
        self._work.put(None)

    # -- ending ---------------------------------------------------------------------

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                self._cancel_pending()
            self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
        processes = self._processes
        if processes is not None:
            processes.shutdown(wait=wait, cancel_futures=cancel_futures)

    shutdown.__doc__ = _cf.Executor.shutdown.__doc__

    def _cancel_pending(self):
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.future.cancel()

    def _terminate(self):
        """Cancels pending work, interrupts running work, ends every worker (and
        every process of the fallback, terminated)."""
        with self._lock:
            self._shutdown = True
            self._terminating = True
            self._cancel_pending()
            self._work.put(None)
            interps = [slot.interp for slot in self._slots if slot.interp is not None]
        for interp in interps:
            try:
                interp.interrupt()
            except Exception:
                pass  # it closed meanwhile
        for thread in self._threads:
            thread.join()
        processes = self._processes
        if processes is not None:
            # the fallback's running tasks end with their processes
            terminate = getattr(processes, "terminate_workers", None)  # 3.14+
            if terminate is not None:
                terminate()
            else:
                for process in list((processes._processes or {}).values()):
                    process.terminate()
            processes.shutdown(wait=True, cancel_futures=True)

    def __exit__(self, exc_type, exc_val, exc_tb):
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self._terminate()
        else:
            self.shutdown(wait=True)
        return False
