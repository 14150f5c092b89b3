"""CPython's own tests of concurrent.interpreters and InterpreterPoolExecutor, run with
extrainterpreters in place of the standard modules (Python 3.14 and later).

    python tests/stdlib_suite/run.py [-v] [--list] [--main-only] [PATTERN ...]

--main-only puts the library in place in the main interpreter only: the code that the
tests run in subinterpreters imports the standard library's concurrent.interpreters,
as a library used there would, and meets this library's interpreters and queues through
it (test_api and test_queues only; expected_failures_main_only.txt adds its own
expected failures, and takes back those of expected_failures.txt that it marks
"(not main-only)").

The standard library's test package (Lib/test) must be importable. Debian ships it
separately (libpython3.X-testsuite); when `test.test_interpreters` cannot be imported,
the runner looks in $XI_STDLIB_TESTS (a folder holding test/) and then in
~/.cache/debian-python/3.X-tests/usr/lib/python3.X.

The tests that are expected to fail, each with its reason, are in expected_failures.txt
next to this file. The exit status is 0 when every other test passes and every listed
test still fails, 1 otherwise, 2 when the suite cannot be found.
"""
import argparse
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import substitute  # noqa: E402

INTERPRETERS = ["test.test_interpreters.test_api", "test.test_interpreters.test_queues",
                "test.test_interpreters.test_stress"]
# --main-only: the tests whose code run in subinterpreters uses the standard library
INTERPRETERS_MAIN_ONLY = INTERPRETERS[:2]
# every test of the first module; the interpreter-pool classes of the others
EXECUTOR_ALL = ["test.test_concurrent_futures.test_interpreter_pool"]
EXECUTOR_POOL_CLASSES = ["test.test_concurrent_futures.test_wait",
                         "test.test_concurrent_futures.test_as_completed",
                         "test.test_concurrent_futures.test_shutdown",
                         "test.test_concurrent_futures.test_init"]


def find_test_package():
    """Makes `test.test_interpreters` importable, or returns False."""
    try:
        import test.test_interpreters  # noqa: F401
        return True
    except ImportError:
        pass
    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.environ.get("XI_STDLIB_TESTS", ""),
                  os.path.expanduser(f"~/.cache/debian-python/{ver}-tests/usr/lib/python{ver}")]
    for base in candidates:
        if base and os.path.isdir(os.path.join(base, "test", "test_interpreters")):
            link_dir = tempfile.mkdtemp(prefix="xi-stdlib-tests-")
            os.symlink(os.path.join(base, "test"), os.path.join(link_dir, "test"))
            for name in [m for m in sys.modules if m == "test" or m.startswith("test.")]:
                del sys.modules[name]
            sys.path.insert(0, link_dir)
            import test.test_interpreters  # noqa: F401
            return True
    return False


def iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


def load(main_only=False):
    loader = unittest.TestLoader()
    groups = {"test_interpreters": []}
    for name in INTERPRETERS_MAIN_ONLY if main_only else INTERPRETERS:
        groups["test_interpreters"] += iter_tests(loader.loadTestsFromName(name))
    if main_only:
        return groups
    groups["executor"] = []
    for name in EXECUTOR_ALL:
        groups["executor"] += iter_tests(loader.loadTestsFromName(name))
    for name in EXECUTOR_POOL_CLASSES:
        groups["executor"] += [t for t in iter_tests(loader.loadTestsFromName(name))
                               if "InterpreterPool" in t.id()]
    return groups


# test_api's LowLevelTests test the standard library's private module _interpreters by
# itself, on interpreters that it makes, and expect its exceptions under the names the
# test module imports from concurrent.interpreters. From 3.14 on, the library's
# InterpreterError, InterpreterNotFoundError and ExecutionFailed derive from the standard
# library's (and from RuntimeError), so an error that _interpreters raises is not one of
# the library's: while these tests run, those names are the standard library's classes.
LOW_LEVEL_TESTS = "test.test_interpreters.test_api.LowLevelTests"
STDLIB_ERRORS = ("InterpreterError", "InterpreterNotFoundError", "ExecutionFailed")


