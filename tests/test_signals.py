"""Ctrl-C, interrupt() and process exit. Signal and exit behaviour is checked in
subprocesses so that a failure cannot take the test run down with it."""
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit
from helpers import parse

# Shared head of the subprocess scripts: a pure-Python busy loop defined in __main__
# that leaves a marker file when it is ended by KeyboardInterrupt. The try statement
# is in the caller's frame: CPython 3.14's compiler leaves a loop's backward jump out
# of the enclosing try's exception table, so an interruption that lands on it would
# escape a try in the loop's own function.
HEAD = """
import os, signal, sys, threading, time
import extrainterpreters as xi

MARKER = sys.argv[1]

def spin(seconds):
    end = time.monotonic() + seconds
    n = 0
    while True:  # see remote_funcs.busy about calling time.monotonic() rarely
        n += 1
        if n % 4096 == 0 and time.monotonic() > end:
            return n

def busy_loop(seconds, marker):
    try:
        open(marker + ".began", "w").close()
        return spin(seconds)
    except KeyboardInterrupt:
        with open(marker, "w") as f:
            f.write("interrupted")
        raise

sent = []

def ctrl_c():
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)

def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pred()

def ctrl_c_once_begun(marker, delay=0.3):
    # Ctrl-C while the target still rebuilds the arguments abandons the call unmade:
    # wait for its own code to run (a slow build may take long over the arguments)
    wait_until(lambda: os.path.exists(marker + ".began"), 30)
    time.sleep(delay)
    ctrl_c()

interp = xi.Interpreter().start()
print("WARM", interp.run(len, "ab"), flush=True)
"""

TAIL = """
print("MARKER", wait_until(lambda: os.path.exists(MARKER)), flush=True)
print("IDLE", wait_until(lambda: not interp.is_running()), flush=True)
print("AFTER", interp.run(len, "abcd"), flush=True)
interp.close()
print("END", time.monotonic() - T0, flush=True)
"""


def check_common(proc, max_delay=0.5):
    assert_clean_exit(proc)
    res = parse(proc.stdout)
    assert "KI" in res, f"no KeyboardInterrupt in the caller:\n{proc.stdout}{proc.stderr}"
    delay = float(res["KI"])
    assert delay < max_delay, f"KeyboardInterrupt came {delay:.3f} s after the signal"
    assert res["MARKER"] == "True", "the call in the interpreter was not interrupted"
    assert res["IDLE"] == "True"
    assert res["AFTER"] == "4", "the interpreter is not usable afterwards"
    assert float(res["END"]) < 20
    return res


@pytest.mark.serial
def test_ctrl_c_while_waiting_in_run(run_py, tmp_path):
    code = HEAD + """
threading.Thread(target=ctrl_c_once_begun, args=(MARKER,)).start()
T0 = time.monotonic()
try:
    interp.run(busy_loop, 30, MARKER)
    print("NOT-INTERRUPTED", flush=True)
except KeyboardInterrupt:
    print("KI", time.monotonic() - sent[0], flush=True)
""" + TAIL
    proc = run_py(code, timeout=90, args=[str(tmp_path / "marker")])
    check_common(proc)


@pytest.mark.serial
def test_ctrl_c_while_waiting_in_join(run_py, tmp_path):
    code = HEAD + """
assert interp.run_in_thread(busy_loop, 30, MARKER) is True
threading.Thread(target=ctrl_c_once_begun, args=(MARKER,)).start()
T0 = time.monotonic()
try:
    interp.join()
    print("NOT-INTERRUPTED", flush=True)
except KeyboardInterrupt:
    print("KI", time.monotonic() - sent[0], flush=True)
print("DONE", wait_until(interp.done), flush=True)
try:
    interp.result()
    print("RESULT value", flush=True)
except KeyboardInterrupt:
    print("RESULT KeyboardInterrupt", flush=True)
print("OPEN", interp.intno == interp.id, flush=True)
""" + TAIL
    proc = run_py(code, timeout=90, args=[str(tmp_path / "marker")])
    res = check_common(proc)
    assert res["DONE"] == "True"
    assert res["RESULT"] == "KeyboardInterrupt"
    assert res["OPEN"] == "True"  # an interrupted join does not close


