"""InterpreterPoolExecutor(fallback="process"): a task that fails in its interpreter
because an extension module refuses isolated interpreters runs again, from the start, in
a process of a pool the executor keeps beside its interpreters. CPython's
_testsinglephase is the refusing module."""
import os
import warnings

import pytest

import extrainterpreters as xi
import fallback_funcs as ff
import fallback_refusing


@pytest.fixture
def pool():
    with xi.InterpreterPoolExecutor(2, fallback="process") as p:
        yield p


def test_refused_task_runs_in_a_process(pool, monkeypatch):
    # a module is warned about once per interpreter: forget earlier tests' warnings
    import extrainterpreters.executor

    monkeypatch.setattr(extrainterpreters.executor, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, pid = pool.submit(ff.needs_refused, 4).result(timeout=120)
    assert value == 40 and pid != os.getpid()
    messages = [w for w in caught if issubclass(w.category, xi.FallbackWarning)]
    assert len(messages) == 1
    assert issubclass(xi.FallbackWarning, RuntimeWarning)
    text = str(messages[0].message)
    assert "'_testsinglephase'" in text and "fallback_funcs.needs_refused" in text


def test_tasks_that_load_stay_in_interpreters(pool):
    assert pool.submit(ff.needs_refused, 1).result(timeout=120)[1] != os.getpid()
    # an interpreter of this process runs the others
    value, pid = pool.submit(ff.fine, 1).result(timeout=60)
    assert (value, pid) == (2, os.getpid())
    assert [pid for _, pid in pool.map(ff.fine, range(8))] == [os.getpid()] * 8


def test_refused_function_goes_straight_to_processes(pool):
    pool.submit(ff.needs_refused, 1).result(timeout=120)
    assert pool._refused.get(ff.needs_refused) == "_testsinglephase"
    results = [pool.submit(ff.needs_refused, i) for i in range(6)]
    assert [f.result(timeout=120)[0] for f in results] == [i * 10 for i in range(6)]
    assert list(v for v, _ in pool.map(ff.needs_refused, range(5))) == [0, 10, 20, 30, 40]


def test_map_chunks_fall_back(pool):
    out = list(pool.map(ff.needs_refused, range(20)))
    assert [v for v, _ in out] == [i * 10 for i in range(20)]
    assert all(pid != os.getpid() for _, pid in out)


def test_one_warning_per_module():
    # a module refused before, by another pool of this interpreter: no second warning
    with xi.InterpreterPoolExecutor(2, fallback="process") as first:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first.submit(ff.needs_refused, 1).result(timeout=120)
    with xi.InterpreterPoolExecutor(2, fallback="process") as second:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            second.submit(ff.marker_after_refusal).result(timeout=120)
    assert not [w for w in caught if issubclass(w.category, xi.FallbackWarning)]


def test_exceptions_keep_their_type_in_the_process(pool):
    with pytest.raises(ValueError, match="from the process"):
        pool.submit(ff.refused_then_raises, "from the process").result(timeout=120)


def test_process_workers_run_the_initializer():
    with xi.InterpreterPoolExecutor(2, initializer=ff.set_marker, initargs=("set",),
                                    fallback="process") as pool:
        assert pool.submit(ff.marker_after_refusal).result(timeout=120) == "set"


def test_function_whose_module_refuses_falls_back(pool):
    # its module imports the refusing extension: by reference and by value both fail
    name, x, pid = pool.submit(fallback_refusing.task, 3).result(timeout=120)
    assert (name, x) == ("_testsinglephase", 3) and pid != os.getpid()


def test_task_runs_again_from_the_start(pool, tmp_path):
    # the documented caveat: what it did before the refused import happens twice
    path = tmp_path / "effects"
    pid = pool.submit(ff.side_effect_then_refused, str(path)).result(timeout=120)
    assert pid != os.getpid()
    assert path.read_text() == "xx"


def test_lambda_falls_back_by_value(pool):
    double = 2
    out = pool.submit(lambda x: ff.needs_refused(x * double), 2).result(timeout=120)
    assert out[0] == 40


def test_without_fallback_the_import_error_names_the_module():
    with xi.InterpreterPoolExecutor(2) as pool:
        with pytest.raises(ImportError, match="_testsinglephase"):
            pool.submit(ff.needs_refused, 1).result(timeout=60)
        with pytest.raises(xi.NotShareableError, match="_testsinglephase"):
            pool.submit(fallback_refusing.task, 1).result(timeout=60)
        assert pool._processes is None


@pytest.mark.parametrize("bad", ["thread", "processes", "", 1, True])
def test_bad_fallback_is_a_value_error(bad):
    with pytest.raises(ValueError, match="fallback must be None or 'process'"):
        xi.InterpreterPoolExecutor(2, fallback=bad)


def test_shutdown_ends_the_process_pool():
    pool = xi.InterpreterPoolExecutor(2, fallback="process")
    pool.submit(ff.needs_refused, 1).result(timeout=120)
    processes = pool._processes
    assert processes is not None
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        processes.submit(ff.fine, 1)


def test_joblib_backend_falls_back_by_default():
    joblib = pytest.importorskip("joblib")
    import extrainterpreters.joblib  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xi.FallbackWarning)
        with joblib.parallel_config("interpreters", n_jobs=2):
            out = joblib.Parallel()(joblib.delayed(ff.needs_refused)(i) for i in range(6))
    assert [v for v, _ in out] == [i * 10 for i in range(6)]
    with pytest.raises(ValueError):
        extrainterpreters.joblib.InterpreterBackend(fallback="thread")
