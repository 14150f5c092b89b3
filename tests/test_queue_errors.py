"""The Queue's exception classes: one set per interpreter, made once, the same for every
thread, even when several threads raise their interpreter's first queue error at once."""
import queue as stdlib_queue

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit

NTHREADS = 8


def test_classes_derive_from_the_queue_module():
    assert issubclass(xi.QueueEmpty, stdlib_queue.Empty)
    assert issubclass(xi.QueueFull, stdlib_queue.Full)
    assert xi._xi._queue_errors() == (xi.QueueEmpty, xi.QueueFull, xi.QueueShutDown)


def test_one_set_per_interpreter(interp):
    there = interp.run(rf.first_queue_errors_at_once, 2)
    assert there == (2, 2, 0, True)


def test_first_errors_at_once_in_subinterpreters():
    """Each trial is a new interpreter, whose first queue errors race."""
    for trial in range(40):
        with xi.Interpreter() as it:
            out = it.run(rf.first_queue_errors_at_once, NTHREADS)
        assert out == (2, NTHREADS, 0, True), f"trial {trial}: {out}"


def test_first_errors_at_once_in_the_main_interpreter(run_py):
    """Each trial is a new process, whose main interpreter's first queue errors race."""
    code = """
        import sys
        sys.path.insert(0, sys.argv[1])
        import remote_funcs as rf
        print(rf.first_queue_errors_at_once(int(sys.argv[2])))
    """
    for trial in range(25):
        proc = run_py(code, args=(rf.__file__.rsplit("/", 1)[0], str(NTHREADS)))
        assert_clean_exit(proc)
        out = proc.stdout.strip()
        assert out == str((2, NTHREADS, 0, True)), f"trial {trial}: {out}"
