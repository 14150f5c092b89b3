"""Functions cross whatever their module or globals hold.

- A function whose module the target cannot import (it imports an extension module
  that refuses isolated interpreters: here CPython's own _testsinglephase) crosses by
  value, with the globals it uses, after the first failure: the process learns that
  module, and every later call sends its functions and classes by value.
- A function of a script's __main__ whose globals cannot be pickled crosses by name:
  the target imports the script as __mp_main__, under its guard.
- When every way fails, one error says which ways were tried and why each failed.

Each test writes modules of its own, with names of their own: what the process learns
about a module lasts as long as the process.
"""
import sys
import textwrap
import uuid

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit, run_script

MODULE = """
import json
import _testsinglephase

SCALE = 3

def helper(x):
    return x * SCALE

def task(x):
    return json.dumps(helper(x))

def uses_refused(x):
    return _testsinglephase.__name__

class Point:
    def __init__(self, x):
        self.x = x

    def norm(self):
        return abs(self.x)

def make_point(x):
    return Point(x)

def norm_of(point):
    return point.norm()

def where():
    import extrainterpreters as xi
    return xi.get_current().id
"""


@pytest.fixture
def refusing_module(tmp_path, monkeypatch):
    """A new module (unique name) that imports _testsinglephase at its top."""
    name = f"imports_refused_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    yield module
    sys.modules.pop(name, None)


def test_singlephase_module_is_refused_by_isolated_interpreters(interp):
    with pytest.raises(ImportError, match="_testsinglephase"):
        interp.run(__import__, "_testsinglephase")


def test_function_of_a_module_the_target_cannot_import_runs_by_value(refusing_module):
    m = refusing_module
    assert m.__name__ not in xi._xi._by_value_modules()
    with xi.Interpreter() as it:
        # by value, with the global it uses (SCALE) and the helper function
        assert it.run(m.task, 2) == "6"
        assert m.__name__ in xi._xi._by_value_modules()
        assert it.run(m.task, 5) == "15"
        assert it.call(m.task, 1) == "3"
        # the module was never imported there
        assert it.run(rf.is_imported, m.__name__) is False


def test_a_queue_item_that_fails_to_rebuild_teaches_the_process(refusing_module):
    m = refusing_module
    q = xi.Queue()
    with xi.Interpreter() as it:
        # put before anything learned the module: sent by reference, and the getter
        # cannot import it; the error says the next put will cross
        q.put(m.task)
        with pytest.raises(ImportError, match="_testsinglephase") as info:
            it.run(rf.call_from_queue, q, 7)
        assert any("cross by value" in note for note in info.value.__notes__)
        assert m.__name__ in xi._xi._by_value_modules()
        q.put(m.task)
        assert it.run(rf.call_from_queue, q, 7) == "21"


def test_every_call_path_sends_it_by_value(refusing_module):
    m = refusing_module
    with xi.Interpreter() as it:
        t = it.call_in_thread(m.task, 4)
        t.join()
        assert it.result() == "12"
    with xi.Interpreter() as it:
        # the process learned the module already: no failed try first
        assert it.run(m.task, 1) == "3"
        q = xi.Queue()
        q.put(m.task)
        assert it.run(rf.call_from_queue, q, 7) == "21"
    with xi.InterpreterPoolExecutor(2) as pool:
        assert pool.submit(m.task, 3).result() == "9"
        assert list(pool.map(m.task, range(4))) == ["0", "3", "6", "9"]


def test_pool_map_learns_from_a_function_in_its_arguments(refusing_module):
    m = refusing_module
    with xi.InterpreterPoolExecutor(2) as pool:
        # map sends the function as an argument of its batches
        assert list(pool.map(m.task, range(6))) == [str(3 * i) for i in range(6)]


def test_classes_of_the_module_cross_by_value_too(refusing_module):
    m = refusing_module
    with xi.Interpreter() as it:
        assert it.run(m.norm_of, m.Point(-4)) == 4
        assert it.run(m.Point(-5).norm) == 5
        point = it.run(m.make_point, 6)
        # a result comes back by name: the module is importable here
        assert type(point) is m.Point and point.x == 6


