"""Queue and SharedBuffer benchmarks.

    python benchmarks/bench_queue.py [--quick] [--check] [--only 1,2,3,4]

Every measurement runs extrainterpreters and its baseline in this same process run,
in alternating order, over several rounds; the table shows the median round of each
and their ratio. Absolute times on a shared machine mean little: the ratios are what
the targets are about (except in 4., whose target is absolute).

  1. ``q.put(1); q.get()`` in one thread of the main interpreter, vs the stdlib's
     ``_interpqueues`` (3.13+; on 3.12, which lacks it, the row is n/a and
     ``_xxinterpchannels`` send + recv stands in), vs the public
     ``concurrent.interpreters.create_queue()`` (3.14+; n/a before) and vs
     ``multiprocessing.Queue`` put + get in one process.
  2. Ping-pong: the main interpreter puts ``i`` on q1, a subinterpreter (blocked in
     ``q1.get()`` in its own thread) puts ``i + 1`` on q2, the main interpreter gets it.
     Round trip vs two threads doing the same with ``queue.Queue``; vs the same
     ping-pong with a ``concurrent.interpreters`` subinterpreter and two
     ``create_queue()`` queues (3.14+; their ``get()`` polls every 10 ms, so that side
     gets few round trips per round and the ratio is the median of each round's own
     ratio); a forked process with two ``multiprocessing.Queue`` for reference.
  3. 1 MiB ``bytes`` items streamed from a producer subinterpreter to a consumer
     subinterpreter through a bounded Queue, each driven by ``call_in_thread``: wall
     time for N items vs N single copies ``bytes(src)`` of one 1 MiB bytearray (the
     producer, too, puts one 1 MiB object N times). The ratio is the median of each
     round's own ratio.
  4. ``interp.run(f, buf)`` with a 256 MiB SharedBuffer (f returns
     ``len(memoryview(buf))``): absolute target under 1 ms per call; the ratio against
     ``interp.run(f, 1)`` is shown for context.

The exit code is 0 even when a target is missed, unless ``--check`` is given.
"""
import multiprocessing
import os
import platform
import queue as stdqueue
import sys
import threading
import warnings

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

from _bench import (NO_STDLIB, MiB, NARow, PairedRow, Row, alternate, arg_parser, begin,  # noqa: E402
                    finish, fmt_t, load_xi, med, paired, perf, progress, section_runner,
                    stdlib_interpreters)
from _workloads import buffer_len, buffer_peek, consume, identity, pong  # noqa: E402


class AbsRow(Row):
    """ours must be below ``limit`` seconds; the ratio ours / base is for context."""

    def __init__(self, name, ours, base, limit, note=""):
        super().__init__(name, ours, base, "ratio", None, note)
        self.limit = limit

    def status(self):
        if self.error is not None:
            return "ERROR"
        if self.ours is None:
            return "ERROR"
        return "PASS" if self.ours < self.limit else "FAIL"

    def target_str(self):
        return f"< {fmt_t(self.limit)}"


def gbps(nbytes, seconds):
    return f"{nbytes / seconds / 1e9:.1f} GB/s" if seconds else "-"


# ---------------------------------------------------------------- 1. put + get

