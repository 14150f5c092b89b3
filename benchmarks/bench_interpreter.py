"""Interpreter benchmarks: calls, data movement, life cycle, parallel CPU work.

    python benchmarks/bench_interpreter.py [--quick] [--check] [--no-seed]
                                           [--only a,b,c,d] [--seed-venv DIR]

Every measurement runs extrainterpreters and its baseline in this same process run,
in alternating order, over several rounds; the table shows the median round of each
and their ratio. Absolute times on a shared machine mean little: the ratios are what
the targets are about.

  a. ``interp.run(f, 1)`` round trip on a warm interpreter, from the main thread and
     from another thread, vs ``ThreadPoolExecutor(1).submit(f, 1).result()``; and vs
     ``run`` of extrainterpreters 0.3.0 (from the package index, installed in a
     virtualenv under bench-venvs/ and measured in a subprocess of it); and vs
     ``Interpreter.call(f, 1)`` of the stdlib's ``concurrent.interpreters`` (3.14+; n/a
     before), both from the main thread.
  b. 64 MiB of ``bytes`` sent to ``len`` and 64 MiB returned from ``bytes(n)``, vs one
     64 MiB copy (``bytes(bytearray)``); ProcessPoolExecutor (fork) for reference.
  c. ``Interpreter().start()`` + first ``run(f, 1)`` + ``close()`` vs the raw stdlib
     module's create + ``"pass"`` + destroy.
  d. two interpreters running a pure-Python CPU-bound function with ``run_in_thread``
     vs the same two calls run serially in the main thread (and, for reference, two
     threads and two forked processes).
  e. a function whose module the interpreter cannot import (it imports CPython's
     ``_testsinglephase``, which refuses isolated interpreters), so that it crosses by
     value after the first call failed: its first call vs the first call of the same
     function in a module the interpreter imports (by reference), and its later calls
     vs by-reference calls and vs the same functions of a ``__main__`` (by value, as
     before).

The exit code is 0 even when a target is missed, unless ``--check`` is given.
"""
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import threading
import time
import warnings

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

from _bench import (NO_STDLIB, MiB, NARow, Row, alternate, arg_parser, begin,  # noqa: E402
                    ensure_bytecode, finish, fmt_t, fork_pool, load_xi, med, paired, perf,
                    progress, section_runner, stdlib_interpreters)
from _workloads import cpu_work, identity, make_bytes, noop, time_make_bytes  # noqa: E402

SEED_VERSION = "0.3.0"


# ---------------------------------------------------------------- raw stdlib

def raw_module():
    """(create, run_pass, destroy) of the stdlib's low-level interpreters module."""
    try:
        import _interpreters as m  # 3.13+

        return (lambda: m.create(), lambda i: m.exec(i, "pass"), m.destroy,
                "_interpreters.create()+exec('pass')+destroy")
    except ImportError:
        import _xxsubinterpreters as m  # 3.12

        try:
            i = m.create(isolated=True)
            m.destroy(i)

            def create():
                return m.create(isolated=True)
            label = "_xxsubinterpreters.create(isolated=True)+run_string('pass')+destroy"
        except TypeError:
            create = m.create
            label = "_xxsubinterpreters.create()+run_string('pass')+destroy"
        return create, lambda i: m.run_string(i, "pass"), m.destroy, label


# ---------------------------------------------------------------- a. round trip

def loop_run(interp, n):
    run = interp.run
    t0 = perf()
    for _ in range(n):
        run(identity, 1)
    return (perf() - t0) / n


def loop_tpe(ex, n):
    submit = ex.submit
    t0 = perf()
    for _ in range(n):
        submit(identity, 1).result()
    return (perf() - t0) / n


