"""CPU scaling over worker counts: one CPU-bound job on pools of each width.

    python benchmarks/scale.py [--widths 1,2,4,8,16] [--seconds S] [--rounds R]
                               [--out DIR] [--json PATH] [--no-chart]

The job counts the primes below N by trial division (pure Python), N calibrated so
that the whole job takes about ``--seconds`` of CPU time serially, split in
``8 x the largest width`` chunks submitted largest first. For each width W it runs on
(all warm: every worker has run a task before the clock)

  * extrainterpreters ``InterpreterPoolExecutor(W)``
  * the stdlib's ``concurrent.futures.InterpreterPoolExecutor(W)`` (3.14+)
  * ``ProcessPoolExecutor(W)`` with fork and with forkserver
  * ``ThreadPoolExecutor(W)``

and, in the same rounds, serially in the main thread. Every round runs all of them
back to back in alternating order; a speedup is the median of each round's own
serial time / pool time. Fork pools are all made before the first subinterpreter
exists (a child forked while one exists dies).

Writes DIR/scaling.md (a table), DIR/scaling.json and, with matplotlib, DIR/scaling.png
(speedup against width, one line per pool). ``benchmarks/report.py`` runs the same
measurement for its own report.
"""
import argparse
import concurrent.futures as cf
import os
import platform
import sys
import time
import warnings

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

from _bench import (Row, alternate, calibrate_primes, ensure_bytecode, fork_pool,  # noqa: E402
                    forkserver_pool, split_range,
                    load_avg, med, perf, print_table, progress, stdlib_pool_class,
                    write_json)
from _workloads import count_primes, identity, pause  # noqa: E402

OURS = "extrainterpreters"
STDLIB = "stdlib InterpreterPoolExecutor"
FORK = "ProcessPool (fork)"
FORKSERVER = "ProcessPool (forkserver)"
THREADS = "ThreadPool"
CONTENDERS = (OURS, STDLIB, FORK, FORKSERVER, THREADS)


def warm(ex, width):
    for f in [ex.submit(pause, 0.05) for _ in range(width)]:
        f.result()
    assert ex.submit(identity, 1).result() == 1


def measure(widths, seconds, rounds):
    """Runs the measurement; returns the ``scaling`` dict that report.py charts."""
    ensure_bytecode()
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
    n = calibrate_primes(seconds)
    chunks = split_range(n, 8 * max(widths), largest_first=True)
    expect = sum(count_primes(lo, hi) for lo, hi in split_range(n, 4, largest_first=True))

    makers = {OURS: None, FORK: fork_pool, FORKSERVER: forkserver_pool,
              THREADS: cf.ThreadPoolExecutor}
    std = stdlib_pool_class()
    if std is not None:
        makers[STDLIB] = std
    import extrainterpreters as xi

    makers[OURS] = xi.InterpreterPoolExecutor

    # every fork pool first, while no subinterpreter exists
    forks = {}
    for w in widths:
        progress(f"scale: forking ProcessPoolExecutor({w})")
        forks[w] = fork_pool(w)
        warm(forks[w], w)

    def run_job(ex):
        t0 = perf()
        total = sum(f.result() for f in [ex.submit(count_primes, lo, hi) for lo, hi in chunks])
        dt = perf() - t0
        assert total == expect, (total, expect)
        return dt

    def serial():
        t0 = perf()
        total = sum(count_primes(lo, hi) for lo, hi in chunks)
        dt = perf() - t0
        assert total == expect
        return dt

    result = {"widths": list(widths), "cpus": os.cpu_count(), "rounds": rounds,
              "job": f"count_primes(0, {n:,}) in {len(chunks)} chunks",
              "python": platform.python_version(), "load_before": load_avg(), "serial": {},
              "contenders": {c: {} for c in CONTENDERS if c in makers}}
    rows = []
    try:
        for w in widths:
            pools = {}
            try:
                for label in result["contenders"]:
                    pools[label] = forks[w] if label == FORK else makers[label](w)
                    if label != FORK:
                        warm(pools[label], w)
                    run_job(pools[label])
                progress(f"scale: width {w}: {rounds} rounds of serial + "
                         f"{len(pools)} pools ({result['job']})")
                labels = ["serial", *pools]
                fns = [serial] + [lambda ex=ex: run_job(ex) for ex in pools.values()]
                samples = dict(zip(labels, alternate(rounds, *fns)))
            finally:
                for label, ex in pools.items():
                    if label != FORK:
                        ex.shutdown()
            s = samples["serial"]
            result["serial"][str(w)] = med(s)
            for label in pools:
                t = samples[label]
                speedup = med([a / b for a, b in zip(s, t)])
                result["contenders"][label][str(w)] = {"time": med(t), "speedup": speedup}
                row = Row(f"width {w}: {label} vs serial (speedup)", med(t), med(s),
                          "speedup", None)
                row.note = ""
                rows.append(row)
    finally:
        for ex in forks.values():
            ex.shutdown()
    result["load_after"] = load_avg()
    return result, rows


