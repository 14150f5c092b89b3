"""asyncio entry points."""
import asyncio
import threading

__all__ = ["run"]

_default_pool = None
_default_lock = threading.Lock()


def _pool():
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            from .executor import InterpreterPoolExecutor

            _default_pool = InterpreterPoolExecutor(thread_name_prefix="extrainterpreters-aio")
        return _default_pool


async def run(fn, /, *args, **kwargs):
    """Run fn(*args, **kwargs) in an interpreter of a shared default pool."""
    return await asyncio.wrap_future(_pool().submit(fn, *args, **kwargs))
