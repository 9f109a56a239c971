"""Deterministic layer tars from a directory tree (the writing half of ``layer``).

Entries come out in bytewise path order (a directory as ``name/``, before its
children), with empty owner names, container ids, clamped integer mtimes,
PAX xattr records in key order and no atime/ctime, so the same tree always
gives the same bytes. The root directory itself is not emitted.

Not here: extraction (``layer_extract``), compression, the content store.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from ..model import IdMap
from .digeststream import HashingWriter
from .whiteout import (
    OPAQUE_MARKER,
    OPAQUE_VALUE,
    OPAQUE_XATTR,
    WHITEOUT_PREFIX,
    is_whiteout_device,
    keep_xattr,
)

__all__ = ["WriteOptions", "write_tree"]

_NO_XATTRS = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)
WHITEOUT_MODE = 0o600  # like moby: ``.wh.`` entries are empty 0600 files


@dataclass(frozen=True)
class WriteOptions:
    idmap: IdMap | None = None
    source_date_epoch: int | None = None
    overlay_upper: bool = False


@dataclass(frozen=True)
class _Node:
    """One directory entry to emit: ``arcname`` is its name in the tar."""

    arcname: str
    path: str
    st: os.stat_result

    @property
    def sort_key(self) -> bytes:
        suffix = "/" if stat.S_ISDIR(self.st.st_mode) else ""
        return (self.arcname + suffix).encode("utf-8", "surrogateescape")


@dataclass
class _Writer:
    tar: tarfile.TarFile
    opts: WriteOptions
    seen: dict[tuple[int, int], str] = field(default_factory=dict)

    def run(self, src_dir: str) -> None:
        # Explicit stack (not recursion): children pushed in reverse sorted order.
        stack = list(reversed(self._children(src_dir, "")))
        while stack:
            node = stack.pop()
            self._emit(node)
            if stat.S_ISDIR(node.st.st_mode):
                stack.extend(reversed(self._children(node.path, node.arcname + "/")))

    def _children(self, path: str, prefix: str) -> list[_Node]:
        nodes = []
        with os.scandir(path) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISSOCK(st.st_mode):
                    continue  # sockets cannot be archived (like tar and moby)
                name = entry.name
                if self.opts.overlay_upper and is_whiteout_device(st):
                    name = WHITEOUT_PREFIX + name
                nodes.append(_Node(prefix + name, entry.path, st))
        nodes.sort(key=lambda n: n.sort_key)
        return nodes

    def _emit(self, node: _Node) -> None:
        st = node.st
        info = self._base_info(node.arcname, st)
        if self.opts.overlay_upper and is_whiteout_device(st):
            self._add_empty(info)
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            info.pax_headers = _xattr_records(node.path)
            self.tar.addfile(info)
            if self.opts.overlay_upper and _is_opaque(node.path):
                self._add_empty(self._base_info(node.arcname + "/" + OPAQUE_MARKER, st))
        elif stat.S_ISREG(st.st_mode):
            self._emit_file(node, info)
        else:
            self._emit_special(node, info)

    def _emit_file(self, node: _Node, info: tarfile.TarInfo) -> None:
        key = (node.st.st_dev, node.st.st_ino)
        if node.st.st_nlink > 1 and key in self.seen:
            info.type = tarfile.LNKTYPE
            info.linkname = self.seen[key]
            self.tar.addfile(info)
            return
        self.seen[key] = node.arcname
        info.type = tarfile.REGTYPE
        info.size = node.st.st_size
        info.pax_headers = _xattr_records(node.path)
        fd = os.open(node.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            self.tar.addfile(info, f)

    def _emit_special(self, node: _Node, info: tarfile.TarInfo) -> None:
        mode = node.st.st_mode
        if stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(node.path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor = os.major(node.st.st_rdev)
            info.devminor = os.minor(node.st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        info.pax_headers = _xattr_records(node.path)
        self.tar.addfile(info)

    def _add_empty(self, info: tarfile.TarInfo) -> None:
        info.type = tarfile.REGTYPE
        info.mode = WHITEOUT_MODE
        info.size = 0
        self.tar.addfile(info)

    def _base_info(self, arcname: str, st: os.stat_result) -> tarfile.TarInfo:
        info = tarfile.TarInfo(arcname)
        info.mode = stat.S_IMODE(st.st_mode)
        idmap = self.opts.idmap
        info.uid = idmap.to_container(st.st_uid) if idmap else st.st_uid
        info.gid = idmap.to_container(st.st_gid) if idmap else st.st_gid
        info.uname = info.gname = ""
        mtime = st.st_mtime_ns // 1_000_000_000
        epoch = self.opts.source_date_epoch
        info.mtime = min(mtime, epoch) if epoch is not None else mtime
        return info


def _xattr_records(path: str) -> dict[str, str]:
    """SCHILY.xattr.* PAX records, in key order; binary values survive via surrogateescape."""
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError as err:
        if err.errno in _NO_XATTRS:
            return {}  # filesystem without xattr support: nothing to record
        raise
    records = {}
    for key in sorted(keys):
        if keep_xattr(key):
            value = os.getxattr(path, key, follow_symlinks=False)
            records["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    return records


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == OPAQUE_VALUE
    except OSError as err:
        if err.errno in _NO_XATTRS:
            return False
        raise


def write_tree(src_dir: str, out: BinaryIO, opts: WriteOptions) -> str:
    """Stream ``src_dir`` as a PAX tar into ``out``; return the sha256 of the bytes written."""
    writer = HashingWriter(out)
    tar = tarfile.TarFile(
        fileobj=writer,  # type: ignore[arg-type]
        mode="w",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
    )
    with tar:
        _Writer(tar, opts).run(src_dir)
    writer.flush()
    return writer.digest()
