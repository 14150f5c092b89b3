"""bytes / bytearray / memoryview payloads of any size, as arguments and as results."""
import threading

import pytest
from hypothesis import given, strategies as st

import remote_funcs as rf
from conftest import assert_clean_exit

KiB = 1 << 10
MiB = 1 << 20

SIZES = [0, 1, 64 * KiB, 1 * MiB, 16 * MiB]  # 16 MiB: beyond any small fixed buffer
KINDS = ["bytes", "bytearray", "memoryview"]


def expected_type_names(kind):
    if kind == "memoryview":
        # the contract fixes bytes and bytearray; a memoryview arrives as a
        # bytes-like object with the same content
        return {"memoryview", "bytes", "bytearray"}
    return {kind}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
@pytest.mark.parametrize("kind", KINDS)
def test_payload_as_argument(interp, kind, size):
    data = rf.make_payload(kind, size, seed=size)
    _, length, digest = rf.describe(data)
    name, got_len, got_digest = interp.run(rf.describe, data)
    assert name in expected_type_names(kind)
    assert (got_len, got_digest) == (length, digest)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
@pytest.mark.parametrize("kind", KINDS)
def test_payload_as_result(interp, kind, size):
    out = interp.run(rf.make_payload, kind, size, size)
    assert type(out).__name__ in expected_type_names(kind)
    if kind != "memoryview":
        assert type(out) is {"bytes": bytes, "bytearray": bytearray}[kind]
    assert rf.describe(out)[1:] == rf.describe(rf.make_payload(kind, size, size))[1:]


@pytest.mark.parametrize("kind", ["bytes", "bytearray"])
def test_payload_round_trip_type_preserved(interp, kind):
    data = rf.make_payload(kind, 1 * MiB, seed=7)
    out = interp.run(rf.identity, data)
    assert type(out) is type(data)
    assert out == data


def test_memoryview_round_trip_content(interp):
    data = rf.make_payload("memoryview", 1 * MiB, seed=8)
    out = interp.run(rf.identity, data)
    assert bytes(memoryview(out)) == bytes(data)


def test_received_bytearray_is_a_copy(interp):
    data = bytearray(rf.pattern(64 * KiB, seed=3))
    original = bytes(data)
    out = interp.run(rf.payload_mutate_and_return, data)
    assert bytes(data) == original  # the caller's buffer is untouched
    assert type(out) is bytearray
    assert out[0] == (original[0] + 1) % 256
    assert out[1:] == original[1:]
    out[1] ^= 0xFF  # the result is ours and writable
    assert bytes(data) == original


def test_readonly_memoryview_of_bytes(interp):
    data = rf.pattern(1 * MiB, seed=4)
    _, length, digest = rf.describe(data)
    assert interp.run(rf.describe, memoryview(data))[1:] == (length, digest)


def test_nested_payloads_as_arguments(interp):
    items = [rf.make_payload(kind, 1 * MiB, seed=i) for i, kind in enumerate(KINDS)]
    items.append(rf.make_payload("bytes", 0))
    expected = [rf.describe(x) for x in items]
    got = interp.run(rf.describe_nested, items)
    assert [g[1:] for g in got] == [e[1:] for e in expected]
    assert got[0][0] == "bytes" and got[1][0] == "bytearray"


def test_nested_payloads_as_result(interp):
    out = interp.run(rf.make_nested_payload, 1 * MiB)
    expected = rf.make_nested_payload(1 * MiB)
    assert type(out) is list and type(out[1]) is dict and type(out[2]) is tuple
    assert type(out[0]) is bytes and type(out[1]["ba"]) is bytearray and type(out[2][0]) is bytes
    assert out == expected


def test_payload_in_kwargs_and_threaded_call(interp):
    data = rf.pattern(2 * MiB, seed=11)
    t = interp.call_in_thread(rf.echo_args, blob=data)
    t.join(60)
    args, kwargs = interp.result()
    assert args == () and type(kwargs["blob"]) is bytes and kwargs["blob"] == data


def test_concurrent_large_payloads_do_not_mix(interp):
    payloads = {k: rf.pattern(8 * MiB, seed=100 + k) for k in range(3)}
    expected = {k: rf.describe(v) for k, v in payloads.items()}
    got = {}
    errors = []

    def worker(k):
        try:
            for _ in range(3):
                got.setdefault(k, []).append(interp.run(rf.describe, payloads[k]))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    worker(2)  # the main thread too
    for t in threads:
        t.join(120)
    assert not errors, errors
    for k in range(3):
        assert got[k] == [expected[k]] * 3


