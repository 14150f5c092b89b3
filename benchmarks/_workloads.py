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


def event_ping(e1, e2, warm, n):
    """Side A of an Event ping-pong: set ``e1``, wait for ``e2``, clear it.

    ``warm`` untimed round trips, then ``n`` timed ones; returns seconds per round trip.
    The other side runs ``event_pong(e1, e2, warm + n)``."""
    set1, wait2, clear2 = e1.set, e2.wait, e2.clear
    for _ in range(warm):
        set1()
        wait2()
        clear2()
    t0 = time.perf_counter()
    for _ in range(n):
        set1()
        wait2()
        clear2()
    return (time.perf_counter() - t0) / n


def event_pong(e1, e2, n):
    """Side B of an Event ping-pong: wait for ``e1``, clear it, set ``e2``; ``n`` times."""
    wait1, clear1, set2 = e1.wait, e1.clear, e2.set
    for _ in range(n):
        wait1()
        clear1()
        set2()
    return n


def lock_ping(l1, l2, warm, n):
    """Side A of a strict lock hand-off: acquire ``l1`` (held until B releases it),
    release ``l2``.

    Starts with ``l1`` free and ``l2`` held, and leaves them so. Each step of either
    side is one hand-off, so ``n`` steps of both sides make ``2 * n`` hand-offs.
    ``warm`` untimed steps, then ``n`` timed ones; returns seconds per hand-off.
    The other side runs ``lock_pong(l1, l2, warm + n)``."""
    acq1, rel2 = l1.acquire, l2.release
    for _ in range(warm):
        acq1()
        rel2()
    t0 = time.perf_counter()
    for _ in range(n):
        acq1()
        rel2()
    return (time.perf_counter() - t0) / (2 * n)


def lock_pong(l1, l2, n):
    """Side B of a strict lock hand-off: acquire ``l2``, release ``l1``; ``n`` times."""
    acq2, rel1 = l2.acquire, l1.release
    for _ in range(n):
        acq2()
        rel1()
    return n


def pause(seconds):
    """Sleep, then return ``seconds`` (keeps a pool worker busy while others start)."""
    time.sleep(seconds)
    return seconds


def count_primes(lo, hi):
    """Number of primes p with lo <= p < hi, by trial division (pure Python, CPU-bound)."""
    count = 0
    for n in range(max(lo, 2), hi):
        if n < 4:
            count += 1
            continue
        if n % 2 == 0:
            continue
        d = 3
        while d * d <= n:
            if n % d == 0:
                break
            d += 2
        else:
            count += 1
    return count


def timed_primes(lo, hi):
    """(count_primes(lo, hi), CPU seconds that took in this thread)."""
    t0 = time.thread_time()
    n = count_primes(lo, hi)
    return n, time.thread_time() - t0
