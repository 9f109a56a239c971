"""Live restore at paasd start: re-attach containers that outlived the previous paasd.

For every container recorded as running (or waiting for a restart):

- the keeper holds its pipes: take them back and ``Supervisor.watch`` it; if it
  exited meanwhile (``gone``), the output still in the pipes is drained into
  its log and the exit status the keeper reaped is recorded;
- its process is gone and the keeper holds nothing (host reboot, keeper
  killed): record exit 255, like Docker, and let the restart policy decide;
- its process runs but the keeper holds nothing: a foreground
  ``container:run`` owned by a CLI process: not ours, left alone.

Afterwards the keeper forgets fds and exit statuses nobody claims.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import PaasError
from ..model import Container, ContainerState
from ..runtime.bundle import Bundle
from ..runtime.resolve import pid_start_time
from .supervisor import OnExit, Supervisor

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime
    from .keeper_client import KeeperClient
    from .restarts import Restarts

__all__ = ["adopt_all"]

log = logging.getLogger(__name__)

EXIT_LOST = 255  # what Docker records for a container whose process vanished unobserved


def adopt_all(rt: Runtime, sup: Supervisor, keeper: KeeperClient | None, on_exit: OnExit,
              restarts: Restarts) -> None:
    held: dict[str, list[str]] = {}
    exits: dict[int, int] = {}
    if keeper is not None:
        try:
            held, exits = keeper.held()
        except PaasError as err:
            log.warning("live restore without the keeper: %s", err.render())
            keeper = None
    claimed: set[str] = set()
    for c in rt.store.list_all(running_only=True):
        try:
            if c.state == ContainerState.RESTARTING:
                restarts.resume(c.id)
            elif c.id in held and keeper is not None and c.pid:
                _watch(rt, sup, keeper, c, on_exit)
                claimed.add(c.id)
            elif not _alive(rt, c):
                log.info("container %s: process gone while no paasd ran; exit %d", c.id[:12],
                         EXIT_LOST)
                rt.finish(c.id, EXIT_LOST)
                restarts.after_exit(rt, c.id, EXIT_LOST, 0.0)
        except PaasError as err:
            log.error("cannot adopt container %s: %s", c.id[:12], err.render())
    if keeper is not None:
        _forget_unclaimed(keeper, held, exits, claimed, rt)


def _alive(rt: Runtime, c: Container) -> bool:
    """Its process still runs: same start time (not a reused pid) and not a zombie (an
    orphan whose reaper, e.g. init after the keeper died, has not reaped it yet)."""
    if c.pid is None or pid_start_time(c.pid) != rt.store.pid_start(c.id):
        return False
    try:
        with open(f"/proc/{c.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _watch(rt: Runtime, sup: Supervisor, keeper: KeeperClient, c: Container,
           on_exit: OnExit) -> None:
    assert c.pid is not None
    fds = keeper.get(c.id)
    streams = {fd: name for name, fd in fds.items() if name in ("stdout", "stderr")}
    gone = not _alive(rt, c)
    sup.watch(c.id, c.pid, on_exit=on_exit, log_path=Bundle(rt.ctx, c.id).log_path,
              streams=streams, stdin_w=fds.get("stdin"), gone=gone)
    log.info("adopted container %s (pid %d%s)", c.id[:12], c.pid, ", already exited" if gone else "")


def _forget_unclaimed(keeper: KeeperClient, held: dict[str, list[str]], exits: dict[int, int],
                      claimed: set[str], rt: Runtime) -> None:
    try:
        for cid in held:
            if cid not in claimed:
                keeper.drop(cid)
        pids = {c.pid for c in rt.store.list_all(running_only=True) if c.pid}
        stale = [pid for pid in exits if pid not in pids]
        if stale:
            keeper.forget(stale)
    except PaasError as err:
        log.warning("keeper: %s", err.render())
