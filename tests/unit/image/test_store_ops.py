"""ImageStore against a temp-dir instance with tiny tars: import, resolve, tag, rm, commit, mounts.

Uses the real layer module (needs root for chown, like the layer tests); no
subprocesses and no mounts, so it stays in the unit tier.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.config import load_context
from paas.errors import Conflict, InvalidArgument, NotFound
from paas.image import layer as layer_mod
from paas.image.store import ImageStore
from paas.model import HistoryEntry, ImageConfig
from paas.state import connect

EPOCH = "1700000000"


def make_tar(
    path: Path, files: dict[str, bytes], *, bash: bool = False, links: dict[str, str] | None = None
) -> Path:
    with tarfile.open(path, "w") as tar:
        dirs = sorted(
            {os.path.dirname(n) for n in files if os.path.dirname(n)} | {"usr", "usr/bin"}
        )
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
            tar.addfile(info)
        for name, link in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, link, 1_600_000_000
            tar.addfile(info)
        all_files = dict(files)
        if bash:
            all_files["usr/bin/bash"] = b"#!fake"
        for name, data in sorted(all_files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def open_store(root: Path, **env: str) -> ImageStore:
    """A store unpacking id-shifted copies (the unit tier mounts nothing; the idmapped
    views are tested with a fake view in test_store_views.py and for real in
    tests/integration/test_idmaps.py)."""
    ctx = load_context({"PAAS_ROOT": str(root), "PAAS_IDMAPPED": "off"})
    return ImageStore(ctx, connect(ctx.paths.db), env={"SOURCE_DATE_EPOCH": EPOCH, **env})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    s = open_store(tmp_path / "root")
    yield s
    s.conn.close()


@pytest.fixture
def base_tar(tmp_path: Path) -> Path:
    return make_tar(
        tmp_path / "base.tar",
        {"etc/debian_version": b"12.0\n"},
        bash=True,
        links={"bin": "usr/bin"},
    )


def index_names(store: ImageStore) -> list[str]:
    with open(os.path.join(store.ctx.paths.layout, "index.json")) as f:
        idx = json.load(f)
    return sorted(
        m.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
        for m in idx["manifests"]
    )


def blob_count(store: ImageStore) -> int:
    return len(os.listdir(store.content.blob_dir))


def snapshot_dirs(store: ImageStore) -> list[str]:
    key = store.ctx.idmap.key
    d = os.path.join(store.ctx.paths.snapshots, key)
    return (
        sorted(x for x in os.listdir(d) if x not in ("locks", "empty")) if os.path.isdir(d) else []
    )


# -- import / get ------------------------------------------------------------------
def test_import_creates_layout_blobs_tag_and_snapshot(store: ImageStore, base_tar: Path) -> None:
    img = store.import_rootfs(str(base_tar), "debian:bookworm", created_by="test import")
    layout = store.ctx.paths.layout
    assert json.loads(Path(layout, "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert index_names(store) == ["debian:bookworm"]
    assert len(img.diff_ids) == 1 and img.chain_ids == img.diff_ids
    assert img.config.cmd == ("bash",), "bash reached through the bin -> usr/bin symlink"
    assert img.config.env[0].startswith("PATH=")
    assert img.created == "2023-11-14T22:13:20Z", "SOURCE_DATE_EPOCH sets created"
    assert [h.created_by for h in img.history] == ["test import"]
    assert blob_count(store) == 3  # layer, config, manifest
    assert store.content.size(img.diff_ids[0]) == img.size
    assert store.content.read(img.id)  # config digest == id, verified
    assert snapshot_dirs(store) == ["1"]
    fs = os.path.join(store.ctx.paths.snapshots, store.ctx.idmap.key, "1", "fs")
    st = os.stat(os.path.join(fs, "etc", "debian_version"))
    assert st.st_uid == 100000, "snapshot is shifted to the instance's id range"
    assert os.listdir(store.ctx.paths.tmp) == ["store.lock"], "no staging leftovers"


def test_import_without_bash_uses_sh_and_is_deterministic(tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "r.tar", {"bin/sh": b"x", "etc/os-release": b"ID=test\n"})
    a = open_store(tmp_path / "a").import_rootfs(str(tar), "t")
    b = open_store(tmp_path / "b").import_rootfs(str(tar), "t")
    assert a.config.cmd == ("sh",)
    assert a.diff_ids == b.diff_ids and a.id == b.id and a.manifest_digest == b.manifest_digest


def test_get_resolves_tags_ids_prefixes_and_digests(store: ImageStore, base_tar: Path) -> None:
    img = store.import_rootfs(str(base_tar), "debian:bookworm")
    hexid = img.id.split(":")[1]
    for ref in [
        "debian:bookworm",
        img.id,
        hexid,
        hexid[:12],
        "sha256:" + hexid[:5],
        f"debian@{img.manifest_digest}",
        f"debian@{img.id}",
    ]:
        assert store.get(ref).id == img.id, ref
    with pytest.raises(NotFound) as err:
        store.get("debian")
    assert err.value.message == "No such image: debian:latest"
    assert "paas image:ls" in err.value.hint and "image:bootstrap" in err.value.hint
    with pytest.raises(NotFound):
        store.get("sha256:" + ("0" if hexid[0] != "0" else "1") * 10)
    with pytest.raises(InvalidArgument):
        store.get("Not A Ref!")


def test_ambiguous_id_prefix(store: ImageStore, base_tar: Path, tmp_path: Path) -> None:
    base = store.import_rootfs(str(base_tar), "base")
    upper = tmp_path / "upper"
    upper.mkdir()
    ids = {base.id}
    for i in range(16):  # 17 images, 16 hex digits: two share a first digit
        (upper / "f").write_text(str(i))
        ids.add(store.commit_layer(base, str(upper), None).id)
    firsts = [i.split(":")[1][0] for i in ids]
    dup = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(InvalidArgument, match="ambiguous"):
        store.get(dup)
    assert len(store.list()) == 17


# -- tag / rm ------------------------------------------------------------------------
def test_tag_and_remove_follow_docker_semantics(store: ImageStore, base_tar: Path) -> None:
    img = store.import_rootfs(str(base_tar), "debian:bookworm")
    store.tag("debian:bookworm", "mybase")
    assert index_names(store) == ["debian:bookworm", "mybase:latest"]
    assert sorted(str(r) for r in store.get(img.id).refs) == ["debian:bookworm", "mybase:latest"]
    with pytest.raises(Conflict, match="several tags"):
        store.remove(img.id[:19])
    assert store.remove("mybase") == ["Untagged: mybase:latest"]
    assert blob_count(store) == 3
    with pytest.raises(Conflict, match="being used by container web"):
        store.remove("debian:bookworm", in_use={img.id: "web"})
    lines = store.remove("debian:bookworm")
    assert lines == ["Untagged: debian:bookworm", f"Deleted: {img.id}"]
    assert store.list() == [] and blob_count(store) == 0 and index_names(store) == []
    assert snapshot_dirs(store) == []
    assert store.conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0
    with pytest.raises(NotFound):
        store.remove("debian:bookworm")


def test_force_remove_by_id_and_in_use_keeps_image(store: ImageStore, base_tar: Path) -> None:
    img = store.import_rootfs(str(base_tar), "a")
    store.tag("a", "b")
    lines = store.remove(img.id, force=True, in_use=[img.id])
    assert lines == ["Untagged: a:latest", "Untagged: b:latest"]
    kept = store.get(img.id)
    assert kept.refs == () and blob_count(store) == 3, "an image a container uses stays (untagged)"
    assert store.remove(img.id) == [f"Deleted: {img.id}"]


def test_remove_keeps_layers_shared_with_other_images(
    store: ImageStore, base_tar: Path, tmp_path: Path
) -> None:
    base = store.import_rootfs(str(base_tar), "base")
    upper = tmp_path / "upper"
    (upper / "app").mkdir(parents=True)
    (upper / "app" / "x").write_text("hello")
    child = store.commit_layer(base, str(upper), "app:v1")
    store.rootfs_mount(child, store.ctx.idmap, str(tmp_path / "u"), str(tmp_path / "w"))
    assert len(snapshot_dirs(store)) == 2
    store.remove("base")
    assert store.content.has(base.diff_ids[0]) and not store.content.has(base.id)
    assert store.get("app:v1").diff_ids[0] == base.diff_ids[0]
    assert len(snapshot_dirs(store)) == 2, "the child's chain still needs the base snapshot"
    store.remove("app:v1")
    assert blob_count(store) == 0 and snapshot_dirs(store) == []


# -- commit_layer ----------------------------------------------------------------------
def test_commit_layer_adds_a_layer_history_and_config(
    store: ImageStore, base_tar: Path, tmp_path: Path
) -> None:
    base = store.import_rootfs(str(base_tar), "base")
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "hello.txt").write_text("hi")
    os.mknod(upper / "etc", 0o020000, os.makedev(0, 0))  # overlay whiteout: delete /etc
    cfg = ImageConfig(cmd=("python3", "app.py"), env=("PATH=/usr/bin",), working_dir="/app")
    img = store.commit_layer(
        base,
        str(upper),
        "app:v1",
        config=cfg,
        history=HistoryEntry("", "container:commit abc", comment="msg"),
        idmap=store.ctx.idmap,
    )
    assert img.diff_ids[0] == base.diff_ids[0] and len(img.diff_ids) == 2
    assert img.chain_ids[0] == base.chain_ids[0] and img.chain_ids[1] != img.diff_ids[1]
    assert img.config == cfg
    assert [h.created_by for h in img.history] == [
        base.history[0].created_by,
        "container:commit abc",
    ]
    assert img.history[1].created == img.created and img.history[1].comment == "msg"
    with store.content.open(img.diff_ids[1]) as f, tarfile.open(fileobj=f) as tar:
        names = tar.getnames()
    assert any(n.rstrip("/").endswith(".wh.etc") for n in names), names
    untagged = store.commit_layer(base, str(upper), None)
    assert untagged.refs == () and untagged.id in {i.id for i in store.list()}
    assert index_names(store).count("") == 1, "untagged images stay in index.json without a name"


# -- mounts ----------------------------------------------------------------------------
def test_rootfs_mount_stacks_snapshots_top_first(
    store: ImageStore, base_tar: Path, tmp_path: Path
) -> None:
    base = store.import_rootfs(str(base_tar), "base")
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "a").write_text("a")
    img = store.commit_layer(base, str(upper), "app")
    m = store.rootfs_mount(img, store.ctx.idmap, "/c/upper", "/c/work")
    root = os.path.join(store.ctx.paths.snapshots, store.ctx.idmap.key)
    assert m.type == "overlay" and m.source == "overlay"
    assert m.options == (
        f"lowerdir={root}/2/fs:{root}/1/fs",
        "upperdir=/c/upper",
        "workdir=/c/work",
    )
    assert Path(root, "2", "fs", "a").read_text() == "a"
    host = store.rootfs_mount(base, None, "/u", "/w")
    assert host.options[0] == f"lowerdir={store.ctx.paths.snapshots}/host/3/fs"
    assert os.stat(os.path.join(store.ctx.paths.snapshots, "host", "3", "fs", "etc")).st_uid == 0


def test_rootfs_mount_of_zero_layer_image(store: ImageStore) -> None:
    from paas.image.manifest import new_config

    doc = new_config(created="2024-01-01T00:00:00Z", cfg=ImageConfig(cmd=("sh",)))
    img = store._write_image(doc, [], store.target_ref("scratch"))
    m = store.rootfs_mount(img, store.ctx.idmap, "/u", "/w")
    lower = m.options[0].removeprefix("lowerdir=")
    assert os.path.isdir(lower) and os.listdir(lower) == []


def test_concurrent_mounts_unpack_each_layer_once(
    tmp_path: Path, base_tar: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = open_store(tmp_path / "root")
    img = s.import_rootfs(str(base_tar), "base")
    calls: list[str] = []
    real = layer_mod.extract_layer

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("expected_diff_id") or "")
        return real(*args, **kwargs)

    monkeypatch.setattr(layer_mod, "extract_layer", counting)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            st = open_store(tmp_path / "root")
            results.append(st.rootfs_mount(img, None, "/u", "/w").options[0])
            st.conn.close()
        except BaseException as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1 and len(results) == 4
    assert calls == [img.diff_ids[0]]


def test_failed_import_leaves_nothing(store: ImageStore, tmp_path: Path) -> None:
    bad = tmp_path / "evil.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo("../../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(InvalidArgument):
        store.import_rootfs(str(bad), "evil")
    assert snapshot_dirs(store) == [] and blob_count(store) == 0 and store.list() == []
    assert not (tmp_path / "escape").exists()
    with pytest.raises(InvalidArgument):
        store.import_rootfs(str(bad), "Bad Name")
    with pytest.raises(NotFound):
        store.import_rootfs(str(tmp_path / "missing.tar"), "x")


def test_prune_removes_stale_staging_only(store: ImageStore, base_tar: Path) -> None:
    store.import_rootfs(str(base_tar), "base")
    fresh = store.snapshots.staging(store.ctx.idmap.key)
    stale = store.snapshots.staging(store.ctx.idmap.key)
    os.utime(stale, (1_000_000, 1_000_000))
    assert store.prune_snapshots() == 0
    assert os.path.isdir(fresh) and not os.path.exists(stale)
    assert snapshot_dirs(store) == ["1", os.path.basename(fresh)]
