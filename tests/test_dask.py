"""Dask on interpreter pools: the local scheduler and the distributed worker plugin.

Every scenario runs in its own process: a cluster needs one anyway, and a process whose
subinterpreters loaded dask must not be this test run (see SUPPORTED).
"""
import json
import os
import re
import sys

import pytest

from conftest import TESTS_DIR, run_py, run_script

ROOT = os.path.dirname(TESTS_DIR)
DOC = os.path.join(ROOT, "docs", "scale-out.md")

# CPython's own defects (docs/scale-out.md, "Which Python"): 3.12 cannot load dask.bag in
# a subinterpreter and aborts at exit after dask was imported in one. (3.13's corruption of
# memory by subinterpreters loading datetime, gh-136421, the library works around: see
# tests/test_cpython_defects.py.)
SUPPORTED = sys.version_info >= (3, 13)
# a distributed worker's pool on 3.13 can abort the worker (docs/scale-out.md)
CLUSTER_SUPPORTED = sys.version_info >= (3, 13, 18)

PRELUDE = f"""
import json, os, sys, tempfile
sys.path.insert(0, {TESTS_DIR!r})
import dask
import extrainterpreters as xi
import scaleout_funcs as sf
"""


def doc_blocks():
    with open(DOC) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def result_of(proc, returncode=0):
    out = proc.stdout + proc.stderr
    assert proc.returncode == returncode, f"exit status {proc.returncode}\n{out}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, out
    return json.loads(lines[0][len("RESULT "):])


LOCAL = PRELUDE + """
import dask.bag as db
from dask.base import get_scheduler
from operator import add

folder = tempfile.mkdtemp()
out = {}
with xi.InterpreterPoolExecutor(2) as pool, dask.config.set(scheduler=pool):
    parts = [dask.delayed(sf.square_where)(i) for i in range(8)]
    total = dask.delayed(sum)([p[0] for p in parts])
    parts, total = dask.compute(parts, total)
    out["delayed"] = [p[0] for p in parts], total
    out["where"] = sorted({tuple(p[1:]) for p in parts})
    # two tasks that each wait until both are running
    meet = [dask.delayed(sf.rendezvous, pure=False)(folder, 2) for _ in range(2)]
    out["met"] = [m[3] for m in dask.compute(*meet)]
    bag = db.from_sequence(range(100), npartitions=6).map(sf.square).filter(
        lambda x: x % 3 == 0)
    out["bag"] = bag.sum().compute(), sorted(bag.map(lambda x: x % 2).frequencies().compute())
    # a low-level graph of Dask's task tuples, nested ones included
    dsk = {"a": 3, "b": (sf.square, "a"), "c": (add, "b", (sf.square, (add, "a", 1))),
           "d": (sum, ["a", "b", "c"])}
    out["tuples"] = get_scheduler()(dsk, ["c", "d"])
    try:
        dask.delayed(sf.fail_task)("bad task").compute()
    except sf.TaskError as exc:
        out["error"] = [type(exc).__name__, str(exc), type(exc.__cause__).__name__,
                        "fail_task" in exc.__cause__.excinfo.errdisplay]
print("RESULT", json.dumps(out))
"""


ONE_WORKER = PRELUDE + """
from dask.base import get_scheduler
from operator import add

out = {}
with xi.InterpreterPoolExecutor(1) as pool, dask.config.set(scheduler=pool):
    parts = [dask.delayed(sf.square_where)(i) for i in range(4)]
    out["delayed"] = [p[:2] for p in dask.compute(*parts)]
    out["tuples"] = get_scheduler()({"a": 3, "b": (add, "a", (sf.square, "a"))}, "b")
    def load_bag():
        try:
            import dask.bag
            return "loaded"
        except ImportError as exc:
            return str(exc)
    out["bag"] = pool.submit(load_bag).result()
print("RESULT", json.dumps(out), flush=True)
"""


def check_one_worker():
    """What 3.12 can do: one interpreter at a time."""
    proc = run_py(ONE_WORKER, timeout=240)
    # the abort at exit after dask was imported in a subinterpreter
    out = result_of(proc, returncode=-6)
    assert "free(): invalid pointer" in proc.stderr
    assert "_ctypes does not support loading in subinterpreters" in out["bag"]
    assert [d[0] for d in out["delayed"]] == [0, 1, 4, 9]
    assert all(d[1] != 0 for d in out["delayed"])
    assert out["tuples"] == 12


