"""asyncio: xi.aio.run, Interpreter.run_async and the awaitable waits of Queue, Lock,
RLock, Semaphore and Event, with the other side in a subinterpreter."""
import asyncio
import threading
import time

import pytest

import extrainterpreters as xi
import remote_funcs as rf
from conftest import TESTS_DIR, assert_clean_exit

# a wait that should end at once may take this long on a busy machine
QUICK = 2.0


def run(coro):
    return asyncio.run(coro)


async def not_done_after(task, seconds=0.2):
    """Whether ``task`` is still pending after ``seconds`` of the loop running."""
    await asyncio.sleep(seconds)
    return not task.done()


def thread_call(it, func, *args):
    """Runs func in ``it`` in a new thread; returns a function that waits for the result."""
    thread = it.call_in_thread(func, *args)

    def wait(timeout=30):
        thread.join(timeout)
        assert not thread.is_alive(), f"{func.__name__} still runs after {timeout} s"
        return it.result()

    return wait


# --- xi.aio.run -------------------------------------------------------------------------------------

def test_aio_run_returns_value():
    async def main():
        return await xi.aio.run(rf.add, 1, 2, c=3)

    assert run(main()) == 6


def test_aio_run_in_a_subinterpreter():
    async def main():
        return await xi.aio.run(rf.interp_id)

    assert run(main()) != xi.get_main().id


def test_aio_run_lambda_and_closure():
    k = 5

    def closure(x):
        return x * k

    async def main():
        return await xi.aio.run(lambda a: a + 1, 1), await xi.aio.run(closure, 3)

    assert run(main()) == (2, 15)


def test_aio_run_remote_exception():
    async def main():
        return await xi.aio.run(rf.raise_custom, "aio boom")

    with pytest.raises(rf.CustomError, match="aio boom") as ei:
        run(main())
    assert type(ei.value) is rf.CustomError
    assert isinstance(ei.value.__cause__, xi.ExecutionFailed)
    assert "raise_custom" in ei.value.__cause__.excinfo.errdisplay


def test_aio_run_many_concurrently():
    async def main():
        return await asyncio.gather(*(xi.aio.run(rf.square, i) for i in range(200)))

    assert run(main()) == [i * i for i in range(200)]


def test_aio_run_does_not_block_the_loop():
    async def main():
        ticks = 0
        task = asyncio.ensure_future(xi.aio.run(rf.sleep_then, 0.6, "slept"))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return await task, ticks

    value, ticks = run(main())
    assert value == "slept"
    assert ticks >= 5


def test_aio_run_works_from_several_event_loops():
    # the default pool outlives one asyncio.run()
    for i in range(3):
        async def main():
            return await xi.aio.run(rf.add, i, 10)

        assert run(main()) == i + 10


def test_aio_run_exit_with_default_pool_open(run_py):
    code = f"""
import asyncio, sys
sys.path.insert(0, {TESTS_DIR!r})
import extrainterpreters as xi
import remote_funcs as rf

async def main():
    a = await xi.aio.run(rf.square, 7)
    b = await asyncio.gather(*(xi.aio.run(lambda x: x + 1, i) for i in range(20)))
    return a, sum(b)

print("RESULT", asyncio.run(main()), flush=True)
"""
    proc = run_py(code, timeout=60)
    assert_clean_exit(proc)
    assert proc.stdout.strip() == "RESULT (49, 210)"


# --- Interpreter.run_async --------------------------------------------------------------------------

def test_run_async_returns_value(interp):
    async def main():
        return await interp.run_async(rf.add, 2, 3, c=4)

    assert run(main()) == 9


def test_run_async_runs_in_that_interpreter(interp):
    async def main():
        return await interp.run_async(rf.interp_id)

    assert run(main()) == interp.id


def test_run_async_remote_exception(interp):
    async def main():
        return await interp.run_async(rf.raise_value_error, "run_async boom")

    with pytest.raises(ValueError, match="run_async boom") as ei:
        run(main())
    assert isinstance(ei.value.__cause__, xi.ExecutionFailed)
    assert interp.run(rf.add, 1, 1) == 2


