"""Barrier: threading.Barrier across interpreters; its action runs in the interpreter
of the thread that completes the barrier."""
import functools
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from helpers import call_in_thread, in_thread, wait_until

BROKEN = threading.BrokenBarrierError


def pass_once(its, barrier, main_too=False):
    """Every interpreter in ``its`` (and the main thread) passes ``barrier`` once;
    returns the indices got."""
    waits = [call_in_thread(it, rf.barrier_wait_outcome, barrier, 30) for it in its]
    here = [barrier.wait(30)] if main_too else []
    outcomes = [w() for w in waits]
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    return sorted(here + [i for _, i in outcomes])


# --- one interpreter ---------------------------------------------------------------------


def test_barrier_properties():
    b = xi.Barrier(3)
    assert b.parties == 3
    assert b.n_waiting == 0
    assert b.broken is False
    assert xi.Barrier(parties=2, action=None, timeout=None).parties == 2


@pytest.mark.parametrize("parties", [0, -1])
def test_barrier_needs_a_party(parties):
    with pytest.raises(ValueError):
        xi.Barrier(parties)


def test_single_party_passes_at_once():
    q = xi.Queue()
    b = xi.Barrier(1, action=functools.partial(rf.put_current_interp_id, q))
    assert b.wait() == 0
    assert b.wait(0) == 0
    assert b.n_waiting == 0 and not b.broken
    assert [q.get_nowait(), q.get_nowait()] == [xi._xi.current_id()] * 2


def test_threads_of_one_interpreter_pass_together():
    b = xi.Barrier(3)
    waits = [in_thread(b.wait, 30) for _ in range(2)]
    assert wait_until(lambda: b.n_waiting == 2)
    here = b.wait(30)
    assert sorted([here] + [w() for w in waits]) == [0, 1, 2]
    assert b.n_waiting == 0 and not b.broken
    # and again: the barrier refills
    waits = [in_thread(b.wait, 30) for _ in range(2)]
    assert sorted([b.wait(30)] + [w() for w in waits]) == [0, 1, 2]


@pytest.mark.parametrize("timeout", [0.05, 0.2])
@pytest.mark.serial
def test_wait_timeout_breaks_the_barrier(timeout):
    b = xi.Barrier(2)
    t0 = time.monotonic()
    with pytest.raises(BROKEN):
        b.wait(timeout)
    seconds = time.monotonic() - t0
    assert timeout - 0.001 <= seconds < timeout + 0.45
    assert b.broken is True
    assert b.n_waiting == 0
    with pytest.raises(BROKEN):
        b.wait(0.01)
    b.reset()
    assert b.broken is False


@pytest.mark.serial
def test_default_timeout():
    b = xi.Barrier(2, timeout=0.1)
    t0 = time.monotonic()
    with pytest.raises(BROKEN):
        b.wait()
    assert 0.099 <= time.monotonic() - t0 < 0.6
    assert b.broken


@pytest.mark.serial
def test_explicit_timeout_overrides_the_default():
    b = xi.Barrier(2, timeout=30)
    t0 = time.monotonic()
    with pytest.raises(BROKEN):
        b.wait(0.05)
    assert time.monotonic() - t0 < 0.6


def test_abort_wakes_waiting_threads():
    b = xi.Barrier(3)
    waits = [in_thread(b.wait, 30) for _ in range(2)]
    assert wait_until(lambda: b.n_waiting == 2)
    b.abort()
    for w in waits:
        with pytest.raises(BROKEN):
            w()
    assert b.broken
    assert b.n_waiting == 0


def test_reset_wakes_waiting_threads_and_leaves_it_usable():
    b = xi.Barrier(3)
    waits = [in_thread(b.wait, 30) for _ in range(2)]
    assert wait_until(lambda: b.n_waiting == 2)
    b.reset()
    for w in waits:
        with pytest.raises(BROKEN):
            w()
    assert not b.broken
    waits = [in_thread(b.wait, 30) for _ in range(2)]
    assert sorted([b.wait(30)] + [w() for w in waits]) == [0, 1, 2]


