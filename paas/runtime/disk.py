"""A container's writable layer with a size limit: a filesystem of its own.

A container with a disk limit (``--storage-opt size=``, an app's ``resource:limit
--disk`` or the instance's default, a build container's default) keeps its overlay
upper and work dirs on a filesystem exactly that big, so a full layer is ENOSPC
inside the container and the host loses at most the limit. Layout in its bundle
(``LayerPaths``)::

    layer.img            sparse file of the limit's size (its allocated blocks are the
                         layer's real usage on the host)
    layer/               its mount point (0700) while the layer is attached
    layer/upper, work    the overlay's writable layer

The one backend here is ``LoopExt4``: ext4 (``mkfs_argv``: no reserved blocks, lazy
inode tables and journal, ~10 ms and ~4 MB for 10 GB) on a loop device attached by
ioctl with autoclear (the device goes with the last unmount), mounted before the
overlay. This host's kernel has no quotas at all (project quotas would limit an upper
dir in place); ``LayerBackend`` is the seam for such a backend, picked per layer by
``backend_for`` (a layer keeps the backend it was made with) and for new layers by
``detect_backend``. Containers without a limit never reach this module.

Attach and detach are idempotent: a container's layer is attached while its rootfs is
mounted (or while a build or a commit reads its upper dir) and detached with it, so a
stopped container holds no loop device; a start, a restart after a reboot or a commit
attaches it again. Not here: the overlay (``Bundle``), sizes (``paas.runtime.limits``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from .. import linux, proc
from ..errors import CommandFailed
from ..model import Mount

__all__ = ["LayerBackend", "LayerPaths", "LoopExt4", "backend_for", "detect_backend",
           "is_full", "mkfs_argv"]

_FULL_BYTES = 1 << 20  # a layer with less than this free after a failed step is "full"


@dataclass(frozen=True)
class LayerPaths:
    """Where one bundle's limited writable layer lives."""

    bundle: str

    @property
    def image(self) -> str:
        return os.path.join(self.bundle, "layer.img")

    @property
    def mountpoint(self) -> str:
        return os.path.join(self.bundle, "layer")

    @property
    def upper(self) -> str:
        return os.path.join(self.mountpoint, "upper")

    @property
    def work(self) -> str:
        return os.path.join(self.mountpoint, "work")


def mkfs_argv(image: str) -> list[str]:
    """Pure: format ``image`` as ext4 fast and small: no blocks reserved for root (the
    container gets all of its limit), inode tables and journal zeroed lazily by the
    kernel (sparse until written), no discard pass over the (empty) file."""
    return ["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "paas-layer",
            "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", image]


class LayerBackend(Protocol):
    """How a limited writable layer is made, attached and measured."""

    name: str

    def create(self, layer: LayerPaths, size: int) -> None:
        """Make the layer ``size`` bytes big and leave it attached (empty upper/work)."""

    def attach(self, layer: LayerPaths) -> None:
        """Make ``layer.upper``/``work`` reachable (no-op when they are)."""

    def detach(self, layer: LayerPaths, *, lazy: bool = False) -> None:
        """Undo ``attach`` (no-op when not attached); ``lazy``: even while busy."""

    def usage(self, layer: LayerPaths) -> int:
        """Bytes the layer really takes on the host."""


class LoopExt4:
    """ext4 in a sparse file on a loop device (any host filesystem, no quota support)."""

    name = "loop-ext4"

    def create(self, layer: LayerPaths, size: int) -> None:
        os.mkdir(layer.mountpoint, 0o700)
        fd = os.open(layer.image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        proc.run(mkfs_argv(layer.image), what="format the container's writable layer")
        self.attach(layer)
        os.chmod(layer.mountpoint, 0o700)  # the ext4 root: nothing for host users
        for sub in (layer.upper, layer.work):
            os.mkdir(sub, 0o755)

    def attach(self, layer: LayerPaths) -> None:
        if os.path.ismount(layer.mountpoint):
            return
        dev, fd = linux.loop_attach(layer.image)
        try:
            linux.mount(Mount("ext4", dev), layer.mountpoint)
        except CommandFailed as err:
            raise CommandFailed(f"cannot mount the writable layer {layer.image}: {err.message}",
                                "check the file with: e2fsck -n " + layer.image) from err
        finally:
            os.close(fd)  # the mount holds the device now; autoclear frees it at umount

    def detach(self, layer: LayerPaths, *, lazy: bool = False) -> None:
        if os.path.ismount(layer.mountpoint):
            linux.umount(layer.mountpoint, linux.MNT_DETACH if lazy else 0)

    def usage(self, layer: LayerPaths) -> int:
        try:
            return os.stat(layer.image).st_blocks * 512
        except FileNotFoundError:
            return 0


def backend_for(layer: LayerPaths) -> LayerBackend | None:
    """The backend of an existing layer; None: the bundle has no limited layer."""
    if os.path.exists(layer.image):
        return LoopExt4()
    return None


def detect_backend(root: str) -> LayerBackend:
    """The backend for new layers under ``root``. Project quotas would go first where
    the filesystem has them (ext4 ``prjquota``, XFS ``pquota``); no kernel paas
    supports lacks loop devices, so ``LoopExt4`` is the fallback everywhere."""
    return LoopExt4()


def is_full(layer: LayerPaths) -> bool:
    """Whether the attached layer has (almost) no room left."""
    try:
        st = os.statvfs(layer.mountpoint)
    except OSError:
        return False
    return os.path.ismount(layer.mountpoint) and st.f_bavail * st.f_frsize < _FULL_BYTES
