"""joblib's own tests of Parallel (joblib/test/test_parallel.py, shipped inside the
installed joblib) run with this library's backend "interpreters".

    python tests/joblib_suite/run.py [-v] [--list] [PATTERN ...]

plugin.py (a pytest plugin) adds "interpreters" to the backends that each test is
parametrized with, and keeps only the tests that run with it. The tests expected to
fail, each with its reason, are in expected_failures.txt next to this file: an entry
is a test id (test name and parameters) or a test name alone for all its parameters.
An entry whose reason starts with [python<3.14] applies to those versions only. The
tests in not_run.txt (test ids, each with its reason) are left out.
The exit status is 0 when every other test passes or is skipped and every listed test
still fails, 1 otherwise, 2 when joblib's tests cannot be found.
"""
import argparse
import importlib.util
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
MODULE = "joblib.test.test_parallel"


def read_expected(name="expected_failures.txt"):
    expected = {}
    with open(os.path.join(HERE, name)) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test_id, _, reason = line.partition(" ")
            reason = reason.strip()
            if reason.startswith("[python<3.14]") and sys.version_info >= (3, 14):
                continue
            expected[test_id] = reason
    return expected


def listed(test_id, expected):
    return test_id in expected or test_id.partition("[")[0] in expected


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--list", action="store_true", help="list the selected tests")
    parser.add_argument("patterns", nargs="*", help="run only tests whose id contains one")
    opts = parser.parse_args()
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.origin is None:
        print(f"{MODULE} was not found: is joblib installed?", file=sys.stderr)
        return 2
    import pytest

    import joblib
    import plugin

    # joblib's file is run where it is installed; pytest reads no configuration of
    # this project (an empty one in a folder of its own) and writes no cache
    rootdir = tempfile.mkdtemp(prefix="xi-joblib-suite-")
    ini = os.path.join(rootdir, "pytest.ini")
    with open(ini, "w") as f:
        f.write("[pytest]\nfaulthandler_timeout = 0\n")
    args = [spec.origin, "-c", ini, "--rootdir", rootdir, "-p", "plugin",
            "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning",
            "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "-v" if opts.verbose else "-q", "--tb=short" if opts.verbose else "--tb=no"]
    if opts.patterns:
        args += ["-k", " or ".join(opts.patterns)]
    if opts.list:
        args.append("--collect-only")
    plugin.NOT_RUN.update(read_expected("not_run.txt"))
    status = pytest.main(args)
    if opts.list:
        return 0 if status in (0, 5) else 1
    outcomes = {nodeid.partition("::")[2]: v for nodeid, v in plugin.OUTCOMES.items()}
    expected = read_expected()
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for outcome, _ in outcomes.values():
        counts[outcome] += 1
    failed = sorted(t for t, (o, _) in outcomes.items() if o == "fail")
    xfail = [t for t in failed if listed(t, expected)]
    print(f"\n== joblib {joblib.__version__} test_parallel.py with the backend "
          f'"interpreters", Python {sys.version.split()[0]}')
    for test_id in failed:
        print(f"{'expected' if listed(test_id, expected) else 'FAILED  '} {test_id}: "
              f"{outcomes[test_id][1]}")
    unexpected = [t for t in failed if not listed(t, expected)]
    fixed = sorted(t for t, (o, _) in outcomes.items() if o == "pass" and listed(t, expected))
    for test_id in unexpected:
        print(f"UNEXPECTED FAILURE {test_id}")
    for test_id in fixed:
        print(f"UNEXPECTED SUCCESS {test_id} (remove it from expected_failures.txt)")
    print(f"joblib: {len(outcomes)} tests, {counts['pass']} pass, {counts['fail']} fail "
          f"({len(xfail)} expected), {counts['skip']} skipped")
    if status not in (0, 1) or not outcomes:
        print(f"pytest exit status {status}", file=sys.stderr)
        return 1
    return 1 if unexpected or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
