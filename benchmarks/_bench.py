"""What every benchmarks/bench_*.py shares: the result table, timing helpers and the
command line, set-up and summary around its sections."""
import argparse
import concurrent.futures as cf
import faulthandler
import functools
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
import traceback

MiB = 1 << 20
perf = time.perf_counter


def ensure_bytecode():
    """Write the workload module's .pyc even under PYTHONDONTWRITEBYTECODE.

    Every new interpreter imports _workloads on its first call; without a current
    .pyc that import compiles the source (milliseconds), which would be charged to
    the library in the life-cycle measurement."""
    import py_compile

    import _workloads

    try:
        py_compile.compile(_workloads.__file__, doraise=True)
    except (OSError, py_compile.PyCompileError):
        pass


# ---------------------------------------------------------------- reporting

def fmt_t(s):
    if s is None:
        return "-"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


class Row:
    """One line of the table.

    kind "ratio":   ratio = ours / baseline, must be <= target
    kind "speedup": speedup = baseline / ours, must be >= target
    target None:    reported for reference only
    """

    def __init__(self, name, ours, base, kind="ratio", target=None, note=""):
        self.name, self.ours, self.base = name, ours, base
        self.kind, self.target, self.note = kind, target, note
        self.error = None

    @classmethod
    def failed(cls, name, error):
        r = cls(name, None, None)
        r.error = error
        return r

    def value(self):
        if self.ours is None or self.base is None or not self.ours or not self.base:
            return None
        return self.ours / self.base if self.kind == "ratio" else self.base / self.ours

    def status(self):
        if self.error is not None:
            return "ERROR"
        if self.target is None:
            return "info"
        v = self.value()
        if v is None:
            return "ERROR"
        ok = v <= self.target if self.kind == "ratio" else v >= self.target
        return "PASS" if ok else "FAIL"

    def cells(self):
        if self.error is not None:
            return [self.name, "-", "-", "-", self.target_str(), "ERROR"]
        v = self.value()
        if v is None:
            vs = "-"
        elif self.kind == "ratio":
            vs = f"{v:.3f}"
        else:
            vs = f"{v:.2f}x"
        return [self.name, fmt_t(self.ours), fmt_t(self.base), vs,
                self.target_str(), self.status()]

    def to_dict(self):
        """The row as plain data (``--json``): times in seconds, None where missing."""
        d = {"name": self.name, "ours": self.ours, "base": self.base, "kind": self.kind,
             "target": self.target, "target_str": self.target_str(), "value": self.value(),
             "status": self.status(), "note": self.note, "error": self.error}
        if self.status() in ("n/a", "ERROR"):
            d["value"] = None
        return d

    def target_str(self):
        if self.target is None:
            return "-"
        return f"<= {self.target:g}" if self.kind == "ratio" else f">= {self.target:g}x"


class PairedRow(Row):
    """A Row whose value is the median of per-round ratios.

    ``ours`` and ``base`` are sample lists from the same rounds of ``alternate()``: each
    round ran both back to back, so a slow spell of a shared machine weighs on both
    sides of a round's ratio instead of on one side of the medians' ratio."""

    def __init__(self, name, ours, base, kind="ratio", target=None, note=""):
        super().__init__(name, med(ours), med(base), kind, target, note)
        self.pairs = [(o, b) for o, b in zip(ours, base) if o and b]

    def rounds(self):
        """Each round's own value."""
        return [o / b if self.kind == "ratio" else b / o for o, b in self.pairs]

    def value(self):
        return med(self.rounds()) if self.pairs else None

    def spread(self):
        """(lowest, highest) per-round value."""
        vs = self.rounds()
        return (min(vs), max(vs)) if vs else (None, None)


class NARow(Row):
    """A row whose baseline does not exist on this Python."""

    def __init__(self, name, reason, target_str="-"):
        super().__init__(name, None, None, note=reason)
        self._target_str = target_str

    def status(self):
        return "n/a"

    def cells(self):
        return [self.name, "-", "n/a", "-", self._target_str, "n/a"]

    def target_str(self):
        return self._target_str


# ---------------------------------------------------------------- the stdlib's interpreters

NO_STDLIB = (f"n/a: stdlib has no concurrent.interpreters (Python "
             f"{platform.python_version()}; 3.14+)")


def stdlib_interpreters():
    """The stdlib's ``concurrent.interpreters`` (3.14+), or None."""
    try:
        import concurrent.interpreters as ci
    except ImportError:
        return None
    return ci


def stdlib_pool_class():
    """The stdlib's ``concurrent.futures.InterpreterPoolExecutor`` (3.14+), or None."""
    return getattr(cf, "InterpreterPoolExecutor", None) if stdlib_interpreters() else None


def paired(name, ours, base, kind, target, note=""):
    """A PairedRow whose note ends with the spread of its rounds."""
    row = PairedRow(name, ours, base, kind, target)
    lo, hi = row.spread()
    spread = "" if lo is None else (f"rounds {lo:.3f}..{hi:.3f}" if kind == "ratio"
                                    else f"rounds {lo:.2f}x..{hi:.2f}x")
    row.note = "; ".join(x for x in (note, spread) if x)
    return row


