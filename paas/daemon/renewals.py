"""Certificate renewal in paasd: one thread that runs ``paas.acme.ops.run_renewals``.

The first check runs a minute after paasd starts (sooner when the interval is
shorter), then every ``PAAS_LETSENCRYPT_CHECK_INTERVAL`` seconds (default a day), or
earlier when a failed renewal's retry is due. A run with no app due makes no
request to any CA. A failed renewal keeps the current certificate serving; its
error is in the state database (``letsencrypt:list``, ``paas report``). Not here:
what is due and the backoff (``paas.acme.renew``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping

from ..config import Context
from ..errors import PaasError

__all__ = ["DEFAULT_INTERVAL", "Renewals", "check_interval"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 86400.0
FIRST_DELAY = 60.0


def check_interval(env: Mapping[str, str]) -> float:
    value = env.get("PAAS_LETSENCRYPT_CHECK_INTERVAL") or ""
    try:
        return max(float(value), 0.2) if value else DEFAULT_INTERVAL
    except ValueError:
        log.warning("PAAS_LETSENCRYPT_CHECK_INTERVAL=%r is not a number of seconds", value)
        return DEFAULT_INTERVAL


class Renewals:
    """The renewal thread of one paasd."""

    def __init__(self, ctx: Context, env: Mapping[str, str] | None = None) -> None:
        self.ctx = ctx
        self.env = dict(os.environ if env is None else env)
        self.interval = check_interval(self.env)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="paasd-renewals", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def run_once(self) -> float | None:
        """One check; the time of the earliest scheduled retry, if any."""
        from ..acme.ops import run_renewals
        from ..state import connect

        conn = connect(self.ctx.paths.db)
        try:
            if not conn.execute("SELECT 1 FROM acme_apps WHERE enabled = 1 LIMIT 1").fetchone():
                return None
            outcomes, retry = run_renewals(self.ctx, conn, self.env)
        finally:
            conn.close()
        for o in outcomes:
            if o.result in ("issued", "renewed"):
                log.info("certificate of %s %s (%s)", o.app, o.result, o.detail)
        return retry

    def _loop(self) -> None:
        delay = min(FIRST_DELAY, self.interval)
        while not self._stop.wait(delay):
            retry: float | None = None
            try:
                retry = self.run_once()
            except PaasError as err:
                log.error("certificate renewal: %s", err.render())
            except Exception:  # the thread must survive; the next check tries again
                log.exception("certificate renewal failed")
            delay = self.interval
            if retry is not None:
                delay = max(min(delay, retry - time.time()), 0.2)
