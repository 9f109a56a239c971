"""Keep a few network attachments ready so bridge containers start without waiting
for a netns, user namespace, veth and address to be made (``BridgeNetwork.fill_spares``).

One background thread; woken after each bridge container is created (so an
instance that never uses the bridge never gets one), and every few minutes
to replace spares a reboot or an outside hand broke.

A spare's netns belongs to a user namespace with one id range (a container must
own its netns), so spares are kept per range: for the default range and for the
``RANGES`` ranges (apps) that created a container most recently; the spares of a
range that drops out of that list are removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import PaasError
from ..model import IdMap

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime

__all__ = ["Spares"]

log = logging.getLogger(__name__)

SPARES = 2
RANGES = 4  # app ranges with spares, besides the default range
RECHECK = 300.0


class Spares:
    def __init__(self, make_runtime: Callable[[], Runtime], count: int = SPARES) -> None:
        self._make_runtime = make_runtime
        self._count = count
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._used = False
        self._ranges: list[IdMap] = []  # most recent first
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="paasd-spares", daemon=True)
        self._thread.start()

    def kick(self, idmap: IdMap | None = None) -> None:
        """A bridge container was just created (in ``idmap``'s range, None: the default
        range): top the spares up."""
        self._used = True
        if idmap is not None:
            with self._lock:
                self._ranges = [idmap, *(r for r in self._ranges if r != idmap)][:RANGES]
        self._wake.set()

    def _loop(self) -> None:
        rt: Runtime | None = None
        while not self._stop.is_set():
            self._wake.wait(RECHECK)
            self._wake.clear()
            if self._stop.is_set() or not self._used:
                continue
            rt = rt or self._make_runtime()
            with self._lock:
                ranges = [rt.ctx.idmap, *(r for r in self._ranges if r != rt.ctx.idmap)]
            try:
                made = sum(rt.net.bridge.fill_spares(self._count, r) for r in ranges)
                dropped = rt.net.bridge.drop_spares(keep={r.key for r in ranges})
                if made or dropped:
                    log.debug("made %d spare network attachment(s), dropped %d", made, dropped)
            except PaasError as err:
                log.warning("could not make spare network attachments: %s", err.render())

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
