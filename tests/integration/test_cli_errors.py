"""Bad input and a wrong user get one line, the documented exit code, no traceback
(issue 12, 8): the CLI as a non-root user, ``image:save -o`` into a missing directory,
``image:build -f`` of a directory.

One instance for the module (``engine``: debian:bookworm imported, paasd running).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOBODY = 65534


def as_nobody(engine, *args: str) -> subprocess.CompletedProcess[str]:
    """``paas ARGS`` as an unprivileged user (setpriv), in the instance's environment."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is missing"
    return subprocess.run([setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           sys.executable, "-m", "paas", *args], env=engine.env, cwd="/",
                          capture_output=True, text=True, timeout=60, check=False)


def one_line(res: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.parametrize(("args", "code"), [
    (("image:ls",), 5),
    (("container:ps", "-a"), 5),
    (("apps:list",), 5),
    (("daemon:status",), 5),  # was "paasd is not running": it is, we may not ask it
    (("daemon:start",), 5),
    (("report",), 5),
    (("git:http-serve", "--bind", "127.0.0.1:1"), 5),
    (("container:run", "--rm", "debian:bookworm", "true"), 125),
])
def test_a_non_root_user_is_told_paas_must_run_as_root(engine, args, code) -> None:
    res = as_nobody(engine, *args)
    assert res.returncode == code, res.stderr
    line = one_line(res)
    assert line.startswith("error: paas must run as root: "), line
    assert line.endswith("(run it as root, e.g. with sudo)")


def test_help_still_works_for_a_non_root_user(engine) -> None:
    for args in (("image:ls", "--help"), ("container:run", "--help"), ("--help",)):
        res = as_nobody(engine, *args)
        assert res.returncode == 0 and "usage:" in res.stdout, res.stderr


def test_image_save_into_a_missing_directory(engine, tmp_path: Path) -> None:
    res = engine("image:save", "debian:bookworm", "-o", str(tmp_path / "missing" / "x.tar"),
                 check=False)
    assert res.returncode == 2
    assert one_line(res) == (f"error: cannot write {tmp_path}/missing/x.tar: {tmp_path}/missing "
                             "is not a directory (create the directory first, or give -o a "
                             "path in one)")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("x")
    res = engine("image:save", "debian:bookworm", "-o", str(tmp_path / "file" / "x.tar"),
                 check=False)
    assert res.returncode == 2 and "is not a directory" in one_line(res)
    assert os.listdir(tmp_path) == ["file"]


def test_image_build_with_a_directory_as_dockerfile(engine, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm\n")
    res = engine("image:build", "-t", "x:1", "-f", str(tmp_path), str(tmp_path), check=False)
    assert res.returncode == 2
    assert one_line(res) == f"error: {tmp_path} is not a file (give -f the Dockerfile's path)"


def test_image_load_of_a_missing_file(engine, tmp_path: Path) -> None:
    res = engine("image:load", "-i", str(tmp_path / "none.tar"), check=False)
    assert res.returncode == 3 and one_line(res).startswith("error: no such file: ")
