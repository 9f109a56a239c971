"""The build context: COPY/ADD sources resolved safely, and their cache checksum.

``open_context`` takes the directory a build reads from (the pushed
repository) with its .dockerignore. ``BuildContext.resolve`` turns COPY/ADD
source patterns into ``Source`` values the way Docker does:

- a pattern is relative to the context root, a leading ``/`` means the root,
  it is path-cleaned; one that cleans to ``../...`` is refused;
- ``*``, ``?``, ``[...]`` match one path segment (Go ``filepath.Match``);
- symlinks in the source path are followed, but only inside the context: a
  link whose real location is outside it is refused, and nothing outside the
  root is ever opened (links are resolved component by component, see
  ``resolve_in_scope``);
- .dockerignore'd paths do not exist; an excluded directory only exists as the
  parent of entries a ``!`` exception re-includes.

``BuildContext.checksum`` is the layer-cache key of a COPY/ADD: content, names,
types, permissions and link targets, never mtimes or owners.

Not here: URLs and git sources (the builder refuses them), the copy itself
(``copy``). The context is assumed not to change while a build reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import InvalidArgument, NotFound
from .ignore import IgnoreRules, clean_path, glob_regex, load_ignore

__all__ = [
    "BuildContext",
    "Entry",
    "OutsideScope",
    "Source",
    "open_context",
    "open_regular",
    "resolve_in_scope",
]

MAX_SYMLINKS = 40  # Linux's limit
_CHUNK = 1 << 20
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}


class OutsideScope(Exception):
    """A path (or a symlink on it) leads above the root it must stay in."""


def resolve_in_scope(
    parts: Sequence[str], readlink: Callable[[tuple[str, ...]], str | None], *, clamp: bool
) -> tuple[str, ...]:
    """The canonical components of ``parts`` below a root, every symlink followed.

    ``readlink(components)`` returns the target if that (canonical) path is a
    symlink, else None (missing paths included). Resolution is chroot-like: an
    absolute target starts again at the root; ``..`` at the root stays there
    when ``clamp``, else raises ``OutsideScope``. Missing components are kept
    as they are, so the result may name something to be created.
    """
    todo = list(reversed(parts))
    done: list[str] = []
    links = 0
    while todo:
        comp = todo.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if done:
                done.pop()
            elif not clamp:
                raise OutsideScope("/".join(parts))
            continue
        target = readlink((*done, comp))
        if target is None:
            done.append(comp)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise InvalidArgument(
                f"too many levels of symbolic links: {'/'.join(parts)}",
                "remove the symlink loop",
            )
        if target.startswith("/"):
            done = []
        todo.extend(reversed(target.split("/")))
    return tuple(done)


def open_regular(path: str) -> int:
    """An O_NOFOLLOW read fd of ``path``; InvalidArgument unless a regular file."""
    fd = os.open(path, _READ_FLAGS)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidArgument(f"{path} is not a regular file", "copy regular files only")
    return fd


@dataclass(frozen=True)
class Source:
    """One COPY/ADD source: ``relpath`` in the context ('.' = root), its real host path."""

    relpath: str
    abspath: str
    is_dir: bool


@dataclass(frozen=True)
class Entry:
    """An entry below a directory source: path relative to the source, lstat result."""

    relpath: str
    abspath: str
    stat: os.stat_result


def _has_wildcards(path: str) -> bool:
    """Docker's ``containsWildcards``: ``* ? [`` that are not ``\\``-escaped."""
    pos = 0
    while pos < len(path):
        if path[pos] == "\\":
            pos += 1
        elif path[pos] in "*?[":
            return True
        pos += 1
    return False


def _forbidden(instruction: str, pattern: str) -> InvalidArgument:
    return InvalidArgument(
        f"{instruction} failed: forbidden path outside the build context: {pattern}",
        "COPY and ADD read only files inside the build context; move the file into it",
    )


def _context_path(pattern: str, instruction: str) -> str:
    """The cleaned path of ``pattern`` relative to the context root ('.' for the root)."""
    path = clean_path(pattern)
    if path.startswith("/"):
        return path[1:] or "."
    if path == ".." or path.startswith("../"):
        raise _forbidden(instruction, pattern)
    return path


