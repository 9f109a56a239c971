"""Writing container logs: Docker's json-file format with rotation.

One JSON object per line, ``{"log": "text\\n", "stream": "stdout", "time": "...Z"}``;
``path`` rotates to ``path.1``, ``path.2``... Kept apart from the reader
(``paas.runtime.logs``) so the attached ``container:run`` path imports only this.
"""

from __future__ import annotations

import codecs
import os
import time

from .. import jsonc, modes

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    from typing import IO

__all__ = ["DEFAULT_MAX_BYTES", "PARTIAL_LIMIT", "STREAMS", "LogWriter", "format_time", "log_files"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
PARTIAL_LIMIT = 16 * 1024
STREAMS = ("stdout", "stderr")


def format_time(epoch_ns: int | None = None) -> str:
    """RFC 3339 UTC with nanoseconds, fixed width so strings sort like times."""
    ns = time.time_ns() if epoch_ns is None else epoch_ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def log_files(path: str, max_files: int = 100) -> list[str]:
    """The existing files of a rotated set, oldest first (``path.N`` ... ``path.1``, ``path``)."""
    older = [f"{path}.{i}" for i in range(max_files, 0, -1)]
    return [p for p in older + [path] if os.path.exists(p)]


class LogWriter:
    """Appends json-file entries to ``path``; keeps at most ``max_files`` files of ~``max_bytes``.

    Not thread-safe: one owner (the supervisor's loop) writes.
    """

    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES, max_files: int = 3) -> None:
        if max_bytes <= 0 or max_files < 1:
            raise ValueError("max_bytes must be > 0 and max_files >= 1")
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._buf = {s: b"" for s in STREAMS}
        self._dec = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS}
        self._file: IO[bytes] = self._open()
        self._size = os.fstat(self._file.fileno()).st_size

    def _open(self) -> IO[bytes]:
        # root-only: what apps print (secrets too)
        return open(modes.create(self.path, os.O_WRONLY | os.O_APPEND), "ab", buffering=0)

    def write(self, stream: str, data: bytes) -> None:
        """Add raw output of ``stream`` ("stdout"/"stderr"); complete lines are written at once."""
        if stream not in self._buf:
            raise ValueError(f"unknown stream {stream!r}")
        buf = self._buf[stream] + data
        lines = buf.split(b"\n")
        self._buf[stream] = lines.pop()
        for line in lines:
            self._emit(stream, self._dec[stream].decode(line + b"\n"))
        if len(self._buf[stream]) > PARTIAL_LIMIT:
            self._flush_partial(stream, final=False)

    def _flush_partial(self, stream: str, *, final: bool) -> None:
        text = self._dec[stream].decode(self._buf[stream], final=final)
        self._buf[stream] = b""
        if text:
            self._emit(stream, text)

    def _emit(self, stream: str, text: str) -> None:
        record = {"log": text, "stream": stream, "time": format_time()}
        line = (jsonc.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        if self._size > 0 and self._size + len(line) > self.max_bytes:
            self._rotate()
        self._file.write(line)
        self._size += len(line)

    def _rotate(self) -> None:
        self._file.close()
        if self.max_files == 1:
            os.unlink(self.path)
        else:
            for i in range(self.max_files - 1, 1, -1):
                if os.path.exists(f"{self.path}.{i - 1}"):
                    os.replace(f"{self.path}.{i - 1}", f"{self.path}.{i}")
            os.replace(self.path, f"{self.path}.1")
        self._file = self._open()
        self._size = 0

    def close(self) -> None:
        """Write buffered partial lines and close the file."""
        if self._file.closed:
            return
        for stream in STREAMS:
            self._flush_partial(stream, final=True)
        self._file.close()
