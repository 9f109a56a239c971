"""The installed certificates: ``PAAS_ROOT/certs/APP/tls.pem`` and the ``certs`` table.

``tls.pem`` is the one file nginx reads, on every TLS handshake of the app: the
private key, the leaf, then the chain. Its existence also turns on the app's
HTTP->HTTPS redirect. So a change is one atomic rename and never an nginx reload:
``install`` validates everything first (``paas.certs.validate``), writes the new
file aside (``.tls.pem.RANDOM`` in the same dir, fsync), gives it its mode (0640
root:<nginx workers' group>: the workers read it, no other user can), then
``os.replace``s it, inside the database transaction that records its metadata.
A failure before the rename leaves the previous certificate serving and its row
as it was. ``remove`` unlinks the file (plain HTTP again, no redirect) and the row.
A leaf naming an OCSP responder also gets ``ocsp`` and ``chain.pem`` next to it
(``paas.certs.ocsp``): its vhost loads it statically and staples, so changing it is
an nginx reload (``paas.deploy.tls`` does it).

The dirs ``certs/`` and ``certs/APP/`` are 0710 root:<workers' group>. Keys never
reach logs, argv or ``config``. ``apps:destroy`` removes ``certs/APP`` (the row goes
with the app: ON DELETE CASCADE); ``apps:rename`` moves the dir (the row follows).

Not here: parsing and checking PEM (``validate``), issuing (``paas.certs.selfsigned``,
the ACME client), nginx's config (``paas.proxy``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import modes
from ..config import Context
from ..errors import InvalidArgument, NotFound
from . import ocsp

__all__ = ["SOURCES", "CertInfo", "app_domains", "chain_pem", "info", "install", "key_pem",
           "remove", "required_domains"]

log = logging.getLogger(__name__)

SOURCES = ("manual", "acme", "self-signed")
_KEY_RE = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----"
                     rb"\r?\n?", re.DOTALL)


@dataclass(frozen=True)
class CertInfo:
    """What is installed for an app (never the key)."""

    app: str
    source: str  # "manual" | "acme" | "self-signed"
    subject: str
    issuer: str
    domains: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    fingerprint: str  # sha256 hex of the leaf's DER
    installed_at: datetime

    def days_left(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        return int((self.not_after - now).total_seconds() // 86400)


# -- paths and handles -------------------------------------------------------------------

def cert_dir(ctx: Context, app: str) -> str:
    from ..proxy.safe import app_name

    return os.path.join(ctx.paths.certs, app_name(app))


def cert_file(ctx: Context, app: str) -> str:
    return os.path.join(cert_dir(ctx, app), "tls.pem")


def _workers_gid(ctx: Context) -> int | None:
    from ..proxy.params import params_from_env, worker_ids

    ids = worker_ids(params_from_env(ctx))
    return ids[1] if ids is not None else None


@contextlib.contextmanager
def _conn(ctx: Context, conn: sqlite3.Connection | None) -> Iterator[sqlite3.Connection]:
    if conn is not None:
        yield conn
        return
    from ..state.db import connect

    own = connect(ctx.paths.db)
    try:
        yield own
    finally:
        own.close()


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


# -- the app's domains -------------------------------------------------------------------

def app_domains(conn: sqlite3.Connection, app: str) -> list[str]:
    """The domains ``app`` is served on (its own and its default one)."""
    from ..apps.store import AppStore, need_app

    need_app(conn, app)
    return AppStore(conn).effective_domains(app)


def required_domains(domains: list[str]) -> list[str]:
    """The domains a certificate must cover: every one, except ``*.localhost`` names
    when the app has others (no public CA signs those (RFC 6761), and the default
    domain without a global domain is ``APP.localhost``)."""
    public = [d for d in domains if d != "localhost" and not d.endswith(".localhost")]
    return public or domains


# -- queries -----------------------------------------------------------------------------

def info(ctx: Context, app: str, *, conn: sqlite3.Connection | None = None) -> CertInfo | None:
    """The installed certificate's metadata, None when the app has none."""
    with _conn(ctx, conn) as c:
        row = c.execute("SELECT app, source, subject, issuer, domains, not_before, not_after, "
                        "fingerprint, installed_at FROM certs WHERE app = ?", (app,)).fetchone()
    if row is None:
        return None
    return CertInfo(app=str(row[0]), source=str(row[1]), subject=str(row[2]),
                    issuer=str(row[3]), domains=tuple(str(row[4]).split()),
                    not_before=_ts(row[5]), not_after=_ts(row[6]), fingerprint=str(row[7]),
                    installed_at=_ts(row[8]))


def _read(ctx: Context, app: str) -> bytes:
    try:
        with open(cert_file(ctx, app), "rb") as f:
            return f.read()
    except FileNotFoundError as err:
        raise NotFound(f"app {app} has no certificate",
                       f"add one with: paas certs:add {app} CERT.pem KEY.pem") from err


