"""Symlink-proof access to a directory tree through directory file descriptors.

Every path is walked one component at a time with ``O_NOFOLLOW|O_DIRECTORY``
relative to the previous directory's fd, so a symlink (or a non-directory) in
a parent position is refused instead of followed out of the tree. Paths are
tuples of components that the caller already validated (no ``..``, no ``/``).

Not here: what the tar entries mean (``layer_extract``).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

__all__ = ["NotADirectoryPath", "SafeTree"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class NotADirectoryPath(Exception):
    """A parent component is a symlink or not a directory (carries that component)."""

    def __init__(self, component: str) -> None:
        super().__init__(component)
        self.component = component


class SafeTree:
    """A root directory fd plus a one-entry cache of the last parent opened."""

    def __init__(self, root: str, *, parent_owner: tuple[int, int] = (0, 0)) -> None:
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.parent_owner = parent_owner
        self._cached: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self.invalidate()
        os.close(self.root_fd)

    def invalidate(self) -> None:
        """Forget the cached parent fd (after anything was removed from the tree)."""
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def parent(self, parts: tuple[str, ...], *, create: bool) -> int:
        """An fd of the directory ``parts`` (owned by the tree: do not close).

        Missing directories are created (mode 0755, ``parent_owner``) when
        ``create``; otherwise FileNotFoundError. A symlink or non-directory on
        the way raises ``NotADirectoryPath``.
        """
        if not parts:
            return self.root_fd
        if self._cached is not None and self._cached[0] == parts:
            return self._cached[1]
        fd = self._walk(parts, create)
        self.invalidate()
        self._cached = (parts, fd)
        return fd

    def open_dir(self, parts: tuple[str, ...], *, create: bool = False) -> int:
        """Like ``parent`` but returns a new fd that the caller must close."""
        return self._walk(parts, create)

    def _walk(self, parts: tuple[str, ...], create: bool) -> int:
        fd = os.dup(self.root_fd)
        try:
            for comp in parts:
                nfd = self._open_dir(fd, comp, create)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_dir(self, dir_fd: int, name: str, create: bool) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise NotADirectoryPath(name) from err
            raise
        os.mkdir(name, 0o755, dir_fd=dir_fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        os.fchown(fd, *self.parent_owner)
        os.fchmod(fd, 0o755)
        return fd

    def lstat(self, dir_fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def clear(self, dir_fd: int, name: str, *, keep_dir: bool) -> bool:
        """Remove whatever is at ``name`` (a dir only unless ``keep_dir``); True if a dir was kept."""
        st = self.lstat(dir_fd, name)
        if st is None:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            # Safe: rmtree uses fds and never follows symlinks. The cached
            # parent stays valid, since it is dir_fd, not the removed child.
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
        return False