@pytest.mark.serial
def test_ctrl_c_second_time(run_py, tmp_path):
    # the interpreter survives an interrupted call and can be interrupted again
    code = HEAD + """
T0 = time.monotonic()
delays = []
for i in range(2):
    marker = MARKER + str(i)
    threading.Thread(target=ctrl_c_once_begun, args=(marker,)).start()
    try:
        interp.run(busy_loop, 30, marker)
    except KeyboardInterrupt:
        delays.append(time.monotonic() - sent[-1])
    wait_until(lambda: os.path.exists(marker))
    wait_until(lambda: not interp.is_running())
if all(os.path.exists(MARKER + str(i)) for i in range(2)):
    open(MARKER, "w").close()
print("KI", max(delays) if len(delays) == 2 else 99, flush=True)
""" + TAIL
    proc = run_py(code, timeout=120, args=[str(tmp_path / "marker")])
    check_common(proc)


@pytest.mark.slow
@pytest.mark.serial
def test_ctrl_c_while_call_is_blocked_in_c(run_py, tmp_path):
    # the caller does not wait for time.sleep to return; the interpreter notices
    # the interruption once it is back in Python
    code = HEAD + """
def sleep_then_spin(seconds):
    time.sleep(seconds)
    while True:  # back in Python: the interruption must land here
        pass

def sleeper(seconds, marker):
    try:
        open(marker + ".began", "w").close()
        sleep_then_spin(seconds)
    except KeyboardInterrupt:
        with open(marker, "w") as f:
            f.write("interrupted")
        raise

threading.Thread(target=ctrl_c_once_begun, args=(MARKER,)).start()
T0 = time.monotonic()
try:
    interp.run(sleeper, 2.0, MARKER)
    print("NOT-INTERRUPTED", flush=True)
except KeyboardInterrupt:
    print("KI", time.monotonic() - sent[0], flush=True)
""" + TAIL
    proc = run_py(code, timeout=90, args=[str(tmp_path / "marker")])
    check_common(proc)


# The target rebuilds the arguments for 4 s (in Python, where the interruption waits
# for the call's own code, or blocked in C): Ctrl-C does not wait for that. The first
# argument's rebuilding makes a directory, which says that decoding has begun.
DECODING = HEAD + """
class Started:
    def __reduce__(self):
        return (os.mkdir, (MARKER + ".decoding",))

class SlowArg:
    def __reduce__(self):
        return (REBUILD, (4.0,))

def record(path, *args):
    open(path, "w").close()

def ctrl_c_when_decoding():
    wait_until(lambda: os.path.exists(MARKER + ".decoding"), 20)
    ctrl_c()

DATA = b"x" * 200_000  # held by the request (out of band) until it is released
refs = sys.getrefcount(DATA)
threading.Thread(target=ctrl_c_when_decoding).start()
T0 = time.monotonic()
try:
    interp.run(record, MARKER + ".ran", Started(), SlowArg(), DATA)
    print("NOT-INTERRUPTED", flush=True)
except KeyboardInterrupt:
    print("KI", time.monotonic() - sent[0], flush=True)
print("IDLE", wait_until(lambda: not interp.is_running(), 30), flush=True)
print("RAN", os.path.exists(MARKER + ".ran"), flush=True)
print("HELD", sys.getrefcount(DATA) - refs, flush=True)
print("AFTER", interp.run(len, "abcd"), flush=True)
interp.close()
print("END", time.monotonic() - T0, flush=True)
"""


@pytest.mark.serial
@pytest.mark.parametrize("rebuild", ["spin", "time.sleep"])
def test_ctrl_c_while_the_target_decodes_the_arguments(run_py, tmp_path, rebuild):
    # (spin: pure Python, defined in HEAD; time.sleep: blocked in C)
    proc = run_py(DECODING.replace("REBUILD", rebuild), timeout=90,
                  args=[str(tmp_path / "marker")])
    assert_clean_exit(proc)
    res = parse(proc.stdout)
    assert "KI" in res, f"no KeyboardInterrupt in the caller:\n{proc.stdout}{proc.stderr}"
    assert float(res["KI"]) < 1.5, f"KeyboardInterrupt came {res['KI']} s after the signal"
    assert res["IDLE"] == "True"
    assert res["RAN"] == "False", "the abandoned call ran after its arguments were rebuilt"
    assert res["HELD"] == "0", "the request was not released"
    assert res["AFTER"] == "4", "the interpreter is not usable afterwards"