def bench_round_trip(xi, cfg, rows):
    rounds, n = cfg.rounds_a, cfg.calls_a
    other = None
    interp = xi.Interpreter().start()
    ex = cf.ThreadPoolExecutor(1)
    try:
        assert interp.run(identity, 1) == 1
        for _ in range(200):
            interp.run(identity, 1)
            ex.submit(identity, 1).result()

        progress(f"a. run(f, 1) from the main thread: {rounds} rounds x {n} calls")
        ours, base = alternate(rounds, lambda: loop_run(interp, n), lambda: loop_tpe(ex, n))
        main_ours = med(ours)
        rows.append(Row("a. run(f, 1), main thread, vs ThreadPoolExecutor",
                        main_ours, med(base), "ratio", 0.25))

        progress(f"a. run(f, 1) from another thread: {rounds} rounds x {n} calls")
        box = {}

        def in_thread():
            try:
                for _ in range(200):
                    interp.run(identity, 1)
                box["s"] = alternate(rounds, lambda: loop_run(interp, n),
                                     lambda: loop_tpe(ex, n))
            except BaseException as e:  # reported in the table
                box["e"] = e

        t = threading.Thread(target=in_thread, name="bench-caller")
        t.start()
        t.join()
        if "e" in box:
            rows.append(Row.failed("a. run(f, 1), other thread, vs ThreadPoolExecutor",
                                   repr(box["e"])))
        else:
            ours, base = box["s"]
            other = med(ours)
            rows.append(Row("a. run(f, 1), other thread, vs ThreadPoolExecutor",
                            med(ours), med(base), "ratio", 0.25))

        # By-value callables (a lambda is pickled by value on every call), measured
        # from a non-main thread so that only the serialization differs from above.
        name = "a. run(lambda x: x, 1), other thread, vs ThreadPoolExecutor (info)"
        progress("a. run(lambda x: x, 1) from another thread (by value)")
        n2 = max(20, n // 10)
        fn = lambda x: x  # noqa: E731

        def loop_lambda():
            run = interp.run
            t0 = perf()
            for _ in range(n2):
                run(fn, 1)
            return (perf() - t0) / n2

        def lambda_thread():
            try:
                assert interp.run(fn, 1) == 1
                box["l"] = alternate(rounds, loop_lambda, lambda: loop_tpe(ex, n2))
            except BaseException as e:
                box["le"] = e

        t = threading.Thread(target=lambda_thread, name="bench-caller-2")
        t.start()
        t.join()
        if "le" in box:
            rows.append(Row.failed(name, repr(box["le"])))
        else:
            ours, base = box["l"]
            rows.append(Row(name, med(ours), med(base), "ratio", None))
    finally:
        ex.shutdown()
        interp.close()
    return main_ours, other


def bench_stdlib_call(xi, cfg, rows):
    """run(f, 1) vs the stdlib's public ``concurrent.interpreters`` Interpreter.call(f, 1),
    both on a warm interpreter, from the main thread."""
    name = "a. run(f, 1) vs concurrent.interpreters Interpreter.call(f, 1)"
    ci = stdlib_interpreters()
    if ci is None:
        rows.append(NARow(name, NO_STDLIB, "<= 0.2"))
        return
    rounds, n, m = cfg.rounds_a, cfg.calls_a, cfg.calls_std
    interp = xi.Interpreter().start()
    try:
        si = ci.create()
        try:
            assert si.call(identity, 1) == 1
            assert interp.run(identity, 1) == 1
            for _ in range(50):
                si.call(identity, 1)
                interp.run(identity, 1)

            def loop_std():
                call = si.call
                t0 = perf()
                for _ in range(m):
                    call(identity, 1)
                return (perf() - t0) / m

            progress(f"a. run(f, 1) vs concurrent.interpreters call(f, 1): {rounds} rounds "
                     f"x {n} / {m} calls")
            o, b = alternate(rounds, lambda: loop_run(interp, n), loop_std)
            rows.append(paired(name, o, b, "ratio", 0.2,
                               note=f"{n} calls of ours, {m} of the stdlib per round (Interpreter "
                                    "= concurrent.interpreters.create()); Interpreter.call is "
                                    "Interpreter.run here; ratio: median of each round's own "
                                    "ratio"))
        finally:
            si.close()
    finally:
        interp.close()


SEED_SCRIPT = r"""
import json, statistics, sys, time
sys.path.insert(0, {bench_dir!r})
import extrainterpreters as xi
from _workloads import identity
interp = xi.Interpreter().start()
assert interp.run(identity, 1) == 1
for _ in range(50):
    interp.run(identity, 1)
samples = []
for _ in range({rounds}):
    t0 = time.perf_counter()
    for _ in range({n}):
        interp.run(identity, 1)
    samples.append((time.perf_counter() - t0) / {n})
interp.close()
print("SEED-RESULT " + json.dumps({{"median": statistics.median(samples),
                                    "min": min(samples),
                                    "version": xi.__version__,
                                    "python": sys.version.split()[0]}}), flush=True)
"""


def seed_python(cfg):
    """Path to a python that has extrainterpreters 0.3.0, creating its venv if needed.

    Returns (python, None) or (None, reason)."""
    tag = f"{sys.version_info[0]}.{sys.version_info[1]}"
    venv = cfg.seed_venv or os.path.join(REPO_ROOT, "bench-venvs", f"seed-{tag}")
    py = os.path.join(venv, "bin", "python")
    check = [py, "-I", "-c", "import extrainterpreters as x; print(x.__version__)"]

    def installed():
        if not os.path.exists(py):
            return False
        p = subprocess.run(check, capture_output=True, text=True, timeout=120)
        # 0.3.0 prints a list at exit: look at the first line only
        first = (p.stdout.strip().splitlines() or [""])[0].strip()
        return p.returncode == 0 and first == SEED_VERSION

    try:
        if installed():
            return py, None
        base = getattr(sys, "_base_executable", None) or sys.executable
        if not os.path.exists(py):
            progress(f"creating {venv} with {base}")
            p = subprocess.run([base, "-m", "venv", venv], capture_output=True, text=True,
                               timeout=300)
            if p.returncode != 0:
                return None, "venv creation failed: " + (p.stderr.strip().splitlines()
                                                         or ["?"])[-1]
        progress(f"installing extrainterpreters=={SEED_VERSION} into {venv}")
        p = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            f"extrainterpreters=={SEED_VERSION}"],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            lines = [ln for ln in p.stderr.strip().splitlines()
                     if ln.strip() and not ln.startswith("WARNING")]
            return None, "pip install failed: " + (lines[-1] if lines else "?")
        if not installed():
            return None, f"extrainterpreters {SEED_VERSION} does not import on Python {tag}"
        return py, None
    except (OSError, subprocess.SubprocessError) as e:
        return None, repr(e)


