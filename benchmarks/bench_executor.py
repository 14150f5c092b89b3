"""InterpreterPoolExecutor and aio.run benchmarks.

    python benchmarks/bench_executor.py [--quick] [--check] [--only 1,2,3,4]

Every measurement runs extrainterpreters and its baselines in this same process run,
in alternating order, over several rounds; the table shows the median round of each
and their ratio. Absolute times on a shared machine mean little: the ratios are what
the targets are about. Every pool has 2 workers, is created once before the clock and
warmed up (each worker has run a task, so the workload module is imported there).
On 3.14+ the stdlib's ``concurrent.futures.InterpreterPoolExecutor(2)`` is one more
contender in 1., 2. and 3. (its rows say n/a before 3.14); its ratios are medians of
each round's own ratio.

  1. ``list(pool.map(f, range(20000)))`` with a trivial importable ``f``, default
     chunksize for all: vs ``ThreadPoolExecutor(2).map``, vs the stdlib's
     ``InterpreterPoolExecutor(2).map`` and vs ``ProcessPoolExecutor(2).map`` (fork);
     for reference ProcessPoolExecutor with chunksize=1000 and with forkserver.
  2. ``pool.submit(f, 1).result()`` round trip, one call after the other, vs the same
     on ``ThreadPoolExecutor(2)`` and on the stdlib's ``InterpreterPoolExecutor(2)``
     (fewer calls per round there); for reference ``ProcessPoolExecutor(2)`` with fork
     and with forkserver (fewer calls too).
  3. A pure-Python CPU-bound job (count the primes below N by trial division, N
     calibrated to take about 0.6 s of CPU time serially) split in 128 chunks,
     submitted to the pool largest first, vs the same chunks run serially in the main
     thread, vs the stdlib's ``InterpreterPoolExecutor(2)`` and vs
     ``ProcessPoolExecutor(2)`` (fork). Every round runs all contenders
     back to back; the ratios are medians of each round's own ratio. For reference:
     the same job in 32 chunks, where both pools do the same work on the same two
     cores and tie; and cold start, creating the pool, running the job and shutting the
     pool down, vs the same with a fresh ``ProcessPoolExecutor(2)`` (and a fresh stdlib
     ``InterpreterPoolExecutor(2)``).
  4. ``await xi.aio.run(f, 1)``, sequential awaits in one ``asyncio.run``, vs ``await
     loop.run_in_executor(ThreadPoolExecutor(2), f, 1)``.

The exit code is 0 even when a target is missed, unless ``--check`` is given.
"""
import asyncio
import concurrent.futures as cf
import os
import sys
import traceback
import warnings

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

from _bench import (NO_STDLIB, NARow, PairedRow, Row, alternate, arg_parser, begin,  # noqa: E402
                    calibrate_primes, split_range,
                    ensure_bytecode, finish, fmt_t, fork_pool, forkserver_pool, load_xi, med,
                    paired, perf, progress, section_runner, stdlib_pool_class)
from _workloads import count_primes, identity, pause, timed_primes  # noqa: E402

WORKERS = 2
MAP_ITEMS = 20_000
CHUNKS = 128
COARSE_CHUNKS = 32
STDLIB_POOL = "concurrent.futures.InterpreterPoolExecutor(2)"


def warm(ex):
    """Make every worker of ``ex`` run a task (both at once: each takes one)."""
    for f in [ex.submit(pause, 0.05) for _ in range(WORKERS)]:
        f.result()
    for _ in range(20):
        ex.submit(identity, 1).result()
    assert list(ex.map(identity, range(100))) == list(range(100))


# ---------------------------------------------------------------- 1. map

