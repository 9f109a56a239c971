"""Attached containers whose CLI went away: paasd kills and removes them.

``container:run`` without ``-d`` runs its container from the CLI process
(``paas.runtime.foreground``), which reports the exit with ``POST
/containers/{id}/finish``. A CLI that dies first (SIGKILL, an OOM kill, a crash)
used to leave the container created or running, with its rootfs mount, cgroup,
network attachment and record. ``Owners.watch`` holds a pidfd of the CLI (the
peer of the create request, from ``SO_PEERCRED``); when that process exits
before the exit was reported, ``end_orphan`` kills every process of the
container and finishes it like an exit: removed with ``--rm``, else recorded
exited (137 when paasd killed it, 255 when it had already ended unobserved);
a container the dead CLI never started stays created, unmounted.

Docker differs here: a killed ``docker run`` client leaves its container
running until it exits (then ``--rm`` removes it). A paas container's stdout
and stderr are the CLI's pipes and its exit status goes to the CLI; with the
CLI gone nothing could read either, so the container goes with its owner.

The owner (pid and start time) is also written into the bundle (``owner``), so
a paasd started while an attached container runs watches its CLI again
(``rewatch``). Not here: signals sent to a living CLI (the CLI forwards them).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import proc
from ..errors import PaasError
from ..model import ContainerState
from ..runtime.bundle import Bundle
from ..runtime.resolve import pid_start_time

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime

__all__ = ["EXIT_KILLED", "EXIT_LOST", "OWNER_FILE", "Owners", "end_orphan", "forget_owner",
           "rewatch", "write_owner"]

log = logging.getLogger(__name__)

OWNER_FILE = "owner"
EXIT_KILLED = 137  # 128 + SIGKILL: paasd killed it when its CLI died
EXIT_LOST = 255  # it had ended unobserved (as Docker records a vanished process)


class Owners:
    """One thread waiting on the pidfds of attached containers' CLIs; ``on_orphan(cid)``
    runs on it (one at a time) for each container whose CLI exited first."""

    def __init__(self, on_orphan: Callable[[str], None]) -> None:
        self._on_orphan = on_orphan
        self._lock = threading.Lock()
        self._fd_of: dict[str, int] = {}
        self._taken: set[str] = set()  # orphans being ended
        self._cid_of: dict[int, str] = {}
        self._epoll = select.epoll()
        self._thread: threading.Thread | None = None

    def watch(self, cid: str, pid: int) -> None:
        """Watch process ``pid`` (a CLI) for ``cid``; an already gone ``pid`` orphans it now."""
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.orphan(cid)
            return
        with self._lock:
            self._fd_of[cid] = fd
            self._cid_of[fd] = cid
            self._epoll.register(fd, select.EPOLLIN)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="paasd-owners",
                                                daemon=True)
                self._thread.start()

    def release(self, cid: str) -> bool:
        """The CLI reports the exit itself: stop watching. False when its death was already
        seen and ``on_orphan`` has taken (or is taking) the container over."""
        with self._lock:
            if cid in self._taken:
                return False
            fd = self._fd_of.pop(cid, None)
            if fd is not None:
                del self._cid_of[fd]
                os.close(fd)  # also leaves the epoll set
            return True

    def watching(self) -> set[str]:
        with self._lock:
            return set(self._fd_of)

    def _loop(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                with self._lock:
                    cid = self._cid_of.get(fd)
                    # a released fd's number may be reused by a new watch: that one's
                    # process is alive, so its pidfd is not readable yet
                    if cid is None or not select.select([fd], [], [], 0)[0]:
                        continue
                    del self._cid_of[fd], self._fd_of[cid]
                    os.close(fd)
                    self._taken.add(cid)
                self.orphan(cid)

    def orphan(self, cid: str) -> None:
        """``cid``'s CLI is gone: run ``on_orphan`` for it (on the calling thread)."""
        log.info("container %s: its container:run client exited first; removing it", cid[:12])
        with self._lock:
            self._taken.add(cid)
        try:
            self._on_orphan(cid)
        except Exception:  # one failed cleanup must not end the watcher
            log.exception("cleanup of orphaned container %s failed", cid[:12])
        finally:
            with self._lock:
                self._taken.discard(cid)


def write_owner(bundle: Bundle, pid: int) -> None:
    """Record the CLI owning ``bundle``'s container (for a paasd started meanwhile)."""
    fd = os.open(bundle.path(OWNER_FILE), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{pid} {pid_start_time(pid) or 0}\n")


def forget_owner(bundle: Bundle) -> None:
    """The container is no longer a CLI's (its exit was reported, or paasd starts it)."""
    try:
        os.unlink(bundle.path(OWNER_FILE))
    except FileNotFoundError:
        pass


def rewatch(rt: Runtime, owners: Owners) -> None:
    """At paasd start: watch the CLI of every created or running container that has an owner
    file; orphan those whose CLI is gone (a pid reused since fails the start-time check)."""
    for c in rt.store.list_all():
        if c.state not in (ContainerState.CREATED, ContainerState.RUNNING):
            continue
        try:
            with open(Bundle(rt.ctx, c.id).path(OWNER_FILE)) as f:
                pid, start = (int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue  # detached, or made before owners were recorded
        if pid_start_time(pid) != start:
            owners.orphan(c.id)
            continue
        try:
            owners.watch(c.id, pid)
        except OSError as err:
            log.warning("cannot watch the client of container %s: %s", c.id[:12], err)


def end_orphan(rt: Runtime, cid: str) -> None:
    """Kill and finish an attached container whose CLI died (see the module docstring)."""
    try:
        c = rt.store.get(cid)
    except PaasError:
        return  # finished and removed meanwhile
    bundle = Bundle(rt.ctx, cid)
    forget_owner(bundle)
    if c.state not in (ContainerState.CREATED, ContainerState.RUNNING):
        return
    _wait_for_runc(cid, bundle.path("init.pid"))  # the dead CLI's `runc run` may be starting it
    if not os.path.exists(os.path.join(rt.ctx.paths.runc_root, cid)) and c.pid is None:
        if c.config.auto_remove:
            rt.remove(c, force=True)
        else:
            bundle.unmount_rootfs()  # a later container:start mounts it again
        return
    pid = c.pid or _pid_from(bundle.path("init.pid"))
    pidfd = _pidfd(pid)
    proc.run(rt.runc.kill(cid, "KILL", all_processes=True), check=False)
    if pidfd is not None:
        select.select([pidfd], [], [], 10.0)
        os.close(pidfd)
    rt.finish(cid, EXIT_KILLED if pidfd is not None else EXIT_LOST)


def _pid_from(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _pidfd(pid: int | None) -> int | None:
    """A pidfd of a process that still runs (not a zombie), else None."""
    if pid is None:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if select.select([fd], [], [], 0)[0]:
        os.close(fd)
        return None
    return fd


def _wait_for_runc(cid: str, pid_file: str, timeout: float = 10.0) -> None:
    """Wait until the container's init runs (``pid_file`` written) or no runc process works
    on ``cid``: a ``runc run`` orphaned mid-start would otherwise start the container after
    we looked. (With a TTY, ``runc run`` stays, as the container's parent.)"""
    deadline = time.monotonic() + timeout
    while (time.monotonic() < deadline and not os.path.exists(pid_file)
           and _runc_busy(cid)):
        time.sleep(0.05)


def _runc_busy(cid: str) -> bool:
    want = cid.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"runc" and want in argv:
            return True
    return False
