"""The build cache: (parent image, step key) -> the image the step made; and build logs.

An entry's ``created`` is when it was last recorded or hit (``system:prune``'s size
cap evicts the least recently used entries first).

Like Docker's classic builder, every step's result is an image (intermediate
images share their layers with the final one), so the cache's entries are GC
roots and blobs stay referenced; removing an image removes its entries and log
(foreign keys, ON DELETE CASCADE). A step key is a digest of everything the
step depends on besides its parent: the instruction and its expanded arguments,
the build args and environment a RUN sees, the checksum of COPY sources.

Not here: deciding what goes into a key (``paas.build.builder``), images (store).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time

from ..state import transaction

__all__ = ["BuildCache", "step_key"]


def step_key(*parts: object) -> str:
    """A stable digest of JSON-able ``parts``."""
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


class BuildCache:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def lookup(self, parent: str, key: str) -> str | None:
        """The manifest digest recorded for ``key`` on ``parent`` (an image id, or
        ``scratch``), or None."""
        row = self.conn.execute(
            "SELECT manifest_digest FROM build_cache WHERE parent = ? AND key = ?", (parent, key)
        ).fetchone()
        if row is None:
            return None
        with transaction(self.conn):  # a hit is a use: the size cap evicts least recently used
            self.conn.execute("UPDATE build_cache SET created = ? WHERE parent = ? AND key = ?",
                              (time.time(), parent, key))
        return str(row[0])

    def record(self, parent: str, key: str, manifest_digest: str) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO build_cache (parent, key, manifest_digest, created)"
                " VALUES (?, ?, ?, ?)",
                (parent, key, manifest_digest, time.time()),
            )

    def forget(self, parent: str, key: str) -> None:
        """Drop an entry whose image is gone or unusable."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM build_cache WHERE parent = ? AND key = ?", (parent, key))

    def intermediates(self) -> set[str]:
        """Manifest digests of every image a build step made."""
        rows = self.conn.execute("SELECT DISTINCT manifest_digest FROM build_cache").fetchall()
        return {str(r[0]) for r in rows}

    def save_log(self, manifest_digest: str, log: str) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO build_logs (manifest_digest, log, created) VALUES (?, ?, ?)",
                (manifest_digest, log, time.time()),
            )

    def log_of(self, manifest_digest: str) -> str | None:
        row = self.conn.execute(
            "SELECT log FROM build_logs WHERE manifest_digest = ?", (manifest_digest,)
        ).fetchone()
        return str(row[0]) if row else None
