"""Fuzzing the wire decoder and the rebuild of shared-object handles: arbitrary bytes,
and mutations of real streams and handle pickles, must decode or raise an exception,
never crash. The byte-level fuzzing runs in a subprocess (fuzz_wire.py), for a bounded
time, with its memory capped: CPython's own marshal and pickle readers honour sizes
read from the input (a memo index of 2**32, a list of 2**31 items), which can ask for
many GiB. It runs under the sanitizers too (make test-asan)."""
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from extrainterpreters import _xi

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
SECONDS = float(os.environ.get("XI_FUZZ_SECONDS", "30"))
MEMORY_CAP = 2 << 30


def run_fuzzer(seconds, seed):
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([TESTS_DIR, env.get("PYTHONPATH", "")])
    cap = MEMORY_CAP
    if "libasan" in env.get("LD_PRELOAD", ""):
        # ASan reserves terabytes of address space: cap its allocations instead
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":max_allocation_size_mb=1024"
        cap = 0
    # (the child caps itself: a preexec_fn would make subprocess fork without exec
    # first, which CPython does not survive while subinterpreters exist)
    proc = subprocess.run(
        [sys.executable, os.path.join(TESTS_DIR, "fuzz_wire.py"), str(seconds), str(seed),
         str(cap)],
        capture_output=True, text=True, env=env, timeout=seconds * 4 + 120)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stderr[-4000:]}"
    fed = int(proc.stdout.split("FED")[1])
    assert fed > 100, proc.stdout
    return fed


@pytest.mark.parametrize("seed", [1, 2])
def test_decoder_and_handles_take_arbitrary_bytes(seed):
    run_fuzzer(SECONDS / 2, seed)


@given(st.integers(-2**70, 2**70), st.integers(-2**70, 2**70))
@settings(max_examples=300, deadline=None)
def test_arbitrary_handles(kind, id_):
    try:
        _xi._rebuild(kind, id_)
    except (ValueError, OverflowError):
        pass


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=20),
                          st.binary(max_size=20)), max_size=10))
@settings(max_examples=300, deadline=None)
def test_arbitrary_exception_descriptions(items):
    with pytest.raises(BaseException):
        _xi._raise_described(tuple(items))