def bench_seed(cfg, ours, rows):
    ours_main, ours_other = ours
    name = f"a. run(f, 1), main thread, vs extrainterpreters {SEED_VERSION}"
    py, why = seed_python(cfg)
    if py is None:
        print(f"seed: unavailable ({why})", flush=True)
        return
    progress(f"a. extrainterpreters {SEED_VERSION} run(f, 1) in {py}")
    script = SEED_SCRIPT.format(bench_dir=BENCH_DIR, rounds=cfg.rounds_seed, n=cfg.calls_seed)
    try:
        p = subprocess.run([py, "-I", "-c", script], capture_output=True, text=True,
                           timeout=600, cwd=BENCH_DIR)
    except subprocess.SubprocessError as e:
        print(f"seed: unavailable ({e!r})", flush=True)
        return
    found = [ln for ln in p.stdout.splitlines() if ln.startswith("SEED-RESULT ")]
    if not found:
        tail = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
        print(f"seed: unavailable (measurement failed: {tail})", flush=True)
        return
    res = json.loads(found[-1][len("SEED-RESULT "):])
    rows.append(Row(name, ours_main, res["median"], "speedup", 20,
                    note=f"0.3.0 measured in a subprocess on Python {res['python']} "
                         f"(its min {fmt_t(res['min'])}); ours is the main-thread median above"))
    if ours_other is not None:
        rows.append(Row(f"a. run(f, 1), other thread, vs extrainterpreters {SEED_VERSION} (info)",
                        ours_other, res["median"], "speedup", None))


# ---------------------------------------------------------------- b. 64 MiB

