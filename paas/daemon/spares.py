"""Keep a few network attachments ready so bridge containers start without waiting
for a netns, user namespace, veth and address to be made (``BridgeNetwork.fill_spares``).

One background thread; woken after each bridge container is created (so an
instance that never uses the bridge never gets one), and every few minutes
to replace spares a reboot or an outside hand broke.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import PaasError

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime

__all__ = ["Spares"]

log = logging.getLogger(__name__)

SPARES = 2
RECHECK = 300.0


class Spares:
    def __init__(self, make_runtime: Callable[[], Runtime], count: int = SPARES) -> None:
        self._make_runtime = make_runtime
        self._count = count
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._used = False
        self._thread = threading.Thread(target=self._loop, name="paasd-spares", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """A bridge container was just created: top the spares up."""
        self._used = True
        self._wake.set()

    def _loop(self) -> None:
        rt: Runtime | None = None
        while not self._stop.is_set():
            self._wake.wait(RECHECK)
            self._wake.clear()
            if self._stop.is_set() or not self._used:
                continue
            rt = rt or self._make_runtime()
            try:
                made = rt.net.bridge.fill_spares(self._count, rt.ctx.idmap)
                if made:
                    log.debug("made %d spare network attachment(s)", made)
            except PaasError as err:
                log.warning("could not make spare network attachments: %s", err.render())

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
