"""Many interpreters, each driven by its own thread, through one Queue: every item
arrives exactly once, and each producer's items in the order they were put."""
import threading
import time
from collections import Counter

import pytest

import extrainterpreters as xi
import remote_funcs as rf

pytestmark = pytest.mark.slow

PRODUCERS = 4
CONSUMERS = 2
ITEMS = 100_000


def run_pipeline(maxsize, items):
    q = xi.Queue(maxsize)
    producers = [xi.Interpreter().start() for _ in range(PRODUCERS)]
    consumers = [xi.Interpreter().start() for _ in range(CONSUMERS)]
    t0 = time.monotonic()
    try:
        consumer_threads = [c.call_in_thread(rf.queue_consumer, q, 120) for c in consumers]
        producer_threads = [p.call_in_thread(rf.queue_producer, q, pid, items, 120)
                            for pid, p in enumerate(producers)]
        for t in producer_threads:
            t.join(120)
            assert not t.is_alive(), "a producer did not finish"
        assert [p.result() for p in producers] == [items] * PRODUCERS
        for _ in consumers:
            q.put(rf.STOP, timeout=60)
        for t in consumer_threads:
            t.join(120)
            assert not t.is_alive(), "a consumer did not finish"
        streams = [c.result() for c in consumers]
    finally:
        for it in producers + consumers:
            it.close()
    return q, streams, time.monotonic() - t0


def check_exactly_once(streams, items):
    got = [tuple(x) for s in streams for x in s]
    counts = Counter(got)
    duplicates = [k for k, n in counts.items() if n > 1]
    assert not duplicates, f"{len(duplicates)} items arrived more than once: {duplicates[:5]}"
    expected = {(pid, i) for pid in range(PRODUCERS) for i in range(items)}
    assert len(got) == len(expected), f"got {len(got)} items, expected {len(expected)}"
    assert set(got) == expected
    per_producer = Counter(pid for pid, _ in got)
    assert per_producer == {pid: items for pid in range(PRODUCERS)}
    for s in streams:
        last = [-1] * PRODUCERS
        for pid, i in s:
            assert i > last[pid], f"producer {pid}: {i} after {last[pid]}"
            last[pid] = i


def test_unbounded_queue_4_producers_2_consumers():
    q, streams, seconds = run_pipeline(0, ITEMS)
    check_exactly_once(streams, ITEMS)
    assert all(len(s) > 0 for s in streams)
    assert q.empty()
    assert seconds < 60, f"the pipeline took {seconds:.1f} s"


def test_bounded_queue_4_producers_2_consumers():
    # maxsize 16: producers and consumers block and wake each other all the time
    q, streams, seconds = run_pipeline(16, ITEMS)
    check_exactly_once(streams, ITEMS)
    assert q.empty()
    assert seconds < 60, f"the pipeline took {seconds:.1f} s"


def test_task_done_join_under_load():
    q = xi.Queue(64)
    n = 20_000
    consumers = [xi.Interpreter().start() for _ in range(3)]
    try:
        threads = [c.call_in_thread(rf.queue_task_consumer, q, n, 0.0, 120)
                   for c in consumers]
        for i in range(3 * n):
            q.put(i, timeout=60)
        joined = threading.Event()
        joiner = threading.Thread(target=lambda: (q.join(), joined.set()), daemon=True)
        joiner.start()
        # join() returns only once every item was got and marked done
        assert joined.wait(120), "join() did not return"
        for t in threads:
            t.join(60)
            assert not t.is_alive()
        got = sorted(x for c in consumers for x in c.result())
    finally:
        for c in consumers:
            c.close()
    assert got == list(range(3 * n))
    with pytest.raises(ValueError):
        q.task_done()


def test_many_short_lived_interpreters_share_a_queue():
    q = xi.Queue()
    base = xi._xi._live_objects()
    for k in range(30):
        with xi.Interpreter() as it:
            it.run(rf.queue_put_all, q, [(k, i) for i in range(100)])
    assert q.qsize() == 3000
    got = [q.get_nowait() for _ in range(3000)]
    assert got == [(k, i) for k in range(30) for i in range(100)]
    assert xi._xi._live_objects() == base
