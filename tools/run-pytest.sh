#!/usr/bin/env bash
# Runs the test suite with a venv's Python in two passes, each under a time limit:
#
#     tools/run-pytest.sh TIMEOUT JOBS VENV [PYTHON OPTION ...] -- [PYTEST ARG ...]
#
# first every test not marked serial in JOBS pytest-xdist workers (VENV/junit.xml),
# then the tests marked serial, alone (VENV/junit-serial.xml): these bound a wait or a
# delay tightly, which the other tests' load could stretch. JOBS=1 runs the whole suite
# in one pass, without xdist (VENV/junit.xml).
#
# A pass that exceeds TIMEOUT gets SIGABRT, so the fault handler prints every thread's
# Python stack (timeout signals the workers too), and the exit status is 124. The exit
# status is the first failing pass's; a pass left without tests by the selection
# (pytest's 5) counts as passed unless both are.
set -uo pipefail

limit=$1 jobs=$2 venv=$3
shift 3
pyopts=()
while (($#)) && [[ $1 != -- ]]; do pyopts+=("$1"); shift; done
(($#)) && shift

run() {
    timeout --signal=ABRT --kill-after=30s "$limit" \
        "$venv/bin/python" "${pyopts[@]}" -m pytest tests "$@"
}

rm -f "$venv/junit.xml" "$venv/junit-serial.xml"
if ((jobs <= 1)); then
    run --junit-xml="$venv/junit.xml" "$@"
    exit
fi
# the workers start with the same Python options (-n would start them without)
workers="$jobs*popen//python=$(cd "$venv" && pwd)/bin/python${pyopts[*]:+ ${pyopts[*]}}"
rc=0; run --tx "$workers" --dist load --serial=skip --junit-xml="$venv/junit.xml" "$@" || rc=$?
rc2=0; run --serial=only --junit-xml="$venv/junit-serial.xml" "$@" || rc2=$?
if ((rc == 5 && rc2 == 5)); then exit 5; fi
((rc == 5)) && rc=0
((rc2 == 5)) && rc2=0
exit $((rc ? rc : rc2))
