"""Real jobs: scripts that import PyPI packages, run once in a fresh process per pool.

    python benchmarks/bench_realjobs.py [--quick] [--check] [--only lfhrgms] [--workers 2]

Each job is a script of benchmarks/jobs/ written as a user writes one (its packages
imported at its top, a module-level ``task``), with its own data: l. log text (``str``
blocks of 3.75 MB, regular expressions), f. JSON lines (``bytes`` chunks of 2.9 MB,
json), h. pygments (78 files to HTML), r. docutils (160 reST documents to HTML), g.
networkx (100 graphs), m. python-markdown (600 documents), s. sympy (24 problems). Its
packages are in requirements-bench.txt.

Every job runs in a fresh process for each kind of pool: serial (the builtin ``map``),
threads, the process pool with fork and with forkserver, the standard library's
interpreter pool (3.14+) and extrainterpreters' ``InterpreterPoolExecutor``, all with
``pool.map(task, items)`` and their default chunk size, in an order that alternates
every round. **One-shot**: from creating the pool to the last result, plus its shutdown,
in a process that imported the job's packages itself (as its script does); **warm**: a
second ``map`` on the same pool, of other items of the same kind. Every output is
checked against the serial run's.

Rows per job: one-shot, ours against the better of the forkserver pool and the standard
library's pool in each round (target: at most 5% slower); warm, our speedup over serial
(target 1.9x with 2 workers on 2 or more cores). The table under them gives every kind's
speedup over serial. The exit code is 0 even when a target is missed, unless
``--check`` is given.
"""
import json
import os
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

from _bench import (NARow, Row, arg_parser, begin, finish, load_avg, load_xi,  # noqa: E402
                    med, paired, perf, progress, stdlib_pool_class)

JOBS_DIR = os.path.join(BENCH_DIR, "jobs")
# (letter, script, what)
JOBS = [
    ("l", "logs.py", "logs: 180 MB of str, regex counts"),
    ("f", "jsonl.py", "JSON lines: 183 MB of bytes, json.loads"),
    ("h", "highlight.py", "pygments: 78 files to HTML"),
    ("r", "rest.py", "docutils: 160 reST documents to HTML"),
    ("g", "graphs.py", "networkx: 100 graphs"),
    ("m", "markdown_docs.py", "python-markdown: 600 documents"),
    ("s", "symbolic.py", "sympy: 24 problems"),
]
KINDS = ["serial", "threads", "fork", "forkserver", "stdlib", "xi"]
ONE_SHOT_TARGET = 1.05
WARM_TARGET = 1.9


def run_job(script, kind, workers, scale):
    """One fresh process: the job on one kind of pool; its JOB line as a dict."""
    cmd = [sys.executable, os.path.join(JOBS_DIR, script), "--pool", kind,
           "--workers", str(workers), "--scale", str(scale), "--warm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith("JOB "):
            return json.loads(line[4:])
    raise RuntimeError(f"{script} --pool {kind}: exit code {proc.returncode}\n"
                       f"{proc.stderr[-2000:]}")


def bench_job(letter, script, what, cfg, kinds, rows, speedups):
    samples = {k: {"one_shot": [], "warm": []} for k in kinds}
    for r in range(cfg.rounds):
        order = kinds if r % 2 == 0 else kinds[::-1]
        digests = {}
        for kind in order:
            res = run_job(script, kind, cfg.workers, cfg.scale)
            samples[kind]["one_shot"].append(res["one_shot"])
            samples[kind]["warm"].append(res["warm"])
            digests[kind] = (res["digest"], res["warm_digest"])
        wrong = [k for k in kinds if digests[k] != digests["serial"]]
        if wrong:
            raise AssertionError(f"{what}: the outputs of {', '.join(wrong)} differ from "
                                 f"serial's")
        progress(f"{what}: round {r + 1}/{cfg.rounds} done, load average {load_avg()}")
    ours = samples["xi"]
    rivals = [k for k in ("forkserver", "stdlib") if k in kinds]
    best = [min(samples[k]["one_shot"][i] for k in rivals) for i in range(cfg.rounds)]
    rows.append(paired(f"{letter}. {what}: one-shot vs the better of "
                       f"{' and '.join(rivals)}", ours["one_shot"], best, "ratio",
                       ONE_SHOT_TARGET))
    warm_target = WARM_TARGET if (os.cpu_count() or 1) >= cfg.workers == 2 else None
    rows.append(paired(f"{letter}. {what}: warm (speedup over serial)", ours["warm"],
                       samples["serial"]["warm"], "speedup", warm_target))
    serial = {m: med(samples["serial"][m]) for m in ("one_shot", "warm")}
    speedups.append((what, {k: (serial["one_shot"] / med(samples[k]["one_shot"]),
                                serial["warm"] / med(samples[k]["warm"]))
                            for k in kinds if k != "serial"}, serial))


def speedup_table(speedups, kinds):
    names = {"threads": "threads", "fork": "process pool (fork)",
             "forkserver": "process pool (forkserver)",
             "stdlib": "stdlib interpreter pool", "xi": "**extrainterpreters**"}
    cols = [k for k in ("xi", "forkserver", "fork", "stdlib", "threads") if k in kinds]
    head = ["job", "serial (one-shot / warm)"] + [names[k] for k in cols]
    lines = ["Speedup over serial, one-shot / warm (medians):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for what, by_kind, serial in speedups:
        cells = [what, f"{serial['one_shot']:.2f} s / {serial['warm']:.2f} s"]
        cells += [f"{by_kind[k][0]:.2f}x / {by_kind[k][1]:.2f}x" for k in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    ap = arg_parser(__doc__, "".join(j[0] for j in JOBS), example="lh",
                    quick_help="one round of each job, a quarter of its data")
    ap.add_argument("--workers", type=int, default=2)
    cfg, sections = begin(ap, argv)
    cfg.rounds = 1 if cfg.quick else 3
    cfg.scale = 0.25 if cfg.quick else 1.0
    t_start = perf()
    rows, speedups = [], []
    xi = load_xi(cfg, "InterpreterPoolExecutor")
    if xi is None:
        return 1
    kinds = [k for k in KINDS if k != "stdlib" or stdlib_pool_class() is not None]
    for letter, script, what in JOBS:
        if letter not in sections:
            continue
        try:
            bench_job(letter, script, what, cfg, kinds, rows, speedups)
        except Exception as e:
            rows.append(Row.failed(f"{letter}. {what}", f"{type(e).__name__}: {e}"))
    if "stdlib" not in kinds:
        rows.append(NARow("the standard library's interpreter pool",
                          "n/a before 3.14: the one-shot rows compare with forkserver only"))
    table = speedup_table(speedups, kinds) if speedups else ""
    print("\n" + table)
    return finish(rows, t_start, cfg.check, extra={"markdown": table})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
