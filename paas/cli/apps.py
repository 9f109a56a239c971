"""App registry commands: ``apps:create/list/info``, ``config``, ``config:get``,
``domains*``, ``git:set``, ``settings*``: parse, call ``paas.apps``, render like Dokku.

Every argument is validated before the state database is opened, so bad input
exits 2 with one line and writes nothing.

Not here: commands that need a release or a restart (``config:set``/``unset``,
``apps:destroy``/``rename``, ``ps:scale``): ``paas.deploy`` owns those.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..apps.settings import SETTINGS, validate_setting, validate_setting_key
from ..apps.validate import (
    validate_app_name,
    validate_branch_name,
    validate_config_key,
    validate_domain,
)
from .render import emit_json, human_ago, table

if TYPE_CHECKING:
    from ..acme.model import AppState
    from ..apps.store import AppRecord, AppStore
    from .main import App, Handler
    from .parser import Parser

__all__ = ["config_lines", "configure", "letsencrypt_field", "push_hint", "report_lines",
           "shell_exports", "shell_quote"]


def _store(app: App) -> AppStore:
    from ..apps.store import AppStore

    return AppStore(app.conn)


# -- pure renderers ---------------------------------------------------------------
def shell_quote(value: str) -> str:
    """POSIX single quotes: every byte literal, ``'`` as ``'\\''``."""
    return "'" + value.replace("'", "'\\''") + "'"


def shell_exports(config: Mapping[str, str]) -> str:
    return "".join(f"export {k}={shell_quote(v)}\n" for k, v in config.items())


def config_lines(config: Mapping[str, str]) -> list[str]:
    """Dokku's ``config:show`` body: ``KEY:`` padded to one column, then the value;
    continuation lines of multi-line values are indented to that column."""
    width = max((len(k) for k in config), default=0) + 1
    lines = []
    for key, value in config.items():
        first, *rest = value.split("\n")
        lines.append(f"{key + ':':<{width}}  {first}".rstrip(" "))
        lines.extend(" " * (width + 2) + cont for cont in rest)
    return lines


def report_lines(title: str, fields: list[tuple[str, str]]) -> list[str]:
    """Dokku's ``*:report`` layout: a ``=====>`` title, then aligned ``Label: value`` rows."""
    width = max((len(k) for k, _ in fields), default=0) + 1
    return [f"=====> {title}"] + [f"       {k + ':':<{width}} {v}".rstrip() for k, v in fields]


def letsencrypt_field(state: AppState | None) -> str:
    """``apps:info``'s Letsencrypt row: off, on, or on with the failing renewal's error."""
    if state is None or not state.enabled:
        return "off"
    return f"on (renewal failing: {state.last_error})" if state.last_error else "on"


def push_hint(app_name: str, host: str) -> str:
    return f"git remote add paas paas@{host}:{app_name}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _info(store: AppStore, rec: AppRecord) -> dict[str, Any]:
    return {
        "name": rec.name,
        "created": _iso(rec.created),
        "domains": store.effective_domains(rec.name),
        "deploy_branch": rec.setting("deploy-branch"),
        "config_vars": len(store.config(rec.name)),
        "settings": dict(rec.settings),
    }


