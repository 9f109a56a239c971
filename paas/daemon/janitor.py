"""Cleanup that need not hold up a reply: one background thread running argv lists.

Used for ``runc delete`` of ``--rm`` containers, whose ids are never started
again, so the CLI gets its exit code ~10 ms sooner. At shutdown the queue is
drained; state a crash leaves behind is collected at the next start
(``Runtime.collect_runc_garbage``).
"""

from __future__ import annotations

import logging
import queue
import threading

from .. import proc

__all__ = ["Janitor"]

log = logging.getLogger(__name__)


class Janitor:
    def __init__(self) -> None:
        self._q: queue.Queue[list[str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="paasd-janitor", daemon=True)
        self._thread.start()

    def submit(self, argv: list[str]) -> None:
        self._q.put(list(argv))

    def _loop(self) -> None:
        while (argv := self._q.get()) is not None:
            res = proc.run(argv, check=False)
            if res.returncode != 0:
                log.warning("cleanup %s failed: %s", argv, res.stderr.strip())

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        self._q.put(None)
        self._thread.join(timeout=30)
