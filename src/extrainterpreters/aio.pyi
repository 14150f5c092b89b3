from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["run"]

_T = TypeVar("_T")

async def run(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Run fn(*args, **kwargs) in an interpreter of a shared default pool."""
