"""SharedBuffer: fixed-size memory that every interpreter it is passed to reads and
writes in place through memoryview, alive while any view or wrapper on it is."""
import array
import gc
import pickle
import struct
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import assert_clean_exit
from helpers import live_objects

KiB = 1 << 10
MiB = 1 << 20


# --- construction ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 7, 4096, 1 * MiB + 3])
def test_size_form_is_zero_filled(size):
    buf = xi.SharedBuffer(size)
    assert len(buf) == buf.size == size
    mv = memoryview(buf)
    assert mv.nbytes == size
    assert bytes(mv) == bytes(size)


def test_size_keyword():
    assert len(xi.SharedBuffer(size=5)) == 5


@pytest.mark.parametrize("init", [
    b"initial bytes",
    bytearray(b"a bytearray"),
    memoryview(b"a memoryview"),
    array.array("i", [1, -2, 3]),
    b"",
    rf.pattern(2 * MiB + 1, 9),
], ids=["bytes", "bytearray", "memoryview", "array", "empty", "2MiB"])
def test_bytes_like_form_copies_the_initial_bytes(init):
    expected = bytes(memoryview(init).cast("B"))
    buf = xi.SharedBuffer(init)
    assert len(buf) == len(expected)
    assert bytes(memoryview(buf)) == expected


def test_initial_bytes_are_copied_not_shared():
    src = bytearray(b"abcdef")
    buf = xi.SharedBuffer(src)
    src[0:3] = b"XYZ"
    assert bytes(buf) == b"abcdef"
    memoryview(buf)[0] = ord("q")
    assert src == bytearray(b"XYZdef")


def test_index_objects_are_sizes():
    class Three:
        def __index__(self):
            return 3

    assert len(xi.SharedBuffer(Three())) == 3
    assert len(xi.SharedBuffer(True)) == 1


@pytest.mark.parametrize("size", [-1, -(2**40)])
def test_negative_size_raises_value_error(size):
    with pytest.raises(ValueError):
        xi.SharedBuffer(size)


@pytest.mark.parametrize("bad", ["abc", None, 1.5, [1, 2], object()],
                         ids=["str", "None", "float", "list", "object"])
def test_wrong_type_raises_type_error(bad):
    with pytest.raises(TypeError):
        xi.SharedBuffer(bad)


def test_missing_argument_raises_type_error():
    with pytest.raises(TypeError):
        xi.SharedBuffer()
    with pytest.raises(TypeError):
        xi.SharedBuffer(1, 2)


def test_impossible_sizes():
    with pytest.raises(OverflowError):
        xi.SharedBuffer(2**80)
    with pytest.raises(MemoryError):
        xi.SharedBuffer(2**62)


def test_non_contiguous_source_is_refused():
    with pytest.raises(BufferError):
        xi.SharedBuffer(memoryview(b"abcdef")[::2])


# --- memoryview ----------------------------------------------------------------------


def test_memoryview_is_writable_bytes():
    buf = xi.SharedBuffer(16)
    mv = memoryview(buf)
    assert not mv.readonly and mv.format == "B" and mv.itemsize == 1
    assert mv.ndim == 1 and mv.c_contiguous and mv.obj is buf
    mv[0] = 255
    mv[4:8] = b"abcd"
    struct.pack_into("<I", mv, 8, 0xDEADBEEF)
    assert bytes(buf)[:8] == b"\xff\x00\x00\x00abcd"
    assert struct.unpack_from("<I", memoryview(buf), 8)[0] == 0xDEADBEEF


def test_two_memoryviews_alias_the_same_memory():
    buf = xi.SharedBuffer(8)
    a, b = memoryview(buf), memoryview(buf)
    a[3] = 42
    assert b[3] == 42


def test_memoryview_cast():
    buf = xi.SharedBuffer(16)
    ints = memoryview(buf).cast("i")
    ints[1] = -5
    assert struct.unpack_from("i", memoryview(buf), 4)[0] == -5
    with pytest.raises(TypeError):
        memoryview(xi.SharedBuffer(6)).cast("i")  # 6 is not a multiple of 4


