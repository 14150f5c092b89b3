"""Parity with concurrent.interpreters and concurrent.futures.InterpreterPoolExecutor
(Python 3.14): on 3.14 and later each behaviour is checked against the standard library
itself; on 3.12 and 3.13 against the behaviour it documents. CPython's own suites are
run by tests/stdlib_suite/run.py; these cover what they do not."""
import concurrent.futures as cf
import functools
import itertools
import pickle
import queue
import sys
import threading

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import TESTS_DIR, assert_clean_exit

HAS_STDLIB = sys.version_info >= (3, 14)
if HAS_STDLIB:
    from concurrent import interpreters as std
    from concurrent.futures import interpreter as std_pool


@pytest.fixture
def std_interp():
    it = std.create()
    yield it
    it.close()


def stdlib_only(test):
    """A test comparing with the standard library itself: before Python 3.14 it is not
    collected, and the tests beside it check the documented behaviour instead."""
    return test if HAS_STDLIB else None


def failure_of(method, *args):
    with pytest.raises(BaseException) as ei:
        method(*args)
    return ei.value


# --- exceptions: the name that was called decides --------------------------------------------

def test_call_raises_execution_failed_like_the_stdlib(interp):
    failed = failure_of(interp.call, int, "x")
    assert type(failed) is xi.ExecutionFailed
    assert failed.__cause__ is None
    info = failed.excinfo
    assert info.type.__name__ == "ValueError" and info.type.__module__ == "builtins"
    assert info.msg == "invalid literal for int() with base 10: 'x'"
    assert info.formatted == "ValueError: " + info.msg
    assert info.errdisplay.startswith("Traceback (most recent call last):")
    assert info.errdisplay.endswith("ValueError: " + info.msg)
    assert info.interpreter == interp.id
    assert str(failed) == (f"{info.formatted}\n\nUncaught in the interpreter:\n\n"
                           f"{info.errdisplay}")
    assert failed.args == (info.formatted,)


@stdlib_only
def test_call_failure_matches_the_stdlib(interp, std_interp):
    ours = failure_of(interp.call, int, "x")
    theirs = failure_of(std_interp.call, int, "x")
    assert isinstance(ours, std.ExecutionFailed)
    for name in ("msg", "formatted"):
        assert getattr(ours.excinfo, name) == getattr(theirs.excinfo, name)
    assert vars(ours.excinfo.type) == vars(theirs.excinfo.type)
    assert ours.args == theirs.args
    # the same shape; the traceback lines name each library's own frames
    assert str(ours).split("\n\n")[:2] == str(theirs).split("\n\n")[:2]
    assert ours.excinfo.errdisplay.splitlines()[-1] == theirs.excinfo.errdisplay.splitlines()[-1]


@stdlib_only
def test_exec_failure_matches_the_stdlib(interp, std_interp):
    src = "class Oops(Exception): pass\nraise Oops('spam')"
    ours, theirs = failure_of(interp.exec, src), failure_of(std_interp.exec, src)
    assert type(ours) is xi.ExecutionFailed and type(theirs) is std.ExecutionFailed
    assert isinstance(ours, std.ExecutionFailed)
    assert ours.excinfo.formatted == theirs.excinfo.formatted == "Oops: spam"
    assert vars(ours.excinfo.type) == vars(theirs.excinfo.type)


def test_module_named_in_formatted_unless_builtins_or_main(interp):
    failed = failure_of(interp.call, rf.raise_custom, "boom")
    assert failed.excinfo.formatted == f"{rf.CustomError.__module__}.CustomError: boom"


def test_run_keeps_the_original_type(interp):
    err = failure_of(interp.run, int, "x")
    assert type(err) is ValueError
    assert isinstance(err.__cause__, xi.ExecutionFailed)
    assert err.__cause__.excinfo.formatted == f"ValueError: {err}"


