"""Interpreter(config=...) and create(config): "isolated" (the default: its own GIL),
"legacy" (the main interpreter's GIL; single-phase extension modules load) or a
types.SimpleNamespace with the fields of _interpreters.new_config(). Bad configurations
raise ValueError or TypeError when the Interpreter is made, before anything is
created."""
import subprocess
import sys
import threading
import time
import types

import pytest

import config_funcs as cf
import extrainterpreters as xi
from conftest import close_interp
from extrainterpreters import _xi
from helpers import call_in_thread, in_thread, live_ids

FIELDS = ("use_main_obmalloc", "allow_fork", "allow_exec", "allow_threads",
          "allow_daemon_threads", "check_multi_interp_extensions", "gil")
ISOLATED = dict(use_main_obmalloc=False, allow_fork=False, allow_exec=False,
                allow_threads=True, allow_daemon_threads=False,
                check_multi_interp_extensions=True, gil="own")
LEGACY = dict(use_main_obmalloc=True, allow_fork=True, allow_exec=True, allow_threads=True,
              allow_daemon_threads=True, check_multi_interp_extensions=False, gil="shared")

try:
    import _interpreters as _stdlib  # 3.13+
except ImportError:
    _stdlib = None

# CPython 3.12 asks the thread holding a shared GIL to drop it through the waiting
# thread's interpreter, which the holder (in another interpreter) never looks at: a
# thread of one interpreter waits for the GIL until the holder of the other blocks or
# ends (the standard library's _xxsubinterpreters does the same there).
SHARED_GIL_HANDOVER = pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="CPython 3.12 hands a shared GIL over between interpreters only when its "
           "holder blocks")


@pytest.fixture
def legacy():
    it = xi.Interpreter(config="legacy").start()
    try:
        yield it
    finally:
        close_interp(it)


def ns(**fields):
    return types.SimpleNamespace(**fields)


# -- what loads where -----------------------------------------------------------------

def test_the_single_phase_module_exists_here():
    import _testsinglephase  # noqa: F401 (the tests below would pass vacuously without it)


@pytest.mark.parametrize("config", [None, "isolated", ns(**ISOLATED)])
def test_isolated_interpreters_refuse_single_phase_modules(config):
    with xi.Interpreter(config=config) as it:
        with pytest.raises(ImportError, match="_testsinglephase"):
            it.run(cf.import_singlephase)


@pytest.mark.parametrize("config", ["legacy", ns(**LEGACY)])
def test_legacy_interpreters_load_single_phase_modules(config):
    with xi.Interpreter(config=config) as it:
        assert it.run(cf.import_singlephase) == "_testsinglephase"
        it.exec("import _testsinglephase")


def test_create_takes_a_config():
    it = xi.create("legacy")
    try:
        assert it.call(cf.import_singlephase) == "_testsinglephase"
    finally:
        it.close()
    it = xi.create(config="isolated")
    try:
        with pytest.raises(xi.ExecutionFailed, match="_testsinglephase"):
            it.call(cf.import_singlephase)
    finally:
        it.close()


@pytest.mark.skipif(_stdlib is None, reason="_interpreters.new_config() is 3.13+")
def test_the_standard_librarys_config_objects():
    for name, loads in [("legacy", True), ("isolated", False)]:
        config = _stdlib.new_config(name)
        with xi.Interpreter(config=config) as it:
            if loads:
                assert it.run(cf.import_singlephase) == "_testsinglephase"
            else:
                with pytest.raises(ImportError):
                    it.run(cf.import_singlephase)


@pytest.mark.parametrize("outer", ["isolated", "legacy"])
def test_a_legacy_interpreter_made_inside_another(outer):
    with xi.Interpreter(config=outer) as it:
        assert it.run(cf.singlephase_in_new_interpreter, "legacy") == "_testsinglephase"


# -- a legacy interpreter works as any other ------------------------------------------

def test_calls_exec_and_prepare_main(legacy):
    assert legacy.run(sum, [1, 2, 3]) == 6
    assert legacy.call(lambda x: x * 2, 21) == 42
    legacy.prepare_main(base=10)
    legacy.exec("result = base + 1")
    assert legacy.call(eval, "result") == 11
    with pytest.raises(ValueError, match="boom"):
        legacy.run(int, "boom")
    with pytest.raises(xi.ExecutionFailed):
        legacy.exec("raise RuntimeError('x')")
    assert legacy.run(cf.import_singlephase) == "_testsinglephase"


def test_whence_is_the_same(legacy):
    with xi.Interpreter() as isolated:
        assert legacy.whence == isolated.whence == "_interpreters module"
    assert xi.Interpreter(legacy.id).whence == legacy.whence


