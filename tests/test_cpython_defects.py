"""Defects of CPython itself that the library works around, each checked in a process of
its own (a crash there must not take the test run with it).

CPython 3.12 and 3.13, every patch release tried (3.12.1, 3.13.0, 3.13.18): two
subinterpreters that loaded datetime and overlap in time corrupt memory ("double free or
corruption", "free(): invalid pointer") unless the main interpreter loaded ``_datetime``
first (gh-136421, gh-136423; fixed in 3.14 only). The library loads it in the main
interpreter before it creates one.

CPython 3.12 (3.12.1 tried): a process whose subinterpreters imported hashlib aborts at
exit ("free(): invalid pointer", "double free or corruption") unless the main
interpreter imported it first. The library imports it in the main interpreter on 3.12.
"""
import sys

import pytest

from conftest import assert_clean_exit, run_py

OVERLAP = """
import extrainterpreters as xi

for _ in range(20):
    a, b = xi.Interpreter().start(), xi.Interpreter().start()
    a.exec("import datetime")
    b.exec("import datetime")
    a.close()
    b.exec("import datetime; datetime.datetime.now(); datetime.timedelta(3)")
    b.close()
print("done")
"""

POOL = """
import extrainterpreters as xi

def stamp(i):
    import datetime
    return datetime.date(2026, 1, 1 + i % 28).isoformat()

for _ in range(10):
    with xi.InterpreterPoolExecutor(4) as pool:
        assert list(pool.map(stamp, range(8))) == [stamp(i) for i in range(8)]
print("done")
"""


@pytest.mark.parametrize("code", [OVERLAP, POOL], ids=["overlapping", "pool"])
def test_datetime_in_overlapping_interpreters(code):
    # three processes where the defect lives, one where CPython fixed it
    for _ in range(3 if sys.version_info < (3, 14) else 1):
        proc = run_py(code, timeout=240)
        assert_clean_exit(proc)
        assert proc.stdout.strip() == "done"


HASHLIB = """
import extrainterpreters as xi

def digest(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()[:12]

with xi.InterpreterPoolExecutor(2) as pool:
    assert list(pool.map(digest, [b"a", b"b"] * 4)) == [digest(b"a"), digest(b"b")] * 4
print("done")
"""


def test_hashlib_in_interpreters_then_exit():
    for _ in range(3):
        proc = run_py(HASHLIB, timeout=120)
        assert_clean_exit(proc)
        assert proc.stdout.strip() == "done"
