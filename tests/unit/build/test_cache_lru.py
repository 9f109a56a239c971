"""The build cache records when an entry was last used: a hit counts (the size cap of
system:prune evicts the least recently used first)."""

from __future__ import annotations

import time
from pathlib import Path

from paas.build.cache import BuildCache
from paas.state import connect


def test_a_hit_refreshes_the_entry(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "state.db"))
    conn.execute("INSERT INTO images (manifest_digest, config_digest, created, size, added)"
                 " VALUES ('sha256:m', 'sha256:c', '', 0, 0)")
    cache = BuildCache(conn)
    cache.record("scratch", "k", "sha256:m")
    conn.execute("UPDATE build_cache SET created = 1")
    assert cache.lookup("scratch", "missing") is None
    assert conn.execute("SELECT created FROM build_cache").fetchone()[0] == 1
    before = time.time()
    assert cache.lookup("scratch", "k") == "sha256:m"
    assert conn.execute("SELECT created FROM build_cache").fetchone()[0] >= before
