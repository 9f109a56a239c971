"""A corpus of malicious layer tars and OCI archives, generated here with ``tarfile``.

Extends test_layer_safety.py (basic ``..``/absolute names, symlinked parents,
hardlinks out of the tree) with what it lacks: escapes hidden in GNU long names
and pax ``path``/``linkpath`` records, chained symlinks, device nodes, huge and
overlong headers, decompression bombs, whiteout abuse, setuid files, random
entry soups (hypothesis), and malicious ``image:load`` archives.

Every case goes through the real store where it can (``import_rootfs``, a
snapshot unpack), then checks that a sentinel directory next to the store is
untouched and that no image, blob, snapshot row or staging dir is left behind.
Needs root (chown, mknod), like the other layer tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layer_helpers import IDMAP, build_tar, extract_bytes
from test_store_ops import blob_count, open_store

from paas.errors import InvalidArgument
from paas.image.layer import Limits
from paas.image.manifest import CONTAINERD_NAME, MEDIA_CONFIG, MEDIA_LAYER, MEDIA_MANIFEST
from paas.image.store import ImageStore

Entry = tuple[str, Any, dict[str, Any]]


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        from prereq import unavailable

        unavailable("the layer tests need root (chown, mknod)")


def snapshot(path: Path) -> dict[str, tuple[int, int, bytes | str]]:
    """Every entry under ``path``: mode, size and content (link target for symlinks)."""
    out: dict[str, tuple[int, int, bytes | str]] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            what: bytes | str = (os.readlink(p) if stat.S_ISLNK(st_.st_mode) else
                                 Path(p).read_bytes() if stat.S_ISREG(st_.st_mode) else b"")
            out[os.path.relpath(p, path)] = (st_.st_mode, st_.st_nlink, what)
    return out


def assert_store_clean(store: ImageStore) -> None:
    """No image, blob, snapshot row or staging dir after a refused layer."""
    assert store.list() == [] and blob_count(store) == 0
    assert store.conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 0
    leftovers = [os.path.join(d, n) for d, dirs, _ in os.walk(store.ctx.paths.snapshots)
                 for n in dirs if n.startswith("tmp-")]
    assert leftovers == []


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    s = open_store(tmp_path / "root")
    yield s
    s.conn.close()


def import_refused(store: ImageStore, tmp_path: Path, data: bytes, *fragments: str) -> str:
    """``image:import`` of ``data`` fails with InvalidArgument and leaves nothing behind."""
    tar = tmp_path / "layer.tar"
    tar.write_bytes(data)
    with pytest.raises(InvalidArgument) as err:
        store.import_rootfs(str(tar), "evil:latest")
    for fragment in fragments:
        assert fragment in err.value.message
    assert err.value.hint
    assert_store_clean(store)
    return err.value.message


def gnu_tar(*entries: Entry) -> bytes:
    """Like ``build_tar`` in GNU format: long names become ././@LongLink records."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, what, attrs in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1_700_000_000, attrs.get("mode", 0o644)
            content = None
            if what not in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.size, content = len(what), io.BytesIO(what)
            else:
                info.type, info.linkname = what, attrs.get("linkname", "")
            tar.addfile(info, content)
    return buf.getvalue()


# --- escapes: names, symlinks, hardlinks ------------------------------------------------

LONG = "d" * 90 + "/" + "e" * 90 + "/"  # over the 100-byte name field


