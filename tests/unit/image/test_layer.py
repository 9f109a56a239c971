"""Unit tests for paas.image.layer: deterministic writing, round trips, id shifting,
whiteouts, hardlinks, symlinks, devices and xattrs.

Malicious tars live in test_layer_safety.py. These tests need root (mknod, chown,
trusted.* xattrs), which unit tests of this project have.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from layer_helpers import (
    CAP_NET_BIND,
    EPOCH,
    IDMAP,
    build_tar,
    entry_names,
    extract_bytes,
    make_rich_tree,
    members,
    write_bytes,
)

from paas.image.layer import extract_layer, write_layer
from paas.model import IdMap


def test_round_trip_gives_identical_bytes(tmp_path: Path) -> None:
    src = make_rich_tree(tmp_path / "src", idmap=IDMAP)
    digest1, data1 = write_bytes(src, idmap=IDMAP, overlay_upper=True)
    assert digest1 == "sha256:" + hashlib.sha256(data1).hexdigest()

    dest = tmp_path / "dest"
    assert extract_bytes(data1, dest, idmap=IDMAP) == digest1
    digest2, data2 = write_bytes(dest, idmap=IDMAP, overlay_upper=True)
    assert digest2 == digest1
    assert data2 == data1


def test_round_trip_without_idmap_keeps_raw_ids(tmp_path: Path) -> None:
    src = make_rich_tree(tmp_path / "src", idmap=None)
    digest, data = write_bytes(src)
    dest = tmp_path / "dest"
    extract_bytes(data, dest)
    assert write_bytes(dest) == (digest, data)
    assert os.lstat(dest / "etc" / "shadow").st_gid == 42


def test_same_tree_twice_gives_same_bytes(tmp_path: Path) -> None:
    src = make_rich_tree(tmp_path / "src", idmap=IDMAP)
    assert write_bytes(src, idmap=IDMAP) == write_bytes(src, idmap=IDMAP)


def test_source_date_epoch_clamps_mtimes(tmp_path: Path) -> None:
    digests = []
    for n, when in enumerate((EPOCH + 10, EPOCH + 99999)):
        root = tmp_path / f"t{n}"
        (root / "d").mkdir(parents=True)
        (root / "d" / "f").write_text("same")
        for p in (root / "d" / "f", root / "d"):
            os.utime(p, (when, when))
        digests.append(write_bytes(root, source_date_epoch=EPOCH)[0])
    assert digests[0] == digests[1]

    old = tmp_path / "old"
    old.mkdir()
    (old / "f").write_text("x")
    os.utime(old / "f", (1000, 1000))
    _, data = write_bytes(old, source_date_epoch=EPOCH)
    assert members(data)[0].mtime == 1000  # older than the epoch: kept
    _, unclamped = write_bytes(tmp_path / "t1")
    assert {m.mtime for m in members(unclamped)} == {EPOCH + 99999}


def test_creation_order_does_not_matter(tmp_path: Path) -> None:
    names = ["b", "a", "a-b", "a0", "c.txt", "Z", "é"]
    digests = []
    for n, order in enumerate((names, list(reversed(names)))):
        root = tmp_path / f"t{n}"
        root.mkdir()
        for name in order:
            (root / name).write_text(name)
        (root / "dir").mkdir()
        for p in root.iterdir():
            os.utime(p, (EPOCH, EPOCH), follow_symlinks=False)
        digests.append(write_bytes(root)[0])
    assert digests[0] == digests[1]


def test_entries_sorted_bytewise_with_parents_first(tmp_path: Path) -> None:
    root = tmp_path / "t"
    for d in ("a", "a/x", "b"):
        (root / d).mkdir(parents=True)
    for f in ("a-b", "a.txt", "a0", "a/x/f", "a/y", "b/z", "B"):
        (root / f).write_text("")
    _, data = write_bytes(root)
    assert entry_names(data) == [
        "B", "a-b", "a.txt", "a/", "a/x/", "a/x/f", "a/y", "a0", "b/", "b/z",
    ]  # fmt: skip


def test_headers_are_pax_with_empty_owner_names(tmp_path: Path) -> None:
    root = make_rich_tree(tmp_path / "src", idmap=IDMAP)
    _, data = write_bytes(root, idmap=IDMAP)
    assert data[257:265] == b"ustar\x0000"  # POSIX (ustar/pax) magic
    for m in members(data):
        assert (m.uname, m.gname) == ("", "")
        assert "mtime" not in m.pax_headers and "atime" not in m.pax_headers
    assert len(data) % 512 == 0


def test_write_unshifts_ids_through_idmap(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    for name, uid, gid in (("root", 100000, 100000), ("app", 101000, 100005), ("alien", 7, 7)):
        (root / name).write_text(name)
        os.chown(root / name, uid, gid)
    _, data = write_bytes(root, idmap=IDMAP)
    ids = {m.name: (m.uid, m.gid) for m in members(data)}
    assert ids == {"alien": (65534, 65534), "app": (1000, 5), "root": (0, 0)}
    _, raw = write_bytes(root)
    assert {m.name: m.uid for m in members(raw)}["app"] == 101000


def test_extract_shifts_ids_through_idmap(tmp_path: Path) -> None:
    data = build_tar(
        ("d", tarfile.DIRTYPE, {"uid": 1000, "gid": 1001}),
        ("d/f", b"hello", {"uid": 0, "gid": 5}),
        ("d/l", tarfile.SYMTYPE, {"linkname": "f", "uid": 33, "gid": 33}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest, idmap=IDMAP)
    owners = {
        n: (os.lstat(dest / n).st_uid, os.lstat(dest / n).st_gid) for n in ("d", "d/f", "d/l")
    }
    assert owners == {"d": (101000, 101001), "d/f": (100000, 100005), "d/l": (100033, 100033)}
    plain = tmp_path / "plain"
    extract_bytes(data, plain)
    assert os.lstat(plain / "d").st_uid == 1000


def test_extract_creates_missing_parents_owned_by_container_root(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    extract_bytes(build_tar(("x/y/f", b"one", {})), dest, idmap=IDMAP)
    st = os.lstat(dest / "x" / "y")
    assert stat.S_ISDIR(st.st_mode) and (st.st_uid, stat.S_IMODE(st.st_mode)) == (100000, 0o755)


def test_write_overlay_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "opq" / "kept").mkdir(parents=True)
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    os.setxattr(upper / "opq", "trusted.overlay.origin", b"junk")
    os.mknod(upper / "gone", stat.S_IFCHR, os.makedev(0, 0))
    os.chown(upper / "gone", 100007, 100007)
    _, data = write_bytes(upper, idmap=IDMAP, overlay_upper=True)
    assert entry_names(data) == [".wh.gone", "opq/", "opq/.wh..wh..opq", "opq/kept/"]
    by_name = {m.name: m for m in members(data)}
    wh = by_name[".wh.gone"]
    assert wh.isreg() and wh.size == 0 and wh.uid == 7
    assert by_name["opq/.wh..wh..opq"].isreg()
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for k in by_name["opq"].pax_headers)

    _, plain = write_bytes(upper)  # not an upper dir: the device is just a device
    assert "gone" in entry_names(plain) and members(plain)[0].ischr()


def test_extract_whiteouts_to_overlay_form(tmp_path: Path) -> None:
    data = build_tar(
        (".wh.gone", b"", {"uid": 7, "gid": 8}),
        ("opq", tarfile.DIRTYPE, {}),
        ("opq/.wh..wh..opq", b"", {}),
        ("opq/new", b"n", {}),
        ("late/.wh..wh..opq", b"", {}),
        ("x/.wh..wh.plnk", b"", {}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest, idmap=IDMAP)
    st = os.lstat(dest / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert (st.st_uid, st.st_gid) == (100007, 100008)
    for d in ("opq", "late"):
        assert os.getxattr(dest / d, "trusted.overlay.opaque") == b"y"
    assert (dest / "opq" / "new").read_text() == "n"
    assert not [p for p in dest.rglob("*") if p.name.startswith(".wh.")]
    with pytest.raises(OSError):
        os.getxattr(dest / "x", "trusted.overlay.opaque")


def test_hardlinks_both_ways(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "d").mkdir(parents=True)
    (root / "z").write_text("shared")
    os.link(root / "z", root / "d" / "a")
    os.link(root / "z", root / "b")
    _, data = write_bytes(root)
    ms = {m.name: m for m in members(data)}
    assert ms["b"].isreg() and ms["b"].size == 6
    assert ms["d/a"].islnk() and ms["d/a"].linkname == "b"
    assert ms["z"].islnk() and ms["z"].linkname == "b"

    dest = tmp_path / "dest"
    extract_bytes(data, dest)
    inodes = {os.lstat(dest / n).st_ino for n in ("b", "d/a", "z")}
    assert len(inodes) == 1 and os.lstat(dest / "b").st_nlink == 3


def test_symlinks_are_stored_and_never_followed(tmp_path: Path) -> None:
    data = build_tar(
        ("abs", tarfile.SYMTYPE, {"linkname": "/etc/passwd", "mtime": 12345}),
        ("rel", tarfile.SYMTYPE, {"linkname": "../../../outside"}),
        ("dangling", tarfile.SYMTYPE, {"linkname": "nowhere/at/all"}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest)
    assert os.readlink(dest / "abs") == "/etc/passwd"
    assert os.readlink(dest / "rel") == "../../../outside"
    assert os.lstat(dest / "abs").st_mtime == 12345
    assert write_bytes(dest)[1] == write_bytes(dest)[1]
    names = {m.name: m.linkname for m in members(write_bytes(dest)[1])}
    assert names == {"abs": "/etc/passwd", "dangling": "nowhere/at/all", "rel": "../../../outside"}


def test_device_nodes_and_fifos(tmp_path: Path) -> None:
    data = build_tar(
        ("dev/null", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3, "mode": 0o666}),
        ("dev/loop0", tarfile.BLKTYPE, {"devmajor": 7, "devminor": 0, "mode": 0o660}),
        ("run/fifo", tarfile.FIFOTYPE, {"mode": 0o620}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest)
    null, loop, fifo = (os.lstat(dest / n) for n in ("dev/null", "dev/loop0", "run/fifo"))
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0)
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    ms = {m.name: m for m in members(write_bytes(dest)[1])}
    assert ms["dev/null"].ischr() and (ms["dev/null"].devmajor, ms["dev/null"].devminor) == (1, 3)
    assert ms["dev/loop0"].isblk() and ms["run/fifo"].isfifo()


def test_xattrs_both_ways(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "ping").write_text("bin")
    os.setxattr(root / "ping", "security.capability", CAP_NET_BIND)
    os.setxattr(root / "ping", "user.note", "héllo".encode())
    os.setxattr(root / "ping", "trusted.overlay.origin", b"host-specific")
    _, data = write_bytes(root)
    pax = members(data)[0].pax_headers
    assert sorted(k for k in pax if k.startswith("SCHILY.")) == [
        "SCHILY.xattr.security.capability",
        "SCHILY.xattr.user.note",
    ]
    dest = tmp_path / "dest"
    extract_bytes(data, dest)
    assert os.getxattr(dest / "ping", "security.capability") == CAP_NET_BIND
    assert os.getxattr(dest / "ping", "user.note") == "héllo".encode()
    assert "trusted.overlay.origin" not in os.listxattr(dest / "ping")


def test_extract_ignores_trusted_overlay_xattrs_in_tar(tmp_path: Path) -> None:
    pax = {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.k": "v"}
    dest = tmp_path / "dest"
    extract_bytes(build_tar(("d", tarfile.DIRTYPE, {"pax": pax})), dest)
    assert os.listxattr(dest / "d") == ["user.k"]


def test_setuid_and_capability_survive_chown(tmp_path: Path) -> None:
    pax = {"SCHILY.xattr.security.capability": CAP_NET_BIND.decode("utf-8", "surrogateescape")}
    data = build_tar(("bin/su", b"#!", {"mode": 0o4755, "uid": 0, "pax": pax}))
    dest = tmp_path / "dest"
    extract_bytes(data, dest, idmap=IDMAP)
    st = os.lstat(dest / "bin" / "su")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_uid == 100000
    assert os.getxattr(dest / "bin" / "su", "security.capability") == CAP_NET_BIND


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    data = build_tar(
        ("d", tarfile.DIRTYPE, {"mode": 0o700}),
        ("d/keep", b"k", {}),
        ("d", tarfile.DIRTYPE, {"mode": 0o755}),
        ("f", b"old", {}),
        ("f", b"new", {}),
        ("x", tarfile.DIRTYPE, {}),
        ("x/inner", b"i", {}),
        ("x", b"now a file", {}),
        ("s", tarfile.SYMTYPE, {"linkname": "f"}),
        ("s", b"plain", {}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest)
    assert (dest / "d" / "keep").read_text() == "k"
    assert stat.S_IMODE(os.lstat(dest / "d").st_mode) == 0o755
    assert (dest / "f").read_text() == "new"
    assert (dest / "x").read_text() == "now a file"
    assert not os.path.islink(dest / "s") and (dest / "s").read_text() == "plain"
    assert (dest / "f").read_text() == "new"


def test_directory_mtimes_restored_after_children(tmp_path: Path) -> None:
    data = build_tar(
        ("d", tarfile.DIRTYPE, {"mtime": 1_000_000}),
        ("d/sub", tarfile.DIRTYPE, {"mtime": 2_000_000}),
        ("d/sub/f", b"x", {"mtime": 3_000_000}),
        ("d/g", b"y", {}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest)
    assert os.lstat(dest / "d").st_mtime == 1_000_000
    assert os.lstat(dest / "d" / "sub").st_mtime == 2_000_000
    assert os.lstat(dest / "d" / "sub" / "f").st_mtime == 3_000_000


def test_gzip_input_has_the_uncompressed_diff_id(tmp_path: Path) -> None:
    import gzip

    data = build_tar(("f", b"content", {}))
    plain = extract_bytes(data, tmp_path / "a")
    assert plain == "sha256:" + hashlib.sha256(data).hexdigest()
    assert extract_bytes(gzip.compress(data), tmp_path / "b", expected=plain) == plain
    assert (tmp_path / "b" / "f").read_text() == "content"


def test_digest_covers_trailing_padding(tmp_path: Path) -> None:
    data = build_tar(("f", b"x", {})) + b"\0" * 10240
    digest = extract_bytes(data, tmp_path / "a")
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    src = io.BytesIO(data)
    (tmp_path / "b").mkdir()
    extract_layer(src, str(tmp_path / "b"))
    assert src.tell() == len(data)  # read to EOF: callers may use tell() as the size


def test_empty_layer(tmp_path: Path) -> None:
    data = b"\0" * 1024
    dest = tmp_path / "dest"
    assert extract_bytes(data, dest) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert list(dest.iterdir()) == []
    digest, out = write_bytes(dest)
    assert members(out) == [] and digest == "sha256:" + hashlib.sha256(out).hexdigest()


def test_write_layer_streams_to_a_file(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    out = tmp_path / "layer.tar"
    with open(out, "wb") as f:
        digest = write_layer(str(root), f, idmap=IdMap(0, 100000, 65536))
    assert digest == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    assert members(out.read_bytes())[0].size == 3 * 1024 * 1024 + 7