def bench_map(xi, cfg, rows, pools):
    ipe, tpe, ppe, sipe = pools["ipe"], pools["tpe"], pools["ppe"], pools["sipe"]
    fsp = pools["fsp"]
    rounds, n = cfg.rounds_1, MAP_ITEMS
    expect = list(range(n))

    def timed(ex, **kw):
        def one():
            t0 = perf()
            r = list(ex.map(identity, range(n), **kw))
            dt = perf() - t0
            assert r == expect
            return dt
        return one

    measures = {"ours": timed(ipe), "tpe": timed(tpe)}
    if sipe is not None:
        measures["sipe"] = timed(sipe)
    if ppe is not None:
        measures["ppe"] = timed(ppe)
        measures["ppe1000"] = timed(ppe, chunksize=1000)
    if fsp is not None:
        measures["fsp"] = timed(fsp)
    for m in measures.values():
        m()
    procs = [label for key, label in (("ppe", "fork"), ("ppe1000", "fork chunksize=1000"),
                                      ("fsp", "forkserver")) if key in measures]
    progress(f"1. map(f, range({n:,})): {rounds} rounds "
             f"({'with' if sipe is not None else 'without'} the stdlib's pool; process "
             f"pools: {', '.join(procs) or 'none'})")
    s = dict(zip(measures, alternate(rounds, *measures.values())))
    o = med(s["ours"])
    rows.append(Row(f"1. map(f, range({n:,})) vs ThreadPoolExecutor(2).map", o, med(s["tpe"]),
                    "ratio", 1.0, note="default chunksize for both; the result list is "
                                       "built inside the clock"))
    name = f"1. map(f, range({n:,})) vs {STDLIB_POOL}.map"
    if sipe is None:
        rows.append(NARow(name, NO_STDLIB, "<= 0.1"))
    else:
        rows.append(paired(name, s["ours"], s["sipe"], "ratio", 0.1,
                           note="default chunksize for both (the stdlib's pool sends one "
                                "item per task); ratio: median of each round's own ratio"))
    if ppe is None:
        rows.append(Row.failed(f"1. map(f, range({n:,})) vs ProcessPoolExecutor(2).map",
                               "ProcessPoolExecutor(fork) unavailable"))
    else:
        rows.append(Row(f"1. map(f, range({n:,})) vs ProcessPoolExecutor(2).map (speedup)",
                        o, med(s["ppe"]), "speedup", 10,
                        note="fork, default chunksize=1 for both"))
        rows.append(Row("1. map vs ProcessPoolExecutor(2).map(chunksize=1000) (info)",
                        o, med(s["ppe1000"]), "speedup", None))
    if fsp is not None:
        rows.append(Row(f"1. map(f, range({n:,})) vs ProcessPoolExecutor(2, forkserver).map "
                        "(speedup, info)", o, med(s["fsp"]), "speedup", None,
                        note="forkserver, default chunksize=1 for both"))


# ---------------------------------------------------------------- 2. submit

def submit_loop(ex, n):
    submit = ex.submit
    t0 = perf()
    for _ in range(n):
        submit(identity, 1).result()
    return (perf() - t0) / n


def bench_submit(xi, cfg, rows, pools):
    ipe, tpe, sipe = pools["ipe"], pools["tpe"], pools["sipe"]
    procs = [(key, label, pools[key]) for key, label in
             (("ppe", "ProcessPoolExecutor(2, fork)"),
              ("fsp", "ProcessPoolExecutor(2, forkserver)")) if pools[key] is not None]
    rounds, n, m = cfg.rounds_2, cfg.calls_2, cfg.calls_2_std
    measures = [lambda: submit_loop(ipe, n), lambda: submit_loop(tpe, n)]
    submit_loop(ipe, 200)
    submit_loop(tpe, 200)
    if sipe is not None:
        submit_loop(sipe, 50)
        measures.append(lambda: submit_loop(sipe, m))
    for _, _, ex in procs:
        submit_loop(ex, 50)
        measures.append(lambda ex=ex: submit_loop(ex, m))
    progress(f"2. submit(f, 1).result(): {rounds} rounds x {n:,} calls"
             + (f" ({m:,} on the stdlib's pool and the process pools)"
                if len(measures) > 2 else ""))
    o, b, *rest = alternate(rounds, *measures)
    rows.append(Row("2. submit(f, 1).result() vs ThreadPoolExecutor(2)", med(o), med(b),
                    "ratio", 1.5, note=f"{n:,} sequential round trips per round"))
    name = f"2. submit(f, 1).result() vs {STDLIB_POOL}"
    if sipe is None:
        rows.append(NARow(name, NO_STDLIB, "<= 0.5"))
    else:
        rows.append(paired(name, o, rest.pop(0), "ratio", 0.5,
                           note=f"{m:,} sequential round trips per round on the stdlib's "
                                "pool; ratio: median of each round's own ratio"))
    for (_, label, _), samples in zip(procs, rest):
        rows.append(paired(f"2. submit(f, 1).result() vs {label} (info)", o, samples,
                           "ratio", None,
                           note=f"{m:,} sequential round trips per round on the process pool"))


