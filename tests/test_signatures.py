"""inspect.signature works on every public callable of the package, the C core's
included (their docstrings carry text signatures), and those signatures are the ones
the C code parses. `make typecheck` (mypy's stubtest) compares them with the stubs."""
import importlib
import inspect

import pytest

import extrainterpreters as xi

MODULES = ["extrainterpreters", "extrainterpreters.aio", "extrainterpreters.executor",
           "extrainterpreters.interpreter", "extrainterpreters.joblib",
           "extrainterpreters.dask"]


def public_callables():
    """(qualified name, object) of each public function and class of MODULES, and of
    each public method (own or inherited from another class of this package) of those
    classes."""
    seen = set()
    for modname in MODULES:
        module = importlib.import_module(modname)
        for name in module.__all__:
            obj = getattr(module, name)
            if id(obj) in seen or not callable(obj):
                continue
            seen.add(id(obj))
            yield f"{modname}.{name}", obj
            if isinstance(obj, type):
                for attr in dir(obj):
                    if attr.startswith("_"):
                        continue
                    owner = next(c for c in obj.__mro__ if attr in vars(c))
                    if not owner.__module__.startswith("extrainterpreters"):
                        continue  # e.g. Executor.submit's, BaseException's
                    value = vars(owner)[attr]
                    if callable(value):
                        yield f"{modname}.{name}.{attr}", getattr(obj, attr)


CALLABLES = dict(public_callables())
C_TYPES = [xi.Queue, xi.SharedBuffer, xi.Lock, xi.RLock, xi.Semaphore,
           xi.BoundedSemaphore, xi.Event, xi.Condition, xi.Barrier]


def test_the_walk_finds_the_c_methods():
    for name in ["extrainterpreters.Queue.put", "extrainterpreters.Lock.acquire",
                 "extrainterpreters.Barrier.wait", "extrainterpreters.shared_objects",
                 "extrainterpreters.aio.run", "extrainterpreters.Interpreter.call"]:
        assert name in CALLABLES
    assert len(CALLABLES) > 80


def is_exception_class(obj):
    return isinstance(obj, type) and issubclass(obj, BaseException)


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_signature(name):
    obj = CALLABLES[name]
    if is_exception_class(obj):
        # the standard library's own exceptions have no signature (3.14+: some of these
        # are concurrent.interpreters'); their methods are walked like any class's
        return
    inspect.signature(obj)


def params(obj):
    return [(p.name, p.kind.name, p.default) for p in inspect.signature(obj).parameters.values()]


E = inspect.Parameter.empty


def test_c_types_signatures():
    assert str(inspect.signature(xi.Queue)) == "(maxsize=0)"
    assert str(inspect.signature(xi.SharedBuffer)) == "(size)"
    assert str(inspect.signature(xi.Lock)) == "()"
    assert str(inspect.signature(xi.Semaphore)) == "(value=1)"
    assert str(inspect.signature(xi.Condition)) == "(lock=None)"
    assert str(inspect.signature(xi.Barrier)) == "(parties, action=None, timeout=None)"
    assert params(xi.Queue.put) == [("self", "POSITIONAL_ONLY", E),
                                    ("item", "POSITIONAL_OR_KEYWORD", E),
                                    ("block", "POSITIONAL_OR_KEYWORD", True),
                                    ("timeout", "POSITIONAL_OR_KEYWORD", None),
                                    ("unbounditems", "KEYWORD_ONLY", None)]
    assert params(xi.Queue.put_nowait) == [("self", "POSITIONAL_ONLY", E),
                                           ("item", "POSITIONAL_OR_KEYWORD", E),
                                           ("unbounditems", "KEYWORD_ONLY", None)]
    assert str(inspect.signature(xi.Lock().acquire)) == "(blocking=True, timeout=-1)"


def test_c_types_cannot_be_subclassed():
    # the stub marks them @final
    for tp in C_TYPES:
        with pytest.raises(TypeError):
            type("Sub", (tp,), {})


def test_signatures_match_what_the_c_code_parses():
    # every keyword the signatures name is accepted by that name
    q = xi.Queue(maxsize=2)
    q.put(item=1, block=True, timeout=None, unbounditems=None)
    assert q.get(block=False, timeout=None) == 1
    q.put_nowait(item=2, unbounditems=None)
    assert q.get_nowait() == 2
    q.shutdown(immediate=False)
    lock = xi.Lock()
    assert lock.acquire(blocking=False, timeout=-1)
    lock.release()
    rlock = xi.RLock()
    assert rlock.acquire(blocking=True, timeout=-1)
    rlock.release()
    sem = xi.BoundedSemaphore(value=2)
    assert sem.acquire(blocking=True, timeout=None)
    sem.release(n=1)
    assert xi.Event().wait(timeout=0) is False
    cond = xi.Condition(lock=xi.RLock())
    with cond:
        assert cond.wait(timeout=0) is False
        assert cond.wait_for(predicate=lambda: 7, timeout=0) == 7
        cond.notify(n=1)
    barrier = xi.Barrier(parties=1, action=None, timeout=None)
    assert barrier.wait(timeout=None) == 0
    assert len(xi.SharedBuffer(size=3)) == 3
    assert xi.Semaphore(value=0).acquire(blocking=False) is False
    # positional-only parameters are refused by name
    with pytest.raises(TypeError):
        xi._xi._encode(obj=1)
