"""The app files paas reads itself: a file that is not UTF-8 is named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from paas.build.appfiles import MAX_BYTES, read_app_file
from paas.errors import InvalidArgument


def test_utf8_text_is_read_and_a_missing_file_or_a_symlink_is_empty(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: caf\u00e9 serve\n", encoding="utf-8")
    assert read_app_file(str(tmp_path / "Procfile")) == "web: caf\u00e9 serve\n"
    assert read_app_file(str(tmp_path / "app.json")) == ""
    (tmp_path / "link").symlink_to("/etc/passwd")
    assert read_app_file(str(tmp_path / "link")) == ""
    (tmp_path / "dir").mkdir()
    assert read_app_file(str(tmp_path / "dir")) == ""


def test_not_utf8_names_the_file_and_the_line(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_bytes(b'{\n  "name": "caf\xe9"\n}\n')  # latin-1
    with pytest.raises(InvalidArgument) as ei:
        read_app_file(str(tmp_path / "app.json"))
    assert ei.value.message == "app.json is not UTF-8 text (byte 0xe9 on line 2)"
    assert "save app.json as UTF-8" in ei.value.hint


def test_too_large(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(InvalidArgument, match="larger than 1 MiB"):
        read_app_file(str(tmp_path / "Procfile"))
