"""Functions sent by value carry their code exactly: code objects cross as marshal
writes them (what the compiler recorded about each local included), and code that
marshal cannot write (a constant of another type, put there by hand) still crosses."""
import decimal
import marshal

import pytest


def make_nested():
    def nested(a, /, b, *args, c=3, **kwargs):
        def inner(z):
            return z * 2
        return inner(a) + b + c + len(args) + len(kwargs)
    return nested


def same(f):
    return f


def test_a_nested_function_crosses_and_runs(interp):
    f = make_nested()
    assert interp.run(f, 1, 2, 9, 9, c=4, k=0) == 2 + 2 + 4 + 2 + 1


def test_the_code_that_comes_back_is_the_code_that_was_sent(interp):
    f = make_nested()
    back = interp.run(same, f)
    assert back is not f
    assert back.__code__ == f.__code__
    inner = [c for c in f.__code__.co_consts if hasattr(c, "co_code")]
    assert inner and inner == [c for c in back.__code__.co_consts if hasattr(c, "co_code")]
    assert back(1, 2) == f(1, 2)


try:  # CPython's own counter of the kinds of locals (3.14+)
    from _testinternalcapi import get_code_var_counts
except ImportError:
    get_code_var_counts = None

if get_code_var_counts is not None:
    def test_the_kinds_of_the_locals_survive(interp):
        # the CodeType constructor, which cloudpickle rebuilds code with, counts the
        # arguments as plain locals
        f = make_nested()
        back = interp.run(same, f)
        assert get_code_var_counts(back) == get_code_var_counts(f)
        assert get_code_var_counts(back)["locals"]["args"]["total"] == 5  # a, b, args, c, kwargs


def test_code_with_a_constant_marshal_cannot_write(interp):
    const = decimal.Decimal("1.5")

    def g():
        return 12345
    consts = tuple(const if c == 12345 else c for c in g.__code__.co_consts)
    g.__code__ = g.__code__.replace(co_consts=consts)
    assert g() == const
    with pytest.raises(ValueError):
        marshal.dumps(g.__code__)
    assert interp.run(g) == const
    assert interp.run(same, g)() == const


class Tag(bytes):
    pass


def test_a_constant_that_marshal_would_change(interp):
    # marshal writes a bytes subclass as bytes: such code crosses through cloudpickle
    def g():
        return b"spam"
    consts = tuple(Tag(c) if c == b"spam" else c for c in g.__code__.co_consts)
    g.__code__ = g.__code__.replace(co_consts=consts)
    assert type(interp.run(g)) is Tag
    assert type(interp.run(same, g)()) is Tag


def test_nested_code_with_a_constant_of_another_type(interp):
    def outer():
        def inner():
            return 12345
        return inner()
    inner_code = next(c for c in outer.__code__.co_consts if isinstance(c, type(outer.__code__)))
    inner_code = inner_code.replace(co_consts=tuple(
        decimal.Decimal("2.5") if c == 12345 else c for c in inner_code.co_consts))
    outer.__code__ = outer.__code__.replace(co_consts=tuple(
        inner_code if isinstance(c, type(inner_code)) else c for c in outer.__code__.co_consts))
    assert outer() == decimal.Decimal("2.5")
    assert interp.run(outer) == decimal.Decimal("2.5")
