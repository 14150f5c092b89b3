"""The C module, the public names, and the isolated (own-GIL) configuration."""
import sys
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf

PUBLIC_NAMES = [
    "Interpreter",
    "create",
    "list_all",
    "get_current",
    "get_main",
    "InterpreterError",
    "InterpreterNotFoundError",
    "ExecutionFailed",
    "NotShareableError",
]

INTERPRETER_METHODS = [
    "start", "close", "join", "done", "result", "is_alive", "is_running",
    "run", "call", "exec", "run_string", "prepare_main",
    "run_in_thread", "call_in_thread", "interrupt", "__enter__", "__exit__",
]


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_name_exists(name):
    assert hasattr(xi, name), name


@pytest.mark.parametrize("name", INTERPRETER_METHODS)
def test_interpreter_method_exists(name):
    assert callable(getattr(xi.Interpreter, name, None)), name


def test_exception_hierarchy():
    # a RuntimeError on every version; from 3.14 on also concurrent.interpreters' class
    assert issubclass(xi.InterpreterError, RuntimeError)
    if sys.version_info >= (3, 14):
        import concurrent.interpreters as ci

        assert issubclass(xi.InterpreterError, ci.InterpreterError)
    assert issubclass(xi.InterpreterNotFoundError, xi.InterpreterError)
    assert issubclass(xi.ExecutionFailed, xi.InterpreterError)
    assert issubclass(xi.NotShareableError, TypeError)
    assert not issubclass(xi.NotShareableError, xi.InterpreterError)


def test_c_module_is_importable_in_main():
    import extrainterpreters._xi as mod

    assert mod.__name__ == "extrainterpreters._xi"


def test_c_module_imports_in_library_interpreter(interp):
    interp.exec("import extrainterpreters._xi")
    assert interp.run(rf.is_imported, "extrainterpreters._xi") is True
    # and it really is another interpreter
    assert interp.run(rf.current_id) != xi.get_main().id


_IMPORT_CHECK = (
    "import sys\n"
    "import extrainterpreters._xi\n"
    "assert 'extrainterpreters._xi' in sys.modules\n"
)


def _subinterp_sys_path_code():
    # the low-level interpreters start with the default sys.path; give them ours
    return f"import sys; sys.path[:] = {sys.path!r}\n"


def test_c_module_imports_in_stdlib_own_gil_interpreter():
    # CPython's own low-level module: _interpreters on 3.13+, _xxsubinterpreters on 3.12
    if sys.version_info >= (3, 13):
        import _interpreters

        iid = _interpreters.create("isolated")
        try:
            assert _interpreters.get_config(iid).gil == "own"
            err = _interpreters.exec(iid, _subinterp_sys_path_code() + _IMPORT_CHECK)
            assert err is None, err
            # a module that is refused there is refused (the check is real)
            err = _interpreters.exec(iid, "import readline")
            assert err is not None and err.type.__name__ == "ImportError"
        finally:
            _interpreters.destroy(iid)
    else:
        import _xxsubinterpreters

        iid = _xxsubinterpreters.create(isolated=True)
        try:
            _xxsubinterpreters.run_string(iid, _subinterp_sys_path_code() + _IMPORT_CHECK)
            with pytest.raises(_xxsubinterpreters.RunFailedError, match="ImportError"):
                _xxsubinterpreters.run_string(iid, "import readline")
        finally:
            _xxsubinterpreters.destroy(iid)


def test_c_module_loads_in_many_interpreters_at_once():
    interps = [xi.Interpreter().start() for _ in range(4)]
    try:
        for it in interps:
            it.exec("import extrainterpreters._xi")
        assert all(it.run(rf.is_imported, "extrainterpreters._xi") for it in interps)
    finally:
        for it in interps:
            it.close()


# --- the isolated configuration ------------------------------------------------------

def test_single_phase_extension_refused(interp):
    with pytest.raises(ImportError, match="readline"):
        interp.run_string("import readline")


def test_fork_refused(interp):
    # if fork were allowed, the child leaves at once and the parent reaps it
    code = (
        "import os\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    with pytest.raises(RuntimeError, match="fork"):
        interp.run_string(code)
    assert interp.run(rf.add, 1, 2) == 3


def test_daemon_threads_refused_threads_allowed(interp):
    with pytest.raises(RuntimeError, match="daemon"):
        interp.run_string("import threading; threading.Thread(target=int, daemon=True).start()")
    interp.exec(
        "import threading\n"
        "out = []\n"
        "t = threading.Thread(target=out.append, args=(5,))\n"
        "t.start(); t.join()\n"
    )
    assert interp.run(rf.get_main_attr, "out") == [5]


@pytest.mark.serial
def test_each_interpreter_has_its_own_gil():
    """While one interpreter holds its GIL in a long C loop that never lets it go, a call
    into another interpreter still completes at once; with a shared GIL it would wait
    for the loop to end. (The speedup this gives on two cores is measured by
    benchmarks/bench_interpreter.py.)"""
    a = xi.Interpreter().start()
    b = xi.Interpreter().start()
    try:
        assert b.run(abs, -1) == 1
        # sum() over a range is one C loop: it holds its interpreter's GIL throughout
        n = 10**6
        t0 = time.perf_counter()
        sum(range(n))
        n = int(n * 2.0 / max(time.perf_counter() - t0, 1e-6))  # about 2 s
        started = time.perf_counter()
        busy = a.call_in_thread(sum, range(n))
        time.sleep(0.2)
        assert busy.is_alive()
        t0 = time.perf_counter()
        assert b.run(abs, -3) == 3
        latency = time.perf_counter() - t0
        busy.join()
        total = time.perf_counter() - started
        assert a.result() == n * (n - 1) // 2
        assert latency < total / 4, f"call took {latency:.2f} s while the other ran {total:.2f} s"
    finally:
        a.close()
        b.close()
