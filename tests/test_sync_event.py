"""Event: threading.Event across interpreters."""
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from helpers import QUICK, call_in_thread, count_during, in_thread, timed

def test_event_basics():
    ev = xi.Event()
    assert ev.is_set() is False
    assert ev.wait(0) is False
    ev.set()
    assert ev.is_set() is True
    assert ev.wait() is True
    assert ev.wait(0) is True
    ev.set()
    assert ev.is_set() is True
    ev.clear()
    assert ev.is_set() is False
    ev.clear()
    assert ev.is_set() is False


def test_event_constructor_takes_no_arguments():
    with pytest.raises(TypeError):
        xi.Event(True)


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.parametrize("where", ["main thread", "other thread"])
@pytest.mark.serial
def test_wait_timeout_is_honoured(timeout, where):
    ev = xi.Event()
    if where == "main thread":
        got, seconds = timed(ev.wait, timeout)
    else:
        got, seconds = in_thread(timed, ev.wait, timeout)()
    assert got is False
    assert timeout - 0.001 <= seconds < timeout + 0.45


@pytest.mark.parametrize("timeout", [0, -1, -0.5])
@pytest.mark.serial
def test_wait_with_non_positive_timeout_does_not_wait(timeout):
    ev = xi.Event()
    assert threading.Event().wait(timeout) is False
    got, seconds = timed(ev.wait, timeout)
    assert got is False and seconds < QUICK
    ev.set()
    assert ev.wait(timeout) is True


def test_set_wakes_every_waiting_thread():
    ev = xi.Event()
    waiters = [in_thread(timed, ev.wait, 30) for _ in range(4)]
    time.sleep(0.2)
    assert all(w.thread.is_alive() for w in waiters)
    ev.set()
    results = [w() for w in waiters]
    assert all(got is True and 0.15 <= seconds < 10 for got, seconds in results)


def test_wait_releases_the_gil():
    ev = xi.Event()
    _, during = count_during(ev.wait, 0.5)
    assert during > 1000


# --- across interpreters -------------------------------------------------------------


def test_flag_is_shared_with_a_subinterpreter(interp):
    ev = xi.Event()
    assert interp.run(rf.sync_op, ev, "is_set") == ("ok", False)
    ev.set()
    assert interp.run(rf.sync_op, ev, "is_set") == ("ok", True)
    assert interp.run(rf.sync_op, ev, "wait", 0) == ("ok", True)
    assert interp.run(rf.sync_op, ev, "clear") == ("ok", None)
    assert ev.is_set() is False
    assert interp.run(rf.sync_op, ev, "set") == ("ok", None)
    assert ev.is_set() is True


def test_set_here_wakes_waiters_in_three_interpreters(interps):
    its = interps(3)
    ev = xi.Event()
    started = [xi.Event() for _ in its]
    waits = [call_in_thread(it, rf.started_then, s, ev, "wait", 30)
             for it, s in zip(its, started)]
    assert all(s.wait(10) for s in started)
    time.sleep(0.2)
    assert all(w.thread.is_alive() for w in waits)
    ev.set()
    for w in waits:
        got, seconds = w()
        assert got is True and 0.15 <= seconds < 10


def test_set_in_a_subinterpreter_wakes_main(interp):
    ev = xi.Event()
    setter = threading.Timer(0.2, interp.run, (rf.sync_op, ev, "set"))
    setter.start()
    got, seconds = timed(ev.wait, 30)
    setter.join()
    assert got is True and 0.1 <= seconds < 10


def test_set_in_one_subinterpreter_wakes_another(interps):
    a, b = interps(2)
    ev, started = xi.Event(), xi.Event()
    wait = call_in_thread(a, rf.started_then, started, ev, "wait", 30)
    assert started.wait(10)
    time.sleep(0.2)
    assert wait.thread.is_alive()
    assert b.run(rf.sync_op, ev, "set") == ("ok", None)
    got, _ = wait()
    assert got is True


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.serial
def test_wait_timeout_in_a_subinterpreter(interp, timeout):
    ev = xi.Event()
    kind, value, seconds = interp.run(rf.timed_call, ev, "wait", timeout)
    assert (kind, value) == ("ok", False)
    assert timeout - 0.001 <= seconds < timeout + 0.45


@pytest.mark.parametrize("factory", [threading.Event, xi.Event],
                         ids=["threading", "extrainterpreters"])
def test_set_then_clear_still_wakes_a_waiting_thread(factory):
    """set() wakes every thread waiting at that moment, even if clear() follows at
    once (threading.Event's documented behaviour)."""
    ev = factory()
    waiters = [in_thread(ev.wait, 2) for _ in range(3)]
    time.sleep(0.2)
    assert all(w.thread.is_alive() for w in waiters)
    ev.set()
    ev.clear()
    assert [w(10) for w in waiters] == [True] * 3


def test_set_then_clear_still_wakes_a_waiting_interpreter(interp):
    ev, started = xi.Event(), xi.Event()
    wait = call_in_thread(interp, rf.started_then, started, ev, "wait", 2)
    assert started.wait(10)
    time.sleep(0.2)
    ev.set()
    ev.clear()
    got, _ = wait()
    assert got is True
