"""Container log files in Docker's json-file format: writing with rotation, reading with tail/follow.

One JSON object per line::

    {"log": "text\\n", "stream": "stdout", "time": "2026-11-28T13:05:32.123456789Z"}

``LogWriter`` turns the raw bytes of a container's stdout/stderr into such
lines (one entry per output line, partial lines buffered per stream) and
rotates ``path -> path.1 -> path.2`` when the file grows past ``max_bytes``.
``read_logs`` reads the rotated set oldest-first, can start from the last N
entries, and can follow the file across rotations.

Not covered: who owns the pipes (``paas.daemon.supervisor``), and when to
stop following (the caller passes ``stop``).
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from .logwriter import (
    DEFAULT_MAX_BYTES,
    PARTIAL_LIMIT,
    STREAMS,
    LogWriter,
    format_time,
    log_files,
)

__all__ = ["DEFAULT_MAX_BYTES", "PARTIAL_LIMIT", "STREAMS", "LogEntry", "LogTail", "LogWriter",
           "format_time", "log_files", "read_logs"]


@dataclass(frozen=True)
class LogEntry:
    """One line of output: ``text`` keeps its trailing newline (absent for a partial line)."""

    time: str
    stream: str
    text: str


def _parse(raw: bytes) -> LogEntry | None:
    try:
        obj = json.loads(raw)
        return LogEntry(time=str(obj["time"]), stream=str(obj["stream"]), text=str(obj["log"]))
    except (ValueError, KeyError, TypeError):
        return None  # a torn or foreign line: skip it rather than fail the whole read


def _since_str(since: str | float | None) -> str | None:
    if since is None or isinstance(since, str):
        return since
    return format_time(int(since * 1_000_000_000))


def read_logs(
    path: str,
    *,
    tail: int | None = None,
    follow: bool = False,
    since: str | float | None = None,
    stop: Callable[[], bool] | None = None,
    poll_interval: float = 0.05,
) -> Iterator[LogEntry]:
    """Entries of the log at ``path`` (and its rotated files), oldest first.

    ``tail``: only the last N entries present now. ``since``: only entries at
    or after this time (RFC 3339 string or epoch seconds). ``follow``: keep
    yielding new entries, across rotations, until ``stop()`` returns True
    (never, if ``stop`` is None).
    """
    cutoff = _since_str(since)
    keep = (lambda e: e.time >= cutoff) if cutoff else (lambda e: True)
    if not follow:
        yield from _filtered(_existing(path, tail), keep)
        return
    follower = _Follower(path, poll_interval, stop or (lambda: False))
    yield from _filtered(follower.existing(tail), keep)
    yield from _filtered(follower.follow(), keep)


def _filtered(entries: Iterator[LogEntry], keep: Callable[[LogEntry], bool]) -> Iterator[LogEntry]:
    return (e for e in entries if keep(e))


def _raw_lines(paths: list[str]) -> Iterator[bytes]:
    for p in paths:
        try:
            with open(p, "rb") as f:
                for line in f:
                    if line.endswith(b"\n"):
                        yield line
        except FileNotFoundError:
            continue  # rotated away while we were reading: its entries live on in the next file


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return -1


def _existing(path: str, tail: int | None) -> Iterator[LogEntry]:
    lines: Iterator[bytes] | collections.deque[bytes] = _raw_lines(log_files(path))
    if tail is not None:
        lines = collections.deque(lines, maxlen=max(tail, 0))
    for raw in lines:
        entry = _parse(raw)
        if entry:
            yield entry


class LogTail:
    """Follow one log without blocking: each ``read()`` returns the entries written since
    the last one (across rotations), from one open handle (for merging several logs, as
    ``paas logs -f`` does, where a blocking ``read_logs(follow=True)`` per file cannot)."""

    def __init__(self, path: str, *, from_start: bool) -> None:
        self._f = _Follower(path, 0.05, lambda: True)
        existing = list(self._f.existing(None if from_start else 0))
        self._pending = existing if from_start else []

    def read(self) -> list[LogEntry]:
        out, self._pending = self._pending, []
        f = self._f
        if f.file is None:
            if not os.path.exists(f.path):
                return out
            f.file = open(f.path, "rb")  # noqa: SIM115 - long-lived handle
        out += f._entries(f._read_lines())
        if f._rotated():  # what was written before the rename is still in our file
            out += f._entries(f._read_lines())
            f._switch()
            out += f._entries(f._read_lines())
        return out

    def close(self) -> None:
        self._f._close()


class _Follower:
    """Reads the rotated set once, then follows the live file across renames."""

    def __init__(self, path: str, poll_interval: float, stop: Callable[[], bool]) -> None:
        self.path = path
        self.poll = poll_interval
        self.stop = stop
        self.file: IO[bytes] | None = None
        self.frag = b""

    def existing(self, tail: int | None) -> Iterator[LogEntry]:
        """The entries present now; leaves ``self.file`` positioned at the end of the live file."""
        try:
            self.file = open(self.path, "rb")  # noqa: SIM115 - long-lived handle
        except FileNotFoundError:
            self.file = None
        # Rotated files first, then the live file through our own handle so
        # nothing is lost or repeated if a rotation happens meanwhile.
        ours = os.fstat(self.file.fileno()).st_ino if self.file is not None else -1
        older = [p for p in log_files(self.path) if p != self.path and _inode(p) != ours]
        raw = list(_raw_lines(older))
        if self.file is not None:
            raw.extend(self._read_lines())
        if tail is not None:
            raw = raw[-tail:] if tail > 0 else []
        yield from self._entries(raw)

    def _read_lines(self) -> list[bytes]:
        assert self.file is not None
        data = self.frag + self.file.read()
        lines = data.split(b"\n")
        self.frag = lines.pop()
        return [ln + b"\n" for ln in lines]

    def follow(self) -> Iterator[LogEntry]:
        while True:
            stopping = self.stop()  # sampled before the read so a final burst is not lost
            if self.file is None:
                if os.path.exists(self.path):
                    self.file = open(self.path, "rb")  # noqa: SIM115 - long-lived handle
                    continue
            else:
                yield from self._entries(self._read_lines())
                if self._rotated():
                    # anything written between our read and the rename is still in our file
                    yield from self._entries(self._read_lines())
                    self._switch()
                    continue
            if stopping:
                self._close()
                return
            time.sleep(self.poll)

    @staticmethod
    def _entries(lines: list[bytes]) -> Iterator[LogEntry]:
        for line in lines:
            entry = _parse(line)
            if entry:
                yield entry

    def _rotated(self) -> bool:
        assert self.file is not None
        try:
            live = os.stat(self.path).st_ino
        except FileNotFoundError:
            return False  # between rename and re-create; look again next round
        return live != os.fstat(self.file.fileno()).st_ino

    def _switch(self) -> None:
        """Move from our (renamed, fully read) file to the next newer one."""
        assert self.file is not None
        ours = os.fstat(self.file.fileno()).st_ino
        self._close()
        self.frag = b""
        while self.file is None:
            nxt = self._next_file(ours)
            if nxt is None:  # the new live file is not created yet
                time.sleep(self.poll)
                continue
            try:
                self.file = open(nxt, "rb")  # noqa: SIM115 - long-lived handle
            except FileNotFoundError:
                continue  # rotated again under us: look at the new names

    def _next_file(self, ours: int) -> str | None:
        files = log_files(self.path)
        inodes = [_inode(p) for p in files]
        if ours in inodes:
            i = inodes.index(ours) + 1
            return files[i] if i < len(files) else None
        return files[0] if files else None  # ours was deleted: older than every file left

    def _close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
