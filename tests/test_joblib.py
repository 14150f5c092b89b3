"""The joblib backend "interpreters" (extrainterpreters.joblib)."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import types
import warnings

import joblib
import pytest
from joblib import Parallel, delayed, parallel_config

import extrainterpreters as xi
import extrainterpreters.joblib as xj
import scaleout_funcs as sf
from conftest import TESTS_DIR, _env

MAIN = xi.get_main().id


def run_bounded(func, timeout=60):
    """func() in a thread; fails if it has not returned after timeout seconds."""
    box = {}

    def main():
        try:
            box["value"] = func()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=main, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"still running after {timeout} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_registered_backend_is_used():
    assert joblib.parallel.BACKENDS["interpreters"] is xj.InterpreterBackend
    with parallel_config("interpreters", n_jobs=2):
        p = Parallel()
        assert isinstance(p._backend, xj.InterpreterBackend)
        out = p(delayed(sf.square_where)(i) for i in range(20))
    assert [r[0] for r in out] == [i * i for i in range(20)]
    ids = {r[1] for r in out}
    assert MAIN not in ids
    assert 1 <= len(ids) <= 2
    assert {r[2] for r in out} == {os.getpid()}


def test_results_keep_input_order():
    # the first tasks take longest, so they finish last
    delays = [0.02 * (9 - i) for i in range(10)]
    out = Parallel(n_jobs=2, backend="interpreters", batch_size=1)(
        delayed(sf.sleep_then)(d, i) for i, d in enumerate(delays))
    assert out == list(range(10))
    many = Parallel(n_jobs=2, backend="interpreters")(
        delayed(sf.square)(i) for i in range(5000))
    assert many == [i * i for i in range(5000)]


def test_main_module_functions_and_lambdas():
    out = Parallel(n_jobs=2, backend="interpreters")(
        delayed(lambda x, y=1: x + y)(i, y=10) for i in range(50))
    assert out == [i + 10 for i in range(50)]


def test_exception_same_type_with_remote_traceback():
    with pytest.raises(sf.TaskError, match="bad item 3") as ei:
        Parallel(n_jobs=2, backend="interpreters")(
            delayed(sf.fail_task if i == 3 else sf.square)(
                "bad item 3" if i == 3 else i) for i in range(10))
    cause = ei.value.__cause__
    assert isinstance(cause, xi.ExecutionFailed)
    assert "fail_task" in cause.excinfo.errdisplay
    assert "scaleout_funcs.py" in cause.excinfo.errdisplay


def test_return_as_generator_streams():
    event = xi.Event()
    gen = Parallel(n_jobs=2, backend="interpreters", batch_size=1,
                   return_as="generator")(
        [delayed(sf.square)(7)] + [delayed(sf.wait_event)(event, i) for i in range(4)])
    assert isinstance(gen, types.GeneratorType)
    # the first result arrives while the other tasks still wait for the event
    assert run_bounded(lambda: next(gen)) == 49
    event.set()
    assert run_bounded(lambda: list(gen)) == [0, 1, 2, 3]


def test_return_as_generator_unordered():
    out = Parallel(n_jobs=2, backend="interpreters", return_as="generator_unordered")(
        delayed(sf.square)(i) for i in range(100))
    assert sorted(out) == [i * i for i in range(100)]


def test_n_jobs_minus_one_uses_every_cpu():
    cpus = os.cpu_count()
    with parallel_config("interpreters", n_jobs=-1):
        assert joblib.effective_n_jobs() == cpus
        out = Parallel()(delayed(sf.square_where)(i) for i in range(50))
    assert [r[0] for r in out] == [i * i for i in range(50)]
    if cpus > 1:
        assert MAIN not in {r[1] for r in out}
    assert xj.InterpreterBackend().effective_n_jobs(-cpus - 5) == 1
    with pytest.raises(ValueError):
        xj.InterpreterBackend().effective_n_jobs(0)


def test_n_jobs_one_runs_sequentially_here():
    out = Parallel(n_jobs=1, backend="interpreters")(
        delayed(sf.square_where)(i) for i in range(5))
    assert {r[1] for r in out} == {MAIN}


def nested(i):
    # runs in a thread of this interpreter (threading backend), one level down
    with parallel_config("interpreters", n_jobs=2):
        p = Parallel()
        inner = p(delayed(sf.square_where)(j) for j in range(4))
        return type(p._backend).__name__, [r[1] for r in inner]


def test_nested_parallel_runs_sequentially():
    out = Parallel(n_jobs=2, backend="threading")(delayed(nested)(i) for i in range(4))
    for backend, ids in out:
        assert backend == "SequentialBackend"
        assert ids == [MAIN] * 4
    # the batches the backend sends carry joblib's usual nested backends: threads one
    # level down, sequential below
    nested_backend, _ = xj.InterpreterBackend(nesting_level=0).get_nested_backend()
    assert type(nested_backend).__name__ == "ThreadingBackend"
    assert nested_backend.nesting_level == 1
    deeper, _ = xj.InterpreterBackend(nesting_level=1).get_nested_backend()
    assert type(deeper).__name__ == "SequentialBackend"
    assert deeper.nesting_level == 2
    assert xj.InterpreterBackend is xj.InterpretersBackend


def test_error_aborts_running_and_pending_batches():
    # without abort_everything the spinning tasks would never end
    started = xi.Event()
    tasks = ([delayed(sf.spin_forever)(started), delayed(sf.fail_when_set)(started, "boom")]
             + [delayed(sf.spin_forever)() for _ in range(6)])

    def call():
        with pytest.raises(sf.TaskError, match="boom"):
            Parallel(n_jobs=2, backend="interpreters", batch_size=1)(tasks)

    run_bounded(call)
    # the backend works again afterwards
    assert Parallel(n_jobs=2, backend="interpreters")(
        delayed(sf.square)(i) for i in range(10)) == [i * i for i in range(10)]


def test_error_in_managed_parallel_leaves_it_usable():
    started = xi.Event()
    with Parallel(n_jobs=2, backend="interpreters", batch_size=1) as parallel:
        def call():
            with pytest.raises(sf.TaskError):
                parallel([delayed(sf.spin_forever)(started),
                          delayed(sf.fail_when_set)(started, "x")])

        run_bounded(call)
        assert parallel(delayed(sf.square)(i) for i in range(10)) == [
            i * i for i in range(10)]


CTRL_C = """
import sys, threading
sys.path.insert(0, {tests!r})
import extrainterpreters as xi
import extrainterpreters.joblib
from joblib import Parallel, delayed
import scaleout_funcs as sf