def test_exec_and_run_string(interp):
    failed = failure_of(interp.exec, "raise KeyError('k')")
    assert type(failed) is xi.ExecutionFailed and failed.excinfo.type.__name__ == "KeyError"
    err = failure_of(interp.run_string, "raise KeyError('k')")
    assert type(err) is KeyError and isinstance(err.__cause__, xi.ExecutionFailed)


def test_local_errors_are_not_wrapped(interp):
    # an argument that cannot be sent fails here, before anything runs
    with pytest.raises(xi.NotShareableError):
        interp.call(rf.identity, threading.Lock())


def thread_failures(interp, *call):
    """What threading.excepthook receives while interp.call_in_thread(*call) runs."""
    seen = []
    old = threading.excepthook
    threading.excepthook = seen.append
    try:
        interp.call_in_thread(*call).join()
    finally:
        threading.excepthook = old
    return seen


def test_call_in_thread_reports_through_excepthook(interp):
    seen = thread_failures(interp, int, "x")
    assert len(seen) == 1 and seen[0].exc_type is xi.ExecutionFailed
    assert seen[0].exc_value.excinfo.type.__name__ == "ValueError"
    with pytest.raises(ValueError):  # result() keeps run()'s contract
        interp.result()


def test_call_in_thread_success_reports_nothing(interp):
    seen = thread_failures(interp, rf.add, 1, 2)
    assert seen == [] and interp.result() == 3


def test_exception_classes():
    assert issubclass(xi.InterpreterNotFoundError, xi.InterpreterError)
    assert issubclass(xi.ExecutionFailed, xi.InterpreterError)
    # a RuntimeError on every version (the standard library's is not: from 3.14 on the
    # library's derives from it and from RuntimeError)
    assert issubclass(xi.InterpreterError, RuntimeError)
    assert issubclass(xi.NotShareableError, TypeError)
    for cls, base in ((xi.QueueEmpty, queue.Empty), (xi.QueueFull, queue.Full)):
        assert issubclass(cls, xi.QueueError) and issubclass(cls, base)
    assert issubclass(xi.QueueError, RuntimeError)
    assert issubclass(xi.QueueNotFoundError, xi.QueueError)
    if HAS_STDLIB:
        assert issubclass(xi.InterpreterError, std.InterpreterError)
        assert issubclass(xi.InterpreterNotFoundError, std.InterpreterNotFoundError)
        assert issubclass(xi.ExecutionFailed, std.ExecutionFailed)
        assert xi.NotShareableError is std.NotShareableError
        assert xi.QueueEmpty is std.QueueEmpty and xi.QueueFull is std.QueueFull
        assert xi.BrokenInterpreterPool is std_pool.BrokenInterpreterPool
    assert xi.ExecutionFailed.__module__ == "extrainterpreters"


# --- the frame of a call ------------------------------------------------------------------------

def test_builtins_that_need_a_frame(interp):
    assert interp.call(eval, "1 + 1") == 2
    assert interp.call(eval, "__name__") == "__main__"
    interp.call(exec, "made_by_exec = 5")
    assert interp.call(eval, "made_by_exec") == 5
    assert "__builtins__" in interp.call(dir)
    assert interp.call(rf.frame_globals_name) == "__main__"


@stdlib_only
def test_frame_builtins_match_the_stdlib(interp, std_interp):
    for args in ((eval, "1 + 1"), (eval, "__name__"), (eval, "sum([1, 2, 3])")):
        assert interp.call(*args) == std_interp.call(*args)


# --- exec -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["exec", "run_string"])
def test_exec_refuses_nul(interp, method):
    with pytest.raises(SyntaxError, match="source code string cannot contain null bytes"):
        getattr(interp, method)("x = 1\0x = 2")
    with pytest.raises(SyntaxError, match="source code string cannot contain null bytes"):
        compile("x = 1\0x = 2", "<s>", "exec")  # as the builtin does


@stdlib_only
def test_exec_refuses_nul_like_the_stdlib(interp, std_interp):
    ours = failure_of(interp.exec, "x = 1\0x = 2")
    theirs = failure_of(std_interp.exec, "x = 1\0x = 2")
    assert (type(ours), str(ours)) == (type(theirs), str(theirs))


