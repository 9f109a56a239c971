"""Host paths of bind mounts: opened once per container start, checked on what was opened.

``open_checked`` opens a bind's source (``O_PATH``) and checks the file it got, by the
path the kernel reports for that open file (``/proc/self/fd/N``), so what is checked is
the inode itself, not a name that can change. The runtime then mounts that very inode
(``paas.linux.bind_fd``: mount(2) of ``/proc/self/fd/N``, see ``runtime.bundle``):
swapping a path component for a symlink after the check changes nothing. The policies
(``model.BindPolicy``):

- ``strict`` (app storage, ``storage:mount``; ``-v ...:strict``): every component is
  opened with ``O_NOFOLLOW``, so a symlink anywhere in the path is refused, and the
  final one must be a directory. The path may not be, be inside or contain a system
  directory (``SYSTEM_DIRS``), the instance's ``PAAS_ROOT`` or the default root (their
  ``data/storage/NAME`` excepted), nor the ssh user's key directory (that of
  ``PAAS_AUTHORIZED_KEYS``).
- ``host`` (``container:run -v``): symlinks are followed, as Docker's ``-v`` does, and
  any file type may be mounted; the resolved path may not be in or contain paas's state
  (the same roots, storage excepted). System directories stay the operator's choice.
- ``internal``: paas's own build directories, not checked.

Why these system directories: ``/etc`` (credentials, sudoers, sshd and cron config),
``/root`` (root's keys and shell startup files), ``/boot`` and the binary trees ``/usr``,
``/bin``, ``/sbin``, ``/lib*`` (writing there is running code as root later), ``/proc``,
``/sys``, ``/dev`` (the host's processes, kernel knobs and disks), ``/run``,
``/var/run``, ``/var/lock`` (daemons' sockets, paasd's among them), ``/var/spool``
(cron and at jobs) and ``/var/lib/dpkg`` (maintainer scripts run as root). Anything
else (``/srv``, ``/mnt``, ``/home/USER``, ``/var/lib/OTHER``) is the operator's.

Not covered: the roots of other instances with a non-default ``PAAS_ROOT`` (nothing
lists them); aliases made by root (a bind mount of PAAS_ROOT elsewhere is root's own
decision); hard links to files for ``host`` binds (``fs.protected_hardlinks`` keeps
users from linking files they do not own).
"""

from __future__ import annotations

import os
import stat

from .errors import InvalidArgument
from .model import BindPolicy
from .paths import DEFAULT_ROOT

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["SYSTEM_DIRS", "Guard", "check", "fd_path", "open_checked", "open_path", "refusal"]

SYSTEM_DIRS = (
    "/etc", "/root", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    "/proc", "/sys", "/dev", "/run", "/var/run", "/var/lock", "/var/spool", "/var/lib/dpkg",
)
_STORAGE = ("data", "storage")  # Paths.storage, relative to a root


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


class Guard:
    """What bind sources may not reach: paas roots (their storage subtrees excepted)
    and, for ``strict`` binds, protected directories."""

    __slots__ = ("protected", "roots")

    def __init__(self, root: str, protected: Iterable[str] = ()) -> None:
        roots = {os.path.realpath(root), os.path.realpath(DEFAULT_ROOT), root, DEFAULT_ROOT}
        self.roots = tuple(sorted(roots))
        self.protected = tuple(sorted({*SYSTEM_DIRS, *protected}))

    def __repr__(self) -> str:
        return f"Guard(roots={self.roots!r}, protected={self.protected!r})"

    @classmethod
    def for_instance(cls, root: str, env: Mapping[str, str] | None = None) -> Guard:
        """The instance's guard: its root, and the directory of the ssh user's keys
        (``PAAS_AUTHORIZED_KEYS``: an app writing there would add keys to sshd)."""
        env = os.environ if env is None else env
        keys = env.get("PAAS_AUTHORIZED_KEYS")
        return cls(root, (os.path.dirname(os.path.abspath(keys)),) if keys else ())


def _state_refusal(real: str, guard: Guard) -> tuple[str, str] | None:
    for root in guard.roots:
        storage = os.path.join(root, *_STORAGE)
        if _inside(real, root) and not (real != storage and _inside(real, storage)):
            return (f"is paas's own state ({root})",
                    "mount a directory of its own, e.g.: paas storage:ensure-directory NAME")
        if _inside(root, real):
            return (f"holds paas's own state ({root})",
                    "mount a directory that does not contain PAAS_ROOT")
    return None