def bench_bytes(xi, cfg, rows, ppe):
    size = cfg.size_b
    rounds = cfg.rounds_b
    label = f"{size // MiB} MiB"
    src = bytearray(b"\xa5") * size
    data = bytes(src)
    interp = xi.Interpreter().start()
    try:
        assert interp.run(len, b"x") == 1
        assert interp.run(make_bytes, 16) == bytes(16)

        def copy():
            t0 = perf()
            b = bytes(src)
            dt = perf() - t0
            del b
            return dt

        def send():
            t0 = perf()
            n = interp.run(len, data)
            dt = perf() - t0
            assert n == size, n
            return dt

        def ret():
            t0 = perf()
            b = interp.run(make_bytes, size)
            dt = perf() - t0
            assert len(b) == size
            del b
            return dt

        def sub_alloc():
            return interp.run(time_make_bytes, size, 1)[0]

        def ppe_send():
            t0 = perf()
            n = ppe.submit(len, data).result()
            dt = perf() - t0
            assert n == size
            return dt

        def ppe_ret():
            t0 = perf()
            b = ppe.submit(make_bytes, size).result()
            dt = perf() - t0
            assert len(b) == size
            del b
            return dt

        measures = [copy, send, ret, sub_alloc]
        if ppe is not None:
            measures += [ppe_send, ppe_ret]
        progress(f"b. {label} send / return: {rounds} rounds")
        copy()
        send()
        ret()
        s = alternate(rounds, *measures)
        c = med(s[0])
        rows.append(Row(f"b. run(len, <{label} bytes>) vs one {label} copy",
                        med(s[1]), c, "ratio", 2.0,
                        note=f"one copy = bytes(bytearray of {label}), measured {rounds}x "
                             "in the same rounds"))
        rows.append(Row(f"b. run(make_bytes, {label}) vs one {label} copy",
                        med(s[2]), c, "ratio", 2.0))
        rows.append(Row(f"b. bytes({label}) inside the interpreter (info)",
                        med(s[3]), c, "ratio", None))
        if ppe is not None:
            rows.append(Row(f"b. ProcessPool(fork) len(<{label}>) (info)",
                            med(s[4]), c, "ratio", None))
            rows.append(Row(f"b. ProcessPool(fork) make_bytes({label}) (info)",
                            med(s[5]), c, "ratio", None))
    finally:
        interp.close()


# ---------------------------------------------------------------- c. life cycle

def bench_lifecycle(xi, cfg, rows):
    create, run_pass, destroy, label = raw_module()
    rounds, k = cfg.rounds_c, cfg.cycles_c
    phases_ours = ([], [], [])  # start(), first run(f, 1), close()
    phases_raw = ([], [], [])   # create, "pass", destroy

    def ours():
        t_all = perf()
        for _ in range(k):
            t0 = perf()
            it = xi.Interpreter()
            it.start()
            t1 = perf()
            it.run(identity, 1)
            t2 = perf()
            it.close()
            t3 = perf()
            for lst, dt in zip(phases_ours, (t1 - t0, t2 - t1, t3 - t2)):
                lst.append(dt)
        return (perf() - t_all) / k

    def raw():
        t_all = perf()
        for _ in range(k):
            t0 = perf()
            i = create()
            t1 = perf()
            run_pass(i)
            t2 = perf()
            destroy(i)
            t3 = perf()
            for lst, dt in zip(phases_raw, (t1 - t0, t2 - t1, t3 - t2)):
                lst.append(dt)
        return (perf() - t_all) / k

    progress(f"c. start + first run + close: {rounds} rounds x {k} cycles")
    ours()
    raw()
    for lst in phases_ours + phases_raw:
        lst.clear()
    o, b = alternate(rounds, ours, raw)
    rows.append(Row("c. start()+run(f, 1)+close() vs raw create/exec/destroy",
                    med(o), med(b), "ratio", 1.3, note="raw: " + label))
    for name, po, pr in zip(("start() vs create", "first run(f, 1) vs 'pass'",
                             "close() vs destroy"), phases_ours, phases_raw):
        rows.append(Row(f"c.   of which {name} (info)", med(po), med(pr), "ratio", None))


# ---------------------------------------------------------------- d. CPU-bound

def calibrate(seconds):
    n = 50_000
    while True:
        t0 = perf()
        cpu_work(n)
        dt = perf() - t0
        if dt > 0.05:
            break
        n *= 2
    return max(10_000, int(n * seconds / dt))


