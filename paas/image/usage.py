"""Real disk usage of store files and trees (``st_blocks``, like ``du``), and a cache for
trees that never change once written (committed snapshots).

``disk_usage`` walks a tree once with ``os.scandir``: allocated blocks (a sparse
file counts what it occupies, not its length), hard links counted once, other
filesystems (a container's rootfs mount) not entered, symlinks not followed.
``UsageCache`` remembers the usage of immutable trees by a key and a stamp (a
snapshot's id and creation time), so ``system:df`` walks each snapshot once.

Not here: which files belong to what (``paas.deploy.inventory``).
"""

from __future__ import annotations

import json
import os
import stat

__all__ = ["UsageCache", "disk_usage", "file_usage", "human_size"]


def human_size(n: float) -> str:
    """Docker's decimal units: 74.8MB, 1.2GB, 512B (as ``paas.cli.render``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{int(n)}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000.0
    return f"{n:.3g}TB"


def file_usage(path: str) -> int:
    """Allocated bytes of one file (0 when it is missing)."""
    try:
        return os.lstat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


def disk_usage(path: str, *, skip_prefix: tuple[str, ...] = (),
               skip_top: tuple[str, ...] = ()) -> int:
    """Allocated bytes of everything under ``path`` (0 when missing); entries whose
    name starts with one of ``skip_prefix`` (any depth), or is one of ``skip_top``
    directly under ``path``, are left out."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return 0
    total = top.st_blocks * 512
    if not stat.S_ISDIR(top.st_mode):
        return total
    seen: set[int] = set()
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed while we walked
        with it:
            for e in it:
                if skip_prefix and e.name.startswith(skip_prefix):
                    continue
                if skip_top and d == path and e.name in skip_top:
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if st.st_dev != top.st_dev:
                    continue  # a mount point (a running container's rootfs)
                if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                    if st.st_ino in seen:
                        continue
                    seen.add(st.st_ino)
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
    return total


class UsageCache:
    """``key -> (stamp, bytes)`` in a JSON file; ``get`` walks on a miss or a new stamp.

    Only for trees that do not change while their key and stamp stay the same."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._data: dict[str, list[object]] = {}
        self._dirty = False
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict):
                self._data = data
        except (FileNotFoundError, ValueError):
            self._data = {}  # a missing or torn cache is rebuilt

    def get(self, key: str, stamp: str, tree: str) -> int:
        hit = self._data.get(key)
        if isinstance(hit, list) and len(hit) == 2 and hit[0] == stamp \
                and isinstance(hit[1], int):
            return hit[1]
        size = disk_usage(tree)
        self._data[key] = [stamp, size]
        self._dirty = True
        return size

    def total(self) -> int:
        """The sum of the cached sizes (as of the last walk; no walking here)."""
        return sum(v[1] for v in self._data.values()
                   if isinstance(v, list) and len(v) == 2 and isinstance(v[1], int))

    def save(self, keep: set[str] | None = None) -> None:
        """Write the cache (only the ``keep`` keys when given: forget removed trees)."""
        if keep is not None:
            gone = set(self._data) - keep
            for k in gone:
                del self._data[k]
            self._dirty = self._dirty or bool(gone)
        if not self._dirty:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self._data, f)
        os.replace(tmp, self.path)
        self._dirty = False
