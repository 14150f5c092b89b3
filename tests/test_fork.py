"""Processes beside live interpreters. os.fork() with subinterpreters alive is not
supported (CPython aborts or hangs the child on 3.12 and 3.13, with its own
_interpreters too); multiprocessing's spawn and forkserver contexts, which start a
fresh interpreter in the child, work, also while calls run, and the child can make
interpreters of its own."""
import multiprocessing

import pytest

import extrainterpreters as xi
import interrupt_funcs as inf
import remote_funcs as rf
from helpers import call_in_thread


def child_work(a, b):
    """Runs in the child process: an interpreter of its own, a call there."""
    import extrainterpreters as xi
    import remote_funcs as rf

    with xi.Interpreter() as it:
        return it.run(rf.add, a, b)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_multiprocessing_beside_live_interpreters(method, interps):
    ctx = multiprocessing.get_context(method)
    idle, busy = interps(2)
    # a call runs in one interpreter the whole time
    running = call_in_thread(busy, inf.count_interrupts, 1, 60)
    try:
        with ctx.Pool(2) as pool:
            assert pool.starmap(child_work, [(1, 2), (3, 4)]) == [3, 7]
            assert pool.apply(rf.add, (5, 6)) == 11
        q = ctx.Queue()
        p = ctx.Process(target=rf.put_in_mp_queue, args=(q, "from child"))
        p.start()
        assert q.get(timeout=60) == "from child"
        p.join(60)
        assert p.exitcode == 0
        # the parent's interpreters are untouched
        assert idle.run(rf.add, 1, 1) == 2
        assert busy.is_running()
    finally:
        busy.interrupt()
    assert running() == 1
