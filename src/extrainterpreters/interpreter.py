"""The Interpreter class: a subinterpreter with a threading-like life."""
import atexit
import marshal
import sys
import threading
import types
import weakref

from . import _fork, _xi  # noqa: F401  (_fork: the hooks of os.fork())
from ._xi import ExecutionFailed, InterpreterError, InterpreterNotFoundError, NotShareableError

try:
    import _interpreters as _stdlib  # 3.13 and later
except ImportError:  # 3.12
    import _xxsubinterpreters as _stdlib

if sys.version_info < (3, 14):
    # CPython 3.12 and 3.13 (every patch release tried: 3.12.1, 3.13.0, 3.13.18) corrupt
    # memory when two subinterpreters that loaded datetime overlap in time, unless the
    # main interpreter loaded _datetime first: its static types are then set up once,
    # by the main interpreter, and no subinterpreter finalises them (CPython gh-136421,
    # gh-136423; fixed in 3.14). Loading it here, in the interpreter that creates the
    # others, costs well under a millisecond, once. (In a subinterpreter of 3.12 the
    # module refuses to load, and has nothing to fix there.)
    try:
        import _datetime  # noqa: F401
    except ImportError:
        pass
if sys.version_info < (3, 13):
    # CPython 3.12: a process whose subinterpreters imported hashlib aborts at exit
    # ("free(): invalid pointer") unless the main interpreter imported it first. A few
    # milliseconds, once, in the main interpreter only.
    if _stdlib.get_current() == _stdlib.get_main():
        import hashlib  # noqa: F401

__all__ = ["Interpreter", "ResultNotReadyError", "create", "get_current", "get_main",
           "list_all", "raw_list_all"]

# Interpreters started from this interpreter, by id, while they are referenced.
_started = weakref.WeakValueDictionary()
# The one Interpreter object of each id looked up here (Interpreter(id), list_all()...).
_known = weakref.WeakValueDictionary()

# whence: where an interpreter was made, as the standard library words it. Interpreters
# made by this library are "_interpreters module": made by the high-level API, and
# usable with every method.
_WHENCE_LIBRARY = "_interpreters module"
_WHENCE_TO_STR = {0: "unknown", 1: "runtime init", 2: "legacy C-API", 3: "C-API",
                  4: "cross-interpreter C-API", 5: "_interpreters module"}


def _live_ids():
    """Ids of every live interpreter of the process (this library's or not), less
    this library's that are closing (their owner was collected: they end soon)."""
    ours = set(_xi.list_all())
    ids = []
    for item in _stdlib.list_all():
        id_ = int(item[0] if isinstance(item, tuple) else item)
        if id_ in ours or not _is_closing(id_):
            ids.append(id_)
    return ids


def _is_closing(id_):
    """Whether id_ is an interpreter of this library that is closing."""
    if id_ in (_xi.main_id(), _xi.current_id()) or id_ in _xi.list_all():
        return False
    try:
        _xi.handle(id_)
    except InterpreterNotFoundError:
        return False  # not this library's
    return True


class ResultNotReadyError(InterpreterError, ValueError):
    """result() was called before the threaded call finished, or with none started.

    An InterpreterError, and a ValueError as extrainterpreters 0.3.0 raised there."""


ResultNotReadyError.__module__ = "extrainterpreters"


def _stdlib_error(exc):
    """The library's exception for one that the standard library's _interpreters raised
    (on 3.14 and later the library's classes derive from its, not the other way)."""
    cls = (InterpreterNotFoundError if isinstance(exc, _stdlib.InterpreterNotFoundError)
           else InterpreterError)
    return cls(*exc.args)


# the standard library's class (from 3.14 on, a base of InterpreterNotFoundError)
_STDLIB_NOT_FOUND = getattr(_stdlib, "InterpreterNotFoundError", InterpreterNotFoundError)


