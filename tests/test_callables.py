"""Callables of every kind reach the interpreter: by reference when pickle can name
them, by value otherwise (lambdas, closures, nested functions, ``__main__`` code of a
script, of ``python -c`` and of the interactive REPL)."""
import functools
import operator
import subprocess
import sys
import textwrap

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit


def test_module_level_function(interp):
    assert interp.run(rf.add, 1, 2) == 3


def test_lambda(interp):
    assert interp.run(lambda x, y: x * y, 6, 7) == 42


def test_lambda_without_arguments(interp):
    assert interp.run(lambda: "nothing in") == "nothing in"


def test_closure(interp):
    base = 100
    items = [1, 2, 3]

    def f(x):
        return base + x + sum(items)

    assert interp.run(f, 5) == 111


def test_closure_over_module_function(interp):
    offset = 10

    def f(a, b):
        return rf.add(a, b) + offset

    assert interp.run(f, 1, 2) == 13


def test_nested_functions(interp):
    def outer(n):
        def inner(k):
            return k * 2

        return [inner(i) for i in range(n)]

    assert interp.run(outer, 4) == [0, 2, 4, 6]


def test_recursive_local_function(interp):
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    assert interp.run(fact, 10) == 3628800


def test_function_returning_a_lambda(interp):
    # the result is itself a callable that cannot be named
    f = interp.run(lambda k: (lambda x: x + k), 5)
    assert f(1) == 6


def test_local_function_using_imports(interp):
    def f():
        import json
        return json.dumps({"a": [1, 2]}, sort_keys=True)

    assert interp.run(f) == '{"a": [1, 2]}'


def test_partial_of_module_function(interp):
    p = functools.partial(rf.add, 1, c=100)
    assert interp.run(p, 2) == 103


def test_partial_of_lambda(interp):
    p = functools.partial(lambda a, b: a - b, 10)
    assert interp.run(p, 3) == 7


def test_bound_method_of_importable_class(interp):
    p = rf.Point(3, 4)
    assert interp.run(p.norm2) == 25
    assert interp.run(p.scaled, 3) == rf.Point(9, 12)


def test_classmethod_and_staticmethod(interp):
    assert interp.run(rf.Point.origin) == rf.Point(0, 0)
    assert interp.run(rf.Point.static_add, 2, 3) == 5


def test_bound_method_of_local_class(interp):
    class Acc:
        def __init__(self, start):
            self.start = start

        def plus(self, x):
            return self.start + x

    assert interp.run(Acc(40).plus, 2) == 42


def test_instance_of_local_class_as_argument_and_result(interp):
    class Box:
        def __init__(self, v):
            self.v = v

    out = interp.run(lambda b: Box(b.v * 2), Box(21))
    assert type(out).__name__ == "Box"
    assert out.v == 42


def test_bound_method_of_builtin(interp):
    assert interp.run("abc".upper) == "ABC"
    assert interp.run([3, 1, 3].count, 3) == 2


@pytest.mark.parametrize(
    "func,args,expected",
    [
        (len, ([1, 2, 3],), 3),
        (sorted, ([3, 1, 2],), [1, 2, 3]),
        (max, (4, 9, 2), 9),
        (operator.mul, (6, 7), 42),
        (str.join, (",", ["a", "b"]), "a,b"),
        (dict.fromkeys, ("ab", 0), {"a": 0, "b": 0}),
    ],
)
def test_builtins(interp, func, args, expected):
    assert interp.run(func, *args) == expected


def test_builtin_with_kwargs(interp):
    assert interp.run(sorted, ["bb", "a", "ccc"], key=len, reverse=True) == ["ccc", "bb", "a"]


def test_callable_instance(interp):
    class Mul:
        def __init__(self, k):
            self.k = k

        def __call__(self, x):
            return self.k * x

    assert interp.run(Mul(3), 5) == 15


def test_generator_function_result_consumed_inside(interp):
    def gen_sum(n):
        def g():
            yield from range(n)

        return sum(g())

    assert interp.run(gen_sum, 5) == 10


def test_lambda_in_threaded_call(interp):
    scale = 7
    t = interp.call_in_thread(lambda x: x * scale, 6)
    t.join(30)
    assert interp.result() == 42


