"""Helpers of the supervisor that need no loop: exit statuses, pid files, runc's error text,
pipe sizing, and the ``FdKeeper`` protocol (what the keeper does for the supervisor).

Split from ``supervisor`` to keep that module about the event loop.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from typing import Protocol

from ..errors import CommandFailed
from ..proc import exit_code_from_status

__all__ = ["EXIT_UNKNOWN", "PIPE_SIZE", "FdKeeper", "exit_code_from_status", "grow_pipe", "read_pid", "reap",
           "runc_error"]

log = logging.getLogger(__name__)

EXIT_UNKNOWN = -1
PIPE_SIZE = 1024 * 1024  # output waits here while no paasd runs (live restore)


class FdKeeper(Protocol):
    """Where pipe fds and orphans' exit statuses outlive paasd (``KeeperClient``)."""

    def hold(self, cid: str, fds: dict[str, int]) -> None: ...

    def drop(self, cid: str, names: list[str] | None = None) -> None: ...

    def forget(self, pids: list[int]) -> None: ...

    def exit_status(self, pid: int, timeout: float = 2.0) -> int | None: ...


def grow_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError as err:  # over /proc/sys/fs/pipe-max-size for non-root: keep the default
        log.debug("F_SETPIPE_SZ: %s", err)


def reap(pid: int) -> int | None:
    """The exit code of our child ``pid``; None if it is not our child (the keeper reaped it)."""
    # a pidfd can report the exit a moment before the zombie is there to reap (seen
    # under load, with multi-threaded inits): wait a little for it, never forever
    deadline = time.monotonic() + 2.0
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None  # not our child (adopted after a restart): ask the keeper
        if got != 0:
            return exit_code_from_status(status)
        if time.monotonic() > deadline:
            return EXIT_UNKNOWN
        time.sleep(0.002)


def read_pid(pid_file: str) -> int:
    try:
        with open(pid_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError) as err:
        raise CommandFailed(f"runc did not leave a usable pid file at {pid_file}: {err}",
                            "check that the argv passes --detach --pid-file") from err


_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def runc_error(text: str) -> str:
    """The most useful line of runc's stderr: its last ``msg="..."``, else the last line."""
    msgs = _MSG.findall(text)
    if msgs:
        return str(msgs[-1]).replace('\\"', '"')
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no error output"