def _wait_for_closing():
    """Waits until the interpreters of this library that are closing have ended.

    One of them may own interpreters that the standard library made inside it: its end
    destroys them, and CPython does not let two threads end one interpreter at once (the
    second hangs for ever, or crashes). An interpreter whose owner was collected while it
    runs a call is not waited for: it ends when the call returns."""
    ours = set(_xi.list_all())
    for item in _stdlib.list_all():
        id_ = int(item[0] if isinstance(item, tuple) else item)
        if id_ in ours or not _is_closing(id_):
            continue
        try:
            _xi.handle(id_).close()  # waits for the close in progress
        except InterpreterError:
            pass  # ended meanwhile, or still running a call


def _close_stdlib_made(id_):
    """Ends interpreter id_ if concurrent.interpreters made it (True), else False.

    An interpreter that the standard library made inside one of this library's is
    destroyed with it; if that one is closing, close() waits for it and the
    interpreter is gone. Closing one that is gone does nothing."""
    if getattr(_stdlib, "whence", None) is None:  # 3.12: no way to tell
        return False
    stdlib_made = getattr(_stdlib, "WHENCE_STDLIB", None)
    try:
        if _stdlib.whence(id_) != stdlib_made:
            return False
        _wait_for_closing()
        if _stdlib.whence(id_) != stdlib_made:
            return False
    except (InterpreterNotFoundError, _STDLIB_NOT_FOUND):
        return True
    _stdlib.destroy(id_)
    return True


def _stdlib_whence(id_):
    if id_ == _xi.main_id():
        return "runtime init"
    whence = getattr(_stdlib, "whence", None)
    if whence is None:
        return "unknown"
    try:
        return _WHENCE_TO_STR.get(whence(id_), "unknown")
    except Exception:
        return "unknown"


def _call(handle, func, args, kwargs):
    """handle.call(func, *args, **kwargs), sent again when the target could not import a
    module that it names (see _call_again)."""
    try:
        return handle.call(func, *args, **kwargs)
    except NotShareableError as exc:
        if (_unimportable(exc) is None and _learned_module(func) is None
                and _by_name_from_script(func, args) is None):
            raise
        return _call_again(handle, exc, func, args, kwargs)


def _by_name_from_script(func, args):
    """The function of the script's __main__ that a call sent by name (func, or the
    function a pool's batch carries as its first argument), else None."""
    byvalue = sys.modules.get(f"{__package__}._byvalue")
    if byvalue is None:
        return None  # nothing was sent by value, so nothing by name either
    for f in (func, args[0] if args else None):
        if (isinstance(f, types.FunctionType) and f.__module__ == "__main__"
                and byvalue._main_choice.get(f) is byvalue._BY_NAME):
            return f
    return None


def _learned_module(func):
    """The module of func when it crosses by value because an interpreter of the
    process failed to import it (or a package it is part of), else None."""
    learned = _xi._by_value_modules()
    module = getattr(func, "__module__", None)
    if not learned or not isinstance(module, str):
        return None
    name = module
    while name:
        if name in learned:
            return name
        name = name.rpartition(".")[0]
    return None


def _unimportable(exc):
    """The module that the target of a call failed to import while it unpickled the
    callable or the arguments, or None."""
    cause = exc.__cause__
    return getattr(cause, "unimportable", None) if cause is not None else None


def _call_again(handle, exc, func, args, kwargs):
    """A call whose target failed to import a module (exc): the target has recorded that
    the module's functions and classes now cross by value, with the globals they use
    (_byvalue.py), so the call is sent again. Each module is tried once; when every way
    fails, one error says which ways were tried and why each failed."""
    from . import _errors

    failures = []
    if _unimportable(exc) is None:
        script_function = _by_name_from_script(func, args)
        if script_function is not None:
            # by value it could not cross, and the target could not import the script
            raise _errors.no_way_from_script(script_function, exc, handle.id) from exc
        # func crossed by value already: its module was found not importable before
        failures.append((_learned_module(func), None))
    while True:
        module = _unimportable(exc)
        if module is None or module in (m for m, _ in failures) or len(failures) >= 8:
            raise _errors.no_way_to_send(func, failures, exc, handle.id) from exc
        failures.append((module, exc))
        _errors.note_unimportable(module, exc)
        try:
            return handle.call(func, *args, **kwargs)
        except NotShareableError as again:
            exc = again