def refusal(real: str, policy: str, guard: Guard) -> tuple[str, str] | None:
    """Why ``real`` (a canonical path, no symlinks) may not be a ``policy`` bind source:
    ``(what is wrong, what to do)``, or None when it may."""
    if policy == BindPolicy.INTERNAL:
        return None
    found = _state_refusal(real, guard)
    if found is not None or policy != BindPolicy.STRICT:
        return found
    for top in guard.protected:
        if _inside(real, top):
            return (f"is {'' if real == top else 'inside '}the system directory {top}",
                    "storage mounts cannot reach system directories: mount one of its own, "
                    + "e.g. under /srv, or: paas storage:ensure-directory NAME")
        if _inside(top, real):
            return (f"contains the system directory {top}",
                    "mount a directory of its own, e.g. under /srv")
    return None


def fd_path(fd: int) -> str:
    """The kernel's current path of an open file (its dentry, not the name it was opened by)."""
    return os.readlink(f"/proc/self/fd/{fd}")


def _missing(path: str, err: OSError) -> InvalidArgument:
    if isinstance(err, FileNotFoundError):
        return InvalidArgument(f"host path {path} does not exist",
                               "create it first (paas storage:ensure-directory NAME makes one)")
    return InvalidArgument(f"host path {path}: {err.strerror}", "check the path and its permissions")


def open_path(path: str, *, follow: bool) -> int:
    """An ``O_PATH`` fd of ``path`` (absolute). ``follow=False``: each component is opened
    with ``O_NOFOLLOW`` from ``/``, and a symlink in any of them is refused."""
    if not path.startswith("/") or "\0" in path:
        raise InvalidArgument(f"host path {path[:200]!r} is not an absolute path",
                              "use an absolute path")
    flags = os.O_PATH | os.O_CLOEXEC
    if follow:
        try:
            return os.open(path, flags)
        except OSError as err:
            raise _missing(path, err) from None
    fd = os.open("/", flags | os.O_DIRECTORY)
    walked = ""
    try:
        for comp in (c for c in path.split("/") if c and c != "."):
            if comp == "..":
                raise InvalidArgument(f"host path {path} contains '..'",
                                      "write the path without '..'")
            walked += "/" + comp
            try:
                nfd = os.open(comp, flags | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as err:
                raise _missing(walked, err) from None
            os.close(fd)
            fd = nfd
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                where = path if walked == path.rstrip("/") else f"{path}: {walked}"
                raise InvalidArgument(
                    f"host path {where} is a symlink",
                    "storage mounts never follow symlinks: put the real directory there, or "
                    "unmount it (paas storage:unmount APP HOSTDIR:DIR)")
            if walked != path.rstrip("/") and not stat.S_ISDIR(mode):
                raise InvalidArgument(f"host path {path}: {walked} is not a directory",
                                      "check the path")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refuse(path: str, real: str, policy: str, guard: Guard) -> None:
    why = refusal(os.path.normpath(real), policy, guard)
    if why is not None:
        shown = path if real == path else f"{path} (which is {real})"
        raise InvalidArgument(f"host path {shown} {why[0]}", why[1])


def open_checked(path: str, policy: str, guard: Guard) -> int:
    """``path`` opened per ``policy`` and checked (see the module docstring); an ``O_PATH``
    fd the caller closes. Raises InvalidArgument with one line saying why not."""
    strict = policy == BindPolicy.STRICT
    _refuse(path, path, policy, guard)  # the name as given first: a missing path of paas's
    fd = open_path(path, follow=not strict)
    try:
        real = fd_path(fd)
        if not real.startswith("/") or real.endswith(" (deleted)"):
            raise InvalidArgument(f"host path {path} was removed while it was opened",
                                  "try again")
        if strict and not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise InvalidArgument(f"host path {path} is not a directory", "mount a directory")
        _refuse(path, real, policy, guard)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check(path: str, policy: str, guard: Guard) -> None:
    """``open_checked`` without keeping the fd: the check ``storage:mount`` makes up front
    (every container start makes it again)."""
    os.close(open_checked(path, policy, guard))
