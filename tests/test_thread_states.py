"""The thread states that threads calling into an interpreter leave cached there: they
are deleted when their thread exits or when the interpreter closes, whichever comes
first, and both may happen at once. Races are checked by many rounds (run under ASan
by `make test-asan`, where a use after free fails)."""
import threading

import extrainterpreters as xi
import remote_funcs as rf
from extrainterpreters import _xi

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


def test_a_long_lived_thread_keeps_no_entry_of_closed_interpreters():
    # a server thread that creates, calls and closes one interpreter per request: the
    # entries of the closed ones leave its list (with the records they keep) by its
    # next call, so the list does not grow with the number of interpreters
    lengths = []

    def server():
        with xi.Interpreter() as keeper:
            assert keeper.run(len, "a") == 1  # an entry that stays
            for _ in range(ROUNDS):
                with xi.Interpreter() as interp:
                    assert interp.run(len, "abc") == 3
                    lengths.append(_xi._thread_cache_len())
            assert keeper.run(len, "ab") == 2
            lengths.append(_xi._thread_cache_len())

    t = threading.Thread(target=server)
    t.start()
    t.join(300)
    assert not t.is_alive()
    assert len(lengths) == ROUNDS + 1
    assert max(lengths) == 2, lengths[-5:]  # the keeper's and the current one's
    assert lengths[-1] == 1, "the last closed interpreter's entry is left"