def test_function_using_the_refused_module_says_every_way_tried(refusing_module):
    m = refusing_module
    with xi.Interpreter() as it:
        with pytest.raises(xi.NotShareableError) as ei:
            it.run(m.uses_refused, 1)
        text = str(ei.value)
        assert f"the call of function uses_refused (defined in {m.__name__}" in text
        assert f"- by reference: importing module {m.__name__!r} there failed" in text
        assert "- by value: " in text and "_testsinglephase" in text
        assert 'fallback="process"' in text and 'config="legacy"' in text
        # and once the module is known, the error still names both ways
        with pytest.raises(xi.NotShareableError) as ei:
            it.run(m.uses_refused, 1)
        assert f"- by reference: not tried, module {m.__name__!r}" in str(ei.value)
        # the interpreter is still usable, and so is the module's other function
        assert it.run(m.task, 1) == "3"


def test_calls_in_other_interpreters_are_unaffected(refusing_module, interp):
    m = refusing_module
    assert interp.run(m.task, 2) == "6"
    # a function of an importable module still crosses by name
    assert interp.run(rf.add, 1, 2) == 3


def test_learning_a_module_takes_only_names():
    with pytest.raises(TypeError):
        xi._xi._learn_by_value(3)
    with pytest.raises(ValueError):
        xi._xi._learn_by_value("")
    assert isinstance(xi._xi._by_value_modules(), frozenset)


# -- scripts: functions of __main__ -----------------------------------------------------

SCRIPT = """
import functools
import os
import threading
import weakref
import extrainterpreters as xi

# one write per line: interpreters in parallel print at once
os.write(1, f"imported as {__name__}\\n".encode())
print = functools.partial(print, flush=True)

LOCK = threading.Lock()

class Token:
    pass

TOKEN = Token()
REF = weakref.ref(TOKEN)
_cache = None

class Result:
    def __init__(self, value):
        self.value = value

def get_cache():
    global _cache
    if _cache is None:
        _cache = threading.Lock()
    return _cache

def with_lock(x):
    with LOCK:
        return x * 2

def with_weakref(x):
    return REF() is not None, x

def lazy(x):
    get_cache()
    return Result(x + 1)

def where():
    return __name__

if __name__ == "__main__":
    with xi.Interpreter() as it:
        print(it.run(with_lock, 21))
        print(it.run(with_weakref, 1))
        print(it.run(where))
        r = it.run(lazy, 1)          # the cache is empty: by value
        print(type(r) is Result, r.value)
        get_cache()                  # now it holds a lock
        r = it.run(lazy, 2)          # by name
        print(type(r) is Result, r.value)
        print(it.call(with_lock, 5))
    with xi.InterpreterPoolExecutor(2) as pool:
        print(list(pool.map(with_lock, range(4))))
        print(pool.submit(with_weakref, 3).result())
"""

EXPECTED_SCRIPT_OUTPUT = """\
imported as __main__
imported as __mp_main__
42
(True, 1)
__main__
True 2
True 3
10
imported as __mp_main__
imported as __mp_main__
[0, 2, 4, 6]
(True, 3)
"""