def test_queue_and_lock(legacy):
    q, lock = xi.Queue(), xi.Lock()
    assert legacy.run(cf.put_under_lock, q, lock, "from legacy") == "put"
    assert q.get(timeout=10) == "from legacy"
    # a lock held in the legacy interpreter blocks the main one, and is released
    started, release = xi.Queue(), xi.Event()
    wait = call_in_thread(legacy, cf.hold_lock_until_released, lock, started, release)
    assert started.get(timeout=30) == "locked"
    assert not lock.acquire(timeout=0.05)
    release.set()
    assert wait() == "released"
    assert lock.acquire(timeout=10)
    lock.release()
    # a blocking get() there waits for a put() here
    wait = call_in_thread(legacy, cf.get_one, q)
    q.put("to legacy")
    assert wait() == "to legacy"


def test_interrupt(legacy):
    started = xi.Queue()
    # on 3.12 the main thread gets the GIL back only when the call blocks now and then
    wait = call_in_thread(legacy, cf.spin_until_interrupted, started,
                          sys.version_info < (3, 13))
    assert started.get(timeout=30) == "spinning"
    legacy.interrupt()
    assert wait() == "interrupted"
    assert legacy.run(abs, -1) == 1  # still usable


def test_calls_from_threads(legacy):
    waits = [in_thread(legacy.call, pow, 2, i) for i in range(8)]
    assert [w() for w in waits] == [2 ** i for i in range(8)]


@SHARED_GIL_HANDOVER
def test_a_thread_calls_in_while_the_main_thread_runs_python(legacy):
    done = []
    t = threading.Thread(target=lambda: done.append(legacy.call(sum, range(1000))))
    t.start()
    deadline = time.monotonic() + 60
    n = 0
    while not done and time.monotonic() < deadline:
        n += 1  # pure Python: the GIL is only handed over on request
    t.join(60)
    assert done == [499500]


@SHARED_GIL_HANDOVER
def test_the_main_thread_runs_python_while_a_call_spins_there(legacy, tmp_path):
    path = str(tmp_path / "stop")
    wait = call_in_thread(legacy, cf.spin_until_file, path)
    time.sleep(0.1)
    n = 0
    for _ in range(100_000):
        n += 1  # runs: the spinning call hands the shared GIL over
    with open(path, "w"):
        pass
    assert wait(60) is True


def test_close(legacy):
    it = xi.Interpreter(config="legacy").start()
    assert it.id in live_ids()
    assert it.run(cf.import_singlephase) == "_testsinglephase"
    it.close()
    assert it.id not in live_ids()
    with pytest.raises(xi.InterpreterError):
        it.run(abs, -1)
    it.close()  # idempotent
    # while a call runs it stays open
    started, release = xi.Queue(), xi.Event()
    wait = call_in_thread(legacy, cf.hold_lock_until_released, xi.Lock(), started, release)
    assert started.get(timeout=30) == "locked"
    with pytest.raises(xi.InterpreterError):
        legacy.close()
    release.set()
    assert wait() == "released"


def test_join_closes_after_the_target():
    it = xi.Interpreter(target=cf.import_singlephase, config="legacy")
    it.start()
    it.join()
    assert it.result() == "_testsinglephase"
    assert it.intno is None


# -- bad configurations ---------------------------------------------------------------

def partial(**changes):
    fields = dict(ISOLATED, **changes)
    return ns(**{k: v for k, v in fields.items() if v is not ...})


BAD = [
    ("foo", ValueError, "unsupported interpreter config 'foo'"),
    ("", ValueError, "unsupported interpreter config ''"),
    ("LEGACY", ValueError, "unsupported interpreter config"),
    (5, TypeError, "not int"),
    (dict(LEGACY), TypeError, "not dict"),
    (object(), TypeError, "not object"),
    (ns(), ValueError, "missing use_main_obmalloc, allow_fork"),
    (ns(gil="own"), ValueError, "missing use_main_obmalloc"),
    (partial(gil=...), ValueError, "missing gil"),
    (partial(extra=1), ValueError, "unknown fields: extra"),
    (partial(gil="foo"), ValueError, "gil must be 'own', 'shared' or 'default', not 'foo'"),
    (partial(gil=2), TypeError, "gil must be a str, not int"),
    (partial(allow_fork=1), TypeError, "allow_fork must be a bool, not int"),
    (partial(use_main_obmalloc=None), TypeError, "use_main_obmalloc must be a bool"),
    (partial(use_main_obmalloc=True), ValueError, "own GIL .* needs its own obmalloc"),
    (partial(check_multi_interp_extensions=False, gil="shared"), ValueError,
     "own obmalloc .* needs check_multi_interp_extensions=True"),
]


