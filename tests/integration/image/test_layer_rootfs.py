"""Integration tests for paas.image.layer against a real Debian rootfs and GNU tar.

Cross-checks: our extraction of the bookworm tar equals GNU tar's (compared via
our deterministic writer), round trips are byte-identical, and GNU tar reads our
layers back, xattrs and hardlinks included.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.image.layer import extract_layer, write_layer
from paas.model import IdMap

IDMAP = IdMap(container_id=0, host_id=100000, size=65536)
CAP = bytes.fromhex("0100000280040000000000000000000000000000")


@pytest.fixture
def work() -> Iterator[Path]:
    """A scratch dir removed right after the test (rootfs copies are large)."""
    path = Path(tempfile.mkdtemp(prefix="paas-layer-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _write(src: Path, out: Path, idmap: IdMap | None = None) -> str:
    with open(out, "wb") as f:
        return write_layer(str(src), f, idmap=idmap)


def _extract(tar: Path, dest: Path, idmap: IdMap | None = None) -> str:
    dest.mkdir()
    with open(tar, "rb") as f:
        return extract_layer(f, str(dest), idmap=idmap)


def _gnu_extract(tar: Path, dest: Path) -> None:
    dest.mkdir()
    argv = ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tar)]
    subprocess.run([*argv, "-C", str(dest)], check=True, capture_output=True)


def test_rootfs_extraction_matches_gnu_tar_and_round_trips(rootfs_tar: Path, work: Path) -> None:
    ours, gnu = work / "ours", work / "gnu"
    _extract(rootfs_tar, ours, IDMAP)
    _gnu_extract(rootfs_tar, gnu)
    st = os.lstat(ours / "etc" / "passwd")
    assert (st.st_uid, st.st_gid) == (100000, 100000)
    assert os.readlink(ours / "bin") == "usr/bin"

    d_ours = _write(ours, work / "ours.tar", IDMAP)
    assert _write(gnu, work / "gnu.tar") == d_ours
    assert (work / "ours.tar").read_bytes() == (work / "gnu.tar").read_bytes()

    again = work / "again"
    assert _extract(work / "ours.tar", again, IDMAP) == d_ours
    assert _write(again, work / "again.tar", IDMAP) == d_ours


def test_gnu_tar_reads_our_layers(work: Path) -> None:
    src = work / "src"
    (src / "usr" / "bin").mkdir(parents=True)
    ping = src / "usr" / "bin" / "ping"
    ping.write_bytes(b"\x7fELF" * 1000)
    os.chmod(ping, 0o4755)
    os.setxattr(ping, "security.capability", CAP)
    os.setxattr(ping, "user.origin", b"paas")
    os.link(ping, src / "usr" / "bin" / "ping6")
    (src / "dev").mkdir()
    os.mknod(src / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (src / "lib").symlink_to("usr/lib")
    (src / ("deep-" + "x" * 150)).write_text("long name")
    digest = _write(src, work / "layer.tar")

    listing = subprocess.run(
        ["tar", "-tvf", str(work / "layer.tar")], check=True, capture_output=True, text=True
    ).stdout
    assert "usr/bin/ping6 link to usr/bin/ping" in listing

    gnu = work / "gnu"
    _gnu_extract(work / "layer.tar", gnu)
    assert os.getxattr(gnu / "usr" / "bin" / "ping", "security.capability") == CAP
    assert os.lstat(gnu / "usr" / "bin" / "ping6").st_ino == os.lstat(gnu / "usr/bin/ping").st_ino
    assert _write(gnu, work / "gnu.tar") == digest
