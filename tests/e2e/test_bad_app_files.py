"""A pushed app whose Procfile or app.json is not UTF-8 (issue 12, 8: the push said only
"deploy failed"): the push is rejected before anything is built, naming the file, and
nothing of it is kept (no release, the branch does not move)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from e2e_helpers import AppRepo, Platform, repo_ref


@pytest.mark.parametrize(("name", "data", "line"), [
    ("Procfile", b"web: python3 app.py  # caf\xe9\n", 1),
    ("app.json", b'{\n  "description": "caf\xe9"\n}\n', 2),
])
def test_a_file_that_is_not_utf8_rejects_the_push_naming_it(
        platform: Platform, app_repo: Callable[..., AppRepo], name: str, data: bytes,
        line: int) -> None:
    app = f"latin1-{name.replace('.', '-').lower()}"
    repo = app_repo()
    (repo.path / name).write_bytes(data)
    repo.commit(f"a latin-1 {name}")
    res = repo.push(platform.http_url(app))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "! [remote rejected] main" in out, out
    assert f"{name} is not UTF-8 text (byte 0xe9 on line {line})" in out, out
    assert f"save {name} as UTF-8" in out
    assert "deploy failed" not in out
    assert "Building" not in out  # rejected before the build
    assert repo_ref(platform.root, app, "refs/heads/main") is None
    assert platform.release_versions(app) == []
    assert "Traceback" not in (platform.root / "run" / "paasd.log").read_text()