def test_len_size_id():
    a, b = xi.SharedBuffer(10), xi.SharedBuffer(b"xyz")
    assert (len(a), a.size, len(b), b.size) == (10, 10, 3, 3)
    assert isinstance(a.id, int) and a.id != b.id
    assert str(a.id) in repr(a) and "10" in repr(a)


def test_size_and_id_are_read_only():
    buf = xi.SharedBuffer(4)
    with pytest.raises(AttributeError):
        buf.size = 8
    with pytest.raises(AttributeError):
        buf.id = 1


def test_equality_and_hash_follow_the_memory():
    buf = xi.SharedBuffer(4)
    same = pickle.loads(pickle.dumps(buf))
    other = xi.SharedBuffer(4)
    assert same == buf and hash(same) == hash(buf)
    assert other != buf
    assert len({buf, same, other}) == 2


# --- bounds ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 16, 4097])
def test_out_of_range_access_raises_here(size):
    results, unchanged = rf.buffer_bounds_errors(xi.SharedBuffer(size))
    assert "no error" not in results, results
    assert unchanged


def test_out_of_range_access_raises_in_a_subinterpreter(interp):
    buf = xi.SharedBuffer(b"\x01" * 32)
    results, unchanged = interp.run(rf.buffer_bounds_errors, buf)
    assert "no error" not in results, results
    assert unchanged
    assert bytes(buf) == b"\x01" * 32


def test_empty_buffer_has_no_bytes():
    mv = memoryview(xi.SharedBuffer(0))
    assert len(mv) == 0 and bytes(mv) == b""
    with pytest.raises(IndexError):
        mv[0]
    with pytest.raises(IndexError):
        mv[0] = 1


def test_slices_past_the_end_stay_inside():
    buf = xi.SharedBuffer(b"abcd")
    mv = memoryview(buf)
    assert bytes(mv[2:100]) == b"cd"
    assert bytes(mv[100:]) == b""
    with pytest.raises(ValueError):
        mv[2:100] = b"cdef"  # the slice is 2 bytes long
    assert bytes(buf) == b"abcd"


# --- sharing across interpreters ---------------------------------------------------------


def test_write_here_read_there(interp):
    buf = xi.SharedBuffer(64)
    memoryview(buf)[10:15] = b"hello"
    assert interp.run(rf.buffer_read, buf, 10, 5) == b"hello"


def test_write_there_read_here(interp):
    buf = xi.SharedBuffer(64)
    assert interp.run(rf.buffer_write, buf, 60, b"tail") is True
    assert bytes(memoryview(buf)[60:]) == b"tail"


def test_sub_to_sub(interp):
    buf = xi.SharedBuffer(1 * MiB)
    with xi.Interpreter() as other:
        digest = interp.run(rf.buffer_fill_pattern, buf, 5)
        assert other.run(rf.buffer_digest, buf) == digest
        other.run(rf.buffer_write, buf, 0, b"other was here")
        assert interp.run(rf.buffer_read, buf, 0, 14) == b"other was here"
    assert rf.digest(buf) == rf.digest(b"other was here" + rf.pattern(1 * MiB, 5)[14:])


def test_view_facts_in_a_subinterpreter(interp):
    buf = xi.SharedBuffer(33)
    assert interp.run(rf.buffer_view_facts, buf) == (False, "B", 1, 33, 1, True)


def test_concurrent_turn_taking_between_interpreters(interp):
    # Two interpreters hand a turn back and forth through byte 0 while both run.
    buf = xi.SharedBuffer(2)
    rounds = 200
    with xi.Interpreter() as other:
        a = interp.call_in_thread(rf.buffer_ping, buf, rounds, 1, 2)
        b = other.call_in_thread(rf.buffer_ping, buf, rounds, 2, 1)
        memoryview(buf)[0] = 1  # start
        a.join(60)
        b.join(60)
        assert interp.result() == rounds and other.result() == rounds
    assert memoryview(buf)[1] == (2 * rounds) % 256
    assert memoryview(buf)[0] == 1


def test_a_spinning_reader_sees_a_write_from_here(interp):
    buf = xi.SharedBuffer(8)
    waiter = interp.call_in_thread(rf.buffer_spin_until, buf, 7, 99, 30.0)
    time.sleep(0.1)
    assert waiter.is_alive()  # still spinning: it has not seen the byte yet
    memoryview(buf)[7] = 99
    waiter.join(30)
    assert not waiter.is_alive()
    assert interp.result() < 20  # it saw the write (it gives up after 30 s)


