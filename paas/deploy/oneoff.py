"""One-off containers of a release: the ``release`` phase and ``paas run APP CMD``.

Named ``APP.TYPE.NNNN`` (no ``.vN`` suffix, so the cutover never mistakes one for a
process container), started by paasd without a restart policy, followed until it
exits (its output goes to the progress callback), then removed. It gets the app's
storage mounts and the resource limits of its type (``release`` or ``run``).

Not here: interactive ``paas run -it`` (the CLI runs those attached itself).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from ..apps.options import process_options
from ..model import ContainerState, Release
from ..runtime.bundle import Bundle
from ..runtime.lifecycle import Runtime
from ..runtime.logs import read_logs
from .processes import run_flags

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..daemon.client import DaemonClient

__all__ = ["oneoff_name", "run_oneoff"]

CREATED_TIMEOUT = 30.0


def oneoff_name(app: str, kind: str) -> str:
    return f"{app}.{kind}.{secrets.randbelow(9000) + 1000}"


def run_oneoff(rt: Runtime, client: DaemonClient, release: Release, ptype: str, port: int,
               progress: Callable[[str], None], command: list[str] | None = None) -> int:
    """Run ``ptype``'s command (or ``command``) of ``release`` to completion; its exit code."""
    name = oneoff_name(release.app, "run" if command else ptype)
    flags = run_flags(release, ptype, 1, port, process_options(rt.conn, release.app, rt.ctx.limits),
                      name=name, command=command)
    flags["restart"] = "no"
    reply = client.request("POST", "/containers",
                           {"flags": flags, "start": True, "app": release.app})
    cid = str(reply["id"])
    started = time.monotonic()
    try:
        def stopped() -> bool:
            c = rt.store.get(cid)
            if c.state == ContainerState.CREATED:
                # it exited before paasd could mark it running: its exit is being
                # recorded; wait for that (not forever) rather than report no status
                return time.monotonic() - started > CREATED_TIMEOUT
            return not rt.is_running(c)

        for entry in read_logs(Bundle(rt.ctx, cid).log_path, follow=True, stop=stopped):
            progress("       " + entry.text.rstrip("\n"))
        c = rt.store.get(cid)
        if c.state != ContainerState.EXITED or c.exit_code is None:
            return 255
        return c.exit_code
    finally:
        rt.remove(rt.store.get(cid), force=True)
