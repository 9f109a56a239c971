"""COPY and ADD performed: build-context sources into an image's root filesystem.

``copy_sources`` writes into ``root`` (the merged rootfs of the image being
built) as if chrooted there, with Docker's COPY rules (moby classic builder
and buildkit):

- a relative destination is relative to WORKDIR; a destination ending in ``/``
  (or ``.``) is a directory; several sources need such a destination;
- a directory source copies its contents (not itself); a file source lands at
  ``dest/<basename>`` if dest is a directory (existing, or ending in ``/``),
  else at ``dest``; an existing file or symlink there is replaced, a directory
  is refused (buildkit's "cannot replace directory with file");
- every copied entry and every directory created on the way gets ``uid:gid``;
  permissions come from the source or ``chmod``; created parents are 0755, a
  destination created for a directory source takes that directory's mode (as
  buildkit does); mtimes (and atimes) are preserved; symlinks are copied as
  they are; hard links become copies; existing directories keep their
  metadata.

Nothing is written outside ``root``: every path is opened relative to
directory fds with ``O_NOFOLLOW`` (``paas.image.safetree``); where a symlink
sits on the way it is resolved like a chroot would (an absolute target starts
at ``root``, ``..`` stops there; ``context.resolve_in_scope``), so e.g. an
image's ``/lib -> usr/lib`` is followed, a ``/../../etc`` link stays inside.

ADD's local archives (``extract_archives``): a source file that is a tar
(plain, gzip, bzip2 or xz; detected by content, not by name) is unpacked into
the destination directory. Members with absolute names, ``..``, device nodes,
fifos or hard links to anything but a file extracted before are refused
(InvalidArgument naming the member); modes and mtimes come from the archive.
Ownership: Docker keeps the archive's uid/gid (shifted into the build's user
namespace); the shift is not known here, so every member gets ``uid:gid``
like a copied file, and ``chmod`` does not apply to members. A refused archive
may leave earlier members behind: the builder discards the layer on error.

Not here: URL and git sources (the builder refuses them), resolving the
sources (``context``), layer diffs and the cache.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Callable, Sequence
from typing import BinaryIO

from ..errors import InvalidArgument, NotFound
from ..image.safetree import NotADirectoryPath, SafeTree
from .context import BuildContext, Source, open_regular, resolve_in_scope
from .ignore import clean_path

__all__ = ["copy_sources", "is_archive"]

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_MULTI = (
    "When using COPY with more than one source file, "
    "the destination must be a directory and end with a /"
)
_ARCHIVE_HINT = (
    "the archive is broken or malicious: ADD refuses absolute paths, '..', "
    "device nodes and hard links out of the archive"
)
Parts = tuple[str, ...]


def _destination(dest: str, workdir: str) -> tuple[Parts, bool]:
    """Components of the absolute destination, and whether it names a directory."""
    as_dir = dest.endswith(("/", "/.")) or dest in ("", ".")
    parts = tuple(p for p in clean_path(posixpath.join("/", workdir, dest)).split("/") if p)
    return parts, as_dir or not parts


def _shown(parts: Parts) -> str:
    return "/" + "/".join(parts)


def _bad_member(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"ADD failed: archive member {name!r} {why}", _ARCHIVE_HINT)


def _member_parts(name: str) -> Parts:
    if "\x00" in name or name.startswith("/"):
        raise _bad_member(name, "has an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _bad_member(name, "escapes the destination ('..')")
    return parts


def _first_block(f: BinaryIO) -> bytes:
    """The first tar block of ``f``, decompressed if it starts with a gzip, bzip2 or xz magic."""
    head = f.read(6)
    f.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=f).read(tarfile.BLOCKSIZE)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(f).read(tarfile.BLOCKSIZE)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(f).read(tarfile.BLOCKSIZE)
    return f.read(tarfile.BLOCKSIZE)


def is_archive(path: str) -> bool:
    """Whether the file at ``path`` starts with a valid tar header (maybe compressed)."""
    with open(open_regular(path), "rb") as f:
        try:
            block = _first_block(f)
        except (OSError, EOFError, lzma.LZMAError, zlib.error):
            return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Copier:
    """One copy_sources call: the root tree, the new owner, dir mtimes to restore."""

    def __init__(self, ctx: BuildContext, tree: SafeTree, uid: int, gid: int,
                 chmod: int | None, keep_owners: bool = False,
                 archive_owner: Callable[[int], int] | None = None) -> None:
        self.ctx, self.tree, self.uid, self.gid, self.chmod = ctx, tree, uid, gid, chmod
        self.keep_owners = keep_owners
        self.archive_owner = archive_owner
        self.dir_times: list[tuple[Parts, int, int]] = []

    def copy(self, source: Source, target: Parts, as_dir: bool, extract: bool) -> None:
        canon = self._canonical(target)
        if source.is_dir:
            self._copy_dir(source, canon)
        elif extract and is_archive(source.abspath):
            self._extract(source.abspath, canon)
        elif as_dir or self._is_dir(canon):
            self._file(source.abspath, os.lstat(source.abspath), canon,
                       posixpath.basename(source.relpath))
        else:
            self._file(source.abspath, os.lstat(source.abspath), canon[:-1], canon[-1])
        self._restore_dir_times()

    # -- paths in root -------------------------------------------------------
    def _readlink(self, parts: Parts) -> str | None:
        try:
            fd = self.tree.open_dir(parts[:-1])
        except (FileNotFoundError, NotADirectoryPath):
            return None
        try:
            st = self.tree.lstat(fd, parts[-1])
            if st is None or not stat.S_ISLNK(st.st_mode):
                return None
            return os.readlink(parts[-1], dir_fd=fd)
        finally:
            os.close(fd)

    def _canonical(self, parts: Parts) -> Parts:
        return resolve_in_scope(parts, self._readlink, clamp=True)

    def _is_dir(self, parts: Parts) -> bool:
        try:
            os.close(self.tree.open_dir(parts))
        except (FileNotFoundError, NotADirectoryPath):
            return False
        return True

    def _dir(self, parts: Parts, member: str = "") -> tuple[Parts, int]:
        """The directory ``parts`` (created with parents: 0755, uid:gid), symlinks
        on the way followed inside root; its canonical parts and a tree-owned fd."""
        try:
            return parts, self.tree.parent(parts, create=True)
        except NotADirectoryPath:
            parts = self._canonical(parts)
        try:
            return parts, self.tree.parent(parts, create=True)
        except NotADirectoryPath as err:
            why = f"goes through {err.component!r}, which is not a directory"
            if member:
                raise _bad_member(member, why) from err
            raise InvalidArgument(
                f"cannot copy to {_shown(parts)}: the path {why}",
                "choose a destination whose parents are directories in the image",
            ) from err

    def _owner(self, st: os.stat_result | None) -> tuple[int, int]:
        if self.keep_owners and st is not None:
            return st.st_uid, st.st_gid
        return self.uid, self.gid

    def _own(self, fd: int, perm: int, *, chmod: bool = True,
             st: os.stat_result | None = None, owner: tuple[int, int] | None = None) -> None:
        uid, gid = owner if owner is not None else self._owner(st)
        os.fchown(fd, uid, gid)  # before chmod: chown clears setuid bits
        os.fchmod(fd, self.chmod if chmod and self.chmod is not None else perm)

    def _make_room(self, pfd: int, parent: Parts, name: str) -> None:
        """Remove a file or symlink at ``name``; a directory there is an error."""
        old = self.tree.lstat(pfd, name)
        if old is not None and stat.S_ISDIR(old.st_mode):
            raise InvalidArgument(
                f"cannot replace the directory {_shown((*parent, name))} with a file",
                "copy to another path, or remove the directory in an earlier RUN",
            )
        if old is not None:
            os.unlink(name, dir_fd=pfd)

    # -- COPY ----------------------------------------------------------------
    def _copy_dir(self, source: Source, dest: Parts) -> None:
        # Docker's classic builder: the destination is made like a parent (0755, the
        # new owner); directories inside the source then apply their mode and owner
        # even where the image has them already (so with several sources the last wins)
        created = not self._is_dir(dest)
        dirs = {"": self._dir(dest)[0]}
        if created and self.chmod is not None:  # --chmod applies to what COPY creates
            fd = self.tree.open_dir(dirs[""])
            try:
                os.fchmod(fd, self.chmod)
            finally:
                os.close(fd)
        for entry in self.ctx.entries(source):
            parent_rel, _, name = entry.relpath.rpartition("/")
            parent, mode = dirs[parent_rel], entry.stat.st_mode
            if stat.S_ISDIR(mode):
                dirs[entry.relpath] = self._make_dir((*parent, name), entry.stat, existing=True)
            elif stat.S_ISLNK(mode):
                self._symlink(os.readlink(entry.abspath), parent, name, entry.stat)
            else:
                self._file(entry.abspath, entry.stat, parent, name)

    def _make_dir(self, parts: Parts, st: os.stat_result, existing: bool = False) -> Parts:
        """Directory ``parts`` for a copied one, created with the source's mode, owner
        and times; an existing one (a symlink to a directory is followed) gets them too
        when ``existing``, else keeps its own."""
        if not parts:
            return parts
        parent, pfd = self._dir(parts[:-1])
        name = parts[-1]
        old = self.tree.lstat(pfd, name)
        if old is None or (existing and stat.S_ISDIR(old.st_mode)):
            if old is None:
                os.mkdir(name, 0o700, dir_fd=pfd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            try:
                self._own(fd, stat.S_IMODE(st.st_mode), st=st)
            finally:
                os.close(fd)
            self.dir_times.append(((*parent, name), st.st_atime_ns, st.st_mtime_ns))
            return (*parent, name)
        if stat.S_ISDIR(old.st_mode):
            return (*parent, name)
        canon = self._canonical((*parent, name)) if stat.S_ISLNK(old.st_mode) else None
        if canon is not None and self._is_dir(canon):
            return canon
        raise InvalidArgument(
            f"cannot copy a directory to {_shown((*parent, name))}: it is not a directory",
            "copy to another path, or remove it in an earlier RUN",
        )

    def _file(self, abspath: str, st: os.stat_result, parent: Parts, name: str) -> None:
        parent, pfd = self._dir(parent)
        self._make_room(pfd, parent, name)
        src = open_regular(abspath)
        try:
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=pfd)
            try:
                while os.sendfile(fd, src, None, _CHUNK):
                    pass
                self._own(fd, stat.S_IMODE(st.st_mode), st=st)
                os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(fd)
        finally:
            os.close(src)

    def _symlink(self, target: str, parent: Parts, name: str, st: os.stat_result) -> None:
        parent, pfd = self._dir(parent)
        self._make_room(pfd, parent, name)
        os.symlink(target, name, dir_fd=pfd)
        uid, gid = self._owner(st)
        os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
        ns = (st.st_atime_ns, st.st_mtime_ns)
        os.utime(name, ns=ns, dir_fd=pfd, follow_symlinks=False)

    def _restore_dir_times(self) -> None:
        """Set created directories' times last (creating children changed them)."""
        for parts, atime, mtime in reversed(self.dir_times):
            try:
                fd = self.tree.open_dir(parts)
            except (FileNotFoundError, NotADirectoryPath):
                continue  # replaced by a later archive member
            try:
                os.utime(fd, ns=(atime, mtime))
            finally:
                os.close(fd)
        self.dir_times.clear()

    # -- ADD archives --------------------------------------------------------
    def _extract(self, abspath: str, dest: Parts) -> None:
        if self.archive_owner is not None:  # Docker ignores --chown for archives: root's
            self.tree.parent_owner = (self.archive_owner(0), self.archive_owner(0))
        try:
            self._extract_into(abspath, dest)
        finally:
            self.tree.parent_owner = (self.uid, self.gid)

    def _extract_into(self, abspath: str, dest: Parts) -> None:
        dest, _ = self._dir(dest)
        files: dict[Parts, tuple[Parts, str]] = {}  # member -> where its file went
        try:
            with open(open_regular(abspath), "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tar:
                for member in tar:
                    tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps them
                    self._member(tar, member, dest, files)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as err:
            raise InvalidArgument(f"ADD failed: cannot extract the archive: {err}",
                                  _ARCHIVE_HINT) from err

    def _member(self, tar: tarfile.TarFile, m: tarfile.TarInfo, dest: Parts,
                files: dict[Parts, tuple[Parts, str]]) -> None:
        parts = _member_parts(m.name)
        if not parts:
            return  # the archive's "./": the destination keeps its metadata
        if not (m.isdir() or m.isreg() or m.issym() or m.islnk()):
            raise _bad_member(m.name, "is a device node, fifo or of an unsupported type")
        parent, pfd = self._dir((*dest, *parts[:-1]), m.name)
        name, perm = parts[-1], stat.S_IMODE(m.mode)
        owner = self._member_owner(m)
        ns = int(m.mtime * 1_000_000_000)
        files.pop(parts, None)
        if m.isdir():
            if not self.tree.clear(pfd, name, keep_dir=True):
                os.mkdir(name, 0o700, dir_fd=pfd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            try:
                self._own(fd, perm, chmod=False, owner=owner)
            finally:
                os.close(fd)
            self.dir_times.append(((*parent, name), ns, ns))
            return
        self.tree.clear(pfd, name, keep_dir=False)
        if m.issym():
            os.symlink(m.linkname, name, dir_fd=pfd)
            os.chown(name, *owner, dir_fd=pfd, follow_symlinks=False)
            os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
        elif m.islnk():
            self._hardlink(m, files, pfd, name)
            files[parts] = (parent, name)
        else:
            self._member_file(tar, m, pfd, name, perm, ns, owner)
            files[parts] = (parent, name)

    def _member_owner(self, m: tarfile.TarInfo) -> tuple[int, int]:
        """Docker keeps an archive's owners (in the build's user namespace), --chown or not."""
        if self.archive_owner is None:
            return self.uid, self.gid
        return self.archive_owner(m.uid), self.archive_owner(m.gid)

    def _member_file(self, tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, name: str,
                     perm: int, ns: int, owner: tuple[int, int]) -> None:
        src = tar.extractfile(m)
        if src is None:
            raise _bad_member(m.name, "has no readable content")
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            with src:
                while chunk := src.read(_CHUNK):
                    _write_all(fd, chunk)
            self._own(fd, perm, chmod=False, owner=owner)
            os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)

    def _hardlink(self, m: tarfile.TarInfo, files: dict[Parts, tuple[Parts, str]], pfd: int,
                  name: str) -> None:
        why = f"links to {m.linkname!r}, not a file extracted before it"
        try:
            target = files.get(_member_parts(m.linkname))
        except InvalidArgument:
            target = None  # an absolute or '..' link name: reported as the member's fault
        if target is None:
            raise _bad_member(m.name, why)
        try:
            tfd = self.tree.open_dir(target[0])
        except (FileNotFoundError, NotADirectoryPath) as err:
            raise _bad_member(m.name, why) from err
        try:
            st = self.tree.lstat(tfd, target[1])
            if st is None or not stat.S_ISREG(st.st_mode):
                raise _bad_member(m.name, why)
            os.link(target[1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)


def copy_sources(
    ctx: BuildContext,
    sources: Sequence[Source],
    dest: str,
    root: str,
    *,
    workdir: str = "/",
    uid: int = 0,
    gid: int = 0,
    chmod: int | None = None,
    extract_archives: bool = False,
    keep_owners: bool = False,
    archive_owner: Callable[[int], int] | None = None,
) -> None:
    """Copy ``sources`` (from ``ctx.resolve``) to ``dest`` inside the rootfs ``root``.

    ``keep_owners``: copied entries keep their owners (``COPY --from`` without
    ``--chown``: the source is an image's tree in the same ids). ``archive_owner``
    maps an ADD archive member's uid/gid to the ids to write (default: ``uid:gid``)."""
    target, as_dir = _destination(dest, workdir)
    if len(sources) > 1 and not as_dir:
        raise InvalidArgument(_MULTI, f"write the destination as {dest.rstrip('/')}/")
    try:
        tree = SafeTree(root, parent_owner=(uid, gid))
    except (FileNotFoundError, NotADirectoryError) as err:
        raise NotFound(
            f"cannot copy into {root}: not a directory",
            "mount the image's root filesystem there first",
        ) from err
    try:
        copier = _Copier(ctx, tree, uid, gid, chmod, keep_owners, archive_owner)
        for source in sources:
            copier.copy(source, target, as_dir, extract_archives)
    finally:
        tree.close()
