"""The conformance corpus: cases under ``corpus/<case>/`` and how to lay out their contexts.

A case is a directory with a ``Dockerfile`` and its context files, and optionally a
``case.json``:

- ``base``: ``"debian:bookworm"`` (default) or ``"scratch"``: the image the diff is
  taken against;
- ``targets``: stages to build and compare (default: the last stage only, ``""``);
- ``build_args``: ``{"NAME": "value"}`` for ``--build-arg``;
- ``modes``: ``{"relpath": "0600"}``, ``dirs``: empty directories, ``symlinks``:
  ``{"relpath": "target"}``: what git does not keep, applied to the copy;
- ``generate``: the name of a function here that writes binary files (tar archives)
  into the copy, deterministically.

``prepare_context`` copies a case into a temp directory with normalized modes (files
0644 or 0755, directories 0755, whatever the checkout's umask) so Docker and paas see
the same bytes and modes. ``case.json`` itself is not part of the context.

Not here: building or comparing (``make_expected.py``, ``test_conformance.py``).
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["CORPUS", "EXPECTED", "Case", "cases", "prepare_context", "tag_for"]

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
EXPECTED = HERE / "expected"


class Case:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = CORPUS / name
        meta_path = self.dir / "case.json"
        self.meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        self.base: str = self.meta.get("base", "debian:bookworm")
        self.targets: list[str] = self.meta.get("targets", [""])
        self.build_args: dict[str, str] = self.meta.get("build_args", {})

    def build_flags(self, target: str) -> list[str]:
        flags = []
        for key, value in sorted(self.build_args.items()):
            flags += ["--build-arg", f"{key}={value}"]
        if target:
            flags += ["--target", target]
        return flags

    def __repr__(self) -> str:
        return self.name


def cases() -> list[Case]:
    return [Case(p.name) for p in sorted(CORPUS.iterdir()) if (p / "Dockerfile").exists()]


def tag_for(case: Case, target: str) -> str:
    return f"conformance-{case.name.replace('_', '-')}:{target or 'latest'}"


def prepare_context(case: Case, dst: Path) -> Path:
    """A copy of the case's context in ``dst`` (created), ready to build."""
    shutil.copytree(case.dir, dst, symlinks=True, ignore=shutil.ignore_patterns("case.json"))
    for dirpath, dirnames, filenames in os.walk(dst):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                exe = os.stat(path).st_mode & 0o100
                os.chmod(path, 0o755 if exe else 0o644)
    for rel in case.meta.get("dirs", []):
        (dst / rel).mkdir(parents=True, exist_ok=True)
    for rel, target in case.meta.get("symlinks", {}).items():
        (dst / rel).unlink(missing_ok=True)
        os.symlink(target, dst / rel)
    generator = case.meta.get("generate")
    if generator:
        _GENERATORS[generator](dst)
    # modes last: a directory made 0700 above must not stop the steps before
    for rel, mode in sorted(case.meta.get("modes", {}).items(), key=lambda kv: -len(kv[0])):
        os.chmod(dst / rel, int(mode, 8))
    return dst


# --- generators: binary context files, byte-for-byte reproducible -----------------------

_MTIME = 1_600_000_000


def _member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, uid: int = 0,
            gid: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, _MTIME
    info.uname = info.gname = ""
    info.linkname = link
    return info


def _tar_bytes(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _rich(uid: int, gid: int) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Directories, modes incl. setuid, a symlink, a hardlink; owned by uid:gid in part."""
    return [
        (_member("top/", tarfile.DIRTYPE, 0o700, uid, gid), b""),
        (_member("top/file", mode=0o640, uid=uid, gid=gid), b"file in archive\n"),
        (_member("top/suid", mode=0o4755), b"#!/bin/sh\n"),
        (_member("top/link", tarfile.SYMTYPE, 0o777, link="file"), b""),
        (_member("top/hard", tarfile.LNKTYPE, 0o640, uid, gid, link="top/file"), b""),
        (_member("top/sub/", tarfile.DIRTYPE, 0o755), b""),
        (_member("top/sub/deep.txt", mode=0o600, uid=uid, gid=gid), b"deep\n"),
        (_member("rootfile.txt"), b"at the archive's root\n"),
    ]


def _archives(dst: Path) -> None:
    """Root-owned archives: plain, gzip, xz (owners in archives: ``_owned_archive``)."""
    data = _tar_bytes(_rich(0, 0))
    (dst / "archive.tar.gz").write_bytes(gzip.compress(data, mtime=0))
    (dst / "archive.tar.xz").write_bytes(lzma.compress(data))
    plain = [
        (_member("plain/", tarfile.DIRTYPE, 0o755), b""),
        (_member("plain/p.txt", mode=0o644), b"plain\n"),
    ]
    (dst / "plain.tar").write_bytes(_tar_bytes(plain))


def _owned_archive(dst: Path) -> None:
    (dst / "owned.tar.gz").write_bytes(gzip.compress(_tar_bytes(_rich(1000, 33)), mtime=0))


_GENERATORS = {"archives": _archives, "owned_archive": _owned_archive}
