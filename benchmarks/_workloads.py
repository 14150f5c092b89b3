"""Functions the benchmarks send to interpreters, threads and processes.

They live in an importable module (not in a script's ``__main__``) so that every
contender, including the stdlib pools and extrainterpreters 0.3.0, receives them by
reference, the same way.
"""
import time


def identity(x):
    return x


def noop():
    return None


def make_bytes(n):
    return bytes(n)


def time_make_bytes(n, reps=1):
    """Per-call seconds of ``bytes(n)`` where this runs (each result is dropped)."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        b = bytes(n)
        out.append(time.perf_counter() - t0)
        del b
    return out


def cpu_work(n):
    """Pure-Python CPU-bound loop: sum of i*i for i < n."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def pong(q_in, q_out):
    """Answer every int ``i`` got from ``q_in`` with ``i + 1`` on ``q_out``.

    A tuple ``("produce", n, size)`` puts ``n`` items of ``bytes(size)`` on ``q_out``
    instead. ``None`` ends the loop (it is echoed); returns how many ints were answered.
    """
    answered = 0
    while True:
        x = q_in.get()
        if x is None:
            q_out.put(None)
            return answered
        if type(x) is tuple:
            produce(q_out, x[1], x[2])
            continue
        q_out.put(x + 1)
        answered += 1


def produce(q, n, size):
    """Put the same ``bytes(size)`` object on ``q`` ``n`` times."""
    chunk = bytes(size)
    put = q.put
    for _ in range(n):
        put(chunk)
    return n


def consume(q, n):
    """Get ``n`` items from ``q``; returns the sum of their lengths."""
    get = q.get
    total = 0
    for _ in range(n):
        total += len(get())
    return total


def buffer_len(buf):
    return len(memoryview(buf))


def buffer_peek(buf, i):
    return memoryview(buf)[i]