@pytest.mark.parametrize("route", [
    "argument", "keyword", "nested-argument", "result", "queue", "prepare_main",
    "exec-pickle",
])
def test_every_route_shares_the_same_memory(interp, route):
    buf = xi.SharedBuffer(16)
    if route == "argument":
        interp.run(rf.buffer_write, buf, 0, b"argument")
    elif route == "keyword":
        interp.run(rf.buffer_write, buf=buf, offset=0, data=b"keyword")
    elif route == "nested-argument":
        interp.exec("def write_nested(d):\n    memoryview(d['x'][0])[0:6] = b'nested'\n")
        interp.run(rf.call_main_attr, "write_nested", {"x": [buf]})
    elif route == "result":
        interp.exec("import extrainterpreters as xi\nmade = xi.SharedBuffer(16)\n")
        buf = interp.run(rf.get_main_attr, "made")
        interp.exec("memoryview(made)[0:6] = b'result'")
    elif route == "queue":
        q = xi.Queue()
        q.put(buf)
        interp.prepare_main(q=q)
        interp.exec("b = q.get(timeout=5)\nmemoryview(b)[0:5] = b'queue'\ndel b")
    elif route == "prepare_main":
        interp.prepare_main(shared=buf)
        interp.exec("memoryview(shared)[0:12] = b'prepare_main'")
    elif route == "exec-pickle":
        interp.exec(f"import pickle\nb = pickle.loads({pickle.dumps(buf)!r})\n"
                    "memoryview(b)[0:11] = b'exec-pickle'\n")
    word = {"nested-argument": "nested"}.get(route, route).encode()
    assert bytes(buf)[:len(word)] == word
    # and the other way: a write here is seen there
    memoryview(buf)[15] = 7
    assert interp.run(rf.buffer_read, buf, 15, 1) == b"\x07"


def test_buffer_created_in_a_subinterpreter_is_shared(interp):
    interp.exec("import extrainterpreters as xi\nb = xi.SharedBuffer(b'sub made')\n")
    buf = interp.run(rf.get_main_attr, "b")
    memoryview(buf)[0:4] = b"MAIN"
    interp.exec("seen = bytes(b)")
    assert interp.run(rf.get_main_attr, "seen") == b"MAINmade"


# --- lifetime ------------------------------------------------------------------------


def test_memoryview_outlives_the_buffer_object():
    base = live_objects()
    buf = xi.SharedBuffer(4 * KiB)
    mv = memoryview(buf)
    del buf
    gc.collect()
    assert live_objects() == base + 1
    mv[:] = rf.pattern(4 * KiB, 3)
    assert rf.digest(mv) == rf.digest(rf.pattern(4 * KiB, 3))
    sub = mv[100:200]
    mv.release()
    assert live_objects() == base + 1  # the slice still holds it
    assert bytes(sub) == rf.pattern(4 * KiB, 3)[100:200]
    sub.release()
    assert live_objects() == base


def test_subinterpreter_memoryview_outlives_everything_here(interp):
    base = live_objects()
    buf = xi.SharedBuffer(1 * MiB)
    memoryview(buf)[:5] = b"first"
    interp.prepare_main(buf=buf)
    interp.exec("mv = memoryview(buf)\ndel buf\n")
    del buf
    gc.collect()
    assert live_objects() == base + 1  # only the subinterpreter's view holds it
    interp.exec(
        "import gc\n"
        "gc.collect()\n"
        "assert bytes(mv[:5]) == b'first'\n"
        "mv[-4:] = b'last'\n"
        "seen = bytes(mv[:5]) + bytes(mv[-4:])\n"
    )
    assert interp.run(rf.get_main_attr, "seen") == b"firstlast"
    # the memory comes back here, by way of the view's exporter
    interp.exec("again = mv.obj")
    again = interp.run(rf.get_main_attr, "again")
    assert bytes(memoryview(again)[-4:]) == b"last"
    del again
    interp.exec("del again\nmv.release()\ndel mv\n")
    assert live_objects() == base