@pytest.mark.serial
def test_ctrl_c_at_random_points_of_decoding_and_running(run_py, tmp_path):
    # Ctrl-C lands before, during or after the target rebuilds the arguments, or as the
    # call runs or returns, 40 times: the request is released once, by the caller or by
    # the target (checked under ASan by `make test-asan`), and the interpreter stays
    # usable
    code = HEAD + """
import random, _thread

class SlowArg:
    def __init__(self, seconds):
        self.seconds = seconds
    def __reduce__(self):
        return (spin, (self.seconds,))

def record(path, *args):
    open(path, "w").close()
    return "ran"

rng = random.Random(5)
T0 = time.monotonic()
outcomes = {"KI": 0, "ran": 0, None: 0}
def fire(go, delay):
    go.wait()
    time.sleep(delay)
    _thread.interrupt_main()

for i in range(40):
    go = threading.Event()  # (set inside the try: the delay may be about 0)
    timer = threading.Thread(target=fire, args=(go, rng.uniform(0.0, 0.05)))
    timer.start()
    out = None
    try:
        go.set()
        try:
            # (decoding ends before, about when, or after the caller gives up)
            out = interp.run(record, MARKER + str(i), SlowArg(rng.uniform(0.0, 0.3)),
                             b"x" * rng.choice([10, 100_000]))
        except KeyboardInterrupt:
            out = "KI"
        timer.join()
        time.sleep(0.06)
    except KeyboardInterrupt:
        pass  # it came before the call began or after it had returned
    outcomes[out] += 1
    timer.join()
    wait_until(lambda: not interp.is_running(), 10)
print("OUTCOMES", outcomes["KI"], outcomes["ran"], outcomes[None], flush=True)
print("IDLE", wait_until(lambda: not interp.is_running()), flush=True)
print("AFTER", interp.run(len, "abcd"), flush=True)
interp.close()
print("END", time.monotonic() - T0, flush=True)
"""
    proc = run_py(code, timeout=120, args=[str(tmp_path / "marker")])
    assert_clean_exit(proc)
    res = parse(proc.stdout)
    ki, ran, late = map(int, res["OUTCOMES"].split())
    assert ki + ran + late == 40 and ki > 0, res["OUTCOMES"]
    assert res["IDLE"] == "True"
    assert res["AFTER"] == "4"


@pytest.mark.serial
def test_interrupt_from_other_thread_interrupts_run_in_main(run_py, tmp_path):
    code = HEAD + """
sent.append(None)
def later():
    # (an interrupt that comes while the arguments are rebuilt lands as the call
    # begins, before its try)
    wait_until(lambda: os.path.exists(MARKER + ".began"), 30)
    time.sleep(0.3)
    sent[0] = time.monotonic()
    interp.interrupt()
threading.Thread(target=later).start()
T0 = time.monotonic()
try:
    interp.run(busy_loop, 30, MARKER)
    print("NOT-INTERRUPTED", flush=True)
except KeyboardInterrupt:
    print("KI", time.monotonic() - sent[0], flush=True)
""" + TAIL
    proc = run_py(code, timeout=90, args=[str(tmp_path / "marker")])
    check_common(proc, max_delay=2.0)


