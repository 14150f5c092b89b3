"""Counting primes three ways: serially, with threads, and with subinterpreters.

    python examples/demo.py [--limit N] [--workers W]

The job is pure Python and CPU-bound: count the primes below ``limit`` by trial
division. The range is cut into blocks, and the blocks are dealt round-robin to the
workers so that each gets a similar share of small and large numbers.

Threads share one GIL, so they take about as long as the serial run. Each
``extrainterpreters.Interpreter`` has its own GIL, so the interpreters run on all
the cores at once.
"""
import argparse
import concurrent.futures as cf
import os
import sys
import time

import extrainterpreters as xi


def count_primes(lo, hi):
    """Number of primes p with lo <= p < hi, by trial division."""
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


def count_in_blocks(blocks):
    return sum(count_primes(lo, hi) for lo, hi in blocks)


def deal(limit, workers, per_worker=8):
    """Split [0, limit) into blocks and deal them round-robin: one list per worker."""
    nblocks = workers * per_worker
    edges = [limit * i // nblocks for i in range(nblocks + 1)]
    blocks = list(zip(edges[:-1], edges[1:]))
    return [blocks[k::workers] for k in range(workers)]


class Stage:
    """Prints one progress line per stage, with a live clock when on a terminal."""

    live = sys.stdout.isatty()

    def __init__(self, label):
        self.label = label

    def __enter__(self):
        self.t0 = time.perf_counter()
        print(f"  {self.label:<34}", end="", flush=True)
        return self

    def tick(self):
        if self.live:
            print(f"\r  {self.label:<34}{time.perf_counter() - self.t0:6.1f} s",
                  end="", flush=True)

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.t0
        if self.live:
            print("\r" + " " * 60 + f"\r  {self.label:<34}", end="")
        if exc[0] is None:
            text = getattr(self, "text", None) or f"{self.result:,} primes"
            print(f"{self.elapsed:6.2f} s  -> {text}", flush=True)
        else:
            print("failed", flush=True)
        return False


def wait_with_clock(stage, is_done):
    last = 0.0
    while not is_done():
        now = time.perf_counter()
        if now - last >= 0.1:
            stage.tick()
            last = now
        time.sleep(0.01)


def machine_load():
    """(load average over the last minute, cores this process may use)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return load, cores or 1


def describe_load(load, cores, busy_note=True):
    if load is None:
        return f"{cores} cores"
    text = f"load average {load:.2f} on {cores} cores"
    # the demo's own workers count too: a load above the cores means others ran beside it
    if busy_note and load > cores:
        text += (": the machine was busy with other work, so the speedups above are "
                 "lower than an idle machine gives")
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=1_200_000, help="count primes below this")
    ap.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 1),
                    help="threads / interpreters (default: CPU count, at least 2)")
    args = ap.parse_args(argv)
    limit, workers = args.limit, max(2, args.workers)
    shares = deal(limit, workers)
    load, cores = machine_load()
    print(f"Counting primes below {limit:,} on Python {sys.version.split()[0]}, "
          f"{workers} workers, {describe_load(load, cores, busy_note=False)} before the run\n")

    times, counts = {}, {}

    # 1. serial, in the main thread
    with Stage("serial (main thread)") as st:
        st.result = 0
        for share in shares:
            st.result += count_in_blocks(share)
            st.tick()
    times["serial"], counts["serial"] = st.elapsed, st.result

    # 2. threads: one GIL for all of them
    name = f"{workers} threads"
    with Stage(name) as st:
        with cf.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(count_in_blocks, share) for share in shares]
            wait_with_clock(st, lambda: all(f.done() for f in futures))
            st.result = sum(f.result() for f in futures)
    times[name], counts[name] = st.elapsed, st.result

    # 3. interpreters: one GIL each
    with Stage(f"start {workers} interpreters") as st:
        interps = [xi.Interpreter().start() for _ in range(workers)]
        # callables travel by value too: a lambda and a closure, defined right here
        below = 100
        by_lambda = interps[0].run(lambda: count_primes(0, 100))
        by_closure = interps[1].run(lambda: count_primes(0, below))
        assert by_lambda == by_closure == 25, (by_lambda, by_closure)
        st.text = f"a lambda and a closure ran there: {by_lambda} primes below {below}"
    startup = st.elapsed

    name = f"{workers} interpreters"
    with Stage(name) as st:
        for interp, share in zip(interps, shares):
            interp.run_in_thread(count_in_blocks, share)
        wait_with_clock(st, lambda: all(i.done() for i in interps))
        for interp in interps:
            interp.join()  # the call has finished; join() also closes the interpreter
        st.result = sum(interp.result() for interp in interps)
    times[name], counts[name] = st.elapsed, st.result
    times[name + " incl. start"] = st.elapsed + startup

    if len(set(counts.values())) != 1:
        print(f"\nMISMATCH: {counts}")
        return 1
    print(f"\nAll three agree: {counts['serial']:,} primes below {limit:,}.")

    print()
    print(f"  {'how':<28} {'time':>8} {'speedup':>8}")
    print(f"  {'-' * 28} {'-' * 8} {'-' * 8}")
    for name, t in times.items():
        print(f"  {name:<28} {t:7.2f}s {times['serial'] / t:7.2f}x")
    print(f"\n  After the run: {describe_load(*machine_load())}.")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
