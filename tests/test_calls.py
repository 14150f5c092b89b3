"""Calls into an interpreter: run/call, exec/run_string, prepare_main, threaded calls."""
import math
import os
import sys
import threading
import time

import pytest
from hypothesis import given, strategies as st

import extrainterpreters as xi
import remote_funcs as rf


# --- run / call ---------------------------------------------------------------------------

def test_run_returns_result(interp):
    assert interp.run(rf.add, 2, 3) == 5


def test_call_is_run(interp):
    assert interp.call(rf.add, 2, 3) == 5
    assert interp.call(rf.add, 1, 2, c=3) == 6


def test_args_and_kwargs(interp):
    assert interp.run(rf.add, 1, 2, c=3) == 6
    assert interp.run(rf.add, 1, b=2, c=3) == 6
    assert interp.run(rf.echo_args, 1, "two", x=[3], y={"4": 4}) == ((1, "two"), {"x": [3], "y": {"4": 4}})


def test_func_is_positional_only(interp):
    # a keyword argument named like the parameters of run() reaches the callee
    assert interp.run(rf.echo_args, func=1, args=2, kwargs=3) == ((), {"func": 1, "args": 2, "kwargs": 3})
    assert interp.run(dict, func=1) == {"func": 1}


def test_result_kinds(interp):
    assert interp.run(rf.identity, None) is None
    assert interp.run(rf.identity, True) is True
    assert interp.run(rf.identity, (1, (2, 3))) == (1, (2, 3))
    assert interp.run(rf.identity, {1, 2, frozenset({3})}) == {1, 2, frozenset({3})}
    assert interp.run(rf.identity, 2**200) == 2**200
    assert interp.run(rf.identity, 1 + 2j) == 1 + 2j
    assert interp.run(rf.Point(3, 4).scaled, 2) == rf.Point(6, 8)
    assert interp.run(rf.identity, "ü€𝄞") == "ü€𝄞"


def test_call_runs_in_the_interpreter(interp):
    assert interp.run(rf.current_id) == interp.id


def test_mutation_of_argument_does_not_leak_back(interp):
    data = [1, 2, 3]
    assert interp.run(list.append, data, 4) is None
    assert data == [1, 2, 3]  # the callee worked on a copy


def test_module_state_persists_between_calls(interp):
    assert interp.run(rf.bump_counter) == 1
    assert interp.run(rf.bump_counter) == 2
    assert interp.run(rf.get_counter) == 2
    assert rf.COUNTER == 0


def test_many_sequential_calls(interp):
    for i in range(2000):
        assert interp.run(rf.add, i, 1) == i + 1


def test_calls_from_non_main_thread(interp):
    out = []
    t = threading.Thread(target=lambda: out.append(interp.run(rf.add, 20, 22)))
    t.start()
    t.join(30)
    assert out == [42]


def test_two_threads_call_same_interpreter_concurrently(interp):
    errors = []
    results = {0: [], 1: []}

    def worker(k):
        try:
            for i in range(100):
                if i % 25 == 0:
                    results[k].append(interp.run(rf.sleep_then, 0.02, (k, i)))
                else:
                    results[k].append(interp.run(rf.add, k * 1000, i))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    # the main thread calls in too
    main_results = [interp.run(rf.add, -1, i) for i in range(100)]
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert main_results == [i - 1 for i in range(100)]
    for k in (0, 1):
        expected = [(k, i) if i % 25 == 0 else k * 1000 + i for i in range(100)]
        assert results[k] == expected


def test_two_interpreters_in_two_threads(tmp_path):
    a = xi.Interpreter().start()
    b = xi.Interpreter().start()
    try:
        out = {}
        ta = threading.Thread(target=lambda: out.setdefault("a", [a.run(rf.add, i, 1) for i in range(200)]))
        tb = threading.Thread(target=lambda: out.setdefault("b", [b.run(rf.add, i, 2) for i in range(200)]))
        ta.start()
        tb.start()
        ta.join(60)
        tb.join(60)
        assert out["a"] == [i + 1 for i in range(200)]
        assert out["b"] == [i + 2 for i in range(200)]
    finally:
        a.close()
        b.close()


