"""Large str arguments and results: this library against concurrent.interpreters.

For a str of each storage (ASCII, latin-1, UCS-2, UCS-4) whose storage takes 4 MiB,
times call(len, s) (the str as an argument) and call(operator.mul, ch, n) (a str of that
size made there, as the result), with an Interpreter of this library and with an
interpreter of the standard library's concurrent.interpreters (CPython 3.14+), and
prints the median of each and the ratio ours / stdlib.

    python benchmarks/str_transfer.py [--repeat 30] [--mib 4]
"""
import argparse
import operator
import statistics
import sys
import time

import extrainterpreters as xi

MiB = 1 << 20
STORAGE = {"ascii": ("a", 1), "latin-1": ("\xe9", 1), "UCS-2": ("\u20ac", 2),
           "UCS-4": ("\U0001f600", 4)}


def make(kind, nbytes):
    """A str of `kind` whose storage takes nbytes: varied ASCII and the kind's own
    character at the end."""
    ch, width = STORAGE[kind]
    n = nbytes // width
    body = "".join(chr(0x21 + i % 90) for i in range(1000))
    return (body * (n // len(body) + 1))[: n - 1] + ch


def median_time(fn, repeat):
    fn()  # warm: imports, caches
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--mib", type=int, default=4)
    args = ap.parse_args()
    try:
        import concurrent.interpreters as stdlib
    except ImportError:
        stdlib = None
    ours = xi.Interpreter().start()
    theirs = stdlib.create() if stdlib else None
    nbytes = args.mib * MiB
    print(f"CPython {sys.version.split()[0]}, extrainterpreters from {xi.__file__}")
    print(f"str storage {args.mib} MiB, median of {args.repeat} (ms)")
    print(f"{'case':<18}{'ours':>10}{'stdlib':>10}{'ours/stdlib':>13}")
    try:
        for kind in STORAGE:
            s = make(kind, nbytes)
            ch, width = STORAGE[kind]
            n = nbytes // width
            cases = [
                ("arg", lambda it: it.call(len, s), len(s)),
                ("result", lambda it: it.call(operator.mul, ch, n), None),
            ]
            for what, call, want in cases:
                if want is not None:
                    assert call(ours) == want
                t_ours = median_time(lambda: call(ours), args.repeat)
                t_std = median_time(lambda: call(theirs), args.repeat) if theirs else None
                ratio = f"{t_ours / t_std:13.2f}" if t_std else f"{'-':>13}"
                std = f"{t_std * 1e3:10.2f}" if t_std else f"{'-':>10}"
                print(f"{kind + ' ' + what:<18}{t_ours * 1e3:10.2f}{std}{ratio}", flush=True)
    finally:
        ours.close()
        if theirs is not None:
            theirs.close()


if __name__ == "__main__":
    main()