def _cases(outside: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (tar, a fragment of the refusal message)."""
    victim = str(outside / "victim")
    up = "../" * 12 + str(outside).lstrip("/") + "/victim"
    return {
        "gnu-longname-dotdot": (gnu_tar((LONG + up, b"pwned", {})), "escapes the root"),
        "gnu-longname-absolute": (gnu_tar((victim + "/" + LONG.strip("/"), b"x", {})),
                                  "absolute"),
        "pax-long-dotdot": (build_tar((LONG + up, b"pwned", {})), "escapes the root"),
        "pax-path-record": (build_tar(("harmless", b"pwned", {"pax": {"path": up}})),
                            "escapes the root"),
        "pax-path-absolute": (build_tar(("harmless", b"pwned", {"pax": {"path": victim}})),
                              "absolute"),
        "gnu-longlink-hardlink": (gnu_tar(("h", tarfile.LNKTYPE, {"linkname": LONG + up})),
                                  "escapes the root"),
        "pax-linkpath-hardlink": (build_tar(("h", tarfile.LNKTYPE, {
            "linkname": "x", "pax": {"linkpath": victim}})), "links to"),
        "chained-symlinks": (build_tar(
            ("a", tarfile.SYMTYPE, {"linkname": "b"}), ("b", tarfile.SYMTYPE, {"linkname": "c"}),
            ("c", tarfile.SYMTYPE, {"linkname": str(outside)}), ("a/victim", b"pwned", {})),
            "'a', a symlink"),
        "symlink-chain-relative": (build_tar(
            ("l1", tarfile.SYMTYPE, {"linkname": "l2/.."}),
            ("l2", tarfile.SYMTYPE, {"linkname": "../" * 12 + str(outside).lstrip("/")}),
            ("l2/victim", b"pwned", {})), "'l2', a symlink"),
        "symlink-to-root-then-dir": (build_tar(
            ("r", tarfile.SYMTYPE, {"linkname": "/"}),
            ("r" + str(outside) + "/new", tarfile.DIRTYPE, {})), "'r', a symlink"),
        "symlink-dir-then-hardlink-into-it": (build_tar(
            ("f", b"x", {}), ("s", tarfile.SYMTYPE, {"linkname": str(outside)}),
            ("s/h", tarfile.LNKTYPE, {"linkname": "f"})), "'s', a symlink"),
        "hardlink-to-symlink-to-outside": (build_tar(
            ("s", tarfile.SYMTYPE, {"linkname": victim}),
            ("h", tarfile.LNKTYPE, {"linkname": "s"})), "links to 's'"),
        "hardlink-to-directory": (build_tar(
            ("d", tarfile.DIRTYPE, {}), ("h", tarfile.LNKTYPE, {"linkname": "d"})),
            "links to 'd'"),
        "hardlink-to-itself": (build_tar(("h", tarfile.LNKTYPE, {"linkname": "h"})),
                               "links to 'h'"),
        "whiteout-dotdot-in-pax-path": (build_tar(
            ("x", b"", {"pax": {"path": "../outside/.wh.victim"}})), "escapes the root"),
        "whiteout-through-file": (build_tar(("f", b"x", {}), ("f/.wh..wh..opq", b"", {})),
                                  "'f', a symlink or non-directory"),
        "whiteout-through-symlink-chain": (build_tar(
            ("a", tarfile.SYMTYPE, {"linkname": "b"}),
            ("b", tarfile.SYMTYPE, {"linkname": str(outside)}), ("a/.wh.victim", b"", {})),
            "'a', a symlink"),
        "name-too-long-component": (build_tar(("n" * 300, b"x", {})), "cannot be created"),
        "nul-in-pax-path": (build_tar(("x", b"", {"pax": {"path": "a\x00/../../x"}})), "NUL"),
        "huge-pax-path": (build_tar(("x", b"", {"pax": {"path": "p/" * (3 << 20)}})),
                          "extended header"),
        "huge-gnu-longname": (gnu_tar(("q/" * (1 << 20), b"", {})), "extended header"),
    }


CASES = sorted(_cases(Path("/x")))


@pytest.mark.parametrize("case", CASES)
def test_escape_is_refused_by_the_store(case: str, store: ImageStore, tmp_path: Path,
                                        outside: Path) -> None:
    before = snapshot(outside)
    data, fragment = _cases(outside)[case]
    import_refused(store, tmp_path, data, fragment)
    assert snapshot(outside) == before
    assert sorted(os.listdir(tmp_path)) == ["layer.tar", "outside", "root"]


@pytest.mark.parametrize("case", CASES)
def test_escape_is_refused_gzipped_and_unshifted(case: str, tmp_path: Path,
                                                 outside: Path) -> None:
    before = snapshot(outside)
    data, fragment = _cases(outside)[case]
    with pytest.raises(InvalidArgument, match=None) as err:
        extract_bytes(gzip.compress(data, compresslevel=1), tmp_path / "dest")
    assert fragment in err.value.message
    assert snapshot(outside) == before


@pytest.mark.parametrize("name", ["d/" * 2100 + "leaf", "d/" * 300 + "leaf",
                                  "/".join(["n" * 250] * 13)])
def test_names_deeper_or_longer_than_a_tree_can_use_are_refused(
        store: ImageStore, tmp_path: Path, name: str) -> None:
    """4096+ bytes or 2000 levels extract fine through directory fds, but then neither
    the layer writer (paths) nor rmtree (recursion) could handle the snapshot."""
    import_refused(store, tmp_path, build_tar((name, b"deep", {})), "layer entry")


def test_deep_names_within_the_limits_work(store: ImageStore, tmp_path: Path) -> None:
    tar = tmp_path / "deep.tar"
    tar.write_bytes(build_tar(("d/" * 200 + "leaf", b"deep", {}),
                              ("/".join(["n" * 250] * 12), b"long", {})))
    image = store.import_rootfs(str(tar), "deep:latest")
    ids = store.snapshots.ensure(image.chain_ids, image.diff_ids, store.content.open,
                                 store.ctx.idmap)
    fs = Path(store.snapshots.fs_path(store.ctx.idmap.key, ids[-1]))
    assert (fs / ("d/" * 200 + "leaf")).read_bytes() == b"deep"
    store.remove("deep:latest")
    store.prune_snapshots()
    assert not fs.exists()


# --- device nodes, setuid, modes --------------------------------------------------------

DEVICES: list[Entry] = [
    ("dev/null", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3, "mode": 0o666}),
    ("dev/mem", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 1, "mode": 0o666}),
    ("dev/sda", tarfile.BLKTYPE, {"devmajor": 8, "devminor": 0, "mode": 0o666}),
    ("dev/kmsg", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 11, "mode": 0o666}),
    ("run/fifo", tarfile.FIFOTYPE, {"mode": 0o666}),
]


def test_id_shifted_store_skips_device_nodes_but_the_harmless_ones(tmp_path: Path) -> None:
    """Docker in a user namespace skips device nodes; an id-shifted paas store keeps only
    the ones every container gets anyway (a 0666 /dev/sda in a traversable snapshot dir
    would be a raw disk for every host user)."""
    dest = tmp_path / "dest"
    extract_bytes(build_tar(*DEVICES), dest, idmap=IDMAP)
    assert sorted(os.listdir(dest / "dev")) == ["null"]
    null = os.lstat(dest / "dev" / "null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert null.st_uid == IDMAP.to_host(0)
    assert stat.S_ISFIFO(os.lstat(dest / "run" / "fifo").st_mode)


def test_unshifted_store_creates_device_nodes_like_docker_as_root(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    extract_bytes(build_tar(*DEVICES), dest)
    assert sorted(os.listdir(dest / "dev")) == ["kmsg", "mem", "null", "sda"]
    assert stat.S_ISBLK(os.lstat(dest / "dev" / "sda").st_mode)


def test_store_import_skips_dangerous_devices(store: ImageStore, tmp_path: Path) -> None:
    tar = tmp_path / "dev.tar"
    tar.write_bytes(build_tar(*DEVICES))
    image = store.import_rootfs(str(tar), "dev:latest")
    ids = store.snapshots.ensure(image.chain_ids, image.diff_ids, store.content.open,
                                 store.ctx.idmap)
    fs = Path(store.snapshots.fs_path(store.ctx.idmap.key, ids[-1]))
    assert sorted(os.listdir(fs / "dev")) == ["null"]


def test_setuid_and_odd_modes_are_kept_on_shifted_owners(tmp_path: Path) -> None:
    """As Docker: modes (setuid, setgid, sticky, 0000) are kept; with an idmap the owner
    is the shifted root, so a setuid file is no host root binary."""
    data = build_tar(
        ("bin/su", b"\x7fELF", {"mode": 0o4755}),
        ("bin/all", b"x", {"mode": 0o7777}),
        ("secret", b"x", {"mode": 0o000}),
        ("tmp", tarfile.DIRTYPE, {"mode": 0o1777}),
        ("group", tarfile.DIRTYPE, {"mode": 0o2775, "uid": 70000, "gid": 70000}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest, idmap=IDMAP)
    modes = {n: stat.S_IMODE(os.lstat(dest / n).st_mode)
             for n in ("bin/su", "bin/all", "secret", "tmp", "group")}
    assert modes == {"bin/su": 0o4755, "bin/all": 0o7777, "secret": 0, "tmp": 0o1777,
                     "group": 0o2775}
    assert os.lstat(dest / "bin" / "su").st_uid == IDMAP.to_host(0)


def test_ids_outside_the_idmap_become_nobody(tmp_path: Path) -> None:
    data = build_tar(("f", b"x", {"uid": 70000, "gid": 4_000_000_000, "mode": 0o6755}))
    extract_bytes(data, tmp_path / "dest", idmap=IDMAP)  # the map covers 0-65535
    st_ = os.lstat(tmp_path / "dest" / "f")
    assert (st_.st_uid, st_.st_gid) == (IDMAP.to_host(65534), IDMAP.to_host(65534))


# --- bombs ------------------------------------------------------------------------------


def _zeros_file_tar(size: int) -> bytes:
    """A tar with one file of ``size`` zero bytes, gzipped (about 1/1000 of the size)."""
    raw = io.BytesIO()

    class Zeros(io.RawIOBase):
        left = size

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    info = tarfile.TarInfo("zeros")
    info.size = size
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BufferedReader(Zeros()))
    return raw.getvalue()


def test_gzip_bomb_over_the_content_limit(store: ImageStore, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = _zeros_file_tar(64 << 20)
    assert len(data) < 1 << 20
    monkeypatch.setenv("PAAS_LAYER_MAX_BYTES", str(8 << 20))
    import_refused(store, tmp_path, data, "'zeros'", f"size limit of {8 << 20} bytes")


def test_gzip_bomb_after_the_end_of_the_archive(store: ImageStore, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """64 MiB of zeros after the end-of-archive blocks: no file, but hashed to the end."""
    tail = gzip.compress(build_tar(("f", b"x", {})) + bytes(64 << 20), compresslevel=9)
    assert len(tail) < 1 << 20
    monkeypatch.setenv("PAAS_LAYER_MAX_BYTES", str(8 << 20))
    import_refused(store, tmp_path, tail, "larger than", "uncompressed")
    with pytest.raises(InvalidArgument, match="larger than 1048576 bytes") as err:
        extract_bytes(tail, tmp_path / "d", limits=Limits(max_stream_bytes=1 << 20))
    assert "decompression bomb" in err.value.hint


def test_layer_limit_from_the_environment() -> None:
    assert Limits.from_env({}) == Limits()
    assert Limits.from_env({"PAAS_LAYER_MAX_BYTES": "1000"}).max_bytes == 1000
    with pytest.raises(InvalidArgument, match="PAAS_LAYER_MAX_BYTES"):
        Limits.from_env({"PAAS_LAYER_MAX_BYTES": "lots"})


def test_many_tiny_entries_hit_the_entry_limit(tmp_path: Path) -> None:
    data = gzip.compress(build_tar(*[(f"f{i}", b"", {}) for i in range(300)]))
    with pytest.raises(InvalidArgument, match="limit of 100 entries"):
        extract_bytes(data, tmp_path / "d", limits=Limits(max_entries=100))


# --- whiteouts in odd places ------------------------------------------------------------


def test_whiteouts_in_odd_places_stay_inside(tmp_path: Path, outside: Path) -> None:
    before = snapshot(outside)
    data = build_tar(
        (".wh..wh..opq", b"", {}),  # the layer root made opaque: hides lower layers only
        ("d/.wh..wh..opq", tarfile.DIRTYPE, {}),  # a marker that is a directory entry
        ("d/.wh..wh.plnk", b"", {}),  # other aufs metadata: ignored
        ("e/f", b"x", {}), ("e/.wh.f", tarfile.SYMTYPE, {"linkname": str(outside / "victim")}),
        ("g/.wh.victim", b"", {}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest, idmap=IDMAP)
    assert os.getxattr(dest, "trusted.overlay.opaque") == b"y"
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"
    for whiteout in (dest / "e" / "f", dest / "g" / "victim"):
        st_ = os.lstat(whiteout)
        assert stat.S_ISCHR(st_.st_mode) and st_.st_rdev == 0
    assert sorted(os.listdir(dest)) == ["d", "e", "g"]
    assert snapshot(outside) == before


# --- random soups of entries ------------------------------------------------------------

_PART = st.sampled_from(["a", "b", "..", ".", "", ".wh.a", ".wh..wh..opq", ".wh..", "c" * 20])
_NAME = st.lists(_PART, min_size=1, max_size=4).map("/".join) | st.sampled_from(
    ["/abs", "OUTSIDE/victim", "a/OUTSIDE", "../OUTSIDE/victim"])
_ENTRY = st.tuples(
    _NAME, st.sampled_from([b"data", tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                            tarfile.CHRTYPE, tarfile.FIFOTYPE]),
    st.sampled_from(["a", "b", "/", "..", "../..", "OUTSIDE", "OUTSIDE/victim", "a/b", "x"]),
    st.sampled_from([0o644, 0o4755, 0o777, 0]),
)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(_ENTRY, min_size=1, max_size=8), st.booleans())
def test_random_entry_soups_never_escape(entries: list[tuple[str, Any, str, int]],
                                         shifted: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="paas-fuzz-") as top:
        outside = Path(top) / "outside"
        outside.mkdir()
        (outside / "victim").write_text("original")
        before = snapshot(outside)
        fix: Callable[[str], str] = lambda s: s.replace("OUTSIDE", str(outside)).replace(
            "/" + str(outside), str(outside))
        tar_entries: list[Entry] = [
            (fix(name), what, {"linkname": fix(link), "mode": mode, "devmajor": 1,
                               "devminor": 1}) for name, what, link, mode in entries]
        dest = Path(top) / "dest"
        try:
            extract_bytes(build_tar(*tar_entries), dest, idmap=IDMAP if shifted else None)
        except InvalidArgument as err:
            assert err.message and err.hint
        assert snapshot(outside) == before
        assert sorted(os.listdir(top)) == ["dest", "outside"]
        shutil.rmtree(dest)


# --- image:load of malicious archives ---------------------------------------------------


def _blob(blobs: dict[str, bytes], data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest


def oci_archive(path: Path, layer: bytes, *, config: Any = None,
                annotations: Any = None, extra: list[Entry] = (),  # type: ignore[assignment]
                index_digest: str | None = None) -> Path:
    """An OCI archive of one image with ``layer``; the pieces can be made malicious."""
    blobs: dict[str, bytes] = {}
    diff = _blob(blobs, layer)
    cfg = config if config is not None else {
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff]}}
    cfg_data = json.dumps(cfg).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                           "config": {"mediaType": MEDIA_CONFIG, "size": len(cfg_data),
                                      "digest": _blob(blobs, cfg_data)},
                           "layers": [{"mediaType": MEDIA_LAYER, "size": len(layer),
                                       "digest": diff}]}).encode()
    mdigest = _blob(blobs, manifest)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": MEDIA_MANIFEST, "size": len(manifest), "digest": index_digest or mdigest,
        "annotations": annotations if annotations is not None else {
            CONTAINERD_NAME: "evil:latest"}}]}
    entries: list[Entry] = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}', {}),
                            ("index.json", json.dumps(index).encode(), {})]
    entries += [("blobs/sha256/" + d.split(":")[1], data, {}) for d, data in blobs.items()]
    path.write_bytes(build_tar(*entries, *extra))
    return path


def test_load_then_unpack_of_a_malicious_layer_leaves_nothing(
        store: ImageStore, tmp_path: Path, outside: Path) -> None:
    before = snapshot(outside)
    evil = build_tar(("a", tarfile.SYMTYPE, {"linkname": str(outside)}), ("a/x", b"p", {}))
    [image] = store.load(str(oci_archive(tmp_path / "evil.tar", evil)))
    with pytest.raises(InvalidArgument, match="'a/x'"):
        store.rootfs_mount(image, store.ctx.idmap, str(tmp_path / "u"), str(tmp_path / "w"))
    assert store.conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 0
    assert [n for d, dirs, _ in os.walk(store.ctx.paths.snapshots) for n in dirs
            if n.startswith("tmp-")] == []
    assert snapshot(outside) == before


@pytest.mark.parametrize("what", ["digest-traversal", "member-traversal", "member-symlink",
                                  "annotations-list", "rootfs-list", "config-list",
                                  "member-absolute-only", "hardlinked-blob"])
def test_malicious_archives_are_refused(store: ImageStore, tmp_path: Path, outside: Path,
                                        what: str) -> None:
    before = snapshot(outside)
    layer = build_tar(("f", b"x", {}))
    path = tmp_path / "evil.tar"
    if what == "digest-traversal":
        oci_archive(path, layer, index_digest="sha256:../../../../" + str(outside) + "/victim")
    elif what == "annotations-list":
        oci_archive(path, layer, annotations=[CONTAINERD_NAME, "evil:latest"])
    elif what == "rootfs-list":
        oci_archive(path, layer, config={"rootfs": ["layers"]})
    elif what == "config-list":
        oci_archive(path, layer, config=["not", "an", "object"])
    else:
        oci_archive(path, layer)
        with tarfile.open(path) as tar:
            members = [(m, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                       for m in tar.getmembers()]
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for m, data in members:
                blob = m.name.startswith("blobs/") and data == layer
                if blob and what == "member-traversal":
                    m.name = "../" + m.name
                elif blob and what == "member-absolute-only":
                    m.name = "/../" + m.name
                elif blob and what in ("member-symlink", "hardlinked-blob"):
                    link = tarfile.TarInfo(m.name)
                    link.type = tarfile.SYMTYPE if what == "member-symlink" else tarfile.LNKTYPE
                    link.linkname = str(outside / "victim") if what == "member-symlink" \
                        else "oci-layout"
                    tar.addfile(link)
                    continue
                tar.addfile(m, io.BytesIO(data) if data is not None else None)
    with pytest.raises(InvalidArgument) as err:
        store.load(str(path))
    assert err.value.message
    assert_store_clean(store)
    assert [x for x in os.listdir(store.ctx.paths.tmp) if not x.endswith(".lock")] == []
    assert snapshot(outside) == before
