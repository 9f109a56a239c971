"""paas.modes: dirs and files get their modes at creation, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas import modes


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o027)  # clears o+x: a 0711 dir must still get it
    try:
        yield
    finally:
        os.umask(old)


def test_makedirs_gives_every_created_level_its_mode(tmp_path: Path, umask: None) -> None:
    modes.makedirs(str(tmp_path / "a" / "b" / "c"))
    assert [_mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    modes.makedirs(str(tmp_path / "t" / "u"), modes.TRAVERSE_DIR)
    assert _mode(tmp_path / "t") == _mode(tmp_path / "t" / "u") == 0o711


def test_makedirs_leaves_an_existing_dir_alone(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    modes.makedirs(str(d))
    assert _mode(d) == 0o755


def test_create_makes_a_root_only_file_and_keeps_an_existing_ones_mode(tmp_path: Path,
                                                                      umask: None) -> None:
    f = tmp_path / "f"
    os.close(modes.create(str(f)))
    assert _mode(f) == 0o600
    f.chmod(0o640)
    os.close(modes.create(str(f), os.O_WRONLY))
    assert _mode(f) == 0o640


def test_private_bundle_dir(tmp_path: Path, umask: None) -> None:
    modes.private_bundle_dir(str(tmp_path / "g"), os.getgid())
    st = (tmp_path / "g").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o710, os.getgid())
    modes.private_bundle_dir(str(tmp_path / "n"), None)
    assert _mode(tmp_path / "n") == 0o700