# ---------------------------------------------------------------- 3. CPU-bound

def run_chunks(ex, chunks):
    """(primes counted, CPU seconds the chunks took where they ran)."""
    futs = [ex.submit(timed_primes, lo, hi) for lo, hi in chunks]
    outs = [f.result() for f in futs]
    return sum(c for c, _ in outs), sum(t for _, t in outs)


def bench_cpu(xi, cfg, rows, pools):
    n = calibrate_primes(cfg.cpu_seconds)
    fine = split_range(n, CHUNKS, largest_first=True)
    coarse = split_range(n, COARSE_CHUNKS, largest_first=True)
    expect = sum(count_primes(lo, hi) for lo, hi in coarse)
    ipe, ppe, sipe = pools["ipe"], pools["ppe"], pools["sipe"]
    rounds = cfg.rounds_3
    task_cpu = {}

    def measure(label, job):
        def one():
            t0 = perf()
            r, cpu = job()
            dt = perf() - t0
            assert r == expect, (label, r, expect)
            task_cpu.setdefault(label, []).append(cpu)
            return dt
        return one

    def serial():
        outs = [timed_primes(lo, hi) for lo, hi in fine]
        return sum(c for c, _ in outs), sum(t for _, t in outs)

    measures = [measure("serial", serial), measure("ours", lambda: run_chunks(ipe, fine)),
                measure("ours-coarse", lambda: run_chunks(ipe, coarse))]
    if sipe is not None:
        measures += [measure("stdlib", lambda: run_chunks(sipe, fine)),
                     measure("stdlib-coarse", lambda: run_chunks(sipe, coarse))]
    if ppe is not None:
        measures += [measure("ppe", lambda: run_chunks(ppe, fine)),
                     measure("ppe-coarse", lambda: run_chunks(ppe, coarse))]
    run_chunks(ipe, fine[-8:])
    if sipe is not None:
        run_chunks(sipe, fine[-8:])
    if ppe is not None:
        run_chunks(ppe, fine[-8:])
    progress(f"3. count_primes(0, {n:,}) in {CHUNKS} and in {COARSE_CHUNKS} chunks: "
             f"{rounds} rounds")
    s, o, oc, *p = alternate(rounds, *measures)
    std_fine = std_coarse = None
    if sipe is not None:
        std_fine, std_coarse, *p = p

    def cpu_per_work(label):
        return med([c / sc for c, sc in zip(task_cpu[label], task_cpu["serial"])])

    label = f"count_primes(0, {n:,})"

    def cpu_row(name, ours, base, target, note):
        """The median of each round's own ratio: a round runs every contender back to
        back, so a slow spell of a shared machine weighs on both sides of its ratio."""
        row = PairedRow(name, ours, base, "speedup", target)
        lo, hi = row.spread()
        row.note = (f"{note}; rounds {lo:.2f}x..{hi:.2f}x; best round against best round "
                    f"{min(base) / min(ours):.2f}x")
        return row

    rows.append(cpu_row(f"3. CPU-bound job in {CHUNKS} chunks vs serial (speedup)", o, s, 1.8,
                        f"{label} ({expect:,} primes), serial {fmt_t(min(s))}; CPU time the "
                        f"chunks took in the pool / serially: {cpu_per_work('ours'):.2f} "
                        f"(over 1.00: each core is slower while both are busy)"))
    name = f"3. CPU-bound job in {CHUNKS} chunks vs {STDLIB_POOL} (speedup)"
    if sipe is None:
        rows.append(NARow(name, NO_STDLIB, ">= 1x"))
    else:
        rows.append(cpu_row(name, o, std_fine, 1.0,
                            f"same chunks, same submit order, warm; chunk CPU time in the "
                            f"stdlib's pool / serially: {cpu_per_work('stdlib'):.2f}"))
        rows.append(cpu_row(f"3. same job in {COARSE_CHUNKS} chunks vs {STDLIB_POOL} (info)",
                            oc, std_coarse, None, "few large chunks"))
    if p:
        pf, pc = p
        rows.append(cpu_row(f"3. CPU-bound job in {CHUNKS} chunks vs ProcessPoolExecutor(2) "
                            "(speedup)", o, pf, 1.0,
                            f"fork, warm; chunk CPU time in the process pool / serially: "
                            f"{cpu_per_work('ppe'):.2f}"))
        rows.append(cpu_row("3. ProcessPoolExecutor(2) vs serial (speedup, info)", pf, s, None,
                            "what the machine allows right now"))
        rows.append(cpu_row(f"3. same job in {COARSE_CHUNKS} chunks vs ProcessPoolExecutor(2) "
                            "(info)", oc, pc, None,
                            "with few large chunks both pools do the same work on the same "
                            "two cores"))
    else:
        rows.append(Row.failed(f"3. CPU-bound job in {CHUNKS} chunks vs "
                               "ProcessPoolExecutor(2) (speedup)",
                               "ProcessPoolExecutor(fork) unavailable"))
    rows.append(cpu_row(f"3. same job in {COARSE_CHUNKS} chunks vs serial (info)", oc, s, None,
                        "few large chunks"))

    # Cold start: no subinterpreter may exist while a process pool forks its workers.
    pools.pop("ipe").shutdown()
    if sipe is not None:
        pools.pop("sipe").shutdown()
    rounds_c = cfg.rounds_3c

    def cold(make_pool):
        def one():
            t0 = perf()
            ex = make_pool()
            try:
                r, _ = run_chunks(ex, fine)
            finally:
                ex.shutdown()
            dt = perf() - t0
            assert r == expect
            return dt
        return one

    progress(f"3. cold start (pool creation + job + shutdown): {rounds_c} rounds")
    colds = [cold(lambda: xi.InterpreterPoolExecutor(WORKERS)), cold(lambda: fork_pool(WORKERS))]
    if sipe is not None:
        colds.append(cold(lambda: stdlib_pool_class()(WORKERS)))
    c, pc, *cs = alternate(rounds_c, *colds)
    rows.append(Row("3. cold: new pool + job + shutdown vs serial (speedup, info)", min(c),
                    min(s), "speedup", None))
    rows.append(Row("3. cold: new pool + job + shutdown vs ProcessPoolExecutor(2) (info)",
                    min(c), min(pc), "speedup", None,
                    note="both pools created, used and shut down (wait=True) inside the "
                         "clock; process pool: fork"))
    if cs:
        rows.append(Row(f"3. cold: new pool + job + shutdown vs {STDLIB_POOL} (info)",
                        min(c), min(cs[0]), "speedup", None))


