"""Content store: blobs by digest in an OCI image layout (``blobs/sha256/<hex>``).

Writes go to a temp file (under the instance's tmp dir, same filesystem),
are fsynced, verified against the expected digest and renamed into place, so
a blob path either holds exactly the content its name says or does not
exist. Also writes ``oci-layout`` and (atomically) ``index.json``.

Not here: what the blobs mean (``manifest``), which ones to keep (``store``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from .. import modes
from ..errors import InvalidArgument, NotFound
from .manifest import canonical_json, validate_digest

__all__ = ["ContentStore", "Ingest", "atomic_write"]

_CHUNK = 1 << 20


def atomic_write(path: str, data: bytes, tmp_dir: str | None = None, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` via temp file + fsync + rename."""
    d = tmp_dir or os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Ingest(io.RawIOBase):
    """A writable temp file that hashes what goes through it; ``commit`` renames it into place."""

    def __init__(self, store: ContentStore) -> None:
        super().__init__()
        self._store = store
        fd, self.tmp_path = tempfile.mkstemp(dir=store.tmp_dir, prefix="ingest-")
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest = ""

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def finish(self) -> str:
        """Flush and fsync; return the digest of everything written."""
        if not self.digest:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self.digest = "sha256:" + self._hash.hexdigest()
        return self.digest

    def commit(self, expected: str | None = None) -> str:
        """Move the blob into the store (verifying ``expected`` if given); return its digest."""
        digest = self.finish()
        if expected is not None and digest != expected:
            self.discard()
            raise InvalidArgument(
                f"content digest mismatch: expected {expected}, got {digest}",
                "the data is corrupt or was changed; fetch or export it again",
            )
        os.chmod(self.tmp_path, 0o600)  # mkstemp's already; image content is root-only
        os.replace(self.tmp_path, self._store.path(digest))
        return digest

    def discard(self) -> None:
        """Remove the temp file, also when closing it fails (a full disk: close flushes
        what is buffered and raises ENOSPC, which the caller already has)."""
        try:
            if not self._file.closed:
                self._file.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp_path)

    def as_binary(self) -> BinaryIO:
        return cast(BinaryIO, self)


class ContentStore:
    """Blobs of one OCI image layout directory."""

    def __init__(self, layout: str, tmp_dir: str) -> None:
        self.layout = layout
        self.tmp_dir = tmp_dir
        self.blob_dir = os.path.join(layout, "blobs", "sha256")

    def init(self) -> None:
        """Create the layout skeleton if missing (idempotent)."""
        modes.makedirs(self.blob_dir)
        modes.makedirs(self.tmp_dir)
        marker = os.path.join(self.layout, "oci-layout")
        if not os.path.exists(marker):
            atomic_write(marker, canonical_json({"imageLayoutVersion": "1.0.0"}))
        if not os.path.exists(os.path.join(self.layout, "index.json")):
            self.write_index({"schemaVersion": 2, "manifests": []})

    def path(self, digest: str) -> str:
        return os.path.join(self.blob_dir, validate_digest(digest).split(":", 1)[1])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError as err:
            raise self._missing(digest) from err

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError as err:
            raise self._missing(digest) from err

    def read(self, digest: str) -> bytes:
        """The whole blob, verified (meant for small JSON blobs)."""
        with self.open(digest) as f:
            data = f.read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise InvalidArgument(
                f"blob {digest} is corrupt (its content does not match its digest)",
                "remove the image and import or load it again",
            )
        return data

    @contextlib.contextmanager
    def ingest(self) -> Iterator[Ingest]:
        """A temp blob writer, discarded unless committed inside the block."""
        w = Ingest(self)
        try:
            yield w
        finally:
            w.discard()

    def write_bytes(self, data: bytes) -> str:
        with self.ingest() as w:
            w.write(data)
            return w.commit()

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self.path(digest))
            return True
        except FileNotFoundError:
            return False

    def write_index(self, index: dict[str, Any]) -> None:
        atomic_write(os.path.join(self.layout, "index.json"), canonical_json(index), self.tmp_dir)

    @staticmethod
    def _missing(digest: str) -> NotFound:
        return NotFound(
            f"blob {digest} is missing from the image store",
            "remove the image and import or load it again",
        )