def test_script_function_with_unpicklable_global_crosses_by_name(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    proc = run_script(script, timeout=120)
    assert_clean_exit(proc)
    lines = proc.stdout.splitlines()
    # the script is imported once in each interpreter that needs it by name, under its
    # guard; the pool's two workers may each import it, or one may run every task
    expected = EXPECTED_SCRIPT_OUTPUT.splitlines()
    assert lines[:8] == expected[:8], proc.stdout
    rest = lines[8:]
    assert rest[-2:] == expected[-2:], proc.stdout
    assert set(rest[:-2]) <= {"imported as __mp_main__"} and 1 <= len(rest[:-2]) <= 2


def test_script_run_as_a_module_crosses_by_name(tmp_path):
    import subprocess

    from conftest import _env

    package = tmp_path / f"pkg_{uuid.uuid4().hex[:8]}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (package / "job.py").write_text(textwrap.dedent("""
        import threading
        import extrainterpreters as xi
        from .helpers import double

        LOCK = threading.Lock()

        def task(x):
            with LOCK:
                return double(x)

        if __name__ == "__main__":
            with xi.Interpreter() as it:
                print(it.run(task, 4))
    """))
    proc = subprocess.run([sys.executable, "-m", f"{package.name}.job"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=_env())
    assert_clean_exit(proc)
    assert proc.stdout.split() == ["8"]


def test_script_that_the_target_cannot_import_says_so(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import threading
        import _testsinglephase
        import extrainterpreters as xi

        LOCK = threading.Lock()

        def task(x):
            with LOCK:
                return x

        if __name__ == "__main__":
            import warnings
            with xi.Interpreter() as it:
                try:
                    it.run(task, 1)
                except xi.NotShareableError as exc:
                    print(repr(str(exc)))
                print(it.run(len, "usable"))
            with xi.InterpreterPoolExecutor(2) as pool:
                try:
                    list(pool.map(task, range(3)))
                except xi.NotShareableError as exc:
                    print(repr(str(exc)))
            # it runs in a process of the fallback
            warnings.simplefilter("ignore", xi.FallbackWarning)
            with xi.InterpreterPoolExecutor(2, fallback="process") as pool:
                print(list(pool.map(task, range(3))))
    """))
    proc = run_script(script, timeout=120)
    assert_clean_exit(proc)
    lines = proc.stdout.splitlines()
    assert lines[1] == "6" and lines[3] == "[0, 1, 2]", proc.stdout
    for line in (lines[0], lines[2]):
        text = eval(line)
        # one error names both ways and why each failed
        assert "the call of function task (defined in __main__, line" in text, text
        assert "- by value: its global 'LOCK' holds a '_thread.lock' object" in text, text
        assert "- by name: importing the script there failed (" in text, text
        assert "_testsinglephase" in text and 'fallback="process"' in text, text


def test_threads_choosing_for_the_same_function_at_once_agree(tmp_path):
    # a pool's workers encode their batches at once: each may be the first to try a
    # function by value, and one's choice must not undo the other's
    n = 40
    funcs = "\n".join(f"def f{i}(x):\n    with LOCK:\n        return x + {i}\n"
                      for i in range(n))
    script = tmp_path / "race.py"
    script.write_text(textwrap.dedent(f"""
        import threading
        import extrainterpreters as xi

        LOCK = threading.Lock()

        {{funcs}}

        if __name__ == "__main__":
            import sys
            sys.setswitchinterval(1e-6)  # threads switch inside each other's tries
            with xi.InterpreterPoolExecutor(4) as pool:
                bad = 0
                for i in range({n}):
                    f = globals()[f"f{{i}}"]
                    try:
                        if list(pool.map(f, range(16))) != [x + i for x in range(16)]:
                            bad += 1
                    except xi.NotShareableError:
                        bad += 1
                print("bad", bad)
    """).replace("{funcs}", funcs))
    proc = run_script(script, timeout=300)
    assert_clean_exit(proc)
    assert proc.stdout.split() == ["bad", "0"]


def test_a_module_learned_later_stops_crossing_by_name(tmp_path, monkeypatch):
    # the cache of callables found by name is emptied whatever reads the list first
    name = f"plain_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text("def f(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    m = __import__(name)
    try:
        with xi.Interpreter() as it:
            assert it.run(m.f, 1) == 2
            assert it.run(rf.is_imported, name) is True  # by name: imported there
        assert xi._xi._learn_by_value(name) is True
        assert xi._xi._learn_by_value(name) is False
        assert name in xi._xi._by_value_modules()  # reads the list first
        q = xi.Queue()
        q.put([{1, 2}, 3.5])  # so does an encode
        with xi.Interpreter() as it:
            assert it.run(m.f, 1) == 2
            assert it.run(rf.is_imported, name) is False  # by value now
    finally:
        sys.modules.pop(name, None)


class _Name(str):
    """A module name whose comparisons run code: they learn a module and read the list
    (which replaces this interpreter's copy of it) while a lookup uses the copy."""

    def __hash__(self):
        return str.__hash__(self)

    def __eq__(self, other):
        xi._xi._learn_by_value(f"learned_in_eq_{uuid.uuid4().hex[:8]}")
        xi._xi._by_value_modules()
        return str.__eq__(self, other)


def test_module_name_whose_comparison_changes_the_list(interp):
    def f():
        return 7

    f.__qualname__ = "f"  # a name pickle may try: the C core looks the module up
    xi._xi._learn_by_value(f"eq_{uuid.uuid4().hex[:8]}")
    for _ in range(20):
        f.__module__ = _Name(next(iter(xi._xi._by_value_modules())))
        assert interp.run(f) == 7
