"""A container's OCI bundle on disk: directories, rootfs mount, /etc files, config.json.

Layout under ``<PAAS_ROOT>/containers/<id>/``::

    config.json   the OCI runtime spec (rewritten on every start)
    rootfs/       overlay mount point (mounted while the container runs)
    upper/ work/  the container's writable layer (without a disk limit)
    layer.img layer/   with a disk limit: its own filesystem, upper and work inside
                  (``paas.runtime.disk``), attached while the rootfs is mounted
    hosts hostname resolv.conf   bind-mounted over the container's /etc files
    container.log (+ .1, .2)     json-file logs

Mounting and unmounting are direct syscalls (``paas.linux``); nothing here decides
container state (that is ``lifecycle``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

from .. import linux
from ..config import Context
from ..model import Container, IdMap, Mount
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
        """The bundle's directories; ``disk``: bytes of a size-limited writable layer."""
        os.makedirs(self.ctx.paths.containers, mode=0o711, exist_ok=True)
        os.mkdir(self.dir, 0o711)
        if disk is None:
            for sub in ("rootfs", "upper", "work"):
                os.mkdir(self.path(sub), 0o755)
        else:
            os.mkdir(self.rootfs, 0o755)
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
                os.chmod(tmp, 0o644)
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
        """Unmount the rootfs and (unless ``keep_layer``: its upper dir is read next)
        detach a limited writable layer."""
        if self.is_mounted():
            linux.umount(self.rootfs)
        if not keep_layer:
            self.detach_layer()

    def write_spec(self, spec: dict[str, Any]) -> None:
        tmp = self.path("config.json.tmp")
        with open(tmp, "w") as f:
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
            if self.is_mounted():
                linux.umount(self.rootfs, linux.MNT_DETACH)
            self.detach_layer(lazy=True)
            shutil.rmtree(self.dir)
