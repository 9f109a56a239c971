"""Blob ingestion: a temp file that never outlives a failed write."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from paas.image.content import ContentStore


class _FullDisk:
    """A file whose buffered data cannot be written (close raises ENOSPC)."""

    closed = False

    def __init__(self, real: object) -> None:
        self.real = real

    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        self.real.close()  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failing_close_still_removes_the_temp_file(tmp_path: Path) -> None:
    store = ContentStore(str(tmp_path / "images"), str(tmp_path / "tmp"))
    store.init()
    with pytest.raises(OSError, match="No space"), store.ingest() as w:
        w._file = _FullDisk(w._file)  # type: ignore[assignment]
        w.write(b"x" * 1024)
        raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path / "tmp") == []