def raw_queue_baseline():
    """(label, put_get_loop(n) -> seconds per pair, cleanup, what it calls) of the
    stdlib baseline.

    On 3.13+ ``_interpqueues``; on 3.12 ``_xxinterpchannels``; None if neither."""
    try:
        import _interpqueues as m
    except ImportError:
        m = None
    if m is not None:
        # 3.13.0: create(maxsize, fmt, unboundop), put(qid, obj, fmt, unboundop),
        # get(qid) -> (obj, fmt, unboundop). fmt 0: plain objects; unboundop 1: remove.
        # 3.14+: create(maxsize, unboundop, fallback), put(qid, obj, unboundop),
        # get(qid) -> (obj, unboundop); fallback -1: the default.
        qid = None
        for cargs in ((0, 0, 1), (0, 1, -1), (0, 0), (0,)):
            try:
                qid = m.create(*cargs)
                break
            except (TypeError, ValueError):
                continue
        if qid is None:
            return None
        put = None
        for extra in ((0, 1), (1,), (0,), ()):
            try:
                m.put(qid, 1, *extra)
            except (TypeError, ValueError):
                continue
            put = (lambda e: (lambda x: m.put(qid, x, *e)))(extra)
            break
        if put is None:
            m.destroy(qid)
            return None
        label = (f"_interpqueues.create({', '.join(map(str, cargs))}); "
                 f"put(qid, 1{', ' if extra else ''}{', '.join(map(str, extra))}); get(qid)")
        got = m.get(qid)
        assert (got[0] if isinstance(got, tuple) else got) == 1, got
        get = m.get

        def loop(n):
            t0 = perf()
            for _ in range(n):
                put(1)
                get(qid)
            return (perf() - t0) / n

        return "_interpqueues", loop, lambda: m.destroy(qid), label
    try:
        import _xxinterpchannels as c
    except ImportError:
        return None
    cid = c.create()
    send, recv = c.send, c.recv
    send(cid, 1)
    assert recv(cid) == 1

    def loop(n):
        t0 = perf()
        for _ in range(n):
            send(cid, 1)
            recv(cid)
        return (perf() - t0) / n

    def cleanup():
        try:
            c.destroy(cid)
        except Exception:
            pass

    return "_xxinterpchannels", loop, cleanup, "_xxinterpchannels send(cid, 1) + recv(cid)"


def put_get_loop(put, get, n):
    """Seconds per ``put(1); get()`` pair, over n pairs."""
    t0 = perf()
    for _ in range(n):
        put(1)
        get()
    return (perf() - t0) / n


def bench_put_get(xi, cfg, rows, mpq):
    rounds, n = cfg.rounds_1, cfg.ops_1
    q = xi.Queue()

    def ours(n=n):
        return put_get_loop(q.put, q.get, n)

    def ours_nowait(n=n):
        return put_get_loop(q.put_nowait, q.get_nowait, n)

    q.put(1)
    assert q.get() == 1
    for _ in range(2000):
        q.put(1)
        q.get()
    base = raw_queue_baseline()
    try:
        if base is None:
            rows.append(NARow("1. put+get int vs stdlib raw queue",
                              "neither _interpqueues nor _xxinterpchannels importable",
                              "<= 1.5"))
        else:
            label, loop, _, how = base
            loop(2000)
            progress(f"1. put+get vs {label}: {rounds} rounds x {n:,}")
            o, w, b = alternate(rounds, ours, ours_nowait, lambda: loop(n))
            if label == "_interpqueues":
                rows.append(Row("1. put+get int vs _interpqueues put+get", med(o), med(b),
                                "ratio", 1.5,
                                note=how))
                rows.append(Row("1. put_nowait+get_nowait vs _interpqueues (info)",
                                med(w), med(b), "ratio", None))
            else:
                rows.append(NARow("1. put+get int vs _interpqueues put+get",
                                  f"no _interpqueues on Python "
                                  f"{platform.python_version()}", "<= 1.5"))
                rows.append(Row("1. put+get int vs _xxinterpchannels send+recv", med(o),
                                med(b), "ratio", 1.5,
                                note="3.12 stand-in for _interpqueues: channel "
                                     "send(cid, 1) + recv(cid), same 1.5 target"))
                rows.append(Row("1. put_nowait+get_nowait vs _xxinterpchannels (info)",
                                med(w), med(b), "ratio", None))

        bench_put_get_stdlib(cfg, rows, ours)

        if mpq is None:
            rows.append(NARow("1. put+get int vs multiprocessing.Queue (speedup)",
                              "multiprocessing.Queue unavailable", ">= 10x"))
            return
        m = cfg.ops_1_mp

        def mp(n=m):
            return put_get_loop(mpq.put, mpq.get, n)

        mp(200)
        progress(f"1. put+get vs multiprocessing.Queue: {rounds} rounds x {m:,}")
        o, b = alternate(rounds, lambda: ours(m), mp)
        rows.append(Row("1. put+get int vs multiprocessing.Queue (speedup)", med(o), med(b),
                        "speedup", 10,
                        note="multiprocessing.Queue put(1) + get() in one process"))
    finally:
        if base is not None:
            base[2]()


