"""Where and how often interrupt() raises KeyboardInterrupt: once in each call running
in the interpreter, for every interrupt() (after the previous one was raised), also in
calls nested through other interpreters."""
import os
import threading
import time

import pytest

import extrainterpreters as xi
import interrupt_funcs as inf
from conftest import TESTS_DIR, assert_clean_exit
from helpers import call_in_thread, in_thread, parse

GAP = 0.3
TIMES = 5
LIMIT = 20


def wait_for_file(path, limit=LIMIT):
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def wait_for_mark(path, n, limit=LIMIT):
    """Waits until the call writes n to path (interrupt_funcs.mark): it has caught n
    interrupts and is ready for the next one."""
    deadline = time.monotonic() + limit
    while True:
        try:
            with open(path) as f:
                if f.read() == str(n):
                    return
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, f"interrupt {n} was not raised in the call"
        time.sleep(0.01)


def interrupt_every(interp, gap, times, started):
    # each interrupt() once the call caught the previous one: two that come before it
    # raised the first would be one (an interrupt that is armed is not armed again)
    for i in range(times):
        wait_for_mark(started, i)
        time.sleep(gap)
        interp.interrupt()


def test_every_interrupt_reaches_a_call_that_goes_on(interp, tmp_path):
    started = str(tmp_path / "started")
    wait = call_in_thread(interp, inf.count_interrupts, TIMES, LIMIT, started)
    interrupt_every(interp, GAP, TIMES, started)
    assert wait() == TIMES


def test_every_interrupt_reaches_a_call_from_the_main_thread(interp, tmp_path):
    # the main thread's calls run on the owner thread; interrupt() from another thread
    started = str(tmp_path / "started")
    sender = in_thread(interrupt_every, interp, GAP, TIMES, started)
    assert interp.run(inf.count_interrupts, TIMES, LIMIT, started) == TIMES
    sender()


def test_every_interrupt_reaches_a_call_waiting_in_a_queue(interp, tmp_path):
    q = xi.Queue()
    started = str(tmp_path / "started")
    wait = call_in_thread(interp, inf.count_interrupts_in_waits, q, TIMES, LIMIT, started)
    interrupt_every(interp, GAP, TIMES, started)
    assert wait() == TIMES


def test_interrupt_reaches_the_inner_of_nested_calls_once(interp, tmp_path):
    # X -> main -> X: one interrupt() raises in the inner call, and not again in the
    # outer one once the inner has returned (they are one logical call)
    path = tmp_path / "inner-started"
    wait = call_in_thread(interp, inf.nested_through_main, interp.id, str(path), LIMIT)
    deadline = time.monotonic() + LIMIT
    while not path.exists():
        assert time.monotonic() < deadline, "the inner call did not start"
        time.sleep(0.01)
    interp.interrupt()
    outer_interrupted = wait()
    assert (tmp_path / "inner-started.count").read_text() == "1"
    assert not outer_interrupted


def test_an_interrupt_of_a_nested_call_that_is_masked_reaches_the_outer_call(interp,
                                                                            tmp_path):
    # X -> main -> X: interrupt() hits only the inner call, which is encoding its
    # result (masked): the interrupt waits there, and once the inner call has returned
    # the outer call, which goes on, gets it (not lost with the inner call)
    path = str(tmp_path / "encoding")
    wait = call_in_thread(interp, inf.nested_encoded_slowly, interp.id, path, LIMIT / 2)
    wait_for_file(path)
    interp.interrupt()
    assert wait() is True


def test_an_interrupt_as_get_drops_an_unbuildable_item_reaches_the_call(interp, tmp_path):
    # get() runs the library's Python code (_errors.learn_from_failed_rebuild) for an
    # item it cannot rebuild: an interrupt that comes meanwhile waits for its end, and
    # is raised in the call's code (not swallowed with that code's errors)
    q = xi.Queue()
    q.put(inf.Unbuildable())
    path = str(tmp_path / "learning")
    wait = call_in_thread(interp, inf.get_unbuildable_interrupted, q, path, LIMIT / 2)
    wait_for_file(path)
    interp.interrupt()
    assert wait() == "interrupted"


@pytest.mark.parametrize("via", ["main", "subinterpreter"])
@pytest.mark.parametrize("round_", range(3))
def test_one_interrupt_raises_once_in_a_call_nested_through_another(interp, tmp_path,
                                                                    via, round_):
    # X in A calls B, which calls Y back into A on the same thread: Y is part of X, and
    # one interrupt() is one KeyboardInterrupt, in Y (X is masked meanwhile, and must
    # not get it again when its call into B returns)
    other = xi.Interpreter().start() if via == "subinterpreter" else None
    try:
        path = tmp_path / "inner-started"
        wait = call_in_thread(interp, inf.nested_through, interp.id,
                              other.id if other else None, str(path), LIMIT)
        wait_for_file(str(path))
        interp.interrupt()
        assert wait() == ["first"]
    finally:
        if other is not None:
            other.close()


def test_an_interrupt_reaches_only_calls_begun_before_it(interp):
    # interrupt() acts once it holds the interpreter's GIL, which a builtin's C loop
    # holds here: a call that begins after interrupt() returned, and still runs when it
    # acts, is not hit
    hog = in_thread(interp.run, sum, range(40_000_000))
    deadline = time.monotonic() + LIMIT
    while not interp.is_running():
        assert time.monotonic() < deadline, "the first call did not start"
        time.sleep(0.001)
    time.sleep(0.05)  # in its C loop
    for _ in range(3):
        interp.interrupt()
    later = in_thread(interp.run, time.sleep, 1.0)
    outcomes = []
    for wait in (hog, later):
        try:
            outcomes.append(wait())
        except KeyboardInterrupt:  # not out of the test: it would end the test run
            outcomes.append("KeyboardInterrupt")
    assert outcomes[1] is None, outcomes