def print_table(rows, out=sys.stdout):
    head = ["measurement", "ours", "baseline", "ratio", "target", "result"]
    table = [head] + [r.cells() for r in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(head))]
    sep = "  "

    def line(cells):
        first = str(cells[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return sep.join([first] + rest).rstrip()

    print(line(head), file=out)
    print(sep.join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r.cells()), file=out)
    notes = [(r.name, r.note) for r in rows if r.note]
    errors = [(r.name, r.error) for r in rows if r.error is not None]
    for name, note in notes:
        print(f"  * {name}: {note}", file=out)
    for name, err in errors:
        print(f"  ! {name}: {err}", file=out)
    out.flush()


def load_avg():
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def progress(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def alternate(rounds, *measures):
    """Run each measure once per round, alternating the order every round.

    Returns one list of samples per measure."""
    samples = [[] for _ in measures]
    for r in range(rounds):
        order = list(range(len(measures)))
        if r % 2:
            order.reverse()
        for i in order:
            samples[i].append(measures[i]())
    return samples


med = statistics.median


def calibrate_primes(seconds):
    """N such that count_primes(0, N) (_workloads) takes about ``seconds`` of CPU time
    here (cost ~ N ** 1.5). CPU time of this thread, so that other work on the machine
    does not shrink the job."""
    from _workloads import count_primes

    n = 20_000
    while True:
        t0 = time.thread_time()
        count_primes(0, n)
        dt = time.thread_time() - t0
        if dt > 0.1:
            break
        n *= 2
    return max(20_000, int(n * (seconds / dt) ** (2 / 3)))


def split_range(n, k, largest_first=False):
    """k ranges covering [0, n); with largest_first, the last (most expensive for
    count_primes) first."""
    bounds = [n * i // k for i in range(k + 1)]
    order = reversed(range(k)) if largest_first else range(k)
    return [(bounds[i], bounds[i + 1]) for i in order]

# ---------------------------------------------------------------- set-up

def fork_pool(workers):
    """A ProcessPoolExecutor(workers) using fork (the default start method on Linux here).

    A child forked while any subinterpreter exists in this process dies (a CPython
    limitation), so these pools are forked and warmed only while none exists."""
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))


def forkserver_pool(workers):
    """A ProcessPoolExecutor(workers) using the forkserver start method (workers are
    forked from a fresh server process, so subinterpreters here do not matter)."""
    return cf.ProcessPoolExecutor(workers,
                                  mp_context=multiprocessing.get_context("forkserver"))


def arg_parser(doc, only, example="1,3", quick_help="fewer rounds and operations"):
    """The options every benchmark takes; ``doc`` is its module docstring and ``only``
    the letters or digits of all its sections."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--check", action="store_true", help="exit non-zero if a target fails")
    ap.add_argument("--only", default=only, help=f"sections to run, e.g. '{example}'")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="dump all tracebacks and exit after this many seconds")
    ap.add_argument("--json", default=None, metavar="PATH",
                    help="also write the rows to PATH as JSON (benchmarks/report.py reads it)")
    return ap


_json_path = None


def write_json(path, rows, **extra):
    """Writes ``rows`` (Row objects) and ``extra`` to ``path`` as one JSON object."""
    doc = {"python": platform.python_version(), "executable": sys.executable,
           "cpus": os.cpu_count(), "load_avg": load_avg(),
           "rows": [r.to_dict() for r in rows], **extra}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


def begin(ap, argv, ignore_unknown=True):
    """Parses the command line and arms the ``--timeout`` watchdog; returns (cfg, the
    selected sections). run_all.py passes the same arguments to every benchmark, so by
    default the others' options are ignored."""
    if ignore_unknown:
        cfg, unknown = ap.parse_known_args(argv)
        if unknown:
            progress(f"ignoring arguments: {' '.join(unknown)}")
    else:
        cfg = ap.parse_args(argv)
    global _json_path
    _json_path = getattr(cfg, "json", None)
    faulthandler.dump_traceback_later(cfg.timeout, exit=True)
    return cfg, set(cfg.only.replace(",", "").lower())


def load_xi(cfg, *names):
    """extrainterpreters, if it imports and has every (dotted) name, after printing the
    header line of the run; else None, after saying why."""
    try:
        import extrainterpreters as xi

        for name in names:
            functools.reduce(getattr, name.split("."), xi)
    except Exception as e:
        print(f"extrainterpreters is not usable here: {e!r}")
        return None
    version = getattr(xi, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("extrainterpreters")
        except Exception:
            version = "?"
    print(f"Python {platform.python_version()} ({sys.executable}); "
          f"extrainterpreters {version} from {os.path.dirname(xi.__file__)}; "
          f"{os.cpu_count()} CPUs; {'quick' if cfg.quick else 'full'} run; medians of rounds; "
          f"load average {load_avg()}", flush=True)
    return xi


def section_runner(sections, rows):
    """``section(key, name, fn, *args)``: ``fn(*args)`` if section ``key`` is selected;
    an exception becomes a failed row ``name``."""

    def section(key, name, fn, *args):
        if key not in sections:
            return None
        try:
            return fn(*args)
        except Exception as e:
            traceback.print_exc()
            rows.append(Row.failed(name, f"{type(e).__name__}: {e}"))
            return None

    return section


def finish(rows, t_start, check, skewed=None, extra=None):
    """Prints the table and the summary; returns the exit code. ``skewed`` names the
    rows that other work on the machine skews; ``extra`` goes into the JSON (a
    ``markdown`` entry is printed under the section's table by report.py)."""
    print()
    print_table(rows)
    n_fail = sum(r.status() in ("FAIL", "ERROR") for r in rows)
    n_pass = sum(r.status() == "PASS" for r in rows)
    skew = f" (other work on this machine skews the {skewed} rows)" if skewed else ""
    print(f"\ntargets met: {n_pass}, missed or broken: {n_fail}; "
          f"took {perf() - t_start:.1f} s; load average now {load_avg()}{skew}", flush=True)
    if _json_path:
        write_json(_json_path, rows, script=os.path.basename(sys.argv[0]),
                   took=perf() - t_start, **(extra or {}))
    faulthandler.cancel_dump_traceback_later()
    return 1 if (check and n_fail) else 0
