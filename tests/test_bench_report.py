"""benchmarks/report.py: rows written with --json become the tables of
docs/benchmarks.md; no benchmark runs and matplotlib is not needed."""
import json
import os
import sys

import pytest

BENCH_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "benchmarks")
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

import _bench  # noqa: E402
import report  # noqa: E402


@pytest.fixture(autouse=True)
def no_matplotlib(monkeypatch):
    """Any import of matplotlib fails: the document needs none."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def script_json(tmp_path, rows):
    path = tmp_path / "rows.json"
    _bench.write_json(str(path), rows, script="bench_x.py", took=1.5)
    return json.loads(path.read_text())


def synthetic_rows():
    ratio = _bench.Row("1. put+get vs threads", 2e-6, 8e-6, "ratio", 0.5, note="n items")
    speed = _bench.paired("2. map vs ProcessPoolExecutor(2).map (speedup)",
                          [0.010, 0.020, 0.012], [0.100, 0.300, 0.090], "speedup", 10)
    na = _bench.NARow("3. call vs concurrent.interpreters", "n/a: 3.14+", "<= 0.2")
    failed = _bench.Row.failed("4. broken", "RuntimeError: boom")
    missed = _bench.Row("5. lock vs threading.Lock", 3e-7, 1e-7, "ratio", 2.0)
    return [ratio, speed, na, failed, missed]


def results_with(doc, scaling=None):
    scripts = {"queue": doc}
    if scaling is not None:
        scripts["scale"] = {"rows": [], "scaling": scaling, "took": 3.0}
    return {"machine": {"cpu": "Test CPU 9000", "cores": 2, "ram": "24.0 GiB",
                        "os": "Linux-test", "python": "3.15.2",
                        "implementation": "CPython 3.15.2 (/x/python)",
                        "extrainterpreters": "0.4.0", "joblib": "1.5"},
            "load_before": "0.10/0.20/0.30", "load_after": "1.10/1.20/1.30",
            "started": "2026-01-01 00:00 UTC", "mode": "full", "took": 42.0,
            "scripts": scripts}


def table_line(md, name, after="# Benchmarks"):
    """The cells of the one table line for ``name`` below the heading ``after``."""
    md = md[md.index(after):]
    lines = [ln for ln in md.splitlines() if ln.startswith(f"| {name} |")]
    assert len(lines) == 1, (name, md)
    return [c.strip() for c in lines[0].strip("|").split("|")]


def test_json_rows_keep_times_values_and_status(tmp_path):
    doc = script_json(tmp_path, synthetic_rows())
    assert doc["script"] == "bench_x.py" and doc["cpus"] == os.cpu_count()
    by_name = {r["name"]: r for r in doc["rows"]}
    r = by_name["1. put+get vs threads"]
    assert (r["ours"], r["base"], r["value"], r["status"]) == (2e-6, 8e-6, 0.25, "PASS")
    assert r["target_str"] == "<= 0.5" and r["note"] == "n items"
    # a paired row's value is the median of the rounds' own speedups (10, 15, 7.5)
    r = by_name["2. map vs ProcessPoolExecutor(2).map (speedup)"]
    assert r["value"] == pytest.approx(10.0) and r["status"] == "PASS"
    r = by_name["3. call vs concurrent.interpreters"]
    assert (r["status"], r["value"], r["target_str"]) == ("n/a", None, "<= 0.2")
    r = by_name["4. broken"]
    assert (r["status"], r["error"], r["value"]) == ("ERROR", "RuntimeError: boom", None)
    assert by_name["5. lock vs threading.Lock"]["status"] == "FAIL"


def test_markdown_tables_header_and_notes(tmp_path):
    doc = script_json(tmp_path, synthetic_rows())
    md = report.render_markdown(results_with(doc), charts=["queue.png"])
    for fact in ("Test CPU 9000", "| cores | 2 ", "24.0 GiB", "Linux-test",
                 "CPython 3.15.2 (/x/python)", "before 0.10/0.20/0.30, after 1.10/1.20/1.30",
                 "2026-01-01 00:00 UTC"):
        assert fact in md, fact
    assert "![Queue: put+get, ping-pong, streams](benchmarks/queue.png)" in md
    assert table_line(md, "1. put+get vs threads") == [
        "1. put+get vs threads", "2.0 us", "8.0 us", "0.250", "<= 0.5", "PASS"]
    assert table_line(md, "2. map vs ProcessPoolExecutor(2).map (speedup)")[3:] == [
        "10.00x", ">= 10x", "PASS"]
    assert table_line(md, "3. call vs concurrent.interpreters") == [
        "3. call vs concurrent.interpreters", "-", "n/a", "-", "<= 0.2", "n/a"]
    assert table_line(md, "5. lock vs threading.Lock")[3:] == ["3.000", "<= 2", "FAIL"]
    assert "| extrainterpreters 0.3.0 | not measured in this run |" in md
    assert "- 1. put+get vs threads: n items" in md
    assert "- 4. broken: **error** RuntimeError: boom" in md
    # sections whose script did not run are left out, and so is a chart not drawn
    assert "## Locks and events" not in md
    assert "locks.png" not in md


def test_chart_rows_leave_out_rows_without_both_times(tmp_path):
    doc = script_json(tmp_path, synthetic_rows())
    names = [r["name"] for r in report.chart_rows(doc["rows"], r".")]
    assert names == ["1. put+get vs threads", "2. map vs ProcessPoolExecutor(2).map (speedup)",
                     "5. lock vs threading.Lock"]
    assert [r["name"] for r in report.chart_rows(doc["rows"], r"^[12]\. ")] == names[:2]
    assert report.chart_label(names[1]) == "map\nvs ProcessPoolExecutor(2).map"


def test_scaling_table():
    scaling = {"widths": [1, 2], "cpus": 2, "rounds": 3, "python": "3.15.2",
               "job": "count_primes(0, 1,000) in 16 chunks",
               "serial": {"1": 0.5, "2": 0.52},
               "contenders": {"extrainterpreters": {"1": {"time": 0.55, "speedup": 0.91},
                                                    "2": {"time": 0.27, "speedup": 1.93}},
                              "ThreadPool": {"1": {"time": 0.5, "speedup": 1.0}}}}
    md = report.render_markdown(results_with({"rows": []}, scaling), charts=["scaling.png"])
    assert "![CPU scaling](benchmarks/scaling.png)" in md
    assert table_line(md, "extrainterpreters", after="## CPU scaling") == [
        "extrainterpreters", "0.91x (550 ms)", "1.93x (270 ms)"]
    assert table_line(md, "ThreadPool") == ["ThreadPool", "1.00x (500 ms)", "-"]
    assert table_line(md, "serial (reference)") == ["serial (reference)", "500 ms", "520 ms"]


def test_header_names_the_seed_venv_when_0_3_0_was_measured(tmp_path):
    seed = _bench.Row("a. run(f, 1), main thread, vs extrainterpreters 0.3.0", 2e-6, 3e-4,
                      "speedup", 20)
    results = results_with({"rows": []})
    results["scripts"]["interpreter"] = script_json(tmp_path, [seed])
    md = report.render_markdown(results)
    line = table_line(md, "extrainterpreters 0.3.0")
    assert line[1].startswith("in its own virtualenv (bench-venvs/seed-3.15)"), line
    assert table_line(md, "a. run(f, 1), main thread, vs extrainterpreters 0.3.0")[3:] == [
        "150.00x", ">= 20x", "PASS"]
