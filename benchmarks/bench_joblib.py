"""joblib backends: "interpreters" (extrainterpreters.joblib) vs loky and threading.

    python benchmarks/bench_joblib.py [--quick] [--check] [--only 1,2]

Every measurement runs the three backends in this same process run, in alternating
order, over several rounds (``Parallel(n_jobs=2)`` each, default auto-batching). The
ratios are medians of each round's own ratio. Each backend is warmed up first (its
workers exist and have imported the workload module), as a program that calls
Parallel more than once finds them.

  1. A pure-Python CPU-bound job: count the primes below N by trial division, N
     calibrated to take about 0.6 s of CPU time serially, as 64 ``delayed`` calls.
     Target: at least as fast as loky.
  2. 10,000 tiny tasks (``delayed(identity)(i)``). Target: 5x faster than loky.
     For reference: joblib's own sequential backend (no worker, no transfer) against
     loky, the most any backend can gain there.
     For reference: the same from a cold start (a new pool: the first Parallel call of
     a program), which loky pays in starting processes.

The exit code is 0 even when a target is missed, unless ``--check`` is given.
"""
import os
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

from _bench import (PairedRow, Row, alternate, arg_parser, begin, calibrate_primes,  # noqa: E402
                    ensure_bytecode, split_range,
                    finish, load_xi, perf, progress, section_runner)
from _workloads import count_primes, identity  # noqa: E402

N_JOBS = 2
TINY = 10_000
CHUNKS = 64


def runner(backend, tasks, expect):
    from joblib import Parallel

    def one():
        t0 = perf()
        out = Parallel(n_jobs=N_JOBS, backend=backend)(tasks())
        dt = perf() - t0
        assert out == expect, backend
        return dt
    return one


def paired(name, ours, base, kind, target, note):
    row = PairedRow(name, ours, base, kind, target)
    lo, hi = row.spread()
    unit = "x" if kind == "speedup" else ""
    row.note = f"{note}; rounds {lo:.2f}{unit}..{hi:.2f}{unit}" if lo is not None else note
    return row


def bench_cpu(cfg, rows):
    from joblib import delayed

    n = calibrate_primes(cfg.cpu_seconds)
    chunks = split_range(n, CHUNKS)
    expect = [count_primes(lo, hi) for lo, hi in chunks]

    def tasks():
        return (delayed(count_primes)(lo, hi) for lo, hi in chunks)

    measures = [runner(b, tasks, expect) for b in ("interpreters", "loky", "threading")]
    progress(f"1. count_primes(0, {n:,}) as {CHUNKS} tasks: {cfg.rounds_1} rounds")
    ours, loky, threads = alternate(cfg.rounds_1, *measures)
    label = f"count_primes(0, {n:,}), {CHUNKS} tasks"
    rows.append(paired("1. CPU-bound job vs loky (speedup)", ours, loky, "speedup", 1.0,
                       label))
    rows.append(paired("1. CPU-bound job vs threading (speedup, info)", ours, threads,
                       "speedup", None, label))


def bench_tiny(cfg, rows):
    from joblib import delayed

    expect = list(range(TINY))

    def tasks():
        return (delayed(identity)(i) for i in range(TINY))

    measures = [runner(b, tasks, expect)
                for b in ("interpreters", "loky", "threading", "sequential")]
    progress(f"2. {TINY:,} tiny tasks: {cfg.rounds_2} rounds")
    ours, loky, threads, sequential = alternate(cfg.rounds_2, *measures)
    rows.append(paired(f"2. {TINY:,} tiny tasks vs loky (speedup)", ours, loky, "speedup",
                       5.0, "warm pools, auto-batching"))
    rows.append(paired(f"2. {TINY:,} tiny tasks vs threading (speedup, info)", ours,
                       threads, "speedup", None, "threading does not auto-batch"))
    rows.append(paired(f"2. {TINY:,} tiny tasks, joblib's sequential backend vs loky "
                       "(speedup, info)", sequential, loky, "speedup", None,
                       "no worker at all: the most any backend can gain over warm loky"))

    # cold start: a new pool each time (interpreters: a new InterpreterPoolExecutor;
    # loky: its reusable executor shut down first)
    import extrainterpreters.joblib as xj
    from joblib.externals.loky import get_reusable_executor

    def cold(backend):
        warm_one = runner(backend, tasks, expect)

        def one():
            if backend == "loky":
                get_reusable_executor().shutdown(wait=True)
            else:
                for pool in list(xj._pools.values()):
                    pool.shutdown()
                xj._pools.clear()
            return warm_one()
        return one

    progress(f"2. {TINY:,} tiny tasks from a cold start: {cfg.rounds_2c} rounds")
    ours, loky = alternate(cfg.rounds_2c, cold("interpreters"), cold("loky"))
    rows.append(paired(f"2. {TINY:,} tiny tasks, cold start, vs loky (speedup, info)", ours,
                       loky, "speedup", None, "pool start-up inside the clock"))


def main(argv=None):
    ap = arg_parser(__doc__, "12", example="1,2", quick_help="fewer rounds")
    cfg, sections = begin(ap, argv)
    q = cfg.quick
    cfg.rounds_1, cfg.cpu_seconds = (3, 0.6) if q else (9, 0.6)
    cfg.rounds_2, cfg.rounds_2c = (3, 2) if q else (9, 4)
    ensure_bytecode()

    try:
        import joblib  # noqa: F401
    except ImportError as e:
        print(f"joblib is not installed here ({e}); pip install 'extrainterpreters[joblib]'")
        return 2 if cfg.check else 0
    xi = load_xi(cfg, "InterpreterPoolExecutor")
    if xi is None:
        return 2 if cfg.check else 0
    import extrainterpreters.joblib  # noqa: F401  (registers "interpreters")
    from joblib import Parallel, delayed

    rows = []
    t_start = perf()
    for backend in ("loky", "interpreters", "threading"):
        Parallel(n_jobs=N_JOBS, backend=backend)(delayed(identity)(i) for i in range(100))
    section = section_runner(sections, rows)
    section("1", "1. CPU-bound job", bench_cpu, cfg, rows)
    section("2", "2. tiny tasks", bench_tiny, cfg, rows)
    print(f"joblib {joblib.__version__}, Parallel(n_jobs={N_JOBS}) for every backend")
    return finish(rows, t_start, cfg.check, skewed="parallel")


if __name__ == "__main__":
    sys.exit(main())