def bench_cpu(xi, cfg, rows, ppe2=None):
    n = calibrate(cfg.cpu_seconds)
    expect = (n - 1) * n * (2 * n - 1) // 6
    rounds = cfg.rounds_d
    # process CPU seconds per wall second: shows how much of the machine this got
    cpu_use, cpu_serial = [], []
    progress(f"d. 2 x cpu_work({n:,}): {rounds} rounds (serial, 2 threads, 2 interpreters)")

    def serial():
        c0, t0 = time.process_time(), perf()
        r = [cpu_work(n), cpu_work(n)]
        dt = perf() - t0
        cpu_serial.append((time.process_time() - c0) / dt)
        assert r == [expect, expect]
        return dt

    def threads():
        with cf.ThreadPoolExecutor(2) as ex:
            t0 = perf()
            futs = [ex.submit(cpu_work, n) for _ in range(2)]
            r = [f.result() for f in futs]
            dt = perf() - t0
        assert r == [expect, expect]
        return dt

    def interps():
        its = [xi.Interpreter().start() for _ in range(2)]
        try:
            for it in its:
                it.run(identity, 1)  # warm: imports the workload module there
            c0, t0 = time.process_time(), perf()
            for it in its:
                it.run_in_thread(cpu_work, n)
            for it in its:
                it.join()
            dt = perf() - t0
            cpu_use.append((time.process_time() - c0) / dt)
            r = [it.result() for it in its]
        finally:
            for it in its:
                it.close()
        assert r == [expect, expect], r
        return dt

    def processes():
        t0 = perf()
        futs = [ppe2.submit(cpu_work, n) for _ in range(2)]
        r = [f.result() for f in futs]
        dt = perf() - t0
        assert r == [expect, expect]
        return dt

    measures = [serial, threads, interps] + ([processes] if ppe2 is not None else [])
    s, t, i, *p = alternate(rounds, *measures)
    rows.append(Row("d. 2 interpreters run_in_thread vs serial (speedup)",
                    med(i), med(s), "speedup", 1.8,
                    note=f"cpu_work({n:,}) twice; interpreters started and warmed before "
                         "the clock, join() (which also closes) inside it; process CPU seconds per "
                         f"wall second: interpreters {med(cpu_use):.2f}, serial "
                         f"{med(cpu_serial):.2f} (ideal: 2.0 and 1.0)"))
    rows.append(Row("d. 2 threads vs serial (speedup, info)", med(t), med(s), "speedup", None))
    if p:
        rows.append(Row("d. 2 processes (fork pool) vs serial (speedup, info)",
                        med(p[0]), med(s), "speedup", None,
                        note="what the machine allows right now: if this is far below 2x, "
                             "other work is using the cores"))


# ---------------------------------------------------------------- main

BY_VALUE_MODULE = """
{header}
SCALE = 3

def helper(x):
    return x * SCALE

def task(x):
    return helper(x)
"""


