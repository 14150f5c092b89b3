"""Prints "N passed, N failed, N skipped" summed over pytest's JUnit XML files.

    python tools/junit_counts.py FILE...

Errors count as failed. A missing file (pytest did not finish) adds nothing.
"""
import os
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    if not os.path.exists(path):
        continue
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests, errors, failures, skips = (
            int(suite.get(k, 0)) for k in ("tests", "errors", "failures", "skipped"))
        passed += tests - errors - failures - skips
        failed += errors + failures
        skipped += skips
print(f"{passed} passed, {failed} failed, {skipped} skipped")