# ---------------------------------------------------------------- 4. aio.run

def bench_aio(xi, cfg, rows, pools):
    tpe = pools["tpe"]
    rounds, n = cfg.rounds_4, cfg.calls_4

    async def ours(n=n):
        run = xi.aio.run
        t0 = perf()
        for _ in range(n):
            await run(identity, 1)
        return (perf() - t0) / n

    async def base(n=n):
        rie = asyncio.get_running_loop().run_in_executor
        t0 = perf()
        for _ in range(n):
            await rie(tpe, identity, 1)
        return (perf() - t0) / n

    async def main():
        # every worker of the default pool runs a task once
        await asyncio.gather(*[xi.aio.run(pause, 0.05) for _ in range(os.cpu_count() or 1)])
        assert await xi.aio.run(identity, 1) == 1
        await ours(200)
        await base(200)
        progress(f"4. await aio.run(f, 1): {rounds} rounds x {n:,} awaits")
        samples = ([], [])
        for r in range(rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for i in order:
                samples[i].append(await (ours() if i == 0 else base()))
        return samples

    o, b = asyncio.run(main())
    rows.append(Row("4. await aio.run(f, 1) vs run_in_executor(ThreadPoolExecutor(2))",
                    med(o), med(b), "ratio", 1.5,
                    note=f"{n:,} sequential awaits per round in one asyncio.run; aio.run uses "
                         f"its default pool ({os.cpu_count()} workers here)"))


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = arg_parser(__doc__, "1234", quick_help="fewer rounds and calls")
    cfg, sections = begin(ap, argv)
    q = cfg.quick
    cfg.rounds_1 = 3 if q else 5
    cfg.rounds_2, cfg.calls_2 = (5, 500) if q else (15, 1000)
    cfg.calls_2_std = 200 if q else 300
    cfg.rounds_3, cfg.rounds_3c, cfg.cpu_seconds = (5, 1, 0.6) if q else (25, 3, 0.6)
    cfg.rounds_4, cfg.calls_4 = (5, 500) if q else (15, 1000)

    ensure_bytecode()
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)

    pools = {"ppe": None, "sipe": None, "fsp": None}
    # Fork the process pool before any interpreter or thread exists.
    if sections & set("123"):
        try:
            ppe = fork_pool(WORKERS)
            warm(ppe)
            pools["ppe"] = ppe
        except Exception as e:
            progress(f"ProcessPoolExecutor(fork) unavailable: {e!r}")
    if sections & set("12"):
        try:
            fsp = forkserver_pool(WORKERS)
            warm(fsp)
            pools["fsp"] = fsp
        except Exception as e:
            progress(f"ProcessPoolExecutor(forkserver) unavailable: {e!r}")

    xi = load_xi(cfg, "InterpreterPoolExecutor", "aio.run")
    if xi is None:
        return 2 if cfg.check else 0

    rows = []
    t_start = perf()
    pools["tpe"] = cf.ThreadPoolExecutor(WORKERS)
    warm(pools["tpe"])
    try:
        if sections & set("123"):
            pools["ipe"] = xi.InterpreterPoolExecutor(WORKERS)
            warm(pools["ipe"])
    except Exception as e:
        traceback.print_exc()
        rows.append(Row.failed("InterpreterPoolExecutor(2)", f"{type(e).__name__}: {e}"))
        sections -= set("123")
    stdlib_pool = stdlib_pool_class()
    if sections & set("123") and stdlib_pool is not None:
        try:
            pools["sipe"] = stdlib_pool(WORKERS)
            warm(pools["sipe"])
        except Exception as e:
            traceback.print_exc()
            rows.append(Row.failed(STDLIB_POOL, f"{type(e).__name__}: {e}"))
            sections -= set("123")

    section = section_runner(sections, rows)
    section("1", "1. map", bench_map, xi, cfg, rows, pools)
    section("2", "2. submit round trip", bench_submit, xi, cfg, rows, pools)
    section("3", "3. CPU-bound job", bench_cpu, xi, cfg, rows, pools)
    section("4", "4. aio.run", bench_aio, xi, cfg, rows, pools)
    for key in ("ipe", "sipe", "tpe", "ppe", "fsp"):
        if pools.get(key) is not None:
            pools[key].shutdown()

    return finish(rows, t_start, cfg.check, skewed="parallel")


if __name__ == "__main__":
    sys.exit(main())
