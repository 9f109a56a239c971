"""Installing and removing an app's certificate, with its vhost when it is stapled.

A certificate without an OCSP responder is read by nginx per handshake: installing,
replacing or removing it is ``paas.certs`` alone, and nginx is not touched. One whose
leaf names a responder is loaded statically so nginx can staple (``paas.certs.ocsp``):
when the certificate installed before or after the change is of that kind, the app's
vhost is rendered again and nginx reloaded gracefully (``Deployer.reroute`` through
``Proxy``: ``nginx -t`` first, in-flight requests finish). A stapled certificate is
removed from the vhost before its file goes, so the live config never names a
missing file. Not here: validating (``paas.certs``), rendering (``paas.proxy``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import Context

if TYPE_CHECKING:
    from ..certs import CertInfo

__all__ = ["install_cert", "remove_cert", "stapled"]

log = logging.getLogger(__name__)


def _dir(ctx: Context, app: str) -> str:
    from ..certs.store import cert_dir

    return cert_dir(ctx, app)


def stapled(ctx: Context, app: str) -> str | None:
    """The OCSP responder of ``app``'s installed certificate, None without one."""
    from ..certs.ocsp import responder

    return responder(_dir(ctx, app))


Say = Callable[[str], None]


def reroute(ctx: Context, app: str, say: Say | None = None) -> None:
    """The app's vhost again (its running containers, no restart) and a reload if it
    changed; ``say`` gets the progress lines (default: the log, as in paasd)."""
    from .push import make_deployer

    d = make_deployer(ctx, say or log.info, need_daemon=False)
    with d.locked(app):
        d.reroute(app)


def install_cert(ctx: Context, app: str, chain: bytes, key: bytes, *, source: str,
                 conn: sqlite3.Connection | None = None, say: Say | None = None) -> CertInfo:
    """``paas.certs.install``, then the vhost again when the old or new one is stapled."""
    from .. import certs

    was = stapled(ctx, app)
    info = certs.install(ctx, app, chain, key, source=source, conn=conn)
    if was or stapled(ctx, app):
        reroute(ctx, app, say)
    return info


def remove_cert(ctx: Context, app: str, *, conn: sqlite3.Connection | None = None,
                say: Say | None = None) -> None:
    """``paas.certs.remove``; a stapled certificate leaves the vhost first."""
    from .. import certs
    from ..apps.store import need_app
    from ..certs.ocsp import forget

    if stapled(ctx, app):
        if conn is not None:
            need_app(conn, app)
        forget(_dir(ctx, app))
        reroute(ctx, app, say)  # per handshake again: the file may go
    certs.remove(ctx, app, conn=conn)
