"""The library beside the standard library's concurrent.interpreters (Python 3.14+): each
side creates, lists, calls and closes the other's interpreters and queues, from the
main interpreter and from inside subinterpreters of either side.

Where a side refuses (the standard library calls and closes only the interpreters its
own module made; this library calls only its own), the test checks the refusal and that
nothing was harmed by it."""
import sys
import textwrap

import pytest

import extrainterpreters as xi
from conftest import TESTS_DIR, assert_clean_exit

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 14),
    reason="concurrent.interpreters, the standard library's API, exists from Python 3.14 on")

if sys.version_info >= (3, 14):
    from concurrent import interpreters as std


def ids(interps):
    return [it.id for it in interps]


@pytest.fixture
def std_interp():
    it = std.create()
    yield it
    try:
        it.close()
    except std.InterpreterNotFoundError:
        pass


def test_each_side_lists_the_others_interpreters(interp, std_interp):
    assert {interp.id, std_interp.id} <= set(ids(xi.list_all()))
    assert {interp.id, std_interp.id} <= set(ids(std.list_all()))
    ours_seen_there = std.Interpreter(interp.id)
    theirs_seen_here = xi.Interpreter(std_interp.id)
    assert ours_seen_there.id == interp.id
    assert theirs_seen_here.id == std_interp.id
    assert theirs_seen_here.whence == std_interp.whence == "_interpreters module"
    assert xi.Interpreter(std_interp.id) is theirs_seen_here


def test_each_side_refuses_calls_into_the_others(interp, std_interp):
    with pytest.raises(xi.InterpreterError, match="not made by extrainterpreters"):
        xi.Interpreter(std_interp.id).call(pow, 2, 3)
    with pytest.raises(std.InterpreterError, match="unrecognized interpreter"):
        std.Interpreter(interp.id).call(pow, 2, 3)
    with pytest.raises(std.InterpreterError, match="unrecognized interpreter"):
        std.Interpreter(interp.id).exec("x = 1")
    # neither refusal harmed the interpreter
    assert interp.call(pow, 2, 3) == 8
    assert std_interp.call(pow, 2, 3) == 8


def test_this_library_closes_a_stdlib_interpreter(std_interp):
    theirs = xi.Interpreter(std_interp.id)
    theirs.close()
    assert std_interp.id not in ids(xi.list_all())
    assert std_interp.id not in ids(std.list_all())
    theirs.close()  # closing it again does nothing
    with pytest.raises(std.InterpreterNotFoundError):
        std_interp.close()


def test_the_stdlib_refuses_to_close_this_librarys_interpreter(interp):
    with pytest.raises(std.InterpreterError, match="unrecognized interpreter"):
        std.Interpreter(interp.id).close()
    assert interp.id in ids(std.list_all())
    assert interp.call(pow, 2, 3) == 8


def test_queues_cross_both_ways(interp, std_interp):
    ours, theirs = xi.create_queue(), std.create_queue()
    # each side's interpreter puts into the other side's queue
    interp.call(theirs.put, "from ours")
    std_interp.call(ours.put, "from theirs")
    assert theirs.get(timeout=10) == "from ours"
    assert ours.get(timeout=10) == "from theirs"
    assert std_interp.call(ours.qsize) == 0
    # and gets from it what the main interpreter put
    ours.put(1)
    theirs.put(2)
    assert std_interp.call(ours.get, timeout=10) == 1
    assert interp.call(theirs.get, timeout=10) == 2
    # each side's queue travels through the other side's queue, and stays the same queue
    ours.put(theirs)
    theirs.put(ours)
    got_theirs, got_ours = ours.get(timeout=10), theirs.get(timeout=10)
    assert got_theirs.id == theirs.id and got_ours.id == ours.id
    got_ours.put("again")
    assert ours.get(timeout=10) == "again"


