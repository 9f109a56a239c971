"""Safe, streaming extraction of layer tars into overlay form.

The tar is read once, front to back (``tarfile`` stream mode, never
``extract``/``extractall``): every entry is created by hand relative to
directory fds (see ``safetree``), so absolute names, ``..``, symlinked parents
and hardlinks out of the tree are refused, not followed. Whiteouts become
overlay whiteouts (0/0 char devices, ``trusted.overlay.opaque=y``). The DiffID
is computed over the whole (uncompressed) stream, trailing padding included.

Not here: writing tars (``layer_write``), snapshot bookkeeping, cleanup of a
failed extraction (the caller removes ``dest_dir``).
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import stat
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

from ..errors import InvalidArgument, NotFound
from ..model import IdMap
from .digeststream import HashingReader, Readable, open_maybe_gzip
from .safetree import NotADirectoryPath, SafeTree
from .whiteout import (
    OPAQUE_MARKER,
    OPAQUE_VALUE,
    OPAQUE_XATTR,
    WHITEOUT_META_PREFIX,
    WHITEOUT_PREFIX,
    keep_xattr,
)

__all__ = ["Limits", "extract_stream", "split_path"]

_HINT = "the layer tar is corrupt or malicious; re-create it"
_XATTR_PREFIX = "SCHILY.xattr."
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_HOST_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EMFILE)
# The character devices every container gets anyway (runc's defaults), world-usable on
# the host too; with 0/0, overlay's whiteout. In an id-shifted store any other device
# node is skipped, as Docker does in a user namespace: snapshot directories are
# traversable, so a block device or /dev/mem there would be open to host users.
_HARMLESS_DEVICES = frozenset({(0, 0), (1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1),
                               (5, 2)})
log = logging.getLogger(__name__)


class HeaderTooLarge(Exception):
    """A PAX or GNU long-name header bigger than ``MAX_HEADER_BYTES``."""


MAX_HEADER_BYTES = 1 << 20
_EXTENDED_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads extended headers whole into memory: refuse huge ones first.

    Raising something that is not a ``tarfile.HeaderError`` matters: tarfile
    treats a bad header after the first one as the end of the archive.
    """

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_TYPES and self.size > MAX_HEADER_BYTES:
            raise HeaderTooLarge(f"{self.size}-byte extended header")
        return super()._proc_member(tarfile_)  # type: ignore[misc,no-any-return]


@dataclass(frozen=True)
class Limits:
    """Refuse layers bigger than this (a tar bomb is a bad input, not a full disk).

    ``max_bytes`` bounds the files' content, ``max_stream_bytes`` the whole
    uncompressed tar (headers, padding and anything after its end too), so a small
    gzip layer cannot expand without bound. ``from_env``: ``PAAS_LAYER_MAX_BYTES``.
    """

    max_bytes: int = 16 * 1024**3
    max_entries: int = 1_000_000
    max_stream_bytes: int = 20 * 1024**3
    # deeper or longer names extract (through dir fds), but then break every tool that
    # walks the tree by path or recursion: the layer writer, rmtree of a snapshot
    max_depth: int = 256
    max_name_bytes: int = 3072

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """``PAAS_LAYER_MAX_BYTES`` (bytes of content; the stream may be 25% more)."""
        text = (os.environ if env is None else env).get("PAAS_LAYER_MAX_BYTES", "")
        if not text:
            return cls()
        if not text.isdigit() or int(text) <= 0:
            raise InvalidArgument(f"PAAS_LAYER_MAX_BYTES={text!r} is not a number of bytes",
                                  "set it to a positive whole number, e.g. 17179869184 (16 GiB)")
        return cls(max_bytes=int(text), max_stream_bytes=int(text) * 5 // 4 + (1 << 20))


class _StreamTooLarge(Exception):
    """The uncompressed tar is bigger than ``Limits.max_stream_bytes``."""


class _Capped:
    """Reads ``src`` and refuses to go past ``limit`` bytes."""

    def __init__(self, src: Readable, limit: int) -> None:
        self._src, self._limit, self._count = src, limit, 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._src.read(size)
        self._count += len(data)
        if self._count > self._limit:
            raise _StreamTooLarge()
        return data


def _why(err: Exception) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)


def _bad(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"layer entry {name!r} {why}", _HINT)


def split_path(name: str) -> tuple[str, ...]:
    """Components of a tar member name; InvalidArgument if it could leave the root."""
    if "\x00" in name:
        raise _bad(name, "has a NUL byte in its name")
    if name.startswith("/"):
        raise _bad(name, "escapes the root (absolute path)")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _bad(name, "escapes the root")
    return parts


@dataclass(frozen=True)
class _Meta:
    """What to apply to a created entry: host ids, mode, mtime (ns), xattrs."""

    uid: int
    gid: int
    mode: int
    mtime_ns: int
    xattrs: tuple[tuple[str, bytes], ...]


