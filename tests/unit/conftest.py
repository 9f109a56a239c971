"""Fixtures shared by the unit tests of several stages."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """The sentinel of the escape tests: a directory next to the destination (or the
    store) holding a victim file that no archive or copy may touch."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim").write_text("original")
    return d
