"""Life of an Interpreter: start, close, with, join, done, result, ids, registry."""
import gc
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from helpers import live_ids, wait_until


def wait_for(predicate, timeout=10.0):
    return wait_until(predicate, timeout, interval=0.01)


# --- start / close -------------------------------------------------------------------

def test_nothing_created_before_start():
    before = live_ids()
    it = xi.Interpreter()
    assert it.id is None
    assert it.intno is None
    assert live_ids() == before
    assert it.done() is False
    assert it.is_alive() is False
    assert it.is_running() is False


def test_start_returns_interpreter_and_creates_it():
    it = xi.Interpreter()
    try:
        assert it.start() is it
        assert isinstance(it.id, int)
        assert it.intno == it.id
        assert it.id in live_ids()
        assert it.id != xi.get_main().id
        assert it.run(rf.add, 2, 3) == 5
    finally:
        it.close()


def test_close_removes_and_is_idempotent():
    it = xi.Interpreter().start()
    iid = it.id
    it.close()
    assert iid not in live_ids()
    assert it.intno is None
    assert it.id == iid  # the id stays readable; intno tells whether it is open
    it.close()  # idempotent
    it.close()


def test_starting_twice_raises():
    it = xi.Interpreter().start()
    try:
        with pytest.raises(xi.InterpreterError):
            it.start()
        assert it.run(rf.add, 1, 1) == 2  # still usable
    finally:
        it.close()
    with pytest.raises(xi.InterpreterError):
        it.start()  # a closed interpreter is not started again


def test_context_manager():
    with xi.Interpreter() as it:
        assert isinstance(it, xi.Interpreter)
        iid = it.id
        assert iid in live_ids()
        assert it.run(rf.add, 4, 5) == 9
    assert iid not in live_ids()
    assert it.intno is None
    with pytest.raises(xi.InterpreterError):
        it.run(rf.add, 1, 2)


def test_context_manager_closes_on_exception():
    with pytest.raises(ZeroDivisionError):
        with xi.Interpreter() as it:
            iid = it.id
            1 / 0
    assert iid not in live_ids()


def test_distinct_ids():
    a = xi.Interpreter().start()
    b = xi.Interpreter().start()
    try:
        assert a.id != b.id
        assert {a.id, b.id} <= live_ids()
    finally:
        a.close()
        b.close()
    assert not ({a.id, b.id} & live_ids())


def test_create():
    it = xi.create()
    try:
        assert isinstance(it, xi.Interpreter)
        assert it.id in live_ids()
        assert it.run(rf.add, 1, 2) == 3
    finally:
        it.close()


def test_list_all_returns_interpreters():
    it = xi.create()
    try:
        found = [i for i in xi.list_all() if i.id == it.id]
        assert len(found) == 1
        assert isinstance(found[0], xi.Interpreter)
    finally:
        it.close()


# --- calls outside the open life -------------------------------------------------------

CALLS = [
    ("run", lambda it: it.run(rf.add, 1, 2)),
    ("call", lambda it: it.call(rf.add, 1, 2)),
    ("exec", lambda it: it.exec("x = 1")),
    ("run_string", lambda it: it.run_string("x = 1")),
    ("prepare_main", lambda it: it.prepare_main(x=1)),
    ("run_in_thread", lambda it: it.run_in_thread(rf.add, 1, 2)),
    ("call_in_thread", lambda it: it.call_in_thread(rf.add, 1, 2)),
]


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_call_before_start_raises(name, call):
    it = xi.Interpreter()
    with pytest.raises(xi.InterpreterError):
        call(it)
    assert it.id is None


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_call_after_close_raises(name, call):
    it = xi.Interpreter().start()
    it.close()
    with pytest.raises(xi.InterpreterError):
        call(it)


def test_close_before_start_is_harmless():
    it = xi.Interpreter()
    it.close()
    assert it.id is None


# --- threaded calls: target, done, result, join ----------------------------------------

def test_target_runs_in_thread_and_result_after_join():
    it = xi.Interpreter(target=rf.add, args=(1, 2), kwargs={"c": 3})
    assert it.start() is it
    it.join()
    assert it.done() is True
    assert it.result() == 6
    assert it.intno is None  # join closed it


def test_target_without_args():
    it = xi.Interpreter(target=rf.current_id).start()
    iid = it.id
    it.join()
    assert it.result() == iid


def test_done_and_result_lifecycle(interp, tmp_path):
    stop = tmp_path / "stop"
    assert interp.done() is False
    with pytest.raises(xi.InterpreterError):
        interp.result()  # nothing was ever started
    assert interp.run_in_thread(rf.busy_until_file, str(stop)) is True
    assert wait_for(interp.is_running)
    assert interp.done() is False
    assert interp.is_alive() is True
    with pytest.raises(xi.InterpreterError):
        interp.result()
    stop.write_text("x")
    assert wait_for(interp.done)
    assert interp.is_alive() is False
    assert isinstance(interp.result(), int)
    assert interp.result() == interp.result()  # result can be read again


