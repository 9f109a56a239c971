"""Cleanup that need not hold up a reply: one background thread running tasks in order.

Used for ``runc delete`` and the bundle of ``--rm`` containers, whose ids are
never started again, so the CLI gets its exit code ~10 ms sooner. At shutdown
the queue is drained; state a crash leaves behind is collected at the next
start (``Runtime.collect_garbage``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["Janitor"]

log = logging.getLogger(__name__)


class Janitor:
    def __init__(self) -> None:
        self._q: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="paasd-janitor", daemon=True)
        self._thread.start()

    def submit(self, task: Callable[[], object]) -> None:
        self._q.put(task)

    def _loop(self) -> None:
        while (task := self._q.get()) is not None:
            try:
                task()
            except Exception:  # a failed cleanup must not end the thread; the next start retries
                log.exception("cleanup task %r failed", task)

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        self._q.put(None)
        self._thread.join(timeout=30)
