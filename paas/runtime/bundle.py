"""A container's OCI bundle on disk: directories, rootfs mount, /etc files, config.json.

Layout under ``<PAAS_ROOT>/containers/<id>/``::

    config.json   the OCI runtime spec (rewritten on every start)
    rootfs/       overlay mount point (mounted while the container runs)
    upper/ work/  the container's writable layer (without a disk limit)
    layer.img layer/   with a disk limit: its own filesystem, upper and work inside
                  (``paas.runtime.disk``), attached while the rootfs is mounted
    hosts hostname resolv.conf   bind-mounted over the container's /etc files
    binds/N       each -v/storage source, opened and checked at this start, mounted
                  here by fd (runc binds these; unmounted when the container stops)
    container.log (+ .1, .2)     json-file logs

Mounting and unmounting are direct syscalls (``paas.linux``); nothing here decides
container state (that is ``lifecycle``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from .. import hostpath, linux, modes
from ..config import Context
from ..errors import CommandFailed
from ..model import BindMount, BindPolicy, Container, IdMap, Mount
from .disk import LayerPaths, backend_for, detect_backend

__all__ = ["Bundle", "hosts_file", "resolv_conf"]


def hosts_file(hostname: str, name: str, ip: str | None = None) -> str:
    """Docker's /etc/hosts: localhost lines, then the container's own names on its address."""
    names = " ".join(dict.fromkeys(n for n in (hostname, name) if n))
    return (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
        f"ff02::2\tip6-allrouters\n{ip or '127.0.1.1'}\t{names}\n"
    )


def resolv_conf(host_text: str) -> str:
    """The host's resolv.conf, minus loopback resolvers a container cannot reach."""
    keep = []
    for line in host_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and (
            parts[1].startswith("127.") or parts[1] == "::1"
        ):
            continue
        keep.append(line)
    return "\n".join(keep) + "\n"


