import concurrent.futures as _cf
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

from distributed import Worker, WorkerPlugin

__all__ = ["InterpreterExecutor", "WorkerInterpreterPool"]

_T = TypeVar("_T")
_P = ParamSpec("_P")

class WorkerInterpreterPool(_cf.Executor):
    def __init__(
        self, max_workers: int | None = None, fallback: Literal["process"] | None = "process"
    ) -> None: ...
    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _cf.Future[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...

# made on first use (importing distributed), by the module's __getattr__
class InterpreterExecutor(WorkerPlugin):
    name: str
    max_workers: int | None
    fallback: Literal["process"] | None
    def __init__(
        self,
        name: str = "interpreters",
        max_workers: int | None = None,
        fallback: Literal["process"] | None = "process",
    ) -> None: ...
    def setup(self, worker: Worker) -> None: ...
    def teardown(self, worker: Worker) -> None: ...
