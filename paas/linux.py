"""Thin wrappers of the few Linux syscalls paas makes directly (via libc and ctypes).

mount(2)/umount2(2) for container root filesystems (an exec of mount(8) costs
a few ms on every container start), loop devices by their ioctls (``loop_attach``:
0.2 ms, where ``losetup`` costs a few ms of exec) and prctl(PR_SET_CHILD_SUBREAPER).
Everything else goes through ``paas.proc``.
"""

from __future__ import annotations

import ctypes
import os

from .errors import CommandFailed

TYPE_CHECKING = False  # not typing's: importing typing costs ~3 ms of CLI start
if TYPE_CHECKING:
    from .model import IdMap, Mount

__all__ = ["MNT_DETACH", "loop_attach", "mount", "set_child_subreaper", "umount"]

MNT_DETACH = 2
_MS_BIND = 4096
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
    bind-mounted on the (existing, empty) files ``user_path`` and ``net_path``.

    A forked child unshares both; we write its id maps and bind its namespace
    files, then let it exit. The bind mounts keep the namespaces alive.
    """
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe work until _exit
        os.close(go_w)  # else our own copy would keep the pipe from reaching EOF
        ok = _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0
        os.write(ready_w, b"1" if ok else b"0")
        os.read(go_r, 1)
        os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise CommandFailed("unshare(CLONE_NEWUSER|CLONE_NEWNET) failed",
                                "check that user namespaces are enabled (user.max_user_namespaces)")
        line = f"{idmap.container_id} {idmap.host_id} {idmap.size}\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(line)
        for ns, path in (("user", user_path), ("net", net_path)):
            _bind(f"/proc/{pid}/ns/{ns}", path)
    finally:
        os.close(ready_r)
        os.close(go_w)  # EOF: the child exits
        os.waitpid(pid, 0)


def _bind(source: str, target: str) -> None:
    if _libc.mount(source.encode(), target.encode(), None, _MS_BIND, None) != 0:
        raise _fail(f"bind mount {source} on {target}")


def set_child_subreaper(enabled: bool = True) -> None:
    """Orphaned descendants (a container init after ``runc run -d`` exits) become our children."""
    if _libc.prctl(_PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_CHILD_SUBREAPER)")


def is_child_subreaper() -> bool:
    value = ctypes.c_int(0)
    if _libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) != 0:
        return False
    return bool(value.value)
