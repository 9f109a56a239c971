"""The store with idmapped views (a fake view: a plain directory, nothing mounted):
layers are unpacked once, unshifted, for every id range; adopted build steps stack
on them; the views' lower dirs are the ones overlay gets."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_store_ops import EPOCH, make_tar

from paas.config import load_context
from paas.image.store import ImageStore
from paas.image.views import BASE_KEY, Views
from paas.model import IdMap
from paas.state import connect

A = IdMap(0, 1000000, 65536)
B = IdMap(0, 1065536, 65536)


class FakeViews(Views):
    """Views that are plain directories named like the real ones (no mount)."""

    def get(self, idmap: IdMap) -> str | None:
        if self.refused is not None:
            return None
        os.makedirs(self.path(idmap), exist_ok=True)
        return self.path(idmap)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    ctx = load_context({"PAAS_ROOT": str(tmp_path / "root")})
    s = ImageStore(ctx, connect(ctx.paths.db), env={"SOURCE_DATE_EPOCH": EPOCH})
    s.views = FakeViews(ctx.paths.snapshots)
    yield s
    s.conn.close()


def _rows(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in
            conn.execute("SELECT idmap, chain_id FROM snapshots ORDER BY id")]


def test_a_layer_is_unpacked_once_for_every_range(store: ImageStore, tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "base.tar", {"etc/debian_version": b"12\n"})
    base = store.import_rootfs(str(tar), "base")
    ma = store.rootfs_mount(base, A, "/a/upper", "/a/work")
    mb = store.rootfs_mount(base, B, "/b/upper", "/b/work")
    assert _rows(store.conn) == [(BASE_KEY, base.chain_ids[0])]
    snaps = store.ctx.paths.snapshots
    assert ma.options[0] == f"lowerdir={snaps}/views/{A.key}/1/fs"
    assert mb.options[0] == f"lowerdir={snaps}/views/{B.key}/1/fs"
    # unshifted: root's files are uid 0 in the one copy (the view shifts them)
    assert os.stat(f"{snaps}/{BASE_KEY}/1/fs/etc/debian_version").st_uid == 0


def test_adopted_build_step_stacks_on_the_base_trees(store: ImageStore,
                                                      tmp_path: Path) -> None:
    from paas.model import HistoryEntry

    tar = make_tar(tmp_path / "base.tar", {"etc/debian_version": b"12\n"})
    base = store.import_rootfs(str(tar), "base")
    store.rootfs_mount(base, A, "/u", "/w")
    upper = tmp_path / "upper"
    (upper / "app").mkdir(parents=True)
    (upper / "app" / "x").write_text("x")
    os.chown(upper / "app" / "x", A.host_id + 1000, A.host_id + 1000)
    child = store.derive(base, config=base.config, history=HistoryEntry("", "RUN x"),
                         layer_dir=str(upper), idmap=A, adopt=True)
    assert not upper.exists(), "adopted as A's tree, not unpacked again"
    m = store.rootfs_mount(child, A, "/u", "/w")
    snaps = store.ctx.paths.snapshots
    assert m.options[0] == f"lowerdir={snaps}/{A.key}/2/fs:{snaps}/views/{A.key}/1/fs"
    # another range never gets A's shifted tree: the layer is unpacked into base for it
    m = store.rootfs_mount(child, B, "/u", "/w")
    assert m.options[0] == f"lowerdir={snaps}/views/{B.key}/3/fs:{snaps}/views/{B.key}/1/fs"
    assert os.stat(f"{snaps}/{BASE_KEY}/3/fs/app/x").st_uid == 1000


def test_refused_views_fall_back_to_shifted_copies(store: ImageStore, tmp_path: Path) -> None:
    store.views.refused = "EINVAL"
    tar = make_tar(tmp_path / "base.tar", {"etc/debian_version": b"12\n"})
    base = store.import_rootfs(str(tar), "base")
    m = store.rootfs_mount(base, A, "/u", "/w")
    snaps = store.ctx.paths.snapshots
    assert m.options[0] == f"lowerdir={snaps}/{A.key}/2/fs"
    assert os.stat(f"{snaps}/{A.key}/2/fs/etc/debian_version").st_uid == A.host_id


def test_scratch_image_gets_the_views_empty_dir(store: ImageStore) -> None:
    m = store.rootfs_mount(None, A, "/u", "/w")
    snaps = store.ctx.paths.snapshots
    assert m.options[0] == f"lowerdir={snaps}/views/{A.key}/empty"
    assert os.path.isdir(f"{snaps}/{BASE_KEY}/empty")
