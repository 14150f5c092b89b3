"""Process exit with threads still waiting: Ctrl-C ends the waits that exit would join,
and exit does not wait for the calls of daemon threads. Each case runs in a subprocess
that is killed if it hangs."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# how long a process may take to exit; a hang is the failure looked for, not speed
BOUND = 20.0

MAKE = {
    "Queue": "xi.Queue()",
    "Lock": "xi.Lock()",
    "RLock": "xi.RLock()",
    "Semaphore": "xi.Semaphore(0)",
    "Event": "xi.Event()",
    "Condition": "xi.Condition()",
    "Barrier": "xi.Barrier(2)",
}

# a statement that blocks on `obj` (the Lock and RLock are held by the main thread)
BLOCK = {
    "Queue": "obj.get()",
    "Lock": "obj.acquire()",
    "RLock": "obj.acquire()",
    "Semaphore": "obj.acquire()",
    "Event": "obj.wait()",
    "Condition": "with obj: obj.wait()",
    "Barrier": "obj.wait()",
}

SUB_THREAD = "import threading\ndef block():\n    {}\nthreading.Thread(target=block).start()\n"


def start(code):
    """Starts ``code`` in a new Python; returns the process once it printed READY."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([TESTS_DIR, env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"no READY: {line!r}\n{out}\n{err}")
    return proc


def finish(proc, sigints=0):
    """Sends up to ``sigints`` SIGINTs, one a second, while the process runs; returns
    (exit status, seconds, stdout, stderr) once it exits, or fails when it does not in BOUND."""
    t0 = time.monotonic()
    sent = 0
    while True:
        try:
            proc.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() - t0 > BOUND:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"still running after {BOUND} s and {sent} SIGINT(s)\n{err[-3000:]}")
            if sent < sigints:
                proc.send_signal(signal.SIGINT)
                sent += 1
    seconds = time.monotonic() - t0
    out, err = proc.communicate()
    assert "Fatal Python error" not in err, err
    assert "Segmentation fault" not in err, err
    return proc.returncode, seconds, out, err


@pytest.mark.parametrize("kind", sorted(MAKE))
def test_ctrl_c_ends_a_subinterpreter_thread_blocked_at_exit(kind):
    """A threading.Thread started inside a subinterpreter waits on a shared object when
    the process exits: closing the interpreter joins it, and one Ctrl-C ends the wait."""
    proc = start(f"""
        import time
        import extrainterpreters as xi
        obj = {MAKE[kind]}
        if {kind!r} in ("Lock", "RLock"):
            obj.acquire()
        it = xi.Interpreter().start()
        it.prepare_main(obj=obj)
        it.exec({SUB_THREAD.format(BLOCK[kind])!r})
        time.sleep(0.3)
        print("READY", flush=True)
    """)
    rc, _, _, err = finish(proc, sigints=3)
    assert "KeyboardInterrupt" in err, err  # the waiting thread was ended by it


def test_ctrl_c_ends_a_main_interpreter_thread_blocked_at_exit():
    """The same in the main interpreter: exit's join of the thread is what Ctrl-C ends,
    as with queue.Queue."""
    proc = start("""
        import threading, time
        import extrainterpreters as xi
        q = xi.Queue()
        it = xi.Interpreter().start()
        threading.Thread(target=q.get).start()
        time.sleep(0.3)
        print("READY", flush=True)
    """)
    finish(proc, sigints=3)


def test_exit_interrupts_a_daemon_threads_call():
    """A daemon thread inside interp.run() does not hold exit: its call is interrupted
    at exit, as the daemon thread itself would be abandoned."""
    proc = start("""
        import threading, time
        import extrainterpreters as xi
        import remote_funcs as rf
        it = xi.Interpreter().start()
        threading.Thread(target=it.run, args=(rf.busy, 3600), daemon=True).start()
        while not it.is_running():
            time.sleep(0.01)
        print("READY", flush=True)
    """)
    rc, seconds, out, err = finish(proc)
    assert rc == 0, err


def test_exit_interrupts_a_daemon_threads_call_blocked_on_a_shared_object():
    proc = start("""
        import threading, time
        import extrainterpreters as xi
        import remote_funcs as rf
        q = xi.Queue()
        it = xi.Interpreter().start()
        threading.Thread(target=it.run, args=(rf.queue_get, q, 3600), daemon=True).start()
        while not it.is_running():
            time.sleep(0.01)
        print("READY", flush=True)
    """)
    rc, seconds, out, err = finish(proc)
    assert rc == 0, err


def test_exit_interrupts_a_daemon_thread_that_calls_again_and_again():
    """A daemon thread that catches the interruption and calls again is interrupted
    again, until the interpreter closes."""
    proc = start("""
        import threading, time
        import extrainterpreters as xi
        import remote_funcs as rf
        it = xi.Interpreter().start()
        def loop():
            while True:
                try:
                    it.run(rf.busy, 3600)
                except KeyboardInterrupt:
                    pass
                except xi.InterpreterError:
                    return  # closed
        threading.Thread(target=loop, daemon=True).start()
        while not it.is_running():
            time.sleep(0.01)
        print("READY", flush=True)
    """)
    rc, seconds, out, err = finish(proc)
    assert rc == 0, err


def test_exit_still_waits_for_a_non_daemon_threads_call():
    """Only daemon threads' calls are interrupted: exit joins a non-daemon thread, and
    so lets its call finish."""
    proc = start("""
        import os, threading, time
        import extrainterpreters as xi
        import remote_funcs as rf
        it = xi.Interpreter().start()
        def work():
            print("RESULT", it.run(rf.sleep_then, 1.0, 42), flush=True)
        threading.Thread(target=work).start()
        while not it.is_running():
            time.sleep(0.01)
        print("READY", flush=True)
    """)
    rc, seconds, out, err = finish(proc)
    assert rc == 0, err
    assert "RESULT 42" in out, (out, err)