def test_an_interrupt_reaches_a_call_nested_into_the_same_interpreter(interp, tmp_path):
    # the outer call began before interrupt(); the nested call, which begins while the
    # interrupt waits for the GIL, is part of it and gets one at once (not the outer
    # alone, once the nested call has run to its end)
    path = str(tmp_path / "started")
    wait = in_thread(interp.run, inf.gil_held_then_nested_into_itself, path, 40_000_000,
                     LIMIT)
    wait_for_file(path)
    time.sleep(0.05)  # in its C loop
    t0 = time.monotonic()
    interp.interrupt()
    counts, outer_interrupted = wait()
    # not ([0], True): the nested call spun to its end, the outer call got it after;
    # and once: ([], True) when it came at the nested call's first bytecode and went out
    # to the outer call, ([1], False) when the nested call caught it
    assert (counts, outer_interrupted) in (([], True), ([1], False))
    assert time.monotonic() - t0 < LIMIT / 2


@pytest.mark.parametrize("kind", ["call", "exec"])
def test_interrupt_between_calls_hits_nothing(interp, kind):
    interp.interrupt()
    if kind == "call":
        assert interp.run(len, "abc") == 3
    else:
        interp.exec("x = 1")


ABANDON = """
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[1])
import extrainterpreters as xi
import interrupt_funcs as inf

interp = xi.Interpreter().start()
tmp = sys.argv[2]
hits = 0
for r in range(int(sys.argv[3])):
    started = os.path.join(tmp, str(r))
    def ctrl_c():
        while not os.path.exists(started):
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)
        # hold the main interpreter's GIL while the main thread gives the call up
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            pass
    t = threading.Thread(target=ctrl_c)
    t.start()
    try:
        interp.run(inf.big_result_after_interrupt, started, 1 << 20)
    except KeyboardInterrupt:
        hits += 1
    t.join()
    while interp.is_running():
        time.sleep(0.001)
print("KI", hits, flush=True)
print("AFTER", interp.run(len, "abc"), flush=True)
interp.close()
"""


def test_ctrl_c_as_a_call_returns_a_borrowed_result(run_py, tmp_path):
    # the call catches the interrupt and returns 1 MiB (borrowed until read) while the
    # main thread gives it up: the result is released once, by the owner thread
    proc = run_py(ABANDON, timeout=120, args=[TESTS_DIR, str(tmp_path), "30"])
    assert_clean_exit(proc)
    res = parse(proc.stdout)
    assert res["KI"] == "30"
    assert res["AFTER"] == "3"


@pytest.mark.parametrize("kind", ["Lock", "RLock", "Condition"])
def test_interrupts_never_leave_a_with_lock_taken(interp, tmp_path, kind):
    # an interrupt that lands right after __enter__ returned would skip __exit__ on
    # CPython 3.14: __enter__ takes it instead, the lock released
    lock = getattr(xi, kind)()
    started = str(tmp_path / "started")
    stop = threading.Event()
    calls = [0]

    def driver():
        # calls of 0.5 s at most, until the interrupts end
        while not stop.is_set():
            calls[0] += 1
            try:
                interp.run(inf.with_lock_until, lock, time.monotonic() + 0.5, started)
            except KeyboardInterrupt:
                pass  # it landed somewhere: call again

    done = in_thread(driver)
    wait_for_file(started)
    sent = 0
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        interp.interrupt()
        sent += 1
        time.sleep(0.001)
    stop.set()
    done()
    assert calls[0] > 1 and sent > 10, (calls, sent)
    # taken from another thread: a lock left taken (an RLock too) would refuse
    assert lock.acquire(timeout=1), f"the lock was left taken after {sent} interrupts"
    lock.release()


ABANDON_SPARES_OTHERS = """
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[1])
import extrainterpreters as xi
import interrupt_funcs as inf

interp = xi.Interpreter().start()
tmp = sys.argv[2]
caught = []
for r in range(int(sys.argv[3])):
    other_started = os.path.join(tmp, f"other{r}")
    started = os.path.join(tmp, str(r))
    seen = []
    other = threading.Thread(
        target=lambda: seen.append(interp.run(inf.count_interrupts, 1, 1.5, other_started)))
    other.start()
    while not os.path.exists(other_started):
        time.sleep(0.001)
    def ctrl_c():
        while not os.path.exists(started):
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)
    t = threading.Thread(target=ctrl_c)
    t.start()
    try:
        interp.run(inf.big_result_after_interrupt, started, 10)
    except KeyboardInterrupt:
        pass
    t.join()
    other.join()
    caught.append(seen[0])
print("OTHER", sum(caught), flush=True)
interp.close()
"""


def test_ctrl_c_interrupts_only_the_main_threads_call(run_py, tmp_path):
    # Ctrl-C stops the call that the main thread made (run by the owner thread); a call
    # that another thread makes into the same interpreter at that time goes on untouched
    proc = run_py(ABANDON_SPARES_OTHERS, timeout=120, args=[TESTS_DIR, str(tmp_path), "5"])
    assert_clean_exit(proc)
    assert parse(proc.stdout)["OTHER"] == "0"
