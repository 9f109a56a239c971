"""``certs:*``: an app's TLS certificate (``paas.certs``), like Dokku's certs plugin.

- ``certs:add APP CERT.pem KEY.pem``, or ``certs:add APP < certs.tar`` (a tar holding
  ``server.crt`` and ``server.key``); ``certs:update`` is the same.
- ``certs:generate APP [DOMAIN]``: a self-signed certificate for the app's domains
  (and DOMAIN first, when given), installed at once.
- ``certs:show APP``: the certificate chain (PEM), never the key.
- ``certs:report APP [--format json]``: issuer, domains, expiry, days left, source,
  fingerprint, OCSP stapling.
- ``certs:remove APP``: back to plain HTTP (no redirect; HTTPS handshakes fail).

A certificate is checked before anything changes (key, chain order, dates, the app's
domains): a bad one is one line and exit 2, the previous one keeps serving. nginx
is not reloaded: it reads the file on every handshake; except a certificate naming
an OCSP responder, which nginx loads itself to staple: a change of one (to or from
it) re-renders the app's vhost and reloads nginx gracefully (``paas.deploy.tls``). Exit codes: 0 ok,
2 invalid certificate or arguments, 3 no such app or no certificate.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..certs import CertInfo
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "warn_uncovered"]

_MAX_INPUT = 1 << 20  # a certificate chain or key is a few kB


def configure(name: str, p: Parser) -> Handler:
    p.add_argument("app", metavar="APP")
    if name in ("certs:add", "certs:update"):
        p.add_argument("cert", metavar="CERT.pem", nargs="?",
                       help="the certificate chain, leaf first (or a tar on stdin)")
        p.add_argument("key", metavar="KEY.pem", nargs="?", help="its private key")
        return _add
    if name == "certs:generate":
        p.add_argument("domain", metavar="DOMAIN", nargs="?",
                       help="a name for the certificate besides the app's domains")
        return _generate
    if name == "certs:report":
        p.add_argument("--format", choices=["table", "json"], default="table")
        return _report
    return {"certs:show": _show, "certs:remove": _remove}[name]


def _read(path: str, what: str) -> bytes:
    from ..errors import InvalidArgument, NotFound

    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_INPUT + 1)
    except FileNotFoundError as err:
        raise NotFound(f"{what} file {path} does not exist", "give the path of a PEM file") from err
    except IsADirectoryError as err:
        raise InvalidArgument(f"{what} file {path} is a directory",
                              "give the path of a PEM file") from err
    if len(data) > _MAX_INPUT:
        raise InvalidArgument(f"{what} file {path} is larger than 1 MiB",
                              "give the PEM file itself")
    return data


def _stdin_tar() -> bytes:
    from ..errors import InvalidArgument

    if sys.stdin is None or sys.stdin.isatty():
        raise InvalidArgument("give CERT.pem and KEY.pem, or a tar on standard input",
                              "e.g. paas certs:add APP server.crt server.key, or "
                              "tar cf - server.crt server.key | paas certs:add APP")
    data = sys.stdin.buffer.read(16 * _MAX_INPUT + 1)
    if len(data) > 16 * _MAX_INPUT:
        raise InvalidArgument("the tar on standard input is larger than 16 MiB",
                              "put only server.crt and server.key in it")
    return data


def _installed(info: CertInfo, what: str) -> None:
    sys.stdout.write(f"-----> Installed {what} of {info.app}: {' '.join(info.domains)}, "
                     f"until {info.not_after:%Y-%m-%d} ({info.source})\n")


def _add(app: App, a: argparse.Namespace) -> int:
    from ..apps.validate import validate_app_name
    from ..deploy.tls import install_cert
    from ..errors import InvalidArgument

    validate_app_name(a.app)
    if a.cert is None:
        from ..certs.bundle import from_tar

        chain, key = from_tar(_stdin_tar())
    elif a.key is None:
        raise InvalidArgument("give both CERT.pem and KEY.pem",
                              f"e.g. paas certs:add {a.app} server.crt server.key")
    else:
        chain, key = _read(a.cert, "certificate"), _read(a.key, "key")
    _installed(install_cert(app.ctx, a.app, chain, key, source="manual", conn=app.conn,
                             say=_say),
               "the certificate")
    return 0


def _generate(app: App, a: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from .. import certs
    from ..apps.validate import validate_app_name, validate_domain
    from ..certs.names import covers
    from ..certs.selfsigned import generate
    from ..deploy.tls import install_cert

    validate_app_name(a.app)
    domains = certs.app_domains(app.conn, a.app)
    names = [validate_domain(a.domain)] if a.domain else []
    # public names first: the first is the subject's common name
    names += [d for d in certs.required_domains(domains) + domains if not covers(names, d)]
    names = list(dict.fromkeys(names))
    chain, key = generate(names, datetime.now(UTC))
    info = install_cert(app.ctx, a.app, chain, key, source="self-signed", conn=app.conn,
                        say=_say)
    _installed(info, "a new self-signed certificate")
    sys.stdout.write(f"       Clients trust it once told to: paas certs:show {a.app} > "
                     f"{a.app}.crt; curl --cacert {a.app}.crt ...\n")
    return 0


def _show(app: App, a: argparse.Namespace) -> int:
    from .. import certs
    from ..apps.store import need_app

    need_app(app.conn, a.app)
    sys.stdout.buffer.write(certs.chain_pem(app.ctx, a.app))
    sys.stdout.flush()
    return 0


def _report(app: App, a: argparse.Namespace) -> int:
    from .. import certs
    from ..apps.store import need_app
    from .apps import report_lines
    from .render import emit_json

    need_app(app.conn, a.app)
    info = certs.info(app.ctx, a.app, conn=app.conn)
    doc: dict[str, Any] = {"app": a.app, "enabled": info is not None}
    if info is not None:
        doc.update(source=info.source, subject=info.subject, issuer=info.issuer,
                   domains=list(info.domains), not_before=_iso(info.not_before),
                   not_after=_iso(info.not_after), days_left=info.days_left(),
                   fingerprint=info.fingerprint, installed_at=_iso(info.installed_at),
                   file=certs.store.cert_file(app.ctx, a.app),
                   ocsp_stapling=_stapling(app, a.app))
    from ..acme.store import AcmeStore
    from .apps import letsencrypt_field

    acme = AcmeStore(app.conn).get(a.app)  # ACME renewal state (paas.acme)
    doc["letsencrypt"] = {"enabled": bool(acme and acme.enabled),
                          "last_error": acme.last_error if acme else ""}
    if a.format == "json":
        emit_json(doc)
        return 0
    fields = [("Ssl enabled", "true" if info else "false")]
    if info is not None:
        fields += [("Ssl source", info.source), ("Ssl subject", info.subject),
                   ("Ssl issuer", info.issuer), ("Ssl hostnames", " ".join(info.domains)),
                   ("Ssl starts at", doc["not_before"]), ("Ssl expires at", doc["not_after"]),
                   ("Ssl days left", str(info.days_left())),
                   ("Ssl fingerprint", f"sha256:{info.fingerprint}"),
                   ("Ssl installed at", doc["installed_at"])]
    if info is not None:
        fields.append(("Ssl ocsp stapling", _stapling_field(doc["ocsp_stapling"])))
    fields.append(("Ssl letsencrypt", letsencrypt_field(acme)))
    print("\n".join(report_lines(f"{a.app} ssl information", fields)))
    return 0


def _stapling(app: App, name: str) -> dict[str, Any]:
    """Whether nginx staples the app's certificate: it must name an OCSP responder (then
    nginx loads it at reload, so changing it reloads nginx) and the app not opt out."""
    from ..apps.store import AppStore
    from ..deploy.tls import stapled
    from ..proxy.params import params_from_env

    url = stapled(app.ctx, name) or ""
    off = AppStore(app.conn).settings(name).get("nginx.ocsp-stapling") == "false"
    https = bool(params_from_env(app.ctx).https_port)
    return {"enabled": bool(url) and not off and https, "responder": url,
            "opted_out": bool(url and off)}


def _stapling_field(s: dict[str, Any]) -> str:
    if s["enabled"]:
        return f"yes ({s['responder']}; a change of it reloads nginx gracefully)"
    if s["responder"] and not s["opted_out"]:
        return f"no (PAAS_HTTPS_PORT is off; {s['responder']})"
    if s["opted_out"]:
        return f"no (nginx:set ocsp-stapling false: loaded per handshake; {s['responder']})"
    return "no (no responder: loaded per handshake)"


def _iso(value: Any) -> str:
    return str(value.isoformat(timespec="seconds").replace("+00:00", "Z"))


def _remove(app: App, a: argparse.Namespace) -> int:
    from ..deploy.tls import remove_cert

    remove_cert(app.ctx, a.app, conn=app.conn, say=_say)
    sys.stdout.write(f"-----> Removed the certificate of {a.app}: plain HTTP, no redirect\n")
    return 0


def warn_uncovered(app: App, name: str, added: list[str]) -> None:
    """``domains:add``: one line on stderr when the installed certificate does not cover
    an added domain (the domain is added all the same)."""
    from ..certs import info
    from ..certs.names import uncovered

    cert = info(app.ctx, name, conn=app.conn)
    if cert is None:
        return
    missing = [d for d in uncovered(cert.domains, added)
               if d != "localhost" and not d.endswith(".localhost")]
    if missing:
        sys.stderr.write(f"warning: the certificate of {name} does not cover "
                         f"{', '.join(missing)}: HTTPS fails for "
                         f"{'it' if len(missing) == 1 else 'them'} until one that does is "
                         f"installed (paas certs:add {name} ...)\n")


def _say(line: str) -> None:
    """A deploy step's progress line (a stapled certificate's vhost and reload)."""
    sys.stdout.write(line + "\n")
