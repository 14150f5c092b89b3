"""Creating and closing interpreters from the code that runs while another one is
created or closed: its atexit hooks, its threads. Each case runs in a subprocess with
a time limit, so that a deadlock fails the test instead of hanging the run."""
import subprocess
import sys

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

# A finalizer of the closing interpreter's __main__ (run by Py_EndInterpreter, which
# on 3.12 runs under the lock that orders interpreters' creation and end) closes an
# interpreter it made.
FINALIZER_CLOSES = """
import extrainterpreters as xi
outer = xi.Interpreter().start()
outer.exec('''
import extrainterpreters as xi
class Holder:
    def __init__(self):
        self.inner = xi.Interpreter().start()
        assert self.inner.run(len, "abc") == 3
    def __del__(self):
        self.inner.close()
        print("DEL closed", flush=True)
holder = Holder()
''')
outer.close()
print("CLOSED", flush=True)
with xi.Interpreter() as again:
    print("AGAIN", again.run(len, "ab"), flush=True)
"""

# Creating an interpreter there: refused on 3.12, where it would wait for the lock.
FINALIZER_CREATES = """
import extrainterpreters as xi
outer = xi.Interpreter().start()
outer.exec('''
import sys
from extrainterpreters import _xi
class Maker:
    def __init__(self):
        # (at that point the module's names and sys.path are gone)
        self.create = _xi.create
        self.path = list(sys.path)
    def __del__(self):
        try:
            self.create(self.path).close()
            print("DEL made", flush=True)
        except Exception as e:
            print("DEL refused", type(e).__name__, flush=True)
maker = Maker()
''')
outer.close()
print("CLOSED", flush=True)
with xi.Interpreter() as again:
    print("AGAIN", again.run(len, "ab"), flush=True)
"""

# Its own thread (which ending it joins) and a finalizer of its __main__ (which ending
# it runs) close the closing interpreter: refused, as while it runs, since waiting
# there for it to end would wait for themselves.
THREAD_CLOSES_ITS_OWN = """
import extrainterpreters as xi
outer = xi.Interpreter().start()
outer.exec('''
import threading, time
import extrainterpreters as xi
me = xi.get_current()
def close_me():
    time.sleep(0.3)  # as the interpreter closes
    try:
        me.close()
        print("THREAD closed", flush=True)
    except xi.InterpreterError as e:
        print("THREAD refused", type(e).__name__, flush=True)
threading.Thread(target=close_me).start()
''')
outer.close()
print("CLOSED", flush=True)
with xi.Interpreter() as again:
    print("AGAIN", again.run(len, "ab"), flush=True)
"""

FINALIZER_CLOSES_ITS_OWN = """
import extrainterpreters as xi
outer = xi.Interpreter().start()
outer.exec('''
import extrainterpreters as xi
class Holder:
    def __init__(self):
        self.me = xi.get_current()
        self.error = xi.InterpreterError
    def __del__(self):
        try:
            self.me.close()
            print("DEL closed", flush=True)
        except self.error as e:
            print("DEL refused", type(e).__name__, flush=True)
holder = Holder()
''')
outer.close()
print("CLOSED", flush=True)
with xi.Interpreter() as again:
    print("AGAIN", again.run(len, "ab"), flush=True)
"""


def run_case(run_py, code, timeout=60):
    try:
        proc = run_py(code, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"deadlock: no exit in {timeout} s\n{e.stdout}{e.stderr}") from None
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


def test_finalizer_of_a_closing_interpreter_closes_one_it_made(run_py):
    res = run_case(run_py, FINALIZER_CLOSES, timeout=30)
    assert res["DEL"] == "closed"
    assert "CLOSED" in res
    assert res["AGAIN"] == "2"


def test_finalizer_of_a_closing_interpreter_creates_one(run_py):
    res = run_case(run_py, FINALIZER_CREATES, timeout=30)
    # made where CPython allows it, refused on 3.12 (see docs/reliability.md)
    want = "refused InterpreterError" if sys.version_info < (3, 13) else "made"
    assert res["DEL"] == want
    assert "CLOSED" in res
    assert res["AGAIN"] == "2"


def test_thread_of_a_closing_interpreter_closes_it(run_py):
    res = run_case(run_py, THREAD_CLOSES_ITS_OWN, timeout=30)
    assert res["THREAD"] == "refused InterpreterError"
    assert "CLOSED" in res
    assert res["AGAIN"] == "2"


def test_finalizer_of_a_closing_interpreter_closes_it(run_py):
    res = run_case(run_py, FINALIZER_CLOSES_ITS_OWN, timeout=30)
    assert res["DEL"] == "refused InterpreterError"
    assert "CLOSED" in res
    assert res["AGAIN"] == "2"
