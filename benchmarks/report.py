"""Run the benchmarks and write docs/benchmarks.md with PNG charts.

    python benchmarks/report.py [--quick] [--only interpreter,queue,...] [--widths 1,2]
                                [--out docs] [--render-only] [--no-seed]

Runs every benchmarks/bench_*.py (each in its own subprocess, with ``--json``) and
benchmarks/scale.py on this Python, then writes DOCS/benchmarks.md (the machine, the
tables of times and ratios, the notes) and DOCS/benchmarks/*.png (matplotlib, Agg),
and keeps every result in DOCS/benchmarks/results.json. ``--render-only`` writes the
document and charts again from that file without measuring anything.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

from _bench import load_avg  # noqa: E402

# (key, script, section title, chart file, chart title, row-name regex of the chart's rows)
SECTIONS = [
    ("interpreter", "bench_interpreter.py", "Calls, data, life cycle (Interpreter)",
     "calls.png", "Calls: run(f, 1) round trip", r"^a\. "),
    ("queue", "bench_queue.py", "Queue: put+get, ping-pong, streams", "queue.png",
     "Queue: put+get and ping-pong", r"^[12]\. "),
    ("sync", "bench_sync.py", "Locks and events", "locks.png", "Locks and events", r"."),
    ("executor", "bench_executor.py", "InterpreterPoolExecutor: map, submit, CPU-bound job",
     "pool.png", "InterpreterPoolExecutor: map and submit", r"^[12]\. "),
    ("data", "bench_data.py", "Data-heavy map and encoding", "data.png",
     "Data-heavy map: zlib.crc32 over 4 MiB blocks", r"^3\. "),
    ("joblib", "bench_joblib.py", "joblib backends", "joblib.png",
     "joblib: the interpreters backend vs loky and threading", r"."),
    ("realjobs", "bench_realjobs.py", "Real jobs: scripts with PyPI packages, one-shot and warm",
     "realjobs.png", "Real jobs, one-shot: vs the better of the forkserver and stdlib pools",
     r"one-shot"),
]
SCALING_CHART = "scaling.png"
CHART_DIR = "benchmarks"  # under --out

OURS_COLOR, BASE_COLOR = "#1f77b4", "#ff7f0e"


# ---------------------------------------------------------------- the machine

def short_path(path):
    """``path`` relative to the repository when it is inside it."""
    rel = os.path.relpath(path, REPO_ROOT)
    return path if rel.startswith("..") else rel


def machine_info():
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "ram": None, "os": platform.platform(), "python": platform.python_version(),
            "implementation": f"{platform.python_implementation()} "
                              f"{platform.python_version()} ({short_path(sys.executable)})"}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["ram"] = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
                    break
    except (OSError, ValueError):
        pass
    for dist in ("extrainterpreters", "joblib", "matplotlib"):
        try:
            from importlib.metadata import version

            info[dist] = version(dist)
        except Exception:
            info[dist] = None
    return info


# ---------------------------------------------------------------- running

def progress(msg):
    print(f"[{time.strftime('%H:%M:%S')}] report: {msg}", flush=True)


def run_script(args, json_path):
    """Runs one benchmark script with ``--json``; returns its parsed JSON or an error
    dict. Its output goes straight to ours (its progress lines included)."""
    t0 = time.perf_counter()
    rc = subprocess.call([sys.executable, *args, "--json", json_path], cwd=REPO_ROOT)
    took = time.perf_counter() - t0
    try:
        with open(json_path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return {"rows": [], "error": f"exit code {rc}, no results ({e})", "took": took}
    doc["exit_code"], doc["took"] = rc, took
    if "executable" in doc:
        doc["executable"] = short_path(doc["executable"])
    return doc


def measure(cfg):
    keys = [k.strip() for k in cfg.only.split(",")] if cfg.only else \
        [s[0] for s in SECTIONS] + ["scale"]
    known = {s[0] for s in SECTIONS} | {"scale"}
    bad = [k for k in keys if k not in known]
    if bad:
        raise SystemExit(f"--only: unknown {', '.join(bad)} (known: {', '.join(sorted(known))})")
    results = {"machine": machine_info(), "load_before": load_avg(),
               "started": datetime.datetime.now(datetime.timezone.utc)
               .strftime("%Y-%m-%d %H:%M UTC"),
               "mode": "quick" if cfg.quick else "full", "scripts": {}}
    t0 = time.perf_counter()
    steps = [s for s in SECTIONS if s[0] in keys]
    total = len(steps) + ("scale" in keys)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (key, script, *_rest) in enumerate(steps, 1):
            progress(f"[{i}/{total}] {script} ({time.perf_counter() - t0:.0f} s so far)")
            args = [os.path.join(BENCH_DIR, script)]
            if cfg.quick:
                args.append("--quick")
            if key == "interpreter" and cfg.no_seed:
                args.append("--no-seed")
            results["scripts"][key] = run_script(args, os.path.join(tmp, f"{key}.json"))
        if "scale" in keys:
            progress(f"[{total}/{total}] scale.py ({time.perf_counter() - t0:.0f} s so far)")
            args = [os.path.join(BENCH_DIR, "scale.py"), "--out", os.path.join(tmp, "scale"),
                    "--no-chart", "--rounds", str(2 if cfg.quick else 3)]
            if cfg.widths:
                args += ["--widths", cfg.widths]
            results["scripts"]["scale"] = run_script(args, os.path.join(tmp, "scale.json"))
    results["load_after"] = load_avg()
    results["took"] = time.perf_counter() - t0
    return results


# ---------------------------------------------------------------- markdown

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


def fmt_value(row):
    v = row.get("value")
    if v is None:
        return "-"
    return f"{v:.3f}" if row.get("kind") == "ratio" else f"{v:.2f}x"


def md_escape(text):
    return str(text).replace("|", "\\|")


def rows_table(rows):
    """The markdown table of one script's rows (as written by ``--json``)."""
    out = ["| measurement | ours | baseline | ratio | target | result |",
           "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        status = r.get("status", "?")
        base = "n/a" if status == "n/a" else fmt_t(r.get("base"))
        out.append(f"| {md_escape(r['name'])} | {fmt_t(r.get('ours'))} | {base} | "
                   f"{fmt_value(r)} | {md_escape(r.get('target_str', '-'))} | {status} |")
    notes = [f"- {md_escape(r['name'])}: {r['note']}" for r in rows if r.get("note")]
    notes += [f"- {md_escape(r['name'])}: **error** {r['error']}" for r in rows
              if r.get("error")]
    if notes:
        out += ["", "Notes:", ""] + notes
    return "\n".join(out) + "\n"


def counts(rows):
    c = {}
    for r in rows:
        c[r.get("status", "?")] = c.get(r.get("status", "?"), 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items()))