def test_action_runs_once_per_pass_in_the_completing_thread():
    q = xi.Queue()
    b = xi.Barrier(2, action=functools.partial(rf.put_current_interp_id, q))
    w = in_thread(b.wait, 30)
    assert wait_until(lambda: b.n_waiting == 1)
    assert b.wait(30) == 1  # this thread completed the barrier
    assert w() == 0
    assert q.get(timeout=10) == xi._xi.current_id()
    assert q.empty()


def test_failing_action_breaks_the_barrier():
    b = xi.Barrier(2, action=functools.partial(rf.raise_in_action, "boom"))
    w = in_thread(b.wait, 30)
    assert wait_until(lambda: b.n_waiting == 1)
    with pytest.raises(ValueError, match="boom"):
        b.wait(30)
    with pytest.raises(BROKEN):
        w()
    assert b.broken
    b.reset()
    assert not b.broken


# --- across interpreters -------------------------------------------------------------


def test_three_interpreters_pass_in_step(interps):
    its = interps(3)
    b = xi.Barrier(3)
    buf = xi.SharedBuffer(3)
    rounds = 20
    waits = [call_in_thread(it, rf.barrier_rounds, b, buf, slot, rounds, 30)
             for slot, it in enumerate(its)]
    results = [w(60) for w in waits]
    for r in range(rounds):
        assert sorted(indices[r] for indices, _ in results) == [0, 1, 2]
    assert all(behind == [] for _, behind in results)
    assert bytes(memoryview(buf)) == bytes([rounds] * 3)
    assert b.n_waiting == 0 and not b.broken


def test_n_waiting_counts_parties_in_other_interpreters(interps):
    its = interps(2)
    b = xi.Barrier(3)
    waits = []
    for k, it in enumerate(its):
        waits.append(call_in_thread(it, rf.barrier_wait_outcome, b, 30))
        assert wait_until(lambda: b.n_waiting == k + 1)
    assert b.wait(30) == 2
    assert sorted(w()[1] for w in waits) == [0, 1]
    assert b.n_waiting == 0


def test_abort_reaches_three_interpreters_and_reset_restores(interps):
    its = interps(3)
    b = xi.Barrier(4)
    waits = [call_in_thread(it, rf.barrier_wait_outcome, b, 30) for it in its]
    assert wait_until(lambda: b.n_waiting == 3)
    b.abort()
    assert [w()[0] for w in waits] == ["BrokenBarrierError"] * 3
    assert b.broken is True
    assert b.n_waiting == 0
    with pytest.raises(BROKEN):
        b.wait(1)
    assert its[0].run(rf.sync_op, b, "broken") == ("ok", True)
    assert its[0].run(rf.barrier_wait_outcome, b, 1)[0] == "BrokenBarrierError"
    b.reset()
    assert b.broken is False
    assert its[1].run(rf.sync_op, b, "broken") == ("ok", False)
    assert pass_once(its, b, main_too=True) == [0, 1, 2, 3]


def test_abort_from_a_subinterpreter(interps):
    a, b_it, aborter = interps(3)
    b = xi.Barrier(3)
    waits = [call_in_thread(it, rf.barrier_wait_outcome, b, 30) for it in (a, b_it)]
    assert wait_until(lambda: b.n_waiting == 2)
    assert aborter.run(rf.sync_op, b, "abort") == ("ok", None)
    assert [w()[0] for w in waits] == ["BrokenBarrierError"] * 2
    assert b.broken
    assert aborter.run(rf.sync_op, b, "reset") == ("ok", None)
    assert not b.broken
    assert pass_once([a, b_it, aborter], b) == [0, 1, 2]


def test_timeout_in_interpreters_breaks_and_reset_restores(interps):
    its = interps(3)
    b = xi.Barrier(3, timeout=0.2)
    waits = [call_in_thread(it, rf.timed_call, b, "wait") for it in its[:2]]
    outcomes = [w() for w in waits]
    assert [kind for kind, _, _ in outcomes] == ["BrokenBarrierError"] * 2
    # the first to time out waited its timeout; the other may have been woken by it
    assert max(seconds for _, _, seconds in outcomes) >= 0.199
    assert all(seconds < 5 for _, _, seconds in outcomes)
    assert b.broken is True
    assert b.n_waiting == 0
    b.reset()
    assert not b.broken
    assert pass_once(its, b) == [0, 1, 2]