def test_exec_code_object_and_function(interp):
    interp.exec(compile("from_code = 40 + 2", "<code>", "exec"))
    assert interp.call(eval, "from_code") == 42
    interp.exec(rf.script_function)
    assert interp.call(eval, "from_function") == "set"
    with pytest.raises(TypeError):
        interp.exec(42)
    with pytest.raises(ValueError):
        interp.exec(rf.add)  # it takes arguments: not a script


# --- Interpreter objects --------------------------------------------------------------------------

def test_lookup_by_id(interp):
    assert xi.Interpreter(interp.id) is interp
    main = xi.get_main()
    assert main is xi.get_main() == xi.Interpreter(main.id)
    assert hash(main) == hash(main.id)
    assert main.whence == "runtime init" and interp.whence == "_interpreters module"
    assert main.is_running()
    assert main in xi.list_all() and interp in xi.list_all()
    with pytest.raises(ValueError):
        xi.Interpreter(-1)
    with pytest.raises(xi.InterpreterNotFoundError):
        xi.Interpreter(10**9)


@stdlib_only
def test_lookup_of_a_stdlib_interpreter(std_interp):
    ours = xi.Interpreter(std_interp.id)
    assert ours.whence == std_interp.whence == "_interpreters module"
    assert ours in xi.list_all()
    assert ours.is_running() is False
    with pytest.raises(xi.InterpreterError, match="unrecognized"):
        ours.exec("pass")


@stdlib_only
def test_list_all_like_the_stdlib(interp, std_interp):
    assert [i.id for i in xi.list_all()] == [i.id for i in std.list_all()]
    # the same whence, except for this library's interpreters (documented)
    ours = {i.id: i.whence for i in xi.list_all()}
    theirs = {i.id: i.whence for i in std.list_all()}
    library = set(xi._xi.list_all())
    assert interp.id in library
    for id_ in library & set(ours):
        assert theirs.pop(id_) == "C-API" and ours.pop(id_) == "_interpreters module"
    assert ours == theirs


def test_interpreter_passed_to_another_interpreter(interp):
    with xi.Interpreter() as other:
        assert interp.call(rf.identity_id, other) == other.id
        # back here it is the same object again
        assert interp.call(rf.identity, other) is other
        assert pickle.loads(pickle.dumps(other)) is other


def test_closed_interpreter_raises_not_found():
    it = xi.create()
    it.close()
    for call in (lambda: it.call(rf.add, 1, 2), lambda: it.exec("pass"),
                 lambda: it.run(rf.add, 1, 2), lambda: it.prepare_main(x=1),
                 it.is_running):
        with pytest.raises(xi.InterpreterNotFoundError):
            call()
    with pytest.raises(xi.InterpreterNotFoundError):
        xi.Interpreter(it.id)
    it.close()  # does nothing: the library's close() is idempotent


def test_any_object_may_close_a_library_interpreter():
    it = xi.create()
    with xi.Interpreter() as closer:
        closer.call(rf.close_interp_by_id, it.id)
    with pytest.raises(xi.InterpreterNotFoundError):
        it.call(rf.add, 1, 2)
    with pytest.raises(xi.InterpreterError):
        xi.get_main().close()


def test_is_shareable():
    assert all(xi.is_shareable(v) for v in (None, 1, "s", b"b", (1, "x"), xi.Queue()))
    assert not xi.is_shareable(threading.Lock())


@stdlib_only
def test_is_shareable_accepts_what_the_stdlib_accepts():
    for value in (None, True, 1, 2.5, "s", b"b", (1, ("x", None)), memoryview(b"ab")):
        assert std.is_shareable(value) and xi.is_shareable(value)


def test_prepare_main_needs_a_name(interp):
    with pytest.raises(ValueError):
        interp.prepare_main()
    with pytest.raises(ValueError):
        interp.prepare_main({})


# --- __main__ functions and the target's __main__ ------------------------------------------------