@dataclass
class _Extractor:
    tar: tarfile.TarFile
    tree: SafeTree
    idmap: IdMap | None
    limits: Limits
    entries: int = 0
    size: int = 0
    regular: set[tuple[str, ...]] = field(default_factory=set)
    dir_mtimes: dict[tuple[str, ...], int] = field(default_factory=dict)

    def run(self) -> None:
        for member in self.tar:
            self.tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps them all
            self.entries += 1
            if self.entries > self.limits.max_entries:
                raise _bad(member.name, f"exceeds the limit of {self.limits.max_entries} entries")
            try:
                self._entry(member)
            except (OSError, ValueError) as err:
                if isinstance(err, OSError) and err.errno in _HOST_ERRNOS:
                    raise  # the host's problem, not the layer's
                raise InvalidArgument(
                    f"layer entry {member.name!r} cannot be created: {_why(err)}",
                    "the layer tar is corrupt, or the destination filesystem lacks "
                    "xattrs or device nodes",
                ) from err
        self._restore_dir_mtimes()

    def _entry(self, m: tarfile.TarInfo) -> None:
        parts = split_path(m.name)
        if len(parts) > self.limits.max_depth:
            raise _bad(m.name[:200] + "...", f"is nested deeper than {self.limits.max_depth} "
                       "directories")
        if len(m.name.encode("utf-8", "surrogateescape")) > self.limits.max_name_bytes:
            raise _bad(m.name[:200] + "...", f"has a name longer than "
                       f"{self.limits.max_name_bytes} bytes")
        if not parts:
            if not m.isdir():
                raise _bad(m.name, "has no name")
            return  # the root itself: dest_dir keeps its own metadata
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(m, parts)
            return
        pfd = self._parent(m.name, parts[:-1])
        self.regular.discard(parts)
        if m.isdir():
            self._dir(m, parts, pfd)
        elif m.isreg():
            self._file(m, parts, pfd)
        elif m.islnk():
            self._hardlink(m, parts, pfd)
        elif m.issym():
            self.tree.clear(pfd, base, keep_dir=False)
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._apply_at(pfd, base, self._meta(m), chmod=False)
        elif m.ischr() or m.isblk() or m.isfifo():
            self._special(m, parts, pfd)
        else:
            raise _bad(m.name, f"has an unsupported type {m.type!r}")

    def _parent(self, name: str, parts: tuple[str, ...], *, create: bool = True) -> int:
        try:
            return self.tree.parent(parts, create=create)
        except NotADirectoryPath as err:
            raise _bad(name, f"goes through {err.component!r}, a symlink or non-directory") from err

    def _meta(self, m: tarfile.TarInfo, *, mode: int | None = None) -> _Meta:
        uid = self.idmap.to_host(m.uid) if self.idmap else m.uid
        gid = self.idmap.to_host(m.gid) if self.idmap else m.gid
        xattrs = tuple(
            (key[len(_XATTR_PREFIX) :], value.encode("utf-8", "surrogateescape"))
            for key, value in sorted(m.pax_headers.items())
            if key.startswith(_XATTR_PREFIX) and keep_xattr(key[len(_XATTR_PREFIX) :])
        )
        perm = stat.S_IMODE(m.mode) if mode is None else mode
        return _Meta(uid, gid, perm, int(m.mtime * 1_000_000_000), xattrs)

    # -- entry kinds ---------------------------------------------------------
    def _dir(self, m: tarfile.TarInfo, parts: tuple[str, ...], pfd: int) -> None:
        base = parts[-1]
        if not self.tree.clear(pfd, base, keep_dir=True):
            os.mkdir(base, 0o700, dir_fd=pfd)
        meta = self._meta(m)
        fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
        try:
            self._apply_fd(fd, meta)
        finally:
            os.close(fd)
        self.dir_mtimes[parts] = meta.mtime_ns  # set last: creating children changes it

    def _file(self, m: tarfile.TarInfo, parts: tuple[str, ...], pfd: int) -> None:
        self.size += m.size
        if self.size > self.limits.max_bytes:
            raise _bad(m.name, f"exceeds the layer size limit of {self.limits.max_bytes} bytes")
        self.tree.clear(pfd, parts[-1], keep_dir=False)
        src = self.tar.extractfile(m)
        if src is None:
            raise _bad(m.name, "has no readable content")
        fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            with src:
                _copy(src, fd)
            meta = self._meta(m)
            self._apply_fd(fd, meta)
            os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
        finally:
            os.close(fd)
        self.regular.add(parts)

    def _hardlink(self, m: tarfile.TarInfo, parts: tuple[str, ...], pfd: int) -> None:
        why = f"links to {m.linkname!r}, not a regular file extracted before it"
        target = None if m.linkname.startswith("/") else split_path(m.linkname)
        if target is None or target not in self.regular or target == parts:
            raise _bad(m.name, why)
        try:
            tfd = self.tree.open_dir(target[:-1])
        except (FileNotFoundError, NotADirectoryPath) as err:
            raise _bad(m.name, why) from err
        try:
            tst = self.tree.lstat(tfd, target[-1])
            if tst is None or not stat.S_ISREG(tst.st_mode):
                raise _bad(m.name, why)
            self.tree.clear(pfd, parts[-1], keep_dir=False)
            os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)
        self.regular.add(parts)

    def _special(self, m: tarfile.TarInfo, parts: tuple[str, ...], pfd: int) -> None:
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        if (self.idmap is not None and kind != stat.S_IFIFO
                and (kind == stat.S_IFBLK or (m.devmajor, m.devminor) not in _HARMLESS_DEVICES)):
            log.warning("layer entry %r: device %d:%d skipped (id-shifted store)",
                        m.name, m.devmajor, m.devminor)
            return
        self.tree.clear(pfd, parts[-1], keep_dir=False)
        os.mknod(parts[-1], kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
        self._apply_at(pfd, parts[-1], self._meta(m), chmod=True)

    def _whiteout(self, m: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        base = parts[-1]
        pfd = self._parent(m.name, parts[:-1])
        if base == OPAQUE_MARKER:
            os.setxattr(pfd, OPAQUE_XATTR, OPAQUE_VALUE)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk, ...): meaningless for overlay
        victim = base[len(WHITEOUT_PREFIX) :]
        if victim in ("", ".", ".."):
            raise _bad(m.name, "is a whiteout for an invalid name")
        self.regular.discard(parts[:-1] + (victim,))
        self.tree.clear(pfd, victim, keep_dir=False)
        os.mknod(victim, stat.S_IFCHR | 0, os.makedev(0, 0), dir_fd=pfd)
        self._apply_at(pfd, victim, self._meta(m, mode=0), chmod=True)

    # -- metadata ------------------------------------------------------------
    def _apply_fd(self, fd: int, meta: _Meta) -> None:
        # Order matters: chown clears setuid bits and security.capability.
        os.fchown(fd, meta.uid, meta.gid)
        os.fchmod(fd, meta.mode)
        for key, value in meta.xattrs:
            os.setxattr(fd, key, value)

    def _apply_at(self, pfd: int, name: str, meta: _Meta, *, chmod: bool) -> None:
        """Metadata for an entry we cannot open (symlink, device, fifo) and just created."""
        os.chown(name, meta.uid, meta.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            os.chmod(name, meta.mode, dir_fd=pfd)  # a node we just made, never a symlink
        for key, value in meta.xattrs:
            os.setxattr(f"/proc/self/fd/{pfd}/{name}", key, value, follow_symlinks=False)
        ns = (meta.mtime_ns, meta.mtime_ns)
        os.utime(name, ns=ns, dir_fd=pfd, follow_symlinks=False)

    def _restore_dir_mtimes(self) -> None:
        for parts, ns in sorted(self.dir_mtimes.items(), reverse=True):
            try:
                pfd = self.tree.parent(parts[:-1], create=False)
            except (FileNotFoundError, NotADirectoryPath):
                continue  # replaced by a later entry: nothing to restore
            st = self.tree.lstat(pfd, parts[-1])
            if st is not None and stat.S_ISDIR(st.st_mode):
                os.utime(parts[-1], ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)


def _copy(src: IO[bytes], fd: int) -> None:
    while chunk := src.read(_CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


def extract_stream(
    src: Readable,
    dest_dir: str,
    *,
    idmap: IdMap | None,
    limits: Limits,
    expected_diff_id: str | None,
) -> str:
    """Extract the (maybe gzip) tar ``src`` into ``dest_dir``; return its DiffID."""
    reader = HashingReader(_Capped(open_maybe_gzip(src), limits.max_stream_bytes))
    owner = (idmap.to_host(0), idmap.to_host(0)) if idmap else (0, 0)
    try:
        tree = SafeTree(dest_dir, parent_owner=owner)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise NotFound(
            f"cannot extract a layer into {dest_dir}: not a directory",
            "create the (empty) destination directory first",
        ) from err
    try:
        with tarfile.open(  # type: ignore[call-overload]
            fileobj=reader, mode="r|", tarinfo=_BoundedTarInfo
        ) as tar:
            _Extractor(tar, tree, idmap, limits).run()
        reader.drain()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, HeaderTooLarge) as err:
        raise InvalidArgument(f"layer tar is corrupt: {err}", _HINT) from err
    except _StreamTooLarge as err:
        raise InvalidArgument(
            f"layer tar is larger than {limits.max_stream_bytes} bytes uncompressed",
            "a decompression bomb, or a layer bigger than this host accepts "
            "(PAAS_LAYER_MAX_BYTES raises the limit)") from err
    finally:
        tree.close()
    digest = reader.digest()
    if expected_diff_id is not None and digest != expected_diff_id:
        raise InvalidArgument(
            f"layer DiffID mismatch: expected {expected_diff_id}, got {digest}",
            "the layer tar is corrupt or was modified; re-create or re-download it",
        )
    return digest
