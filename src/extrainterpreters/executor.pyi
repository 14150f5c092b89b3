import concurrent.futures as _cf
from concurrent.futures.thread import BrokenThreadPool as _BrokenThreadPool
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar

__all__ = ["BrokenInterpreterPool", "FallbackWarning", "InterpreterPoolExecutor"]

_T = TypeVar("_T")
_P = ParamSpec("_P")

class BrokenInterpreterPool(_BrokenThreadPool): ...
class FallbackWarning(RuntimeWarning): ...

class InterpreterPoolExecutor(_cf.ThreadPoolExecutor):
    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        fallback: Literal["process"] | None = None,
        preload: str | Iterable[str] = (),
    ) -> None: ...
    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _cf.Future[_T]: ...
    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> Literal[False]: ...
