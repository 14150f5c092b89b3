"""Ending waits on the primitives early: Ctrl-C in the main thread (checked in
subprocesses), interrupt() of a call waiting in a subinterpreter, and closing an
interpreter while a call waits there. Nothing may stay half-acquired."""
import textwrap
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit
from helpers import parse, wait_until

# --- Ctrl-C in the main thread ---------------------------------------------------------

HEAD = """
import os, signal, sys, threading, time
import extrainterpreters as xi
sys.path.insert(0, {tests!r})
import remote_funcs as rf

sent = []

def ctrl_c():
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)

def report(key, value):
    print(key, value, flush=True)

def blocked(op):
    threading.Timer(0.3, ctrl_c).start()
    try:
        op()
        report("KI", "none")
    except KeyboardInterrupt:
        report("KI", time.monotonic() - sent[0])

interp = xi.Interpreter().start()
"""

TAIL = """
interp.close()
report("END", "ok")
"""

SCENARIOS = {
    "Lock": """
lock = xi.Lock()
acquired, release = xi.Event(), xi.Event()
holder = interp.call_in_thread(rf.hold_until, lock, acquired, release)
acquired.wait(10)
blocked(lock.acquire)
report("CHECK-held-by-holder", lock.locked())
release.set()
holder.join(30)
report("CHECK-holder-ok", interp.result() is True)
report("CHECK-free", not lock.locked())
report("CHECK-usable", lock.acquire(timeout=5))
""",
    "Lock-timeout": """
lock = xi.Lock()
lock.acquire()
blocked(lambda: lock.acquire(timeout=30))
lock.release()
report("CHECK-free", not lock.locked())
""",
    "RLock": """
r = xi.RLock()
acquired, release = xi.Event(), xi.Event()
holder = interp.call_in_thread(rf.hold_until, r, acquired, release)
acquired.wait(10)
blocked(r.acquire)
report("CHECK-not-owned", not r._is_owned())
release.set()
holder.join(30)
report("CHECK-holder-ok", interp.result() is True)
report("CHECK-free", r.acquire(False))
r.release()
report("CHECK-released", not r._is_owned())
""",
    "Event": """
ev = xi.Event()
blocked(ev.wait)
report("CHECK-unset", not ev.is_set())
blocked(lambda: ev.wait(30))
ev.set()
report("CHECK-set", ev.wait(0))
""",
    "Semaphore": """
sem = xi.Semaphore(0)
blocked(sem.acquire)
report("CHECK-value-still-0", not sem.acquire(False))
sem.release()
report("CHECK-one", sem.acquire(False))
report("CHECK-then-0", not sem.acquire(False))
""",
    "BoundedSemaphore": """
sem = xi.BoundedSemaphore(1)
sem.acquire()
blocked(lambda: sem.acquire(timeout=30))
sem.release()
report("CHECK-back-to-1", sem.acquire(False))
report("CHECK-then-0", not sem.acquire(False))
sem.release()
try:
    sem.release()
    report("CHECK-bounded", False)
except ValueError:
    report("CHECK-bounded", True)
""",
    "Condition-RLock": """
r = xi.RLock()
cond = xi.Condition(r)
try:
    with cond:
        blocked(cond.wait)
        report("CHECK-owned-after", r._is_owned())
        report("CHECK-one-level", r.acquire(False))
        r.release()
    report("CHECK-with-exited", True)
except RuntimeError as e:
    report("CHECK-with-exited", repr(e))
report("CHECK-free", not r.locked())
""",
    "Condition-Lock": """
lock = xi.Lock()
cond = xi.Condition(lock)
try:
    with cond:
        blocked(lambda: cond.wait(30))
        report("CHECK-held-after", lock.locked())
    report("CHECK-with-exited", True)
except RuntimeError as e:
    report("CHECK-with-exited", repr(e))
report("CHECK-free", not lock.locked())
# the interrupted waiter left the queue: notify(1) reaches a new one
ready = threading.Event()
got = []
def waiter():
    with cond:
        ready.set()
        got.append(cond.wait(10))
t = threading.Thread(target=waiter)
t.start()
ready.wait(10)
with cond:
    cond.notify(1)
t.join(20)
report("CHECK-notify-reaches-new-waiter", got == [True])
""",
    "Condition-wait_for": """
cond = xi.Condition()
with cond:
    blocked(lambda: cond.wait_for(lambda: False))
    report("CHECK-can-notify", cond.notify() is None)
report("CHECK-free", cond.acquire(False))
cond.release()
""",
    "Barrier": """
b = xi.Barrier(2)
blocked(b.wait)
report("CHECK-nobody-waiting", b.n_waiting == 0)
b.reset()
w = interp.call_in_thread(rf.barrier_wait_outcome, b, 30)
report("CHECK-usable-after-reset", b.wait(30) in (0, 1))
w.join(30)
report("CHECK-other-passed", interp.result()[0] == "ok")
""",
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.serial
def test_ctrl_c_ends_a_wait_in_the_main_thread(run_py, scenario):
    import os
    tests = os.path.dirname(os.path.abspath(__file__))
    code = HEAD.format(tests=tests) + SCENARIOS[scenario] + TAIL
    proc = run_py(textwrap.dedent(code), timeout=120)
    assert_clean_exit(proc)
    kis = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("KI ")]
    assert kis, proc.stdout + proc.stderr
    for ki in kis:
        assert ki != "none", f"the wait was not interrupted:\n{proc.stdout}"
        assert float(ki) < 0.5, f"KeyboardInterrupt came {ki} s after the signal"
    res = parse(proc.stdout)
    checks = {k: v for k, v in res.items() if k.startswith("CHECK-")}
    assert checks, proc.stdout
    assert all(v == "True" for v in checks.values()), checks
    assert res.get("END") == "ok", proc.stdout + proc.stderr


