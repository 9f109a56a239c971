"""``paas report``'s letsencrypt section: each ACME-enabled app's certificate, and as
a problem a renewal that keeps failing (the current certificate still serves) or a
certificate close to expiry.

``checks`` is pure (states, certificates, now); ``probe`` reads them. Not here: the
renewal itself (``paas.acme.renew``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from ..acme.model import AppState, InstalledCert
from ..config import Context
from .checks import Check

__all__ = ["checks", "probe"]

SECTION = "letsencrypt"
URGENT = timedelta(days=7)


def checks(states: Sequence[AppState], certs: Mapping[str, InstalledCert | None],
           now: datetime) -> list[Check]:
    out = []
    for s in states:
        if not s.enabled:
            continue
        cert = certs.get(s.app)
        left = cert.not_after - now if cert else None
        value = (f"expires {cert.not_after:%Y-%m-%d} ({left.days} days)"
                 if cert and left is not None else "no certificate")
        if s.last_error:
            until = (f"the current certificate serves until {cert.not_after:%Y-%m-%d %H:%M} UTC"
                     if cert else "the app has no certificate")
            out.append(Check(SECTION, s.app, value,
                             f"the certificate of {s.app} failed to renew {s.failures} time(s): "
                             f"{s.last_error}",
                             f"fix the cause, then 'paas letsencrypt:auto-renew {s.app}' "
                             f"(paasd retries with backoff; {until})"))
        elif cert is not None and left is not None and left < URGENT:
            out.append(Check(SECTION, s.app, value,
                             f"the certificate of {s.app} expires in less than 7 days",
                             f"check that paasd runs ('paas daemon:status'), then "
                             f"'paas letsencrypt:auto-renew {s.app}'"))
        else:
            out.append(Check(SECTION, s.app, value))
    return out


def probe(ctx: Context, conn: sqlite3.Connection) -> list[Check]:
    from ..acme.ops import CertsSink
    from ..acme.store import AcmeStore
    from ..errors import PaasError

    states = AcmeStore(conn).list(enabled_only=True)
    if not states:
        return []
    sink = CertsSink(ctx, conn)
    certs: dict[str, InstalledCert | None] = {}
    for s in states:
        try:
            certs[s.app] = sink.info(s.app)
        except (PaasError, OSError):
            certs[s.app] = None
    return checks(states, certs, datetime.now(UTC))
