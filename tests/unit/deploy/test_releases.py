"""Release records: pending until their cutover switched traffic, then live."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from paas.apps.store import AppStore
from paas.deploy.releases import ReleaseStore
from paas.state.db import MIGRATIONS


@pytest.fixture
def releases() -> Iterator[ReleaseStore]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    for migration in MIGRATIONS:
        conn.executescript(migration)
    AppStore(conn).create("web")
    yield ReleaseStore(conn)
    conn.close()


def _add(rs: ReleaseStore, what: str) -> int:
    return rs.add("web", image_id="sha256:" + "a" * 64, processes={"web": "serve"},
                  config={}, formation={"web": 1}, git_sha="", description=what).version


def test_a_release_is_current_only_once_live(releases: ReleaseStore) -> None:
    v1 = _add(releases, "first")
    assert releases.current("web") is None and releases.pending("web") == [v1]
    releases.mark_live("web", v1)
    v2 = _add(releases, "killed mid-deploy")  # never marked live
    v3 = _add(releases, "next")
    current = releases.current("web")
    assert current is not None and current.version == v1
    assert [r.version for r in releases.list("web")] == [v1]
    assert releases.pending("web") == [v2, v3]
    releases.mark_live("web", v3)
    releases.remove("web", v2)
    current = releases.current("web")
    assert current is not None and current.version == v3 == 3
    assert [r.version for r in releases.list("web")] == [v3, v1] and releases.pending("web") == []
