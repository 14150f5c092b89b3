"""A module that imports _testsinglephase at its top: isolated interpreters cannot
import it, and its task uses it (tests/test_fallback.py)."""
import os

import _testsinglephase


def task(x):
    return _testsinglephase.__name__, x, os.getpid()