def test_main_function_sees_the_target_main(run_py):
    proc = run_py("""
        import extrainterpreters as xi

        x = "caller"
        only_here = "from the caller"

        def read(name):
            return globals()[name]

        def read_only_here():
            return only_here

        def count():
            global counter
            counter = globals().get("counter", 0) + 1
            return counter

        with xi.Interpreter() as it:
            it.prepare_main(x="target")
            print("X", it.run(read, "x"))                # the target's __main__ wins
            print("ONLY", it.run(read_only_here))        # brought from the caller
            print("COUNTS", it.run(count), it.run(count), it.call(count))
            it.exec("print('EXEC', counter)")
            x = "changed"
            print("AGAIN", it.run(read, "x"))
        """)
    assert_clean_exit(proc)
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines == {"X": "target", "ONLY": "from the caller", "COUNTS": "1 2 3",
                     "EXEC": "3", "AGAIN": "target"}


def test_a_stateless_local_function_runs_in_the_target_main(interp):
    # as the standard library: a function that is not importable by name and uses no
    # global and no closure variable runs with the target's __main__ as its globals
    def set_global(name, value):
        globals()[name] = value

    def get_global(name):
        return globals().get(name)

    assert interp.call(get_global, "__name__") == "__main__"
    assert interp.call(get_global, "spam") is None
    interp.exec("spam = True")
    assert interp.call(get_global, "spam") is True
    interp.call(set_global, "spam", 42)
    assert interp.run(get_global, "spam") == 42
    interp.exec("assert spam == 42, repr(spam)")


def test_a_local_function_using_its_module_keeps_its_module_globals(interp):
    # one that uses a global of its module still runs with (a copy of) that module's
    # globals, not the target's __main__
    def uses_module_global():
        return (pytest.__name__, globals()["__name__"])

    assert interp.call(uses_module_global) == ("pytest", __name__)


@stdlib_only
def test_stateless_local_function_globals_match_the_stdlib(interp, std_interp):
    def get_global(name):
        return globals().get(name)

    for it in (interp, std_interp):
        it.exec("marker = 7")
    assert interp.call(get_global, "marker") == std_interp.call(get_global, "marker") == 7
    assert (interp.call(get_global, "__name__")
            == std_interp.call(get_global, "__name__") == "__main__")


# --- queues -----------------------------------------------------------------------------------------

def test_queue_by_id():
    q = xi.create_queue()
    assert xi.Queue(q.id) is q
    assert q.id >= 2**32
    with pytest.raises(xi.QueueNotFoundError):
        xi.Queue(2**40)
    assert xi.Queue(3).maxsize == 3  # below 2**32: a maxsize, as before


def test_queue_by_id_from_another_interpreter(interp):
    q = xi.create_queue()
    interp.call(rf.put_in_queue_by_id, q.id, "by id")
    assert q.get(timeout=10) == "by id"


def test_queues_list_all():
    from extrainterpreters import _queues

    q = xi.create_queue()
    assert q in _queues.list_all()


def test_create_queue_unbounditems():
    assert xi.create_queue(2, unbounditems=xi.UNBOUND).maxsize == 2
    xi.create_queue(unbounditems=xi.UNBOUND_ERROR)
    xi.create_queue(unbounditems=xi.UNBOUND_REMOVE)
    with pytest.raises(NotImplementedError):
        xi.create_queue(unbounditems=5)
    if HAS_STDLIB:
        from concurrent.interpreters import _crossinterp

        xi.create_queue(unbounditems=_crossinterp.UNBOUND)


@stdlib_only
def test_create_queue_signature_matches_the_stdlib():
    import inspect

    ours = inspect.signature(xi.create_queue).parameters
    theirs = inspect.signature(std.create_queue).parameters
    assert [(p.name, p.kind) for p in ours.values()] == [(p.name, p.kind)
                                                          for p in theirs.values()]


# --- the pool -------------------------------------------------------------------------------------

