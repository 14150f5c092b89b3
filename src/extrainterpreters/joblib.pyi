from abc import ABCMeta
from concurrent.futures import Future
from typing import Any, ClassVar, Literal

from joblib._parallel_backends import AutoBatchingMixin, ParallelBackendBase

__all__ = ["InterpretersBackend", "InterpreterBackend"]

class InterpretersBackend(AutoBatchingMixin, ParallelBackendBase, metaclass=ABCMeta):
    supports_retrieve_callback: ClassVar[bool]
    supports_sharedmem: ClassVar[bool]
    MIN_IDEAL_BATCH_DURATION: ClassVar[float]
    MAX_IDEAL_BATCH_DURATION: ClassVar[float]
    uses_threads: ClassVar[bool]
    parallel: Any
    fallback: Literal["process"] | None
    def __init__(
        self, *args: Any, fallback: Literal["process"] | None = "process", **kwargs: Any
    ) -> None: ...
    def effective_n_jobs(self, n_jobs: int | None) -> int: ...
    def configure(
        self,
        n_jobs: int | None = 1,
        parallel: Any = None,
        prefer: str | None = None,
        require: str | None = None,
        **backend_kwargs: Any,
    ) -> int: ...
    def get_nested_backend(self) -> tuple[Any, None]: ...
    def submit(self, func: Any, callback: Any = None) -> Future[Any]: ...
    def retrieve_result_callback(self, future: Future[Any]) -> Any: ...
    def terminate(self) -> None: ...
    def abort_everything(self, ensure_ready: bool = True) -> None: ...

InterpreterBackend = InterpretersBackend
