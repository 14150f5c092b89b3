"""InterpreterPoolExecutor(preload=...): every worker starts with the pool and imports
the named modules as its interpreter starts, before the initializer; bad names are
refused at once; a module that cannot be imported breaks the pool with its reason."""
import time

import pytest

import extrainterpreters as xi
from extrainterpreters.executor import BrokenInterpreterPool


def imported_src(name):
    # for eval, a builtin, which imports nothing in the worker (a function of this
    # module would import it, and pytest with it)
    return f"{name!r} in __import__('sys').modules"


def test_workers_start_with_the_pool_and_import_the_modules():
    with xi.InterpreterPoolExecutor(2, preload=["json", "email.utils"]) as pool:
        deadline = time.monotonic() + 30
        while len(pool._slots) < 2 or any(s.interp is None or s.busy for s in pool._slots):
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.01)
        results = list(pool.map(eval, [f"{n!r} in __import__('sys').modules"
                                       for n in ["json", "email.utils"] * 4], chunksize=1))
        assert results == [True] * 8


def test_a_single_name_is_one_module():
    with xi.InterpreterPoolExecutor(1, preload="json") as pool:
        assert pool.submit(eval, imported_src("json")).result()


def test_without_preload_nothing_more_is_imported_and_no_worker_starts_early():
    with xi.InterpreterPoolExecutor(2) as pool:
        assert pool._threads == []
        assert not pool.submit(eval, imported_src("json")).result()


def test_the_initializer_runs_after_the_imports():
    # exec, a builtin, imports nothing: the assertion sees what the worker imported
    with xi.InterpreterPoolExecutor(1, preload=["json"], initializer=exec,
                                    initargs=(f"assert {imported_src('json')}",)) as pool:
        assert pool.submit(eval, imported_src("json")).result()


@pytest.mark.parametrize("bad, error", [
    ([1], TypeError), (["json", None], TypeError), ([""], ValueError),
    (["os; import sys"], ValueError), (["a..b"], ValueError), ([".json"], ValueError),
    (5, TypeError),
])
def test_bad_names_are_refused_at_once(bad, error):
    with pytest.raises(error):
        xi.InterpreterPoolExecutor(1, preload=bad)


def test_a_module_that_does_not_import_breaks_the_pool_with_its_name():
    pool = xi.InterpreterPoolExecutor(2, preload=["json", "no_such_module_here"])
    try:
        deadline = time.monotonic() + 30
        while pool._broken is None:
            assert time.monotonic() < deadline, "the pool did not break"
            time.sleep(0.01)
        assert "no_such_module_here" in pool._broken
        with pytest.raises(BrokenInterpreterPool, match="no_such_module_here"):
            pool.submit(eval, imported_src("json")).result()
    finally:
        pool.shutdown()


def test_shutdown_right_away_ends_the_workers_that_were_starting():
    for _ in range(5):
        pool = xi.InterpreterPoolExecutor(2, preload=["json"])
        pool.shutdown(wait=True)
        assert all(not t.is_alive() for t in pool._threads)


def test_a_refused_module_is_left_to_the_process_fallback():
    # _testsinglephase is a single-phase extension module: isolated interpreters refuse it
    pytest.importorskip("_testsinglephase")
    with xi.InterpreterPoolExecutor(1, preload=["json", "_testsinglephase"],
                                    fallback="process") as pool:
        assert pool.submit(eval, imported_src("json")).result()
        assert pool._broken is None
    pool = xi.InterpreterPoolExecutor(1, preload=["_testsinglephase"])
    try:
        with pytest.raises(BrokenInterpreterPool, match="_testsinglephase"):
            pool.submit(eval, imported_src("json")).result()
    finally:
        pool.shutdown()


def test_an_initializer_that_sees_no_preload_fails():
    # the same initializer without preload breaks the pool: the test above can fail
    pool = xi.InterpreterPoolExecutor(1, initializer=exec,
                                      initargs=(f"assert {imported_src('json')}",))
    try:
        with pytest.raises(BrokenInterpreterPool):
            pool.submit(eval, "1").result()
    finally:
        pool.shutdown()
