"""``network:set`` and ``network:report`` (Dokku's names): an app's network opt-ins.

The only key is ``allow-link-local``: whether the app's process containers may reach
169.254.0.0/16 (the cloud metadata service and other link-local addresses), which the
bridge refuses by default. Like mounts and limits it is read when containers are
created, so a change applies at the next deploy or restart. Thin: validate, store
through ``paas.apps``, render.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import InvalidArgument

if TYPE_CHECKING:
    from .main import App, Handler
    from .parser import Parser

__all__ = ["KEYS", "configure"]

KEYS = ("allow-link-local",)


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _set(app: App, a: argparse.Namespace) -> int:
    from ..apps.settings import validate_setting
    from ..apps.store import AppStore, need_app

    if a.key not in KEYS:
        raise InvalidArgument(f"unknown network setting {a.key[:80]!r}",
                              f"the only one is {', '.join(KEYS)}")
    store = AppStore(app.conn)
    if a.value is None:
        need_app(app.conn, a.app)
        store.unset_setting(a.app, a.key)
        _out(f"-----> Reset {a.key} of {a.app} to the default ({store.setting(a.app, a.key)})")
    else:
        validate_setting(a.key, a.value)
        need_app(app.conn, a.app)
        value = store.set_setting(a.app, a.key, a.value)
        _out(f"-----> Setting {a.key} to {value} for {a.app}")
    _out(f"       Takes effect at the next deploy or restart: paas ps:restart {a.app}")
    return 0


def _report(app: App, a: argparse.Namespace) -> int:
    from ..apps.store import AppStore, need_app
    from .apps import report_lines
    from .render import emit_json

    need_app(app.conn, a.app)
    store = AppStore(app.conn)
    values = {key: store.setting(a.app, key) for key in KEYS}
    if a.format == "json":
        emit_json({k.replace("-", "_"): v == "true" for k, v in values.items()})
        return 0
    fields = [("Allow link local", values["allow-link-local"])]
    _out("\n".join(report_lines(f"{a.app} network information", fields)))
    return 0


def configure(name: str, p: Parser) -> Handler:
    p.add_argument("app", metavar="APP")
    if name == "network:set":
        p.add_argument("key", metavar="KEY", help=", ".join(KEYS))
        p.add_argument("value", nargs="?", metavar="VALUE",
                       help="true or false; none: the default (false)")
        return _set
    p.add_argument("--format", choices=["table", "json"], default="table")
    return _report
