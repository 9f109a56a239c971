"""Restart policies in paasd: after an exit, start the container again after Docker's backoff.

``Restarts.after_exit`` runs on the supervisor's on-exit thread right after
``Runtime.finish``: it asks ``paas.runtime.restart`` whether the policy wants
a restart, marks the container ``restarting`` and schedules the start on one
``Scheduler`` thread (a heap of deadlines: no sleeping thread per container).
A container stopped, removed or started by the user meanwhile is left alone.
The backoff delay per container lives in memory: a restarted paasd starts
again at 100 ms.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import PaasError
from ..model import Container, ContainerState
from ..runtime.restart import BACKOFF_START, next_backoff, parse_restart_policy, should_restart

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime

__all__ = ["EXIT_START_FAILED", "Restarts", "Scheduler"]

log = logging.getLogger(__name__)

EXIT_START_FAILED = 127  # a restart that could not even start counts as a failed run


class Scheduler:
    """Run callables at deadlines on one thread."""

    def __init__(self, name: str = "paasd-timers") -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), fn))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:
                log.exception("timer callback %r failed", fn)


class Restarts:
    """The restart manager of one paasd. ``runtime()`` gives the calling thread's Runtime;
    ``start(rt, cid)`` starts a container under the supervisor."""

    def __init__(self, runtime: Callable[[], Runtime], start: Callable[[Runtime, str], None],
                 scheduler: Scheduler) -> None:
        self._runtime = runtime
        self._start = start
        self._scheduler = scheduler
        self._delay: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def wants_restart(c: Container, code: int) -> bool:
        """Whether ``c``'s policy restarts it after an exit with ``code`` (no side effect):
        the exit is then recorded as ``restarting`` at once."""
        try:
            policy = parse_restart_policy(c.config.restart)
        except PaasError:
            return False
        return should_restart(policy, code, c.restart_count, c.stopped_by_user)

    def after_exit(self, rt: Runtime, cid: str, code: int, ran: float) -> float | None:
        """Schedule a restart if the policy says so; the delay, or None."""
        try:
            c = rt.store.get(cid)
        except PaasError:
            return None  # removed (--rm)
        try:
            policy = parse_restart_policy(c.config.restart)
        except PaasError as err:
            log.warning("container %s: %s", cid[:12], err.message)
            return None
        with self._lock:
            if not should_restart(policy, code, c.restart_count, c.stopped_by_user):
                self._delay.pop(cid, None)
                if c.state == ContainerState.RESTARTING:  # stopped by the user meanwhile
                    rt.store.set_restarting(cid, False)
                return None
            delay = self._delay[cid] = next_backoff(self._delay.get(cid, 0.0), ran)
        rt.store.set_restarting(cid)
        log.info("container %s exited with %d; restart %d in %.1fs (%s)", cid[:12], code,
                 c.restart_count + 1, delay, policy)
        self._scheduler.call_later(delay, lambda: self._restart(cid))
        return delay

    def resume(self, cid: str) -> None:
        """A container found ``restarting`` at daemon start: restart it after the first delay."""
        self._scheduler.call_later(BACKOFF_START, lambda: self._restart(cid))

    def _restart(self, cid: str) -> None:
        rt = self._runtime()
        try:
            c = rt.store.get(cid)
        except PaasError:
            return
        if c.state != ContainerState.RESTARTING or c.stopped_by_user:
            return  # stopped, started or removed by the user meanwhile
        rt.store.count_restart(cid)
        try:
            self._start(rt, cid)
        except PaasError as err:
            log.warning("restart of %s failed: %s", cid[:12], err.render())
            try:
                again = self.wants_restart(rt.store.get(cid), EXIT_START_FAILED)
            except PaasError:
                return  # removed meanwhile
            rt.store.set_exited(cid, EXIT_START_FAILED, error=err.message, restarting=again)
            self.after_exit(rt, cid, EXIT_START_FAILED, 0.0)
