"""Compare two builds of the library on the core paths, in one run.

    python benchmarks/compare_builds.py OLD_PYTHON NEW_PYTHON [--rounds 9]

OLD_PYTHON and NEW_PYTHON are the Python executables of two virtualenvs with a build
of extrainterpreters each (say one of the previous commit and one of this tree). Every
round runs the same probe in a fresh process of each, in alternating order, so that a
slow spell of a shared machine weighs on both; the table gives each row's median and
the median of the rounds' own ratios (new / old: below 1 is faster).

Rows: ``run(f, 1)`` round trip from the main thread and from another thread (the direct
path); ``Queue`` put+get, between two interpreters; ``Lock`` acquire+release by an
interpreter; ``InterpreterPoolExecutor(2).map`` over 20,000 trivial items.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = r"""
import json, sys, threading, time
import extrainterpreters as xi
from operator import index

def per_op(fn, n):
    best = None
    for _ in range(5):
        t0 = time.perf_counter()
        fn(n)
        dt = (time.perf_counter() - t0) / n
        best = dt if best is None or dt < best else best
    return best

out = {}
it = xi.Interpreter().start()
it.run(index, 1)
out["run(f, 1), main thread"] = per_op(lambda n: [it.run(index, 1) for _ in range(n)], 2000)
res = []
t = threading.Thread(target=lambda: res.append(
    per_op(lambda n: [it.run(index, 1) for _ in range(n)], 2000)))
t.start(); t.join()
out["run(f, 1), other thread"] = res[0]
q = xi.Queue()
it.exec("import extrainterpreters")
def putget(n):
    for i in range(n):
        q.put(i)
        q.get()
out["Queue put+get, same interpreter"] = per_op(putget, 5000)
lock = xi.Lock()
def lock_cycle(n):
    for _ in range(n):
        lock.acquire()
        lock.release()
out["Lock acquire+release"] = per_op(lock_cycle, 20000)
it.close()
with xi.InterpreterPoolExecutor(2) as pool:
    list(pool.map(index, range(1000)))
    out["pool.map of 20,000 items (per item)"] = per_op(
        lambda n: list(pool.map(index, range(n))), 20000)
print("PROBE " + json.dumps(out))
"""


def probe(python):
    proc = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE "):
            return json.loads(line[6:])
    raise RuntimeError(f"{python}: exit code {proc.returncode}\n{proc.stderr[-3000:]}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=9)
    opts = ap.parse_args(argv)
    samples = {"old": [], "new": []}
    for r in range(opts.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for which in order:
            samples[which].append(probe(getattr(opts, which)))
        print(f"round {r + 1}/{opts.rounds}, load average {os.getloadavg()[0]:.2f}",
              file=sys.stderr, flush=True)
    rows = list(samples["old"][0])
    width = max(len(r) for r in rows)
    print(f"{'row':<{width}}  {'old':>9}  {'new':>9}  {'new/old':>7}  rounds")
    for row in rows:
        old = [s[row] for s in samples["old"]]
        new = [s[row] for s in samples["new"]]
        ratios = [n / o for n, o in zip(new, old)]
        print(f"{row:<{width}}  {statistics.median(old) * 1e6:7.2f}us  "
              f"{statistics.median(new) * 1e6:7.2f}us  {statistics.median(ratios):7.3f}  "
              f"{min(ratios):.2f}..{max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