def test_lambda_as_target():
    it = xi.Interpreter(target=lambda a, b=0: a + b, args=(40,), kwargs={"b": 2}).start()
    it.join()
    assert it.result() == 42


# --- __main__ of a script, python -c, and the REPL (subprocesses) ---------------------------

SCRIPT_GUARDED = """
import extrainterpreters as xi

FACTOR = 3

def plus_one(x):
    return x + 1

def compute(x):
    return plus_one(x) * FACTOR

class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b
    def total(self):
        return self.a + self.b

if __name__ == "__main__":
    with xi.Interpreter() as it:
        print("RESULT", it.run(compute, 4))
        print("METHOD", it.run(Pair(20, 22).total))
        print("LAMBDA", it.run(lambda s: s[::-1], "olleh"))
        t = it.call_in_thread(compute, 1)
        t.join()
        print("THREADED", it.result())
"""


def test_function_in_script_main(tmp_path, run_script):
    script = tmp_path / "guarded.py"
    script.write_text(SCRIPT_GUARDED)
    proc = run_script(script, timeout=60, cwd=tmp_path)
    assert_clean_exit(proc)
    lines = proc.stdout.splitlines()
    assert "RESULT 15" in lines
    assert "METHOD 42" in lines
    assert "LAMBDA hello" in lines
    assert "THREADED 6" in lines


SCRIPT_UNGUARDED = """
import extrainterpreters as xi
print("TOPLEVEL")

def work(x):
    return x * 2

it = xi.Interpreter().start()
print("RESULT", it.run(work, 21))
it.close()
"""


def test_function_in_unguarded_script_main(tmp_path, run_script):
    # a script that is not import-safe: its functions still work and the script is
    # not run again inside the interpreter
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT_UNGUARDED)
    proc = run_script(script, timeout=60, cwd=tmp_path)
    assert_clean_exit(proc)
    assert proc.stdout.splitlines() == ["TOPLEVEL", "RESULT 42"]


def test_function_in_python_c(run_py):
    code = """
    import extrainterpreters as xi
    K = 5
    def f(x):
        return x * K
    def g():
        return [f(i) for i in range(3)]
    with xi.Interpreter() as it:
        print("RESULT", it.run(f, 3), it.run(g), it.run(lambda: K + 1))
    """
    proc = run_py(code, timeout=60)
    assert_clean_exit(proc)
    assert "RESULT 15 [0, 5, 10] 6" in proc.stdout.splitlines()


def test_function_in_python_c_prepare_main(run_py):
    code = """
    import extrainterpreters as xi
    def square(x):
        return x * x
    with xi.Interpreter() as it:
        it.prepare_main(square=square)
        it.exec("r = square(9)")
        it.exec("assert r == 81, r")
        print("OK")
    """
    proc = run_py(code, timeout=60)
    assert_clean_exit(proc)
    assert "OK" in proc.stdout.splitlines()


REPL_INPUT = """\
import readline
import extrainterpreters as xi
def f(x):
    return x * 7

class Counter:
    def __init__(self):
        self.n = 3
    def get(self):
        return self.n

interp = xi.Interpreter().start()
print("RESULT", interp.run(f, 6))
print("LAMBDA", interp.run(lambda s: s.upper(), "repl"))
print("METHOD", interp.run(Counter().get))
interp.close()
print("DONE")
"""


def test_function_in_repl():
    # drive the interactive interpreter through a pipe; the REPL's own module
    # ``readline`` is imported in the main interpreter only
    proc = subprocess.run(
        [sys.executable, "-i", "-q"],
        input=REPL_INPUT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout.splitlines()
    assert "RESULT 42" in out, proc.stdout + proc.stderr
    assert "LAMBDA REPL" in out, proc.stdout + proc.stderr
    assert "METHOD 3" in out, proc.stdout + proc.stderr
    assert "DONE" in out, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert_clean_exit(proc)


def test_function_in_repl_threaded_target():
    text = textwrap.dedent("""\
        import extrainterpreters as xi
        def g(a, b):
            return a ** b

        it = xi.Interpreter(target=g, args=(2, 10)).start()
        it.join()
        print("RESULT", it.result())
        """)
    proc = subprocess.run(
        [sys.executable, "-i", "-q"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "RESULT 1024" in proc.stdout.splitlines(), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert_clean_exit(proc)
