"""The coroutines behind the awaitable methods of Queue, Lock, RLock, Semaphore and Event.

A waiter does not hold a thread: it registers an eventfd with the primitive, which
writes to it when its state changes in the waiter's favour; the event loop wakes the
waiter, which tries again without blocking. Registering happens before the second try,
so no change is missed. Cancelling the awaiting task just unregisters: an item is only
ever taken by a successful non-blocking try, so a cancelled get_async() loses nothing.
"""
import asyncio
import os

_FLAGS = os.EFD_NONBLOCK | os.EFD_CLOEXEC


async def _until(try_once, register, unregister, timeout):
    """Awaits try_once() -> (done, value) becoming done; None on timeout."""
    done, value = try_once()
    if done:
        return True, value
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + max(timeout, 0)
    fd = os.eventfd(0, _FLAGS)
    try:
        woken = asyncio.Event()
        loop.add_reader(fd, woken.set)
        register(fd)
        try:
            while True:
                done, value = try_once()
                if done:
                    return True, value
                if deadline is None:
                    await woken.wait()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return False, None
                    try:
                        await asyncio.wait_for(woken.wait(), remaining)
                    except TimeoutError:
                        return False, None
                woken.clear()
                try:
                    os.eventfd_read(fd)
                except BlockingIOError:
                    pass
        finally:
            unregister(fd)
            loop.remove_reader(fd)
    finally:
        os.close(fd)


def _queue_errors():
    from . import QueueEmpty, QueueFull

    return QueueEmpty, QueueFull


async def queue_get(q, timeout=None):
    """Queue.get_async(timeout=None): raises QueueEmpty when the timeout expires."""
    empty, _ = _queue_errors()

    def try_once():
        try:
            return True, q.get_nowait()
        except empty:
            return False, None

    ok, value = await _until(try_once, lambda fd: q._add_waiter(fd, False),
                             lambda fd: q._remove_waiter(fd, False), timeout)
    if not ok:
        raise empty("the Queue is empty")
    return value


async def queue_put(q, item, timeout=None):
    """Queue.put_async(item, timeout=None): raises QueueFull when the timeout expires."""
    _, full = _queue_errors()

    def try_once():
        try:
            q.put_nowait(item)
            return True, None
        except full:
            return False, None

    ok, _ = await _until(try_once, lambda fd: q._add_waiter(fd, True),
                         lambda fd: q._remove_waiter(fd, True), timeout)
    if not ok:
        raise full("the Queue is full")


async def lock_acquire(lock, timeout=None):
    """acquire_async(timeout=None) of Lock, RLock and Semaphore: True, or False on
    timeout."""
    ok, _ = await _until(lambda: (lock.acquire(False), None), lock._add_waiter,
                         lock._remove_waiter, timeout)
    return ok


async def event_wait(event, timeout=None):
    """Event.wait_async(timeout=None): True once set, False on timeout."""
    ok, _ = await _until(lambda: (event.is_set(), None), event._add_waiter,
                         event._remove_waiter, timeout)
    return ok