def test_result_reraises_exception_of_threaded_call(interp):
    interp.run_in_thread(rf.raise_value_error, "threaded boom")
    assert wait_for(interp.done)
    with pytest.raises(ValueError, match="threaded boom"):
        interp.result()


def test_join_waits_then_closes():
    it = xi.Interpreter().start()
    iid = it.id
    it.run_in_thread(rf.sleep_then, 0.3, "late")
    t0 = time.monotonic()
    it.join()
    assert time.monotonic() - t0 >= 0.2
    assert it.result() == "late"
    assert iid not in live_ids()
    with pytest.raises(xi.InterpreterError):
        it.run(rf.add, 1, 2)


def test_join_timeout_returns_without_closing(tmp_path):
    stop = tmp_path / "stop"
    it = xi.Interpreter().start()
    try:
        it.run_in_thread(rf.busy_until_file, str(stop))
        t0 = time.monotonic()
        it.join(timeout=0.2)
        assert time.monotonic() - t0 < 5
        assert it.intno == it.id  # still open
        assert it.is_alive() is True
        assert it.done() is False
    finally:
        stop.write_text("x")
    it.join()
    assert it.intno is None
    assert it.done() is True


def test_join_without_threaded_call_closes():
    it = xi.Interpreter().start()
    iid = it.id
    it.join()
    assert iid not in live_ids()


def test_call_in_thread_returns_thread(interp):
    t = interp.call_in_thread(rf.sleep_then, 0.1, "v")
    assert isinstance(t, threading.Thread)
    t.join(10)
    assert not t.is_alive()
    assert interp.done() is True
    assert interp.result() == "v"


def test_second_threaded_call_while_one_runs_raises(interp, tmp_path):
    stop = tmp_path / "stop"
    interp.run_in_thread(rf.busy_until_file, str(stop))
    try:
        with pytest.raises(xi.InterpreterError):
            interp.run_in_thread(rf.add, 1, 2)
        with pytest.raises(xi.InterpreterError):
            interp.call_in_thread(rf.add, 1, 2)
    finally:
        stop.write_text("x")
    assert wait_for(interp.done)
    assert isinstance(interp.result(), int)  # the first call's result, untouched
    # now a new threaded call may start
    interp.run_in_thread(rf.add, 1, 2)
    assert wait_for(interp.done)
    assert interp.result() == 3


def test_is_running_sees_calls_from_any_thread(interp, tmp_path):
    stop = tmp_path / "stop"
    assert interp.is_running() is False
    out = []
    t = threading.Thread(target=lambda: out.append(interp.run(rf.busy_until_file, str(stop))))
    t.start()
    try:
        assert wait_for(interp.is_running)
        assert interp.is_alive() is False  # not a threaded call of the interpreter
    finally:
        stop.write_text("x")
    t.join(30)
    assert out and isinstance(out[0], int)
    assert wait_for(lambda: not interp.is_running())


def test_close_while_running_in_other_thread_raises(interp, tmp_path):
    stop = tmp_path / "stop"
    out = []
    t = threading.Thread(target=lambda: out.append(interp.run(rf.busy_until_file, str(stop))))
    t.start()
    try:
        assert wait_for(interp.is_running)
        with pytest.raises(xi.InterpreterError):
            interp.close()
        assert interp.intno == interp.id  # nothing changed
        assert interp.id in live_ids()
    finally:
        stop.write_text("x")
    t.join(30)
    assert not t.is_alive()
    assert out and isinstance(out[0], int)
    assert interp.run(rf.add, 2, 2) == 4  # still works


def test_close_while_threaded_call_runs_raises(tmp_path):
    stop = tmp_path / "stop"
    it = xi.Interpreter().start()
    it.run_in_thread(rf.busy_until_file, str(stop))
    try:
        assert wait_for(it.is_running)
        with pytest.raises(xi.InterpreterError):
            it.close()
    finally:
        stop.write_text("x")
    it.join()
    assert isinstance(it.result(), int)
    assert it.intno is None


# --- current / main ---------------------------------------------------------------------

def test_get_main_and_current_in_main():
    main = xi.get_main()
    cur = xi.get_current()
    assert isinstance(main, xi.Interpreter)
    assert isinstance(cur, xi.Interpreter)
    assert isinstance(main.id, int)
    assert cur.id == main.id


def test_get_current_inside_subinterpreter(interp):
    assert interp.run(rf.current_id) == interp.id


def test_get_main_inside_subinterpreter(interp):
    assert interp.run(rf.main_id) == xi.get_main().id