# --- exec / run_string ---------------------------------------------------------------------

def test_exec_runs_in_main_namespace(interp):
    assert interp.exec("x = 40 + 2") is None
    assert interp.run(rf.get_main_attr, "x") == 42
    assert interp.run_string("y = x + 1") is None
    assert interp.run(rf.get_main_attr, "y") == 43


def test_exec_multiline_and_functions(interp):
    interp.exec(
        "import math\n"
        "def hyp(a, b):\n"
        "    return math.hypot(a, b)\n"
        "z = hyp(3, 4)\n"
    )
    assert interp.run(rf.get_main_attr, "z") == 5.0
    assert interp.run(rf.call_main_attr, "hyp", 6, 8) == 10.0


def test_exec_name_is_main(interp):
    interp.exec("seen_name = __name__")
    assert interp.run(rf.get_main_attr, "seen_name") == "__main__"


def test_exec_syntax_error(interp):
    with pytest.raises(xi.ExecutionFailed) as ei:
        interp.exec("def broken(:\n    pass")
    assert ei.value.excinfo.type.__name__ == "SyntaxError"
    assert interp.run(rf.add, 1, 2) == 3


def test_run_string_syntax_error(interp):
    with pytest.raises(SyntaxError):
        interp.run_string("def broken(:\n    pass")
    assert interp.run(rf.add, 1, 2) == 3


def test_exec_exception(interp):
    with pytest.raises(xi.ExecutionFailed, match="from exec") as ei:
        interp.exec("raise ValueError('from exec')")
    assert ei.value.excinfo.type.__name__ == "ValueError"
    assert ei.value.excinfo.formatted == "ValueError: from exec"
    interp.exec("ok = 1")
    assert interp.run(rf.get_main_attr, "ok") == 1


def test_exec_does_not_touch_caller_main(interp):
    import __main__
    interp.exec("only_there_7f3a = 1")
    assert not hasattr(__main__, "only_there_7f3a")


# --- prepare_main ---------------------------------------------------------------------------

def test_prepare_main_dict_and_kwargs(interp):
    assert interp.prepare_main({"a": 1, "b": [2, 3]}, c="four") is None
    interp.exec("d = a + sum(b) + len(c)")
    assert interp.run(rf.get_main_attr, "d") == 10


def test_prepare_main_only_kwargs_and_only_dict(interp):
    interp.prepare_main(p=1)
    interp.prepare_main({"q": 2})
    interp.exec("r = p + q")
    assert interp.run(rf.get_main_attr, "r") == 3


def test_prepare_main_overwrites(interp):
    interp.prepare_main(v=1)
    interp.prepare_main(v=2)
    assert interp.run(rf.get_main_attr, "v") == 2


def test_prepare_main_with_callables(interp):
    factor = 3
    interp.prepare_main(triple=lambda x: x * factor, addf=rf.add)
    interp.exec("w = triple(addf(1, 2))")
    assert interp.run(rf.get_main_attr, "w") == 9


def test_prepare_main_values_are_copies(interp):
    data = {"k": [1]}
    interp.prepare_main(data=data)
    interp.exec("data['k'].append(2)")
    assert data == {"k": [1]}
    assert interp.run(rf.get_main_attr, "data") == {"k": [1, 2]}


# --- threaded calls ----------------------------------------------------------------------------

def test_run_in_thread_returns_true_then_result(interp):
    assert interp.run_in_thread(rf.add, 1, 2, c=3) is True
    deadline = time.monotonic() + 30
    while not interp.done():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert interp.result() == 6


def test_run_in_thread_kwargs_named_func(interp):
    interp.run_in_thread(rf.echo_args, func="f")
    deadline = time.monotonic() + 30
    while not interp.done():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert interp.result() == ((), {"func": "f"})