def bench_by_value_after_import(xi, cfg, rows):
    import shutil
    import tempfile
    import uuid

    rounds, n = cfg.rounds_e, cfg.calls_e
    folder = tempfile.mkdtemp(prefix="xi-bench-e-")
    sys.path.insert(0, folder)
    interp = None
    try:
        def new_module(refused):
            name = f"bench_{'refused' if refused else 'plain'}_{uuid.uuid4().hex[:10]}"
            header = "import _testsinglephase" if refused else ""
            with open(os.path.join(folder, f"{name}.py"), "w") as f:
                f.write(BY_VALUE_MODULE.format(header=header))
            return __import__(name)

        refused = [new_module(True) for _ in range(rounds)]
        plain = [new_module(False) for _ in range(rounds)]
        interp = xi.Interpreter().start()  # sys.path has the folder
        assert interp.run(identity, 1) == 1

        def first(mods):
            fresh = iter(mods)  # each round a module the interpreter has not seen

            def measure():
                m = next(fresh)
                t0 = perf()
                assert interp.run(m.task, 2) == 6
                return perf() - t0
            return measure

        progress(f"e. first call by value after a failed import: {rounds} rounds")
        ours, base = alternate(rounds, first(refused), first(plain))
        rows.append(Row("e. first call, module not importable there, vs importable (info)",
                        med(ours), med(base), "ratio", None,
                        note="ours: a failed try, then by value; baseline: by reference, "
                             "its module imported there"))

        byval, byref = refused[0].task, plain[0].task
        # the same code as functions of a __main__ (by value, as before): the baseline
        main_ns = {"__name__": "__main__"}
        exec(BY_VALUE_MODULE.format(header=""), main_ns)
        fn = main_ns["task"]

        def loop(f):
            def measure():
                run = interp.run
                t0 = perf()
                for _ in range(n):
                    run(f, 2)
                return (perf() - t0) / n
            return measure

        progress(f"e. later calls: {rounds} rounds x {n} calls")
        ours, ref, lam = alternate(rounds, loop(byval), loop(byref), loop(fn))
        rows.append(Row("e. later calls, by value after a failed import, vs __main__'s",
                        med(ours), med(lam), "ratio", 1.2,
                        note="the same functions defined in __main__ cross by value"))
        rows.append(Row("e. later calls, by value after a failed import, vs by reference (info)",
                        med(ours), med(ref), "ratio", None))
    finally:
        if interp is not None:
            interp.close()
        sys.path.remove(folder)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None):
    ap = arg_parser(__doc__, "abcde", example="a,c", quick_help="fewer rounds and calls")
    ap.add_argument("--no-seed", action="store_true",
                    help=f"skip the extrainterpreters {SEED_VERSION} comparison")
    ap.add_argument("--seed-venv", default=None,
                    help="virtualenv holding extrainterpreters 0.3.0 "
                         "(default: bench-venvs/seed-X.Y, created on demand)")
    cfg, sections = begin(ap, argv, ignore_unknown=False)
    q = cfg.quick
    cfg.rounds_a, cfg.calls_a = (5, 500) if q else (9, 2000)
    cfg.calls_std = 100 if q else 300
    cfg.rounds_seed, cfg.calls_seed = (3, 100) if q else (7, 300)
    cfg.rounds_b, cfg.size_b = (3, 64 * MiB) if q else (7, 64 * MiB)
    cfg.rounds_c, cfg.cycles_c = (3, 3) if q else (7, 4)
    cfg.rounds_d, cfg.cpu_seconds = (2, 0.25) if q else (5, 0.4)
    cfg.rounds_e, cfg.calls_e = (3, 200) if q else (7, 1000)

    ensure_bytecode()
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)

    # Fork the reference process pool before any interpreter or thread exists.
    ppe = None
    if "b" in sections:
        try:
            ppe = fork_pool(1)
            ppe.submit(noop).result()
        except Exception as e:
            progress(f"ProcessPoolExecutor(fork) unavailable: {e!r}")
            ppe = None

    ppe2 = None
    if "d" in sections:
        try:
            ppe2 = fork_pool(2)
            for f in [ppe2.submit(noop) for _ in range(2)]:
                f.result()
        except Exception as e:
            progress(f"ProcessPoolExecutor(fork) unavailable: {e!r}")
            ppe2 = None

    xi = load_xi(cfg, "Interpreter")
    if xi is None:
        return 2 if cfg.check else 0

    rows = []
    t_start = perf()
    section = section_runner(sections, rows)

    ours_a = section("a", "a. run(f, 1) round trip", bench_round_trip, xi, cfg, rows)
    section("a", "a. run(f, 1) vs concurrent.interpreters", bench_stdlib_call, xi, cfg, rows)
    if "a" in sections and not cfg.no_seed and ours_a is not None:
        section("a", f"a. vs extrainterpreters {SEED_VERSION}", bench_seed, cfg, ours_a, rows)
    section("b", "b. 64 MiB send / return", bench_bytes, xi, cfg, rows, ppe)
    if ppe is not None:
        ppe.shutdown()
    section("c", "c. start/run/close", bench_lifecycle, xi, cfg, rows)
    section("d", "d. parallel CPU-bound", bench_cpu, xi, cfg, rows, ppe2)
    section("e", "e. by value after a failed import", bench_by_value_after_import, xi, cfg,
            rows)
    if ppe2 is not None:
        ppe2.shutdown()

    return finish(rows, t_start, cfg.check, skewed="parallel")


if __name__ == "__main__":
    sys.exit(main())
