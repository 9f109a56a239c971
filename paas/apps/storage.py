"""Persistent storage of an app (Dokku's ``storage:*``): host directories bind-mounted
into every process container of its next release.

``parse_mount`` checks a ``HOSTDIR:CONTAINERDIR[:ro]`` spec without touching the
host; ``check_host_dir`` then looks at the host directory with the rule every start of
a container applies again (``paas.hostpath``, policy ``strict``: no symlink in any
component, not in or holding paas's state, ``Paths.storage/NAME`` excepted, nor a system
directory);
``StorageStore`` keeps the mounts in the ``app_mounts`` table (one per container
directory). Mounted directories belong to the operator: nothing in paas deletes them
(``apps:destroy`` drops the rows only, and only removes paths outside ``Paths.storage``).
``storage_dir`` names the directories ``storage:ensure-directory`` makes, and
``host_uid`` maps a container uid through the instance's user namespace (containers'
root is ``PAAS_SUBUID``'s first id on the host).

Not here: creating or chowning directories (the CLI does that), mounting (the runtime).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time

from .. import hostpath
from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..model import BindMount, BindPolicy, IdMap
from ..paths import Paths
from ..state import transaction
from .store import need_app

__all__ = ["APP_UID", "CHOWN_UIDS", "StorageStore", "check_host_dir", "format_mount",
           "host_uid", "parse_mount", "storage_dir", "validate_storage_name"]

APP_UID = 1000  # the buildpack app user (paas.build.buildpacks.APP_UID), Dokku's "heroku"
CHOWN_UIDS = {"heroku": APP_UID, "root": 0}
_RESERVED_TARGETS = ("/proc", "/sys", "/dev")  # the runtime mounts its own there
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_USAGE = "use HOSTDIR:CONTAINERDIR[:ro], both absolute, e.g. /var/lib/paas/data/storage/APP:/data"


def _path(text: str, what: str) -> str:
    if not text.startswith("/"):
        raise InvalidArgument(f"{what} {text[:200]!r} is not an absolute path", _USAGE)
    if any(ch in text for ch in ("\0", "\n", "\r")):
        raise InvalidArgument(f"{what} {text[:200]!r} contains a NUL or line break",
                              "pick a path without control characters")
    if ".." in text.split("/"):
        raise InvalidArgument(f"{what} {text[:200]!r} contains '..'", "write the path without '..'")
    if len(text) > 4096:
        raise InvalidArgument(f"{what} is longer than 4096 characters", "pick a shorter path")
    return os.path.normpath(text).replace("//", "/")


def parse_mount(spec: str) -> BindMount:
    """``HOSTDIR:CONTAINERDIR[:ro|:rw]`` -> ``BindMount`` (normalized paths); no I/O."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise InvalidArgument(f"invalid mount {spec[:200]!r} (paths cannot contain ':')", _USAGE)
    source = _path(parts[0], "host directory")
    target = _path(parts[1], "container directory")
    if target == "/" or any(target == r or target.startswith(r + "/") for r in _RESERVED_TARGETS):
        raise InvalidArgument(f"container directory {target} is reserved",
                              "mount somewhere else, e.g. /data or /app/storage")
    return BindMount(source, target, readonly=len(parts) == 3 and parts[2] == "ro")


def format_mount(b: BindMount) -> str:
    return f"{b.source}:{b.target}" + (":ro" if b.readonly else "")


def check_host_dir(paths: Paths, path: str, hint_name: str) -> None:
    """The check every container start makes again (``paas.hostpath``, policy ``strict``):
    a directory reached without any symlink, outside the instance's state
    (``Paths.storage/NAME`` excepted) and the system directories."""
    try:
        hostpath.check(path, BindPolicy.STRICT, hostpath.Guard.for_instance(paths.root))
    except InvalidArgument as err:
        if "does not exist" in err.message:
            raise InvalidArgument(
                err.message, f"create it, e.g. with: paas storage:ensure-directory {hint_name}"
            ) from None
        raise


def validate_storage_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise InvalidArgument(f"invalid directory name {name[:80]!r}",
                              "use letters, digits, '.', '_' and '-' (e.g. the app's name)")
    return name


def storage_dir(paths: Paths, name: str) -> str:
    """``ROOT/data/storage/NAME``: where ``storage:ensure-directory NAME`` makes it."""
    return os.path.join(paths.storage, validate_storage_name(name))


def host_uid(idmap: IdMap, uid: int) -> int:
    """The host id of container id ``uid`` in the instance's user namespace."""
    if not idmap.container_id <= uid < idmap.container_id + idmap.size:
        raise InvalidArgument(f"uid {uid} is outside the containers' id range",
                              f"use a uid from 0 to {idmap.size - 1}")
    return idmap.host_id + uid - idmap.container_id


class StorageStore:
    """The ``app_mounts`` table; every app name and spec is validated first."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _need(self, app: str) -> None:
        need_app(self.conn, app)

    def list(self, app: str) -> list[BindMount]:
        """The app's mounts, in the order they were added."""
        self._need(app)
        rows = self.conn.execute(
            "SELECT host_dir, container_dir, readonly FROM app_mounts WHERE app = ?"
            " ORDER BY created, container_dir", (app,)).fetchall()
        return [BindMount(str(s), str(t), bool(ro)) for s, t, ro in rows]

    def mount(self, app: str, b: BindMount) -> None:
        with transaction(self.conn):
            self._need(app)
            row = self.conn.execute(
                "SELECT host_dir FROM app_mounts WHERE app = ? AND container_dir = ?",
                (app, b.target)).fetchone()
            if row is not None:
                raise AlreadyExists(
                    f"{b.target} of {app} is already mounted from {row[0]}",
                    f"unmount it first: paas storage:unmount {app} {row[0]}:{b.target}")
            self.conn.execute(
                "INSERT INTO app_mounts (app, host_dir, container_dir, readonly, created)"
                " VALUES (?, ?, ?, ?, ?)", (app, b.source, b.target, int(b.readonly), time.time()))

    def unmount(self, app: str, b: BindMount) -> None:
        """Forget the mount of ``b.source`` at ``b.target`` (its ``:ro`` does not matter)."""
        with transaction(self.conn):
            self._need(app)
            cur = self.conn.execute(
                "DELETE FROM app_mounts WHERE app = ? AND host_dir = ? AND container_dir = ?",
                (app, b.source, b.target))
            if cur.rowcount == 0:
                raise NotFound(f"{app} has no mount {b.source}:{b.target}",
                               f"list them with: paas storage:list {app}")
