"""interrupt() hitting many calls that share a Queue, a Lock, a Condition and a
SharedBuffer, and import modules of their own: no crash, no hang, no broken library or
import state, and no queue item lost or duplicated. Run in a subprocess, so that a
crash or a hang fails this test only; and three at once, for a loaded machine."""
import os
import subprocess
import sys

import pytest

from conftest import _env, assert_clean_exit
from helpers import parse

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

SCRIPT = """
import random, sys, threading, time
sys.path.insert(0, sys.argv[1])
import extrainterpreters as xi
import interrupt_funcs as inf

SECONDS = float(sys.argv[2])
INTERPS, PER_INTERP = 4, 4
random.seed(int(sys.argv[3]))

q = xi.Queue(8)
lock, cond, buf = xi.Lock(), xi.Condition(), xi.SharedBuffer(4096)
interps = [xi.Interpreter().start() for _ in range(INTERPS)]
deadline = time.monotonic() + SECONDS
failures, escaped = [], [0]

def driver(interp, wid):
    while time.monotonic() < deadline:
        try:
            interp.run(inf.hammer, q, lock, cond, buf, wid, deadline - time.monotonic())
        except KeyboardInterrupt:
            escaped[0] += 1  # it landed outside a step: call again
        except BaseException as e:
            failures.append(repr(e)[:300])
            return

threads = [threading.Thread(target=driver, args=(interps[w % INTERPS], w), daemon=True)
           for w in range(INTERPS * PER_INTERP)]
for t in threads:
    t.start()
sent = 0
while time.monotonic() < deadline:
    time.sleep(random.uniform(0.001, 0.05))
    random.choice(interps).interrupt()
    sent += 1
# then every call must return within 60 s; interrupts go on meanwhile, for waits that
# a lock left taken would otherwise make endless (on CPython 3.14 an asynchronous
# exception raised right after a `with` statement's __enter__ returned skips its
# __exit__: the lock stays taken, with threading.Lock too)
late = time.monotonic() + 60
while any(t.is_alive() for t in threads) and time.monotonic() < late:
    for it in interps:
        it.interrupt()
    time.sleep(0.02)
stuck = sum(t.is_alive() for t in threads)
print("SENT", sent, flush=True)
print("STUCK", stuck, flush=True)
if stuck:
    for it in interps:  # the stuck calls' frames (the owner threads are free)
        print("FRAMES of", it.id, it.run(inf.dump_frames), flush=True)
    import faulthandler
    faulthandler.dump_traceback(all_threads=True)
    import os
    os._exit(3)
print("FAILURES", len(failures), failures[:3], flush=True)

# the queue is drained, and each worker's ledger collected, without interrupts
drained = []
while True:
    try:
        drained.append(q.get_nowait())
    except xi.QueueEmpty:
        break
ledgers = [interps[w % INTERPS].run(inf.take_ledger, w) for w in range(INTERPS * PER_INTERP)]
put_tried, put_ok, got, ambiguous, rounds, calls, caught, errors = set(), set(), [], 0, 0, 0, 0, []
for led in ledgers:
    if led is None:
        continue
    put_tried.update(led["put_tried"])
    put_ok.update(led["put_ok"])
    got.extend(led["got"])
    ambiguous += led["gets_started"][0] - led["gets_done"][0]
    rounds += led["rounds"][0]
    calls += led["calls"][0]
    caught += led["caught"][0]
    errors.extend(led["errors"])
arrived = got + drained
print("ROUNDS", rounds, flush=True)
print("CALLS", calls, flush=True)
print("CAUGHT", caught, flush=True)
print("ERRORS", len(errors), errors[:3], flush=True)
print("DUPLICATES", len(arrived) - len(set(arrived)), flush=True)
print("UNKNOWN", len(set(arrived) - put_tried), flush=True)
lost = put_ok - set(arrived)
print("LOST", len(lost), flush=True)
print("AMBIGUOUS", ambiguous, flush=True)
# the interpreters are still usable, imports included
print("AFTER", [it.run(len, "abc") for it in interps], flush=True)
print("IMPORT", all(it.run(inf.import_fresh_module) for it in interps), flush=True)
for it in interps:
    it.close()
print("END", flush=True)
"""


def check_run(proc):
    out = proc.stdout + proc.stderr[-6000:]
    assert_clean_exit(proc)
    res = parse(proc.stdout)
    assert res["STUCK"] == "0", out
    assert res["FAILURES"].startswith("0 "), out
    assert int(res["SENT"]) > 100, out
    assert int(res["ROUNDS"]) > 100, out
    # the interrupts reached the calls (each interrupt() hits the 4 calls of one
    # interpreter; those that land outside a step end a call, which starts again)
    assert int(res["CAUGHT"]) + int(res["CALLS"]) - 16 > int(res["SENT"]), out
    assert res["ERRORS"].startswith("0 "), out
    assert res["DUPLICATES"] == "0", out
    assert res["UNKNOWN"] == "0", out
    # an item is only missing when an interrupt ended the get that took it before
    # the worker could record it
    assert int(res["LOST"]) <= int(res["AMBIGUOUS"]), out
    assert res["AFTER"] == "[3, 3, 3, 3]", out
    assert res["IMPORT"] == "True", out
    assert "END" in res, out


@pytest.mark.parametrize("seed", [1, 2])
def test_interrupts_hit_calls_sharing_a_queue_lock_condition_and_buffer(run_py, seed):
    check_run(run_py(SCRIPT, timeout=240, args=[TESTS_DIR, "8", str(seed)]))


@pytest.mark.slow
@pytest.mark.serial
@pytest.mark.parametrize("round_", range(3))
def test_interrupt_storms_in_three_processes_at_once(round_):
    # three rounds on 3.13, where the hang was seen, one on the other versions (time)
    if round_ and sys.version_info[:2] != (3, 13):
        pytest.skip("the second and third rounds run on 3.13")
    # the same storm three times at once: the machine is loaded, and calls stay
    # longer where an interrupt could break something (a hang here was an interrupt
    # raised inside importlib, in a worker's own import, which left the interpreter's
    # import lock taken)
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, TESTS_DIR, "8",
                               str(100 + 3 * round_ + k)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env())
             for k in range(3)]
    done = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=400)
            done.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for proc in done:
        check_run(proc)