def test_run_async_does_not_block_the_loop(interp):
    async def main():
        ticks = 0
        task = asyncio.ensure_future(interp.run_async(rf.sleep_then, 0.6, "ok"))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return await task, ticks

    value, ticks = run(main())
    assert value == "ok" and ticks >= 5


def test_run_async_on_several_interpreters_in_parallel(interps):
    its = interps(3)
    release = xi.Event()
    arrived = xi.Queue()

    async def main():
        tasks = [asyncio.ensure_future(it.run_async(rf.arrive_and_wait, arrived, release, 60))
                 for it in its]
        # all three are inside their interpreters at the same time
        got = set()
        for _ in range(3):
            got.add(await arrived.get_async(timeout=30))
        release.set()
        return got, await asyncio.gather(*tasks)

    got, results = run(main())
    assert got == {it.id for it in its}
    assert results == [it.id for it in its]


def test_run_async_closed_interpreter_raises():
    it = xi.Interpreter().start()
    it.close()

    async def main():
        return await it.run_async(rf.add, 1)

    with pytest.raises(xi.InterpreterError):
        run(main())


CTRL_C_RUN_ASYNC = """
import asyncio, os, signal, sys, threading, time
sys.path.insert(0, sys.argv[2])
import extrainterpreters as xi
import interrupt_funcs as inf

marker = sys.argv[1]
interp = xi.Interpreter().start()

def ctrl_c_once_started():
    while not os.path.exists(marker + ".started"):
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=ctrl_c_once_started, daemon=True).start()
t0 = time.monotonic()
try:
    asyncio.run(interp.run_async(inf.spin_marking_interrupt, marker, 60))
    print("RESULT returned", flush=True)
except KeyboardInterrupt:
    print("RESULT KeyboardInterrupt", flush=True)
print("SECONDS", time.monotonic() - t0, flush=True)
print("INTERRUPTED", os.path.exists(marker), flush=True)
"""


def test_ctrl_c_during_asyncio_run_of_run_async_interrupts_the_call(run_py, tmp_path):
    # one SIGINT: asyncio.run cancels the task, which interrupts the call; then the
    # process exits (nothing left running for exit to wait for)
    proc = run_py(CTRL_C_RUN_ASYNC, timeout=60, args=[str(tmp_path / "m"), TESTS_DIR])
    assert_clean_exit(proc)
    res = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert res["RESULT"] == "KeyboardInterrupt"
    assert res["INTERRUPTED"] == "True"
    assert float(res["SECONDS"]) < 30


def test_cancelling_run_async_interrupts_its_call_only(interp, tmp_path):
    import interrupt_funcs as inf

    marker = str(tmp_path / "m")
    # another call in the same interpreter, from another thread, goes on
    other = thread_call(interp, inf.count_interrupts, 1, 3)

    async def main():
        task = asyncio.create_task(interp.run_async(inf.spin_marking_interrupt, marker, 60))
        while not (tmp_path / "m.started").exists():
            await asyncio.sleep(0.01)
        task.cancel()
        t0 = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    assert run(main()) < 30
    assert (tmp_path / "m").exists(), "the call was not interrupted"
    assert other() == 0, "the other call was interrupted too"


# --- Queue.get_async / put_async -----------------------------------------------------------------

def test_get_async_item_already_there():
    q = xi.Queue()
    q.put("ready")

    async def main():
        return await q.get_async()

    assert run(main()) == "ready"


def test_get_async_item_put_by_subinterpreter(interp):
    q = xi.Queue()
    wait = thread_call(interp, rf.put_after, q, 1.0, {"from": "sub"})

    async def main():
        task = asyncio.ensure_future(q.get_async(timeout=30))
        assert await not_done_after(task, 0.1)
        return await task

    assert run(main()) == {"from": "sub"}
    assert wait() is True


def test_get_async_many_items_in_order(interp):
    q = xi.Queue()
    wait = thread_call(interp, rf.queue_put_all, q, list(range(500)))

    async def main():
        return [await q.get_async(timeout=30) for _ in range(500)]

    assert run(main()) == list(range(500))
    assert wait() == 500


def test_get_async_item_from_subinterpreter_waiting_in_pool():
    q = xi.Queue()

    async def main():
        getter = asyncio.ensure_future(q.get_async(timeout=30))
        putter = asyncio.ensure_future(xi.aio.run(rf.put_after, q, 0.2, "via pool"))
        return await getter, await putter

    assert run(main()) == ("via pool", True)


