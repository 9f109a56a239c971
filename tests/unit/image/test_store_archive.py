"""save/load of OCI archives between two temp-dir instances, and refusal of bad archives."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from test_store_ops import blob_count, make_tar, open_store

from paas.errors import InvalidArgument, NotFound
from paas.image.manifest import CONTAINERD_NAME, REF_NAME
from paas.image.store import ImageStore


@pytest.fixture
def saved(tmp_path: Path) -> tuple[ImageStore, Path]:
    src = open_store(tmp_path / "src")
    tar = make_tar(tmp_path / "r.tar", {"etc/hostname": b"x\n", "bin/sh": b"sh"})
    src.import_rootfs(str(tar), "debian:bookworm")
    out = tmp_path / "img.tar"
    src.save("debian:bookworm", str(out))
    return src, out


def rewrite(archive: Path, out: Path, change: dict[str, bytes | None]) -> Path:
    """Copy ``archive`` to ``out`` with members replaced (or dropped, for None)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for m in src.getmembers():
            if m.name in change:
                data = change[m.name]
                if data is None:
                    continue
                m.size = len(data)
                dst.addfile(m, io.BytesIO(data))
            else:
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    return out


def test_archive_layout_and_annotations(saved: tuple[ImageStore, Path]) -> None:
    src, out = saved
    img = src.get("debian:bookworm")
    with tarfile.open(out) as tar:
        names = tar.getnames()
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        layout = json.load(tar.extractfile("oci-layout"))  # type: ignore[arg-type]
    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert [m["digest"] for m in index["manifests"]] == [img.manifest_digest]
    assert index["manifests"][0]["annotations"] == {
        REF_NAME: "bookworm",
        CONTAINERD_NAME: "debian:bookworm",
    }
    blobs = sorted(n for n in names if n.startswith("blobs/sha256/"))
    want = sorted(
        "blobs/sha256/" + d.split(":")[1] for d in [img.manifest_digest, img.id, *img.diff_ids]
    )
    assert blobs == want


def test_load_round_trip_into_fresh_instance(
    saved: tuple[ImageStore, Path], tmp_path: Path
) -> None:
    src, out = saved
    dst = open_store(tmp_path / "dst")
    [img] = dst.load(str(out))
    assert img.id == src.get("debian:bookworm").id
    assert [str(r) for r in img.refs] == ["debian:bookworm"]
    assert dst.get("debian:bookworm").manifest_digest == img.manifest_digest
    assert dst.load(str(out))[0].id == img.id, "loading twice is fine"
    assert len(dst.list()) == 1


def test_load_from_layout_directory(saved: tuple[ImageStore, Path], tmp_path: Path) -> None:
    _src, out = saved
    d = tmp_path / "layout"
    d.mkdir()
    # our own archive of plain files; extractall's filter= only exists from Python 3.11.4 on
    with tarfile.open(out) as tar:
        for member in tar.getmembers():
            assert member.isfile() or member.isdir(), member.name
        tar.extractall(d)
    [img] = open_store(tmp_path / "dst").load(str(d))
    assert [str(r) for r in img.refs] == ["debian:bookworm"]


def _layer_member(out: Path, src: ImageStore) -> str:
    return "blobs/sha256/" + src.get("debian:bookworm").diff_ids[0].split(":")[1]


def _assert_untouched(dst: ImageStore) -> None:
    assert dst.list() == [] and blob_count(dst) == 0
    assert [x for x in os.listdir(dst.ctx.paths.tmp) if not x.endswith(".lock")] == []


def test_corrupt_blob_fails_cleanly(saved: tuple[ImageStore, Path], tmp_path: Path) -> None:
    src, out = saved
    name = _layer_member(out, src)
    with tarfile.open(out) as tar:
        data = bytearray(tar.extractfile(name).read())  # type: ignore[union-attr]
    data[600] ^= 0xFF
    bad = rewrite(out, tmp_path / "bad.tar", {name: bytes(data)})
    dst = open_store(tmp_path / "dst")
    with pytest.raises(InvalidArgument, match="corrupt"):
        dst.load(str(bad))
    _assert_untouched(dst)


@pytest.mark.parametrize("what", ["missing-blob", "no-name", "bad-name", "gzip-layer", "no-layout"])
def test_bad_archives_are_refused(
    saved: tuple[ImageStore, Path], tmp_path: Path, what: str
) -> None:
    src, out = saved
    with tarfile.open(out) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    change: dict[str, bytes | None] = {}
    if what == "missing-blob":
        change[_layer_member(out, src)] = None
    elif what == "no-name":
        index["manifests"][0].pop("annotations")
    elif what == "bad-name":
        index["manifests"][0]["annotations"] = {REF_NAME: "Bad Name!"}
    elif what == "gzip-layer":
        index["manifests"][0]["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
    elif what == "no-layout":
        change["oci-layout"] = None
    if what in ("no-name", "bad-name", "gzip-layer"):
        change["index.json"] = json.dumps(index).encode()
    bad = rewrite(out, tmp_path / "bad.tar", change)
    dst = open_store(tmp_path / "dst")
    with pytest.raises(InvalidArgument) as err:
        dst.load(str(bad))
    if what in ("no-name", "bad-name"):
        assert "name" in err.value.message and err.value.hint
    _assert_untouched(dst)


def test_ref_name_only_is_used_as_the_name(saved: tuple[ImageStore, Path], tmp_path: Path) -> None:
    _src, out = saved
    with tarfile.open(out) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    index["manifests"][0]["annotations"] = {REF_NAME: "myimage:1.0"}
    other = rewrite(out, tmp_path / "o.tar", {"index.json": json.dumps(index).encode()})
    [img] = open_store(tmp_path / "dst").load(str(other))
    assert [str(r) for r in img.refs] == ["myimage:1.0"]


def test_load_errors_for_missing_or_non_tar(tmp_path: Path) -> None:
    dst = open_store(tmp_path / "dst")
    with pytest.raises(NotFound):
        dst.load(str(tmp_path / "nope.tar"))
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(InvalidArgument):
        dst.load(str(junk))


def test_save_unknown_image_and_directory_target(
    saved: tuple[ImageStore, Path], tmp_path: Path
) -> None:
    src, _out = saved
    with pytest.raises(NotFound):
        src.save("nope", str(tmp_path / "x.tar"))
    with pytest.raises(InvalidArgument):
        src.save("debian:bookworm", str(tmp_path))


def test_corrupt_copy_of_a_blob_the_store_already_has_is_refused(
    saved: tuple[ImageStore, Path], tmp_path: Path
) -> None:
    src, out = saved
    name = _layer_member(out, src)
    with tarfile.open(out) as tar:
        data = bytearray(tar.extractfile(name).read())  # type: ignore[union-attr]
    data[-1] ^= 0xFF
    bad = rewrite(out, tmp_path / "bad.tar", {name: bytes(data)})
    src.tag("debian:bookworm", "keep")
    src.remove("debian:bookworm")
    with pytest.raises(InvalidArgument, match="corrupt"):
        src.load(str(bad))
    assert [str(r) for i in src.list() for r in i.refs] == ["keep:latest"]
    assert src.content.read(src.get("keep").id)