@dataclass(frozen=True)
class BuildContext:
    """A context directory (absolute, symlink-free path) and its .dockerignore rules."""

    root: str
    ignore: IgnoreRules = field(default_factory=IgnoreRules)
    # content digests by (path, size, mtime_ns, inode): one build reads a file once
    _digests: dict[tuple[str, int, int, int], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # -- resolve -------------------------------------------------------------
    def resolve(self, patterns: Sequence[str], instruction: str = "COPY") -> tuple[Source, ...]:
        """The sources ``patterns`` name, in order (each wildcard's matches sorted)."""
        found: list[Source] = []
        for pattern in patterns:
            path = _context_path(pattern, instruction)
            candidates = self._glob(path, pattern, instruction) if _has_wildcards(path) else [path]
            sources = [s for c in candidates if (s := self._source(c, pattern, instruction))]
            if not sources:
                raise NotFound(
                    f"{instruction} failed: file not found in build context or excluded "
                    f"by .dockerignore: {pattern}",
                    "check the path (it is relative to the build context) and .dockerignore",
                )
            found.extend(sources)
        return tuple(found)

    def _glob(self, path: str, pattern: str, instruction: str) -> list[str]:
        """Context paths matching the wildcard ``path``, expanded segment by segment."""
        prefixes: list[tuple[str, ...]] = [()]
        for seg in path.split("/"):
            if not _has_wildcards(seg) and "\\" not in seg:
                prefixes = [(*p, seg) for p in prefixes]
                continue
            try:
                regex = re.compile(glob_regex(seg) + r"\Z", re.DOTALL)
            except (ValueError, re.error) as err:
                raise InvalidArgument(
                    f"{instruction} failed: bad pattern {pattern!r}: {err}",
                    "fix the wildcard (Go filepath.Match syntax)",
                ) from err
            prefixes = [
                (*p, name) for p in prefixes for name in self._listdir(p, pattern, instruction)
                if regex.match(name)
            ]
        return ["/".join(p) for p in prefixes]

    def _listdir(self, parts: tuple[str, ...], pattern: str, instruction: str) -> list[str]:
        real = self._real(parts, pattern, instruction)
        try:
            return sorted(os.listdir(os.path.join(self.root, *real)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _real(self, parts: Sequence[str], pattern: str, instruction: str) -> tuple[str, ...]:
        try:
            return resolve_in_scope(parts, self._readlink, clamp=False)
        except OutsideScope as err:
            raise _forbidden(instruction, pattern) from err

    def _readlink(self, parts: tuple[str, ...]) -> str | None:
        path = os.path.join(self.root, *parts)
        try:
            if not stat.S_ISLNK(os.lstat(path).st_mode):
                return None
        except (FileNotFoundError, NotADirectoryError):
            return None
        target = os.readlink(path)
        if not target.startswith("/"):
            return target
        if target == self.root or target.startswith(self.root + "/"):
            return "/" + target[len(self.root) :]  # a host path into the context
        raise OutsideScope(target)

    def _source(self, path: str, pattern: str, instruction: str) -> Source | None:
        """The source at context path ``path``; None if missing or .dockerignore'd."""
        hidden = self.ignore.excluded(path)
        if hidden and not self.ignore.may_include_below(path):
            return None
        parts = () if path == "." else tuple(path.split("/"))
        real = self._real(parts, pattern, instruction)
        realpath = "/".join(real) or "."
        if hidden and realpath != path:
            return None  # an excluded symlink is not sent, whatever it points to
        abspath = os.path.join(self.root, *real)
        try:
            st = os.lstat(abspath)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise InvalidArgument(
                f"{instruction} failed: {pattern} is not a regular file or directory",
                "devices, fifos and sockets cannot be copied into an image",
            )
        source = Source(path, abspath, stat.S_ISDIR(st.st_mode))
        excluded = hidden or (realpath != path and self.ignore.excluded(realpath))
        # an excluded dir is visible only as the parent of entries a '!' re-includes
        if excluded and not (source.is_dir and next(self.entries(source), None)):
            return None
        return source

    # -- walk ----------------------------------------------------------------
    def entries(self, source: Source) -> Iterator[Entry]:
        """Every entry below a directory source that .dockerignore keeps, pre-order,
        sorted by name. Regular files, directories and symlinks (not followed) only."""
        if not source.is_dir:
            return
        base = os.path.relpath(source.abspath, self.root)
        yield from self._walk(source.abspath, base, "", self.ignore.excluded(base))

    def _walk(self, absdir: str, ctxrel: str, srcrel: str, dir_hidden: bool) -> Iterator[Entry]:
        with os.scandir(absdir) as it:
            items = sorted(it, key=lambda item: item.name)
        for item in items:
            st = item.stat(follow_symlinks=False)
            if stat.S_IFMT(st.st_mode) not in _KINDS:
                continue
            crel = item.name if ctxrel == "." else f"{ctxrel}/{item.name}"
            entry = Entry(f"{srcrel}/{item.name}" if srcrel else item.name, item.path, st)
            hidden = self.ignore.excluded(crel, dir_hidden)
            if not stat.S_ISDIR(st.st_mode):
                if not hidden:
                    yield entry
            elif not hidden:
                yield entry
                yield from self._walk(item.path, crel, entry.relpath, False)
            elif self.ignore.may_include_below(crel):
                below = list(self._walk(item.path, crel, entry.relpath, True))
                if below:
                    yield entry
                    yield from below

    # -- checksum ------------------------------------------------------------
    def checksum(self, sources: Sequence[Source]) -> str:
        """``sha256:...`` over what a COPY of ``sources`` produces (not mtimes, not owners)."""
        digest = hashlib.sha256()
        for source in sources:
            digest.update(b"source\n")
            self._record(digest, source.relpath, source.abspath, os.lstat(source.abspath))
            for entry in self.entries(source):
                self._record(digest, entry.relpath, entry.abspath, entry.stat)
        return "sha256:" + digest.hexdigest()

    def _record(self, digest: hashlib._Hash, path: str, abspath: str, st: os.stat_result) -> None:
        kind = _KINDS[stat.S_IFMT(st.st_mode)]
        if kind == "symlink":
            extra = os.readlink(abspath)
        else:
            extra = self.file_digest(abspath, st) if kind == "file" else ""
        line = json.dumps([path, kind, stat.S_IMODE(st.st_mode), extra])
        digest.update(line.encode("ascii") + b"\n")

    def file_digest(self, abspath: str, st: os.stat_result) -> str:
        """The sha256 hex of a regular file's content (memoized while it is unchanged)."""
        key = (abspath, st.st_size, st.st_mtime_ns, st.st_ino)
        if key in self._digests:
            return self._digests[key]
        digest = hashlib.sha256()
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        with open(open_regular(abspath), "rb", buffering=0) as f:
            while n := f.readinto(buf):
                digest.update(view[:n])
        self._digests[key] = digest.hexdigest()
        return self._digests[key]


def open_context(path: str) -> BuildContext:
    """The build context at ``path`` with its .dockerignore (NotFound if not a directory)."""
    root = os.path.realpath(path)
    if not os.path.isdir(root):
        raise NotFound(
            f"build context {path} not found or not a directory",
            "pass the directory that holds the Dockerfile and the files it copies",
        )
    return BuildContext(root, load_ignore(root))