def test_closing_the_interpreter_holding_the_last_view_frees_the_memory():
    base = live_objects()
    it = xi.Interpreter().start()
    try:
        buf = xi.SharedBuffer(1 * MiB)
        it.prepare_main(buf=buf)
        it.exec("mv = memoryview(buf)[10:]\ndel buf\n")
        del buf
        assert live_objects() == base + 1
    finally:
        it.close()
    assert live_objects() == base


def test_writes_through_a_view_kept_there_are_seen_by_a_third_interpreter(interp):
    buf = xi.SharedBuffer(32)
    interp.prepare_main(buf=buf)
    interp.exec("mv = memoryview(buf)\n")
    with xi.Interpreter() as other:
        other.prepare_main(buf=buf)
        del buf
        interp.exec("mv[0:3] = b'abc'")
        other.exec("seen = bytes(memoryview(buf)[0:3])")
        assert other.run(rf.get_main_attr, "seen") == b"abc"
    interp.exec("mv.release()\ndel mv, buf\n")


def test_memory_freed_when_the_last_reference_goes():
    base = live_objects()
    bufs = [xi.SharedBuffer(64 * KiB) for _ in range(20)]
    views = [memoryview(b) for b in bufs[:10]]
    assert live_objects() == base + 20
    del bufs
    assert live_objects() == base + 10
    del views
    assert live_objects() == base


@pytest.mark.slow
def test_large_buffers_are_really_freed(run_py):
    # 40 x 64 MiB, every page touched here and the last byte in a subinterpreter:
    # unless each is freed when dropped, the peak resident size grows by 2.5 GiB.
    proc = run_py("""
        import gc, resource, sys
        sys.path.insert(0, sys.argv[1])
        import extrainterpreters as xi
        import remote_funcs as rf
        MiB = 1 << 20
        with xi.Interpreter() as it:
            it.run(rf.buffer_len, xi.SharedBuffer(1))
            base = xi._xi._live_objects()
            peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            for i in range(40):
                buf = xi.SharedBuffer(64 * MiB)
                memoryview(buf)[::4096] = b"\\x02" * (64 * MiB // 4096)
                it.run(rf.buffer_write, buf, 64 * MiB - 1, b"\\x01")
                del buf
            gc.collect()
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak0
            print("LIVE", xi._xi._live_objects() - base)
            print("GROWN_KIB", grown)
    """, args=[rf.__file__.rsplit("/", 1)[0]], timeout=120)
    assert_clean_exit(proc)
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert out["LIVE"] == "0"
    assert int(out["GROWN_KIB"]) < 1024 * 1024, out  # well under 2.5 GiB


# --- O(1) passing --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.serial
def test_passing_256_mib_is_constant_time(interp):
    size = 256 * MiB
    buf = xi.SharedBuffer(size)
    memoryview(buf)[size - 3:] = b"end"
    interp.run(rf.buffer_len, xi.SharedBuffer(1))  # warm up the call path
    t0 = time.monotonic()
    assert interp.run(rf.buffer_len, buf) == size
    seconds = time.monotonic() - t0
    assert seconds < 0.5, f"passing a 256 MiB SharedBuffer took {seconds:.3f} s"
    t0 = time.monotonic()
    assert interp.run(rf.buffer_read, buf, size - 3, 3) == b"end"
    interp.run(rf.buffer_write, buf, 0, b"start")
    q = xi.Queue()
    q.put(buf)
    assert interp.run(rf.queue_get, q) == buf
    seconds = time.monotonic() - t0
    assert seconds < 1.0, f"three more passes took {seconds:.3f} s"
    assert bytes(memoryview(buf)[:5]) == b"start"
    assert len(pickle.dumps(buf)) < 120


def test_passing_concurrently_from_threads(interp):
    buf = xi.SharedBuffer(64)
    errors = []

    def writer(k):
        try:
            with xi.Interpreter() as it:
                for _ in range(20):
                    it.run(rf.buffer_write, buf, k * 8, bytes([k + 1]) * 8)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert bytes(buf)[:32] == b"".join(bytes([k + 1]) * 8 for k in range(4))