def render_markdown(results, chart_dir=CHART_DIR, charts=()):
    """docs/benchmarks.md from ``results`` (what ``measure`` returns); ``charts`` are the
    chart files that exist (their names under ``chart_dir``)."""
    m = results["machine"]
    scripts = results["scripts"]
    seed_rows = [r for r in (scripts.get("interpreter") or {}).get("rows", [])
                 if "0.3.0" in r["name"] and r.get("base")]
    if seed_rows:
        seed = (f"in its own virtualenv (bench-venvs/seed-{'.'.join(m['python'].split('.')[:2])})"
                " on the same Python; calls only: 0.3.0 has no pool and no locks, and its "
                "README calls its Queue broken")
    else:
        seed = "not measured in this run"
    lines = ["# Benchmarks", "",
             f"Written by `make bench` (`benchmarks/report.py`, {results['mode']} run) on "
             f"{results['started']}; the run took {results['took']:.0f} s. Every baseline "
             "ran in the same run, on the same machine, most of them alternating with "
             "extrainterpreters round by round (the notes say where not); absolute times on "
             "a shared machine mean little, the ratios are what to read. A load average "
             "above the number of cores means other work shared the machine: the parallel "
             "rows (CPU-bound jobs, scaling) suffer most.", "",
             "| | |", "|---|---|",
             f"| CPU | {m['cpu']} |",
             f"| cores | {m['cores']} (`os.cpu_count()`) |",
             f"| RAM | {m.get('ram') or '?'} |",
             f"| OS | {m['os']} |",
             f"| Python | {m['implementation']} |",
             f"| extrainterpreters | {m.get('extrainterpreters') or '?'} (this tree) |",
             f"| extrainterpreters 0.3.0 | {seed} |",
             f"| joblib | {m.get('joblib') or 'not installed'} |",
             f"| load average (1/5/15 min) | before {results['load_before']}, after "
             f"{results['load_after']} |", "",
             "How to read the tables: **ratio** = our time / the baseline's time (below 1: "
             "we are faster); **speedup** (`x`) = the baseline's time / ours (above 1x: we "
             "are faster). **target** is the project's own goal for the row; `info` rows "
             "have none; `n/a`: the baseline does not exist on this Python (the standard "
             "library's `concurrent.interpreters` and `InterpreterPoolExecutor` are 3.14+). "
             "Each chart shows, per row, our median time and the baseline's, on a log scale, "
             "and the row's ratio as \"x faster\" or \"x slower\" (where a row's ratio is "
             "the median of its rounds' own ratios it can differ from the ratio of the two "
             "medians).", ""]
    for key, script, title, chart, _chart_title, _regex in SECTIONS:
        doc = scripts.get(key)
        if doc is None:
            continue
        rows = doc.get("rows", [])
        lines += [f"## {title}", "",
                  f"`benchmarks/{script}`; {counts(rows) or 'no rows'}; took "
                  f"{doc.get('took', 0):.0f} s; load average after it {doc.get('load_avg', '?')}.",
                  ""]
        if doc.get("error"):
            lines += [f"**The script failed:** {doc['error']}", ""]
        if chart in charts:
            lines += [f"![{title}]({chart_dir}/{chart})", ""]
        lines += [rows_table(rows)]
        if doc.get("markdown"):
            lines += [doc["markdown"]]
    doc = scripts.get("scale")
    if doc is not None:
        lines += ["## CPU scaling over worker counts", ""]
        sc = doc.get("scaling")
        if sc is None:
            lines += [f"**scale.py failed:** {doc.get('error', '?')}", ""]
        else:
            from scale import scaling_markdown

            lines += [f"`benchmarks/scale.py`: {sc['job']}, the same chunks on each pool, "
                      f"{sc['rounds']} rounds per width; speedup = serial time / pool time, "
                      f"the median of each round's own (median pool time in brackets); load "
                      f"average {sc.get('load_before', '?')} before, {sc.get('load_after', '?')} "
                      f"after. On a bigger machine: "
                      "`python benchmarks/scale.py --widths 1,2,4,8,16` writes the same "
                      "chart and table.", ""]
            if SCALING_CHART in charts:
                lines += [f"![CPU scaling]({chart_dir}/{SCALING_CHART})", ""]
            lines += [scaling_markdown(sc)]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- charts

