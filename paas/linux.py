"""Thin wrappers of the few Linux syscalls paas makes directly (via libc and ctypes).

mount(2)/umount2(2) for container root filesystems and staged bind sources (an
exec of mount(8) costs a few ms on every container start), idmapped bind mounts
(open_tree, mount_setattr, move_mount: no libc wrappers in bookworm's glibc, so raw
syscall numbers, x86_64 and aarch64), loop devices by their ioctls (``loop_attach``:
0.2 ms, where ``losetup`` costs a few ms of exec) and prctl(PR_SET_CHILD_SUBREAPER).
Everything else goes through ``paas.proc``.
"""

from __future__ import annotations

import ctypes
import os

from .errors import CommandFailed

TYPE_CHECKING = False  # not typing's: importing typing costs ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from .model import IdMap, Mount

    T = TypeVar("T")

__all__ = ["MNT_DETACH", "bind_fd", "idmapped_bind", "loop_attach", "mount",
           "set_child_subreaper", "umount", "userns_fd"]

MNT_DETACH = 2
_MS_BIND = 4096
_MS_REC = 16384
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> CommandFailed:
    err = ctypes.get_errno()
    return CommandFailed(f"{what} failed: {os.strerror(err)}", returncode=err)


def mount(m: Mount, target: str) -> None:
    """Perform ``m`` on ``target`` (options become the fs-specific data string)."""
    data = ",".join(m.options).encode()
    if _libc.mount(m.source.encode(), target.encode(), m.type.encode(), 0, data) != 0:
        raise _fail(f"mount {m.type} on {target}")


def umount(target: str, flags: int = 0) -> None:
    if _libc.umount2(target.encode(), flags) != 0:
        raise _fail(f"umount {target}")


_LOOP_CTL_GET_FREE = 0x4C82
_LOOP_CONFIGURE = 0x4C0A  # Linux 5.8: set fd and flags in one call
_LO_FLAGS_AUTOCLEAR = 4
_LOOP_ATTEMPTS = 20


def _loop_config(backing_fd: int, name: str) -> bytes:
    """``struct loop_config`` (304 bytes): fd, block size, ``loop_info64``, reserved."""
    import struct

    info = struct.pack("=QQQQQIIII64s64s32sQQ", 0, 0, 0, 0, 0, 0, 0, 0, _LO_FLAGS_AUTOCLEAR,
                       name.encode()[:63], b"", b"", 0, 0)
    return struct.pack("=II", backing_fd, 0) + info + bytes(64)


def loop_attach(path: str) -> tuple[str, int]:
    """Attach the file ``path`` to a free loop device with autoclear (the device frees
    itself once nothing holds it: the caller mounts it, then closes the returned fd).
    Returns (device path, open fd of the device)."""
    import errno
    import fcntl

    backing = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(_LOOP_ATTEMPTS):
            ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
            try:
                n = fcntl.ioctl(ctl, _LOOP_CTL_GET_FREE)
            finally:
                os.close(ctl)
            dev = f"/dev/loop{n}"
            fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, _LOOP_CONFIGURE, _loop_config(backing, path))
            except OSError as err:
                os.close(fd)
                if err.errno == errno.EBUSY:  # another process took it meanwhile
                    continue
                raise CommandFailed(f"attach {path} to {dev} failed: {err.strerror}",
                                    returncode=err.errno or 1) from err
            return dev, fd
    finally:
        os.close(backing)
    raise CommandFailed(f"no free loop device for {path}", "see 'losetup -l'")


CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


def namespaces_with_idmap(user_path: str, net_path: str, idmap: IdMap) -> None:
    """A new user namespace with ``idmap``'s mapping and a network namespace it owns,
    bind-mounted on the (existing, empty) files ``user_path`` and ``net_path``; the bind
    mounts keep the namespaces alive."""

    def bind(pid: int) -> None:
        for ns, path in (("user", user_path), ("net", net_path)):
            _bind(f"/proc/{pid}/ns/{ns}", path)

    _in_mapped_child(CLONE_NEWUSER | CLONE_NEWNET, "CLONE_NEWUSER|CLONE_NEWNET", idmap, bind)


