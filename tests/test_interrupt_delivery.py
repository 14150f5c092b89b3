"""Where and how often interrupt() raises KeyboardInterrupt: once in each call running
in the interpreter, for every interrupt() (after the previous one was raised), also in
calls nested through other interpreters."""
import time

import pytest

import extrainterpreters as xi
import interrupt_funcs as inf
from helpers import call_in_thread, in_thread

GAP = 0.3
TIMES = 5
LIMIT = 20


def interrupt_every(interp, gap, times):
    for _ in range(times):
        time.sleep(gap)
        interp.interrupt()


def test_every_interrupt_reaches_a_call_that_goes_on(interp):
    wait = call_in_thread(interp, inf.count_interrupts, TIMES, LIMIT)
    interrupt_every(interp, GAP, TIMES)
    assert wait() == TIMES


def test_every_interrupt_reaches_a_call_from_the_main_thread(interp):
    # the main thread's calls run on the owner thread; interrupt() from another thread
    sender = in_thread(interrupt_every, interp, GAP, TIMES)
    assert interp.run(inf.count_interrupts, TIMES, LIMIT) == TIMES
    sender()


def test_every_interrupt_reaches_a_call_waiting_in_a_queue(interp):
    q = xi.Queue()
    wait = call_in_thread(interp, inf.count_interrupts_in_waits, q, TIMES, LIMIT)
    interrupt_every(interp, GAP, TIMES)
    assert wait() == TIMES


def test_interrupt_reaches_each_of_nested_calls(interp, tmp_path):
    # X -> main -> X: one interrupt() raises in the inner call and, once it returned,
    # in the outer one (the inner's return must not swallow the outer's)
    path = tmp_path / "inner-started"
    wait = call_in_thread(interp, inf.nested_through_main, interp.id, str(path), LIMIT)
    deadline = time.monotonic() + LIMIT
    while not path.exists():
        assert time.monotonic() < deadline, "the inner call did not start"
        time.sleep(0.01)
    interp.interrupt()
    outer_interrupted = wait()
    assert (tmp_path / "inner-started.count").read_text() == "1"
    assert outer_interrupted


@pytest.mark.parametrize("kind", ["call", "exec"])
def test_interrupt_between_calls_hits_nothing(interp, kind):
    interp.interrupt()
    if kind == "call":
        assert interp.run(len, "abc") == 3
    else:
        interp.exec("x = 1")