def scaling_markdown(scaling):
    """A markdown table: one line per pool, speedup over serial per width."""
    widths = scaling["widths"]
    lines = ["| pool | " + " | ".join(f"{w} worker{'s' if w > 1 else ''}" for w in widths)
             + " |", "|---|" + "---:|" * len(widths)]
    for label, by_w in scaling["contenders"].items():
        cells = []
        for w in widths:
            d = by_w.get(str(w))
            cells.append("-" if d is None else f"{d['speedup']:.2f}x ({fmt_s(d['time'])})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| serial (reference) | " + " | ".join(
        fmt_s(scaling["serial"].get(str(w))) for w in widths) + " |")
    return "\n".join(lines) + "\n"


def fmt_s(s):
    if s is None:
        return "-"
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s"


def default_widths():
    n = os.cpu_count() or 1
    widths = [1]
    while widths[-1] * 2 <= n:
        widths.append(widths[-1] * 2)
    if widths[-1] != n:
        widths.append(n)
    return widths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", default=None,
                    help="worker counts, e.g. 1,2,4,8,16 (default: 1, 2, 4, ... up to the "
                         "number of CPUs)")
    ap.add_argument("--seconds", type=float, default=0.8,
                    help="serial CPU seconds of the job (default 0.8)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per width (default 3)")
    ap.add_argument("--out", default="bench-out",
                    help="folder for scaling.md, scaling.json and scaling.png "
                         "(default bench-out)")
    ap.add_argument("--json", default=None, metavar="PATH",
                    help="also write the rows and the measurement to PATH as JSON")
    ap.add_argument("--no-chart", action="store_true", help="do not draw scaling.png")
    cfg = ap.parse_args(argv)
    widths = ([int(w) for w in cfg.widths.split(",") if w.strip()] if cfg.widths
              else default_widths())
    if not widths or min(widths) < 1:
        ap.error("--widths: positive integers, e.g. 1,2,4")
    t0 = perf()
    print(f"Python {platform.python_version()} ({sys.executable}); {os.cpu_count()} CPUs; "
          f"widths {widths}; load average {load_avg()}", flush=True)
    scaling, rows = measure(widths, cfg.seconds, cfg.rounds)
    print()
    print_table(rows)
    print(f"\n{scaling['job']}; took {perf() - t0:.1f} s; load average now {load_avg()}",
          flush=True)
    if cfg.json:
        write_json(cfg.json, rows, script="scale.py", took=perf() - t0, scaling=scaling)
    os.makedirs(cfg.out, exist_ok=True)
    import json

    with open(os.path.join(cfg.out, "scaling.json"), "w") as f:
        json.dump(scaling, f, indent=1)
    with open(os.path.join(cfg.out, "scaling.md"), "w") as f:
        f.write(f"# CPU scaling\n\n{scaling['job']}; speedup over serial (the median of "
                f"each round's own), median time in brackets; Python {scaling['python']}, "
                f"{scaling['cpus']} CPUs, load average {scaling['load_before']} before, "
                f"{scaling['load_after']} after.\n\n")
        f.write(scaling_markdown(scaling))
    if not cfg.no_chart:
        import report

        path = os.path.join(cfg.out, "scaling.png")
        report.scaling_chart(scaling, path)
        print(f"wrote {path}", flush=True)
    print(f"wrote {os.path.join(cfg.out, 'scaling.md')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
