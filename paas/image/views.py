"""Idmapped views: one unpacked copy of each layer, seen through each id range.

Why: every app has its own id range (``paas.apps.idmaps``). Unpacking each layer
once per range with its owners shifted (the store's older model, kept as the
fallback) costs a full copy of every shared base layer per app, and a first start
of an app pays for unpacking them. Instead each layer is unpacked ONCE with its
container ids (uid 0 is 0; ``snapshots/base/<n>/fs``), and each range gets one
idmapped bind mount of the whole ``snapshots/base`` directory at
``snapshots/views/<host_id>-<size>`` (``open_tree`` + ``mount_setattr(MOUNT_ATTR_IDMAP)``
+ ``move_mount``, kernel >= 5.12 and a filesystem that supports it: ext4, xfs,
btrfs, tmpfs since 6.3). Overlayfs takes such views as lower layers: in app A's
view a file of uid 1000 is owned by ``A.host_id + 1000``, in B's view the same inode
by ``B.host_id + 1000``; a copy-up into a container's upper dir gets the shifted owner.
One view per range covers every snapshot, present and future (a bind mount shows
later children of its directory), so it is made once (~3 ms: a user namespace fork
and three syscalls) at the first container of a range after a boot and kept
mounted; a container start pays an ``ismount`` check.

Safety: writes through a view would change the one shared copy, so the views live in
``snapshots/views`` (0700 root): host users, and host processes running as some
app's mapped ids, cannot reach them; containers see only their overlay.

Fallback: when the kernel or filesystem refuses (ENOSYS, EINVAL, EPERM, EOPNOTSUPP),
``get`` returns None for the rest of the process and the store unpacks shifted
copies per range as before (``PAAS_IDMAPPED=off`` forces that); ``paas report``
says which one is used. ``unmount_all`` (``system:uninstall``) removes the views.

Not here: which snapshots exist (``snapshot``), which range a container uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator

from .. import linux, modes
from ..errors import CommandFailed
from ..model import IdMap

__all__ = ["BASE_KEY", "IDENTITY", "Views", "mounted_views"]

log = logging.getLogger(__name__)

BASE_KEY = "base"  # the snapshots key of the unshifted trees seen through views
IDENTITY = IdMap(container_id=0, host_id=0, size=65536)  # how base trees are unpacked
_REFUSED = (1, 22, 38, 95)  # EPERM, EINVAL, ENOSYS, EOPNOTSUPP


class Views:
    """The idmapped views of ``<snapshots>/base`` of one instance."""

    def __init__(self, snapshots_root: str, *, enabled: bool = True) -> None:
        self.root = snapshots_root
        self.base = os.path.join(snapshots_root, BASE_KEY)
        self.dir = os.path.join(snapshots_root, "views")
        self.refused: str | None = None if enabled else "PAAS_IDMAPPED=off"

    def path(self, idmap: IdMap) -> str:
        return os.path.join(self.dir, idmap.key)

    def get(self, idmap: IdMap) -> str | None:
        """The view of ``idmap``'s range, mounted first if needed; None when idmapped
        mounts are refused here (then the caller unpacks shifted copies)."""
        if self.refused is not None:
            return None
        target = self.path(idmap)
        if os.path.ismount(target):
            return target
        with self._lock():
            if not os.path.ismount(target):
                try:
                    self._mount(idmap, target)
                except CommandFailed as err:
                    if err.returncode not in _REFUSED:
                        raise
                    self.refused = err.message
                    log.warning("idmapped mounts refused (%s): unpacking id-shifted "
                                "copies per id range instead", err.message)
                    return None
        return target

    def _mount(self, idmap: IdMap, target: str) -> None:
        modes.makedirs(self.base)  # root-only, as every snapshot key (paas.modes)
        os.makedirs(target, mode=0o700, exist_ok=True)
        fd = linux.userns_fd(idmap)
        try:
            linux.idmapped_bind(self.base, target, fd)
        finally:
            os.close(fd)

    def probe(self, idmap: IdMap) -> str | None:
        """Why idmapped views cannot be used here (None: they can). Leaves nothing
        behind: the trial mount is never attached."""
        if self.refused is not None:
            return self.refused
        src = next(p for p in (self.base, self.root, os.path.dirname(self.root), "/")
                   if os.path.isdir(p))
        try:
            fd = linux.userns_fd(idmap)
            try:
                linux.idmapped_bind(src, None, fd)
            finally:
                os.close(fd)
        except CommandFailed as err:
            return err.message
        return None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)  # the one gate in front of every range's view
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def unmount_all(self) -> list[str]:
        """Unmount every view (lazily: a running container's overlay keeps its own
        reference); the mount points unmounted."""
        done = []
        for point in mounted_views(self.dir):
            linux.umount(point, linux.MNT_DETACH)
            done.append(point)
            with contextlib.suppress(OSError):
                os.rmdir(point)
        return done


def mounted_views(views_dir: str) -> list[str]:
    """Mount points under ``views_dir`` (from /proc/self/mountinfo), deepest last."""
    prefix = views_dir.rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                out.append(point)
    return out
