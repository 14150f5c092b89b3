"""The names of concurrent.interpreters._queues, for code written against the standard
library (``from concurrent.interpreters import _queues``): this package's Queue."""
from . import (UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE, Queue, QueueEmpty, QueueError,
               QueueFull, QueueNotFoundError)
from . import create_queue as create

__all__ = ["UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE", "Queue", "QueueEmpty", "QueueError",
           "QueueFull", "QueueNotFoundError", "create", "list_all"]


def list_all():
    """Every live Queue of the process (made in any interpreter)."""
    from . import _xi

    queues = []
    for id_ in _xi._queue_ids():
        try:
            queues.append(Queue(id_))
        except QueueNotFoundError:
            pass  # freed meanwhile
    return queues
