""".dockerignore: which paths of a build context COPY and ADD cannot see.

A port of Docker's rules (moby/buildkit ``frontend/dockerignore`` reading,
moby/patternmatcher ``MatchesOrParentMatches`` matching):

- lines starting with ``#`` are comments (only in the first column), blank
  lines are skipped, whitespace is trimmed, a leading UTF-8 BOM is dropped;
- a pattern is path-cleaned (Go ``filepath.Clean``) and a leading ``/`` is
  stripped, so ``/foo``, ``./foo`` and ``foo/`` all mean ``foo``;
- ``*`` and ``?`` never cross a ``/``, ``[...]`` is a character class,
  ``\\`` escapes, ``**`` matches any number of directories (even none);
- a pattern matching a directory also excludes everything below it;
- ``!`` re-includes; the last pattern that matches a path (itself or one of
  its parent directories) decides.

Also here: Go's ``filepath.Clean`` and ``filepath.Match`` (one segment), which
the build context reuses for COPY sources. Not here: walking a tree (see
``context``), per-Dockerfile ``<Dockerfile>.dockerignore`` files.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from dataclasses import dataclass, field

from ..errors import InvalidArgument

__all__ = [
    "IGNORE_FILE",
    "IgnoreRules",
    "clean_path",
    "glob_regex",
    "load_ignore",
    "parse_ignore",
]

IGNORE_FILE = ".dockerignore"
_HINT = "fix the pattern in .dockerignore (see https://docs.docker.com/build/concepts/context/)"
_BOM = "\ufeff"

# patternmatcher's match types
_EXACT, _PREFIX, _SUFFIX, _REGEX = "exact", "prefix", "suffix", "regex"


def clean_path(path: str) -> str:
    """Go's ``path.Clean``: no ``.``, ``//`` or trailing ``/``; ``..`` folded lexically."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg != "..":
            parts.append(seg)
        elif parts and parts[-1] != "..":
            parts.pop()
        elif not rooted:
            parts.append("..")
    joined = "/".join(parts)
    return "/" + joined if rooted else joined or "."


# -- Go filepath.Match --------------------------------------------------------


def _class_char(pattern: str, pos: int) -> tuple[str, int]:
    """One (maybe ``\\``-escaped) character of a ``[...]`` class: Go's ``getEsc``."""
    if pos >= len(pattern) or pattern[pos] in "-]":
        raise ValueError("bad character class")
    if pattern[pos] == "\\":
        pos += 1
        if pos >= len(pattern):
            raise ValueError("trailing backslash in a character class")
    return pattern[pos], pos + 1


def _char_class(pattern: str, pos: int) -> tuple[str, int]:
    """Regex for the class starting after ``[`` at ``pos``, and the position after ``]``."""
    negate = pos < len(pattern) and pattern[pos] == "^"
    pos += negate
    items: list[str] = []
    while not (pos < len(pattern) and pattern[pos] == "]" and items):
        lo, pos = _class_char(pattern, pos)
        if pos < len(pattern) and pattern[pos] == "-":
            hi, pos = _class_char(pattern, pos + 1)
            if hi < lo:
                raise ValueError("bad range in a character class")
            items.append(f"{re.escape(lo)}-{re.escape(hi)}")
        else:
            items.append(re.escape(lo))
    return "[" + "^" * negate + "".join(items) + "]", pos + 1


def glob_regex(pattern: str) -> str:
    """Go ``filepath.Match`` syntax as a Python regex (no anchors); ValueError if malformed."""
    out: list[str] = []
    pos = 0
    while pos < len(pattern):
        ch = pattern[pos]
        pos += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            frag, pos = _char_class(pattern, pos)
            out.append(frag)
        elif ch == "\\":
            if pos >= len(pattern):
                raise ValueError("trailing backslash")
            out.append(re.escape(pattern[pos]))
            pos += 1
        else:
            out.append(re.escape(ch))
    return "".join(out)


# -- patternmatcher -----------------------------------------------------------


