"""AppStore against a temp SQLite file made by paas.state.connect (no subprocess, no root)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.apps.store import AppRecord, AppStore
from paas.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from paas.state import connect, transaction

NASTY_VALUES = {
    "SPACES": "  a b  ",
    "QUOTES": "it's \"quoted\" `x` $(y) \\n",
    "EQUALS": "a=b=c",
    "NEWLINES": "line1\nline2\r\n\n",
    "UNICODE": "ünïcødé ✓ 🚀 中文",
    "EMPTY": "",
    "JSONISH": '{"a": [1, 2]}',
    "NUMBER": "0012",
}


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(str(tmp_path / "state" / "state.db"))
    yield c
    c.close()


@pytest.fixture
def store(conn: sqlite3.Connection) -> AppStore:
    return AppStore(conn)


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_create_get_list(store: AppStore) -> None:
    rec = store.create("web")
    assert isinstance(rec, AppRecord) and rec.name == "web" and rec.created > 0
    store.create("api")
    assert store.get("web") == rec
    assert [r.name for r in store.list()] == ["api", "web"]
    assert store.exists("web") and not store.exists("nope")


def test_create_twice(store: AppStore) -> None:
    store.create("web")
    with pytest.raises(AlreadyExists, match="app web already exists"):
        store.create("web")


def test_get_missing_hints_at_list(store: AppStore) -> None:
    with pytest.raises(NotFound) as exc:
        store.get("nope")
    assert "paas apps:list" in exc.value.hint


@pytest.mark.parametrize("bad", ["../x", "a;b", "$(x)", "x\nserver_name evil", "A", "a" * 64])
def test_bad_names_write_nothing(store: AppStore, conn: sqlite3.Connection, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        store.create(bad)
    assert _count(conn, "apps") == 0


def test_config_roundtrip_exact(store: AppStore) -> None:
    store.create("web")
    assert store.config("web") == {}
    new = store.set_config("web", list(NASTY_VALUES.items()))
    assert new == NASTY_VALUES
    assert store.config("web") == NASTY_VALUES
    assert all(type(v) is str for v in store.config("web").values())
    assert store.set_config("web", {"EQUALS": "x", "NEW": "1"})["EQUALS"] == "x"


def test_set_config_later_pairs_win(store: AppStore) -> None:
    store.create("web")
    assert store.set_config("web", [("A", "1"), ("A", "2")]) == {"A": "2"}


def test_set_config_is_all_or_nothing(store: AppStore) -> None:
    store.create("web")
    store.set_config("web", {"A": "1"})
    with pytest.raises(InvalidArgument):
        store.set_config("web", [("B", "2"), ("C", "x\0y")])
    with pytest.raises(InvalidArgument):
        store.set_config("web", [("B", "2"), ("1BAD", "x")])
    assert store.config("web") == {"A": "1"}


def test_unset_config_ignores_unknown(store: AppStore) -> None:
    store.create("web")
    store.set_config("web", {"A": "1", "B": "2"})
    assert store.unset_config("web", ["A", "NOPE"]) == {"B": "2"}
    with pytest.raises(InvalidArgument):
        store.unset_config("web", ["bad key"])


def test_config_of_missing_app(store: AppStore) -> None:
    with pytest.raises(NotFound):
        store.config("nope")
    with pytest.raises(NotFound):
        store.set_config("nope", {"A": "1"})


def test_domains(store: AppStore) -> None:
    store.create("web")
    assert store.domains("web") == []
    assert store.add_domains("web", ["B.example.com.", "a.example.com", "b.example.com"]) == [
        "a.example.com", "b.example.com"]
    assert store.add_domains("web", ["a.example.com", "*.example.org"]) == [
        "*.example.org", "a.example.com", "b.example.com"]
    assert store.remove_domains("web", ["a.example.com", "not-there.com"]) == [
        "*.example.org", "b.example.com"]
    assert store.set_domains("web", ["c.example.com"]) == ["c.example.com"]
    assert store.effective_domains("web") == ["c.example.com"]
    assert store.set_domains("web", []) == []
    assert store.effective_domains("web") == ["web.localhost"]


def test_domain_belongs_to_one_app(store: AppStore, conn: sqlite3.Connection) -> None:
    store.create("web")
    store.create("api")
    store.add_domains("web", ["x.example.com"])
    with pytest.raises(Conflict, match="belongs to app web"):
        store.add_domains("api", ["y.example.com", "X.example.com"])
    with pytest.raises(Conflict):
        store.set_domains("api", ["x.example.com"])
    assert store.domains("api") == []  # nothing of the failed calls stayed
    # its owner may re-add or re-set it
    assert store.set_domains("web", ["x.example.com", "z.example.com"]) == [
        "x.example.com", "z.example.com"]


def test_bad_domains_write_nothing(store: AppStore) -> None:
    store.create("web")
    for bad in ["a.*.b", "-a.com", "x\nserver_name evil", "a;b", "../x"]:
        with pytest.raises(InvalidArgument):
            store.add_domains("web", ["ok.example.com", bad])
    assert store.domains("web") == []


def test_global_domain(store: AppStore) -> None:
    store.create("web")
    assert store.global_domain() is None
    assert store.default_domains("web") == ["web.localhost"]
    assert store.set_global_domain("Apps.Example.COM") == "apps.example.com"
    assert store.global_domain() == "apps.example.com"
    assert store.default_domains("web") == ["web.apps.example.com"]
    assert store.effective_domains("web") == ["web.apps.example.com"]
    store.set_global_domain(None)
    assert store.global_domain() is None
    for bad in ["*.example.com", "a;b", "a" * 63 + "." + "b" * 63 + "." + "c" * 63]:
        with pytest.raises(InvalidArgument):
            store.set_global_domain(bad)


def test_settings(store: AppStore) -> None:
    store.create("web")
    assert store.setting("web", "deploy-branch") == "main"
    assert store.setting("web", "deploy-branch", "") == ""
    assert store.setting("web", "checks") == "enabled"
    assert store.set_setting("web", "deploy-branch", "release/v2") == "release/v2"
    assert store.set_setting("web", "keep-releases", " 10") == "10"
    assert store.set_setting("web", "nginx.client-max-body-size", "10m") == "10m"
    assert store.setting("web", "deploy-branch") == "release/v2"
    rec = store.get("web")
    assert rec.settings == (("deploy-branch", "release/v2"), ("keep-releases", "10"),
                            ("nginx.client-max-body-size", "10m"))
    assert rec.setting("deploy-branch") == "release/v2" and rec.setting("checks") == "enabled"
    store.unset_setting("web", "deploy-branch")
    assert store.setting("web", "deploy-branch") == "main"
    assert store.settings("web") == {"keep-releases": "10", "nginx.client-max-body-size": "10m"}


@pytest.mark.parametrize(("key", "value"), [("checks", "on"), ("keep-releases", "0"),
                                            ("deploy-branch", "a b"), ("colour", "blue"),
                                            ("nginx.x", "1; evil")])
def test_bad_settings_write_nothing(store: AppStore, conn: sqlite3.Connection, key: str,
                                    value: str) -> None:
    store.create("web")
    with pytest.raises(InvalidArgument):
        store.set_setting("web", key, value)
    assert _count(conn, "app_settings") == 0


def test_unknown_setting_read_lists_known(store: AppStore) -> None:
    store.create("web")
    with pytest.raises(InvalidArgument) as exc:
        store.setting("web", "colour")
    assert "deploy-branch" in exc.value.hint


def test_formation(store: AppStore) -> None:
    store.create("web")
    assert store.formation("web") == {}
    assert store.set_formation("web", {"web": 2, "worker": 1}) == {"web": 2, "worker": 1}
    assert store.set_formation("web", {"web": 0}) == {"web": 0, "worker": 1}
    for bad in ({"web": 101}, {"web": -1}, {"Web": 1}, {"a.b": 1}, {"web": True}):
        with pytest.raises(InvalidArgument):
            store.set_formation("web", bad)  # type: ignore[arg-type]
    assert store.formation("web") == {"web": 0, "worker": 1}


def _fill(store: AppStore, name: str) -> None:
    store.set_config(name, {"A": "1"})
    store.add_domains(name, [f"{name}.example.com"])
    store.set_setting(name, "checks", "disabled")
    store.set_formation(name, {"web": 3})


def test_rename_cascades(store: AppStore, conn: sqlite3.Connection) -> None:
    store.create("old")
    store.create("other")
    _fill(store, "old")
    rec = store.rename("old", "new")
    assert rec.name == "new" and not store.exists("old")
    assert store.config("new") == {"A": "1"}
    assert store.domains("new") == ["old.example.com"]
    assert store.setting("new", "checks") == "disabled"
    assert store.formation("new") == {"web": 3}
    with pytest.raises(AlreadyExists):
        store.rename("new", "other")
    with pytest.raises(NotFound):
        store.rename("gone", "fresh")
    with pytest.raises(InvalidArgument):
        store.rename("new", "Bad Name")
    assert store.exists("new") and store.config("new") == {"A": "1"}


def test_remove_cascades(store: AppStore, conn: sqlite3.Connection) -> None:
    store.create("web")
    store.create("keep")
    _fill(store, "web")
    _fill(store, "keep")
    store.remove("web")
    assert [r.name for r in store.list()] == ["keep"]
    for table in ("app_config", "app_domains", "app_settings", "app_formation"):
        assert _count(conn, table) == 1, table
    with pytest.raises(NotFound):
        store.remove("web")
    # the domain is free again
    store.create("web")
    assert store.add_domains("web", ["web.example.com"]) == ["web.example.com"]


def test_writes_nest_in_a_callers_transaction(store: AppStore, conn: sqlite3.Connection) -> None:
    with pytest.raises(RuntimeError), transaction(conn):
        store.create("web")
        store.set_config("web", {"A": "1"})
        raise RuntimeError("deploy failed")
    assert not store.exists("web")
    with transaction(conn):
        store.create("web")
        with pytest.raises(Conflict):  # a failed step inside rolls back alone
            store.create("api")
            store.add_domains("web", ["x.com"])
            store.add_domains("api", ["x.com"])
    assert store.exists("web") and store.exists("api")


def test_second_connection_sees_writes(store: AppStore, tmp_path: Path) -> None:
    store.create("web")
    store.set_config("web", {"K": "v"})
    other = connect(str(tmp_path / "state" / "state.db"))
    try:
        assert AppStore(other).config("web") == {"K": "v"}
    finally:
        other.close()
