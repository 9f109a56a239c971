"""File-like wrappers that hash a byte stream as it passes through.

``HashingWriter`` and ``HashingReader`` compute the sha256 of everything
written/read, so layer tars are digested while streamed (never buffered whole).
``open_maybe_gzip`` transparently decompresses a gzip stream so the digest is
that of the uncompressed bytes (a DiffID).

Not here: the content store's blob digests and verification.
"""

from __future__ import annotations

import gzip
import hashlib
from typing import BinaryIO, Protocol

__all__ = ["HashingReader", "HashingWriter", "Readable", "open_maybe_gzip"]

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 16


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class HashingWriter:
    """Write-through to ``out`` while hashing; ``tell`` counts bytes written."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._sha = hashlib.sha256()
        self._count = 0

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self._sha.update(data)
        self._count += len(data)
        return len(data)

    def tell(self) -> int:
        return self._count

    def flush(self) -> None:
        self._out.flush()

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


class HashingReader:
    """Read from ``src`` while hashing; ``drain`` reads (and hashes) the rest."""

    def __init__(self, src: Readable) -> None:
        self._src = src
        self._sha = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._src.read(size)
        self._sha.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


class _Prefixed:
    """``head`` (already read to sniff the format) followed by the rest of ``src``."""

    def __init__(self, head: bytes, src: Readable) -> None:
        self._head = head
        self._src = src

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._src.read(size)
        if size < 0:
            data, self._head = self._head + self._src.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


def _read_exactly(src: Readable, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = src.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def open_maybe_gzip(src: Readable) -> Readable:
    """``src`` itself (re-prefixed) or, if it starts with the gzip magic, its decompression."""
    head = _read_exactly(src, len(GZIP_MAGIC))
    stream = _Prefixed(head, src)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[call-overload,no-any-return]
    return stream