def test_get_async_timeout_raises_queue_empty():
    q = xi.Queue()

    async def main():
        t0 = time.monotonic()
        with pytest.raises(xi.QueueEmpty):
            await q.get_async(timeout=0.3)
        return time.monotonic() - t0

    elapsed = run(main())
    assert 0.25 <= elapsed < 10


@pytest.mark.parametrize("timeout", [0, -1])
@pytest.mark.serial
def test_get_async_non_positive_timeout_does_not_wait(timeout):
    q = xi.Queue()

    async def main():
        t0 = time.monotonic()
        with pytest.raises(xi.QueueEmpty):
            await q.get_async(timeout=timeout)
        q.put(1)
        return await q.get_async(timeout=timeout), time.monotonic() - t0

    value, elapsed = run(main())
    assert value == 1 and elapsed < QUICK


def test_get_async_timeout_met_in_time(interp):
    q = xi.Queue()
    wait = thread_call(interp, rf.put_after, q, 0.2, "in time")

    async def main():
        return await q.get_async(timeout=20)

    assert run(main()) == "in time"
    wait()


def test_put_async_room_made_by_subinterpreter(interp):
    q = xi.Queue(1)
    q.put("first")
    wait = thread_call(interp, rf.get_after, q, 1.0)

    async def main():
        task = asyncio.ensure_future(q.put_async("second", timeout=30))
        assert await not_done_after(task, 0.1)
        await task

    run(main())
    assert wait() == "first"
    assert q.get_nowait() == "second"


def test_put_async_with_room_is_immediate():
    q = xi.Queue(2)

    async def main():
        await q.put_async("a")
        await q.put_async("b", timeout=0)

    run(main())
    assert [q.get_nowait(), q.get_nowait()] == ["a", "b"]


def test_put_async_timeout_raises_queue_full():
    q = xi.Queue(1)
    q.put("only")

    async def main():
        t0 = time.monotonic()
        with pytest.raises(xi.QueueFull):
            await q.put_async("extra", timeout=0.3)
        return time.monotonic() - t0

    elapsed = run(main())
    assert 0.25 <= elapsed < 10
    assert q.get_nowait() == "only"
    with pytest.raises(xi.QueueEmpty):
        q.get_nowait()


def test_put_async_then_subinterpreter_gets(interp):
    q = xi.Queue(2)
    wait = thread_call(interp, rf.queue_get_n, q, 50)

    async def main():
        for i in range(50):
            await q.put_async(i, timeout=30)

    run(main())
    assert wait() == list(range(50))


def test_async_ping_pong_with_subinterpreter(interp):
    inq, outq = xi.Queue(1), xi.Queue(1)
    wait = thread_call(interp, rf.queue_echo, inq, outq, 100)

    async def main():
        got = []
        for i in range(100):
            await inq.put_async(i, timeout=30)
            got.append(await outq.get_async(timeout=30))
        return got

    assert run(main()) == list(range(100))
    assert wait() == 100


# --- waiters do not hold threads ---------------------------------------------------------------------

def test_200_get_async_waiters_do_not_hold_threads(interp):
    q = xi.Queue()
    n = 200

    async def main():
        before = threading.active_count()
        tasks = [asyncio.ensure_future(q.get_async(timeout=60)) for _ in range(n)]
        await asyncio.sleep(0.3)
        during = threading.active_count()
        assert not any(t.done() for t in tasks)
        wait = thread_call(interp, rf.queue_put_all, q, list(range(n)))
        got = await asyncio.gather(*tasks)
        assert wait() == n
        return before, during, got

    before, during, got = run(main())
    assert during - before < 20, f"{during - before} threads more while {n} waiters wait"
    assert sorted(got) == list(range(n))
    with pytest.raises(xi.QueueEmpty):
        q.get_nowait()


