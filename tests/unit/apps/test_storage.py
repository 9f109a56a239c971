"""paas.apps.storage: mount specs, host directory checks, the id shift, and StorageStore
against a temp SQLite file (no root, no subprocess)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.apps.storage import (
    StorageStore,
    check_host_dir,
    format_mount,
    host_uid,
    parse_mount,
    storage_dir,
    validate_storage_name,
)
from paas.apps.store import AppStore
from paas.errors import AlreadyExists, InvalidArgument, NotFound
from paas.model import BindMount, IdMap
from paas.paths import Paths
from paas.state import connect


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(str(tmp_path / "state" / "state.db"))
    AppStore(c).create("web")
    yield c
    c.close()


@pytest.mark.parametrize(("spec", "expected"), [
    ("/srv/data:/data", BindMount("/srv/data", "/data")),
    ("/srv/data/:/data/", BindMount("/srv/data", "/data")),
    ("/srv//x/./y:/app/storage", BindMount("/srv/x/y", "/app/storage")),
    ("/srv/data:/data:ro", BindMount("/srv/data", "/data", readonly=True)),
    ("/srv/data:/data:rw", BindMount("/srv/data", "/data")),
    ("//srv:/data", BindMount("/srv", "/data")),
    ("/srv/with space:/d i r", BindMount("/srv/with space", "/d i r")),
])
def test_parse_mount(spec: str, expected: BindMount) -> None:
    assert parse_mount(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("/srv/data", "invalid mount"),
    ("/srv:/data:ro:x", "invalid mount"),
    ("/srv:/data:rx", "invalid mount"),
    ("/a:b:/data", "invalid mount"),
    ("srv:/data", "not an absolute path"),
    ("/srv:data", "not an absolute path"),
    ("/srv:", "not an absolute path"),
    ("/srv\n/x:/data", "NUL or line break"),
    ("/srv\0:/data", "NUL or line break"),
    ("/srv:/da\rta", "NUL or line break"),
    ("/srv/../etc:/data", "'..'"),
    ("/srv:/data/../proc", "'..'"),
    ("/srv:/", "reserved"),
    ("/srv:/proc", "reserved"),
    ("/srv:/sys/fs", "reserved"),
    ("/srv:/dev/shm", "reserved"),
    ("/" + "a" * 5000 + ":/data", "longer than 4096"),
])
def test_parse_mount_refuses(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as exc:
        parse_mount(spec)
    assert exc.value.hint  # every refusal says what to do


def test_parse_mount_allows_names_that_only_start_like_reserved_ones() -> None:
    assert parse_mount("/srv:/devices").target == "/devices"
    assert parse_mount("/srv:/system").target == "/system"


def test_format_mount_roundtrips() -> None:
    for spec in ("/srv/data:/data", "/srv/data:/data:ro"):
        assert format_mount(parse_mount(spec)) == spec


def test_check_host_dir(tmp_path: Path) -> None:
    paths = Paths(str(tmp_path / "root"))
    (tmp_path / "root" / "apps" / "web").mkdir(parents=True)
    ok = tmp_path / "data"
    ok.mkdir()
    check_host_dir(paths, str(ok), "web")
    os.makedirs(storage_dir(paths, "web"))
    check_host_dir(paths, storage_dir(paths, "web"), "web")  # the one place inside the root

    with pytest.raises(InvalidArgument, match="does not exist") as exc:
        check_host_dir(paths, str(tmp_path / "missing"), "web")
    assert exc.value.hint == "create it, e.g. with: paas storage:ensure-directory web"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgument, match="not a directory"):
        check_host_dir(paths, str(tmp_path / "file"), "web")
    (tmp_path / "link").symlink_to(ok)
    with pytest.raises(InvalidArgument, match="is a symlink"):
        check_host_dir(paths, str(tmp_path / "link"), "web")
    for inside in (paths.root, str(tmp_path / "root" / "apps" / "web"), paths.storage,
                   str(tmp_path), "/"):
        with pytest.raises(InvalidArgument, match="paas's own state"):
            check_host_dir(paths, inside, "web")


def test_storage_names() -> None:
    paths = Paths("/var/lib/paas")
    assert storage_dir(paths, "web") == "/var/lib/paas/data/storage/web"
    assert validate_storage_name("my_app.data-1") == "my_app.data-1"
    for bad in ("", ".", "..", "../x", "a/b", "-x", "a" * 64, "a\nb"):
        with pytest.raises(InvalidArgument, match="invalid directory name"):
            validate_storage_name(bad)


def test_host_uid_shifts_through_the_user_namespace() -> None:
    idmap = IdMap(container_id=0, host_id=100000, size=65536)
    assert host_uid(idmap, 0) == 100000
    assert host_uid(idmap, 1000) == 101000
    for bad in (-1, 65536):
        with pytest.raises(InvalidArgument, match="outside the containers' id range"):
            host_uid(idmap, bad)


def test_store_mount_list_unmount(conn: sqlite3.Connection) -> None:
    store = StorageStore(conn)
    assert store.list("web") == []
    store.mount("web", parse_mount("/srv/b:/b"))
    store.mount("web", parse_mount("/srv/a:/a:ro"))
    store.mount("web", parse_mount("/srv/b:/c"))  # one host dir, two places: fine
    assert [format_mount(b) for b in store.list("web")] == ["/srv/b:/b", "/srv/a:/a:ro",
                                                             "/srv/b:/c"]
    with pytest.raises(AlreadyExists, match="/b of web is already mounted from /srv/b") as exc:
        store.mount("web", parse_mount("/srv/other:/b"))
    assert exc.value.hint == "unmount it first: paas storage:unmount web /srv/b:/b"
    with pytest.raises(NotFound, match="web has no mount /srv/x:/b"):
        store.unmount("web", parse_mount("/srv/x:/b"))
    store.unmount("web", parse_mount("/srv/a:/a"))  # the :ro does not matter
    assert [format_mount(b) for b in store.list("web")] == ["/srv/b:/b", "/srv/b:/c"]


def test_store_needs_the_app(conn: sqlite3.Connection) -> None:
    store = StorageStore(conn)
    with pytest.raises(NotFound, match="app api does not exist"):
        store.mount("api", parse_mount("/srv:/data"))
    with pytest.raises(InvalidArgument):
        store.list("Bad Name")


def test_rows_follow_rename_and_destroy(conn: sqlite3.Connection) -> None:
    store = StorageStore(conn)
    store.mount("web", parse_mount("/srv:/data"))
    AppStore(conn).rename("web", "site")
    assert store.list("site") == [BindMount("/srv", "/data")]
    AppStore(conn).remove("site")
    assert conn.execute("SELECT COUNT(*) FROM app_mounts").fetchone()[0] == 0