def bench_put_get_stdlib(cfg, rows, ours):
    name = "1. put+get int vs concurrent.interpreters create_queue()"
    ci = stdlib_interpreters()
    if ci is None:
        rows.append(NARow(name, NO_STDLIB, "<= 1"))
        return
    rounds, n = cfg.rounds_1, cfg.ops_1
    sq = ci.create_queue()
    sq.put(1)
    assert sq.get() == 1

    def std(n=n):
        return put_get_loop(sq.put, sq.get, n)

    std(2000)
    progress(f"1. put+get vs concurrent.interpreters queue: {rounds} rounds x {n:,}")
    o, b = alternate(rounds, ours, std)
    rows.append(paired(name, o, b, "ratio", 1.0,
                       note="q = concurrent.interpreters.create_queue(); q.put(1) + q.get() "
                            "in one thread; ratio: median of each round's own ratio"))


# ---------------------------------------------------------------- 2. ping-pong

def ping_loop(q1, q2, n, timeout=None):
    put, get = q1.put, q2.get
    if timeout is not None:
        get = (lambda g: (lambda: g(timeout=timeout)))(q2.get)
    t0 = perf()
    for i in range(n):
        put(i)
        if get() != i + 1:
            raise AssertionError("ping-pong answered out of order")
    return (perf() - t0) / n


def bench_ping_pong(xi, cfg, rows, mp_pair):
    rounds, n = cfg.rounds_2, cfg.trips_2
    x1, x2 = xi.Queue(), xi.Queue()
    t1, t2 = stdqueue.Queue(), stdqueue.Queue()
    interp = xi.Interpreter().start()
    interp.run(identity, 1)  # imports the workload module there
    sub = interp.call_in_thread(pong, x1, x2)
    thr = threading.Thread(target=pong, args=(t1, t2), name="bench-pong", daemon=True)
    thr.start()
    try:
        ping_loop(x1, x2, 500)
        ping_loop(t1, t2, 500)
        progress(f"2. ping-pong: {rounds} rounds x {n:,} round trips")
        o, b = alternate(rounds, lambda: ping_loop(x1, x2, n), lambda: ping_loop(t1, t2, n))
        rows.append(Row("2. ping-pong round trip vs 2 threads + queue.Queue", med(o), med(b),
                        "ratio", 1.5,
                        note=f"{n:,} round trips per round; the subinterpreter blocks in "
                             "Queue.get() in a call_in_thread() thread"))
        if mp_pair is not None:
            m = cfg.trips_2_mp
            q1, q2, _ = mp_pair
            ping_loop(q1, q2, 100)
            progress(f"2. ping-pong multiprocessing: {rounds} rounds x {m:,}")
            o, b = alternate(rounds, lambda: ping_loop(x1, x2, m), lambda: ping_loop(q1, q2, m))
            rows.append(Row("2. ping-pong vs multiprocessing Process + 2 Queues (info)",
                            med(o), med(b), "ratio", None,
                            note=f"{m:,} round trips per round; forked process"))
        bench_ping_pong_stdlib(cfg, rows, x1, x2)
    finally:
        x1.put(None)
        t1.put(None)
        sub.join(30)
        thr.join(30)
        if sub.is_alive():
            progress("2. the pong interpreter did not stop")
        else:
            x2.get()
            assert interp.result() >= n, interp.result()
            interp.close()


