"""The hook ``git push`` runs per ref (``paas.receive`` calls ``deploy_push``).

Only the app's deploy branch (setting ``deploy-branch``, default ``main``)
deploys; other branches are stored and say so; deleting the deploy branch is
refused. A push to an app that does not exist creates it unless
``PAAS_CREATE_ON_PUSH=0``. The deploy runs under the app's lock (a second push
waits), before the ref moves: raising here rejects the push, and the previous
release keeps serving.

Not here: the git protocol (``paas.receive``), the deploy itself (``deployer``).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..config import Context
from ..errors import FailedPrecondition, InvalidArgument, NotFound
from ..model import Push

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .deployer import Deployer

__all__ = ["ZERO", "deploy_push", "make_deployer"]

ZERO = "0" * 40


def make_deployer(ctx: Context, progress: Callable[[str], None], *,
                  need_daemon: bool = True) -> Deployer:
    """A ``Deployer`` wired to this instance (state DB, paasd, nginx). ``need_daemon``:
    fail early unless paasd runs (anything that starts containers needs it)."""
    from ..daemon.client import DaemonClient
    from ..network.bridge import BridgeNetwork
    from ..network.services import AppServices
    from ..proxy import Proxy
    from ..runtime.lifecycle import Runtime
    from ..state import connect
    from .deployer import Deployer

    client = DaemonClient(ctx.paths)
    if need_daemon and client.ping() is None:
        raise FailedPrecondition("paasd is not running, so the app cannot be started",
                                 "start it with 'paas daemon:start' and push again")
    rt = Runtime(ctx, connect(ctx.paths.db))
    switch = AppServices(BridgeNetwork(ctx, rt.conn))
    return Deployer(ctx, rt, client, Proxy(ctx, switch=switch), progress)


def deploy_push(ctx: Context, push: Push, progress: Callable[[str], None]) -> None:
    from ..apps.store import AppStore
    from ..state import connect

    apps = AppStore(connect(ctx.paths.db))
    if not apps.exists(push.app):
        if os.environ.get("PAAS_CREATE_ON_PUSH", "1") == "0":
            raise NotFound(f"app {push.app} does not exist", f"create it: paas apps:create {push.app}")
        apps.create(push.app)
        progress(f"-----> Created app {push.app}")
    branch = apps.setting(push.app, "deploy-branch", "main") or "main"
    deploy_ref = f"refs/heads/{branch}"
    if push.new == ZERO:
        if push.ref == deploy_ref:
            raise InvalidArgument(f"refusing to delete {branch}, the deploy branch of {push.app}",
                                  "destroy the app with 'paas apps:destroy' instead")
        return
    if push.ref != deploy_ref:
        progress(f"-----> {push.ref} stored; only {branch} deploys "
                 f"(paas git:set {push.app} deploy-branch BRANCH)")
        return
    from .hooks import run_hooks
    from .locks import refuse_if_locked

    refuse_if_locked(apps.conn, push.app)  # before waiting for a running deploy
    deployer = make_deployer(ctx, progress)
    by = f" by {push.pusher}" if push.pusher else ""
    with deployer.locked(push.app, what=f"git push{by} ({push.new[:7]})"):
        run_hooks(ctx, "pre-receive", [push.app, push.ref, push.old, push.new], push.app,
                  progress)
        deployer.deploy(push.app, push.repo, push.new, pusher=push.pusher)
