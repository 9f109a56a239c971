"""AF_UNIX addresses for paths longer than ``sun_path`` allows (shared by server and client)."""

from __future__ import annotations

import os

__all__ = ["unix_address"]


class unix_address:  # lower case: used like the function it replaced
    """``with unix_address(path) as addr``: ``path`` usable as an AF_UNIX address even when
    longer than sun_path's 108 bytes.

    A long path is reached through an O_PATH handle of its directory
    (``/proc/self/fd/N/name``), valid for the duration of the ``with``.
    A class, not ``contextlib.contextmanager``: contextlib is ~1 ms of every CLI call.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> str:
        if len(os.fsencode(self.path)) < 100:
            return self.path
        self.fd = os.open(os.path.dirname(self.path) or ".", os.O_PATH | os.O_CLOEXEC)
        return f"/proc/self/fd/{self.fd}/{os.path.basename(self.path)}"

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