def bench_ping_pong_stdlib(cfg, rows, x1, x2):
    """The same ping-pong, main interpreter <-> a subinterpreter, with the stdlib's
    interpreter and queues. Its Queue.get() polls (it sleeps 10 ms while the queue is
    empty), so it gets few round trips per round."""
    name = "2. ping-pong vs concurrent.interpreters + create_queue() (speedup)"
    ci = stdlib_interpreters()
    if ci is None:
        rows.append(NARow(name, NO_STDLIB, ">= 10x"))
        return
    rounds, n, m = cfg.rounds_2, cfg.trips_2_std_ours, cfg.trips_2_std
    si = ci.create()
    s1, s2 = ci.create_queue(), ci.create_queue()
    thr = None
    try:
        thr = si.call_in_thread(pong, s1, s2)
        ping_loop(s1, s2, 3, timeout=60)
        progress(f"2. ping-pong vs concurrent.interpreters: {rounds} rounds x {m} "
                 f"round trips (ours: x {n:,})")
        o, b = alternate(rounds, lambda: ping_loop(x1, x2, n),
                         lambda: ping_loop(s1, s2, m, timeout=60))
        rows.append(paired(name, o, b, "speedup", 10,
                           note=f"{m} round trips per round for the stdlib (its get() "
                                f"polls every 10 ms), {n:,} for ours; the stdlib "
                                "subinterpreter runs the same pong() in its "
                                "call_in_thread() thread"))
    finally:
        if thr is not None:
            s1.put(None)
            thr.join(30)
            if thr.is_alive():
                progress("2. the stdlib pong interpreter did not stop")
                return
        si.close()


# ---------------------------------------------------------------- 3. streaming

def bench_stream(xi, cfg, rows, mp_pair):
    from _workloads import produce

    rounds, n, size = cfg.rounds_3, cfg.items_3, MiB
    total = n * size
    src = bytearray(b"\xa5") * size  # bytes(<bytes>) would return the same object
    producer = xi.Interpreter().start()
    consumer = xi.Interpreter().start()
    for it in (producer, consumer):
        it.run(identity, 1)

    def stream(maxsize):
        q = xi.Queue(maxsize)

        def one():
            t0 = perf()
            tc = consumer.call_in_thread(consume, q, n)
            tp = producer.call_in_thread(produce, q, n, size)
            tp.join()
            tc.join()
            dt = perf() - t0
            got = consumer.result()
            assert producer.result() == n
            assert got == total, got
            return dt
        return one

    def copy():
        t0 = perf()
        for _ in range(n):
            b = bytes(src)
        dt = perf() - t0
        del b
        return dt

    bounded, unbounded = stream(cfg.maxsize_3), stream(0)
    try:
        bounded()
        unbounded()
        copy()
        measures = [bounded, copy, unbounded]
        mp_stream = None
        if mp_pair is not None:
            q1, q2, _ = mp_pair

            def mp_stream():
                t0 = perf()
                q1.put(("produce", n, size))
                got = 0
                for _ in range(n):
                    got += len(q2.get())
                dt = perf() - t0
                assert got == total
                return dt
            measures.append(mp_stream)
        progress(f"3. stream {n} x 1 MiB: {rounds} rounds")
        s = alternate(rounds, *measures)
        o, c, u = med(s[0]), med(s[1]), med(s[2])
        label = f"{n} x 1 MiB"
        row = PairedRow(f"3. stream {label} interp->interp vs copy (bandwidth)", s[0], s[1],
                        "speedup", 0.5)
        lo, hi = row.spread()
        row.note = (f"Queue(maxsize={cfg.maxsize_3}); ours {gbps(total, o)}, one copy "
                    f"bytes(<1 MiB bytearray>) per item {gbps(total, c)}; per round "
                    f"{lo:.2f}x..{hi:.2f}x (median of each round's ratio); wall time "
                    "includes starting both call_in_thread() threads")
        rows.append(row)
        rows.append(PairedRow(f"3. stream {label}, unbounded Queue (info)", s[2], s[1],
                              "speedup", None,
                              note=f"{gbps(total, u)}; beyond 64 MiB lent by the producer "
                                   "(items queued and not yet released), put() copies"))
        if mp_stream is not None:
            p = med(s[3])
            rows.append(Row(f"3. multiprocessing process->main {label} (info)", p, c,
                            "speedup", None, note=f"{gbps(total, p)}; forked process"))
    finally:
        producer.close()
        consumer.close()


