"""Errors: remote exceptions come back as themselves; bad input is refused cleanly;
the interpreter stays usable after every error."""
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit


def still_usable(interp):
    assert interp.run(rf.add, 20, 22) == 42
    interp.exec("usable_check = 1")


# --- remote exceptions ----------------------------------------------------------------------------

def test_same_type_and_message(interp):
    with pytest.raises(ValueError) as ei:
        interp.run(rf.raise_value_error, "boom 17")
    e = ei.value
    assert type(e) is ValueError
    assert str(e) == "boom 17"
    assert e.args == ("boom 17",)
    still_usable(interp)


def test_cause_is_execution_failed_with_excinfo(interp):
    with pytest.raises(ValueError) as ei:
        interp.run(rf.raise_value_error, "boom 18")
    cause = ei.value.__cause__
    assert isinstance(cause, xi.ExecutionFailed)
    info = cause.excinfo
    assert info.type.__name__ == "ValueError"
    assert info.type.__qualname__ == "ValueError"
    assert info.type.__module__ == "builtins"
    assert info.msg == "boom 18"
    assert "raise_value_error" in info.errdisplay  # the remote traceback names the function
    assert "boom 18" in info.errdisplay


def test_builtin_error_from_lambda(interp):
    with pytest.raises(ZeroDivisionError) as ei:
        interp.run(lambda: 1 / 0)
    assert isinstance(ei.value.__cause__, xi.ExecutionFailed)
    assert "ZeroDivisionError" in ei.value.__cause__.excinfo.errdisplay
    still_usable(interp)


def test_error_from_nested_frames_traceback(interp):
    def level_two(x):
        return {}[x]

    def level_one(x):
        return level_two(x)

    with pytest.raises(KeyError) as ei:
        interp.run(level_one, "missing-key")
    formatted = ei.value.__cause__.excinfo.errdisplay
    assert "level_one" in formatted and "level_two" in formatted
    assert ei.value.args == ("missing-key",)


def test_custom_exception_importable(interp):
    with pytest.raises(rf.CustomError) as ei:
        interp.run(rf.raise_custom, "custom message")
    assert type(ei.value) is rf.CustomError
    assert str(ei.value) == "custom message"
    info = ei.value.__cause__.excinfo
    assert info.type.__name__ == "CustomError"
    assert info.type.__qualname__ == "CustomError"
    assert info.type.__module__ == "remote_funcs"
    still_usable(interp)


def test_custom_exception_with_fields(interp):
    with pytest.raises(rf.CustomErrorWithFields) as ei:
        interp.run(rf.raise_custom_fields, 7, "seven")
    assert (ei.value.code, ei.value.text) == (7, "seven")


def test_exception_class_only_in_subinterpreter(interp):
    interp.exec(
        "class LocalOnlyError(Exception):\n"
        "    pass\n"
        "def local_boom():\n"
        "    raise LocalOnlyError('only here')\n"
    )
    with pytest.raises(xi.ExecutionFailed) as ei:
        interp.run(rf.call_main_attr, "local_boom")
    assert type(ei.value) is xi.ExecutionFailed
    info = ei.value.excinfo
    assert info.type.__name__ == "LocalOnlyError"
    assert info.msg == "only here"
    assert "local_boom" in info.errdisplay
    still_usable(interp)


def test_exception_class_only_in_subinterpreter_via_exec(interp):
    with pytest.raises(xi.ExecutionFailed) as ei:
        interp.exec(
            "class OtherLocalError(Exception):\n"
            "    pass\n"
            "raise OtherLocalError('exec only')\n"
        )
    assert type(ei.value) is xi.ExecutionFailed
    assert ei.value.excinfo.type.__name__ == "OtherLocalError"
    assert ei.value.excinfo.msg == "exec only"
    still_usable(interp)


def test_exception_that_cannot_be_recreated(interp):
    with pytest.raises(xi.ExecutionFailed) as ei:
        interp.run(rf.raise_not_recreatable)
    assert type(ei.value) is xi.ExecutionFailed
    assert ei.value.excinfo.type.__name__ == "NotRecreatable"
    assert "raise_not_recreatable" in ei.value.excinfo.errdisplay
    still_usable(interp)


