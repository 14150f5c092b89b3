"""Tasks for tests/test_fallback.py: some need _testsinglephase, which isolated
interpreters refuse. Importable by interpreters and by process workers."""
import os

_marker = None


def needs_refused(x):
    import _testsinglephase  # noqa: F401 - the refusal is the point

    return x * 10, os.getpid()


def fine(x):
    return x + 1, os.getpid()


def refused_then_raises(message):
    import _testsinglephase  # noqa: F401

    raise ValueError(message)


def set_marker(value):
    global _marker
    _marker = value


def marker_after_refusal():
    import _testsinglephase  # noqa: F401

    return _marker


def side_effect_then_refused(path):
    with open(path, "a") as f:
        f.write("x")
    import _testsinglephase  # noqa: F401

    return os.getpid()
