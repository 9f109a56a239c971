"""Each app's own id range: a 65,536-id slot of the subordinate-id pool, in the state DB.

Root in app A's containers is host uid ``A.host_id``; nothing of app B's (its rootfs
files, processes, storage) is owned by an id of A's range, as with Incus's
``security.idmap.isolated``. Every container of an app uses its range: process
containers, one-offs, the release phase and its build containers.

The ``app_idmaps`` table (migration 10) records slots by their first host id:

- A new app gets the lowest free slot the first time it needs one (its first build,
  container or ``storage:ensure-directory``); it keeps it across deploys, restarts and
  reboots (each container also records its own map in its config).
- ``apps:rename``: the slot follows the app (a trigger), so its files stay its own.
- ``apps:destroy``: the slot is kept, marked destroyed (a trigger), and never handed to
  another app: files owned by it may remain (storage dirs are kept by destroy, and
  ``storage:mount`` can name any host dir). Only an app created again under the same
  name gets it back: it is the one the leftover ``storage/NAME`` belongs to.
- The pool exhausted (every slot live or destroyed): one ``FailedPrecondition`` whose
  hint says how to give root more subordinate ids.

Upgrade: apps that existed before migration 10 ran in the instance's shared default
range; they are listed in ``app_idmap_shared`` and keep using it (their running
containers, one-offs, builds) until the next deploy that starts new containers
(``move``): that allocates their slot and re-owns their storage dirs and build cache
from the shared range to it, just before the new release's first container starts
(the release phase); ``undo_move`` puts both back if that deploy fails before its
switch. Meanwhile (seconds: release phase, start, health check) the old release's
containers, still in the shared range, see those files as nobody's: writes to storage
fail there until the switch stops them. A directory mounted into two such apps goes
to the first that moves (ranges of their own cannot share ownership).

Not here: reading the pool (``paas.subids``), using the map (runtime, build).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..config import Context
from ..errors import FailedPrecondition
from ..model import IdMap
from ..state import transaction
from ..subids import SLOT_SIZE, SubidRange, overlaps, pool_from_text, slots

__all__ = ["IdMaps", "Slot", "reown_tree"]


@dataclass(frozen=True)
class Slot:
    host_id: int
    size: int
    app: str
    allocated: float
    destroyed: float | None

    @property
    def idmap(self) -> IdMap:
        return IdMap(container_id=0, host_id=self.host_id, size=self.size)


@dataclass(frozen=True)
class Move:
    """What ``move`` changed, for ``undo_move``."""

    app: str
    old: IdMap
    new: IdMap
    paths: tuple[str, ...]


class IdMaps:
    """The slots of one instance's apps."""

    def __init__(self, ctx: Context, conn: sqlite3.Connection) -> None:
        self.ctx = ctx
        self.conn = conn

    # -- the pool ----------------------------------------------------------------------
    def pool(self) -> list[SubidRange]:
        """The subordinate ids of ``ctx.subid_user`` in both files; FailedPrecondition
        when a file is unreadable or malformed, or the user has none."""
        texts = []
        for path in self.ctx.subid_files:
            try:
                with open(path, encoding="utf-8") as f:
                    texts.append(f.read())
            except FileNotFoundError:
                texts.append("")
            except (OSError, UnicodeDecodeError) as err:
                raise FailedPrecondition(f"cannot read {path}: {err}",
                                         "make it a readable subuid(5) file") from err
        user = self.ctx.subid_user
        pool = pool_from_text(texts[0], texts[1], user, self.ctx.subid_files)
        if not pool:
            uid_file, gid_file = self.ctx.subid_files
            raise FailedPrecondition(
                f"{user} has no subordinate ids in both {uid_file} and {gid_file}: apps "
                "get their id ranges from there",
                f"add a line like '{user}:1000000:1000000000' to both files (install.sh "
                "adds one that overlaps nothing)")
        return pool

    def free_slots(self) -> list[int]:
        """Slot starts of the pool not overlapping the default range or any slot taken."""
        taken = [s.idmap for s in self.slots()]
        return [h for h in slots(self.pool(), (self.ctx.idmap,))
                if not any(overlaps(IdMap(0, h, SLOT_SIZE), t) for t in taken)]

    # -- queries ----------------------------------------------------------------------
    def slots(self) -> list[Slot]:
        rows = self.conn.execute(
            "SELECT host_id, size, app, allocated, destroyed FROM app_idmaps ORDER BY host_id")
        return [Slot(int(h), int(n), str(a), float(t), None if d is None else float(d))
                for h, n, a, t, d in rows]

    def shared(self, app: str) -> bool:
        """Whether ``app`` still runs in the shared default range (made before migration 10)."""
        return self.conn.execute("SELECT 1 FROM app_idmap_shared WHERE app = ?",
                                 (app,)).fetchone() is not None

    def live(self, app: str) -> Slot | None:
        for s in self._rows("WHERE app = ? AND destroyed IS NULL", (app,)):
            return s
        return None

    def _rows(self, where: str, args: tuple[object, ...]) -> list[Slot]:
        rows = self.conn.execute(
            "SELECT host_id, size, app, allocated, destroyed FROM app_idmaps " + where, args)
        return [Slot(int(h), int(n), str(a), float(t), None if d is None else float(d))
                for h, n, a, t, d in rows]

    def lookup(self, app: str) -> IdMap | None:
        """The range of ``app``'s containers, None when it has none yet."""
        if self.shared(app):
            return self.ctx.idmap
        s = self.live(app)
        return s.idmap if s is not None else None

    # -- allocation ----------------------------------------------------------------------
    def for_app(self, app: str) -> IdMap:
        """The range ``app``'s containers use, allocating its slot on first use."""
        found = self.lookup(app)
        return found if found is not None else self.allocate(app)

    def allocate(self, app: str) -> IdMap:
        """A slot for ``app`` (which exists and has none): the one it had before an
        ``apps:destroy`` if still in the pool, else the lowest free one."""
        pool = self.pool()
        candidates = slots(pool, (self.ctx.idmap,))
        with transaction(self.conn):
            live = self.live(app)
            if live is not None:  # allocated concurrently
                return live.idmap
            self.conn.execute("DELETE FROM app_idmap_shared WHERE app = ?", (app,))
            mine = [s for s in self._rows("WHERE app = ? AND destroyed IS NOT NULL"
                                          " ORDER BY destroyed DESC", (app,))
                    if s.host_id in candidates]
            if mine:
                self.conn.execute("UPDATE app_idmaps SET destroyed = NULL WHERE host_id = ?",
                                  (mine[0].host_id,))
                return mine[0].idmap
            taken = [s.idmap for s in self.slots()]
            free = [h for h in candidates
                    if not any(overlaps(IdMap(0, h, SLOT_SIZE), t) for t in taken)]
            if not free:
                kept = sum(1 for s in self.slots() if s.destroyed is not None)
                uid_file, gid_file = self.ctx.subid_files
                raise FailedPrecondition(
                    f"no free id range for app {app}: all {len(candidates)} ranges of "
                    f"{SLOT_SIZE} ids in {self.ctx.subid_user}'s subordinate ids are taken "
                    f"({kept} kept for destroyed apps whose files may remain)",
                    f"give {self.ctx.subid_user} a larger range in {uid_file} and "
                    f"{gid_file}, e.g. '{self.ctx.subid_user}:1000000:1000000000'")
            self.conn.execute(
                "INSERT INTO app_idmaps (host_id, size, app, allocated) VALUES (?, ?, ?, ?)",
                (free[0], SLOT_SIZE, app, time.time()))
        return IdMap(0, free[0], SLOT_SIZE)

    # -- the upgrade: from the shared range to the app's own ------------------------------
    def move(self, app: str, paths: Iterable[str]) -> Move | None:
        """Give a shared-range app its own slot and re-own ``paths`` (its storage dirs
        and build cache) from the shared range to it; None for an app that has its own."""
        if not self.shared(app):
            return None
        old = self.ctx.idmap
        new = self.allocate(app)
        kept = tuple(p for p in dict.fromkeys(paths) if os.path.isdir(p))
        for p in kept:
            reown_tree(p, old, new)
        return Move(app, old, new, kept)

    def move_app(self, app: str) -> Move | None:
        """``move`` with the app's own files: its storage mounts' host dirs (every
        ``storage:mount``, wherever it is) and its buildpack cache."""
        if not self.shared(app):
            return None
        rows = self.conn.execute("SELECT host_dir FROM app_mounts WHERE app = ?", (app,))
        paths = [str(r[0]) for r in rows]
        return self.move(app, [*paths, os.path.join(self.ctx.paths.build_cache, app)])

    def undo_move(self, m: Move) -> None:
        """Back to the shared range (the deploy that moved the app failed)."""
        for p in m.paths:
            if os.path.isdir(p):
                reown_tree(p, m.new, m.old)
        with transaction(self.conn):
            self.conn.execute("DELETE FROM app_idmaps WHERE host_id = ? AND app = ?",
                              (m.new.host_id, m.app))
            self.conn.execute("INSERT OR IGNORE INTO app_idmap_shared (app) VALUES (?)",
                              (m.app,))


