"""The tests of extrainterpreters 0.3.0, run against this library.

Each test_030_*.py file holds the tests of the 0.3.0 file of the same name (tests/
test_basic.py, test_queue.py, test_lock.py, test_boards.py, test_struct.py,
test_low_level.py of the 0.3.0 release), under the same names and checking the same
things, written for this suite: what 0.3.0's users write (its API and idioms) is used
as they wrote it. The tests 0.3.0 skipped are skipped here too, with its reason.

The tests that drive 0.3.0's internals are listed, each with its reason, in
expected_failures.txt next to this file: they are marked xfail(strict=True), so each
must fail, and every test not listed must pass."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _expected_failures():
    failures = {}
    with open(os.path.join(HERE, "expected_failures.txt")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                test_id, _, reason = line.partition(" ")
                failures[test_id] = reason
    return failures


EXPECTED_FAILURES = _expected_failures()


def pytest_collection_modifyitems(config, items):
    seen_files, seen = set(), set()
    for item in items:
        path = str(item.path)
        if os.path.dirname(path) != HERE:
            continue
        test_id = f"{os.path.basename(path)}::{item.name}"
        seen_files.add(os.path.basename(path))
        reason = EXPECTED_FAILURES.get(test_id)
        if reason is not None:
            seen.add(test_id)
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"0.3.0 internals: {reason}"))
    # a listed test that is gone would go unnoticed: when whole files are collected,
    # every listed test of theirs must be there
    narrowed = (config.option.keyword or config.option.markexpr
                or any("::" in str(arg) for arg in config.args))
    missing = [t for t in EXPECTED_FAILURES
               if t.partition("::")[0] in seen_files and t not in seen]
    if missing and not narrowed:
        raise pytest.UsageError(f"expected_failures.txt names tests that do not exist: {missing}")


@pytest.fixture
def lowlevel():
    """0.3.0's fixture: its package attribute DEBUG allowed its low-level methods."""
    import extrainterpreters

    extrainterpreters.DEBUG = True
    yield
    del extrainterpreters.DEBUG


@pytest.fixture
def add_current_path():
    """0.3.0's fixture: this folder on sys.path (for helper_030), before interpreters
    are made (they start with a copy of sys.path)."""
    path = sys.path[:]
    sys.path.insert(0, HERE)
    try:
        yield
    finally:
        sys.path[:] = path