@dataclass(frozen=True)
class _Matcher:
    kind: str
    text: str  # the cleaned pattern, or the regex for _REGEX
    regex: re.Pattern[str] | None = None

    def match(self, path: str) -> bool:
        if self.kind == _EXACT:
            return path == self.text
        if self.kind == _PREFIX:
            return path.startswith(self.text[:-2])  # strip the trailing "**"
        if self.kind == _SUFFIX:
            suffix = self.text[2:]  # strip the leading "**"
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> _Matcher:
    """patternmatcher's ``Pattern.compile``: the cheapest match type that is exact."""
    out, kind, pos, n = ["^"], _EXACT, 0, len(pattern)
    while pos < n:
        start, ch = pos, pattern[pos]
        pos += 1
        if ch == "*" and pos < n and pattern[pos] == "*":
            pos += 1
            if pos < n and pattern[pos] == "/":
                pos += 1  # "**/" is the same as "**"
            if pos < n:
                out.append("(.*/)?")
                kind = _REGEX
            elif kind == _EXACT:
                kind = _PREFIX
            else:
                out.append(".*")
                kind = _REGEX
            if start == 0:
                kind = _SUFFIX
            continue
        if ch == "[":
            frag, pos = _char_class(pattern, pos)
            out.append(frag)
        elif ch == "\\" and pos < n:
            out.append(re.escape(pattern[pos]))
            pos += 1
        elif ch in "*?":
            out.append("[^/]*" if ch == "*" else "[^/]")
        else:
            out.append(re.escape(ch))
            continue
        kind = _REGEX
    if kind != _REGEX:
        return _Matcher(kind, pattern)
    return _Matcher(kind, pattern, re.compile("".join(out) + r"\Z", re.DOTALL))


def _parse_line(line: str) -> tuple[str, bool] | None:
    """One .dockerignore line as (cleaned pattern, is '!' exception), None if skipped."""
    if line.startswith("#"):
        return None
    line = line.strip()
    if not line:
        return None
    exception = line.startswith("!")
    if exception:
        line = line[1:].strip()
        if not line:
            raise InvalidArgument('illegal exclusion pattern: "!" in .dockerignore', _HINT)
    line = clean_path(line)
    if len(line) > 1 and line.startswith("/"):
        line = line[1:]
    try:
        glob_regex(line)  # patternmatcher.New validates with filepath.Match
        _compile(line)
    except (ValueError, re.error) as err:
        raise InvalidArgument(f"invalid .dockerignore pattern {line!r}: {err}", _HINT) from err
    return line, exception


@dataclass(frozen=True)
class IgnoreRules:
    """Parsed .dockerignore: ``(cleaned pattern, is '!' exception)`` in file order."""

    patterns: tuple[tuple[str, bool], ...] = ()
    _matchers: tuple[_Matcher, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matchers", tuple(_compile(p) for p, _ in self.patterns))

    def excluded(self, relpath: str, parent_excluded: bool = False) -> bool:
        """Whether COPY cannot see ``relpath`` ('/'-separated, relative to the context).

        ``parent_excluded`` is what this returned for the parent directory, for a
        caller that walks a tree (False otherwise): it is only the starting state,
        parents are still checked, so the answer is the same either way.
        """
        if relpath in ("", "."):
            return False  # "Don't let them exclude everything, kind of silly."
        parts = relpath.split("/")
        parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        matched = parent_excluded
        for (_, exception), matcher in zip(self.patterns, self._matchers):
            if exception != matched:
                continue  # it could not change the outcome
            if matcher.match(relpath) or any(matcher.match(p) for p in parents):
                matched = not exception
        return matched

    def may_include_below(self, relpath: str) -> bool:
        """Could a ``!`` exception re-include something below the directory ``relpath``?

        False lets a walker skip an excluded directory without listing it. Only a
        pattern with more segments than ``relpath`` (or with ``**`` or a class,
        which may match across segments) can match below it.
        """
        dirs = relpath.split("/")
        for pattern, exception in self.patterns:
            if not exception:
                continue
            if "**" in pattern or "[" in pattern:
                return True
            segs = pattern.split("/")
            if len(segs) > len(dirs) and all(
                _compile(seg).match(name) for seg, name in zip(segs, dirs)
            ):
                return True
        return False


def parse_ignore(text: str) -> IgnoreRules:
    """Rules from the text of a .dockerignore file (InvalidArgument on a bad pattern)."""
    lines = text.removeprefix(_BOM).split("\n")
    return IgnoreRules(tuple(p for p in map(_parse_line, lines) if p is not None))


def load_ignore(context_dir: str) -> IgnoreRules:
    """The rules of ``context_dir/.dockerignore``; no rules if there is no such file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(os.path.join(context_dir, IGNORE_FILE), flags)
    except FileNotFoundError:
        return IgnoreRules()
    except OSError as err:
        raise InvalidArgument(
            f"cannot read {IGNORE_FILE} of the build context: {err.strerror}",
            f"make {IGNORE_FILE} a regular, readable file (not a symlink)",
        ) from err
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidArgument(
                f"{IGNORE_FILE} of the build context is not a regular file",
                f"make {IGNORE_FILE} a regular file",
            )
        data = f.read()
    return parse_ignore(data.decode("utf-8", "surrogateescape"))
