"""Helpers for the layer tests: build trees and tars, write/extract through bytes.

Imported by test_layer*.py (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

from paas.image.layer import Limits, extract_layer, write_layer
from paas.model import IdMap

IDMAP = IdMap(container_id=0, host_id=100000, size=65536)
EPOCH = 1_700_000_000
DEFAULT_LIMITS = Limits()
# A v2 file capability: cap_setuid,cap_net_bind_service=ep (binary: not valid UTF-8).
CAP_NET_BIND = bytes.fromhex("0100000280040000000000000000000000000000")


def write_bytes(root: Path, **kwargs: Any) -> tuple[str, bytes]:
    buf = io.BytesIO()
    digest = write_layer(str(root), buf, **kwargs)
    return digest, buf.getvalue()


def extract_bytes(
    data: bytes,
    dest: Path,
    *,
    idmap: IdMap | None = None,
    limits: Limits = DEFAULT_LIMITS,
    expected: str | None = None,
) -> str:
    dest.mkdir(exist_ok=True)
    return extract_layer(
        io.BytesIO(data), str(dest), idmap=idmap, limits=limits, expected_diff_id=expected
    )


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return tar.getmembers()


def entry_names(data: bytes) -> list[str]:
    """Member names as written, directories with their trailing '/'."""
    return [m.name + "/" if m.isdir() else m.name for m in members(data)]


_TYPES = (
    tarfile.DIRTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.FIFOTYPE,
)


def build_tar(*entries: tuple[str, bytes | str, dict[str, Any]]) -> bytes:
    """A PAX tar from (name, content bytes or a tarfile type constant, attributes) triples.

    Attributes: uid, gid, mode, mtime, linkname, devmajor, devminor, pax (dict),
    type (forces a raw type byte, content ignored).
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, what, attrs in entries:
            info = tarfile.TarInfo(name)
            info.mtime = attrs.get("mtime", EPOCH)
            info.mode = attrs.get("mode", 0o755 if what == tarfile.DIRTYPE else 0o644)
            info.uid, info.gid = attrs.get("uid", 0), attrs.get("gid", 0)
            info.pax_headers = dict(attrs.get("pax", {}))
            content = None
            if "type" in attrs:
                info.type = attrs["type"]
            elif what not in _TYPES:
                assert isinstance(what, bytes)
                info.size = len(what)
                content = io.BytesIO(what)
            else:
                info.type = what if isinstance(what, bytes) else what.encode()
                info.linkname = attrs.get("linkname", "")
                info.devmajor = attrs.get("devmajor", 0)
                info.devminor = attrs.get("devminor", 0)
            tar.addfile(info, content)
    return buf.getvalue()


def make_rich_tree(root: Path, *, idmap: IdMap | None) -> Path:
    """A tree with every kind of entry a layer can hold, owned through ``idmap``."""
    root.mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc" / "shadow").write_text("root:*::::::\n")
    os.chmod(root / "etc" / "shadow", 0o640)
    (root / "usr" / "bin").mkdir(parents=True)
    su = root / "usr" / "bin" / "su"
    su.write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    (root / "bin").symlink_to("usr/bin")
    (root / "home" / "app").mkdir(parents=True)
    (root / "home" / "app" / "notes").write_text("hi")
    os.setxattr(root / "home" / "app" / "notes", "user.tag", b"v1")
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    (root / "dev").mkdir()
    os.mknod(root / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(root / "dev" / "null", 0o666)
    os.mkfifo(root / "dev" / "fifo", 0o600)
    (root / ("long-" + "n" * 120)).write_text("long name")
    (root / "ünïcode").write_text("utf-8 name")
    (root / "empty").mkdir()
    (root / "opaque").mkdir()
    os.setxattr(root / "opaque", "trusted.overlay.opaque", b"y")
    os.mknod(root / "deleted", stat.S_IFCHR, os.makedev(0, 0))

    owners = {"etc/shadow": (0, 42), "home/app": (1000, 1000), "home/app/notes": (1000, 1000)}
    for p in root.rglob("*"):
        uid, gid = owners.get(p.relative_to(root).as_posix(), (0, 0))
        host = (idmap.to_host(uid), idmap.to_host(gid)) if idmap else (uid, gid)
        os.chown(p, *host, follow_symlinks=False)
    # after chown, which clears them
    os.chmod(su, 0o4755)
    os.setxattr(su, "security.capability", CAP_NET_BIND)
    os.link(su, root / "usr" / "bin" / "su-again")
    for p in sorted(root.rglob("*"), reverse=True):
        os.utime(p, (EPOCH, EPOCH), follow_symlinks=False)
    return root