def test_exception_with_unpicklable_args(interp):
    with pytest.raises(xi.ExecutionFailed) as ei:
        interp.run(rf.raise_with_unpicklable_arg)
    assert type(ei.value) is xi.ExecutionFailed
    assert ei.value.excinfo.type.__name__ == "ValueError"
    still_usable(interp)


def test_exception_in_threaded_call(interp):
    t = interp.call_in_thread(rf.raise_custom, "from a thread")
    t.join(30)
    assert interp.done()
    with pytest.raises(rf.CustomError, match="from a thread") as ei:
        interp.result()
    assert isinstance(ei.value.__cause__, xi.ExecutionFailed)
    still_usable(interp)


def test_exception_in_call_from_other_thread(interp):
    caught = []

    def worker():
        try:
            interp.run(rf.raise_value_error, "other thread")
        except ValueError as e:
            caught.append(e)

    t = threading.Thread(target=worker)
    t.start()
    t.join(30)
    assert len(caught) == 1 and str(caught[0]) == "other thread"
    assert isinstance(caught[0].__cause__, xi.ExecutionFailed)


def test_many_errors_in_a_row(interp):
    for i in range(200):
        with pytest.raises(ValueError, match=f"^n{i}$"):
            interp.run(rf.raise_value_error, f"n{i}")
    still_usable(interp)


# --- SystemExit and KeyboardInterrupt --------------------------------------------------------------

def test_system_exit_comes_back(interp):
    with pytest.raises(SystemExit) as ei:
        interp.run(rf.raise_system_exit, 3)
    assert ei.value.code == 3
    still_usable(interp)


def test_sys_exit_comes_back(interp):
    with pytest.raises(SystemExit) as ei:
        interp.run(rf.call_sys_exit, "bye")
    assert ei.value.code == "bye"
    still_usable(interp)


def test_system_exit_from_exec(interp):
    with pytest.raises(SystemExit) as ei:
        interp.run_string("raise SystemExit(4)")
    assert ei.value.code == 4
    with pytest.raises(xi.ExecutionFailed) as ei:
        interp.exec("raise SystemExit(4)")
    assert ei.value.excinfo.type.__name__ == "SystemExit"
    still_usable(interp)


def test_keyboard_interrupt_comes_back(interp):
    with pytest.raises(KeyboardInterrupt) as ei:
        interp.run(rf.raise_keyboard_interrupt)
    assert str(ei.value) == "remote ctrl-c"
    still_usable(interp)


def test_system_exit_in_threaded_call(interp):
    t = interp.call_in_thread(rf.raise_system_exit, 5)
    t.join(30)
    with pytest.raises(SystemExit) as ei:
        interp.result()
    assert ei.value.code == 5
    still_usable(interp)


def test_system_exit_and_keyboard_interrupt_do_not_end_process(run_py):
    code = """
    import sys
    import extrainterpreters as xi

    def leave(code):
        sys.exit(code)

    def ctrl_c():
        raise KeyboardInterrupt

    with xi.Interpreter() as it:
        for f, arg in ((leave, 9), (ctrl_c, None)):
            try:
                it.run(f, arg) if arg is not None else it.run(f)
            except SystemExit as e:
                print("CAUGHT SystemExit", e.code)
            except KeyboardInterrupt:
                print("CAUGHT KeyboardInterrupt")
        try:
            it.run_string("raise SystemExit(8)")
        except SystemExit as e:
            print("CAUGHT exec SystemExit", e.code)
        t = it.call_in_thread(leave, 6)
        t.join()
        try:
            it.result()
        except SystemExit as e:
            print("CAUGHT threaded SystemExit", e.code)
        print("STILL", it.run(len, "abc"))
    print("ALIVE")
    """
    proc = run_py(code, timeout=60)
    assert_clean_exit(proc)
    assert proc.stdout.splitlines() == [
        "CAUGHT SystemExit 9",
        "CAUGHT KeyboardInterrupt",
        "CAUGHT exec SystemExit 8",
        "CAUGHT threaded SystemExit 6",
        "STILL 3",
        "ALIVE",
    ]


