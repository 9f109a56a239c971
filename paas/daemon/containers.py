"""Container routes of paasd: the daemon side of detached containers.

``POST /containers/{id}/start`` starts a created or exited container under the
supervisor; its exit is recorded by ``Runtime.finish`` on the supervisor's
on-exit thread. Each request opens its own DB connection (sqlite connections
are per thread); the on-exit thread keeps one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..config import Context
from ..state import connect
from .router import Response, Router

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime
    from .main import Daemon

__all__ = ["install"]


def _runtime(ctx: Context) -> Runtime:
    from ..runtime.lifecycle import Runtime

    return Runtime(ctx, connect(ctx.paths.db))


def install(router: Router, daemon: Daemon) -> None:
    local = threading.local()

    def on_exit(cid: str, exit_code: int, pid: int) -> None:
        rt = getattr(local, "rt", None)
        if rt is None:
            rt = local.rt = _runtime(daemon.ctx)
        rt.finish(cid, exit_code)

    def start(params: dict[str, str], body: dict[str, Any]) -> Response:
        rt = _runtime(daemon.ctx)
        try:
            c = rt.start_supervised(rt.store.get(params["id"]), daemon.supervisor.launch, on_exit)
            return 200, {"id": c.id, "state": c.state, "pid": c.pid}
        finally:
            rt.conn.close()

    router.add("POST", "/containers/{id}/start", start)
