"""Thin wrappers of the few Linux syscalls paas makes directly (via libc and ctypes).

mount(2)/umount2(2) for container root filesystems (an exec of mount(8) costs
a few ms on every container start) and prctl(PR_SET_CHILD_SUBREAPER).
Everything else goes through ``paas.proc``.
"""

from __future__ import annotations

import ctypes
import os

from .errors import CommandFailed
from .model import Mount

__all__ = ["MNT_DETACH", "mount", "set_child_subreaper", "umount"]

MNT_DETACH = 2
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> CommandFailed:
    err = ctypes.get_errno()
    return CommandFailed(f"{what} failed: {os.strerror(err)}", returncode=err)


def mount(m: Mount, target: str) -> None:
    """Perform ``m`` on ``target`` (options become the fs-specific data string)."""
    data = ",".join(m.options).encode()
    if _libc.mount(m.source.encode(), target.encode(), m.type.encode(), 0, data) != 0:
        raise _fail(f"mount {m.type} on {target}")


def umount(target: str, flags: int = 0) -> None:
    if _libc.umount2(target.encode(), flags) != 0:
        raise _fail(f"umount {target}")


def set_child_subreaper(enabled: bool = True) -> None:
    """Orphaned descendants (a container init after ``runc run -d`` exits) become our children."""
    if _libc.prctl(_PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_CHILD_SUBREAPER)")
