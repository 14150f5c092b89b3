"""The command line of every job script in benchmarks/jobs/: runs the job's tasks once
on one kind of pool, in this fresh process, and prints one JSON line.

    python benchmarks/jobs/JOB.py --pool KIND [--workers 2] [--scale 1.0] [--warm]

A job script is written as a user writes one: its packages imported at its top, a
module-level ``task``, its items made by ``make_items(scale)`` (outside the clock, from
a cache of generated data where that is large) and its results summed up by
``summary(results)``; ``make_items(scale, 1)`` gives the items of the warm run (other
problems where the job's packages cache what they computed). Kinds of pool: ``serial`` (the builtin ``map``), ``threads``
(ThreadPoolExecutor), ``fork`` and ``forkserver`` (ProcessPoolExecutor with that start
method), ``stdlib`` (3.14's concurrent.futures.InterpreterPoolExecutor) and ``xi``
(extrainterpreters.InterpreterPoolExecutor), each used as ``pool.map(task, items)`` with
its default chunk size.

The JSON line has ``one_shot``: seconds from creating the pool to having every result,
plus shutting it down, ``warm`` (with ``--warm``): seconds of a second ``map`` on the same
pool, ``digest`` and ``warm_digest``: hashes of ``summary(results)`` of each run (equal for
every kind of pool when the results are).
"""
import argparse
import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time

KINDS = ("serial", "threads", "fork", "forkserver", "stdlib", "xi")
CACHE_DIR = os.path.join(tempfile.gettempdir(), "xi-bench-jobs")


def cached_text(name, make):
    """The text of the cache file ``name``, written by ``make()`` (a str) the first time."""
    os.makedirs(CACHE_DIR, exist_ok=True)
    path = os.path.join(CACHE_DIR, name)
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(make())
        os.replace(tmp, path)
    with open(path, encoding="utf-8") as f:
        return f.read()


def make_pool(kind, workers):
    if kind == "serial":
        return None
    if kind == "threads":
        return cf.ThreadPoolExecutor(workers)
    if kind in ("fork", "forkserver"):
        return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(kind))
    if kind == "stdlib":
        return cf.InterpreterPoolExecutor(workers)
    if kind == "xi":
        import extrainterpreters

        return extrainterpreters.InterpreterPoolExecutor(workers)
    raise ValueError(f"unknown kind of pool {kind!r}")


def run_map(pool, task, items):
    return list(map(task, items) if pool is None else pool.map(task, items))


def digest(value):
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def main(task, make_items, summary):
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=KINDS, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--warm", action="store_true")
    opts = ap.parse_args()
    items = make_items(opts.scale)
    out = {"pool": opts.pool, "items": len(items)}
    t0 = time.perf_counter()
    pool = make_pool(opts.pool, opts.workers)
    results = run_map(pool, task, items)
    one_shot = time.perf_counter() - t0
    out["digest"] = digest(summary(results))
    if opts.warm:
        items = make_items(opts.scale, 1)
        t0 = time.perf_counter()
        again = run_map(pool, task, items)
        out["warm"] = time.perf_counter() - t0
        out["warm_digest"] = digest(summary(again))
    t0 = time.perf_counter()
    if pool is not None:
        pool.shutdown()
    out["one_shot"] = one_shot + time.perf_counter() - t0
    print("JOB " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit("run a job script of this folder instead")
