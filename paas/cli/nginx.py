"""``nginx:*``: the instance's own nginx (``paas.proxy``).

- ``nginx:show-config APP``: print the app's installed vhost.
- ``nginx:validate``: ``nginx -t`` of the live config (exit 2 with nginx's message).
- ``nginx:reload``: graceful reload (starts nginx when it is not running).
- ``nginx:start``: write the main config and start nginx (no-op when running).
- ``nginx:stop``: stop nginx (graceful, then forced); configs stay for the next start.

Listener: ``PAAS_HTTP_ADDR`` (default 0.0.0.0) and ``PAAS_HTTP_PORT`` (default 80).
Exit codes: 0 ok, 2 invalid config, 3 no config for the app, 5 nginx missing or
not set up, 6 nginx failed. ``nginx:set`` lives elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..proxy import Proxy
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure"]


def configure(name: str, parser: Parser) -> Handler:
    if name == "nginx:set":
        parser.add_argument("app", metavar="APP")
        parser.add_argument("key", metavar="KEY", help="e.g. client-max-body-size")
        parser.add_argument("value", metavar="VALUE", nargs="?",
                            help="the value; leave out to go back to the default")
        return set_setting
    if name == "nginx:show-config":
        parser.add_argument("app", help="the app whose vhost to print")
        return show_config
    if name == "nginx:stop":
        parser.add_argument("--timeout", type=float, default=10.0,
                            help="seconds of graceful shutdown before forcing (default 10)")
        return stop
    return {"nginx:validate": validate, "nginx:reload": reload,
            "nginx:start": start}[name]


def set_setting(app: App, args: argparse.Namespace) -> int:
    """Store an nginx setting of an app and apply it at once (no restart)."""
    from ..apps.store import AppStore
    from ..apps.validate import validate_app_name
    from ..deploy.push import make_deployer
    from ..errors import InvalidArgument
    from ..proxy import NGINX_SETTINGS, validate_setting

    validate_app_name(args.app)
    store = AppStore(app.conn)
    store.get(args.app)
    if args.key not in NGINX_SETTINGS:
        raise InvalidArgument(f"unknown nginx setting {args.key!r}",
                              "known settings: " + ", ".join(sorted(NGINX_SETTINGS)))
    if args.value is None:
        store.unset_setting(args.app, f"nginx.{args.key}")
        sys.stdout.write(f"-----> Unset nginx {args.key} of {args.app}\n")
    else:
        validate_setting(args.key, args.value)
        store.set_setting(args.app, f"nginx.{args.key}", args.value)
        sys.stdout.write(f"-----> Set nginx {args.key} of {args.app} to {args.value}\n")
    d = make_deployer(app.ctx, _say, need_daemon=False)
    with d.locked(args.app):
        d.reroute(args.app)
    return 0


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _proxy(app: App) -> Proxy:
    from ..proxy import Proxy

    return Proxy(app.ctx)


def show_config(app: App, args: argparse.Namespace) -> int:
    sys.stdout.write(_proxy(app).show(args.app))
    return 0


def validate(app: App, args: argparse.Namespace) -> int:
    _proxy(app).validate()
    sys.stdout.write("nginx config is valid\n")
    return 0


def reload(app: App, args: argparse.Namespace) -> int:
    proxy = _proxy(app)
    was_running = proxy.is_running()
    proxy.reload()
    sys.stdout.write("nginx reloaded\n" if was_running else "nginx started\n")
    return 0


def start(app: App, args: argparse.Namespace) -> int:
    proxy = _proxy(app)
    if proxy.is_running():
        sys.stdout.write("nginx is already running\n")
        return 0
    proxy.ensure_running()
    p = proxy.params
    sys.stdout.write(f"nginx started on {p.http_addr}:{p.http_port}\n")
    return 0


def stop(app: App, args: argparse.Namespace) -> int:
    proxy = _proxy(app)
    if not proxy.is_running():
        sys.stdout.write("nginx is not running\n")
        return 0
    proxy.stop(keep_config=True, timeout=args.timeout)
    sys.stdout.write("nginx stopped\n")
    return 0