def key_pem(ctx: Context, app: str) -> bytes:
    """The installed private key (PEM): an ACME renewal may reuse it. Never print it."""
    m = _KEY_RE.search(_read(ctx, app))
    if m is None:
        raise NotFound(f"the certificate file of app {app} holds no key",
                       f"add the certificate again: paas certs:add {app} CERT.pem KEY.pem")
    return m.group(0)


def chain_pem(ctx: Context, app: str) -> bytes:
    """The installed certificate chain (PEM), leaf first: the file without its key."""
    return _KEY_RE.sub(b"", _read(ctx, app))


# -- changes -----------------------------------------------------------------------------

def _dirs(ctx: Context, app: str, gid: int | None) -> str:
    """certs/ and certs/APP/: 0710 root:workers (0700 when nginx does not switch users)."""
    os.makedirs(ctx.paths.root, mode=0o711, exist_ok=True)
    for d in (ctx.paths.certs, cert_dir(ctx, app)):
        if not os.path.isdir(d):
            with contextlib.suppress(FileExistsError):
                modes.private_bundle_dir(d, gid)
    return cert_dir(ctx, app)


def _write_aside(directory: str, data: bytes, gid: int | None) -> str:
    """A new file next to ``tls.pem`` holding ``data``, synced, with its final mode."""
    tmp = os.path.join(directory, f".tls.pem.{secrets.token_hex(6)}")
    fd = modes.create(tmp, os.O_WRONLY | os.O_EXCL)  # 0600 root from the first byte
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if gid is not None:
                os.fchown(f.fileno(), 0, gid)
                os.fchmod(f.fileno(), modes.WORKERS_FILE)
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install(ctx: Context, app: str, chain: bytes, key: bytes, *, source: str,
            conn: sqlite3.Connection | None = None, now: datetime | None = None) -> CertInfo:
    """Validate ``chain`` (leaf first) and ``key`` for the app's domains, then install
    them; ``InvalidArgument`` (one line, nothing changed) when they do not fit."""
    from .validate import check

    if source not in SOURCES:
        raise InvalidArgument(f"unknown certificate source {source!r}",
                              "use " + ", ".join(SOURCES))
    now = now or datetime.now(UTC)
    with _conn(ctx, conn) as c:
        domains = app_domains(c, app)
        if not domains:
            raise InvalidArgument(f"app {app} has no domains, so no certificate can cover it",
                                  f"add one first: paas domains:add {app} DOMAIN")
        checked = check(chain, key, required_domains(domains), now)
        gid = _workers_gid(ctx)
        directory = _dirs(ctx, app, gid)
        tmp = _write_aside(directory, checked.pem, gid)
        installed = time.time()
        try:
            from ..state.db import transaction

            with transaction(c):
                c.execute("INSERT OR REPLACE INTO certs (app, source, subject, issuer, domains, "
                          "not_before, not_after, fingerprint, installed_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (app, source, checked.subject, checked.issuer,
                           " ".join(checked.domains), checked.not_before.timestamp(),
                           checked.not_after.timestamp(), checked.fingerprint, installed))
                os.replace(tmp, os.path.join(directory, "tls.pem"))
                ocsp.write(directory, checked.chain_pem, checked.fingerprint)  # a responder: staple it
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_dir(directory)
    log.info("installed a %s certificate for %s (%s, until %s)", source, app,
             " ".join(checked.domains), checked.not_after.isoformat())
    return CertInfo(app=app, source=source, subject=checked.subject, issuer=checked.issuer,
                    domains=checked.domains, not_before=checked.not_before,
                    not_after=checked.not_after, fingerprint=checked.fingerprint,
                    installed_at=_ts(installed))


def remove(ctx: Context, app: str, *, conn: sqlite3.Connection | None = None) -> None:
    """Uninstall the app's certificate (HTTPS fails its handshakes, HTTP stops
    redirecting); ``NotFound`` when it has none."""
    path = cert_file(ctx, app)
    with _conn(ctx, conn) as c:
        from ..apps.store import need_app
        from ..state.db import transaction

        need_app(c, app)
        with transaction(c):
            gone = c.execute("DELETE FROM certs WHERE app = ?", (app,)).rowcount
            ocsp.forget(os.path.dirname(path))
            try:
                os.unlink(path)
            except FileNotFoundError:
                if not gone:
                    raise NotFound(f"app {app} has no certificate",
                                   f"add one with: paas certs:add {app} CERT.pem KEY.pem"
                                   ) from None
    with contextlib.suppress(FileNotFoundError):
        _fsync_dir(os.path.dirname(path))
    log.info("removed the certificate of %s", app)
