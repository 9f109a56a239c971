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
inode tables and journal, ~4 MB for 10 GB) on a loop device attached by ioctl with
autoclear (the device goes with the last unmount), mounted before the overlay. mkfs
runs once per size (10-40 ms) into a template under ``PAAS_ROOT/tmp/layers``; each
layer is a sparse copy of it (``copy_file_range`` of its ~20 data extents: ~2 ms). This host's kernel has no quotas at all (project quotas would limit an upper
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
import threading
from dataclasses import dataclass
from typing import Protocol

from .. import linux, proc
from ..errors import CommandFailed
from ..model import Mount

__all__ = ["LayerBackend", "LayerPaths", "LoopExt4", "attached_layers", "backend_for",
           "detect_backend", "is_full", "mkfs_argv", "project_quotas"]

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


def _sparse_copy(src: str, dst: str) -> None:
    """Copy ``src`` to a new file ``dst`` (0600) with its holes: only data extents move."""
    s = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        d = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(d, os.fstat(s).st_size)
            pos = 0
            while True:
                try:
                    pos = os.lseek(s, pos, os.SEEK_DATA)
                except OSError:  # ENXIO: no data after pos
                    break
                end = os.lseek(s, pos, os.SEEK_HOLE)
                while pos < end:
                    n = os.copy_file_range(s, d, end - pos, pos, pos)
                    if n == 0:
                        raise OSError(f"short copy of {src} at {pos}")
                    pos += n
        finally:
            os.close(d)
    finally:
        os.close(s)


class LoopExt4:
    """ext4 in a sparse file on a loop device (any host filesystem, no quota support);
    ``templates``: where formatted empty images are kept, one per size."""

    name = "loop-ext4"

    def __init__(self, templates: str = "") -> None:
        self.templates = templates

    def _template(self, size: int) -> str:
        path = os.path.join(self.templates, f"ext4-{size}.img")
        if not os.path.exists(path):
            os.makedirs(self.templates, mode=0o700, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                try:
                    os.ftruncate(fd, size)
                finally:
                    os.close(fd)
                proc.run(mkfs_argv(tmp), what="format a writable layer")
                os.replace(tmp, path)  # complete or absent: a concurrent maker is fine
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return path

    def create(self, layer: LayerPaths, size: int) -> None:
        os.mkdir(layer.mountpoint, 0o700)
        _sparse_copy(self._template(size), layer.image)
        self.attach(layer)
        os.chmod(layer.mountpoint, 0o700)  # the ext4 root: nothing for host users
        for sub in (layer.upper, layer.work):
            os.mkdir(sub, 0o755)

    def attach(self, layer: LayerPaths) -> None:
        if os.path.ismount(layer.mountpoint):
            return
        # A busy layer was detached lazily (an exiting container's overlay still held
        # it): its filesystem lives on, on its loop device, until that last user goes.
        # Mount that device again (the same superblock) rather than attach the file to
        # a second device: two superblocks over one ext4 image would corrupt it.
        held = _backing_devices().get(os.path.realpath(layer.image))
        if held is not None:
            self._mount(layer, held)
            return
        dev, fd = linux.loop_attach(layer.image)
        try:
            self._mount(layer, dev)
        finally:
            os.close(fd)  # the mount holds the device now; autoclear frees it at umount

    @staticmethod
    def _mount(layer: LayerPaths, dev: str) -> None:
        try:
            linux.mount(Mount("ext4", dev), layer.mountpoint)
        except CommandFailed as err:
            raise CommandFailed(f"cannot mount the writable layer {layer.image}: {err.message}",
                                "check the file with: e2fsck -n " + layer.image) from err

    def detach(self, layer: LayerPaths, *, lazy: bool = False) -> None:
        if not os.path.ismount(layer.mountpoint):
            return
        try:
            linux.umount(layer.mountpoint, linux.MNT_DETACH if lazy else 0)
        except CommandFailed:  # busy (a reader of the upper dir): gone with its last user
            linux.umount(layer.mountpoint, linux.MNT_DETACH)

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


def project_quotas(mountinfo: str, path: str) -> bool:
    """Pure: whether the filesystem holding ``path`` is mounted with project quotas
    (ext4 ``prjquota``, XFS ``prjquota``/``pquota``): what a quota backend would need."""
    best, opts = "", ""
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        point = fields[4].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            sep = fields.index("-")
            best, opts = point, fields[sep + 3] if len(fields) > sep + 3 else ""
    return bool({"prjquota", "pquota"} & set(opts.split(",")))


def detect_backend(root: str) -> LayerBackend:
    """The backend for new layers under the instance root ``root``. Project quotas would
    go first where the filesystem has them (ext4 ``prjquota``, XFS ``pquota``); no kernel
    paas supports lacks loop devices, so ``LoopExt4`` is the fallback everywhere."""
    return LoopExt4(os.path.join(root, "tmp", "layers"))


def attached_layers(containers: str) -> list[str]:
    """The layer images under ``containers`` that a loop device holds (sysfs)."""
    prefix = containers.rstrip("/") + "/"
    return sorted(b for b in _backing_devices() if b.startswith(prefix))


def _backing_devices() -> dict[str, str]:
    """Backing file -> loop device, for every attached loop device (sysfs)."""
    found = {}
    try:
        names = os.listdir("/sys/block")
    except OSError:
        return {}
    for name in names:
        if not name.startswith("loop"):
            continue
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                found[f.read().strip()] = f"/dev/{name}"
        except OSError:
            continue  # not attached
    return found


def is_full(layer: LayerPaths) -> bool:
    """Whether the attached layer has (almost) no room left."""
    try:
        st = os.statvfs(layer.mountpoint)
    except OSError:
        return False
    return os.path.ismount(layer.mountpoint) and st.f_bavail * st.f_frsize < _FULL_BYTES
