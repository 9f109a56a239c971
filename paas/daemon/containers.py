"""Container routes of paasd and its on-exit path: records exits, applies restart policies.

``POST /containers/{id}/start`` starts a created or exited container under the
supervisor (an explicit start re-enables a restart policy and resets the
restart count, like Docker). Its exit is recorded by ``Runtime.finish`` on the
supervisor's on-exit thread, then ``Restarts`` may schedule a new start.
At daemon start, ``adopt.adopt_all`` re-attaches containers that outlived the
previous paasd. Each request opens its own DB connection (sqlite connections
are per thread); the on-exit and timer threads keep one each.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..config import Context
from ..errors import PaasError
from ..state import connect
from .restarts import Restarts, Scheduler
from .router import Response, Router

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime
    from .main import Daemon

__all__ = ["install"]


def _runtime(ctx: Context) -> Runtime:
    from ..image.store import ImageStore
    from ..runtime.lifecycle import Runtime

    conn = connect(ctx.paths.db)
    return Runtime(ctx, conn, ImageStore(ctx, conn))


def install(router: Router, daemon: Daemon) -> None:
    local = threading.local()

    def thread_runtime() -> Runtime:
        rt = getattr(local, "rt", None)
        if rt is None:
            rt = local.rt = _runtime(daemon.ctx)
        return rt

    def on_exit(cid: str, exit_code: int, pid: int) -> None:
        rt = thread_runtime()
        try:
            c = rt.store.get(cid)
        except PaasError:
            return  # removed meanwhile
        ran = time.time() - (c.started_at or time.time())
        rt.finish(cid, exit_code)
        restarts.after_exit(rt, cid, exit_code, ran)

    def start_container(rt: Runtime, cid: str) -> None:
        rt.start_supervised(rt.store.get(cid), daemon.supervisor.launch, on_exit)

    scheduler = Scheduler()
    daemon.on_shutdown.append(scheduler.stop)
    restarts = Restarts(thread_runtime, start_container, scheduler)

    def start(params: dict[str, str], body: dict[str, Any]) -> Response:
        rt = _runtime(daemon.ctx)
        try:
            c = rt.store.get(params["id"])
            rt.store.set_stopped_by_user(c.id, False)
            c = rt.start_supervised(c, daemon.supervisor.launch, on_exit)
            return 200, {"id": c.id, "state": c.state, "pid": c.pid}
        finally:
            rt.conn.close()

    router.add("POST", "/containers/{id}/start", start)

    from .adopt import adopt_all

    rt = _runtime(daemon.ctx)
    try:
        adopt_all(rt, daemon.supervisor, daemon.keeper, on_exit, restarts)
    finally:
        rt.conn.close()
