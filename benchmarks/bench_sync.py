"""Synchronization primitive benchmarks: Lock, RLock, Semaphore, Event.

    python benchmarks/bench_sync.py [--quick] [--check] [--only 1,2,3]

Every measurement runs extrainterpreters and its baseline in this same process run,
in alternating order, over several rounds; the table shows the median round of each
and their ratio. Absolute times on a shared machine mean little: the ratios are what
the targets are about.

  1. Uncontended, one thread: ``lock.acquire(); lock.release()`` on an ``xi.Lock`` vs a
     ``threading.Lock``; for reference ``with lock: pass``, ``xi.RLock`` vs
     ``threading.RLock`` and ``xi.Semaphore`` vs ``threading.Semaphore``.
  2. Event ping-pong with two Events e1, e2. Side A: ``e1.set(); e2.wait();
     e2.clear()``; side B: ``e1.wait(); e1.clear(); e2.set()``. Side A runs in the main
     thread of the main interpreter, side B in a subinterpreter (``call_in_thread``);
     round trip vs side B in a second thread with ``threading.Event``. For reference:
     A and B in two subinterpreters, and both sides in two threads of the main
     interpreter with ``xi.Event``.
  3. Strict lock hand-off with two locks L1 (free) and L2 (held) used as binary
     semaphores. Side A: ``L1.acquire(); L2.release()``; side B: ``L2.acquire();
     L1.release()``. Every acquire blocks until the other side's release, so each step
     of either side hands the turn over once; time per hand-off, 100,000 hand-offs per
     round. Side A in the main thread, side B in a subinterpreter, vs side B in a
     second thread with ``threading.Lock``; the same two references as in 2.

In 2. and 3. both sides run some untimed warm-up steps first (which also cover starting
the second thread); side A times the rest.

The exit code is 0 even when a target is missed, unless ``--check`` is given.
"""
import os
import sys
import threading

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

from _workloads import (  # noqa: E402
    event_ping,
    event_pong,
    identity,
    lock_ping,
    lock_pong,
)
import _bench  # noqa: E402
from _bench import (Row, alternate, arg_parser, begin, finish, load_xi, med, perf,  # noqa: E402
                    progress, section_runner)

JOIN_TIMEOUT = 120


def fmt_t(s):
    """Like _bench.fmt_t, in ns below 1 us (the uncontended rows)."""
    if s is not None and s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    return _bench.fmt_t(s)


class SyncRow(Row):
    def cells(self):
        cells = super().cells()
        if self.error is None:
            cells[1], cells[2] = fmt_t(self.ours), fmt_t(self.base)
        return cells


# ---------------------------------------------------------------- 1. uncontended

def loop_acquire_release(lock, n):
    acquire, release = lock.acquire, lock.release
    t0 = perf()
    for _ in range(n):
        acquire()
        release()
    return (perf() - t0) / n


def loop_with(lock, n):
    t0 = perf()
    for _ in range(n):
        with lock:
            pass
    return (perf() - t0) / n


def loop_empty(n):
    t0 = perf()
    for _ in range(n):
        pass
    return (perf() - t0) / n


def bench_uncontended(xi, cfg, rows):
    rounds, n = cfg.rounds_1, cfg.ops_1
    pairs = [
        ("1. Lock acquire()+release() vs threading.Lock", loop_acquire_release,
         xi.Lock(), threading.Lock(), 2.0),
        ("1. Lock `with lock:` vs threading.Lock (info)", loop_with,
         xi.Lock(), threading.Lock(), None),
        ("1. RLock acquire()+release() vs threading.RLock (info)", loop_acquire_release,
         xi.RLock(), threading.RLock(), None),
        ("1. RLock `with lock:` vs threading.RLock (info)", loop_with,
         xi.RLock(), threading.RLock(), None),
        ("1. Semaphore acquire()+release() vs threading.Semaphore (info)",
         loop_acquire_release, xi.Semaphore(1), threading.Semaphore(1), None),
    ]
    empty = []
    for name, loop, ours_lock, base_lock, target in pairs:
        loop(ours_lock, 2000)
        loop(base_lock, 2000)
        progress(f"{name}: {rounds} rounds x {n:,}")
        o, b, e = alternate(rounds, lambda: loop(ours_lock, n), lambda: loop(base_lock, n),
                            lambda: loop_empty(n))
        empty += e
        note = ""
        if target is not None:
            note = (f"{n:,} pairs per round, bound methods; an empty loop of {n:,} takes "
                    "{empty} per iteration (included in both)")
        rows.append(SyncRow(name, med(o), med(b), "ratio", target, note))
        if not ours_lock.acquire(blocking=False):
            raise AssertionError(f"{name}: still held after the loops")
        ours_lock.release()
    for r in rows:
        if "{empty}" in r.note:
            r.note = r.note.replace("{empty}", fmt_t(med(empty)))


# ---------------------------------------------------------------- 2. and 3. pairs