# ---------------------------------------------------------------- 4. SharedBuffer

def bench_buffer(xi, cfg, rows):
    rounds, k = cfg.rounds_4, cfg.calls_4
    size = 256 * MiB
    t0 = perf()
    buf = xi.SharedBuffer(size)
    made = perf() - t0
    mv = memoryview(buf)
    mv[size - 1] = 0x5A
    interp = xi.Interpreter().start()
    try:
        assert interp.run(buffer_len, buf) == size
        assert interp.run(buffer_peek, buf, size - 1) == 0x5A, "the buffer is not shared"
        run = interp.run

        def ours():
            t0 = perf()
            for _ in range(k):
                run(buffer_len, buf)
            return (perf() - t0) / k

        def small():
            t0 = perf()
            for _ in range(k):
                run(identity, 1)
            return (perf() - t0) / k

        ours()
        small()
        progress(f"4. run(f, <256 MiB SharedBuffer>): {rounds} rounds x {k} calls")
        o, b = alternate(rounds, ours, small)
        rows.append(AbsRow("4. run(f, <256 MiB SharedBuffer>) per call", med(o), med(b),
                           1e-3,
                           note=f"f returns len(memoryview(buf)); baseline column: "
                                f"run(identity, 1); SharedBuffer(256 MiB) took "
                                f"{fmt_t(made)} to create; slowest round {fmt_t(max(o))}"))
    finally:
        del mv
        interp.close()


# ---------------------------------------------------------------- main

def start_mp():
    """(q1, q2, process) running pong() in a forked process, and a spare Queue.

    Started before any interpreter or thread exists."""
    ctx = multiprocessing.get_context("fork")
    q1, q2 = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=pong, args=(q1, q2), daemon=True)
    p.start()
    q1.put(0)
    assert q2.get(timeout=60) == 1
    return (q1, q2, p), ctx.Queue()


def stop_mp(pair):
    q1, q2, p = pair
    try:
        q1.put(None)
        while q2.get(timeout=30) is not None:
            pass
    except Exception:
        pass
    p.join(30)
    if p.is_alive():
        p.terminate()


def main(argv=None):
    ap = arg_parser(__doc__, "1234")
    ap.add_argument("--items", type=int, default=None,
                    help="1 MiB items streamed per round in 3. (default 500, quick 200)")
    cfg, sections = begin(ap, argv)
    q = cfg.quick
    cfg.rounds_1, cfg.ops_1, cfg.ops_1_mp = (5, 30_000, 2_000) if q else (9, 100_000, 5_000)
    cfg.rounds_2, cfg.trips_2, cfg.trips_2_mp = (3, 5_000, 1_000) if q else (7, 20_000, 3_000)
    cfg.trips_2_std, cfg.trips_2_std_ours = (10, 1_000) if q else (25, 3_000)
    cfg.rounds_3, cfg.items_3, cfg.maxsize_3 = (3, 200, 8) if q else (7, 500, 8)
    if cfg.items is not None:
        cfg.items_3 = cfg.items
    cfg.rounds_4, cfg.calls_4 = (3, 300) if q else (7, 1000)

    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)

    mp_pair = mpq = None
    if sections & set("123"):
        try:
            mp_pair, mpq = start_mp()
        except Exception as e:
            progress(f"multiprocessing (fork) unavailable: {e!r}")

    xi = load_xi(cfg, "Queue", "Interpreter")
    if xi is None:
        return 2 if cfg.check else 0

    rows = []
    t_start = perf()
    section = section_runner(sections, rows)

    section("1", "1. put+get", bench_put_get, xi, cfg, rows, mpq)
    section("2", "2. ping-pong", bench_ping_pong, xi, cfg, rows, mp_pair)
    section("3", "3. 1 MiB stream", bench_stream, xi, cfg, rows, mp_pair)
    section("4", "4. SharedBuffer argument", bench_buffer, xi, cfg, rows)
    if mp_pair is not None:
        stop_mp(mp_pair)

    return finish(rows, t_start, cfg.check)


if __name__ == "__main__":
    sys.exit(main())