@pytest.mark.parametrize("config, error, message", BAD,
                         ids=[f"{i}-{type(c).__name__}" for i, (c, _, _) in enumerate(BAD)])
def test_bad_configs_raise_before_anything_is_created(config, error, message):
    before = live_ids()
    with pytest.raises(error, match=message):
        xi.Interpreter(config=config)
    with pytest.raises(error, match=message):
        xi.Interpreter(target=abs, args=(-1,), config=config)
    with pytest.raises(error, match=message):
        xi.create(config)
    assert live_ids() == before


def test_a_lookup_takes_no_config():
    with pytest.raises(TypeError, match="config"):
        xi.Interpreter(xi.get_main().id, config="legacy")


@pytest.mark.parametrize("fields", [
    dict(ISOLATED, gil="shared"),          # its own obmalloc under the main GIL
    dict(ISOLATED, gil="default"),         # CPython's default: the main GIL
    dict(LEGACY, allow_fork=False, allow_exec=False, allow_daemon_threads=False),
    dict(LEGACY, check_multi_interp_extensions=True),
])
def test_other_consistent_configs_work(fields):
    with xi.Interpreter(config=ns(**fields)) as it:
        assert it.run(abs, -3) == 3
        if fields["check_multi_interp_extensions"]:
            with pytest.raises(ImportError):
                it.run(cf.import_singlephase)
        else:
            assert it.run(cf.import_singlephase) == "_testsinglephase"


def test_the_c_core_checks_its_config_too():
    # the private entry point the class calls: bad input raises, never crashes
    good = tuple(LEGACY[f] for f in FIELDS)
    for config, error in [
        ((True,) * 6, TypeError),
        (list(good), TypeError),
        ((1,) + good[1:], TypeError),
        (good[:6] + ("foo",), ValueError),
        (good[:6] + (b"own",), TypeError),
        ((True,) + good[1:6] + ("own",), ValueError),
        ((False,) + good[1:6] + ("shared",), ValueError),
    ]:
        with pytest.raises(error):
            _xi.create(sys.path, config)
    handle = _xi.create(sys.path, good)
    handle.close()


def test_config_fields_match_the_standard_library():
    if _stdlib is None:
        pytest.skip("_interpreters.new_config() is 3.13+")
    assert vars(_stdlib.new_config("isolated")) == ISOLATED
    assert vars(_stdlib.new_config("legacy")) == LEGACY
    assert tuple(vars(_stdlib.new_config())) == FIELDS


def test_made_and_closed_from_several_threads_at_once():
    # legacy interpreters end holding the main GIL while others are made (which takes
    # it too): neither waits for the other for ever
    def cycle(config):
        for _ in range(5):
            with xi.Interpreter(config=config) as it:
                it.run(abs, -1)
        return True

    waits = [in_thread(cycle, config) for config in ["legacy", "isolated"] * 2]
    assert all(w(120) for w in waits)


DAEMON_SCRIPT = """
import sys, threading, time
import extrainterpreters as xi

stop_after = float(sys.argv[1])
it = xi.Interpreter(config="legacy").start()
stop = xi.Event()
it.prepare_main(stop=stop)
it.exec('''
import threading
def wait_for_stop():
    stop.wait(600)
threading.Thread(target=wait_for_stop, daemon=True).start()
''')
closed = threading.Event()
closer = threading.Thread(target=lambda: (it.close(), closed.set()))
closer.start()
print("closed before the thread ended", closed.wait(stop_after), flush=True)
stop.set()
print("closed", closed.wait(60), flush=True)
closer.join()
"""


def run_daemon_script(stop_after):
    return subprocess.run([sys.executable, "-c", DAEMON_SCRIPT, str(stop_after)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.12 and 3.13 only")
def test_close_waits_for_daemon_threads_started_there():
    # Py_EndInterpreter of 3.12 and 3.13 aborts the process when another thread is
    # left: close() waits for the thread, and says why when the wait is long
    proc = run_daemon_script(0.5)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["closed before the thread ended False", "closed True"]
    assert "RuntimeWarning" not in proc.stderr
    proc = run_daemon_script(3)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["closed before the thread ended False", "closed True"]
    assert "RuntimeWarning: closing an interpreter waits for its daemon threads" in proc.stderr


@pytest.mark.skipif(sys.version_info < (3, 14), reason="3.14 and later")
def test_close_ends_the_interpreter_with_its_daemon_threads():
    # as the standard library's close(): from 3.14 on CPython ends the interpreter with
    # its daemon threads there (they stop when they next need its GIL); the process
    # exits normally afterwards
    proc = run_daemon_script(60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["closed before the thread ended True", "closed True"]
