"""Snapshots: unpacked layers keyed by ChainID, one tree per id mapping, and their overlay mounts.

Layout: ``<snapshots>/<key>/<n>/fs`` where ``n`` is the ``snapshots`` row id
(short paths keep overlay's option string small) and ``key`` says how owners are
stored: ``base`` (container ids, seen through an idmapped view per id range:
``views``), ``<host_id>-<size>`` (shifted into one range: the fallback without
idmapped mounts, and build steps' upper dirs adopted as they are) or ``host``
(``--userns=host``). Each snapshot holds only its own layer's diff, in overlay
form; a rootfs is the stack of its chain's snapshots as overlay lower dirs
(containerd's overlay snapshotter model); with views the stack may mix ``base``
trees (through the range's view) and trees shifted for that same range.

A snapshot exists iff its row exists: layers are extracted into a staging
dir and renamed to ``<n>`` in the same transaction that inserts the row; a
per-ChainID ``flock`` stops two processes unpacking the same layer at once.

Not here: blob storage (``content``), deciding which chains are needed (``store``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from .. import modes
from ..errors import FailedPrecondition
from ..model import IdMap, Mount
from ..state import transaction
from .views import BASE_KEY, IDENTITY

__all__ = ["MAX_MOUNT_OPTIONS", "Snapshotter", "idmap_key", "overlay_options"]

log = logging.getLogger(__name__)

# overlay's mount data must fit in one page
MAX_MOUNT_OPTIONS = 4095


def _same_file(fd: int, path: str) -> bool:
    """Whether the open ``fd`` is still the file at ``path`` (not unlinked meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def idmap_key(idmap: IdMap | None) -> str:
    return idmap.key if idmap is not None else "host"


def overlay_options(lowers_top_first: Sequence[str], upper: str, work: str) -> tuple[str, ...]:
    """Pure: the overlay mount options; FailedPrecondition if they cannot be expressed."""
    for p in (*lowers_top_first, upper, work):
        if any(c in p for c in ",:\\"):
            raise FailedPrecondition(
                f"path {p!r} contains a character overlayfs cannot take (',', ':' or '\\')",
                "use a PAAS_ROOT without commas, colons or backslashes",
            )
    opts = ("lowerdir=" + ":".join(lowers_top_first), f"upperdir={upper}", f"workdir={work}")
    if len(",".join(opts)) > MAX_MOUNT_OPTIONS:
        raise FailedPrecondition(
            f"the image has too many layers ({len(lowers_top_first)}) for one overlay mount here",
            "use a shorter PAAS_ROOT, or squash the image into fewer layers",
        )
    return opts


OpenBlob = Callable[[str], BinaryIO]


class Snapshotter:
    """Unpacked layer trees under ``root``, recorded in the ``snapshots`` table."""

    def __init__(self, root: str, conn: sqlite3.Connection) -> None:
        self.root = root
        self.conn = conn

    # -- paths -------------------------------------------------------------
    def key_dir(self, key: str) -> str:
        d = os.path.join(self.root, key)
        modes.makedirs(d)  # root-only: the layer trees under it keep the image's modes
        return d

    def fs_path(self, key: str, sid: int) -> str:
        return os.path.join(self.root, key, str(sid), "fs")

    def empty_dir(self, key: str) -> str:
        d = os.path.join(self.key_dir(key), "empty")
        os.makedirs(d, mode=0o755, exist_ok=True)
        return d

    @contextlib.contextmanager
    def lock(self, key: str, chain_id: str) -> Iterator[None]:
        """Exclusive per-(mapping, ChainID) lock across processes.

        ``remove_unneeded`` deletes lock files of chains without a snapshot (one per
        build would pile up otherwise), so the file locked must still be the one at the
        path: if it was unlinked while we waited, lock the new one."""
        d = os.path.join(self.key_dir(key), "locks")
        modes.makedirs(d)
        path = os.path.join(d, chain_id.split(":", 1)[1])
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if _same_file(fd, path):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        try:
            yield
        finally:
            os.close(fd)

    def _drop_stale_locks(self) -> int:
        """Delete the lock files of chains with no snapshot that nobody holds; how many."""
        dropped = 0
        for key in os.listdir(self.root) if os.path.isdir(self.root) else []:
            d = os.path.join(self.root, key, "locks")
            names = os.listdir(d) if os.path.isdir(d) else []
            for name in names:
                if self.lookup(key, f"sha256:{name}") is not None:
                    continue
                path = os.path.join(d, name)
                try:
                    fd = os.open(path, os.O_RDWR)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if _same_file(fd, path):  # a waiter re-checks and makes a new one
                        os.unlink(path)
                        dropped += 1
                except BlockingIOError:
                    pass  # being unpacked right now
                finally:
                    os.close(fd)
        return dropped

    # -- queries -------------------------------------------------------------
    def lookup(self, key: str, chain_id: str) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM snapshots WHERE chain_id = ? AND idmap = ?", (chain_id, key)
        ).fetchone()
        return int(row[0]) if row else None

    # -- creation ------------------------------------------------------------
    def staging(self, key: str) -> str:
        """A fresh staging dir with an empty ``fs`` inside, to fill and then ``commit``."""
        d = tempfile.mkdtemp(prefix="tmp-", dir=self.key_dir(key))
        os.mkdir(os.path.join(d, "fs"), 0o755)
        return d

    def discard(self, staging: str) -> None:
        shutil.rmtree(staging, ignore_errors=False)

    def commit(self, staging: str, key: str, chain_id: str, parent: int | None, size: int) -> int:
        """Record ``staging`` as the snapshot of ``chain_id`` (caller holds ``lock``)."""
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO snapshots (chain_id, idmap, parent, size, created) VALUES (?, ?, ?, ?, ?)",
                (chain_id, key, parent, size, time.time()),
            )
            sid = int(cur.lastrowid or 0)
            target = os.path.join(self.root, key, str(sid))
            if os.path.lexists(target):
                # left by a crash between rename and commit: no row owns it
                log.warning("removing orphaned snapshot dir %s", target)
                shutil.rmtree(target)
            os.rename(staging, target)
        return sid

    def ensure(
        self,
        chains: Sequence[str],
        diff_ids: Sequence[str],
        open_blob: OpenBlob,
        idmap: IdMap | None,
    ) -> list[int]:
        """Snapshot ids for every chain (bottom first), unpacking the missing ones."""
        key = idmap_key(idmap)
        ids: list[int] = []
        parent: int | None = None
        for chain, diff in zip(chains, diff_ids):
            with self.lock(key, chain):
                sid = self.lookup(key, chain)
                if sid is None:
                    sid = self._unpack(key, chain, diff, parent, open_blob, idmap)
            ids.append(sid)
            parent = sid
        return ids

    def ensure_viewed(
        self,
        chains: Sequence[str],
        diff_ids: Sequence[str],
        open_blob: OpenBlob,
        idmap: IdMap,
        view: str,
    ) -> list[str]:
        """Lower dirs (bottom first) of the chains for ``idmap``'s containers, ``view``
        being its idmapped view of ``base``: a chain in ``base`` is used through the
        view, else one shifted for this very range (an adopted build step), else it is
        unpacked into ``base`` once for every range."""
        lowers: list[str] = []
        parent: int | None = None
        for chain, diff in zip(chains, diff_ids):
            sid = self.lookup(BASE_KEY, chain)
            if sid is None and (own := self.lookup(idmap.key, chain)) is not None:
                lowers.append(self.fs_path(idmap.key, own))
                parent = own
                continue
            if sid is None:
                with self.lock(BASE_KEY, chain):
                    sid = self.lookup(BASE_KEY, chain)
                    if sid is None:
                        sid = self._unpack(BASE_KEY, chain, diff, parent, open_blob, IDENTITY)
            lowers.append(os.path.join(view, str(sid), "fs"))
            parent = sid
        return lowers

    def _unpack(
        self,
        key: str,
        chain: str,
        diff: str,
        parent: int | None,
        open_blob: OpenBlob,
        idmap: IdMap | None,
    ) -> int:
        staging = self.staging(key)
        try:
            with open_blob(diff) as f:
                from . import layer as layers  # tarfile: only when unpacking

                layers.extract_layer(
                    f, os.path.join(staging, "fs"), idmap=idmap, expected_diff_id=diff
                )
                size = os.fstat(f.fileno()).st_size
            return self.commit(staging, key, chain, parent, size)
        except BaseException:
            if os.path.exists(staging):
                shutil.rmtree(staging)
            raise

    # -- mounts --------------------------------------------------------------
    def mount(self, key: str, ids: Sequence[int], upper: str, work: str) -> Mount:
        lowers = [self.fs_path(key, i) for i in reversed(ids)] or [self.empty_dir(key)]
        return Mount(type="overlay", source="overlay", options=overlay_options(lowers, upper, work))

    def mount_lowers(self, lowers_bottom_first: Sequence[str], view: str, upper: str,
                     work: str) -> Mount:
        """The overlay of ``ensure_viewed``'s lower dirs (none: the view's empty dir)."""
        if not lowers_bottom_first:
            self.empty_dir(BASE_KEY)
            lowers_bottom_first = [os.path.join(view, "empty")]
        return Mount(type="overlay", source="overlay",
                     options=overlay_options(list(reversed(lowers_bottom_first)), upper, work))

    # -- removal ---------------------------------------------------------------
    def remove_unneeded(self, needed: Callable[[], Iterable[str]]) -> int:
        """Delete every snapshot whose ChainID is not in ``needed()``; return how many.

        ``needed`` runs inside the write transaction, so an image recorded
        concurrently is either seen there or its snapshot row is not yet there."""
        with transaction(self.conn):
            keep = set(needed())
            rows = self.conn.execute(
                "SELECT id, chain_id, idmap FROM snapshots ORDER BY id DESC"
            ).fetchall()
            doomed = [(int(r[0]), str(r[2])) for r in rows if r[1] not in keep]
            for sid, _key in doomed:  # children (higher ids) first: parent FK
                self.conn.execute("DELETE FROM snapshots WHERE id = ?", (sid,))
        for sid, key in doomed:
            path = os.path.join(self.root, key, str(sid))
            if os.path.exists(path):
                shutil.rmtree(path)
        self._drop_stale_locks()
        return len(doomed)

    def remove_stale_staging(self, max_age: float = 24 * 3600.0, now: float | None = None) -> int:
        """Delete staging dirs left by crashed imports/unpacks (older than ``max_age`` seconds)."""
        now = time.time() if now is None else now
        removed = 0
        keys = os.listdir(self.root) if os.path.isdir(self.root) else []
        for key in keys:
            kdir = os.path.join(self.root, key)
            for name in os.listdir(kdir) if os.path.isdir(kdir) else []:
                path = os.path.join(kdir, name)
                if name.startswith("tmp-") and now - os.lstat(path).st_mtime > max_age:
                    log.warning("removing stale snapshot staging dir %s", path)
                    shutil.rmtree(path)
                    removed += 1
        return removed