# -- handlers ---------------------------------------------------------------------
def _create(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    _store(app).create(a.app)
    host = os.environ.get("PAAS_SSH_HOST") or socket.getfqdn()
    print(f"-----> Creating {a.app}... done")
    print(f"       To deploy: {push_hint(a.app, host)} && git push paas main")
    return 0


def _list(app: App, a: argparse.Namespace) -> int:
    store = _store(app)
    records = store.list()
    if a.format == "json":
        emit_json([{"name": r.name, "created": _iso(r.created),
                    "domains": store.effective_domains(r.name)} for r in records])
        return 0
    table(["NAME", "CREATED", "DOMAINS"],
          [[r.name, human_ago(r.created), ",".join(store.effective_domains(r.name))]
           for r in records])
    return 0


def _app_info(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    store = _store(app)
    info = _info(store, store.get(a.app))
    from .locks import lock_fields, lock_info

    info["deploy_lock"] = lock_info(app, a.app)
    from ..apps.idmaps import IdMaps

    idmap = IdMaps(app.ctx, app.conn).lookup(a.app)  # None: none yet (its first build)
    info["id_range"] = (None if idmap is None else
                        {"host_id": idmap.host_id, "size": idmap.size,
                         "shared": IdMaps(app.ctx, app.conn).shared(a.app)})
    from ..acme.store import AcmeStore

    acme = AcmeStore(app.conn).get(a.app)
    info["letsencrypt"] = {"enabled": bool(acme and acme.enabled),
                           "last_error": acme.last_error if acme else ""}
    if a.format == "json":
        emit_json(info)
        return 0
    ids = "-" if idmap is None else f"{idmap.host_id}-{idmap.host_id + idmap.size - 1}"
    if info["id_range"] and info["id_range"]["shared"]:
        ids += " (shared; its own from its next deploy)"
    fields = [("App name", info["name"]), ("Created", info["created"]),
              ("Domains", " ".join(info["domains"])), ("Deploy branch", info["deploy_branch"]),
              ("Config vars", str(info["config_vars"])), ("Id range", ids),
              ("Letsencrypt", letsencrypt_field(acme)), *lock_fields(info["deploy_lock"])]
    print("\n".join(report_lines(f"{a.app} app information", fields)))
    return 0


def _config(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    config = _store(app).config(a.app)
    if a.format == "json":
        emit_json(config)
    elif a.format == "shell":
        sys.stdout.write(shell_exports(config))
    else:
        print("\n".join([f"=====> {a.app} env vars", *config_lines(config)]))
    return 0


def _config_get(app: App, a: argparse.Namespace) -> int:
    from ..errors import NotFound

    validate_app_name(a.app)
    validate_config_key(a.key)
    config = _store(app).config(a.app)
    if a.key not in config:
        raise NotFound(f"config var {a.key} is not set for app {a.app}",
                       f"list them with: paas config {a.app}")
    sys.stdout.write(config[a.key] + "\n")
    return 0


def _domains(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    store = _store(app)
    own = store.domains(a.app)
    glob = store.global_domain()
    default = store.setting(a.app, "default-domain") == "on"
    effective = store.effective_domains(a.app)
    if a.format == "json":
        emit_json({"app": a.app, "domains": own, "default": default, "effective": effective,
                   "global": glob})
        return 0
    fields = [("Domains app vhosts", " ".join(own) or "(none)"),
              ("Domains default vhost", " ".join(store.default_domains(a.app))
               + ("" if default else " (off)")),
              ("Domains effective", " ".join(effective) or "(none: not served)"),
              ("Domains global vhost", glob or "(none)")]
    print("\n".join(report_lines(f"{a.app} domains information", fields)))
    return 0


def _domains_change(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    from ..apps.domains import notes

    domains = [validate_domain(d) for d in a.domains]
    store = _store(app)
    before = store.claims() if a.op != "remove" else {}
    if a.op == "add":
        store.add_domains(a.app, domains)
        print(f"-----> Added {' '.join(domains)} to {a.app}")
    elif a.op == "remove":
        store.remove_domains(a.app, domains)
        print(f"-----> Removed {' '.join(domains)} from {a.app}")
    else:
        now = store.set_domains(a.app, domains)
        print(f"-----> Set {' '.join(now) or '(the default domain)'} for {a.app}")
    for note in notes(a.app, domains, before):
        print(f"       Note: {note}")
    if a.op in ("add", "set"):
        from .certs import warn_uncovered

        warn_uncovered(app, a.app, domains)
    # an exact name taken from another app's wildcard changes nothing in that app's
    # vhost (nginx picks the exact name): only this app's is rewritten
    _reroute(app, [a.app])
    return 0


def _reroute(app: App, names: list[str]) -> None:
    """Domains changed: the apps' nginx vhosts follow (no restart)."""
    from ..deploy.push import make_deployer

    d = make_deployer(app.ctx, print, need_daemon=False)
    for name in names:
        with d.locked(name):
            d.reroute(name)


def _set_global(app: App, a: argparse.Namespace) -> int:
    from ..apps.store import AppStore

    if a.domain is None:
        AppStore(app.conn).set_global_domain(None)
        print("-----> Cleared the global domain")
    else:
        validate_domain(a.domain)
        domain = AppStore(app.conn).set_global_domain(a.domain)
        print(f"-----> Set global domain to {domain}")
    store = AppStore(app.conn)
    _reroute(app, [r.name for r in store.list()
                   if store.setting(r.name, "default-domain") == "on"])
    return 0


def _git_set(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    store = _store(app)
    if a.value is None:
        store.unset_setting(a.app, "deploy-branch")
        print(f"-----> Unset deploy-branch for {a.app}")
        return 0
    validate_branch_name(a.value)
    print(f"-----> Set deploy-branch to {store.set_setting(a.app, 'deploy-branch', a.value)}"
          f" for {a.app}")
    return 0


def _settings(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    stored = _store(app).settings(a.app)
    keys = list(dict.fromkeys([*SETTINGS, *sorted(stored)]))
    rows: list[dict[str, Any]] = [
        {"key": k, "value": stored.get(k, validate_setting_key(k).default),
         "default": validate_setting_key(k).default, "set": k in stored} for k in keys]
    if a.format == "json":
        emit_json(rows)
        return 0
    table(["KEY", "VALUE", "DEFAULT"], [[r["key"], r["value"], r["default"]] for r in rows])
    return 0


def _settings_set(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    validate_setting(a.key, a.value)
    value = _store(app).set_setting(a.app, a.key, a.value)
    print(f"-----> Set {a.key} to {value} for {a.app}")
    return 0


def _settings_unset(app: App, a: argparse.Namespace) -> int:
    validate_app_name(a.app)
    validate_setting_key(a.key)
    _store(app).unset_setting(a.app, a.key)
    print(f"-----> Unset {a.key} for {a.app}")
    return 0


def _app_arg(p: Parser) -> None:
    p.add_argument("app", metavar="APP")


def _format_arg(p: Parser, *extra: str) -> None:
    p.add_argument("--format", choices=["table", *extra, "json"], default="table")


def configure(name: str, p: Parser) -> Handler:
    if name == "apps:create":
        _app_arg(p)
        return _create
    if name == "apps:list":
        _format_arg(p)
        return _list
    if name == "apps:info":
        _app_arg(p)
        _format_arg(p)
        return _app_info
    if name in ("config", "config:show"):
        _app_arg(p)
        _format_arg(p, "shell")
        return _config
    if name == "config:get":
        _app_arg(p)
        p.add_argument("key", metavar="KEY")
        return _config_get
    if name == "domains":
        _app_arg(p)
        _format_arg(p)
        return _domains
    if name in ("domains:add", "domains:remove", "domains:set"):
        _app_arg(p)
        nargs = "*" if name == "domains:set" else "+"
        p.add_argument("domains", nargs=nargs, metavar="DOMAIN",
                       help="none with domains:set: back to the default APP.<global domain>")
        p.set_defaults(op=name.split(":")[1])
        return _domains_change
    if name == "domains:set-global":
        p.add_argument("domain", metavar="DOMAIN", help="apps get APP.DOMAIN by default")
        return _set_global
    if name == "domains:clear-global":
        p.set_defaults(domain=None)
        return _set_global
    if name == "git:set":
        _app_arg(p)
        p.add_argument("key", choices=["deploy-branch"], metavar="deploy-branch")
        p.add_argument("value", nargs="?", metavar="BRANCH", help="omit to reset to main")
        return _git_set
    if name == "settings":
        _app_arg(p)
        _format_arg(p)
        return _settings
    if name == "settings:set":
        _app_arg(p)
        p.add_argument("key", metavar="KEY", help=f"one of: {', '.join(SETTINGS)}, nginx.<key>")
        p.add_argument("value", metavar="VALUE")
        return _settings_set
    if name == "settings:unset":
        _app_arg(p)
        p.add_argument("key", metavar="KEY")
        return _settings_unset
    raise KeyError(name)