class Pair:
    """Runs ``ping(a, b, warm, n)`` against ``pong(a, b, warm + n)`` in one of four
    arrangements and returns what ``ping`` returns (seconds per step)."""

    def __init__(self, xi, ping, pong, warm, n):
        self.xi, self.ping, self.pong, self.warm, self.n = xi, ping, pong, warm, n
        self.sub_a = self.sub_b = None

    def start(self):
        self.sub_b = self.xi.Interpreter().start()
        self.sub_a = self.xi.Interpreter().start()
        for it in (self.sub_a, self.sub_b):
            it.run(identity, 1)  # imports the workload module there
        return self

    def close(self):
        for it in (self.sub_a, self.sub_b):
            if it is not None:
                it.close()

    def _join(self, t, what):
        t.join(JOIN_TIMEOUT)
        if t.is_alive():
            raise RuntimeError(f"{what} did not finish within {JOIN_TIMEOUT} s")

    def main_sub(self, a, b):
        """A in this (main) thread, B in a subinterpreter's thread."""
        total = self.warm + self.n
        t = self.sub_b.call_in_thread(self.pong, a, b, total)
        dt = self.ping(a, b, self.warm, self.n)
        self._join(t, "side B (subinterpreter)")
        got = self.sub_b.result()
        assert got == total, got
        return dt

    def threads(self, a, b):
        """A in this thread, B in a second thread of the same interpreter."""
        total = self.warm + self.n
        box = {}

        def side_b():
            try:
                box["r"] = self.pong(a, b, total)
            except BaseException as e:  # re-raised below
                box["e"] = e

        t = threading.Thread(target=side_b, name="bench-side-b", daemon=True)
        t.start()
        dt = self.ping(a, b, self.warm, self.n)
        self._join(t, "side B (thread)")
        if "e" in box:
            raise box["e"]
        assert box["r"] == total, box
        return dt

    def sub_sub(self, a, b):
        """A and B in two subinterpreters, each in its own thread."""
        total = self.warm + self.n
        tb = self.sub_b.call_in_thread(self.pong, a, b, total)
        ta = self.sub_a.call_in_thread(self.ping, a, b, self.warm, self.n)
        self._join(ta, "side A (subinterpreter)")
        self._join(tb, "side B (subinterpreter)")
        got = self.sub_b.result()
        assert got == total, got
        return self.sub_a.result()


def bench_pairs(xi, cfg, rows, label, ping, pong, make_xi, make_base, warm, n, target,
                unit, note, what):
    rounds = cfg.rounds_23
    pair = Pair(xi, ping, pong, warm, n).start()
    try:
        # one untimed pass of each arrangement
        short = Pair(xi, ping, pong, warm, warm)
        short.sub_a, short.sub_b = pair.sub_a, pair.sub_b
        short.main_sub(*make_xi())
        short.threads(*make_base())
        short.sub_sub(*make_xi())
        short.threads(*make_xi())
        progress(f"{label}: {rounds} rounds x {what} (4 arrangements)")
        ms, th, ss, xt = alternate(
            rounds,
            lambda: pair.main_sub(*make_xi()),
            lambda: pair.threads(*make_base()),
            lambda: pair.sub_sub(*make_xi()),
            lambda: pair.threads(*make_xi()),
        )
        base = med(th)
        rows.append(SyncRow(f"{label}, main + subinterpreter vs 2 threads", med(ms), base,
                            "ratio", target,
                            note=f"{note}; {unit}; rounds: ours "
                                 f"{fmt_t(min(ms))}..{fmt_t(max(ms))}, threads "
                                 f"{fmt_t(min(th))}..{fmt_t(max(th))}; best rounds' ratio "
                                 f"{min(ms) / min(th):.3f}"))
        rows.append(SyncRow(f"{label}, 2 subinterpreters vs 2 threads (info)", med(ss),
                            base, "ratio", None))
        rows.append(SyncRow(f"{label}, xi primitives in 2 threads vs 2 threads (info)",
                            med(xt), base, "ratio", None))
    finally:
        pair.close()


def bench_event(xi, cfg, rows):
    def make_xi():
        return xi.Event(), xi.Event()

    def make_base():
        return threading.Event(), threading.Event()

    n = cfg.trips_2
    bench_pairs(xi, cfg, rows, "2. Event ping-pong round trip", event_ping, event_pong,
                make_xi, make_base, cfg.warm_2, n, 1.5, "per round trip",
                f"{n:,} round trips per round; A: e1.set(); e2.wait(); e2.clear(), "
                "B: e1.wait(); e1.clear(); e2.set()", f"{n:,} round trips")


def bench_handoff(xi, cfg, rows):
    def held(lock):
        lock.acquire()
        return lock

    def make_xi():
        return xi.Lock(), held(xi.Lock())

    def make_base():
        return threading.Lock(), held(threading.Lock())

    steps = cfg.handoffs_3 // 2  # each side's step is one hand-off
    bench_pairs(xi, cfg, rows, "3. Lock hand-off", lock_ping, lock_pong,
                make_xi, make_base, cfg.warm_3, steps, 1.5, "per hand-off",
                f"{2 * steps:,} hand-offs per round; L1 free, L2 held; A: L1.acquire(); "
                "L2.release(), B: L2.acquire(); L1.release()", f"{2 * steps:,} hand-offs")


# ---------------------------------------------------------------- main

def main(argv=None):
    cfg, sections = begin(arg_parser(__doc__, "123"), argv)
    q = cfg.quick
    cfg.rounds_1, cfg.ops_1 = (5, 50_000) if q else (9, 200_000)
    cfg.rounds_23 = 3 if q else 9
    cfg.trips_2, cfg.warm_2 = (5_000, 500) if q else (20_000, 1_000)
    cfg.handoffs_3, cfg.warm_3 = (20_000, 1_000) if q else (100_000, 2_000)

    xi = load_xi(cfg, "Lock", "RLock", "Semaphore", "Event", "Interpreter")
    if xi is None:
        return 2 if cfg.check else 0

    rows = []
    t_start = perf()
    section = section_runner(sections, rows)

    section("1", "1. uncontended Lock", bench_uncontended, xi, cfg, rows)
    section("2", "2. Event ping-pong", bench_event, xi, cfg, rows)
    section("3", "3. Lock hand-off", bench_handoff, xi, cfg, rows)

    return finish(rows, t_start, cfg.check, skewed="two-sided")


if __name__ == "__main__":
    sys.exit(main())
