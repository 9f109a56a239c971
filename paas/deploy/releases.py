"""Releases: numbered records of what an app runs (``Release``), in SQLite.

Every deploy, config change, scale or rollback appends one (v1, v2, ...). A new
release is *pending* until its cutover switched traffic to it (``mark_live``);
the newest live one is the current one. A pending release whose deploy died
(kill -9, a host crash) is never current; the app's next deploy forgets it. Each release's image is kept by a tag
``paas-apps/APP:vN``; tags of releases older than the app's ``keep-releases``
(default 5) are dropped, so ``image:prune`` can reclaim their images while a
rollback to any kept release needs no rebuild.

Not here: starting containers (``processes``/``cutover``), the app registry.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import time
from collections.abc import Mapping

from ..errors import NotFound
from ..model import Release
from ..state import transaction

__all__ = ["DEFAULT_KEEP", "ReleaseStore", "image_tag"]

DEFAULT_KEEP = 5


def image_tag(app: str, version: int) -> str:
    return f"paas-apps/{app}:v{version}"


def _row(r: sqlite3.Row) -> Release:
    return Release(
        app=str(r["app"]), version=int(r["version"]), image_id=str(r["image_id"]),
        processes=tuple((str(k), str(v)) for k, v in json.loads(r["processes"]).items()),
        config=tuple((str(k), str(v)) for k, v in json.loads(r["config"]).items()),
        formation=tuple((str(k), int(v)) for k, v in json.loads(r["formation"]).items()),
        git_sha=str(r["git_sha"]), description=str(r["description"]),
        created=float(r["created"]), created_by=str(r["created_by"]), builder=str(r["builder"]),
    )


class ReleaseStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add(self, app: str, *, image_id: str, processes: Mapping[str, str],
            config: Mapping[str, str], formation: Mapping[str, int], git_sha: str,
            description: str, created_by: str = "", builder: str = "dockerfile") -> Release:
        with transaction(self.conn):
            row = self.conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM releases WHERE app = ?", (app,)
            ).fetchone()
            version = int(row[0]) + 1
            self.conn.execute(
                "INSERT INTO releases (app, version, image_id, processes, config, formation,"
                " git_sha, description, created, created_by, builder, live)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (app, version, image_id, json.dumps(dict(processes)), json.dumps(dict(config)),
                 json.dumps(dict(formation)), git_sha, description, time.time(), created_by,
                 builder),
            )
        return self.get(app, version)

    def get(self, app: str, version: int) -> Release:
        r = self.conn.execute("SELECT * FROM releases WHERE app = ? AND version = ?",
                              (app, version)).fetchone()
        if r is None:
            raise NotFound(f"release v{version} of {app} not found",
                           f"see 'paas releases {app}'")
        return _row(r)

    def current(self, app: str) -> Release | None:
        r = self.conn.execute(
            "SELECT * FROM releases WHERE app = ? AND live ORDER BY version DESC LIMIT 1", (app,)
        ).fetchone()
        return _row(r) if r is not None else None

    def list(self, app: str) -> list[Release]:
        """The live releases, newest first."""
        rows = self.conn.execute(
            "SELECT * FROM releases WHERE app = ? AND live ORDER BY version DESC", (app,)
        ).fetchall()
        return [_row(r) for r in rows]

    def mark_live(self, app: str, version: int) -> None:
        with transaction(self.conn):
            self.conn.execute("UPDATE releases SET live = 1 WHERE app = ? AND version = ?",
                              (app, version))

    def pending(self, app: str) -> builtins.list[int]:
        """Versions of releases that never went live, oldest first."""
        rows = self.conn.execute(
            "SELECT version FROM releases WHERE app = ? AND NOT live ORDER BY version", (app,))
        return [int(r[0]) for r in rows]

    def remove(self, app: str, version: int) -> None:
        """Forget a release that never went live (its cutover failed)."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM releases WHERE app = ? AND version = ?", (app, version))
