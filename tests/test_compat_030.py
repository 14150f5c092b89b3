"""Code written for extrainterpreters 0.3.0 runs: the names and idioms its users wrote
(docs/migration.md, first table), and exception classes whose bases are the same on
every version. tests/compat030/ runs the equivalents of 0.3.0's own tests."""
import concurrent.futures as cf
import concurrent.futures.thread
import pickle
import queue
import sys
import threading

import pytest

import extrainterpreters as xi
import remote_funcs as rf

HAS_STDLIB = sys.version_info >= (3, 14)


# --- run_string(code, raise_=...) ------------------------------------------------------------------

def test_run_string_raise_false_returns_the_description(interp):
    info = interp.run_string("raise KeyError('spam')", raise_=False)
    assert info.type.__name__ == "KeyError" and info.type.__module__ == "builtins"
    assert info.msg == "'spam'" and info.formatted == "KeyError: 'spam'"
    assert info.errdisplay.startswith("Traceback (most recent call last):")
    assert info.interpreter == interp.id
    # the code ran up to the exception; the interpreter stays usable
    assert interp.run_string("done = 1", raise_=False) is None
    assert interp.run(eval, "done") == 1


def test_run_string_raise_true_raises(interp):
    with pytest.raises(KeyError) as ei:
        interp.run_string("raise KeyError('spam')", raise_=True)
    assert isinstance(ei.value.__cause__, xi.ExecutionFailed)
    with pytest.raises(KeyError):
        interp.run_string("raise KeyError('spam')")  # the default raises
    assert interp.run_string("x = 1", raise_=True) is None


def test_run_string_raise_false_still_raises_call_errors():
    it = xi.Interpreter().start()
    it.close()
    with pytest.raises(xi.InterpreterError):
        it.run_string("x = 1", raise_=False)
    with pytest.raises(xi.InterpreterError):
        xi.Interpreter().run_string("x = 1", raise_=False)


# --- __main__ starts with sys and pickle ------------------------------------------------------------

def test_main_has_sys_and_pickle(interp):
    interp.run_string("version = sys.version_info[:2]\ndata = pickle.dumps([1, 2])")
    assert interp.run(eval, "version") == tuple(sys.version_info[:2])
    assert pickle.loads(interp.run(eval, "data")) == [1, 2]
    # pickle is the module itself from its first use on
    interp.run_string("import pickle as real\nsame = pickle is real")
    assert interp.run(eval, "same") is True


def test_pickle_is_imported_on_first_use():
    with xi.Interpreter() as it:
        it.run_string("import sys as s\nloaded = 'pickle' in s.modules\n"
                      "kind = type(pickle).__name__")
        assert it.run(eval, "loaded") is False
        it.run_string("pickle.HIGHEST_PROTOCOL\nloaded = 'pickle' in sys.modules")
        assert it.run(eval, "loaded") is True


def test_queue_idiom_of_030(interp):
    q = xi.Queue()
    interp.run_string(f"q = pickle.loads({pickle.dumps(q)!r})")
    q.put((1, 2))
    interp.run_string("q.put(sum(q.get()))")
    assert q.get(timeout=10) == 3


def test_names_bound_in_main_are_kept(interp):
    interp.run_string("pickle = 'mine'")
    assert interp.run(eval, "pickle") == "mine"


def test_function_by_value_keeps_its_own_pickle(interp):
    # a function of __main__ whose global `pickle` is not the pickle module (as after
    # `import dill as pickle`): it keeps its own in the interpreter
    ns = {"__name__": "__main__", "pickle": rf.Point(1, 2), "sys": "not sys"}
    exec("def which():\n    return type(pickle).__name__, type(sys).__name__\n", ns)
    assert interp.run(ns["which"]) == ("Point", "str")
    # the names of __main__ win over those a function brings, except these two
    interp.run_string("sys = 7")
    assert interp.run(ns["which"]) == ("Point", "int")
    interp.run_string("import sys\npickle = 5")
    assert interp.run(ns["which"]) == ("int", "str")


# --- SingleQueue, Interpreter.exception, raw_list_all -------------------------------------------------