def _shift(ident: int, old: IdMap, new: IdMap) -> int:
    if old.host_id <= ident < old.host_id + old.size:
        return new.to_host(old.to_container(ident))
    return ident


def reown_tree(top: str, old: IdMap, new: IdMap) -> int:
    """Change every owner and group in ``old``'s range under ``top`` (itself included) to
    the same container id in ``new``'s; how many entries changed. Other owners (host
    root, other ranges) stay. Symlinks are never followed and other filesystems
    mounted below are not entered (``os.fwalk`` works on directory fds, so a container
    renaming a directory meanwhile cannot redirect it). setuid/setgid bits, which
    chown clears, are put back."""
    changed = 0
    top_dev = os.lstat(top).st_dev

    def fix(name: str, dir_fd: int | None) -> None:
        nonlocal changed
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        uid, gid = _shift(st.st_uid, old, new), _shift(st.st_gid, old, new)
        if (uid, gid) == (st.st_uid, st.st_gid):
            return
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)  # never follows
            changed += 1
            return
        # through an fd of the very inode stat saw: a name swapped for a symlink
        # meanwhile makes the open fail instead of re-owning what it points to
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                     | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                return
            os.fchown(fd, uid, gid)
            if fst.st_mode & (stat.S_ISUID | stat.S_ISGID):
                os.fchmod(fd, stat.S_IMODE(fst.st_mode))
            changed += 1
        finally:
            os.close(fd)

    fix(top, None)
    for _path, dirs, files, dfd in os.fwalk(top, follow_symlinks=False):
        for d in list(dirs):
            if os.stat(d, dir_fd=dfd, follow_symlinks=False).st_dev != top_dev:
                dirs.remove(d)  # a mount point: another filesystem's owners are not ours
        for name in (*dirs, *files):
            fix(name, dfd)
    return changed
