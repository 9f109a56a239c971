"""SQLite state database: connection setup and schema migrations.

Blobs and snapshot contents are files; everything that says which files
matter (tags, snapshot records, containers) lives here and is written in
transactions, so a crash leaves either the old or the new state.
Each store module owns the queries for its tables; the schema is kept in one
place below so migrations stay ordered.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator

__all__ = ["MIGRATIONS", "connect", "transaction"]

MIGRATIONS: tuple[str, ...] = (
    # 1: images, snapshots, containers
    """
    CREATE TABLE tags (
        name TEXT NOT NULL,
        tag TEXT NOT NULL,
        manifest_digest TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (name, tag)
    );
    CREATE TABLE images (
        manifest_digest TEXT PRIMARY KEY,
        config_digest TEXT NOT NULL,
        created TEXT NOT NULL,
        size INTEGER NOT NULL,
        added REAL NOT NULL
    );
    CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chain_id TEXT NOT NULL,
        idmap TEXT NOT NULL,
        parent INTEGER REFERENCES snapshots(id),
        size INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        UNIQUE (chain_id, idmap)
    );
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        state TEXT NOT NULL,
        created REAL NOT NULL,
        pid INTEGER,
        pid_start INTEGER,
        exit_code INTEGER,
        oom_killed INTEGER NOT NULL DEFAULT 0,
        started_at REAL,
        finished_at REAL,
        error TEXT NOT NULL DEFAULT ''
    );
    """,
    # 2: restart policies (restart count, explicit stop by the user)
    """
    ALTER TABLE containers ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE containers ADD COLUMN stopped_by_user INTEGER NOT NULL DEFAULT 0
    """,
    # 3: bridge network (paas/network/ipam.py): subnet choice, IPAM, published ports
    """
    CREATE TABLE net_config (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE net_attachments (
        container_id TEXT PRIMARY KEY,
        ip TEXT NOT NULL UNIQUE,
        netns_path TEXT NOT NULL,
        host_veth TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    CREATE TABLE net_ports (
        container_id TEXT NOT NULL REFERENCES net_attachments(container_id) ON DELETE CASCADE,
        host_ip TEXT NOT NULL,
        host_port INTEGER NOT NULL,
        container_port INTEGER NOT NULL,
        proto TEXT NOT NULL,
        UNIQUE (host_ip, host_port, proto)
    );
    """,
    # 4: the image builder (paas/build/cache.py): step cache and build logs
    """
    CREATE TABLE build_cache (
        parent TEXT NOT NULL,
        key TEXT NOT NULL,
        manifest_digest TEXT NOT NULL REFERENCES images(manifest_digest) ON DELETE CASCADE,
        created REAL NOT NULL,
        PRIMARY KEY (parent, key)
    );
    CREATE INDEX build_cache_image ON build_cache(manifest_digest);
    CREATE TABLE build_logs (
        manifest_digest TEXT PRIMARY KEY REFERENCES images(manifest_digest) ON DELETE CASCADE,
        log TEXT NOT NULL,
        created REAL NOT NULL
    );
    """,
    # 5: apps (paas/apps)
    """
    CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        created REAL NOT NULL
    );
    CREATE TABLE app_config (
        app TEXT NOT NULL REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (app, key)
    );
    CREATE TABLE app_domains (
        domain TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE
    );
    CREATE INDEX app_domains_app ON app_domains(app);
    CREATE TABLE app_settings (
        app TEXT NOT NULL REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (app, key)
    );
    CREATE TABLE app_formation (
        app TEXT NOT NULL REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        type TEXT NOT NULL,
        count INTEGER NOT NULL CHECK (count >= 0),
        PRIMARY KEY (app, type)
    );
    CREATE TABLE global_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 6: releases (paas/deploy/releases.py)
    """
    CREATE TABLE releases (
        app TEXT NOT NULL REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        version INTEGER NOT NULL,
        image_id TEXT NOT NULL,
        processes TEXT NOT NULL,
        config TEXT NOT NULL,
        formation TEXT NOT NULL,
        git_sha TEXT NOT NULL,
        description TEXT NOT NULL,
        created REAL NOT NULL,
        created_by TEXT NOT NULL,
        builder TEXT NOT NULL,
        PRIMARY KEY (app, version)
    );
    """,
    # 7: per-app storage mounts and resource limits (paas/apps/storage.py, resources.py)
    """
    CREATE TABLE app_mounts (
        app TEXT NOT NULL REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        host_dir TEXT NOT NULL,
        container_dir TEXT NOT NULL,
        readonly INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        PRIMARY KEY (app, container_dir)
    );
    CREATE TABLE app_limits (
        app TEXT NOT NULL REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        type TEXT NOT NULL,
        key TEXT NOT NULL CHECK (key IN ('memory', 'cpus', 'pids')),
        value TEXT NOT NULL,
        PRIMARY KEY (app, type, key)
    );
    """,
    # 8: deploy locks set by apps:lock (paas/deploy/locks.py)
    """
    CREATE TABLE app_locks (
        app TEXT PRIMARY KEY REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        locked_by TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    """,
    # 9: a release is live once its cutover switched traffic (paas/deploy/releases.py);
    # one whose deploy died before that is never the current one
    """
    ALTER TABLE releases ADD COLUMN live INTEGER NOT NULL DEFAULT 1;
    """,
    # 10: each app's own id range (paas/apps/idmaps.py): a slot of the subordinate-id
    # pool, kept (destroyed, not reused by another app) after apps:destroy; the apps
    # that exist now ran in the shared range and stay there until their next deploy
    """
    CREATE TABLE app_idmaps (
        host_id INTEGER PRIMARY KEY,
        size INTEGER NOT NULL,
        app TEXT NOT NULL,
        allocated REAL NOT NULL,
        destroyed REAL
    );
    CREATE UNIQUE INDEX app_idmaps_live ON app_idmaps(app) WHERE destroyed IS NULL;
    CREATE TRIGGER app_idmaps_rename AFTER UPDATE OF name ON apps BEGIN
        UPDATE app_idmaps SET app = NEW.name WHERE app = OLD.name AND destroyed IS NULL;
    END;
    CREATE TRIGGER app_idmaps_destroy AFTER DELETE ON apps BEGIN
        UPDATE app_idmaps SET destroyed = CAST(strftime('%s', 'now') AS REAL)
            WHERE app = OLD.name AND destroyed IS NULL;
    END;
    CREATE TABLE app_idmap_shared (
        app TEXT PRIMARY KEY REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE
    );
    INSERT INTO app_idmap_shared (app) SELECT name FROM apps;
    """,
    # 11: the bridge's policy per attachment (paas/network): link-local allowed, whose
    # container it is and the MAC its eth0 has (tenant isolation, anti-spoofing;
    # '' for an attachment made before, read from its netns)
    """
    ALTER TABLE net_attachments ADD COLUMN link_local INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE net_attachments ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
    ALTER TABLE net_attachments ADD COLUMN mac TEXT NOT NULL DEFAULT ''
    """,
    # 12: resource:limit --disk (the writable layer's size): app_limits takes key 'disk'
    # (SQLite cannot change a CHECK: the table is copied)
    """
    CREATE TABLE app_limits_new (
        app TEXT NOT NULL REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        type TEXT NOT NULL,
        key TEXT NOT NULL CHECK (key IN ('memory', 'cpus', 'pids', 'disk')),
        value TEXT NOT NULL,
        PRIMARY KEY (app, type, key)
    );
    INSERT INTO app_limits_new SELECT app, type, key, value FROM app_limits;
    DROP TABLE app_limits;
    ALTER TABLE app_limits_new RENAME TO app_limits;
    """,
    # 13: TLS certificates (paas.certs): what is installed in certs/APP/tls.pem
    """
    CREATE TABLE certs (
        app TEXT PRIMARY KEY REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        source TEXT NOT NULL CHECK (source IN ('manual', 'acme', 'self-signed')),
        subject TEXT NOT NULL,
        issuer TEXT NOT NULL,
        domains TEXT NOT NULL,
        not_before REAL NOT NULL,
        not_after REAL NOT NULL,
        fingerprint TEXT NOT NULL,
        installed_at REAL NOT NULL
    );
    """,
    # 14: ACME (paas/acme/store.py): instance-wide letsencrypt:set keys, and per app
    # whether ACME manages its certificate, the last error and the retry schedule
    """
    CREATE TABLE acme_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE acme_apps (
        app TEXT PRIMARY KEY REFERENCES apps(name) ON UPDATE CASCADE ON DELETE CASCADE,
        enabled INTEGER NOT NULL DEFAULT 1,
        last_error TEXT NOT NULL DEFAULT '',
        failures INTEGER NOT NULL DEFAULT 0,
        last_attempt REAL,
        next_attempt REAL,
        last_success REAL
    );
    """,
)


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` (a trigger's body has ';' inside it)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\n;"):
        yield pending


def connect(path: str, *, shared: bool = False) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the state database at ``path``.

    ``shared``: the connection may be handed between threads (one at a time)."""
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    if not os.path.exists(path):
        # root-only from the start: SQLite gives -wal and -shm the database's mode
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                           check_same_thread=not shared)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version < len(MIGRATIONS):
        conn.execute("PRAGMA journal_mode = WAL")
        with transaction(conn):
            # re-read inside the write lock: another process may have migrated
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for i in range(version, len(MIGRATIONS)):
                for stmt in _statements(MIGRATIONS[i]):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {i + 1}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