def test_each_side_lists_its_own_queues():
    # queues are listed by the side that made them: the two kinds live in different
    # registries (this library's ids start at 2**32, above any of the standard library's)
    from concurrent.interpreters import _queues as std_queues

    from extrainterpreters import _queues as our_queues

    ours, theirs = xi.create_queue(), std.create_queue()
    assert ours.id in [q.id for q in our_queues.list_all()]
    assert theirs.id in [q.id for q in std_queues.list_all()]
    assert theirs.id not in [q.id for q in our_queues.list_all()]
    assert ours.id not in [q.id for q in std_queues.list_all()]


INSIDE_OURS = """
from concurrent import interpreters as std
import extrainterpreters as xi

made = std.create()
assert made.id in [i.id for i in xi.list_all()]
assert made.id in [i.id for i in std.list_all()]
assert made.call(pow, 2, 5) == 32
q = std.create_queue()
made.call(q.put, "from the stdlib's interpreter")
assert q.get(timeout=10) == "from the stdlib's interpreter"
ours_q = xi.create_queue()
made.call(ours_q.put, 7)
assert ours_q.get(timeout=10) == 7
xi.Interpreter(made.id).close()
assert made.id not in [i.id for i in std.list_all()]
"""


def test_inside_this_librarys_interpreter(interp):
    interp.exec(INSIDE_OURS)
    assert interp.id in ids(xi.list_all())


INSIDE_STDLIB = """
import sys
sys.path.insert(0, {tests!r})
from concurrent import interpreters as std
import extrainterpreters as xi

made = xi.create()
assert made.id in [i.id for i in std.list_all()]
assert made.id in [i.id for i in xi.list_all()]
assert made.call(pow, 2, 5) == 32
ours_q = xi.create_queue()
made.call(ours_q.put, "from this library's interpreter")
assert ours_q.get(timeout=10) == "from this library's interpreter"
q = std.create_queue()
made.call(q.put, 8)
assert q.get(timeout=10) == 8
try:
    std.Interpreter(made.id).close()
except std.InterpreterError:
    pass
else:
    raise AssertionError("the stdlib closed an interpreter it did not make")
made.close()
assert made.id not in [i.id for i in std.list_all()]
"""


def test_inside_a_stdlib_interpreter(std_interp):
    std_interp.exec(INSIDE_STDLIB.format(tests=TESTS_DIR))
    assert std_interp.id in ids(xi.list_all())


def test_closing_this_librarys_interpreter_ends_the_stdlib_ones_made_in_it():
    it = xi.create()
    made = it.call(eval, "__import__('builtins').__dict__.setdefault("
                         "'_made', __import__('concurrent.interpreters').interpreters.create()).id")
    theirs = xi.Interpreter(made)
    assert made in ids(std.list_all())
    it.close()
    assert made not in ids(std.list_all())
    theirs.close()  # gone already: nothing to do


# A stdlib interpreter made inside one of this library's whose owner is then dropped: the
# library ends that one in the background, and its end destroys the stdlib interpreter,
# while the main interpreter closes the same stdlib interpreter (CPython's
# test_api.CreateTests.test_in_subinterpreter, whose tearDown closes every interpreter of
# list_all()). Two threads ending one interpreter hang or crash CPython: close() waits for
# the background end first. In a process of its own, many rounds.
CLOSE_WHILE_ITS_CREATOR_ENDS = """
import gc
import extrainterpreters as xi

for _ in range(30):
    it = xi.create()
    it.exec('''
from concurrent import interpreters
made = interpreters.create()
''')
    made = it.call(eval, "made.id")
    theirs = xi.Interpreter(made)
    del it
    gc.collect()
    for other in xi.list_all():
        if other.id != xi.get_main().id:
            other.close()
    assert made not in [i.id for i in xi.list_all()]
print("done")
"""


def test_closing_a_stdlib_interpreter_while_its_creator_ends(run_py):
    proc = run_py(CLOSE_WHILE_ITS_CREATOR_ENDS, timeout=60)
    assert_clean_exit(proc)
    assert "done" in proc.stdout