@pytest.mark.serial
def test_explicit_timeout_in_a_subinterpreter(interp):
    b = xi.Barrier(2)
    kind, _, seconds = interp.run(rf.timed_call, b, "wait", 0.1)
    assert kind == "BrokenBarrierError"
    assert 0.099 <= seconds < 0.6
    assert b.broken


def test_reset_wakes_interpreters_with_broken_barrier_error(interps):
    its = interps(3)
    b = xi.Barrier(3)
    waits = [call_in_thread(it, rf.barrier_wait_outcome, b, 30) for it in its[:2]]
    assert wait_until(lambda: b.n_waiting == 2)
    b.reset()
    assert [w()[0] for w in waits] == ["BrokenBarrierError"] * 2
    assert not b.broken
    assert pass_once(its, b) == [0, 1, 2]


def test_action_runs_in_the_interpreter_that_completes(interps):
    a, b_it, c = interps(3)
    q = xi.Queue()
    bar = xi.Barrier(3, action=functools.partial(rf.put_current_interp_id, q))
    waits = []
    for k, it in enumerate((a, b_it)):
        waits.append(call_in_thread(it, rf.barrier_wait_with_id, bar, 30))
        assert wait_until(lambda: bar.n_waiting == k + 1)
    assert c.run(rf.barrier_wait_with_id, bar, 30) == (c.id, 2)
    assert q.get(timeout=10) == c.id
    assert sorted(w() for w in waits) == sorted([(a.id, 0), (b_it.id, 1)])
    assert q.empty()

    # next pass: main completes it
    waits = []
    for k, it in enumerate((b_it, c)):
        waits.append(call_in_thread(it, rf.barrier_wait_with_id, bar, 30))
        assert wait_until(lambda: bar.n_waiting == k + 1)
    assert bar.wait(30) == 2
    assert q.get(timeout=10) == xi._xi.current_id()
    assert sorted(w() for w in waits) == sorted([(b_it.id, 0), (c.id, 1)])
    assert q.empty()


def test_failing_action_in_a_subinterpreter(interps):
    a, b_it = interps(2)
    bar = xi.Barrier(2, action=functools.partial(rf.raise_in_action, "boom"))
    w = call_in_thread(a, rf.barrier_wait_outcome, bar, 30)
    assert wait_until(lambda: bar.n_waiting == 1)
    kind, msg = b_it.run(rf.barrier_wait_outcome, bar, 30)
    assert (kind, msg) == ("ValueError", "boom")
    assert w()[0] == "BrokenBarrierError"
    assert bar.broken


def test_broken_barrier_error_is_threadings(interp):
    b = xi.Barrier(2)
    b.abort()
    with pytest.raises(threading.BrokenBarrierError):
        b.wait()
    with pytest.raises(threading.BrokenBarrierError):
        interp.run(b.wait)


@pytest.mark.parametrize("factory", [threading.Barrier, xi.Barrier],
                         ids=["threading", "extrainterpreters"])
def test_timeout_running_out_during_the_action_still_passes(factory):
    """A waiter whose timeout expires while the completing thread runs the action is
    released with the others (as threading's Barrier does)."""
    b = factory(2, action=functools.partial(rf.sleep_then, 0.5, None))
    w = in_thread(b.wait, 0.2)
    assert wait_until(lambda: b.n_waiting == 1)
    assert b.wait(10) == 1
    assert w() == 0
    assert not b.broken


# --- arrivals while the barrier is busy --------------------------------------------------


def test_many_more_threads_than_parties_while_it_drains_and_acts(interps):
    """Parties of two, eight threads in three interpreters: most arrivals find the
    barrier draining or running its action and wait to enter, again and again. Every
    wait passes, in pairs, and nothing breaks."""
    b = xi.Barrier(2, action=rf.noop)
    total = 2000
    tickets = xi.Semaphore(total)
    its = interps(2)
    waits = [call_in_thread(it, rf.barrier_wait_tickets, b, tickets, 3) for it in its]
    here = rf.barrier_wait_tickets(b, tickets, 2)
    indices = here + [i for w in waits for i in w(timeout=120)]
    assert len(indices) == total
    assert indices.count(0) == indices.count(1) == total // 2
    assert not b.broken and b.n_waiting == 0
