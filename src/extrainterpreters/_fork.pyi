from typing import Any, Callable

__all__ = ["add"]

EXIT_STATUS: int

def add(
    before: Callable[[], Any],
    after_in_parent: Callable[[Any], object],
    after_in_child: Callable[[Any], object],
) -> None: ...
