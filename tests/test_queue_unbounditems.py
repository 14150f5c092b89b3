"""Queue.put() and put_nowait() take concurrent.interpreters' ``unbounditems`` keyword:
UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE (this package's or the standard library's) or
None; any other value raises NotImplementedError and queues nothing, as in the standard
library. An item is a copy owned by the queue, so it never becomes unbound: it is got
whole after the interpreter that put it is destroyed, whatever the keyword said."""
import sys

import pytest

import extrainterpreters as xi


def stdlib_only(test):
    """A test comparing with the standard library itself: not collected before Python
    3.14, where the tests beside it check the documented behaviour instead."""
    return test if sys.version_info >= (3, 14) else None


MARKERS = ["UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE"]


@pytest.mark.parametrize("name", MARKERS + ["None"])
def test_put_and_put_nowait_accept_each_marker(name):
    marker = None if name == "None" else getattr(xi, name)
    q = xi.Queue()
    q.put(("put", name), unbounditems=marker)
    q.put(("block", name), True, None, unbounditems=marker)
    q.put_nowait(("nowait", name), unbounditems=marker)
    assert [q.get_nowait() for _ in range(3)] == [("put", name), ("block", name),
                                                  ("nowait", name)]


@stdlib_only
def test_stdlib_markers_are_accepted():
    from concurrent.interpreters import _crossinterp, _queues

    q = xi.Queue()
    markers = [getattr(m, name) for m in (_crossinterp, _queues) for name in MARKERS]
    for i, marker in enumerate(markers):
        q.put(i, unbounditems=marker)
        q.put_nowait(-i, unbounditems=marker)
    assert q.qsize() == 2 * len(markers)
    assert xi.create_queue(unbounditems=_queues.UNBOUND).empty()


@pytest.mark.parametrize("bad", [5, "UNBOUND", object(), xi.Queue])
def test_other_values_raise_and_queue_nothing(bad):
    q = xi.Queue()
    with pytest.raises(NotImplementedError, match="unsupported unbound replacement op"):
        q.put("item", unbounditems=bad)
    with pytest.raises(NotImplementedError, match="unsupported unbound replacement op"):
        q.put_nowait("item", unbounditems=bad)
    assert q.empty()


@stdlib_only
def test_bad_value_raises_as_the_stdlib():
    from concurrent import interpreters

    ours, theirs = xi.Queue(), interpreters.create_queue()
    for bad in (5, "UNBOUND"):
        with pytest.raises(NotImplementedError) as mine:
            ours.put(1, unbounditems=bad)
        with pytest.raises(NotImplementedError) as std:
            theirs.put(1, unbounditems=bad)
        assert str(mine.value) == str(std.value)


def test_unbounditems_is_keyword_only():
    q = xi.Queue()
    with pytest.raises(TypeError):
        q.put(1, True, None, xi.UNBOUND)
    with pytest.raises(TypeError):
        q.put_nowait(1, xi.UNBOUND)
    assert q.empty()


@pytest.mark.parametrize("name", MARKERS)
def test_items_outlive_the_interpreter_that_put_them(name):
    q = xi.Queue()
    with xi.Interpreter() as interp:
        interp.call(q.put, ["from", name], unbounditems=getattr(xi, name))
        interp.call(q.put_nowait, {"k": name}, unbounditems=getattr(xi, name))
    assert q.qsize() == 2
    assert q.get(timeout=5) == ["from", name]
    assert q.get(timeout=5) == {"k": name}
