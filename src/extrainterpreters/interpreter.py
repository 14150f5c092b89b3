"""The Interpreter class: a subinterpreter with a threading-like life."""
import atexit
import sys
import threading
import weakref

from . import _xi
from ._xi import InterpreterError

__all__ = ["Interpreter", "create", "get_current", "get_main", "list_all"]

# Interpreters started from this interpreter, by id, while they are referenced.
_started = weakref.WeakValueDictionary()


class Interpreter:
    """A subinterpreter with its own GIL.

    Nothing is created until start(). With a target, start() also runs
    target(*args, **kwargs) there in a new thread; join() waits for it and closes the
    interpreter, result() returns its value or raises its exception.
    """

    def __init__(self, target=None, args=(), kwargs=None):
        if target is not None and not callable(target):
            raise TypeError(f"target must be callable, not {type(target).__name__}")
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs) if kwargs else {}
        self._handle = None
        self._id = None
        self._closed = False
        self._lock = threading.Lock()
        self._thread = None
        self._outcome = None

    @classmethod
    def _wrap(cls, handle):
        self = cls()
        self._handle = handle
        self._id = handle.id
        return self

    # -- life ---------------------------------------------------------------

    @property
    def id(self):
        """The interpreter's id (None before start())."""
        return self._id

    @property
    def intno(self):
        """The interpreter's id while it is open; None before start() and after close()."""
        return None if self._closed else self._id

    def start(self):
        """Create the interpreter (and run the target in a new thread). Returns self."""
        with self._lock:
            if self._handle is not None or self._closed:
                raise InterpreterError(f"{self!r} was already started")
            self._handle = _xi.create(sys.path)
            self._id = self._handle.id
        _started[self._id] = self
        if self._target is not None:
            self._start_thread(self._target, self._args, self._kwargs)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """End the interpreter. Raises InterpreterError while it runs code."""
        handle = self._handle
        if handle is None or self._closed:
            return
        handle.close()
        self._closed = True
        _started.pop(self._id, None)

    def is_running(self):
        """Whether code is running in the interpreter now, in any thread."""
        handle = self._handle
        return handle is not None and not self._closed and handle.is_running()

    def interrupt(self):
        """Raise KeyboardInterrupt in every call running in the interpreter."""
        self._open().interrupt()

    # -- calls --------------------------------------------------------------

    def _open(self):
        handle = self._handle
        if handle is None:
            raise InterpreterError("the interpreter is not started; call start() first")
        if self._closed:
            raise InterpreterError(f"interpreter {self._id} is closed")
        return handle

    def run(self, func, /, *args, **kwargs):
        """Run func(*args, **kwargs) in the interpreter and return its result."""
        return self._open().call(func, *args, **kwargs)

    call = run

    def exec(self, code):
        """Run source code in the interpreter's __main__."""
        self._open().exec(code)

    run_string = exec

    def prepare_main(self, ns=None, /, **kw):
        """Bind the given values as names in the interpreter's __main__."""
        values = dict(ns) if ns is not None else {}
        values.update(kw)
        self._open().prepare_main(values)

    # -- threaded calls -------------------------------------------------------

    def _start_thread(self, func, args, kwargs):
        handle = self._open()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise InterpreterError(f"interpreter {self._id} already runs a threaded call")
            self._outcome = None
            thread = threading.Thread(
                target=self._thread_main, args=(handle, func, args, kwargs),
                name=f"extrainterpreters-{self._id}")
            self._thread = thread
        thread.start()
        return thread

    def _thread_main(self, handle, func, args, kwargs):
        try:
            self._outcome = (True, handle.call(func, *args, **kwargs))
        except BaseException as exc:  # the caller gets it from result()
            self._outcome = (False, exc)

    async def run_async(self, func, /, *args, **kwargs):
        """run() as a coroutine: the call runs in a thread while the event loop goes on.

        Cancelling it (as asyncio.run() does on Ctrl-C) interrupts the call, raising
        KeyboardInterrupt there, and waits for it to end; a call not started yet is
        not made."""
        import asyncio

        handle = self._open()
        loop = asyncio.get_running_loop()
        lock = threading.Lock()
        state = {"ident": None, "cancelled": False}

        def call():
            with lock:
                if state["cancelled"]:
                    raise asyncio.CancelledError()
                state["ident"] = threading.get_ident()
            return handle.call(func, *args, **kwargs)

        future = loop.run_in_executor(None, call)
        # when cancelled, its outcome is not read: mark it retrieved
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with lock:
                state["cancelled"] = True
                ident = state["ident"]
            if ident is not None:
                # until it ends: an interrupt that comes before the call has started
                # in the interpreter reaches nothing, and the call may catch one
                while not future.done():
                    handle.interrupt(ident)
                    await asyncio.wait([future], timeout=0.1)
            raise

    def run_in_thread(self, func, /, *args, **kwargs):
        """Start func(*args, **kwargs) in a new thread; see done() and result()."""
        self._start_thread(func, args, kwargs)
        return True

    def call_in_thread(self, func, /, *args, **kwargs):
        """Like run_in_thread(), returning the started threading.Thread."""
        return self._start_thread(func, args, kwargs)

    def done(self):
        """Whether the last threaded call has finished."""
        thread = self._thread
        return thread is not None and not thread.is_alive() and self._outcome is not None

    def result(self):
        """The value of the last threaded call, or its exception raised again."""
        if not self.done():
            raise InterpreterError("the threaded call has not finished (see done())"
                                   if self._thread is not None else
                                   "no threaded call was started")
        ok, value = self._outcome
        if ok:
            return value
        raise value

    def is_alive(self):
        """Whether a threaded call is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def join(self, timeout=None):
        """Wait for the threaded call, then close the interpreter.

        When the timeout expires first, returns without closing."""
        thread = self._thread
        if thread is not None:
            try:
                thread.join(timeout)
            except KeyboardInterrupt:
                if not self._closed:
                    self._handle.interrupt()
                raise
            if thread.is_alive():
                return
        self.close()

    def __repr__(self):
        if self._handle is None:
            state = "not started"
        elif self._closed:
            state = "closed"
        else:
            state = "open"
        return f"<extrainterpreters.Interpreter id={self._id} {state}>"


def create():
    """A new, started Interpreter."""
    return Interpreter().start()


def list_all():
    """The live interpreters made by this library."""
    found = []
    for id_ in _xi.list_all():
        interp = _started.get(id_)
        if interp is None:
            try:
                interp = Interpreter._wrap(_xi.handle(id_))
            except InterpreterError:
                continue
        found.append(interp)
    return found


def get_current():
    """The interpreter this code runs in."""
    id_ = _xi.current_id()
    return _started.get(id_) or Interpreter._wrap(_xi.handle(id_))


def get_main():
    """The main interpreter."""
    return Interpreter._wrap(_xi.handle(_xi.main_id()))


def _close_all_at_exit():
    # This runs after the main interpreter joined its non-daemon threads: the threads
    # still alive are daemon threads (or ones that Ctrl-C gave up waiting for). Exit
    # does not wait for them, so it does not wait for their calls either: those are
    # interrupted. Every other call is waited for.
    me = threading.get_ident()
    daemons = [t.ident for t in threading.enumerate() if t.ident not in (None, me)]
    _xi.close_all(daemons)


if _xi.current_id() == _xi.main_id():
    atexit.register(_close_all_at_exit)