def test_local_scheduler_runs_graphs_in_interpreters():
    if not SUPPORTED:
        check_one_worker()
        return
    out = result_of(run_py(LOCAL, timeout=240))
    assert out["delayed"] == [[i * i for i in range(8)], sum(i * i for i in range(8))]
    pid = out["where"][0][1]
    assert all(w[0] != 0 and w[1] == pid and w[2] is False for w in out["where"])
    assert pid != os.getpid()
    assert out["met"] == [2, 2]
    squares = [x * x for x in range(100) if x * x % 3 == 0]
    assert out["bag"] == [sum(squares), sorted(
        [[0, sum(1 for s in squares if s % 2 == 0)], [1, sum(1 for s in squares if s % 2)]])]
    assert out["tuples"] == [9 + 16, 3 + 9 + 25]
    assert out["error"] == ["TaskError", "bad task", "ExecutionFailed", True]


CLUSTER = PRELUDE + """
from distributed import Client, LocalCluster
from extrainterpreters.dask import InterpreterExecutor

if __name__ == "__main__":
    folder = tempfile.mkdtemp()
    out = {}
    with LocalCluster(n_workers=2, threads_per_worker=2, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.register_plugin(InterpreterExecutor(name="interpreters", max_workers=2))
        workers = sorted(client.scheduler_info()["workers"])
        with dask.annotate(executor="interpreters"):
            squares = client.map(sf.square_where, range(20))
            bad = client.submit(sf.fail_task, "bad task")
            # on each worker, two tasks that each wait until both are running
            meet = [client.submit(sf.rendezvous, folder, 2, pure=False, workers=[w],
                                  allow_other_workers=False)
                    for w in workers for _ in range(2)]
            chained = client.submit(sf.square_where, client.submit(sf.add, 3, 4))
        plain = client.submit(sf.where, pure=False)
        out["squares"] = client.gather(squares)
        out["met"] = client.gather(meet)
        out["chained"] = chained.result()
        out["plain"] = plain.result()
        try:
            bad.result()
        except sf.TaskError as exc:
            out["error"] = [type(exc).__name__, str(exc)]
        out["pids"] = sorted(p["pid"] for p in client.run(lambda: {"pid": os.getpid()}).values())
    print("RESULT", json.dumps(out))
"""

REFUSED = PRELUDE + """
from extrainterpreters.dask import InterpreterExecutor
try:
    InterpreterExecutor()
except RuntimeError as exc:
    print("RESULT", json.dumps(str(exc)))
"""


@pytest.mark.slow
def test_cluster_plugin_runs_annotated_tasks_in_interpreters():
    if not CLUSTER_SUPPORTED:
        # refused with an explanation rather than crashing workers
        message = result_of(run_py(REFUSED, timeout=120))
        assert "or later" in message
        return
    out = result_of(run_py(CLUSTER, timeout=300))
    pids = out["pids"]
    assert len(pids) == 2
    assert [s[0] for s in out["squares"]] == [i * i for i in range(20)]
    for _, interp, pid, has_distributed in out["squares"]:
        assert interp != 0 and pid in pids and has_distributed is False
    # both workers ran two tasks at once, each in a subinterpreter of its own pool
    met = out["met"]
    assert sorted(m[1] for m in met) == sorted(pids * 2)
    assert all(m[0] != 0 and m[2] is False and m[3] == 2 for m in met)
    for pid in pids:
        assert len({m[0] for m in met if m[1] == pid}) == 2
    assert out["chained"][0] == 49 and out["chained"][1] != 0
    # not annotated: the default executor, in the worker's main interpreter
    assert out["plain"][0] == 0 and out["plain"][1] in pids and out["plain"][2] is True
    assert out["error"] == ["TaskError", "bad task"]


@pytest.mark.slow
def test_doc_examples_run(tmp_path):
    joblib_example, local, cluster = doc_blocks()
    for name, code in [("joblib_example.py", joblib_example), ("local_example.py", local),
                       ("cluster_example.py", cluster)]:
        (tmp_path / name).write_text(code)
    # joblib's backend works on every version
    proc = run_script(tmp_path / "joblib_example.py", timeout=240)
    assert proc.returncode == 0 and not proc.stderr, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["[0, 0, 1, 5] 1000"]
    if not SUPPORTED:
        proc = run_script(tmp_path / "cluster_example.py", timeout=120)
        assert proc.returncode != 0 and "3.13 or later" in proc.stderr, proc.stderr
        return
    proc = run_script(tmp_path / "local_example.py", timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 6171 takes 261 steps; 27, 97 and 871 take 111, 118 and 178
    assert proc.stdout.splitlines() == ["longest: 261", "sum: 407"]
    if not CLUSTER_SUPPORTED:
        proc = run_script(tmp_path / "cluster_example.py", timeout=120)
        assert proc.returncode != 0 and "3.13.18 or later" in proc.stderr, proc.stderr
        return
    proc = run_script(tmp_path / "cluster_example.py", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "longest: 261"
    ids = json.loads(lines[1].removeprefix("interpreters: "))
    assert ids and 0 not in ids
    assert lines[2] == "default executor: 0"