def _raising_execution_failed(fn, /, *args, **kwargs):
    """fn(*args, **kwargs), with concurrent.interpreters' contract: a failure of the
    code run in the interpreter raises its ExecutionFailed alone."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        failed = _remote_failure(exc)
        if failed is None:
            raise
    failed.__cause__ = failed.__context__ = None
    raise failed


def _remote_failure(exc):
    """The ExecutionFailed of an exception that a call re-raised, else None."""
    if isinstance(exc, ExecutionFailed) and hasattr(exc, "excinfo"):
        return exc
    cause = exc.__cause__
    if isinstance(cause, ExecutionFailed) and hasattr(cause, "excinfo"):
        return cause
    return None


# generator, coroutine, iterable coroutine, async generator: calling one returns a value
_CO_RETURNS_AN_OBJECT = 0x20 | 0x80 | 0x100 | 0x200


def _returns_a_value(code):
    """Whether code may return something other than None (CPython's check for scripts:
    every return must return the constant None)."""
    if code.co_flags & _CO_RETURNS_AN_OBJECT:
        return True
    import dis

    previous = None
    for ins in dis.get_instructions(code):
        if ins.opname == "RETURN_CONST" and ins.argval is not None:  # 3.12, 3.13
            return True
        if ins.opname == "RETURN_VALUE" and not (
                previous is not None
                and previous.opname in ("LOAD_CONST", "LOAD_COMMON_CONSTANT")  # 3.15
                and previous.argval is None):
            return True
        previous = ins
    return False


# The fields of an interpreter configuration, as _interpreters.new_config() has them.
_CONFIG_FIELDS = ("use_main_obmalloc", "allow_fork", "allow_exec", "allow_threads",
                  "allow_daemon_threads", "check_multi_interp_extensions", "gil")
_CONFIGS = {
    # its own GIL and obmalloc; single-phase extension modules are refused
    "isolated": (False, False, False, True, False, True, "own"),
    # the main interpreter's GIL and obmalloc; single-phase extension modules load
    "legacy": (True, True, True, True, True, False, "shared"),
}


def _config_tuple(config):
    """The field values of a config argument, checked: None or "isolated", "legacy", or
    a types.SimpleNamespace with exactly the fields of _interpreters.new_config()."""
    if config is None:
        return _CONFIGS["isolated"]
    if isinstance(config, str):
        try:
            return _CONFIGS[config]
        except KeyError:
            raise ValueError(f"unsupported interpreter config {config!r}: 'isolated' or "
                             f"'legacy', or a types.SimpleNamespace of fields") from None
    if not isinstance(config, types.SimpleNamespace):
        raise TypeError(f"config must be 'isolated', 'legacy', None or a "
                        f"types.SimpleNamespace of fields, not {type(config).__name__}")
    fields = vars(config)
    missing = [name for name in _CONFIG_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"interpreter config is missing {', '.join(missing)}")
    extra = sorted(set(fields) - set(_CONFIG_FIELDS))
    if extra:
        raise ValueError(f"interpreter config has unknown fields: {', '.join(extra)}")
    values = tuple(fields[name] for name in _CONFIG_FIELDS)
    for name, value in zip(_CONFIG_FIELDS[:-1], values):
        if not isinstance(value, bool):
            raise TypeError(f"interpreter config .{name} must be a bool, "
                            f"not {type(value).__name__}")
    use_main_obmalloc, check_extensions, gil = values[0], values[5], values[6]
    if not isinstance(gil, str):
        raise TypeError(f"interpreter config .gil must be a str, not {type(gil).__name__}")
    if gil not in ("own", "shared", "default"):
        raise ValueError(f"interpreter config .gil must be 'own', 'shared' or 'default', "
                         f"not {gil!r}")
    if not use_main_obmalloc and not check_extensions:
        raise ValueError("interpreter config: an interpreter with its own obmalloc "
                         "(use_main_obmalloc=False) needs check_multi_interp_extensions=True")
    if use_main_obmalloc and gil == "own":
        raise ValueError("interpreter config: an interpreter with its own GIL (gil='own') "
                         "needs its own obmalloc (use_main_obmalloc=False)")
    return values


def _exec_code(data):
    """Runs in the target: marshalled code in its __main__."""
    exec(marshal.loads(data), sys.modules["__main__"].__dict__)


class Interpreter:
    """A subinterpreter, with its own GIL unless config says otherwise.

    Nothing is created until start(). With a target, start() also runs
    target(*args, **kwargs) there in a new thread; join() waits for it and closes the
    interpreter, result() returns its value or raises its exception. config: "isolated"
    (the default: its own GIL), "legacy" (the main interpreter's GIL; single-phase
    extension modules load) or a types.SimpleNamespace as _interpreters.new_config()
    makes.
    """

    def __new__(cls, target=None, args=(), kwargs=None, *, config=None, _whence=None,
                _ownsref=None):
        if isinstance(target, int) and not isinstance(target, bool):
            if config is not None:
                raise TypeError("config applies to a new interpreter, not to "
                                "Interpreter(id)")
            if target < 0:
                raise ValueError(f"interpreter ids are not negative: {target}")
            return cls._lookup(int(target))
        return super().__new__(cls)

    @classmethod
    def _lookup(cls, id_):
        """The Interpreter of a live interpreter: this library's, the stdlib's or main."""
        self = _started.get(id_) or _known.get(id_)
        if self is not None and not self._closed:
            return self
        try:
            handle = _xi.handle(id_)
        except InterpreterNotFoundError:
            handle = None
        if (handle is None and id_ not in _live_ids()) or _is_closing(id_):
            raise InterpreterNotFoundError(f"interpreter {id_} does not exist")
        self = super().__new__(cls)
        self._setup(None, (), None, None)
        self._handle = handle
        self._id = id_
        self._foreign = handle is None or not _is_library_made(id_)
        _known[id_] = self
        return self

    def __init__(self, target=None, args=(), kwargs=None, *, config=None, _whence=None,
                 _ownsref=None):
        if isinstance(target, int) and not isinstance(target, bool):
            return  # Interpreter(id): a lookup, done by __new__
        self._setup(target, args, kwargs, _config_tuple(config))

    def _setup(self, target, args, kwargs, config):
        if target is not None and not callable(target):
            raise TypeError(f"target must be callable, not {type(target).__name__}")
        self._config = config
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs) if kwargs else {}
        self._handle = None
        self._id = None
        self._closed = False
        self._lock = threading.Lock()
        self._thread = None
        self._outcome = None
        self._foreign = False
        self._report = False
        # the interpreter's __main__ starts bare, as in concurrent.interpreters (create(),
        # a pool's), rather than with sys and pickle, as in extrainterpreters 0.3.0
        self._bare_main = False

    @classmethod
    def _wrap(cls, handle):
        return cls._lookup(handle.id)

    def __hash__(self):
        return hash(self._id) if self._id is not None else object.__hash__(self)

    def __eq__(self, other):
        if not isinstance(other, Interpreter):
            return NotImplemented
        if self._id is None or other._id is None:
            return self is other
        return self._id == other._id

    def __reduce__(self):
        # another interpreter gets the Interpreter of the same id there
        if self._id is None:
            raise TypeError("an Interpreter that is not started cannot be shared")
        return (Interpreter, (self._id,))

    # -- life ---------------------------------------------------------------

    @property
    def id(self):
        """The interpreter's id (None before start())."""
        return self._id

    @property
    def whence(self):
        """Where the interpreter was made, as concurrent.interpreters words it."""
        if self._id is None or not self._foreign:
            return _WHENCE_LIBRARY
        return _stdlib_whence(self._id)

    @property
    def intno(self):
        """The interpreter's id while it is open; None before start() and after close()."""
        return None if self._closed else self._id

    def start(self):
        """Create the interpreter (and run the target in a new thread). Returns self."""
        with self._lock:
            if self._handle is not None or self._closed:
                raise InterpreterError(f"{self!r} was already started")
            self._handle = _xi.create(sys.path, self._config, not self._bare_main)
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
        if self._foreign and not self._closed:
            try:
                # made by concurrent.interpreters: its module closes it
                stdlib_made = self._id != _xi.main_id() and _close_stdlib_made(self._id)
            except _stdlib.InterpreterError as exc:
                if isinstance(exc, InterpreterError):
                    raise
                raise _stdlib_error(exc) from exc
            if stdlib_made:
                self._closed = True
                return
            raise InterpreterError(f"cannot close unrecognized interpreter {self._id}: "
                                   f"it was not made by extrainterpreters")
        if handle is None or self._closed:
            return
        handle.close()
        self._closed = True
        _started.pop(self._id, None)

    def _close_soon(self):
        """Ends the interpreter once it is idle, without waiting (a pool's, before a
        fork, which waits for it to end)."""
        handle = self._handle
        if handle is None or self._closed or self._foreign:
            return
        handle._close_soon()
        self._closed = True
        _started.pop(self._id, None)

    def is_running(self):
        """Whether code is running in the interpreter now, in any thread."""
        handle = self._handle
        if self._foreign:
            if self._id == _xi.main_id():
                return True  # the main interpreter runs the program
            try:
                return bool(_stdlib.is_running(self._id))
            except Exception:
                raise InterpreterNotFoundError(f"interpreter {self._id} does not exist") from None
        if self._closed:
            raise InterpreterNotFoundError(f"interpreter {self._id} is closed")
        return handle is not None and handle.is_running()

    def interrupt(self):
        """Raise KeyboardInterrupt in every call running in the interpreter."""
        self._open().interrupt()

    # -- calls --------------------------------------------------------------

    def _open(self):
        handle = self._handle
        if self._foreign and self._id != _xi.main_id() and not self._closed:
            raise InterpreterError(f"unrecognized interpreter {self._id}: it was not made by "
                                   f"extrainterpreters, so it cannot run code from here")
        if handle is None:
            raise InterpreterError("the interpreter is not started; call start() first")
        if self._closed:
            raise InterpreterNotFoundError(f"interpreter {self._id} is closed")
        return handle

    def run(self, func, /, *args, **kwargs):
        """Run func(*args, **kwargs) in the interpreter and return its result.

        An exception is raised again here as its own type, with an ExecutionFailed
        (describing it) as its __cause__."""
        handle = self._open()
        # _call() written out: the hottest path, one Python frame fewer
        try:
            return handle.call(func, *args, **kwargs)
        except NotShareableError as exc:
            if (_unimportable(exc) is None and _learned_module(func) is None
                    and _by_name_from_script(func, args) is None):
                raise
            return _call_again(handle, exc, func, args, kwargs)

    def call(self, func, /, *args, **kwargs):
        """Run func(*args, **kwargs) in the interpreter and return its result.

        As concurrent.interpreters: an exception raised there raises ExecutionFailed."""
        return _raising_execution_failed(_call, self._open(), func, args, kwargs)

    def exec(self, code, /):
        """Run code in the interpreter's __main__: source (str), a code object, or a
        function taking no arguments (its body runs as the script).

        As concurrent.interpreters: an exception raised there raises ExecutionFailed."""
        _raising_execution_failed(self._exec, code)

    def run_string(self, code, /, raise_=True):
        """exec() with the exception contract of run(): the original type is raised.

        With raise_=False (extrainterpreters 0.3.0's form), an exception raised by the
        code is returned instead, as a description: its ExecutionFailed's excinfo
        (.type with __name__, __qualname__ and __module__, .msg, .formatted,
        .errdisplay, .interpreter), the object 0.3.0 returned on Python 3.13. None when
        the code ran to its end. Errors of the call itself (a closed interpreter, a
        KeyboardInterrupt) are raised either way."""
        if raise_:
            self._exec(code)
            return None
        try:
            self._exec(code)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            failed = _remote_failure(exc)
            if failed is None:
                raise
            return failed.excinfo
        return None

    def _exec(self, code):
        handle = self._open()
        if isinstance(code, str):
            handle.exec(code)
            return
        if isinstance(code, types.FunctionType):
            c = code.__code__
            if (c.co_argcount or c.co_posonlyargcount or c.co_kwonlyargcount
                    or c.co_flags & (0x04 | 0x08)):
                raise ValueError(f"a function with arguments is not a script: {code!r}")
            if code.__closure__:
                raise ValueError(f"a closure is not a script: {code!r}")
            code = c
        if not isinstance(code, types.CodeType):
            raise TypeError(f"unsupported script {code!r}")
        if _returns_a_value(code):
            # as concurrent.interpreters: a script's value would be lost
            raise ValueError("code that returns a value is not a script")
        handle.call(_exec_code, marshal.dumps(code))

    def prepare_main(self, ns=None, /, **kw):
        """Bind the given values as names in the interpreter's __main__."""
        values = dict(ns) if ns is not None else {}
        values.update(kw)
        if not values:
            raise ValueError("prepare_main() needs at least one name to bind")
        self._open().prepare_main(values)

    # -- threaded calls -------------------------------------------------------

    def _start_thread(self, func, args, kwargs, report=False):
        handle = self._open()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise InterpreterError(f"interpreter {self._id} already runs a threaded call")
            self._outcome = None
            thread = threading.Thread(
                target=self._thread_main, args=(handle, func, args, kwargs, report),
                name=f"extrainterpreters-{self._id}")
            self._thread = thread
        thread.start()
        return thread

    def _thread_main(self, handle, func, args, kwargs, report=False):
        try:
            self._outcome = (True, _call(handle, func, args, kwargs))
        except BaseException as exc:  # the caller gets it from result()
            self._outcome = (False, exc)
            if report:
                # call_in_thread(): reported as the thread's uncaught exception
                # (threading.excepthook), as concurrent.interpreters does: a failure
                # of the code run there as its ExecutionFailed
                failed = _remote_failure(exc)
                if failed is not None:
                    raise failed from None
                raise

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
            return _call(handle, func, args, kwargs)

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
        """Like run_in_thread(), returning the started threading.Thread. As in
        concurrent.interpreters, an exception raised by the call is reported through
        threading.excepthook (one raised in the interpreter as an ExecutionFailed);
        result() raises it as run() would."""
        return self._start_thread(func, args, kwargs, report=True)

    @property
    def exception(self):
        """The exception raised by the last threaded call (the target of start(),
        run_in_thread(), call_in_thread()), as result() raises it; None while it runs,
        when it returned, or when no threaded call was started."""
        outcome = self._outcome
        if outcome is None or outcome[0]:
            return None
        return outcome[1]

    def done(self):
        """Whether the last threaded call has finished."""
        thread = self._thread
        return thread is not None and not thread.is_alive() and self._outcome is not None

    def result(self):
        """The value of the last threaded call, or its exception raised again."""
        if not self.done():
            raise ResultNotReadyError("the threaded call has not finished (see done())"
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
        if self._foreign:
            return f"<extrainterpreters.Interpreter id={self._id} {self.whence}>"
        if self._handle is None:
            state = "not started"
        elif self._closed:
            state = "closed"
        else:
            state = "open"
        return f"<extrainterpreters.Interpreter id={self._id} {state}>"


def create(config=None):
    """A new, started Interpreter; config as for Interpreter(). Its __main__ starts bare,
    as concurrent.interpreters.create()'s (Interpreter() binds sys and pickle there)."""
    interp = Interpreter(config=config)
    interp._bare_main = True
    return interp.start()


def _is_library_made(id_):
    return id_ in _xi.list_all()


def list_all():
    """Every live interpreter: the main one, this library's and any other."""
    found = []
    for id_ in _live_ids():
        try:
            found.append(Interpreter._lookup(id_))
        except InterpreterError:
            continue  # it ended meanwhile
    return found


def raw_list_all():
    """The ids of every live interpreter, as list_all() has them (extrainterpreters
    0.3.0's list of the ids that _interpreters.list_all() gives)."""
    return _live_ids()


def get_current():
    """The interpreter this code runs in."""
    return Interpreter._lookup(_xi.current_id())


def get_main():
    """The main interpreter."""
    return Interpreter._lookup(_xi.main_id())


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