def low_level_tests_meet_the_stdlib_errors():
    import extrainterpreters as xi

    module = sys.modules[LOW_LEVEL_TESTS.rpartition(".")[0]]
    # the standard library's classes: the bases of the library's of the same name
    std = {name: next(c for c in getattr(xi, name).__mro__[1:] if c.__name__ == name)
           for name in STDLIB_ERRORS}
    cls = getattr(module, LOW_LEVEL_TESTS.rpartition(".")[2])
    set_up = cls.setUp

    def setUp(self):
        saved = {name: getattr(module, name) for name in STDLIB_ERRORS}
        vars(module).update(std)
        self.addCleanup(vars(module).update, saved)
        set_up(self)

    cls.setUp = setUp


def read_expected(main_only=False):
    expected = {}
    for name in ["expected_failures.txt"] + (["expected_failures_main_only.txt"]
                                             if main_only else []):
        with open(os.path.join(HERE, name)) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                test_id, _, reason = line.partition(" ")
                if reason.startswith("(not main-only)"):
                    if main_only:
                        del expected[test_id]
                    continue
                expected[test_id] = reason.strip()
    return expected


class Result(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcome = {}

    def _set(self, test, outcome):
        # a test with subtests fails if any subtest failed
        if self.outcome.get(test.id()) not in ("fail",):
            self.outcome[test.id()] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.outcome[test.id()] = "fail"

    def addError(self, test, err):
        super().addError(test, err)
        if isinstance(test, unittest.TestCase):
            self.outcome[test.id()] = "fail"

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skip")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.outcome[test.id()] = "fail"

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "pass")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.outcome[test.id()] = "fail"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--list", action="store_true", help="list the selected tests")
    parser.add_argument("--stdlib", action="store_true",
                        help="run against the standard library (no substitution)")
    parser.add_argument("--main-only", action="store_true",
                        help="substitute the library in the main interpreter only: code run "
                             "in subinterpreters meets the standard library's modules")
    parser.add_argument("patterns", nargs="*", help="run only tests whose id contains one")
    opts = parser.parse_args()
    if sys.version_info < (3, 14):
        print("the standard library has concurrent.interpreters from Python 3.14 on")
        return 0
    if not opts.stdlib:
        substitute.install(subinterpreters=not opts.main_only)
    if not find_test_package():
        print("CPython's test package (Lib/test) was not found; see this file's docstring",
              file=sys.stderr)
        return 2
    groups = load(opts.main_only)
    if not opts.stdlib:
        low_level_tests_meet_the_stdlib_errors()
    expected = read_expected(opts.main_only)
    if opts.patterns:
        groups = {k: [t for t in v if any(p in t.id() for p in opts.patterns)]
                  for k, v in groups.items()}
    if opts.list:
        for tests in groups.values():
            for t in tests:
                print(t.id())
        return 0
    suite = unittest.TestSuite([t for tests in groups.values() for t in tests])
    runner = unittest.TextTestRunner(verbosity=2 if opts.verbose else 1,
                                     resultclass=Result, stream=sys.stderr)
    result = runner.run(suite)
    unexpected, fixed = [], []
    print("\n== stdlib suite against the standard library" if opts.stdlib else
          "\n== stdlib suite with extrainterpreters in the main interpreter only"
          if opts.main_only else "\n== stdlib suite with extrainterpreters")
    for group, tests in groups.items():
        ids = {t.id() for t in tests}
        counts = {"pass": 0, "fail": 0, "skip": 0}
        for test_id in ids:
            counts[result.outcome.get(test_id, "fail")] += 1
        xfail = sum(1 for i in ids if i in expected and result.outcome.get(i) == "fail")
        print(f"{group}: {len(ids)} tests, {counts['pass']} pass, {counts['fail']} fail "
              f"({xfail} expected), {counts['skip']} skipped")
        for test_id in sorted(ids):
            outcome = result.outcome.get(test_id, "fail")
            if outcome == "fail" and test_id not in expected and not opts.stdlib:
                unexpected.append(test_id)
            elif outcome == "pass" and test_id in expected and not opts.stdlib:
                fixed.append(test_id)
    for test_id in unexpected:
        print(f"UNEXPECTED FAILURE {test_id}")
    for test_id in fixed:
        print(f"UNEXPECTED SUCCESS {test_id} (remove it from expected_failures.txt)")
    return 1 if unexpected or fixed or (opts.stdlib and not result.wasSuccessful()) else 0


if __name__ == "__main__":
    sys.exit(main())
