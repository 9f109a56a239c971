"""Shift a directory tree's owners into the user namespace's host range, as paas's
image store does for its snapshots (used by tests that hand runc a rootfs directly)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def shift_ids(root: Path, offset: int) -> None:
    """chown every file by +offset, keeping modes (chown clears setuid bits)."""
    def shift(path: str) -> None:
        st = os.lstat(path)
        os.lchown(path, st.st_uid + offset, st.st_gid + offset)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode))

    shift(str(root))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            shift(os.path.join(dirpath, name))
