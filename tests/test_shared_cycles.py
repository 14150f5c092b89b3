"""Shared objects in reference cycles: not collected (documented), listed by
shared_objects(), freed once the cycle is broken while a wrapper is still held."""
import gc

import extrainterpreters as xi
import remote_funcs as rf
from extrainterpreters import _xi

KIND_QUEUE = 1


def entry(obj_id):
    """The shared_objects() entry of that id, or None."""
    found = [e for e in xi.shared_objects() if e[1] == obj_id]
    return found[0] if found else None


def test_shared_objects_lists_kind_id_and_references():
    q, buf, lock = xi.Queue(), xi.SharedBuffer(8), xi.Lock()
    sem = xi.BoundedSemaphore(2)
    assert entry(q.id) == ("Queue", q.id, 1)
    assert entry(buf.id) == ("SharedBuffer", buf.id, 1)
    assert entry(lock.id) == ("Lock", lock.id, 1)
    assert entry(sem.id) == ("Semaphore", sem.id, 1)
    q.put(buf)  # the queued item holds the buffer
    assert entry(buf.id) == ("SharedBuffer", buf.id, 2)
    again = q.get_nowait()
    assert entry(buf.id)[2] == 2  # two wrappers now, no item
    del again
    gc.collect()
    assert entry(buf.id)[2] == 1
    ids = [e[1] for e in xi.shared_objects()]
    assert ids == sorted(ids) and len(ids) == _xi._live_objects()
    bid = buf.id
    del buf
    gc.collect()
    assert entry(bid) is None


def test_the_listing_is_process_wide(interp):
    q = xi.Queue()
    interp.prepare_main(q=q)  # a wrapper there too
    assert entry(q.id) == ("Queue", q.id, 2)
    there = interp.run(rf.shared_objects_here)
    assert ("Queue", q.id, 2) in there
    interp.exec("del q")


def test_a_queue_holding_itself_stays_alive_and_is_listed():
    q = xi.Queue()
    q.put(q)
    qid = q.id
    del q
    gc.collect()
    # the documented limit: only the queued item holds it now
    assert entry(qid) == ("Queue", qid, 1)
    # the way out: a wrapper (here from its handle) and shutdown(immediate=True)
    _xi._rebuild(KIND_QUEUE, qid).shutdown(immediate=True)
    gc.collect()
    assert entry(qid) is None


def test_two_queues_holding_each_other_are_freed_when_the_cycle_is_broken():
    base = _xi._live_objects()
    for _ in range(200):
        a, b = xi.Queue(), xi.Queue()
        a.put(b)
        b.put(a)
        assert entry(a.id)[2] == entry(b.id)[2] == 2
        assert b.get_nowait() == a  # breaks the cycle
        del a, b
    gc.collect()
    assert _xi._live_objects() == base


def test_cycles_left_unbroken_are_all_listed():
    base = {e[1] for e in xi.shared_objects()}
    for _ in range(50):
        a, b = xi.Queue(), xi.Queue()
        a.put(b)
        b.put(a)
        del a, b
    gc.collect()
    kept = [e for e in xi.shared_objects() if e[1] not in base]
    assert len(kept) == 100 and all(e[0] == "Queue" and e[2] == 1 for e in kept)
    for _, qid, _ in kept:  # clean up, as the documentation says
        if entry(qid) is not None:  # (each shutdown frees the partner too)
            _xi._rebuild(KIND_QUEUE, qid).shutdown(immediate=True)
    gc.collect()
    assert {e[1] for e in xi.shared_objects()} == base