def test_signatures():
    import inspect

    assert str(inspect.signature(xi.create_queue)) == "(maxsize=0, *, unbounditems=None)"
    params = inspect.signature(xi.InterpreterPoolExecutor).parameters
    # the standard library's, then this library's keyword-only ones
    assert list(params) == [
        "max_workers", "thread_name_prefix", "initializer", "initargs", "fallback", "preload"]
    assert params["fallback"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["preload"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(xi.InterpreterPoolExecutor.map).parameters) == [
        "self", "fn", "iterables", "timeout", "chunksize", "buffersize"]


def test_pool_parameter_order():
    with xi.InterpreterPoolExecutor(1, "pfx", rf.add, (1, 2)) as pool:
        assert pool.submit(rf.add, 2, 3).result() == 5
        assert [t.name for t in threading.enumerate() if t.name.startswith("pfx")] == ["pfx_0"]
    assert isinstance(pool, cf.ThreadPoolExecutor)


@stdlib_only
def test_pool_signature_matches_the_stdlib():
    import inspect

    for name in ("__init__", "map"):
        ours = inspect.signature(getattr(xi.InterpreterPoolExecutor, name)).parameters
        theirs = inspect.signature(getattr(cf.InterpreterPoolExecutor, name)).parameters
        # every parameter of theirs, in order; what this library adds is keyword-only
        extra = [p for p in ours if p not in theirs]
        assert [p for p in ours if p in theirs] == list(theirs), name
        assert all(ours[p].kind is inspect.Parameter.KEYWORD_ONLY for p in extra), name


def test_pool_map_buffersize():
    with xi.InterpreterPoolExecutor(2) as pool:
        results = pool.map(rf.square, itertools.count(), buffersize=3)
        assert [next(results) for _ in range(10)] == [i * i for i in range(10)]
        with pytest.raises(TypeError, match="buffersize must be an integer or None"):
            pool.map(rf.square, [1], buffersize=1.5)
        with pytest.raises(ValueError, match="buffersize must be None or > 0"):
            pool.map(rf.square, [1], buffersize=0)


def test_pool_keeps_the_original_type():
    with xi.InterpreterPoolExecutor(1) as pool:
        err = pool.submit(int, "x").exception()
    assert type(err) is ValueError and isinstance(err.__cause__, xi.ExecutionFailed)


def test_pool_broken_by_initializer():
    with xi.InterpreterPoolExecutor(1, initializer=int, initargs=("x",)) as pool:
        with pytest.raises(xi.BrokenInterpreterPool):
            pool.submit(rf.add, 1, 2).result()
    if HAS_STDLIB:
        assert issubclass(xi.BrokenInterpreterPool, std_pool.BrokenInterpreterPool)



# --- a callable or arguments that cannot be unpickled in the target -----------------------

def assert_not_unpickled(err, what):
    """NotShareableError("<what> not shareable") from NotShareableError("object could not
    be unpickled"), whose remote traceback shows the error raised while unpickling."""
    assert type(err) is xi.NotShareableError and str(err) == f"{what} not shareable"
    inner = err.__cause__
    assert type(inner) is xi.NotShareableError and str(inner) == "object could not be unpickled"
    failed = inner.__cause__
    assert isinstance(failed, xi.ExecutionFailed)
    assert "RuntimeError: gotcha" in failed.excinfo.errdisplay


@pytest.mark.parametrize("name", ["call", "run"])
def test_arguments_not_unpickled(interp, name):
    err = failure_of(getattr(interp, name), rf.identity, rf.FailsToUnpickle())
    assert_not_unpickled(err, "args")
    err = failure_of(functools.partial(getattr(interp, name), rf.identity, x=rf.FailsToUnpickle()))
    assert_not_unpickled(err, "args")
    assert interp.call(rf.add, 1, 2) == 3


@pytest.mark.parametrize("name", ["call", "run"])
def test_callable_not_unpickled(interp, name):
    err = failure_of(getattr(interp, name), rf.CallableFailsToUnpickle())
    assert_not_unpickled(err, "func")
    # the callable is unpickled first: when the arguments fail too, it is named
    err = failure_of(getattr(interp, name), rf.CallableFailsToUnpickle(), rf.FailsToUnpickle())
    assert_not_unpickled(err, "func")
    assert interp.call(rf.add, 1, 2) == 3


def test_ctrl_c_while_the_error_is_made_goes_out(interp, monkeypatch):
    # the caller's part runs Python code: a KeyboardInterrupt raised there is not lost
    from extrainterpreters import _errors

    def interrupted(exc, what):
        raise KeyboardInterrupt

    monkeypatch.setattr(_errors, "call_not_shareable", interrupted)
    with pytest.raises(KeyboardInterrupt) as ei:
        interp.call(rf.identity, rf.FailsToUnpickle())
    assert str(ei.value.__context__) == "object could not be unpickled"
    monkeypatch.undo()
    assert interp.call(rf.add, 1, 2) == 3


def test_call_in_thread_reports_what_was_not_unpickled(interp):
    seen = thread_failures(interp, rf.identity, rf.FailsToUnpickle())
    assert len(seen) == 1
    assert_not_unpickled(seen[0].exc_value, "args")
    assert_not_unpickled(failure_of(interp.result), "args")


def test_call_in_thread_reports_a_local_error(interp):
    # as the standard library: whatever the call raises reaches threading.excepthook
    seen = thread_failures(interp, rf.identity, threading.Lock())
    assert len(seen) == 1 and seen[0].exc_type is xi.NotShareableError


def test_pool_task_not_unpickled():
    with xi.InterpreterPoolExecutor(1) as pool:
        assert_not_unpickled(pool.submit(rf.identity, rf.FailsToUnpickle()).exception(), "args")
        # a task that is not callable is sent as an argument, as in the standard pool
        assert_not_unpickled(pool.submit(rf.FailsToUnpickle()).exception(), "args")
        err = pool.submit(3).exception()
        assert type(err) is TypeError and isinstance(err.__cause__, xi.ExecutionFailed)
        assert str(err) == "'int' object is not callable"
        assert pool.submit(rf.add, 1, 2).result() == 3


@stdlib_only
def test_not_unpickled_matches_the_stdlib(interp, std_interp):
    std_interp.exec(f"import sys; sys.path.insert(0, {TESTS_DIR!r})")
    for args in [(rf.identity, rf.FailsToUnpickle()), (rf.CallableFailsToUnpickle(),),
                 (rf.CallableFailsToUnpickle(), rf.FailsToUnpickle())]:
        ours, theirs = failure_of(interp.call, *args), failure_of(std_interp.call, *args)
        assert type(ours) is type(theirs) and str(ours) == str(theirs)
        assert "unpickled" in str(ours.__cause__) and "unpickled" in str(theirs.__cause__)
    path = (f"import sys; sys.path.insert(0, {TESTS_DIR!r})",)
    with (xi.InterpreterPoolExecutor(1) as ours,
          std_pool.InterpreterPoolExecutor(1, initializer=exec, initargs=path) as theirs):
        for args in [(rf.identity, rf.FailsToUnpickle()), (rf.FailsToUnpickle(),)]:
            a, b = ours.submit(*args).exception(), theirs.submit(*args).exception()
            assert type(a) is type(b) and str(a) == str(b) == "args not shareable"
            assert "unpickled" in str(a.__cause__) and "unpickled" in str(b.__cause__)
        a, b = ours.submit(3).exception(), theirs.submit(3).exception()
        assert type(a) is type(b) and str(a) == str(b)
        # the library's ExecutionFailed derives from the standard library's
        assert isinstance(a.__cause__, type(b.__cause__))


def test_new_interpreter_stays_cheap(interp):
    # the standard library's ExecutionFailed (3.14+) is imported on first use, in a
    # caller: a new interpreter does not import concurrent.interpreters
    assert interp.call(eval, "__import__('sys').modules.get('concurrent.interpreters')") is None
