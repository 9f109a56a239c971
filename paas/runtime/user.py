"""Resolve Docker ``USER`` strings against an (untrusted) image rootfs, and vet the rootfs.

Covers: ``resolve_user`` turns "", "name", "uid", "name:group", "uid:gid",
"name:gid", "uid:group" into (uid, gid, supplementary gids) the way Docker's
``moby/sys/user.GetExecUser`` does (numeric ids need no passwd entry; a name
must have one; supplementary groups come from /etc/group membership only in
the implicit-group form). ``check_rootfs`` refuses a rootfs whose /dev, /proc
or /sys is not a real directory.

SECURITY: the rootfs comes from an image and is untrusted. Files inside it are
opened one path component at a time with ``O_NOFOLLOW`` relative to directory
fds; symlinks are resolved relative to the rootfs (like ``chroot``), so
``etc/passwd -> /etc/shadow`` reads the *image's* /etc/shadow and never the
host's. Only regular files are read (a FIFO cannot hang us), up to 4 MiB.

Not covered: mapping ids through the user namespace (see ``model.IdMap``),
home directories, NSS/LDAP.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from ..errors import FailedPrecondition, InvalidArgument, NotFound

__all__ = ["MAX_ID", "check_rootfs", "read_in_root", "resolve_user"]

MAX_ID = 2**31 - 1
_MAX_FILE = 4 * 1024 * 1024
_MAX_SYMLINKS = 40


@dataclass(frozen=True)
class _Passwd:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


# ---- reading a file inside an untrusted root -------------------------------------------

def _open_in_root(root_fd: int, path: str) -> int | None:
    """An fd of the regular file ``path`` inside ``root_fd``, or None when it does not exist."""
    pending = [p for p in path.split("/")]
    stack = [os.dup(root_fd)]
    links = 0
    try:
        while pending:
            name = pending.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                target = os.readlink(name, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending = target.split("/") + pending
            elif any(p not in ("", ".") for p in pending):
                if not stat.S_ISDIR(st.st_mode):
                    return None
                flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                stack.append(os.open(name, flags, dir_fd=stack[-1]))
            else:
                if not stat.S_ISREG(st.st_mode):
                    raise OSError(errno.EINVAL, "not a regular file", path)
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                fd = os.open(name, flags, dir_fd=stack[-1])
                if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat
                    os.close(fd)
                    raise OSError(errno.EINVAL, "not a regular file", path)
                return fd
        return None  # the path named a directory (or the root itself)
    finally:
        for fd in stack:
            os.close(fd)


def read_in_root(rootfs: str, path: str) -> str | None:
    """The text of ``path`` resolved inside ``rootfs`` (chroot-like), None if it is missing.

    Raises ``InvalidArgument`` when the path exists but is not a readable
    regular file (a device, a FIFO, a symlink loop, too big).
    """
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise FailedPrecondition(f"cannot open rootfs {rootfs}: {err.strerror}",
                                 "check that the container's snapshot is mounted") from err
    try:
        fd = _open_in_root(root_fd, path)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as err:
        raise InvalidArgument(f"cannot read {path} in the image: {err.strerror or err}",
                              "the image's file must be a regular file; fix the image") from err
    finally:
        os.close(root_fd)
    if len(data) > _MAX_FILE:
        raise InvalidArgument(f"{path} in the image is larger than {_MAX_FILE} bytes",
                              "fix the image")
    return data.decode("utf-8", errors="replace")


# ---- passwd / group parsing -------------------------------------------------------------

def _parse_id(value: str) -> int | None:
    value = value.strip()
    if not value.isdigit():
        return None
    n = int(value)
    return n if n <= MAX_ID else None


def _parse_passwd(text: str) -> list[_Passwd]:
    out = []
    for line in text.splitlines():
        f = line.strip().split(":")
        if not line.strip() or line.startswith("#") or len(f) < 4:
            continue
        uid, gid = _parse_id(f[2]), _parse_id(f[3])
        if uid is not None and gid is not None:
            out.append(_Passwd(f[0], uid, gid))
    return out


def _parse_group(text: str) -> list[_Group]:
    out = []
    for line in text.splitlines():
        f = line.strip().split(":")
        if not line.strip() or line.startswith("#") or len(f) < 3:
            continue
        gid = _parse_id(f[2])
        members = tuple(m for m in (f[3].split(",") if len(f) > 3 else ()) if m)
        if gid is not None:
            out.append(_Group(f[0], gid, members))
    return out


def _numeric(arg: str, what: str) -> int | None:
    """``arg`` as an id if it is numeric (range-checked), else None."""
    try:
        n = int(arg)
    except ValueError:
        return None
    if not 0 <= n <= MAX_ID:
        raise InvalidArgument(f"{what} id {arg} is out of range",
                              f"use an id between 0 and {MAX_ID}")
    return n


def _lookup_user(rootfs: str, user_arg: str) -> tuple[str, int, int]:
    """(name, uid, gid) for the user part of a USER string; name "" when unknown."""
    uid_arg = _numeric(user_arg, "user") if user_arg else 0
    entries = _parse_passwd(read_in_root(rootfs, "/etc/passwd") or "")
    for e in entries:
        if (uid_arg is not None and e.uid == uid_arg) or (uid_arg is None and e.name == user_arg):
            return e.name, e.uid, e.gid
    if uid_arg is None:
        raise NotFound(f"unable to find user {user_arg}: no matching entries in passwd file",
                       "use a user that exists in the image's /etc/passwd, or a numeric uid[:gid]")
    return "", uid_arg, 0


def resolve_user(rootfs: str, user: str) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, supplementary gids) for Docker's ``USER``/``--user`` value ``user``.

    Empty means root (0:0). A numeric uid or gid needs no entry in the image;
    names must be found in the image's /etc/passwd or /etc/group.
    """
    user = user.strip()
    user_arg, sep, group_arg = user.partition(":")
    if sep and not group_arg:
        raise InvalidArgument(f"invalid user {user!r}: empty group",
                              "use USER, USER:GROUP, UID or UID:GID")
    name, uid, gid = _lookup_user(rootfs, user_arg)
    if not group_arg and not name:
        return uid, gid, ()
    groups = _parse_group(read_in_root(rootfs, "/etc/group") or "")
    if not group_arg:
        return uid, gid, tuple(g.gid for g in groups if name in g.members)
    gid_arg = _numeric(group_arg, "group")
    for g in groups:
        if g.name == group_arg or (gid_arg is not None and g.gid == gid_arg):
            return uid, g.gid, ()
    if gid_arg is None:
        raise NotFound(f"unable to find group {group_arg}: no matching entries in group file",
                       "use a group that exists in the image's /etc/group, or a numeric gid")
    return uid, gid_arg, ()


# ---- rootfs sanity ----------------------------------------------------------------------

_MOUNT_DIRS = ("dev", "proc", "sys")


def check_rootfs(rootfs: str) -> None:
    """Refuse a rootfs whose /dev, /proc or /sys exists but is not a real directory.

    A symlink there could redirect runc's mounts; a file makes the mount fail
    with an obscure error. Missing directories are fine: runc creates them.
    """
    for name in _MOUNT_DIRS:
        try:
            st = os.lstat(os.path.join(rootfs, name))
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise FailedPrecondition(
                f"the image's /{name} is {kind}",
                f"/{name} must be a plain directory (or absent) in the image; rebuild it",
            )