def wait_for_file(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        time.sleep(0.01)


# --- interrupt() in-process (the interrupted call runs in a worker thread) ---------------------

def test_interrupt_call_running_in_other_thread(interp, tmp_path):
    marker = tmp_path / "marker"
    caught = []

    started = tmp_path / "started"

    def worker():
        try:
            interp.run(rf.busy_marking_interrupt, 30, str(marker), str(started))
        except KeyboardInterrupt as e:
            caught.append(e)

    t = threading.Thread(target=worker)
    t.start()
    wait_for_file(started)
    t0 = time.monotonic()
    interp.interrupt()
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - t0 < 5
    assert len(caught) == 1
    assert marker.exists()
    assert interp.run(rf.add, 1, 2) == 3


def test_interrupt_threaded_call(interp, tmp_path):
    marker = tmp_path / "marker"
    started = tmp_path / "started"
    interp.run_in_thread(rf.busy_marking_interrupt, 30, str(marker), str(started))
    wait_for_file(started)
    deadline = time.monotonic() + 10
    interp.interrupt()
    while not interp.done():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(KeyboardInterrupt):
        interp.result()
    assert marker.exists()
    assert interp.run(rf.add, 1, 2) == 3


def test_interrupt_when_idle_leaves_nothing_pending(interp):
    interp.interrupt()
    # a later call is not hit by a stale interruption
    assert interp.run(rf.busy, 0.3) > 0
    t = interp.call_in_thread(rf.busy, 0.3)
    t.join(10)
    assert interp.result() > 0


def test_interrupt_only_hits_its_interpreter(tmp_path):
    a = xi.Interpreter().start()
    b = xi.Interpreter().start()
    try:
        marker = tmp_path / "a-marker"
        started = tmp_path / "started"
        a.run_in_thread(rf.busy_marking_interrupt, 30, str(marker), str(started))
        b.run_in_thread(rf.busy, 1.0)
        wait_for_file(started)
        a.interrupt()
        b.join(30)
        assert isinstance(b.result(), int)  # b ran to the end
        a.join(30)
        with pytest.raises(KeyboardInterrupt):
            a.result()
        assert marker.exists()
    finally:
        a.close()
        b.close()


def test_interrupt_before_start_or_after_close_raises():
    it = xi.Interpreter()
    with pytest.raises(xi.InterpreterError):
        it.interrupt()
    it.start()
    it.close()
    with pytest.raises(xi.InterpreterError):
        it.interrupt()


# --- process exit with live interpreters ---------------------------------------------------------

def test_exit_with_idle_and_running_interpreters(run_py, tmp_path):
    marker = tmp_path / "finished"
    code = """
    import sys, time
    import extrainterpreters as xi

    def slow(path):
        time.sleep(0.5)
        with open(path, "w") as f:
            f.write("finished")
        return 1

    idle = xi.Interpreter().start()
    idle.run(len, "x")
    busy = xi.Interpreter().start()
    busy.run_in_thread(slow, sys.argv[1])
    print("LEAVING", flush=True)
    """
    t0 = time.monotonic()
    proc = run_py(code, timeout=60, args=[str(marker)])
    assert_clean_exit(proc)
    assert proc.stdout.splitlines() == ["LEAVING"]
    assert marker.exists(), "the running call did not finish before exit"
    assert time.monotonic() - t0 < 30


def test_exit_while_pure_python_call_runs(run_py, tmp_path):
    marker = tmp_path / "finished"
    code = """
    import sys, time
    import extrainterpreters as xi

    def spin(path):
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            pass
        with open(path, "w") as f:
            f.write("finished")

    it = xi.Interpreter().start()
    t = it.call_in_thread(spin, sys.argv[1])
    """
    proc = run_py(code, timeout=60, args=[str(marker)])
    assert_clean_exit(proc)
    assert marker.exists()


def test_exit_interrupts_a_daemon_threads_call(run_py, tmp_path):
    """Exit does not wait for a daemon thread, nor for its call: the call is interrupted
    (here as its sleep returns) and the process exits cleanly."""
    marker = tmp_path / "outcome"
    code = """
    import os, sys, threading, time
    import extrainterpreters as xi

    def slow(path):
        try:
            open(path + ".started", "w").close()
            time.sleep(0.5)
            outcome = "finished"
        except KeyboardInterrupt:
            outcome = "interrupted"
        with open(path, "w") as f:
            f.write(outcome)

    it = xi.Interpreter().start()
    threading.Thread(target=it.run, args=(slow, sys.argv[1]), daemon=True).start()
    while not os.path.exists(sys.argv[1] + ".started"):
        time.sleep(0.01)
    """
    proc = run_py(code, timeout=60, args=[str(marker)])
    assert_clean_exit(proc)
    assert marker.read_text() == "interrupted"


def test_exit_with_nested_interpreter_left_open(run_py):
    code = """
    import extrainterpreters as xi

    def make_inner():
        import __main__
        import extrainterpreters as xi
        # kept alive by the interpreter's own __main__
        __main__.kept = xi.Interpreter().start()
        __main__.kept.run(len, "abc")
        return __main__.kept.id

    outer = xi.Interpreter().start()
    inner_id = outer.run(make_inner)
    print("LIVE", inner_id in {i.id for i in xi.list_all()}, flush=True)
    """
    proc = run_py(code, timeout=60)
    assert_clean_exit(proc)
    assert proc.stdout.splitlines() == ["LIVE True"]


def test_exit_with_many_open_interpreters(run_py):
    code = """
    import extrainterpreters as xi
    keep = [xi.Interpreter().start() for _ in range(8)]
    print(sum(it.run(len, "ab") for it in keep), flush=True)
    """
    proc = run_py(code, timeout=60)
    assert_clean_exit(proc)
    assert proc.stdout.splitlines() == ["16"]


def test_exit_after_unhandled_exception_with_open_interpreters(run_py):
    code = """
    import extrainterpreters as xi
    it = xi.Interpreter().start()
    it.run_in_thread(sum, [1, 2])
    raise RuntimeError("caller fails")
    """
    proc = run_py(code, timeout=60)
    out = proc.stdout + proc.stderr
    assert "Fatal Python error" not in out, out
    assert proc.returncode == 1, out
    assert "RuntimeError: caller fails" in proc.stderr


def test_exit_via_sys_exit_with_open_interpreters(run_py):
    code = """
    import sys
    import extrainterpreters as xi
    it = xi.Interpreter().start()
    it.run(len, "a")
    sys.exit(7)
    """
    proc = run_py(code, timeout=60)
    out = proc.stdout + proc.stderr
    assert "Fatal Python error" not in out, out
    assert proc.returncode == 7, out
