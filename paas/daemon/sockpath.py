"""AF_UNIX addresses for paths longer than ``sun_path`` allows (shared by server and client)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["unix_address"]


@contextlib.contextmanager
def unix_address(path: str) -> Iterator[str]:
    """``path`` usable as an AF_UNIX address even when longer than sun_path's 108 bytes.

    A long path is reached through an O_PATH handle of its directory
    (``/proc/self/fd/N/name``), valid for the duration of the ``with``.
    """
    if len(os.fsencode(path)) < 100:
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)