# --- interrupt() of a call waiting in a subinterpreter -----------------------------------


def blocked_call(kind):
    """(primitive, started event, function and args of a call that blocks on it,
    check after the interruption)."""
    started = xi.Event()
    if kind == "Lock":
        lock = xi.Lock()
        lock.acquire()

        def check():
            assert lock.locked()
            lock.release()
            assert lock.acquire(False) is True  # nobody else took it

        return started, (rf.started_then, started, lock, "acquire"), check
    if kind == "Lock-timeout":
        lock = xi.Lock()
        lock.acquire()

        def check():
            lock.release()
            assert not lock.locked()

        return started, (rf.started_then, started, lock, "acquire", True, 60), check
    if kind == "RLock":
        r = xi.RLock()
        r.acquire()

        def check():
            r.release()
            assert r.acquire(False) is True
            r.release()
            assert not r.locked()

        return started, (rf.started_then, started, r, "acquire"), check
    if kind == "Event":
        ev = xi.Event()

        def check():
            assert not ev.is_set()

        return started, (rf.started_then, started, ev, "wait"), check
    if kind == "Semaphore":
        sem = xi.Semaphore(0)

        def check():
            assert sem.acquire(False) is False
            sem.release()
            assert sem.acquire(False) is True

        return started, (rf.started_then, started, sem, "acquire"), check
    if kind == "Condition":
        r = xi.RLock()
        cond = xi.Condition(r)

        def check():
            # the interrupted call left its `with cond:` block: the lock is free
            assert wait_until(lambda: not r.locked(), 5)
            with cond:
                cond.notify()

        return started, (rf.started_then_cond_wait, started, cond), check
    if kind == "Barrier":
        b = xi.Barrier(2)

        def check():
            assert b.n_waiting == 0

        return started, (rf.started_then, started, b, "wait"), check
    raise ValueError(kind)