def test_single_queue_is_a_queue(interp):
    assert xi.SingleQueue is xi.Queue and "SingleQueue" in xi.__all__
    q = xi.SingleQueue(2)
    assert q.maxsize == 2
    interp.run_string(f"q = pickle.loads({pickle.dumps(q)!r})")
    q.put({"1": "1234", None: ...})
    interp.run_string("item = q.get()\nassert item == {'1': '1234', None: ...}")


def test_exception_of_the_target():
    it = xi.Interpreter(target=int, args=("x",))
    assert it.exception is None
    it.start()
    it.join()
    assert type(it.exception) is ValueError
    assert isinstance(it.exception.__cause__, xi.ExecutionFailed)
    with pytest.raises(ValueError):
        it.result()


def test_exception_of_run_in_thread(interp):
    interp.run_in_thread(rf.raise_value_error, "boom")
    while not interp.done():
        threading.Event().wait(0.01)
    assert type(interp.exception) is ValueError and str(interp.exception) == "boom"
    interp.run_in_thread(rf.add, 1, 2)
    while not interp.done():
        threading.Event().wait(0.01)
    assert interp.exception is None and interp.result() == 3


def test_raw_list_all():
    it = xi.Interpreter().start()
    ids = xi.raw_list_all()
    assert all(type(i) is int for i in ids)
    assert 0 in ids and it.id in ids and it.intno in ids
    assert sorted(ids) == sorted(i.id for i in xi.list_all())
    it.close()
    assert it.id not in xi.raw_list_all()


# --- errors -----------------------------------------------------------------------------------------

def test_start_twice_is_a_runtime_error(interp):
    with pytest.raises(RuntimeError) as ei:
        interp.start()
    assert isinstance(ei.value, xi.InterpreterError)
    if HAS_STDLIB:
        from concurrent import interpreters as std

        assert isinstance(ei.value, std.InterpreterError)


def test_closed_interpreter_is_a_runtime_error():
    it = xi.Interpreter().start()
    it.close()
    for use in (lambda: it.run(rf.add, 1, 2), lambda: it.run_string("x = 1"),
                lambda: it.run_in_thread(rf.add, 1, 2), lambda: it.is_running()):
        with pytest.raises(RuntimeError) as ei:
            use()
        assert isinstance(ei.value, xi.InterpreterNotFoundError)
        if HAS_STDLIB:
            from concurrent import interpreters as std

            assert isinstance(ei.value, std.InterpreterNotFoundError)


def test_result_before_the_end_says_so(interp):
    with pytest.raises(xi.ResultNotReadyError, match="no threaded call was started"):
        interp.result()
    gate = xi.Event()
    interp.run_in_thread(gate.wait)
    try:
        with pytest.raises(ValueError, match="has not finished") as ei:
            interp.result()
        assert isinstance(ei.value, xi.InterpreterError)
        assert isinstance(ei.value, RuntimeError)
    finally:
        gate.set()
    while not interp.done():
        threading.Event().wait(0.01)
    interp.result()


def test_execution_failed_is_a_runtime_error(interp):
    with pytest.raises(RuntimeError) as ei:
        interp.call(int, "x")
    assert type(ei.value) is xi.ExecutionFailed
    assert ei.value.excinfo.type.__name__ == "ValueError"
    if HAS_STDLIB:
        from concurrent import interpreters as std

        assert isinstance(ei.value, std.ExecutionFailed)


# Every exception class the package exports, with the classes it is (also) an instance of
# on every version. On 3.14 and later each also is, or derives from, the standard
# library's class of the same name (below).
BASES = {
    "InterpreterError": (RuntimeError,),
    "InterpreterNotFoundError": ("InterpreterError", RuntimeError),
    "ExecutionFailed": ("InterpreterError", RuntimeError),
    "ResultNotReadyError": ("InterpreterError", RuntimeError, ValueError),
    "NotShareableError": (TypeError,),
    "QueueError": (RuntimeError,),
    "QueueNotFoundError": ("QueueError", RuntimeError),
    "QueueEmpty": ("QueueError", RuntimeError, queue.Empty),
    "QueueFull": ("QueueError", RuntimeError, queue.Full),
    "QueueShutDown": (getattr(queue, "ShutDown", Exception),),
    "BrokenInterpreterPool": (cf.BrokenExecutor, cf.thread.BrokenThreadPool, RuntimeError),
    "FallbackWarning": (RuntimeWarning,),
}


