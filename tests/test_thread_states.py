"""The thread states that threads calling into an interpreter leave cached there: they
are deleted when their thread exits or when the interpreter closes, whichever comes
first, and both may happen at once. Races are checked by many rounds (run under ASan
by `make test-asan`, where a use after free fails)."""
import threading

import extrainterpreters as xi
import remote_funcs as rf

ROUNDS = 200
THREADS = 32


def test_close_while_the_threads_that_called_exit():
    # each thread leaves a cached thread state, then exits just as close() deletes them
    for _ in range(ROUNDS):
        interp = xi.Interpreter().start()
        barrier = threading.Barrier(THREADS + 1)
        results = []

        def worker():
            results.append(interp.run(len, "abc"))
            barrier.wait()

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for t in threads:
            t.start()
        barrier.wait()
        interp.close()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert results == [3] * THREADS


def test_threads_exit_then_interpreter_is_entered_again():
    # the next call deletes the thread states that exited threads left
    with xi.Interpreter() as interp:
        for _ in range(20):
            threads = [threading.Thread(target=interp.run, args=(len, "ab"))
                       for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert interp.run(rf.add, 1, 2) == 3


def test_thread_calls_again_after_the_interpreter_closed():
    # a thread whose entry was retired by the close gets a clear error (through a
    # handle of the record, past the Interpreter's own check), then can call a new one
    first = xi.Interpreter().start()
    handle = first._handle
    go, closed = threading.Event(), threading.Event()
    box = {}

    def worker():
        box["a"] = first.run(len, "abc")
        go.set()
        closed.wait(30)
        try:
            handle.call(len, "abc")
        except xi.InterpreterError as e:
            box["err"] = e
        with xi.Interpreter() as second:
            box["b"] = second.run(len, "ab")

    t = threading.Thread(target=worker)
    t.start()
    assert go.wait(30)
    first.close()
    closed.set()
    t.join(30)
    assert not t.is_alive()
    assert box["a"] == 3 and box["b"] == 2
    assert isinstance(box.get("err"), xi.InterpreterError)
