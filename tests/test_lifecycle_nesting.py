"""Creating and closing interpreters from the code that runs while another one is
created or closed: its atexit hooks, its threads. Each case runs in a subprocess with
a time limit, so that a deadlock fails the test instead of hanging the run."""
import subprocess

from conftest import assert_clean_exit
from helpers import parse

ATEXIT_CLOSES = """
import extrainterpreters as xi
outer = xi.Interpreter().start()
outer.exec('''
import atexit
import extrainterpreters as xi
inner = xi.Interpreter().start()
assert inner.run(len, "abc") == 3
def close_inner():
    inner.close()
    print("HOOK closed", flush=True)
atexit.register(close_inner)
''')
outer.close()
print("CLOSED", flush=True)
with xi.Interpreter() as again:
    print("AGAIN", again.run(len, "ab"), flush=True)
"""

THREAD_CREATES = """
import extrainterpreters as xi
outer = xi.Interpreter().start()
outer.exec('''
import threading, time
import extrainterpreters as xi
def make():
    time.sleep(0.2)  # as the interpreter closes
    with xi.Interpreter() as it:
        print("THREAD made", it.run(len, "abc"), flush=True)
threading.Thread(target=make).start()
''')
outer.close()
print("CLOSED", flush=True)
with xi.Interpreter() as again:
    print("AGAIN", again.run(len, "ab"), flush=True)
"""


def run_case(run_py, code):
    try:
        proc = run_py(code, timeout=60)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"deadlock: no exit in 60 s\n{e.stdout}{e.stderr}") from None
    assert_clean_exit(proc)
    # nothing went wrong quietly while the interpreters ended
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    return parse(proc.stdout)


def test_atexit_hook_closes_an_interpreter_it_created(run_py):
    res = run_case(run_py, ATEXIT_CLOSES)
    assert res["HOOK"] == "closed"
    assert "CLOSED" in res
    assert res["AGAIN"] == "2"


def test_thread_of_a_closing_interpreter_creates_one(run_py):
    res = run_case(run_py, THREAD_CREATES)
    assert res["THREAD"] == "made 3"
    assert "CLOSED" in res
    assert res["AGAIN"] == "2"
