"""paas.conffile: the strict PAAS_NAME=value format, file checks, and the environment
overriding the file (temp files only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paas import conffile
from paas.config import load_context
from paas.errors import FailedPrecondition, InvalidArgument


def test_parse_lines_comments_and_blanks() -> None:
    text = ("# a comment\n\n   \n  # indented comment\nPAAS_ROOT=/srv/paas\n"
            "PAAS_SSH_USER=paas\r\nPAAS_EMPTY=\nPAAS_URLISH=a=b#c d\n")
    assert conffile.parse(text) == {"PAAS_ROOT": "/srv/paas", "PAAS_SSH_USER": "paas",
                                    "PAAS_EMPTY": "", "PAAS_URLISH": "a=b#c d"}


@pytest.mark.parametrize(("line", "message"), [
    ("PAAS_ROOT", "not a NAME=value line"),
    ("export PAAS_ROOT=/x", "'export' is shell syntax"),
    ("ROOT=/x", "is not a paas setting"),
    ("paas_root=/x", "is not a paas setting"),
    ("PAAS_=x", "is not a paas setting"),
    ("PAAS_1X=x", "is not a paas setting"),
    ("PAAS_ROOT =/x", "is not a paas setting"),
    (" PAAS_ROOT=/x", "is not a paas setting"),
    ("PAAS_ROOT= /x", "starts or ends with a space"),
    ("PAAS_ROOT=/x ", "starts or ends with a space"),
    ('PAAS_ROOT="/x"', "is quoted"),
    ("PAAS_ROOT='/x'", "is quoted"),
    ("PAAS_ROOT=/x\x1b[31m", "control character"),
    ("PAAS_CONFIG=/other", "cannot be set in the file it names"),
])
def test_parse_refuses_anything_else_naming_the_line(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as exc:
        conffile.parse(f"# first\n{line}\n", "/etc/paas/paas.conf")
    assert exc.value.message.startswith("/etc/paas/paas.conf, line 2: ")
    assert exc.value.hint


def test_a_setting_twice_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="line 2: PAAS_ROOT is set twice"):
        conffile.parse("PAAS_ROOT=/a\nPAAS_ROOT=/b\n")


def _conf(tmp_path: Path, text: str, mode: int = 0o644) -> Path:
    path = tmp_path / "paas.conf"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _conf(tmp_path, "PAAS_ROOT=/from/file\nPAAS_SSH_USER=git\nPAAS_RUNC=/file/runc\n")
    env = {"PAAS_CONFIG": str(path), "PAAS_ROOT": "/from/env", "PAAS_RUNC": "",
           "HOME": "/root"}
    taken = conffile.apply(env)
    assert taken == {"PAAS_SSH_USER": "git", "PAAS_RUNC": "/file/runc"}  # "" is unset
    assert env["PAAS_ROOT"] == "/from/env" and env["PAAS_SSH_USER"] == "git"
    # every setting read through the environment sees the file's values
    assert load_context(env).runc == "/file/runc"
    assert load_context(env).paths.root == "/from/env"


def test_the_file_alone_configures_a_shell_without_paas_variables(tmp_path: Path) -> None:
    path = _conf(tmp_path, "PAAS_ROOT=/srv/paas\nPAAS_INSTANCE=srv1\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "PAAS_CONFIG": str(path)}
    conffile.apply(env)
    ctx = load_context(env)
    assert (ctx.paths.root, ctx.instance) == ("/srv/paas", "srv1")


def test_missing_file_is_no_settings(tmp_path: Path) -> None:
    env = {"PAAS_CONFIG": str(tmp_path / "nope.conf")}
    assert conffile.apply(env) == {} and env == {"PAAS_CONFIG": str(tmp_path / "nope.conf")}


def test_a_file_others_may_write_is_not_used(tmp_path: Path) -> None:
    path = _conf(tmp_path, "PAAS_RUNC=/tmp/evil\n", mode=0o666)
    with pytest.raises(FailedPrecondition, match="may be changed by others") as exc:
        conffile.read(str(path))
    assert "chmod 644" in exc.value.hint
    path.chmod(0o664)
    with pytest.raises(FailedPrecondition):
        conffile.read(str(path))
    if os.geteuid() == 0:
        path.chmod(0o644)
        os.chown(path, 1234, 1234)
        with pytest.raises(FailedPrecondition, match="may be changed by others"):
            conffile.read(str(path))


def test_binary_and_huge_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bin.conf"
    path.write_bytes(b"PAAS_X=\xff\n")
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        conffile.read(str(path))
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(FailedPrecondition, match="larger than 1 MiB"):
        conffile.read(str(path))
