import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, settings

import extrainterpreters as xi

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

if sys.version_info < (3, 13):
    # Tests refuse _testsinglephase in isolated interpreters, and others import it here.
    # On 3.12 the main interpreter's first import of a single-phase module after an
    # interpreter refused it corrupts memory (docs/compatibility.md): import it first.
    import _testsinglephase  # noqa: F401
if TESTS_DIR not in sys.path:
    # remote_funcs must be importable here and in every interpreter started later
    sys.path.insert(0, TESTS_DIR)

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_addoption(parser):
    parser.addoption(
        "--serial", choices=("with", "skip", "only"), default="with",
        help="tests marked serial: run them with the others (default), leave them out "
             "(for a run with pytest-xdist's -n) or run only them (a pass of their own)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes several seconds or moves 256 MiB (deselect with -m 'not slow')"
    )
    config.addinivalue_line(
        "markers", "serial: bounds a wait or a delay tightly (or measures time), so it must "
        "not share the cores with other tests: make test runs it alone, after the tests run "
        "in parallel (--serial only / skip)"
    )


def pytest_collection_modifyitems(config, items):
    mode = config.getoption("serial")
    if mode == "with":
        return
    keep = mode == "only"
    selected, deselected = [], []
    for item in items:
        serial = item.get_closest_marker("serial") is not None
        (selected if serial == keep else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def close_interp(interp, timeout=30.0):
    """Closes ``interp``, interrupting and waiting for calls a failed test left running."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            interp.close()
            return
        except xi.InterpreterError:
            if time.monotonic() > deadline:
                raise
            try:
                interp.interrupt()
            except xi.InterpreterError:
                pass
            time.sleep(0.05)


def _started_interp():
    it = xi.Interpreter().start()
    try:
        yield it
    finally:
        close_interp(it)


@pytest.fixture
def interp():
    """A started Interpreter, closed after the test."""
    yield from _started_interp()


@pytest.fixture(scope="module")
def shared_interp():
    """One started Interpreter for a whole module (for hypothesis tests)."""
    yield from _started_interp()


# A run started in the background (as CI may start it) inherits SIGINT ignored, and so
# would every subprocess of the Ctrl-C tests. A handler, unlike "ignored", is reset by
# exec, so installing Python's own makes the subprocesses handle SIGINT again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _env():
    env = os.environ.copy()  # PYTHONPATH passes through unchanged
    env.pop("PYTHONSTARTUP", None)
    return env


def run_py(code, timeout=60, args=(), cwd=None, input=None):
    """Runs ``sys.executable -c code`` and returns the CompletedProcess (text mode)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=_env(),
        input=input,
    )


def run_script(path, timeout=60, cwd=None):
    """Runs ``sys.executable path`` like :func:`run_py`."""
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=_env(),
    )


@pytest.fixture(name="run_py")
def run_py_fixture():
    return run_py


@pytest.fixture(name="run_script")
def run_script_fixture():
    return run_script


def assert_clean_exit(proc):
    """Exit status 0 and no fatal error in the output."""
    out = proc.stdout + proc.stderr
    assert "Fatal Python error" not in out, out
    assert "Segmentation fault" not in out, out
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{out}"


@pytest.fixture
def interps():
    """A factory: ``interps(n)`` starts n Interpreters; all are closed after the test
    (calls a failed test left waiting are interrupted first)."""
    made = []

    def make(n):
        new = [xi.Interpreter().start() for _ in range(n)]
        made.extend(new)
        return new

    try:
        yield make
    finally:
        for it in made:
            close_interp(it)


MODULE_SOURCE = """
class Thing:
    def __init__(self, value):
        self.value = value
"""


@pytest.fixture
def private_module(tmp_path):
    """A module importable only where its directory is on sys.path."""
    name = f"xi_private_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(MODULE_SOURCE)
    yield str(tmp_path), name
    sys.modules.pop(name, None)
