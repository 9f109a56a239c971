"""SQL for the ``images`` and ``tags`` tables: which manifests exist and which names point at them.

Callers wrap writes in ``paas.state.transaction``. Not here: blob contents
(``content``), snapshots (``snapshot``), resolving user input (``store``).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

__all__ = ["Catalog", "ImageRow"]


@dataclass(frozen=True)
class ImageRow:
    manifest_digest: str
    config_digest: str
    created: str
    size: int


def _row(r: sqlite3.Row) -> ImageRow:
    return ImageRow(str(r[0]), str(r[1]), str(r[2]), int(r[3]))


_COLS = "manifest_digest, config_digest, created, size"


class Catalog:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- images --------------------------------------------------------------
    def add_image(self, row: ImageRow) -> None:
        self.conn.execute(
            f"INSERT OR IGNORE INTO images ({_COLS}, added) VALUES (?, ?, ?, ?, ?)",
            (row.manifest_digest, row.config_digest, row.created, row.size, time.time()),
        )

    def delete_image(self, manifest_digest: str) -> None:
        self.conn.execute("DELETE FROM images WHERE manifest_digest = ?", (manifest_digest,))

    def image(self, manifest_digest: str) -> ImageRow | None:
        r = self.conn.execute(
            f"SELECT {_COLS} FROM images WHERE manifest_digest = ?", (manifest_digest,)
        ).fetchone()
        return _row(r) if r else None

    def images(self) -> list[ImageRow]:
        rows = self.conn.execute(f"SELECT {_COLS} FROM images ORDER BY added DESC, manifest_digest")
        return [_row(r) for r in rows.fetchall()]

    def by_config_prefix(self, prefix: str) -> list[ImageRow]:
        """Images whose config digest (image id) starts with ``sha256:<prefix>``."""
        rows = self.conn.execute(
            f"SELECT {_COLS} FROM images WHERE substr(config_digest, 1, ?) = ?",
            (len(prefix), prefix),
        )
        return [_row(r) for r in rows.fetchall()]

    # -- tags ----------------------------------------------------------------
    def set_tag(self, name: str, tag: str, manifest_digest: str) -> str | None:
        """Point name:tag at ``manifest_digest``; return the manifest it pointed at before."""
        old = self.tag(name, tag)
        self.conn.execute(
            "INSERT INTO tags (name, tag, manifest_digest, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name, tag) DO UPDATE SET manifest_digest = excluded.manifest_digest, "
            "updated = excluded.updated",
            (name, tag, manifest_digest, time.time()),
        )
        return old

    def delete_tag(self, name: str, tag: str) -> None:
        self.conn.execute("DELETE FROM tags WHERE name = ? AND tag = ?", (name, tag))

    def tag(self, name: str, tag: str) -> str | None:
        r = self.conn.execute(
            "SELECT manifest_digest FROM tags WHERE name = ? AND tag = ?", (name, tag)
        ).fetchone()
        return str(r[0]) if r else None

    def tags_of(self, manifest_digest: str) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            "SELECT name, tag FROM tags WHERE manifest_digest = ? ORDER BY name, tag",
            (manifest_digest,),
        )
        return [(str(r[0]), str(r[1])) for r in rows.fetchall()]

    def all_tags(self) -> list[tuple[str, str, str]]:
        rows = self.conn.execute("SELECT name, tag, manifest_digest FROM tags ORDER BY name, tag")
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows.fetchall()]
