"""Run every benchmarks/bench_*.py in turn with this Python, passing the arguments on.

    python benchmarks/run_all.py [--quick] [--check] [...]

Each benchmark runs in its own subprocess (so each gets a fresh runtime). The exit
code is non-zero if any benchmark exited non-zero (with ``--check`` that includes a
missed target).
"""
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    if not scripts:
        print("no benchmarks/bench_*.py found", file=sys.stderr)
        return 1
    failed = []
    for path in scripts:
        name = os.path.basename(path)
        print(f"=== {name} {' '.join(argv)}".rstrip(), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, path, *argv])
        print(f"=== {name}: exit code {rc}, {time.perf_counter() - t0:.1f} s\n", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print("non-zero exit: " + ", ".join(failed), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
