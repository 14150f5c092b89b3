"""multiprocessing.Manager() proxies passed into interpreters work there, as in a child
process: as call arguments (by the C pickler and by value), pool task arguments,
initargs, nested in containers, and as results coming back.

The manager's server is a process of the spawn context: a fork with interpreters alive
(other tests of this worker) is what tests/test_fork.py is about, not this."""
import multiprocessing
import os

import pytest

import extrainterpreters as xi


@pytest.fixture(scope="module")
def manager():
    with multiprocessing.get_context("spawn").Manager() as m:
        yield m


def put_pid(d, key):
    d[key] = os.getpid()
    return sorted(d.keys())


def append_all(items, values):
    for v in values:
        items.append(v)
    return len(items)


def nested(box):
    box["dict"]["x"] = 1
    box["list"].append(2)
    return box["name"]


def make_initializer(status):
    def initializer():
        status["initialized"] = status.get("initialized", 0) + 1
    return initializer


def read_status(status):
    return status.get("initialized", 0)


def test_dict_proxy_as_an_argument(manager):
    d = manager.dict()
    with xi.Interpreter() as interp:
        assert interp.run(put_pid, d, "a") == ["a"]
        assert interp.run(put_pid, d, "b") == ["a", "b"]
    assert dict(d) == {"a": os.getpid(), "b": os.getpid()}


def test_proxies_nested_and_by_value(manager):
    box = {"dict": manager.dict(), "list": manager.list(), "name": "box"}
    with xi.Interpreter() as interp:
        assert interp.run(nested, box) == "box"
        # a closure crosses by value (cloudpickle), its proxy with it
        items = manager.list()
        assert interp.run(lambda: append_all(items, range(5))) == 5
    assert dict(box["dict"]) == {"x": 1}
    assert list(box["list"]) == [2]
    assert list(items) == list(range(5))


def test_manager_queue_between_pool_tasks(manager):
    q = manager.Queue()
    with xi.InterpreterPoolExecutor(2) as pool:
        list(pool.map(q.put, range(20)))
    assert sorted(q.get() for _ in range(20)) == list(range(20))


def test_proxy_as_initarg(manager):
    status = manager.dict()
    with xi.InterpreterPoolExecutor(2, initializer=make_initializer(status)) as pool:
        assert all(n >= 1 for n in pool.map(read_status, [status] * 8))


def test_proxy_comes_back_from_an_interpreter(manager):
    with xi.Interpreter() as interp:
        d = manager.dict()
        interp.run(put_pid, d, "x")
        # the interpreter returns the proxy it received: main can still use it
        back = interp.run(lambda proxy: proxy, d)
    assert back["x"] == os.getpid()


def test_manager_with_its_own_authkey():
    from multiprocessing.managers import SyncManager

    ctx = multiprocessing.get_context("spawn")
    with SyncManager(authkey=b"not the process key", ctx=ctx) as m:
        d = m.dict()
        with xi.Interpreter() as interp:
            assert interp.run(put_pid, d, "k") == ["k"]
        assert d["k"] == os.getpid()


def test_many_rounds_in_threads(manager):
    d = manager.dict()
    with xi.InterpreterPoolExecutor(2) as pool:
        futures = [pool.submit(put_pid, d, i) for i in range(200)]
        for f in futures:
            f.result(timeout=120)
    assert len(d) == 200


def test_blocked_import_of_managers_leaves_the_c_pickler_in_use(run_py):
    # sys.modules["multiprocessing.managers"] = None (an import kept out): no object is
    # a proxy, and values pickle with the C pickler, not all by value
    proc = run_py("""
import sys
sys.modules["multiprocessing.managers"] = None
import fractions
import extrainterpreters as xi
from extrainterpreters import _byvalue
by_value = []
reducer_override = _byvalue.Pickler.reducer_override
def spy(self, obj):
    by_value.append(type(obj).__name__)
    return reducer_override(self, obj)
_byvalue.Pickler.reducer_override = spy
with xi.Interpreter() as interp:
    print("RESULT", interp.run(repr, [fractions.Fraction(1, 3)]), flush=True)
print("BYVALUE", by_value, flush=True)
""", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "RESULT [Fraction(1, 3)]" in proc.stdout, proc.stdout + proc.stderr
    assert "BYVALUE []" in proc.stdout, proc.stdout
