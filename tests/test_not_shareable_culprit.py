"""A value that cannot be sent is refused with a message that names the object inside
it that cannot be pickled, and where it sits: a closure variable, a global or a
default of a function sent by value, an attribute of an object. The pickler's own
error is the __cause__. (A function of a script file that cannot cross by value crosses
by name instead: tests/test_functions_cross.py. Here the program has no file: it runs
with -c.)"""
import sys
import textwrap
import threading

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit

LOCK_ERROR = "cannot pickle '_thread.lock' object"

# Each case runs in a script of its own (its functions live in __main__, as in a user's
# program) and prints the message of the NotShareableError and of its cause.
SCRIPT = """
import sys
import threading
import extrainterpreters as xi

lock = threading.Lock()

def main_func():
    return lock.locked()

def with_default(x=lock):
    return x

def with_kwdefault(*, guard=lock):
    return guard

def make_closure():
    held = threading.Lock()
    def inner():
        return held.locked()
    return inner

def make_nested():
    def helper():
        return lock.locked()
    def outer():
        return helper()
    return outer

send_lambda = lambda: lock
arg_lambda = lambda: lock.locked()

class Holder:
    def __init__(self):
        self.name = "holder"
        self.guard = threading.Lock()

CASES = {
    "lambda": lambda it: it.call(send_lambda),
    "closure": lambda it: it.call(make_closure()),
    "main_global": lambda it: it.call(main_func),
    "default": lambda it: it.call(with_default),
    "kwdefault": lambda it: it.call(with_kwdefault),
    "nested": lambda it: it.call(make_nested()),
    "lambda_argument": lambda it: it.call(repr, arg_lambda),
    "object_argument": lambda it: it.call(repr, Holder()),
    "run_lambda": lambda it: it.run(send_lambda),
}

if __name__ == "__main__":
    with xi.Interpreter() as it:
        try:
            CASES[sys.argv[1]](it)
        except xi.NotShareableError as exc:
            print(str(exc).replace("\\n", " | "))
            print(type(exc.__cause__).__name__, exc.__cause__)
            print(it.call(sum, [1, 2]))  # still usable
        else:
            print("no error")
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("culprit") / "prog.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def run_case(script, case):
    import subprocess

    from conftest import _env

    proc = subprocess.run([sys.executable, "-c", script.read_text(), case],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert_clean_exit(proc)
    message, cause, usable = proc.stdout.splitlines()
    assert usable == "3"
    return message, cause


def line_of(script, text):
    for n, line in enumerate(script.read_text().splitlines(), 1):
        if text in line:
            return n
    raise AssertionError(text)


@pytest.mark.parametrize("case, function, where", [
    ("lambda", "function <lambda>", "its global 'lock'"),
    ("run_lambda", "function <lambda>", "its global 'lock'"),
    ("closure", "function make_closure.<locals>.inner", "its closure variable 'held'"),
    ("main_global", "function main_func", "its global 'lock'"),
    ("default", "function with_default", "the default of its parameter 'x'"),
    ("kwdefault", "function with_kwdefault", "the default of its parameter 'guard'"),
    ("nested", "function make_nested.<locals>.outer",
     "its closure variable 'helper' -> global 'lock'"),
    ("lambda_argument", "function <lambda>", "its global 'lock'"),
])
def test_function_names_what_it_captures(script, case, function, where):
    message, cause = run_case(script, case)
    assert message.startswith(f"{function} (defined in __main__, line "), message
    assert (f"cannot be shared with another interpreter: {where} holds a '_thread.lock' "
            f"object, which cannot be pickled ({LOCK_ERROR})") in message, message
    # the pickler's error is chained, and it is the one about the lock, not about
    # finding the function by name
    assert cause == f"TypeError {LOCK_ERROR}"
    # why it could not cross by name either, and what to do
    assert (" | By value it cannot cross, and not by name: the program has no script "
            "file to import it from") in message, message
    assert 'fallback="process"' in message


def test_object_names_no_ways_of_functions(script):
    message, _ = run_case(script, "object_argument")
    assert "|" not in message


def test_function_message_gives_its_line(script):
    message, _ = run_case(script, "main_global")
    assert f"line {line_of(script, 'def main_func')})" in message


def test_object_names_its_attribute(script):
    message, cause = run_case(script, "object_argument")
    assert message == ("__main__.Holder object cannot be shared with another interpreter: "
                       "its attribute 'guard' holds a '_thread.lock' object, which cannot be "
                       f"pickled ({LOCK_ERROR})")
    assert cause == f"TypeError {LOCK_ERROR}"


# in-process: functions and objects of an importable module, and containers


def test_local_closure_in_process(interp):
    held = threading.Lock()

    def uses_lock():
        return held.locked()

    with pytest.raises(xi.NotShareableError) as ei:
        interp.call(uses_lock)
    assert "its closure variable 'held' holds a '_thread.lock' object" in str(ei.value)
    assert "uses_lock" in str(ei.value)
    assert isinstance(ei.value.__cause__, TypeError)
    assert str(ei.value.__cause__) == LOCK_ERROR


def test_nested_item_of_an_argument(interp):
    with pytest.raises(xi.NotShareableError) as ei:
        interp.call(rf.identity, {"k": [1, threading.Lock()]})
    assert ("dict object cannot be shared with another interpreter: its item 'k' -> item 1 "
            "holds a '_thread.lock' object") in str(ei.value)


def test_unpicklable_object_itself_keeps_the_short_message(interp):
    with pytest.raises(xi.NotShareableError) as ei:
        interp.call(rf.identity, threading.Lock())
    assert str(ei.value) == ("_thread.lock object cannot be shared with another "
                             f"interpreter: {LOCK_ERROR}")


def test_queue_put_names_the_culprit():
    q = xi.Queue()
    held = threading.Lock()
    with pytest.raises(xi.NotShareableError) as ei:
        q.put(lambda: held)
    assert "its closure variable 'held' holds a '_thread.lock' object" in str(ei.value)
    assert q.empty()


class _InterruptsOnce:
    """Its pickling raises KeyboardInterrupt the first time (as a Ctrl-C landing there
    would), TypeError after that."""

    def __init__(self):
        self.calls = 0

    def __reduce_ex__(self, protocol):
        self.calls += 1
        if self.calls == 1:
            raise KeyboardInterrupt
        raise TypeError("cannot pickle this")


def test_ctrl_c_while_a_lambda_is_pickled_by_value_is_not_swallowed(interp):
    for send in (lambda f: xi.Queue().put(f), lambda f: interp.run(f)):
        held = _InterruptsOnce()
        with pytest.raises(KeyboardInterrupt):
            send(lambda: held)