def test_call_in_thread_result_and_done(interp):
    t = interp.call_in_thread(rf.echo_args, 1, k=2)
    assert isinstance(t, threading.Thread)
    t.join(30)
    assert interp.done()
    assert interp.result() == ((1,), {"k": 2})


def test_threaded_call_runs_in_its_thread(interp):
    t = interp.call_in_thread(rf.thread_ident)
    t.join(30)
    assert interp.result() == t.ident


def test_sequential_threaded_calls(interp):
    for i in range(20):
        t = interp.call_in_thread(rf.add, i, i)
        t.join(30)
        assert interp.result() == 2 * i


def test_threaded_call_and_direct_calls_together(interp, tmp_path):
    stop = tmp_path / "stop"
    interp.run_in_thread(rf.busy_until_file, str(stop))
    try:
        # direct calls from the main thread keep working while the threaded call runs
        for i in range(20):
            assert interp.run(rf.add, i, 1) == i + 1
    finally:
        stop.write_text("x")
    interp.join()
    assert isinstance(interp.result(), int)


# --- sys.path and working directory -------------------------------------------------------------

def test_sys_path_of_creator_is_seen(tmp_path, monkeypatch):
    modname = "xi_tmpmod_syspath"
    (tmp_path / f"{modname}.py").write_text(
        "def triple(x):\n    return 3 * x\n\nMARK = 'from tmp_path'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with xi.Interpreter() as it:
        assert str(tmp_path) in it.run(rf.sys_path)
        # not imported in the caller: importable by name in there
        it.exec(f"import {modname}; got = {modname}.MARK")
        assert it.run(rf.get_main_attr, "got") == "from tmp_path"
        # imported in the caller: its function travels by reference
        import importlib
        mod = importlib.import_module(modname)
        try:
            assert it.run(mod.triple, 5) == 15
        finally:
            sys.modules.pop(modname, None)


def test_package_on_sys_path(tmp_path, monkeypatch):
    pkg = tmp_path / "xi_tmppkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "inner.py").write_text("def hello(name):\n    return 'hello ' + name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import xi_tmppkg.inner
    try:
        with xi.Interpreter() as it:
            assert it.run(xi_tmppkg.inner.hello, "there") == "hello there"
    finally:
        for name in ("xi_tmppkg.inner", "xi_tmppkg"):
            sys.modules.pop(name, None)


def test_working_directory_is_shared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.txt").write_text("relative")
    with xi.Interpreter() as it:
        assert it.run(rf.getcwd) == os.getcwd()
        it.exec("with open('data.txt') as f: content = f.read()")
        assert it.run(rf.get_main_attr, "content") == "relative"


# --- nesting --------------------------------------------------------------------------------------

def test_interpreter_created_inside_interpreter(interp):
    outer, inner, total, inner_seen = interp.run(rf.nested_call, 20, 22)
    assert outer == interp.id
    assert total == 42
    assert inner == inner_seen
    assert inner not in (outer, xi.get_main().id)
    assert inner not in {i.id for i in xi.list_all()}  # closed by its with-block


def test_nested_lambda_call(interp):
    def inner_call(v):
        import extrainterpreters as xi2
        with xi2.Interpreter() as it2:
            return it2.run(lambda y: y * 2, v)

    assert interp.run(inner_call, 21) == 42


# --- round trip of arbitrary values ----------------------------------------------------------------

def same(a, b):
    """Equality that treats nan as equal to nan and checks types and signed zeros."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
    | st.binary(max_size=200)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@given(value=values)
def test_round_trip_values(shared_interp, value):
    assert same(shared_interp.run(rf.identity, value), value)


@given(args=st.lists(values, max_size=4), kwargs=st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), values, max_size=4))
def test_round_trip_args_kwargs(shared_interp, args, kwargs):
    got_args, got_kwargs = shared_interp.run(rf.echo_args, *args, **kwargs)
    assert same(list(got_args), args)
    assert same(got_kwargs, kwargs)