def test_many_lock_and_event_waiters_do_not_hold_threads(interp):
    event = xi.Event()
    lock = xi.Lock()
    assert lock.acquire()

    async def main():
        before = threading.active_count()
        waits = [asyncio.ensure_future(event.wait_async(timeout=60)) for _ in range(100)]
        acquires = [asyncio.ensure_future(lock.acquire_async(timeout=60)) for _ in range(100)]
        await asyncio.sleep(0.3)
        during = threading.active_count()
        assert not any(t.done() for t in waits + acquires)
        assert interp.run(rf.set_after, event, 0) is True
        assert await asyncio.gather(*waits) == [True] * 100
        # each acquirer takes the lock in turn; a subinterpreter releases it each time
        lock_count = 0
        interp.run(rf.sync_release, lock)
        for fut in asyncio.as_completed(acquires):
            assert await fut is True
            lock_count += 1
            interp.run(rf.sync_release, lock)
        return before, during, lock_count

    before, during, count = run(main())
    assert during - before < 20
    assert count == 100
    assert not lock.locked()


# --- cancellation -------------------------------------------------------------------------------------

def test_cancelled_get_async_loses_no_item(interp):
    q = xi.Queue()

    async def main():
        task = asyncio.ensure_future(q.get_async())
        assert await not_done_after(task, 0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert interp.run(rf.queue_put, q, "kept") is True
        await asyncio.sleep(0.1)

    run(main())
    assert q.get(timeout=5) == "kept"


def test_many_cancelled_get_async_lose_no_items(interp):
    q = xi.Queue()

    async def main():
        tasks = [asyncio.ensure_future(q.get_async(timeout=60)) for _ in range(50)]
        await asyncio.sleep(0.2)
        for t in tasks[:30]:
            t.cancel()
        wait = thread_call(interp, rf.queue_put_all, q, list(range(40)))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert wait() == 40
        return results

    results = run(main())
    assert all(isinstance(r, asyncio.CancelledError) for r in results[:30])
    got = results[30:]
    rest = []
    while True:
        try:
            rest.append(q.get_nowait())
        except xi.QueueEmpty:
            break
    assert sorted(got + rest) == list(range(40))
    assert len(got) == 20 and len(rest) == 20


def test_cancelled_get_async_by_wait_for_loses_no_item(interp):
    q = xi.Queue()

    async def main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(q.get_async(), 0.2)
        interp.run(rf.queue_put, q, "still here")

    run(main())
    assert q.get(timeout=5) == "still here"


def test_cancelled_put_async_puts_nothing(interp):
    q = xi.Queue(1)
    q.put("first")

    async def main():
        task = asyncio.ensure_future(q.put_async("cancelled"))
        assert await not_done_after(task, 0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert interp.run(rf.queue_get, q, 5) == "first"
        await asyncio.sleep(0.2)

    run(main())
    with pytest.raises(xi.QueueEmpty):
        q.get_nowait()


def test_cancelled_acquire_async_does_not_take_the_lock(interp):
    lock = xi.Lock()
    acquired, release = xi.Event(), xi.Event()
    wait = thread_call(interp, rf.hold_until, lock, acquired, release)
    assert acquired.wait(30)

    async def main():
        task = asyncio.ensure_future(lock.acquire_async())
        assert await not_done_after(task, 0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.sleep(0.2)

    run(main())
    assert wait() is True
    assert not lock.locked()
    assert lock.acquire(blocking=False)
    lock.release()


def test_cancelled_wait_async(interp):
    event = xi.Event()

    async def main():
        task = asyncio.ensure_future(event.wait_async())
        assert await not_done_after(task, 0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        interp.run(rf.set_after, event, 0)
        return await event.wait_async(timeout=5)

    assert run(main()) is True


# --- Event.wait_async ------------------------------------------------------------------------------

def test_wait_async_set_by_subinterpreter(interp):
    event = xi.Event()
    wait = thread_call(interp, rf.set_after, event, 1.0)

    async def main():
        task = asyncio.ensure_future(event.wait_async(timeout=30))
        assert await not_done_after(task, 0.1)
        return await task

    assert run(main()) is True
    assert wait() is True


def test_wait_async_already_set():
    event = xi.Event()
    event.set()

    async def main():
        return await event.wait_async(), await event.wait_async(timeout=0)

    assert run(main()) == (True, True)


def test_wait_async_timeout():
    event = xi.Event()

    async def main():
        t0 = time.monotonic()
        result = await event.wait_async(timeout=0.3)
        return result, time.monotonic() - t0

    result, elapsed = run(main())
    assert result is False
    assert 0.25 <= elapsed < 10


@pytest.mark.serial
def test_wait_async_zero_timeout_is_immediate():
    event = xi.Event()

    async def main():
        t0 = time.monotonic()
        return await event.wait_async(timeout=0), time.monotonic() - t0

    result, elapsed = run(main())
    assert result is False and elapsed < QUICK


# --- acquire_async -------------------------------------------------------------------------------------

SYNC_KINDS = {
    "Lock": lambda: xi.Lock(),
    "RLock": lambda: xi.RLock(),
    "Semaphore": lambda: xi.Semaphore(1),
}


@pytest.fixture(params=sorted(SYNC_KINDS))
def prim(request):
    return SYNC_KINDS[request.param]()


def test_acquire_async_free(prim):
    async def main():
        ok = await prim.acquire_async()
        prim.release()
        return ok

    assert run(main()) is True


def test_acquire_async_released_by_subinterpreter(prim, interp):
    acquired, release = xi.Event(), xi.Event()
    wait = thread_call(interp, rf.hold_until, prim, acquired, release)
    assert acquired.wait(30)

    async def main():
        task = asyncio.ensure_future(prim.acquire_async(timeout=30))
        assert await not_done_after(task, 0.2)
        release.set()
        ok = await task
        prim.release()
        return ok

    assert run(main()) is True
    assert wait() is True


def test_acquire_async_timeout(prim, interp):
    acquired, release = xi.Event(), xi.Event()
    wait = thread_call(interp, rf.hold_until, prim, acquired, release)
    assert acquired.wait(30)

    async def main():
        t0 = time.monotonic()
        ok = await prim.acquire_async(timeout=0.3)
        return ok, time.monotonic() - t0

    try:
        ok, elapsed = run(main())
    finally:
        release.set()
    assert ok is False
    assert 0.25 <= elapsed < 10
    assert wait() is True


@pytest.mark.serial
def test_acquire_async_zero_timeout_when_held(prim, interp):
    acquired, release = xi.Event(), xi.Event()
    wait = thread_call(interp, rf.hold_until, prim, acquired, release)
    assert acquired.wait(30)

    async def main():
        t0 = time.monotonic()
        return await prim.acquire_async(timeout=0), time.monotonic() - t0

    try:
        ok, elapsed = run(main())
    finally:
        release.set()
    assert ok is False and elapsed < QUICK
    assert wait() is True


def test_semaphore_acquire_async_counts():
    sem = xi.Semaphore(2)

    async def main():
        a = await sem.acquire_async(timeout=1)
        b = await sem.acquire_async(timeout=1)
        c = await sem.acquire_async(timeout=0.2)
        sem.release()
        d = await sem.acquire_async(timeout=1)
        sem.release()
        sem.release()
        return a, b, c, d

    assert run(main()) == (True, True, False, True)


def test_rlock_acquire_async_is_reentrant_in_the_loop_thread():
    rl = xi.RLock()

    async def main():
        ok1 = await rl.acquire_async(timeout=1)
        ok2 = await rl.acquire_async(timeout=1)
        rl.release()
        rl.release()
        return ok1, ok2

    assert run(main()) == (True, True)
    assert rl.acquire(blocking=False)
    rl.release()


def test_async_locks_give_mutual_exclusion_with_subinterpreters(interps):
    # the event loop's tasks and two subinterpreters add to one counter under one Lock
    lock = xi.Lock()
    buf = xi.SharedBuffer(16)
    its = interps(2)
    waits = [thread_call(it, rf.locked_increments, lock, buf, 300) for it in its]

    async def worker(n):
        mv = memoryview(buf)
        for _ in range(n):
            assert await lock.acquire_async(timeout=60)
            try:
                value = int.from_bytes(mv[:8], "little")
                await asyncio.sleep(0)
                mv[:8] = (value + 1).to_bytes(8, "little")
            finally:
                lock.release()

    async def main():
        await asyncio.gather(*(worker(100) for _ in range(3)))

    run(main())
    assert [w(60) for w in waits] == [0, 0]
    assert int.from_bytes(bytes(memoryview(buf)[:8]), "little") == 900