KINDS = ["Lock", "Lock-timeout", "RLock", "Event", "Semaphore", "Condition", "Barrier"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.serial
def test_interrupt_ends_a_wait_in_a_subinterpreter(interp, kind):
    started, call, check = blocked_call(kind)
    thread = interp.call_in_thread(*call)
    assert started.wait(10)
    time.sleep(0.2)
    assert thread.is_alive(), "the call did not block"
    t0 = time.monotonic()
    interp.interrupt()
    thread.join(10)
    assert not thread.is_alive(), "interrupt() did not end the wait"
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(KeyboardInterrupt):
        interp.result()
    check()
    assert interp.run(rf.add, 1, 2) == 3


@pytest.mark.serial
def test_an_interrupt_taken_by_a_wait_leaves_the_eval_loop_fast(interps):
    # The wait takes the armed interrupt itself, clearing the asynchronous exception
    # (PyThreadState_SetAsyncExc(id, NULL)). On 3.12 that left the interpreter's eval
    # breaker on for good: every backward jump of every thread there went through the
    # slow path (a tight loop 1.3-1.6 times slower). Loops timed in turn in that
    # interpreter and in one never interrupted, best of many.
    import interrupt_funcs as inf

    interrupted, fresh = interps(2)
    started, call, check = blocked_call("Lock")
    thread = interrupted.call_in_thread(*call)
    assert started.wait(10)
    time.sleep(0.1)
    interrupted.interrupt()
    thread.join(10)
    with pytest.raises(KeyboardInterrupt):
        interrupted.result()
    check()
    # The defect is for good: it shows in every measurement. Two interpreters' best of
    # 25 loops can also differ by that much once on a busy machine (seen on 3.13.18
    # with PYTHONMALLOC=pymalloc_debug, with and without the change the test guards),
    # so the test fails only when three measurements in a row all find it slow.
    seen = []
    for _ in range(3):
        times = {interrupted: [], fresh: []}
        for _ in range(25):
            for it in times:
                times[it].append(it.call(inf.loop_time))
        slow, base = min(times[interrupted]), min(times[fresh])
        seen.append(f"{slow * 1e3:.1f} ms after the interrupt, {base * 1e3:.1f} ms")
        # (the defect measured 2.3 times here; the bound leaves room for a noisy machine)
        if slow < base * 1.35:
            break
    else:
        raise AssertionError("; ".join(seen))


def test_interrupt_ends_waits_in_two_threads_of_the_interpreter(interp):
    lock = xi.Lock()
    lock.acquire()
    ev = xi.Event()
    caught = []

    def worker(func, *args):
        try:
            interp.run(func, *args)
        except KeyboardInterrupt:
            caught.append(func.__name__)

    threads = [threading.Thread(target=worker, args=(rf.sync_acquire, lock)),
               threading.Thread(target=worker, args=(rf.timed_call, ev, "wait"))]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert all(t.is_alive() for t in threads)
    interp.interrupt()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert sorted(caught) == ["sync_acquire", "timed_call"]
    assert lock.locked()
    lock.release()


def test_interrupt_does_not_reach_waits_in_other_interpreters(interps):
    a, b = interps(2)
    ev = xi.Event()
    sa, sb = xi.Event(), xi.Event()
    ta = a.call_in_thread(rf.started_then, sa, ev, "wait", 30)
    tb = b.call_in_thread(rf.started_then, sb, ev, "wait", 30)
    assert sa.wait(10) and sb.wait(10)
    time.sleep(0.1)
    a.interrupt()
    ta.join(10)
    assert not ta.is_alive()
    time.sleep(0.2)
    assert tb.is_alive(), "interrupt() of one interpreter ended a wait in another"
    ev.set()
    tb.join(10)
    got, _ = b.result()
    assert got is True
    with pytest.raises(KeyboardInterrupt):
        a.result()


# --- closing an interpreter while a call waits --------------------------------------------


@pytest.mark.parametrize("kind", ["Lock", "Event", "Condition"])
def test_close_while_a_call_waits_raises_until_interrupted(kind):
    it = xi.Interpreter().start()
    started, call, check = blocked_call(kind)
    thread = it.call_in_thread(*call)
    try:
        assert started.wait(10)
        time.sleep(0.1)
        with pytest.raises(xi.InterpreterError):
            it.close()
        assert thread.is_alive()  # the failed close() left the call alone
        it.interrupt()
        thread.join(10)
        assert not thread.is_alive()
        it.close()
        assert it.intno is None
        check()
    finally:
        if thread.is_alive():
            it.interrupt()
            thread.join(10)
        it.close()
