"""Unit tests for paas.image.layer extraction of malicious or broken tars.

Every attack targets a file under the test's own tmp dir ("outside", next to the
destination), never a real host file, so a regression cannot damage the host;
the absolute-symlink cases still go through "/" to get there.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path

import pytest
from layer_helpers import build_tar, extract_bytes

from paas.errors import InvalidArgument, NotFound
from paas.image.layer import Limits

HINT = "the layer tar is corrupt or malicious; re-create it"


def assert_rejected(data: bytes, dest: Path, *fragments: str, limits: Limits = Limits()) -> None:  # noqa: B008
    with pytest.raises(InvalidArgument) as info:
        extract_bytes(data, dest, limits=limits)
    for fragment in fragments:
        assert fragment in info.value.message
    assert info.value.hint == HINT


def assert_intact(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    victim = outside / "victim"
    assert victim.read_text() == "original" and os.lstat(victim).st_nlink == 1
    assert os.listxattr(victim) == [] and os.listxattr(outside) == []


@pytest.mark.parametrize("name", ["../x", "a/../../x", "./../x", "a/./../../x", "a/b/../../../x"])
def test_dotdot_escapes_are_rejected(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "dest"
    assert_rejected(build_tar((name, b"pwned", {})), dest, f"layer entry {name!r} escapes the root")
    assert not (tmp_path / "x").exists()


def test_inner_dotdot_is_rejected_too(tmp_path: Path) -> None:
    # Even a '..' that would stay inside is refused: names must be canonical.
    assert_rejected(build_tar(("a/../b", b"x", {})), tmp_path / "dest", "escapes the root")


def test_absolute_path_is_rejected(tmp_path: Path, outside: Path) -> None:
    name = str(outside / "abs")
    assert_rejected(build_tar((name, b"pwned", {})), tmp_path / "dest", repr(name), "absolute")
    assert_intact(outside)


def test_absolute_dotdot_message(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        extract_bytes(build_tar(("../etc/passwd", b"x", {})), tmp_path / "dest")
    assert info.value.message == "layer entry '../etc/passwd' escapes the root"


def test_file_through_symlink_to_root_is_refused(tmp_path: Path, outside: Path) -> None:
    through = "a" + str(outside / "victim")  # a -> / then a/<tmp>/outside/victim
    data = build_tar(("a", tarfile.SYMTYPE, {"linkname": "/"}), (through, b"pwned", {}))
    dest = tmp_path / "dest"
    assert_rejected(data, dest, repr(through), "'a', a symlink or non-directory")
    assert_intact(outside)
    assert os.readlink(dest / "a") == "/"


def test_file_through_symlink_to_outside_dir_is_refused(tmp_path: Path, outside: Path) -> None:
    data = build_tar(("a", tarfile.SYMTYPE, {"linkname": str(outside)}), ("a/victim", b"x", {}))
    assert_rejected(data, tmp_path / "dest", "'a/victim'")
    assert_intact(outside)


def test_file_through_symlink_to_parent_is_refused(tmp_path: Path) -> None:
    data = build_tar(("up", tarfile.SYMTYPE, {"linkname": ".."}), ("up/escaped", b"x", {}))
    assert_rejected(data, tmp_path / "dest", "'up/escaped'", "'up'")
    assert not (tmp_path / "escaped").exists()


def test_deep_symlink_parent_is_refused(tmp_path: Path, outside: Path) -> None:
    data = build_tar(
        ("d/e", tarfile.DIRTYPE, {}),
        ("d/e/link", tarfile.SYMTYPE, {"linkname": str(outside)}),
        ("d/e/link/sub", tarfile.DIRTYPE, {}),
    )
    assert_rejected(data, tmp_path / "dest", "'d/e/link/sub'", "'link'")
    assert_intact(outside)


def test_file_replacing_a_symlink_does_not_write_through_it(tmp_path: Path, outside: Path) -> None:
    data = build_tar(
        ("f", tarfile.SYMTYPE, {"linkname": str(outside / "victim")}),
        ("f", b"replaced", {"mode": 0o600}),
        ("d", tarfile.SYMTYPE, {"linkname": str(outside)}),
        ("d", tarfile.DIRTYPE, {"mode": 0o700}),
        ("d/new", b"inside", {}),
    )
    dest = tmp_path / "dest"
    extract_bytes(data, dest)
    assert not os.path.islink(dest / "f") and (dest / "f").read_text() == "replaced"
    assert stat.S_ISDIR(os.lstat(dest / "d").st_mode)
    assert (dest / "d" / "new").read_text() == "inside"
    assert_intact(outside)


def test_hardlink_to_host_file_is_refused(tmp_path: Path) -> None:
    before = os.stat("/etc/passwd").st_nlink
    data = build_tar(("h", tarfile.LNKTYPE, {"linkname": "/etc/passwd"}))
    dest = tmp_path / "dest"
    assert_rejected(data, dest, "'h' links to '/etc/passwd'")
    assert os.stat("/etc/passwd").st_nlink == before
    assert list(dest.iterdir()) == []


def test_hardlink_with_dotdot_is_refused(tmp_path: Path, outside: Path) -> None:
    data = build_tar(("h", tarfile.LNKTYPE, {"linkname": "../outside/victim"}))
    assert_rejected(data, tmp_path / "dest", "escapes the root")
    assert_intact(outside)


def test_hardlink_to_not_yet_extracted_file_is_refused(tmp_path: Path) -> None:
    data = build_tar(("h", tarfile.LNKTYPE, {"linkname": "later"}), ("later", b"x", {}))
    assert_rejected(data, tmp_path / "dest", "'h' links to 'later'", "extracted before it")


def test_hardlink_through_symlinked_dir_is_refused(tmp_path: Path, outside: Path) -> None:
    data = build_tar(
        ("a", tarfile.SYMTYPE, {"linkname": str(outside)}),
        ("h", tarfile.LNKTYPE, {"linkname": "a/victim"}),
    )
    assert_rejected(data, tmp_path / "dest", "'h' links to 'a/victim'")
    assert_intact(outside)


def test_hardlink_to_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    data = build_tar(
        ("s", tarfile.SYMTYPE, {"linkname": str(outside / "victim")}),
        ("h", tarfile.LNKTYPE, {"linkname": "s"}),
    )
    assert_rejected(data, tmp_path / "dest", "'h' links to 's'")
    assert_intact(outside)


def test_hardlink_to_replaced_file_is_refused(tmp_path: Path, outside: Path) -> None:
    data = build_tar(
        ("f", b"x", {}),
        ("f", tarfile.SYMTYPE, {"linkname": str(outside / "victim")}),
        ("h", tarfile.LNKTYPE, {"linkname": "f"}),
    )
    assert_rejected(data, tmp_path / "dest", "'h' links to 'f'")
    assert_intact(outside)


def test_hardlink_placed_through_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    data = build_tar(
        ("a", tarfile.SYMTYPE, {"linkname": str(outside)}),
        ("f", b"x", {}),
        ("a/h", tarfile.LNKTYPE, {"linkname": "f"}),
    )
    assert_rejected(data, tmp_path / "dest", "'a/h'")
    assert_intact(outside)


def test_whiteouts_through_symlinks_are_refused(tmp_path: Path, outside: Path) -> None:
    link = ("a", tarfile.SYMTYPE, {"linkname": str(outside)})
    assert_rejected(build_tar(link, ("a/.wh.victim", b"", {})), tmp_path / "d1", "'a/.wh.victim'")
    assert_rejected(build_tar(link, ("a/.wh..wh..opq", b"", {})), tmp_path / "d2", "'a'")
    assert_intact(outside)


@pytest.mark.parametrize("name", [".wh.", ".wh..", "d/.wh..."])
def test_whiteout_of_invalid_name_is_refused(tmp_path: Path, name: str) -> None:
    assert_rejected(build_tar((name, b"", {})), tmp_path / "dest", repr(name))


def test_entry_count_limit(tmp_path: Path) -> None:
    data = build_tar(("a", b"", {}), ("b", b"", {}), ("c", b"", {}))
    assert_rejected(
        data, tmp_path / "d1", "'c'", "limit of 2 entries", limits=Limits(max_entries=2)
    )
    assert extract_bytes(data, tmp_path / "d2", limits=Limits(max_entries=3)).startswith("sha256:")


def test_size_limit(tmp_path: Path) -> None:
    data = build_tar(("a", b"x" * 600, {}), ("b", b"y" * 600, {}))
    limits = Limits(max_bytes=1000)
    assert_rejected(data, tmp_path / "d1", "'b'", "size limit of 1000 bytes", limits=limits)
    extract_bytes(data, tmp_path / "d2", limits=Limits(max_bytes=1200))
    assert (tmp_path / "d2" / "b").stat().st_size == 600


def test_digest_mismatch(tmp_path: Path) -> None:
    data = build_tar(("f", b"x", {}))
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    wrong = "sha256:" + "0" * 64
    with pytest.raises(InvalidArgument) as info:
        extract_bytes(data, tmp_path / "d1", expected=wrong)
    assert info.value.message == f"layer DiffID mismatch: expected {wrong}, got {good}"
    assert extract_bytes(data, tmp_path / "d2", expected=good) == good


def test_truncated_tar_is_corrupt(tmp_path: Path) -> None:
    data = build_tar(("big", os.urandom(5000), {}))
    with pytest.raises(InvalidArgument, match="corrupt"):
        extract_bytes(data[:2048], tmp_path / "dest")


def test_garbage_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="corrupt"):
        extract_bytes(b"this is not a tar archive" * 40, tmp_path / "d1")
    with pytest.raises(InvalidArgument, match="corrupt"):
        extract_bytes(b"\x1f\x8bnot really gzip", tmp_path / "d2")


def test_unsupported_entry_type(tmp_path: Path) -> None:
    assert_rejected(
        build_tar(("v", b"", {"type": b"V"})), tmp_path / "dest", "'v'", "unsupported type"
    )


def test_root_entry_must_be_a_directory(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    extract_bytes(build_tar(("./", tarfile.DIRTYPE, {"mode": 0o700}), ("./f", b"x", {})), dest)
    assert stat.S_IMODE(os.lstat(dest).st_mode) != 0o700  # root metadata not taken from tar
    assert (dest / "f").read_text() == "x"
    assert_rejected(build_tar((".", b"x", {})), tmp_path / "d2", "has no name")


def test_missing_destination_is_not_found(tmp_path: Path) -> None:
    import io

    from paas.image.layer import extract_layer

    with pytest.raises(NotFound):
        extract_layer(io.BytesIO(build_tar(("f", b"x", {}))), str(tmp_path / "nope"))


def test_huge_extended_header_is_refused(tmp_path: Path) -> None:
    pax = {"SCHILY.xattr.user.big": "x" * (2 << 20)}
    data = build_tar(("a", b"", {}), ("f", b"", {"pax": pax}), ("z", b"", {}))
    with pytest.raises(InvalidArgument, match="corrupt.*extended header"):
        extract_bytes(data, tmp_path / "dest")


def test_uncreatable_entry_is_an_invalid_argument(tmp_path: Path) -> None:
    pax = {"SCHILY.xattr.bogus.namespace": "v"}
    with pytest.raises(InvalidArgument, match="layer entry 'f' cannot be created"):
        extract_bytes(build_tar(("f", b"", {"pax": pax})), tmp_path / "dest")


def test_symlink_target_with_nul_is_an_invalid_argument(tmp_path: Path) -> None:
    data = build_tar(("s", tarfile.SYMTYPE, {"pax": {"linkpath": "a\x00b"}}))
    with pytest.raises(InvalidArgument, match="layer entry 's' cannot be created"):
        extract_bytes(data, tmp_path / "dest")