def test_get_main_and_current_do_not_own():
    with pytest.raises(xi.InterpreterError):
        xi.get_main().close()
    with pytest.raises(xi.InterpreterError):
        xi.get_current().close()
    # main still fine: we can still make and use interpreters
    with xi.Interpreter() as it:
        assert it.run(rf.add, 1, 1) == 2


def test_closing_current_from_inside_raises(interp):
    assert interp.run(rf.close_current) == "InterpreterError"
    assert interp.run(rf.add, 1, 1) == 2


def test_list_all_sees_interpreters_made_in_subinterpreters(interp):
    inner_id = interp.run(rf.create_and_keep)
    try:
        assert inner_id in live_ids()
        assert inner_id in interp.run(rf.list_all_ids)
        assert interp.id in interp.run(rf.list_all_ids)
    finally:
        assert interp.run(rf.close_kept) is True
    assert inner_id not in live_ids()


# --- collection ---------------------------------------------------------------------------

def test_unreferenced_interpreter_closed_when_collected():
    it = xi.Interpreter().start()
    iid = it.id
    assert iid in live_ids()
    del it
    gc.collect()
    assert wait_for(lambda: iid not in live_ids(), timeout=5)


def test_unreferenced_interpreter_after_calls_closed_when_collected():
    it = xi.Interpreter().start()
    iid = it.id
    assert it.run(rf.add, 1, 2) == 3
    it.run_in_thread(rf.add, 3, 4)
    assert wait_for(it.done)
    assert it.result() == 7
    del it
    gc.collect()
    assert wait_for(lambda: iid not in live_ids(), timeout=5)


def test_many_interpreters_created_and_closed():
    before = live_ids()
    for _ in range(10):
        with xi.Interpreter() as it:
            assert it.run(rf.add, 1, 1) == 2
    assert live_ids() == before


# --- a new interpreter whose set-up fails ------------------------------------------------

BROKEN_PACKAGE = '''
import _thread, atexit, sys, time
FAKE = __path__[0].rsplit("/", 1)[0]

def hook():
    # from the half-set-up interpreter, make and close one with the real library
    sys.path.remove(FAKE)
    for name in [n for n in sys.modules if n.startswith("extrainterpreters")]:
        del sys.modules[name]
    import extrainterpreters as real
    interp = real.Interpreter().start()
    print("HOOK", interp.call(sum, [1, 2]), flush=True)
    interp.close()

atexit.register(hook)
_thread.start_new_thread(time.sleep, (0.3,))
raise ImportError("broken on purpose")
'''

SETUP_FAILS = """
import sys
import extrainterpreters as xi
sys.path.insert(0, sys.argv[1])
for _ in range(3):
    try:
        xi.Interpreter().start()
    except xi.InterpreterError as exc:
        print("REFUSED", "broken on purpose" in str(exc), flush=True)
sys.path.remove(sys.argv[1])
interp = xi.Interpreter().start()
print("AFTER", interp.call(sum, [3]), flush=True)
interp.close()
"""


def test_a_failed_set_up_ends_the_interpreter_as_any_ending_does(run_py, tmp_path):
    # the package fails to import in the new interpreter after starting a _thread thread
    # and registering an atexit hook that makes another interpreter: the failed one
    # waits for that thread and runs the hook (outside of the 3.12 lifecycle lock)
    # before it is ended
    from conftest import assert_clean_exit

    fake = tmp_path / "extrainterpreters"
    fake.mkdir()
    (fake / "__init__.py").write_text(BROKEN_PACKAGE)
    proc = run_py(SETUP_FAILS, timeout=120, args=[str(tmp_path)])
    assert_clean_exit(proc)
    lines = proc.stdout.splitlines()
    assert lines.count("REFUSED True") == 3, proc.stdout + proc.stderr
    assert lines.count("HOOK 3") == 3, proc.stdout + proc.stderr
    assert "AFTER 3" in lines


# The close of an interpreter whose owner was collected is posted without waiting, and
# used to need a new allocation there: when it failed, the interpreter stayed open until
# exit. _testcapi.set_nomemory makes the next allocation of the process fail (in a
# process of its own: only idle owner threads run beside it).
ORPHAN_WITHOUT_MEMORY = """
import sys, time, _testcapi
import extrainterpreters as xi
from extrainterpreters import _xi

it = xi.create()
handle, id_ = it._handle, it.id
_testcapi.set_nomemory(0, 1)
handle._close_soon()
_testcapi.remove_mem_hooks()
deadline = time.monotonic() + 10
while id_ in _xi.list_all() and time.monotonic() < deadline:
    time.sleep(0.01)
print("open" if id_ in _xi.list_all() else "closed")
"""


def test_an_orphan_closes_when_allocating_its_close_fails(run_py):
    pytest.importorskip("_testcapi")
    proc = run_py(ORPHAN_WITHOUT_MEMORY)
    assert proc.stdout.strip().endswith("closed"), proc.stdout + proc.stderr
