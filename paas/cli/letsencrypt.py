"""``letsencrypt:*`` (Dokku's names): ACME certificates for apps over HTTP-01.

``letsencrypt:set --global KEY [VALUE]`` (email, server, graceperiod; no value
unsets), ``letsencrypt:enable APP`` (issue now, then renew automatically),
``letsencrypt:disable APP``, ``letsencrypt:active APP``, ``letsencrypt:list``
(``--format json``), ``letsencrypt:auto-renew [APP]``, ``letsencrypt:revoke APP``.
Arguments are validated before anything is opened; ``acme`` and ``cryptography``
are imported only by the commands that talk to a CA. Not here: the sequence
(``paas.acme``).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, NotFound
from .render import emit_json, table

if TYPE_CHECKING:
    from ..acme.model import AppState, InstalledCert
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "list_rows"]


def _progress(line: str) -> None:
    sys.stdout.write(f"-----> {line}\n")
    sys.stdout.flush()


def _need_app(app: App, name: str) -> None:
    from ..apps.store import AppStore
    from ..apps.validate import validate_app_name

    validate_app_name(name)
    if not AppStore(app.conn).exists(name):
        raise NotFound(f"app {name!r} does not exist", "list apps with 'paas apps:list'")


def _set(app: App, a: argparse.Namespace) -> int:
    from ..acme.store import SETTING_KEYS, AcmeStore

    if not a.glob:
        raise InvalidArgument("letsencrypt settings are instance-wide here",
                              "use 'paas letsencrypt:set --global KEY VALUE'")
    if not a.args or len(a.args) > 2:
        raise InvalidArgument("letsencrypt:set --global takes KEY and an optional VALUE",
                              "e.g. paas letsencrypt:set --global email admin@example.com")
    key, value = a.args[0], (a.args[1] if len(a.args) == 2 else None)
    if key not in SETTING_KEYS:
        raise InvalidArgument(f"unknown letsencrypt setting {key!r}",
                              "valid keys: " + ", ".join(SETTING_KEYS))
    if value is None:
        AcmeStore(app.conn).unset_setting(key)
        _progress(f"Unsetting {key}")
        return 0
    value = SETTING_KEYS[key](value)  # validated before the state database is opened
    AcmeStore(app.conn).set_setting(key, value)
    _progress(f"Setting {key} to {value}")
    return 0


def _enable(app: App, a: argparse.Namespace) -> int:
    from ..acme.ops import acme_lock, make_renewer
    from ..acme.store import AcmeStore

    _need_app(app, a.app)
    settings = AcmeStore(app.conn).settings(os.environ)
    if not settings.email:
        raise InvalidArgument("cannot request a certificate without an email address",
                              "set one: paas letsencrypt:set --global email ADDR")
    _progress(f"Enabling letsencrypt for {a.app} ({settings.server})")
    with acme_lock(app.ctx):
        renewer = make_renewer(app.ctx, app.conn, os.environ, _progress)
        cert = renewer.issue(a.app)
    _progress(f"Certificate installed for {', '.join(cert.domains)}, "
              f"valid until {cert.not_after:%Y-%m-%d %H:%M} UTC")
    return 0


def _disable(app: App, a: argparse.Namespace) -> int:
    from ..acme.ops import CertsSink, acme_lock
    from ..acme.store import AcmeStore

    _need_app(app, a.app)
    store = AcmeStore(app.conn)
    state = store.get(a.app)
    if state is None or not state.enabled:
        raise NotFound(f"letsencrypt is not enabled for {a.app}")
    with acme_lock(app.ctx):
        store.set_enabled(a.app, False)
        sink = CertsSink(app.ctx, app.conn)
        info = sink.info(a.app)
        if info is not None and info.source == "acme":
            sink.remove(a.app)
            _progress(f"Removed the certificate of {a.app} (HTTP is served again)")
    _progress(f"Disabled letsencrypt for {a.app}")
    return 0


def _active(app: App, a: argparse.Namespace) -> int:
    from ..acme.store import AcmeStore

    _need_app(app, a.app)
    state = AcmeStore(app.conn).get(a.app)
    active = state is not None and state.enabled
    print("true" if active else "false")
    return 0


def _iso(ts: datetime | float | None) -> str | None:
    if ts is None:
        return None
    if isinstance(ts, float | int):
        ts = datetime.fromtimestamp(ts, UTC)
    return ts.astimezone(UTC).isoformat(timespec="seconds")


def list_rows(states: list[AppState], certs: dict[str, InstalledCert | None],
              graceperiod: int, now: datetime) -> list[dict[str, Any]]:
    """Pure: one dict per app for ``letsencrypt:list``."""
    from ..acme.renew import renew_at

    rows = []
    for s in states:
        cert = certs.get(s.app)
        nxt: datetime | None = None
        if s.enabled:
            nxt = renew_at(cert, graceperiod) if cert is not None else now
            if s.next_attempt is not None:
                nxt = max(nxt, datetime.fromtimestamp(s.next_attempt, UTC))
        rows.append({
            "app": s.app,
            "enabled": s.enabled,
            "domains": list(cert.domains) if cert else [],
            "source": cert.source if cert else None,
            "expiry": _iso(cert.not_after) if cert else None,
            "days_left": (cert.not_after - now).days if cert else None,
            "next_renewal": _iso(nxt),
            "failures": s.failures,
            "last_error": s.last_error,
            "last_success": _iso(s.last_success),
        })
    return rows


def _list(app: App, a: argparse.Namespace) -> int:
    from ..acme.ops import CertsSink
    from ..acme.store import AcmeStore

    store = AcmeStore(app.conn)
    states = store.list()
    sink = CertsSink(app.ctx, app.conn)
    certs = {s.app: sink.info(s.app) for s in states}
    rows = list_rows(states, certs, store.settings(os.environ).graceperiod, datetime.now(UTC))
    if a.format == "json":
        emit_json(rows)
        return 0
    table(["APP", "DOMAINS", "EXPIRY", "DAYS LEFT", "NEXT RENEWAL", "LAST ERROR"],
          [[r["app"] + ("" if r["enabled"] else " (disabled)"), ",".join(r["domains"]) or "-",
            (r["expiry"] or "-")[:16].replace("T", " "),
            "-" if r["days_left"] is None else str(r["days_left"]),
            (r["next_renewal"] or "-")[:16].replace("T", " "), r["last_error"] or "-"]
           for r in rows])
    return 0


def _auto_renew(app: App, a: argparse.Namespace) -> int:
    from ..acme.ops import run_renewals

    if a.app:
        _need_app(app, a.app)
    outcomes, _ = run_renewals(app.ctx, app.conn, os.environ, [a.app] if a.app else None,
                               force=True, progress=_progress)
    failed = [o for o in outcomes if o.result == "failed"]
    if a.app and failed:
        from ..errors import FailedPrecondition

        raise FailedPrecondition(f"renewal of {a.app} failed: {failed[0].detail}",
                                 "the current certificate keeps serving")
    for o in outcomes:
        if o.result == "failed":
            sys.stderr.write(f" !     {o.app}: renewal failed: {o.detail}\n")
        else:
            print(f"       {o.app}: {o.result}" + (f" ({o.detail})" if o.detail else ""))
    if not outcomes:
        print("       no app has letsencrypt enabled")
    return 1 if failed else 0


def _revoke(app: App, a: argparse.Namespace) -> int:
    from ..acme.ops import revoke

    _need_app(app, a.app)
    revoke(app.ctx, app.conn, os.environ, a.app, _progress)
    _progress(f"Revoked; letsencrypt is disabled for {a.app}")
    return 0


def configure(name: str, p: Parser) -> Handler:
    if name == "letsencrypt:set":
        p.add_argument("--global", dest="glob", action="store_true",
                       help="an instance-wide setting (the only kind)")
        p.add_argument("args", nargs="*", metavar="KEY [VALUE]",
                       help="email, server (URL, staging or production), graceperiod "
                            "(seconds before expiry to renew); no VALUE unsets the key")
        return _set
    if name == "letsencrypt:list":
        p.add_argument("--format", choices=["table", "json"], default="table")
        return _list
    if name == "letsencrypt:auto-renew":
        p.add_argument("app", nargs="?", default="", metavar="APP",
                       help="only this app (default: every app with letsencrypt enabled)")
        return _auto_renew
    p.add_argument("app", metavar="APP")
    return {"letsencrypt:enable": _enable, "letsencrypt:disable": _disable,
            "letsencrypt:active": _active, "letsencrypt:revoke": _revoke}[name]
