"""SSH_ORIGINAL_COMMAND parsing and app name validation: what reaches a path."""

from __future__ import annotations

import pytest

from paas.errors import InvalidArgument
from paas.receive.names import GitCommand, parse_ssh_command, repo_path, validate_app


@pytest.mark.parametrize("command", [
    "git-receive-pack 'myapp'",
    "git-receive-pack '/myapp'",
    "git-receive-pack 'myapp.git'",
    "git-receive-pack '/myapp.git'",
    "git-receive-pack '/myapp.git/'",
    "git receive-pack 'myapp'",
])
def test_receive_pack_shapes(command: str) -> None:
    assert parse_ssh_command(command) == GitCommand("git-receive-pack", "myapp")
    assert parse_ssh_command(command).writes


def test_upload_pack_is_read_only() -> None:
    cmd = parse_ssh_command("git-upload-pack 'web-1'")
    assert cmd == GitCommand("git-upload-pack", "web-1") and not cmd.writes
    with pytest.raises(InvalidArgument, match="cloning"):
        parse_ssh_command("git-upload-pack 'web-1'", allow_read=False)


@pytest.mark.parametrize("command", [
    None,
    "",
    "bash",
    "ls -la",
    "git-receive-pack",
    "git-receive-pack myapp",  # unquoted
    "git-receive-pack 'a;rm -rf /'",
    "git-receive-pack 'a' ; rm -rf /",
    "git-receive-pack 'a'; rm -rf /",
    "git-receive-pack '../x'",
    "git-receive-pack '/../x'",
    "git-receive-pack '../../etc'",
    "git-receive-pack 'a/b'",
    "git-receive-pack '$(reboot)'",
    "git-receive-pack '`id`'",
    "git-receive-pack 'Myapp'",
    "git-receive-pack '1app'",
    "git-receive-pack ''",
    "git-receive-pack '.git'",
    "git-receive-pack 'a\nb'",
    "git-receive-pack 'app' 'other'",
    "git-upload-archive 'app'",
    "scp -t /etc",
    "git-receive-pack '" + "a" * 64 + "'",
    "git-receive-pack 'app\x00'",
])
def test_refused_commands(command: str | None) -> None:
    with pytest.raises(InvalidArgument):
        parse_ssh_command(command)


@pytest.mark.parametrize("name", ["a", "my-app", "a1", "a" * 63])
def test_valid_app_names(name: str) -> None:
    assert validate_app(name) == name


@pytest.mark.parametrize("name", ["", "A", "1a", "-a", "a_b", "a.b", "a/b", "..", "a" * 64,
                                  "a\n", " a"])
def test_invalid_app_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_app(name)


def test_repo_path_validates_before_joining() -> None:
    assert repo_path("/srv/paas", "web") == "/srv/paas/repos/web.git"
    with pytest.raises(InvalidArgument):
        repo_path("/srv/paas", "../etc")
