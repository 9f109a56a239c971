"""The API routes of paasd.

``install(router, daemon)`` is called once at daemon start. Built-ins:

- ``GET /_ping`` -> ``{"ok": true, "pid": N, "version": "...", "root": PAAS_ROOT}``
- ``POST /shutdown`` -> ``{"ok": true}``; the daemon stops shortly after
  answering. Containers keep running.

Container routes (``/containers/...``) belong to the runtime lifecycle and are
registered from ``_install_container_routes`` below, which delegates to the
lifecycle module. Handlers have the signature
``handler(params: dict[str, str], body: dict) -> (status, json)``; raise a
``PaasError`` to answer with its status and ``{"message", "hint", "kind"}``.
``daemon.supervisor`` is the ``Supervisor`` (already started when ``install``
runs, so adopting running containers with ``supervisor.watch`` works here),
``daemon.ctx`` the ``Context``; append callables to ``daemon.on_shutdown`` for
work at daemon stop. ``on_exit`` callbacks given to the supervisor all run on
one dedicated thread ("paasd-on-exit"), never on the HTTP threads.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from .. import __version__
from .router import Response, Router

if TYPE_CHECKING:
    from .main import Daemon

__all__ = ["install"]

SHUTDOWN_DELAY = 0.05  # lets the /shutdown reply reach the client before the socket closes


def install(router: Router, daemon: Daemon) -> None:
    """Register every route of the API on ``router``."""

    def ping(params: dict[str, str], body: dict[str, Any]) -> Response:
        return 200, {"ok": True, "pid": os.getpid(), "version": __version__,
                     "root": daemon.ctx.paths.root}

    def shutdown(params: dict[str, str], body: dict[str, Any]) -> Response:
        threading.Timer(SHUTDOWN_DELAY, daemon.request_shutdown).start()
        return 200, {"ok": True}

    router.add("GET", "/_ping", ping)
    router.add("POST", "/shutdown", shutdown)
    _install_container_routes(router, daemon)


def _install_container_routes(router: Router, daemon: Daemon) -> None:
    """Container routes live in ``paas.daemon.containers``."""
    from . import builds, containers

    containers.install(router, daemon)
    builds.install(router, daemon)