started = xi.Event()
def announce():
    started.wait(60)
    print("running", flush=True)
threading.Thread(target=announce, daemon=True).start()
try:
    Parallel(n_jobs=2, backend="interpreters", batch_size=1)(
        [delayed(sf.spin_forever)(started)] + [delayed(sf.spin_forever)() for _ in range(5)])
except KeyboardInterrupt:
    busy = [i.id for i in xi.list_all() if i.id != xi.get_main().id and i.is_running()]
    print("interrupted; interpreters still running:", busy, flush=True)
    sys.exit(3)
print("not interrupted", flush=True)
"""


def test_ctrl_c_aborts_everything():
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C.format(tests=TESTS_DIR)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        line = run_bounded(proc.stdout.readline)
        assert line == "running\n", line + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "interrupted; interpreters still running: []" in out, out + err
    assert proc.returncode == 3, out + err


def test_nested_parallel_of_a_joblib_module_runs_in_threads_in_a_process():
    import joblib_nested_funcs as jn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xi.FallbackWarning)
        # the first call finds the module not importable in interpreters: from then on
        # its functions cross by value, which a function using joblib's classes cannot
        assert Parallel(n_jobs=2, backend="interpreters")(
            delayed(jn.square)(i) for i in range(4)) == [0, 1, 4, 9]
        out = Parallel(n_jobs=2, backend="interpreters", batch_size=1)(
            delayed(jn.nested_info)(i) for i in range(6))
    for n, (pid, backend, level, inner) in enumerate(out):
        assert pid != os.getpid()
        # as in loky's workers: threads one level down
        assert (backend, level) == ("ThreadingBackend", 1)
        assert inner == [i * i for i in range(n)]
    with parallel_config("interpreters", fallback=None), pytest.raises(xi.NotShareableError):
        Parallel(n_jobs=2)(delayed(jn.nested_info)(i) for i in range(2))


def test_error_ends_batches_running_in_fallback_processes():
    import joblib_nested_funcs as jn

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", xi.FallbackWarning)
            with pytest.raises(jn.TaskError, match="boom"):
                Parallel(n_jobs=2, backend="interpreters", batch_size=1)(
                    [delayed(jn.sleep_then_fail)(600, None),
                     delayed(jn.sleep_then_fail)(1, "boom")])

    # the process sleeping 600 s is terminated, not waited for
    run_bounded(call, timeout=120)


def test_initializer_runs_once_per_interpreter():
    # initializer and initargs as loky takes them: from parallel_config or Parallel,
    # with a Manager proxy among the initargs
    import multiprocessing

    with multiprocessing.get_context("spawn").Manager() as manager:
        status = manager.list()
        with parallel_config("interpreters", n_jobs=2, initializer=status.append,
                             initargs=("init",)):
            out = Parallel()(delayed(sf.square)(i) for i in range(50))
        assert out == [i * i for i in range(50)]
        assert list(status) == ["init"] * 2
        # the same initializer and initargs: the same pool, no new initialization
        Parallel(n_jobs=2, backend="interpreters", initializer=status.append,
                 initargs=("init",))(delayed(sf.square)(i) for i in range(10))
        # others: a new pool, initialized again
        flags = manager.dict()
        Parallel(n_jobs=2, backend="interpreters", initializer=flags.__setitem__,
                 initargs=("done", True))(delayed(sf.square)(i) for i in range(10))
        assert flags["done"] is True
    with pytest.raises(TypeError, match="initializer must be callable"):
        Parallel(n_jobs=2, backend="interpreters", initializer=3)(
            delayed(sf.square)(i) for i in range(2))
