"""Apps' id ranges in the state DB: allocation, stability, rename, destroy, exhaustion,
the shared range of apps made before the upgrade, and re-owning their files."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.apps.idmaps import IdMaps, reown_tree
from paas.apps.store import AppStore
from paas.config import load_context
from paas.errors import FailedPrecondition
from paas.model import IdMap
from paas.state.db import MIGRATIONS, _statements
from paas.subids import SLOT_SIZE

POOL = 1000000


def _conn(upto: int = len(MIGRATIONS)) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for m in MIGRATIONS[:upto]:
        for stmt in _statements(m):
            conn.execute(stmt)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _maps(tmp_path: Path, conn: sqlite3.Connection, slots: int = 3,
          default: str = "100000:65536") -> IdMaps:
    (tmp_path / "subuid").write_text(f"alice:100000:65536\nroot:{POOL}:{slots * SLOT_SIZE}\n")
    (tmp_path / "subgid").write_text(f"root:{POOL}:{slots * SLOT_SIZE}\n")
    ctx = load_context({"PAAS_ROOT": str(tmp_path / "root"), "PAAS_SUBUID": default,
                        "PAAS_SUBUID_FILE": str(tmp_path / "subuid"),
                        "PAAS_SUBGID_FILE": str(tmp_path / "subgid")})
    return IdMaps(ctx, conn)


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = _conn()
    yield c
    c.close()


def test_each_app_gets_its_own_stable_range(tmp_path: Path, conn: sqlite3.Connection) -> None:
    maps = _maps(tmp_path, conn)
    apps = AppStore(conn)
    for name in ("a", "b"):
        apps.create(name)
    a, b = maps.for_app("a"), maps.for_app("b")
    assert a == IdMap(0, POOL, SLOT_SIZE)
    assert b == IdMap(0, POOL + SLOT_SIZE, SLOT_SIZE)
    assert maps.for_app("a") == a  # stable: allocated once
    assert _maps(tmp_path, conn).lookup("b") == b  # a new process (restart, reboot) too


def test_rename_keeps_the_range(tmp_path: Path, conn: sqlite3.Connection) -> None:
    maps = _maps(tmp_path, conn)
    AppStore(conn).create("a")
    a = maps.for_app("a")
    AppStore(conn).rename("a", "z")
    assert maps.lookup("z") == a
    assert maps.lookup("a") is None


def test_destroyed_apps_range_goes_to_no_other_app(tmp_path: Path,
                                                    conn: sqlite3.Connection) -> None:
    maps = _maps(tmp_path, conn, slots=2)
    apps = AppStore(conn)
    apps.create("a")
    a = maps.for_app("a")
    apps.remove("a")
    assert maps.lookup("a") is None
    [kept] = [s for s in maps.slots() if s.destroyed is not None]
    assert kept.host_id == a.host_id
    apps.create("b")
    assert maps.for_app("b") != a
    apps.create("c")
    with pytest.raises(FailedPrecondition) as e:  # a's slot stays out of reach
        maps.for_app("c")
    assert "1 kept for destroyed apps" in e.value.message
    assert "root:1000000:1000000000" in e.value.hint
    apps.create("a")  # the same name again: its leftover files are its own
    assert maps.for_app("a") == a


def test_pool_exhausted_is_one_clear_error(tmp_path: Path, conn: sqlite3.Connection) -> None:
    maps = _maps(tmp_path, conn, slots=1)
    for name in ("a", "b"):
        AppStore(conn).create(name)
    maps.for_app("a")
    with pytest.raises(FailedPrecondition) as e:
        maps.for_app("b")
    assert "no free id range for app b" in e.value.message
    assert maps.lookup("b") is None  # nothing half-written


def test_slots_never_overlap_the_default_range(tmp_path: Path, conn: sqlite3.Connection) -> None:
    maps = _maps(tmp_path, conn, slots=3, default=f"{POOL + SLOT_SIZE}:65536")
    for name in ("a", "b"):
        AppStore(conn).create(name)
    assert [maps.for_app(n).host_id for n in ("a", "b")] == [POOL, POOL + 2 * SLOT_SIZE]


def test_no_pool_is_a_failed_precondition(tmp_path: Path, conn: sqlite3.Connection) -> None:
    maps = _maps(tmp_path, conn)
    (tmp_path / "subgid").write_text("alice:100000:65536\n")
    AppStore(conn).create("a")
    with pytest.raises(FailedPrecondition) as e:
        maps.for_app("a")
    assert "root has no subordinate ids" in e.value.message


def test_apps_from_before_the_upgrade_keep_the_shared_range(tmp_path: Path) -> None:
    conn = _conn(upto=9)
    AppStore(conn).create("old")
    for m in MIGRATIONS[9:]:
        for stmt in _statements(m):
            conn.execute(stmt)
    maps = _maps(tmp_path, conn)
    AppStore(conn).create("new")
    assert maps.for_app("old") == maps.ctx.idmap  # until its next deploy
    assert maps.for_app("new").host_id == POOL


def test_move_reowns_only_the_shared_ranges_files(tmp_path: Path) -> None:
    conn = _conn(upto=9)
    AppStore(conn).create("old")
    for m in MIGRATIONS[9:]:
        for stmt in _statements(m):
            conn.execute(stmt)
    maps = _maps(tmp_path, conn)
    shared = maps.ctx.idmap
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "f").write_text("x")
    (data / "host-owned").write_text("y")
    os.chown(data, shared.host_id + 1000, shared.host_id + 1000)
    os.chown(data / "sub", shared.host_id, shared.host_id)
    os.chown(data / "sub" / "f", shared.host_id + 1000, shared.host_id + 5)
    os.chmod(data / "sub" / "f", 0o4755)
    os.symlink("/etc/passwd", data / "link")
    os.chown(data / "link", shared.host_id, shared.host_id, follow_symlinks=False)
    before = os.stat("/etc/passwd")
    m = maps.move("old", [str(data), str(tmp_path / "missing")])
    assert m is not None and m.new.host_id == POOL
    assert maps.lookup("old") == m.new and not maps.shared("old")
    st = {p: os.lstat(data / p) for p in ("", "sub", "sub/f", "host-owned", "link")}
    assert (st[""].st_uid, st["sub"].st_uid) == (POOL + 1000, POOL)
    assert (st["sub/f"].st_uid, st["sub/f"].st_gid) == (POOL + 1000, POOL + 5)
    assert stat.S_IMODE(st["sub/f"].st_mode) == 0o4755  # chown cleared it; put back
    assert st["host-owned"].st_uid == 0
    assert st["link"].st_uid == POOL
    assert os.stat("/etc/passwd").st_uid == before.st_uid  # the link was not followed
    assert maps.move("old", [str(data)]) is None  # moved once
    maps.undo_move(m)
    assert maps.shared("old") and maps.lookup("old") == shared
    assert os.lstat(data / "sub" / "f").st_uid == shared.host_id + 1000


def test_reown_leaves_other_ranges_alone(tmp_path: Path) -> None:
    old, new = IdMap(0, 100000, 65536), IdMap(0, 200000, 65536)
    f = tmp_path / "f"
    f.write_text("")
    os.chown(f, 300000, 100000 + 65535)
    assert reown_tree(str(tmp_path), old, new) == 1
    assert (os.stat(f).st_uid, os.stat(f).st_gid) == (300000, 200000 + 65535)
