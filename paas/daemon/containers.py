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

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..config import Context
from ..errors import InvalidArgument, PaasError
from ..model import ContainerState
from ..runtime.bundle import Bundle
from ..state import connect
from .janitor import Janitor
from .owners import Owners, end_orphan, forget_owner, rewatch, write_owner
from .restarts import Restarts, Scheduler
from .router import PEER_PID, Response, Router
from .spares import Spares

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime
    from .main import Daemon

__all__ = ["install"]


def install(router: Router, daemon: Daemon) -> None:
    local = threading.local()
    janitor = Janitor()
    daemon.on_shutdown.append(janitor.stop)

    def _runtime(ctx: Context) -> Runtime:
        from ..runtime.lifecycle import Runtime

        return Runtime(ctx, connect(ctx.paths.db, shared=True), defer=janitor.submit)

    free: list[Runtime] = []
    free_lock = threading.Lock()

    @contextlib.contextmanager
    def pooled() -> Iterator[Runtime]:
        """A Runtime (own DB connection, warm caches) for one request; reused after it,
        since opening a connection per request costs a few ms of every container start."""
        with free_lock:
            rt = free.pop() if free else None
        if rt is None:
            rt = _runtime(daemon.ctx)
        try:
            yield rt
        finally:
            with free_lock:
                free.append(rt)

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
        rt.finish(cid, exit_code, restarting=restarts.wants_restart(c, exit_code))
        restarts.after_exit(rt, cid, exit_code, ran)

    def start_container(rt: Runtime, cid: str) -> None:
        forget_owner(Bundle(rt.ctx, cid))
        rt.start_supervised(rt.store.get(cid), daemon.supervisor.launch, on_exit)

    scheduler = Scheduler()
    daemon.on_shutdown.append(scheduler.stop)
    spares = Spares(lambda: _runtime(daemon.ctx))
    daemon.on_shutdown.append(spares.stop)
    restarts = Restarts(thread_runtime, start_container, scheduler)
    # an attached container whose CLI dies before reporting its exit is paasd's to remove
    owners = Owners(lambda cid: end_orphan(thread_runtime(), cid))

    def start(params: dict[str, str], body: dict[str, Any]) -> Response:
        with pooled() as rt:
            c = rt.store.get(params["id"])
            rt.store.set_stopped_by_user(c.id, False)
            forget_owner(Bundle(rt.ctx, c.id))  # paasd's now, whoever ran it before
            c = rt.start_supervised(c, daemon.supervisor.launch, on_exit)
            return 200, {"id": c.id, "state": c.state, "pid": c.pid}

    router.add("POST", "/containers/{id}/start", start)

    def create(params: dict[str, str], body: dict[str, Any]) -> Response:
        """``{"argv": container:run's arguments, "stdin_tty": bool}`` (or, from a CLI that
        parsed them, ``{"flags": ..., "start": bool, "app": APP}``, ``app`` naming the app
        whose id range the container gets): a detached container is started here;
        otherwise the reply is the plan the CLI needs to run it attached."""
        from ..runtime.options import flags_from_argv, options_from_flags

        flags: object
        if "argv" in body:
            flags = flags_from_argv(body["argv"])
            detach = bool(flags["detach"])
            if flags["tty"] and not detach and not body.get("stdin_tty"):
                raise InvalidArgument("the input device is not a TTY",
                                      "drop -t, or run from a terminal")
        else:
            flags, detach = body.get("flags"), bool(body.get("start"))
        opts = options_from_flags(flags)
        app = body.get("app", "") if "flags" in body else ""
        if not isinstance(app, str):
            raise InvalidArgument("app must be a string", "send the app's name")
        with pooled() as rt:
            if app:  # a container of an app: in the app's own id range
                from ..apps.idmaps import IdMaps
                from ..apps.store import need_app

                need_app(rt.conn, app)
                opts = replace(opts, idmap=IdMaps(rt.ctx, rt.conn).for_app(app))
            c = rt.create(opts)
            if c.config.network == "bridge":
                spares.kick(c.config.idmap if c.config.userns else None)
            try:
                if detach:
                    c = rt.start_supervised(c, daemon.supervisor.launch, on_exit)
                    return 201, {"id": c.id, "name": c.name, "state": c.state, "detached": True}
                plan = rt.attach_plan(c)
                client = int(params.get(PEER_PID) or 0)
                if client > 0:
                    write_owner(Bundle(rt.ctx, c.id), client)
            except BaseException:
                rt.remove(rt.store.get(c.id), force=True)
                raise
        if client > 0:
            owners.watch(c.id, client)
        return 201, plan

    def _int(body: dict[str, Any], key: str) -> int:
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{key} must be an integer", f"send {{\"{key}\": N}}")
        return value

    def started(params: dict[str, str], body: dict[str, Any]) -> Response:
        """An attached CLI's container init is running with ``pid``."""
        with pooled() as rt:
            rt.record_start(rt.store.get(params["id"]).id, _int(body, "pid"))
            return 200, {"ok": True}

    def finish(params: dict[str, str], body: dict[str, Any]) -> Response:
        """An attached container exited: record it, release runc state, mounts, network.
        With ``pid``, a start not reported yet (the command ended at once) is recorded
        first (its StartedAt), unless the container goes with its exit (``--rm``)."""
        if not owners.release(params["id"]):
            return 200, {"ok": True}  # its client died meanwhile: end_orphan has it
        with pooled() as rt:
            c = rt.store.get(params["id"])
            forget_owner(Bundle(rt.ctx, c.id))
            if ("pid" in body and c.state == ContainerState.CREATED
                    and not c.config.auto_remove):
                rt.store.set_running(c.id, _int(body, "pid"), None)  # already reaped
            rt.finish(c.id, _int(body, "exit_code"))
            return 200, {"ok": True}

    def listing(params: dict[str, str], body: dict[str, Any]) -> Response:
        """``GET /containers?all=1``: the rows of ``container:ps``."""
        from ..runtime.listing import rows_of

        with pooled() as rt:
            return 200, rows_of(rt, all=params.get("all") in ("1", "true"))

    router.add("GET", "/containers", listing)
    router.add("POST", "/containers", create)
    router.add("POST", "/containers/{id}/started", started)
    router.add("POST", "/containers/{id}/finish", finish)

    from .adopt import adopt_all

    with pooled() as rt:
        _restore_network(rt)
        adopt_all(rt, daemon.supervisor, daemon.keeper, on_exit, restarts)
        rt.collect_garbage()
        rewatch(rt, owners)


def _restore_network(rt: Runtime) -> None:
    """At paasd's start, the bridge and every rule of the instance (the apps' service
    addresses included) are checked and put back: a firewall reload or a hand may have
    removed them. Nothing when the instance never used its bridge."""
    bridge = rt.net.bridge
    if bridge.ipam.get("subnet") is None:
        return
    try:
        bridge.ensure(force=True)
    except PaasError as err:  # containers without the bridge can still run
        log.warning("could not restore the bridge network: %s", err.render())