def exported_exception_classes():
    return sorted(name for name in xi.__all__
                  if isinstance(getattr(xi, name), type)
                  and issubclass(getattr(xi, name), BaseException))


def test_every_exception_class_is_listed():
    assert exported_exception_classes() == sorted(BASES)


@pytest.mark.parametrize("name", sorted(BASES))
def test_exception_bases_are_the_same_on_every_version(name):
    cls = getattr(xi, name)
    for base in BASES[name]:
        base = getattr(xi, base) if isinstance(base, str) else base
        assert issubclass(cls, base), f"{name} is not a {base.__name__}"


STDLIB_NAMES = {
    "InterpreterError": "concurrent.interpreters", "InterpreterNotFoundError":
    "concurrent.interpreters", "ExecutionFailed": "concurrent.interpreters",
    "NotShareableError": "concurrent.interpreters",
    "QueueError": "concurrent.interpreters._queues",
    "QueueNotFoundError": "concurrent.interpreters._queues",
    "QueueEmpty": "concurrent.interpreters", "QueueFull": "concurrent.interpreters",
    "BrokenInterpreterPool": "concurrent.futures.interpreter",
}


@pytest.mark.skipif(not HAS_STDLIB, reason="concurrent.interpreters is 3.14+")
@pytest.mark.parametrize("name", sorted(STDLIB_NAMES))
def test_exception_classes_derive_from_the_stdlib(name):
    import importlib

    std = getattr(importlib.import_module(STDLIB_NAMES[name]), name)
    assert issubclass(getattr(xi, name), std)
    try:
        raise getattr(xi, name)(*(() if name != "ExecutionFailed" else (excinfo(),)))
    except std:
        pass


def excinfo():
    from types import SimpleNamespace

    t = SimpleNamespace(__name__="ValueError", __qualname__="ValueError", __module__="builtins")
    return SimpleNamespace(type=t, msg="m", formatted="ValueError: m", errdisplay="",
                           interpreter=0)


def test_exceptions_pickle_by_name(interp):
    for name in ("InterpreterError", "InterpreterNotFoundError", "ResultNotReadyError"):
        cls = getattr(xi, name)
        assert type(pickle.loads(pickle.dumps(cls("m")))) is cls
        back = interp.run(rf.identity, cls("m"))
        assert type(back) is cls and back.args == ("m",)



def test_execution_failed_is_named_at_top_level():
    # pickle and tracebacks name a class by its module and qualified name
    assert xi.ExecutionFailed.__qualname__ == "ExecutionFailed"
    assert xi.ExecutionFailed.__module__ == "extrainterpreters"


def test_create_and_pool_workers_start_bare():
    # as concurrent.interpreters.create() and its pool's workers: only the names every
    # __main__ has
    it = xi.create()
    try:
        base = sorted(it.run(eval, "list(globals())"))
    finally:
        it.close()
    assert base and all(name.startswith("__") for name in base)
    with xi.InterpreterPoolExecutor(1) as pool:
        assert sorted(pool.submit(eval, "list(globals())").result(timeout=60)) == base
    with xi.Interpreter() as it:
        assert sorted(it.run(eval, "list(globals())")) == sorted(base + ["pickle", "sys"])


def test_items_outlive_the_interpreter_that_put_them():
    # the user-facing part of 0.3.0's
    # test_queue_trying_to_get_value_from_closed_interpreter_doesnot_break_queue
    q = xi.Queue()
    code = f"queue = pickle.loads({pickle.dumps(q)!r})\nqueue.put((1, 2))\nqueue.put((1, 2))"
    with xi.Interpreter() as it:
        it.run_string(code)
        assert q.get(timeout=10) == (1, 2)
    assert q.get(timeout=10) == (1, 2)
    with pytest.raises(xi.QueueEmpty):
        q.get(block=False)
    with xi.Interpreter() as it:
        it.run_string(code)
        assert q.get(timeout=10) == (1, 2) and q.get(timeout=10) == (1, 2)
        with pytest.raises(queue.Empty):
            q.get(block=False)
