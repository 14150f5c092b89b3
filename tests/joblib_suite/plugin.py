"""pytest plugin (-p plugin) that runs joblib's test_parallel.py with the backend
"interpreters" among the backends it tests.

Loaded before the test module is imported, it registers the backend, so that the
module's lists built from joblib's BACKENDS (ALL_VALID_BACKENDS, its backend
instances, RETURN_GENERATOR_BACKENDS, and the tests parametrized with BACKENDS
itself) hold it. The lists written out by hand (PARALLEL_BACKENDS, PROCESS_BACKENDS,
["loky", "threading"]...) are extended where pytest collects each test: a
parametrize of a single backend argument whose values name "loky" or "threading"
gets "interpreters" too. Then only the tests with the backend among their
parameters are kept.

Each test's outcome, and the exception of a failed one, go to OUTCOMES for run.py.
"""
import os
import signal

import pytest

import extrainterpreters.joblib as xj

NAME = "interpreters"
# seconds a test may run before it fails (SIGALRM interrupts the main thread's wait)
TIMEOUT = int(os.environ.get("XI_JOBLIB_TEST_TIMEOUT", "60"))
# node id -> (outcome, reason): "pass", "fail", "skip"
OUTCOMES = {}


def _extend(mark):
    if mark.name != "parametrize" or len(mark.args) < 2:
        return mark
    argnames, values = mark.args[0], mark.args[1]
    if not isinstance(argnames, str) or "," in argnames or "backend" not in argnames:
        return mark
    if not isinstance(values, (list, tuple)) or NAME in values:
        return mark
    if not {"loky", "threading"} & {v for v in values if isinstance(v, str)}:
        return mark
    return pytest.mark.parametrize(argnames, [*values, NAME], *mark.args[2:],
                                   **mark.kwargs).mark


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    marks = getattr(obj, "pytestmark", None)
    if callable(obj) and isinstance(marks, list):
        obj.pytestmark = [_extend(m) for m in marks]


def uses_backend(item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(v == NAME or isinstance(v, xj.InterpreterBackend)
               for v in params.values() if isinstance(v, (str, xj.InterpreterBackend)))


# test ids (test name and parameters) not to run, filled by run.py
NOT_RUN = set()


def selected(item):
    return uses_backend(item) and item.nodeid.partition("::")[2] not in NOT_RUN


def pytest_collection_modifyitems(config, items):
    keep = [i for i in items if selected(i)]
    drop = [i for i in items if not selected(i)]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def reason_of(report):
    """One line: the exception's type and the start of its message."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        line = crash.message.strip().splitlines()[0] if crash.message.strip() else ""
        return line[:160]
    return str(report.longrepr).strip().splitlines()[-1][:160]


def pytest_runtest_logreport(report):
    nodeid = report.nodeid
    if report.when == "call" or report.failed or (report.skipped and report.when == "setup"):
        if report.passed and not hasattr(report, "wasxfail"):
            OUTCOMES.setdefault(nodeid, ("pass", ""))
        elif report.skipped and hasattr(report, "wasxfail"):
            OUTCOMES[nodeid] = ("fail", "xfail: " + report.wasxfail)
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            OUTCOMES[nodeid] = ("skip", reason)
        elif report.failed:
            if OUTCOMES.get(nodeid, ("",))[0] != "fail":
                OUTCOMES[nodeid] = ("fail", reason_of(report))


def pytest_make_parametrize_id(config, val, argname):
    # a backend instance is named by its class, not by its position in the list
    from joblib._parallel_backends import ParallelBackendBase

    if isinstance(val, ParallelBackendBase):
        return type(val).__name__ + "()"
    return None


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout(f"still running after {TIMEOUT} s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT)
    try:
        return (yield)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
