"""The ACME operations wired to the real pieces: the certificate store (``paas.certs``),
nginx's webroot, the ACME server, under one lock per instance.

The CLI (``paas.cli.letsencrypt``) and paasd's renewal thread (``paas.daemon.renewals``)
call these; each opens what it needs from a ``Context`` and a state connection. One
issuance at a time per instance (``PAAS_ROOT/acme/lock``): a ``letsencrypt:enable``
waits for paasd's renewal and the other way round.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence

from ..config import Context
from ..errors import FailedPrecondition, NotFound
from ..filelock import file_lock
from .account import acme_dir
from .model import CertificateAuthority, InstalledCert, Progress
from .renew import RETRY_BASE, Outcome, Renewer
from .store import AcmeStore

__all__ = ["CertsSink", "acme_lock", "make_renewer", "revoke"]


class CertsSink:
    """``CertSink`` over ``paas.certs`` (source ``acme``), on the caller's connection."""

    def __init__(self, ctx: Context, conn: sqlite3.Connection | None = None) -> None:
        self.ctx = ctx
        self.conn = conn

    def install(self, app: str, chain_pem: bytes, key_pem: bytes) -> InstalledCert:
        from ..deploy.tls import install_cert  # a stapled certificate: nginx reloads

        return install_cert(self.ctx, app, chain_pem, key_pem, source="acme", conn=self.conn)

    def info(self, app: str) -> InstalledCert | None:
        from ..certs import info

        return info(self.ctx, app, conn=self.conn)

    def key_pem(self, app: str) -> bytes:
        from ..certs import key_pem

        return key_pem(self.ctx, app)

    def cert_pem(self, app: str) -> bytes:
        """The installed leaf certificate (the first of the chain)."""
        from ..certs import chain_pem

        m = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?",
                      chain_pem(self.ctx, app), re.DOTALL)
        if not m:
            raise FailedPrecondition(f"the certificate file of {app} holds no certificate",
                                     f"install one again: paas letsencrypt:enable {app}")
        return m.group(0)

    def remove(self, app: str) -> None:
        from ..certs import remove

        remove(self.ctx, app, conn=self.conn)


@contextlib.contextmanager
def acme_lock(ctx: Context) -> Iterator[None]:
    """One ACME order or renewal of the instance at a time (``PAAS_ROOT/acme/lock``)."""
    with file_lock(os.path.join(acme_dir(ctx), "lock")):
        yield


def _retry_base(env: Mapping[str, str]) -> float:
    value = env.get("PAAS_LETSENCRYPT_RETRY_SECONDS") or ""
    try:
        return max(float(value), 0.1) if value else RETRY_BASE
    except ValueError:
        return RETRY_BASE


def make_renewer(ctx: Context, conn: sqlite3.Connection, env: Mapping[str, str],
                 progress: Progress | None = None) -> Renewer:
    """The production ``Renewer`` of the instance."""
    from ..apps.store import AppStore
    from ..certs import required_domains
    from ..proxy.params import params_from_env, worker_ids
    from .webroot import DirWebroot

    store = AcmeStore(conn)
    settings = store.settings(env)
    params = params_from_env(ctx, env)
    ids = worker_ids(params)
    apps = AppStore(conn)

    def connect() -> CertificateAuthority:
        from .server import connect as connect_server

        return connect_server(ctx, store.settings(env), env)

    def domains_of(app: str) -> list[str]:
        return required_domains(apps.effective_domains(app))

    return Renewer(store, domains_of, CertsSink(ctx, conn), connect,
                   DirWebroot(params.acme_webroot, ids[1] if ids else None),
                   graceperiod=settings.graceperiod, clock=time.time,
                   retry_base=_retry_base(env), progress=progress)


def run_renewals(ctx: Context, conn: sqlite3.Connection, env: Mapping[str, str],
                 apps: Sequence[str] | None = None, *, force: bool = False,
                 progress: Progress | None = None) -> tuple[list[Outcome], float | None]:
    """A renewal run under the lock: the outcomes and the earliest scheduled retry."""
    with acme_lock(ctx):
        renewer = make_renewer(ctx, conn, env, progress)
        return renewer.run(apps, force=force), renewer.next_wake()


def revoke(ctx: Context, conn: sqlite3.Connection, env: Mapping[str, str], app: str,
           progress: Progress) -> None:
    """Revoke the app's ACME certificate at its CA, remove it and stop renewing it."""
    with acme_lock(ctx):
        renewer = make_renewer(ctx, conn, env, progress)
        info = renewer.sink.info(app)
        if info is None:
            raise NotFound(f"{app} has no certificate to revoke")
        if info.source != "acme":
            raise FailedPrecondition(f"the certificate of {app} is a {info.source} one, not "
                                     "from ACME", f"remove it with 'paas certs:remove {app}'")
        progress(f"Revoking the certificate of {app}")
        renewer.ca().revoke(renewer.sink.cert_pem(app))
        renewer.store.set_enabled(app, False)
        progress(f"Removing the certificate of {app} (HTTP is served again)")
        renewer.sink.remove(app)
