"""Interpreter.exec() of a function (or code object) that may return a value is refused
with ValueError("code that returns a value is not a script"), as concurrent.interpreters
does, before anything runs; one that only returns None (implicitly, with a bare
``return`` or ``return None``) runs as a script."""
import sys

import pytest

import extrainterpreters as xi


def stdlib_only(test):
    """A test comparing with the standard library itself: not collected before Python
    3.14, where the tests beside it check the documented behaviour instead."""
    return test if sys.version_info >= (3, 14) else None


def returns_constant():
    script_ran = True  # noqa: F841
    return 1


def returns_on_a_branch():
    script_ran = True
    if script_ran:
        return "yes"


def returns_a_name():
    script_ran = True
    return script_ran


def generator():
    yield 1


async def coroutine():
    pass


def implicit_none():
    script_ran = "implicit"  # noqa: F841


def bare_return():
    global script_ran
    script_ran = "bare"
    return


def explicit_none():
    global script_ran
    script_ran = "explicit"
    return None


def nested_function_returns():
    global script_ran

    def inner():
        return 5

    script_ran = inner()


def only_raises():
    raise LookupError("raised by the script")


REFUSED = [returns_constant, returns_on_a_branch, returns_a_name, generator, coroutine,
           lambda: 3]
ACCEPTED = [implicit_none, bare_return, explicit_none, nested_function_returns,
            lambda: None]


def ids(funcs):
    return [f.__name__ if f.__name__ != "<lambda>" else f"lambda-{i}"
            for i, f in enumerate(funcs)]


@pytest.mark.parametrize("func", REFUSED, ids=ids(REFUSED))
@pytest.mark.parametrize("form", ["function", "code"])
def test_refused_before_anything_runs(interp, func, form):
    script = func if form == "function" else func.__code__
    with pytest.raises(ValueError, match="^code that returns a value is not a script$"):
        interp.exec(script)
    with pytest.raises(ValueError, match="^code that returns a value is not a script$"):
        interp.run_string(script)
    interp.exec("ran = 'script_ran' in globals()")
    assert interp.call(eval, "ran") is False


@pytest.mark.parametrize("func", ACCEPTED, ids=ids(ACCEPTED))
def test_none_returning_scripts_run(interp, func):
    interp.exec(func)
    interp.exec(func.__code__)


def test_accepted_scripts_set_their_globals(interp):
    interp.exec(bare_return)
    assert interp.call(eval, "script_ran") == "bare"
    interp.exec(explicit_none)
    assert interp.call(eval, "script_ran") == "explicit"
    interp.exec(nested_function_returns)
    assert interp.call(eval, "script_ran") == 5


def test_a_script_that_raises_is_run(interp):
    with pytest.raises(xi.ExecutionFailed, match="raised by the script"):
        interp.exec(only_raises)


@stdlib_only
@pytest.mark.parametrize("func", REFUSED + ACCEPTED, ids=ids(REFUSED + ACCEPTED))
def test_same_outcome_as_the_stdlib(interp, func):
    from concurrent import interpreters

    def outcome(target):
        try:
            target.exec(func)
        except ValueError as exc:
            return "ValueError", str(exc)
        return "ran", None

    std = interpreters.create()
    try:
        assert outcome(interp) == outcome(std)
    finally:
        std.close()