def userns_fd(idmap: IdMap) -> int:
    """An fd of a new user namespace whose uid and gid maps are ``idmap`` (for
    ``idmapped_bind``); the caller closes it (the fd keeps the namespace)."""
    return _in_mapped_child(CLONE_NEWUSER, "CLONE_NEWUSER", idmap, lambda pid: os.open(
        f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC))


def _in_mapped_child(flags: int, what: str, idmap: IdMap, then: Callable[[int], T]) -> T:
    """Fork a child that unshares ``flags`` (a user namespace among them), write its id
    maps from ``idmap``, return ``then(pid)`` and let the child exit."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe work until _exit
        os.close(go_w)  # else our own copy would keep the pipe from reaching EOF
        ok = _libc.unshare(flags) == 0
        os.write(ready_w, b"1" if ok else b"0")
        os.read(go_r, 1)
        os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise CommandFailed(f"unshare({what}) failed",
                                "check that user namespaces are enabled (user.max_user_namespaces)")
        line = f"{idmap.container_id} {idmap.host_id} {idmap.size}\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(line)
        return then(pid)
    finally:
        os.close(ready_r)
        os.close(go_w)  # EOF: the child exits
        os.waitpid(pid, 0)


# syscall numbers (x86_64, aarch64): open_tree, move_mount, mount_setattr
_SYSCALLS = {"x86_64": (428, 429, 442), "aarch64": (428, 429, 442)}
_OPEN_TREE_CLONE = 1
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_IDMAP = 0x00100000
_MS_PRIVATE = 1 << 18


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def idmapped_bind(source: str, target: str | None, userns: int) -> None:
    """Bind ``source`` on ``target`` with its owners shifted through the user namespace
    ``userns`` (an fd): a file of uid N shows as the namespace's host id of N; the view
    is private (no propagation). CommandFailed with the errno when
    the kernel or the filesystem refuses (ENOSYS, EINVAL, EPERM: no idmapped mounts).
    ``target`` None only tries: the detached mount goes when its fd is closed."""
    nums = _SYSCALLS.get(os.uname().machine)
    if nums is None:
        raise CommandFailed(f"idmapped mounts: unknown syscall numbers on {os.uname().machine}",
                            returncode=38)  # ENOSYS
    open_tree, move_mount, mount_setattr = nums
    fd = _libc.syscall(open_tree, _AT_FDCWD, source.encode(),
                       _OPEN_TREE_CLONE | os.O_CLOEXEC)
    if fd < 0:
        raise _fail(f"open_tree {source}")
    try:
        attr = _MountAttr(_MOUNT_ATTR_IDMAP, 0, _MS_PRIVATE, userns)
        if _libc.syscall(mount_setattr, fd, b"", _AT_EMPTY_PATH, ctypes.byref(attr),
                         ctypes.sizeof(attr)) != 0:
            raise _fail(f"mount_setattr(MOUNT_ATTR_IDMAP) on {source}")
        if target is not None and _libc.syscall(move_mount, fd, b"", _AT_FDCWD, target.encode(),
                                                _MOVE_MOUNT_F_EMPTY_PATH) != 0:
            raise _fail(f"move_mount onto {target}")
    finally:
        os.close(fd)


def _bind(source: str, target: str, flags: int = _MS_BIND) -> None:
    if _libc.mount(source.encode(), target.encode(), None, flags, None) != 0:
        raise _fail(f"bind mount {source} on {target}")


def bind_fd(fd: int, target: str) -> None:
    """Bind-mount (recursively, like ``-v``) the file open as ``fd`` (``O_PATH`` is
    enough) on ``target``: the kernel follows ``/proc/self/fd/N`` to that very inode,
    wherever its name points by now."""
    _bind(f"/proc/self/fd/{fd}", target, _MS_BIND | _MS_REC)


def set_child_subreaper(enabled: bool = True) -> None:
    """Orphaned descendants (a container init after ``runc run -d`` exits) become our children."""
    if _libc.prctl(_PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_CHILD_SUBREAPER)")


def is_child_subreaper() -> bool:
    value = ctypes.c_int(0)
    if _libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) != 0:
        return False
    return bool(value.value)