class Bundle:
    """Paths and host-side setup of one container's bundle."""

    def __init__(self, ctx: Context, cid: str) -> None:
        self.ctx = ctx
        self.cid = cid
        self.dir = ctx.paths.container_dir(cid)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    @property
    def rootfs(self) -> str:
        return self.path("rootfs")

    @property
    def log_path(self) -> str:
        return self.path("container.log")

    @property
    def cgroups_path(self) -> str:
        return f"/{self.ctx.cgroup_parent}/{self.cid}"

    def create_dirs(self, idmap: IdMap | None, disk: int | None = None) -> None:
        """The bundle dir, searchable only by root and the container's mapped root group
        (runc init opens the rootfs as that uid), and its rootfs, upper and work dirs;
        ``disk``: bytes of a size-limited writable layer (upper and work on its own fs)."""
        modes.makedirs(self.ctx.paths.containers, modes.TRAVERSE_DIR)
        modes.private_bundle_dir(self.dir, idmap.host_id if idmap is not None else None)
        os.mkdir(self.path("rootfs"), 0o700)  # a mount point: the overlay's root shows
        if disk is None:
            os.mkdir(self.path("work"), 0o700)
            os.mkdir(self.path("upper"), 0o755)
        else:
            detect_backend(self.ctx.paths.root).create(self.layer, disk)
        if idmap is not None:
            # the upper dir's owner is what the container sees as the owner of "/"
            os.chown(self.upper, idmap.host_id, idmap.host_id)

    # -- the writable layer (paas.runtime.disk when it is size-limited) ----------------
    @property
    def layer(self) -> LayerPaths:
        return LayerPaths(self.dir)

    @property
    def limited(self) -> bool:
        """Whether the writable layer is a filesystem of its own (a disk limit)."""
        return os.path.isdir(self.layer.mountpoint)

    @property
    def upper(self) -> str:
        return self.layer.upper if self.limited else self.path("upper")

    @property
    def work(self) -> str:
        return self.layer.work if self.limited else self.path("work")

    def attach_layer(self) -> None:
        backend = backend_for(self.layer)
        if backend is not None:
            backend.attach(self.layer)

    def detach_layer(self, *, lazy: bool = False) -> None:
        backend = backend_for(self.layer)
        if backend is not None:
            backend.detach(self.layer, lazy=lazy)

    @contextlib.contextmanager
    def layer_attached(self) -> Iterator[None]:
        """The upper dir readable for the block (a stopped container's limited layer is
        attached for it, and detached again after)."""
        was = not self.limited or os.path.ismount(self.layer.mountpoint)
        self.attach_layer()
        try:
            yield
        finally:
            if not was:
                self.detach_layer()

    def write_etc(self, c: Container, *, ip: str | None = None,
                  resolv: str | None = None) -> list[dict[str, Any]]:
        """Write hosts/hostname/resolv.conf and return their OCI bind mounts.

        ``ip`` is the container's bridge address; ``resolv`` the resolv.conf that works
        from the bridge (default: the host's, minus loopback resolvers)."""
        hostname = c.config.hostname or c.id[:12]
        if c.config.network == "host":
            sources = {"/etc/hosts": "/etc/hosts", "/etc/resolv.conf": "/etc/resolv.conf"}
        else:
            if resolv is None:
                try:
                    with open("/etc/resolv.conf") as f:
                        resolv = resolv_conf(f.read())
                except FileNotFoundError:
                    resolv = ""
            files = {
                "hosts": hosts_file(hostname, c.name, ip),
                "hostname": hostname + "\n",
                "resolv.conf": resolv,
            }
            for fname, text in files.items():
                tmp = self.path(fname + ".tmp")
                with open(tmp, "w") as f:
                    f.write(text)
                os.chmod(tmp, modes.SHARED_FILE)  # read by every user in the container
                os.replace(tmp, self.path(fname))
            sources = {f"/etc/{n}": self.path(n) for n in files}
        return [
            {"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}
            for dst, src in sources.items()
        ]

    def is_mounted(self) -> bool:
        return os.path.ismount(self.rootfs)

    def mount_rootfs(self, m: Mount) -> None:
        if not self.is_mounted():
            self.attach_layer()
            linux.mount(m, self.rootfs)

    def unmount_rootfs(self, *, keep_layer: bool = False) -> None:
        """The rootfs and the staged bind sources (the container has stopped); unless
        ``keep_layer`` (its upper dir is read next), detach a limited writable layer."""
        self.unstage_binds()
        if self.is_mounted():
            linux.umount(self.rootfs)
        if not keep_layer:
            self.detach_layer()

    def stage_binds(self, binds: tuple[BindMount, ...],
                    guard: hostpath.Guard) -> tuple[BindMount, ...]:
        """Open and check every bind source (``paas.hostpath``) and mount the opened
        directory or file on ``binds/N``: the binds to give runc, whose sources are those
        mounts, so the container gets exactly what was checked however the host path
        changes meanwhile. Internal binds stay as they are. All or nothing."""
        self.unstage_binds()
        staged = []
        try:
            for i, b in enumerate(binds):
                if b.policy == BindPolicy.INTERNAL:
                    staged.append(b)
                    continue
                fd = hostpath.open_checked(b.source, b.policy, guard)
                try:
                    point = self._mount_point(i, stat.S_ISDIR(os.fstat(fd).st_mode))
                    linux.bind_fd(fd, point)
                finally:
                    os.close(fd)
                staged.append(replace(b, source=point))
        except BaseException:
            self.unstage_binds()
            raise
        return tuple(staged)

    def _mount_point(self, i: int, is_dir: bool) -> str:
        """``binds/N``, an empty directory or file; kept between starts (an rmdir costs
        more than the mount itself on a busy disk)."""
        top = self.path("binds")
        point = os.path.join(top, str(i))
        try:
            mode = os.lstat(point).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode) != is_dir:  # a file bind became a dir
            if stat.S_ISDIR(mode):
                os.rmdir(point)
            else:
                os.unlink(point)
            mode = None
        if mode is None:
            os.makedirs(top, mode=0o700, exist_ok=True)
            if is_dir:
                os.mkdir(point, 0o700)
            else:
                os.close(os.open(point, os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        return point

    def unstage_binds(self) -> None:
        """Unmount every ``binds/N`` (the mount points stay, empty). Raises rather than
        leave one mounted: ``remove`` deletes the bundle, and must never reach into a
        bind source."""
        top = self.path("binds")
        try:
            names = os.listdir(top)
        except FileNotFoundError:
            return
        for name in names:
            point = os.path.join(top, name)
            while True:  # a mount may hide an older one (a crash between two starts)
                try:
                    linux.umount(point, linux.MNT_DETACH)
                except CommandFailed as err:
                    if err.returncode == errno.EINVAL:  # not a mount point (any more)
                        break
                    raise

    def write_spec(self, spec: dict[str, Any]) -> None:
        tmp = self.path("config.json.tmp")  # the environment: root-only
        with open(modes.create(tmp), "w") as f:
            f.write(json.dumps(spec))  # dumps uses the C encoder; dump(f) does not
        os.replace(tmp, self.path("config.json"))

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a process in this container's memory cgroup
        (v1 ``memory.oom_control``, v2 ``memory.events``: both count ``oom_kill``)."""
        for path in (f"/sys/fs/cgroup/memory{self.cgroups_path}/memory.oom_control",
                     f"/sys/fs/cgroup{self.cgroups_path}/memory.events"):
            try:
                with open(path) as f:
                    for line in f:
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
                return False
            except OSError:
                continue
        return False

    def remove(self) -> None:
        """Unmount and delete the bundle; the container must not be running."""
        if os.path.isdir(self.dir):
            self.unstage_binds()  # first: rmtree must never reach into a bind source
            if self.is_mounted():
                linux.umount(self.rootfs, linux.MNT_DETACH)
            self.detach_layer(lazy=True)
            shutil.rmtree(self.dir)