def chart_label(name):
    """A row name as two short lines: the measurement, then "vs the baseline"."""
    name = re.sub(r"^[a-z0-9]+\.\s+", "", name)
    name = re.sub(r"\s*\((speedup|info)(, info)?\)\s*$", "", name)
    if " vs " in name:
        what, base = name.split(" vs ", 1)
        return f"{what}\nvs {base}"
    return name


def chart_rows(rows, regex):
    """The rows a chart shows: matching ``regex``, with both times."""
    pat = re.compile(regex)
    return [r for r in rows if pat.search(r["name"]) and r.get("ours") and r.get("base")
            and r.get("status") not in ("ERROR", "n/a")]


def pair_chart(rows, title, path):
    """Horizontal grouped bars: per row our time and the baseline's, log scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    fig, ax = plt.subplots(figsize=(11, 0.75 * n + 1.6))
    ys = list(range(n))[::-1]
    h = 0.38
    ours = [r["ours"] for r in rows]
    base = [r["base"] for r in rows]
    ax.barh([y + h / 2 for y in ys], ours, h, color=OURS_COLOR, label="extrainterpreters")
    ax.barh([y - h / 2 for y in ys], base, h, color=BASE_COLOR, label="baseline (as named)")
    ax.set_xscale("log")
    ax.set_yticks(ys)
    ax.set_yticklabels([chart_label(r["name"]) for r in rows], fontsize=8)
    lo, hi = min(ours + base), max(ours + base)
    ax.set_xlim(lo / 3, hi * 60)
    for y, r in zip(ys, rows):
        # the row's own value (a paired row's is the median of its rounds' ratios)
        v = r.get("value") or r["ours"] / r["base"]
        v = 1 / v if r.get("kind") == "ratio" else v
        txt = f"{v:.2f}x faster" if v >= 1 else f"{1 / v:.2f}x slower"
        ax.text(max(r["ours"], r["base"]) * 1.3, y, f"{fmt_t(r['ours'])} vs "
                f"{fmt_t(r['base'])}; row: {txt}", va="center", fontsize=8)
    ax.set_xlabel("time per operation or job (log scale; shorter is better)")
    ax.set_title(title)
    # below the x label: about 0.6 inch under the axes (their height: the figure's less
    # about 1.2 inch of title and labels)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6 / (0.75 * n + 0.4)), ncol=2,
              fontsize=8, frameon=False)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def scaling_chart(scaling, path):
    """Speedup over serial against worker count, one line per pool; the dotted line is
    the ideal (linear up to the number of CPUs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = scaling["widths"]
    fig, ax = plt.subplots(figsize=(8, 5))
    cpus = scaling.get("cpus") or max(widths)
    ax.plot(widths, [min(w, cpus) for w in widths], ":", color="gray",
            label=f"ideal ({cpus} CPUs)")
    markers = "os^vD"
    for i, (label, by_w) in enumerate(scaling["contenders"].items()):
        ws = [w for w in widths if str(w) in by_w]
        ax.plot(ws, [by_w[str(w)]["speedup"] for w in ws], marker=markers[i % len(markers)],
                linewidth=2.5 if i == 0 else 1.5, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths)
    ax.set_xticklabels([str(w) for w in widths])
    ax.set_xlabel("workers")
    ax.set_ylabel("speedup over serial (higher is better)")
    ax.set_ylim(bottom=0)
    load = (f", load average {scaling['load_before']} -> {scaling['load_after']}"
            if scaling.get("load_before") else "")
    ax.set_title(f"CPU scaling: {scaling['job']}\nPython {scaling.get('python', '?')}, "
                 f"{cpus} CPUs{load}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_charts(results, chart_dir):
    """Every chart that has data; returns the file names written."""
    os.makedirs(chart_dir, exist_ok=True)
    written = []
    for key, _script, _title, chart, chart_title, regex in SECTIONS:
        doc = results["scripts"].get(key)
        rows = chart_rows(doc.get("rows", []), regex) if doc else []
        if rows:
            pair_chart(rows, f"{chart_title} (Python {results['machine']['python']}, "
                             f"{results['machine']['cores']} CPUs)",
                       os.path.join(chart_dir, chart))
            written.append(chart)
    sc = (results["scripts"].get("scale") or {}).get("scaling")
    if sc:
        scaling_chart(sc, os.path.join(chart_dir, SCALING_CHART))
        written.append(SCALING_CHART)
    return written


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (each script's --quick)")
    ap.add_argument("--only", default=None,
                    help="comma-separated: " + ",".join(s[0] for s in SECTIONS) + ",scale")
    ap.add_argument("--widths", default=None, help="scale.py's --widths (default: 1, 2, 4, "
                                                    "... up to the number of CPUs)")
    ap.add_argument("--no-seed", action="store_true",
                    help="leave out the extrainterpreters 0.3.0 baseline")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "docs"),
                    help="where benchmarks.md and benchmarks/*.png go (default docs/)")
    ap.add_argument("--render-only", action="store_true",
                    help="write the document and charts from OUT/benchmarks/results.json")
    cfg = ap.parse_args(argv)
    chart_dir = os.path.join(cfg.out, CHART_DIR)
    results_path = os.path.join(chart_dir, "results.json")
    if cfg.render_only:
        with open(results_path) as f:
            results = json.load(f)
    else:
        progress(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
                 f"{load_avg()}")
        results = measure(cfg)
        os.makedirs(chart_dir, exist_ok=True)
        with open(results_path, "w") as f:
            json.dump(results, f, indent=1)
    progress("drawing charts")
    charts = draw_charts(results, chart_dir)
    md = os.path.join(cfg.out, "benchmarks.md")
    with open(md, "w") as f:
        f.write(render_markdown(results, CHART_DIR, charts))
    progress(f"wrote {md} and {len(charts)} charts in {chart_dir} "
             f"(benchmarks took {results['took']:.0f} s)")
    failed = [k for k, d in results["scripts"].items() if d.get("error") or d.get("exit_code")]
    if failed:
        progress(f"these scripts failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
