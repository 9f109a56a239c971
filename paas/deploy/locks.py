"""Deploy locks: the per-app lock a deploy holds while it runs, and the lock an
operator sets with ``apps:lock`` (Dokku's deploy lock) so pushes are refused.

The running lock is an ``flock`` on ``PAAS_ROOT/locks/APP.lock``: the kernel drops
it when its holder dies (even by SIGKILL), so a dead deploy never blocks the next
one. The holder writes a record into the file (pid, its start time, what it runs,
since when) for the "waiting for another deploy" message and ``apps:info``; the
record is only informational: who holds the lock is read from ``/proc/locks``, so
a record left by a killed holder is recognised as stale and never blocks anything.

The operator's lock is a row of ``app_locks`` (renamed and removed with the app).

Not here: what a deploy does (``deployer``), the CLI (``paas.cli.locks``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import Conflict, FailedPrecondition, NotFound
from ..state import transaction

__all__ = ["AppLock", "AppLocks", "DeployLock", "Holder", "ago", "flock_holders", "holder_text",
           "lock_path", "refuse_if_locked"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Holder:
    """Who holds an app's deploy lock: ``pid`` from /proc/locks; the rest from its
    record when the record is the holder's own (else empty)."""

    pid: int
    command: str = ""
    since: float | None = None


@dataclass(frozen=True)
class AppLock:
    """An ``apps:lock``: deploys of the app are refused until ``apps:unlock``."""

    app: str
    locked_by: str
    created: float
    reason: str = ""


def lock_path(root: str, app: str) -> str:
    return os.path.join(root, "locks", f"{app}.lock")


def flock_holders(proc_locks: str, dev: int, ino: int) -> list[int]:
    """Pure: pids holding an flock on the file (``dev``, ``ino``) per /proc/locks's text
    (blocked waiters, the ``->`` lines, are not holders)."""
    want = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    pids = []
    for line in proc_locks.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->" or fields[1] != "FLOCK":
            continue
        if fields[5] == want and fields[4].isdigit():
            pids.append(int(fields[4]))
    return pids


def _command() -> str:
    """What this process is, without its arguments (config:set's carry secrets)."""
    if len(sys.argv) > 1 and re.fullmatch(r"[a-z][a-z:-]{0,40}", sys.argv[1]):
        return f"paas {sys.argv[1]}"
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "paas"


def _start_time(pid: int) -> int | None:
    from ..runtime.resolve import pid_start_time

    return pid_start_time(pid)


def ago(ts: float, now: float | None = None) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``."""
    s = max(0, int((now or time.time()) - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit} ago"
    return f"{s}s ago"


def holder_text(h: Holder, now: float | None = None) -> str:
    """``pid 1234: git push by alice, for 12s`` (what is known of the holder)."""
    parts = [f"pid {h.pid}"]
    if h.command:
        parts.append(h.command)
    if h.since is not None:
        parts.append(f"for {max(0, int((now or time.time()) - h.since))}s")
    return ", ".join(parts)


class DeployLock:
    """The per-app running-deploy lock under ``root/locks``."""

    def __init__(self, root: str) -> None:
        self.root = root

    @contextlib.contextmanager
    def hold(self, app: str, *, wait: bool = True, what: str = "",
             progress: Progress | None = None) -> Iterator[None]:
        path = lock_path(self.root, app)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                h = self.holder(app)
                who = f" ({holder_text(h)})" if h is not None else ""
                if not wait:
                    raise Conflict(f"another deploy of {app} is running{who}",
                                   "try again when it ends") from None
                if progress is not None:
                    progress(f"-----> Waiting for another deploy of {app} to finish{who}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._write_record(fd, what or _command())
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock

    @staticmethod
    def _write_record(fd: int, command: str) -> None:
        pid = os.getpid()
        record = {"pid": pid, "start": _start_time(pid), "command": command, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)

    def holder(self, app: str) -> Holder | None:
        """The live holder of the app's deploy lock, None when it is free (a record left
        by a holder that died is ignored)."""
        path = lock_path(self.root, app)
        try:
            st = os.stat(path)
            with open("/proc/locks", encoding="ascii", errors="replace") as f:
                pids = flock_holders(f.read(), st.st_dev, st.st_ino)
        except FileNotFoundError:
            return None
        if not pids:
            return None
        pid = pids[0]
        record = _read_record(path)
        if (record is None or record.get("pid") != pid
                or record.get("start") != _start_time(pid)):
            return Holder(pid)
        since = record.get("since")
        return Holder(pid, str(record.get("command") or ""),
                      float(since) if isinstance(since, (int, float)) else None)


def _read_record(path: str) -> dict[str, object] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read(4096) or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class AppLocks:
    """``apps:lock``/``apps:unlock`` records in the state DB."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, app: str) -> AppLock | None:
        r = self.conn.execute("SELECT app, locked_by, created, reason FROM app_locks WHERE app = ?",
                              (app,)).fetchone()
        return AppLock(str(r[0]), str(r[1]), float(r[2]), str(r[3])) if r else None

    def lock(self, app: str, locked_by: str, reason: str = "") -> AppLock:
        """Lock ``app`` (which must exist); Conflict when it is locked already."""
        with transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM apps WHERE name = ?", (app,)).fetchone() is None:
                raise NotFound(f"app {app} does not exist", "see 'paas apps:list'")
            if self.get(app) is not None:
                raise Conflict(f"{app} is locked already", f"see 'paas apps:info {app}'")
            self.conn.execute(
                "INSERT INTO app_locks (app, locked_by, reason, created) VALUES (?, ?, ?, ?)",
                (app, locked_by, reason, time.time()))
        lock = self.get(app)
        assert lock is not None
        return lock

    def unlock(self, app: str) -> bool:
        """Remove the lock; False when there was none."""
        with transaction(self.conn):
            cur = self.conn.execute("DELETE FROM app_locks WHERE app = ?", (app,))
        return cur.rowcount > 0


def refuse_if_locked(conn: sqlite3.Connection, app: str) -> None:
    """FailedPrecondition when ``apps:lock`` locked ``app``."""
    lock = AppLocks(conn).get(app)
    if lock is None:
        return
    by = f" by {lock.locked_by}" if lock.locked_by else ""
    raise FailedPrecondition(
        f"{app} is locked: deploys are refused (apps:lock{by}, {ago(lock.created)})",
        f"unlock it with 'paas apps:unlock {app}', then deploy again")