def test_threaded_system_exit_left_unread_does_not_end_process(run_py):
    code = """
    import extrainterpreters as xi
    def leave():
        raise SystemExit(3)
    it = xi.Interpreter(target=leave).start()
    it.join()
    print("ALIVE")
    """
    proc = run_py(code, timeout=60)
    assert_clean_exit(proc)
    assert proc.stdout.splitlines() == ["ALIVE"]


# --- arguments that cannot be serialized ------------------------------------------------------------

@pytest.mark.parametrize(
    "make_bad",
    [threading.Lock, lambda: (x for x in range(3))],
    ids=["lock", "generator"],
)
def test_unshareable_argument(interp, tmp_path, make_bad):
    bad = make_bad()
    marker = tmp_path / "ran"
    with pytest.raises(xi.NotShareableError) as ei:
        interp.run(rf.touch, str(marker), bad)
    assert isinstance(ei.value, TypeError)
    assert type(bad).__name__ in str(ei.value)
    assert not marker.exists(), "the function ran although its argument was refused"
    still_usable(interp)


def test_unshareable_keyword_argument(interp, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(xi.NotShareableError) as ei:
        interp.run(rf.touch, str(marker), lock=threading.Lock())
    assert "lock" in str(ei.value)
    assert not marker.exists()
    still_usable(interp)


def test_unshareable_nested_argument(interp, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(xi.NotShareableError):
        interp.run(rf.touch, str(marker), [1, {"k": threading.Lock()}])
    assert not marker.exists()
    still_usable(interp)


def test_unshareable_threaded_argument_nothing_runs(interp, tmp_path):
    # refused either at once or through result(); the function never runs
    marker = tmp_path / "ran"
    try:
        interp.run_in_thread(rf.touch, str(marker), threading.Lock())
    except xi.NotShareableError:
        pass
    else:
        deadline = time.monotonic() + 10
        while not interp.done():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(xi.NotShareableError, match="lock"):
            interp.result()
    assert not marker.exists()
    assert not interp.is_alive()
    still_usable(interp)


def test_unshareable_prepare_main(interp):
    with pytest.raises(xi.NotShareableError) as ei:
        interp.prepare_main(lock=threading.Lock())
    assert "lock" in str(ei.value)
    assert interp.run(rf.get_main_attr, "lock") == rf.MISSING
    still_usable(interp)


def test_unshareable_callable(interp):
    lock = threading.Lock()
    with pytest.raises(xi.NotShareableError):
        interp.run(lambda: lock.locked())
    still_usable(interp)


def test_unshareable_result(interp):
    with pytest.raises((TypeError, xi.InterpreterError)) as ei:
        interp.run(rf.make_lock)
    assert "lock" in str(ei.value).lower()
    still_usable(interp)


def test_exec_requires_source_text(interp):
    with pytest.raises(TypeError):
        interp.exec(12345)
    still_usable(interp)


# --- modules that cannot load in a subinterpreter ------------------------------------------------------

def test_import_readline_in_exec(interp):
    with pytest.raises(ImportError, match="readline") as ei:
        interp.run_string("import readline")
    assert "readline" in str(ei.value)
    still_usable(interp)


def test_import_readline_in_call(interp):
    import importlib  # importlib.import_module travels by reference

    with pytest.raises(ImportError, match="readline"):
        interp.run(importlib.import_module, "readline")
    still_usable(interp)


def test_argument_whose_module_cannot_load(run_py):
    # a function of readline travels by reference; loading it there fails: as the
    # standard library, NotShareableError("func not shareable") from what it raised
    code = """
    import readline
    import extrainterpreters as xi
    with xi.Interpreter() as it:
        try:
            it.run(readline.get_history_length)
        except xi.NotShareableError as e:
            print("NOTSHAREABLE", str(e).startswith("func not shareable: module 'readline'"))
            print("CAUSE", "ImportError" in e.__cause__.__cause__.excinfo.errdisplay)
        print("STILL", it.run(len, [1, 2]))
    """
    proc = run_py(code, timeout=60)
    assert_clean_exit(proc)
    assert proc.stdout.splitlines() == ["NOTSHAREABLE True", "CAUSE True", "STILL 2"]
