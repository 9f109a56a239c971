"""An exclusive ``flock`` on a lock file: serialises pushes to one repository, writers
of one key or token file, and ACME orders across processes. Not a deploy lock (that
belongs to the deploy stage)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["file_lock"]


@contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600 if missing, in dirs created 0700:
    ``PAAS_ROOT/auth``, ``ssh`` and ``acme`` are root-only) for the block."""
    from . import modes

    modes.makedirs(os.path.dirname(path) or ".")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
