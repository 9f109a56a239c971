"""Failed logins to git over HTTP, per client address: too many, and the address waits.

``FailedLogins.blocked(addr)`` is asked before any token is checked; while an
address is blocked every request from it is answered 429 with ``Retry-After``
(and costs no scrypt). ``failed(addr)`` counts a request whose credentials were
wrong (a request with none, git's first probe of every push, does not count);
``max_failures`` of them within ``window`` seconds block the address for
``block`` seconds, doubled for each further block in a row (up to
``max_block``). ``succeeded(addr)`` forgets that address's failures, and only
its own.

The counters live in one SQLite file under ``PAAS_ROOT/auth`` (0700 directory,
0600 file), so every gunicorn worker process shares them; rows of quiet
addresses are pruned and the table holds at most ``max_rows`` addresses
(unblocked, least recently seen ones go first). IPv6 clients are counted per
/64, which one host usually owns entirely. The address is the TCP peer's;
``X-Forwarded-For`` is believed only from a configured proxy
(``PAAS_HTTP_GIT_TRUSTED_PROXIES``). Settings: ``Policy.from_env``.
"""

from __future__ import annotations

import ipaddress
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import InvalidArgument

__all__ = ["FailedLogins", "Policy", "client_address", "rate_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (
    addr TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    first REAL NOT NULL,
    last REAL NOT NULL,
    blocked_until REAL NOT NULL DEFAULT 0,
    strikes INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class Policy:
    max_failures: int = 10
    window: float = 60.0
    block: float = 60.0
    max_block: float = 3600.0
    max_rows: int = 10000
    trusted_proxies: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Policy:
        """``PAAS_HTTP_GIT_MAX_FAILURES`` (10), ``PAAS_HTTP_GIT_FAILURE_WINDOW`` (60 s),
        ``PAAS_HTTP_GIT_BLOCK`` (60 s, doubled per block in a row up to an hour),
        ``PAAS_HTTP_GIT_TRUSTED_PROXIES`` (addresses, comma-separated; none)."""
        def number(name: str, default: float) -> float:
            raw = env.get(name, "")
            try:
                value = float(raw) if raw else default
            except ValueError:
                value = -1.0
            if value <= 0:
                raise InvalidArgument(f"{name}={raw!r} is not a positive number",
                                      f"unset it for the default ({default:g})")
            return value

        proxies = frozenset(p.strip() for p in env.get("PAAS_HTTP_GIT_TRUSTED_PROXIES", "")
                            .split(",") if p.strip())
        for p in proxies:
            try:
                ipaddress.ip_address(p)
            except ValueError as err:
                raise InvalidArgument(f"PAAS_HTTP_GIT_TRUSTED_PROXIES: {p!r} is not an address",
                                      "list the proxies' IP addresses, comma-separated") from err
        block = number("PAAS_HTTP_GIT_BLOCK", cls.block)
        return cls(max_failures=int(number("PAAS_HTTP_GIT_MAX_FAILURES", cls.max_failures)),
                   window=number("PAAS_HTTP_GIT_FAILURE_WINDOW", cls.window), block=block,
                   max_block=max(block, cls.max_block), trusted_proxies=proxies)


def rate_key(addr: str) -> str:
    """The counter an address belongs to: itself (IPv4, IPv4-mapped IPv6), else its /64."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def client_address(environ: Mapping[str, object], trusted: frozenset[str]) -> str:
    """The client's address: the TCP peer, or, when the peer is a trusted proxy, the
    right-most ``X-Forwarded-For`` entry that is not one (what the last proxy saw)."""
    peer = str(environ.get("REMOTE_ADDR") or "")
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in str(environ.get("HTTP_X_FORWARDED_FOR") or "").split(",")]
    for hop in reversed(hops):
        if hop and hop not in trusted:
            return hop
    return peer


class FailedLogins:
    """The shared counters (see the module docstring); ``clock`` for tests."""

    def __init__(self, path: str, policy: Policy, clock: Callable[[], float] = time.time) -> None:
        self.path, self.policy, self.clock = path, policy, clock
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            os.chmod(os.path.dirname(self.path), 0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")  # -wal/-shm get the db file's mode
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def blocked(self, addr: str) -> float:
        """Seconds until ``addr`` may try again; 0 when it may now."""
        row = self._db().execute("SELECT blocked_until FROM failures WHERE addr = ?",
                                 (rate_key(addr),)).fetchone()
        left = (row[0] - self.clock()) if row else 0.0
        return max(0.0, left)

    def failed(self, addr: str) -> float:
        """Count a failure; the seconds ``addr`` is now blocked for (0 if not)."""
        p, now, key = self.policy, self.clock(), rate_key(addr)
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT count, first, blocked_until, strikes FROM failures "
                             "WHERE addr = ?", (key,)).fetchone()
            count, first, until, strikes = row if row else (0, now, 0.0, 0)
            if now - first > p.window:
                count, first = 0, now
            count, wait = count + 1, 0.0
            if count >= p.max_failures:
                wait = min(p.max_block, p.block * 2 ** min(strikes, 30))
                count, first, until, strikes = 0, now, now + wait, strikes + 1
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                       (key, count, first, now, until, strikes))
            self._prune(db, now)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return wait

    def succeeded(self, addr: str) -> None:
        self._db().execute("DELETE FROM failures WHERE addr = ? AND blocked_until < ?",
                           (rate_key(addr), self.clock()))

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        """Forget addresses quiet for longer than a window and the longest block; then
        keep at most ``max_rows``, dropping unblocked, least recently seen ones first."""
        p = self.policy
        db.execute("DELETE FROM failures WHERE blocked_until < ? AND last < ?",
                   (now, now - max(p.window, p.max_block)))
        excess = db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] - p.max_rows
        if excess > 0:
            db.execute("DELETE FROM failures WHERE addr IN (SELECT addr FROM failures "
                       "ORDER BY blocked_until > ?, last LIMIT ?)", (now, excess))
