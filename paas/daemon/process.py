"""Process-level plumbing of paasd: child-subreaper flag and the instance's pid-file lock.

The pid file is held with ``flock`` for the daemon's whole life, so two
daemons of one instance cannot run; a stale file (crashed daemon) is simply
re-locked. Nothing here knows about HTTP or containers.
"""

from __future__ import annotations

import fcntl
import os

from .. import linux
from ..errors import AlreadyExists, CommandFailed, FailedPrecondition

__all__ = ["PidLock", "is_child_subreaper", "read_pidfile", "set_child_subreaper"]

def set_child_subreaper(enabled: bool = True) -> None:
    """Make orphaned descendants (container inits after ``runc run -d`` exits) our children."""
    try:
        linux.set_child_subreaper(enabled)
    except CommandFailed as err:
        raise FailedPrecondition(err.message, "paasd needs Linux >= 3.4") from err


def is_child_subreaper() -> bool:
    return linux.is_child_subreaper()


class PidLock:
    """An exclusively locked pid file containing our pid."""

    def __init__(self, path: str, name: str = "paasd",
                 hint: str = "stop it with 'paas daemon:stop'") -> None:
        self.path = path
        self.name = name
        self.hint = hint
        self._fd = -1

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyExists(f"{self.name} is already running (pid {other})", self.hint) from err
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Remove the file while still holding the lock, then unlock."""
        if self._fd < 0:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = -1


def read_pidfile(path: str) -> int | None:
    """The pid in ``path`` if the file exists and holds a number."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None