def test_many_medium_payloads(interp):
    data = rf.pattern(256 * KiB, seed=5)
    for _ in range(50):
        assert interp.run(rf.payload_len, data) == len(data)


@given(data=st.binary(max_size=4096), as_bytearray=st.booleans())
def test_round_trip_binary(shared_interp, data, as_bytearray):
    value = bytearray(data) if as_bytearray else data
    out = shared_interp.run(rf.identity, value)
    assert type(out) is type(value)
    assert out == value


# --- 256 MiB -----------------------------------------------------------------------------------

BIG = 256 * MiB


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_256mib_argument(interp, kind):
    data = rf.make_payload(kind, BIG, seed=42)
    _, length, digest = rf.describe(data)
    name, got_len, got_digest = interp.run(rf.describe, data)
    assert name in expected_type_names(kind)
    assert (got_len, got_digest) == (BIG, digest)
    assert length == BIG


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bytes", "bytearray"])
def test_256mib_result(interp, kind):
    out = interp.run(rf.make_payload, kind, BIG, 43)
    assert type(out) is {"bytes": bytes, "bytearray": bytearray}[kind]
    assert len(out) == BIG
    # sampled bytes first, then one checksum
    ref = rf.pattern(BIG, 43)
    for pos in (0, 1, 65535, 65536, BIG // 2 + 12345, BIG - 1):
        assert out[pos] == ref[pos], pos
    assert rf.digest(out) == rf.digest(ref)


# At most one copy per direction: the peak resident size of a process that moves a
# 256 MiB payload grows by about one payload (the copy), not two or three.
COPY_CHECK = """
import operator, sys
import extrainterpreters as xi
sys.path.insert(0, {tests!r})
import remote_funcs as rf

SIZE = 256 << 20
def peak():
    # VmHWM: peak resident size of this process image (ru_maxrss would carry the
    # parent's peak over the exec)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")

direction = {direction!r}
with xi.Interpreter() as it:
    it.run(rf.payload_len, b"warm up")
    if direction == "argument":
        data = {make_arg}
        before = peak()
        assert it.run(rf.payload_len, data) == SIZE
    else:
        before = peak()
        out = it.run({make_result})
        assert len(out) == SIZE
    print("GROWTH", (peak() - before) / SIZE)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "direction,make,bound",
    [
        # the caller holds the payload before measuring; one copy is made there
        ("argument", "b'\\xab' * SIZE", 1.5),
        ("argument", "bytearray(b'\\xab') * SIZE", 1.5),
        # the interpreter builds it (1x) and the caller gets one copy (1x)
        ("result", "operator.mul, b'\\xab', SIZE", 2.5),
        ("result", "operator.mul, bytearray(b'\\xab'), SIZE", 2.5),
    ],
)
def test_256mib_at_most_one_copy_per_direction(run_py, direction, make, bound):
    import os

    code = COPY_CHECK.format(
        tests=os.path.dirname(os.path.abspath(__file__)),
        direction=direction,
        make_arg=make,
        make_result=make,
    )
    proc = run_py(code, timeout=120)
    assert_clean_exit(proc)
    growth = float(proc.stdout.split("GROWTH")[1].split()[0])
    assert growth < bound, f"peak memory grew by {growth:.2f} payloads"


# --- a str beyond marshal's 2 GiB ------------------------------------------------------
# marshal stores sizes in 32 bits: a longer str must travel pickled. Peak memory: the
# str, its pickle and the rebuilt copy, about 6.5 GiB.

HUGE = (1 << 31) + 3


@pytest.mark.slow
def test_str_over_2gib_as_argument_and_queue_item(interp):
    import extrainterpreters as xi

    s = "x" * (HUGE - 2) + "yz"
    assert interp.run(rf.str_facts, s) == (HUGE, "xxyz")
    q = xi.Queue()
    q.put(s)
    got = q.get_nowait()
    assert len(got) == HUGE and got[-3:] == "xyz" and got is not s


@pytest.mark.serial
def test_a_large_encode_leaves_later_small_encodes_as_fast_as_before():
    # the reused pickler must not keep a memo table grown by one large value: clearing
    # it on every later encode made each of them cost as much as the large one's memo
    import time

    from extrainterpreters import _xi

    small = [1, "a", range(3)]  # not a marshal value: the pickler encodes it

    def best(n=300):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            _xi._encode(small)
            times.append(time.perf_counter() - t)
        return min(times)

    before = best()
    _xi._encode({str(i): f"v{i}" for i in range(200_000)})
    after = best()
    assert after < 20 * before + 20e-6, (before, after)
