"""authorized_keys lines: building, parsing, foreign lines kept, public key validation."""

from __future__ import annotations

import base64
import os
import shlex
import struct
from pathlib import Path

import pytest

from paas.errors import AlreadyExists, InvalidArgument, NotFound
from paas.receive.sshkeys import (
    KeyStore,
    PublicKey,
    build_line,
    command_env,
    fingerprint,
    forced_command,
    paas_argv,
    parse_line,
    parse_public_key,
    ssh_command_for,
)


def _ssh_string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def ed25519(seed: int = 1, comment: str = "me@laptop") -> str:
    blob = _ssh_string(b"ssh-ed25519") + _ssh_string(bytes([seed]) * 32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}".strip()


def rsa(bits: int) -> str:
    n = (1 << (bits - 1)) | 1
    blob = _ssh_string(b"ssh-rsa") + _ssh_string(b"\x01\x00\x01") + _ssh_string(
        b"\x00" + n.to_bytes(bits // 8, "big"))
    return f"ssh-rsa {base64.b64encode(blob).decode()}"


def test_parse_public_key() -> None:
    key = parse_public_key("# my key\n\n" + ed25519() + "\n")
    assert key.type == "ssh-ed25519" and key.comment == "me@laptop"
    assert key.fingerprint.startswith("SHA256:") and "=" not in key.fingerprint
    assert parse_public_key(rsa(3072)).type == "ssh-rsa"


def test_fingerprint_format() -> None:
    # ssh-keygen -l: SHA256 of the decoded blob, base64 without padding (the
    # integration tests compare with ssh-keygen itself)
    fp = fingerprint(base64.b64encode(b"x").decode())
    assert fp == "SHA256:LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE"


@pytest.mark.parametrize("text, match", [
    ("", "exactly one"),
    (ed25519(1) + "\n" + ed25519(2), "exactly one"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
    ("ssh-foo AAAA", "not an OpenSSH public key"),
    ("ssh-dss AAAAB3NzaC1kc3M=", "not accepted"),
    ("ssh-ed25519 not-base64!", "malformed"),
    ("ssh-ed25519 " + base64.b64encode(_ssh_string(b"ssh-rsa")).decode(), "does not match"),
    ("ssh-ed25519 " + base64.b64encode(_ssh_string(b"ssh-ed25519") + b"\0\0").decode(),
     "truncated"),
    (rsa(1024), "2048 bits"),
    ('command="sh" ' + ed25519(), "not an OpenSSH public key"),
])
def test_bad_public_keys(text: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        parse_public_key(text)


def test_forced_command_quotes_every_word() -> None:
    cmd = forced_command(["/opt/paas dir/bin/paas"], {"PAAS_ROOT": "/var/lib/it's"}, "alice")
    assert shlex.split(cmd) == ["env", "PAAS_ROOT=/var/lib/it's", "/opt/paas dir/bin/paas",
                                "git:ssh-command", "--key", "alice"]
    with pytest.raises(InvalidArgument):
        forced_command(["/bin/paas"], {"PAAS_ROOT": "/x\nssh-rsa AAAA"}, "alice")
    with pytest.raises(InvalidArgument):
        forced_command(["/bin/paas"], {}, "alice bob")


def test_line_round_trip_with_quotes() -> None:
    key = parse_public_key(ed25519())
    command = forced_command(["/usr/local/bin/paas"], {"PAAS_ROOT": '/srv/"odd" \'root\''}, "bob")
    line = build_line("bob", key, command)
    assert line.startswith('restrict,command="') and line.endswith(" paas-key:bob")
    assert "\n" not in line and "me@laptop" not in line
    parsed = parse_line(line)
    assert parsed is not None
    assert parsed.name == "bob" and parsed.command == command
    assert parsed.key.blob == key.blob and parsed.fingerprint == key.fingerprint
    assert shlex.split(parsed.command)[1] == 'PAAS_ROOT=/srv/"odd" \'root\''


@pytest.mark.parametrize("line", [
    "",
    "# comment paas-key:x",
    ed25519(),
    'command="/bin/true" ' + ed25519(3, "paas-key:evil"),
    'restrict,command="x" ssh-ed25519 AAAA paas-key:bad name',
])
def test_foreign_lines_are_not_paas_keys(line: str) -> None:
    assert parse_line(line) is None


def test_paas_argv_and_env() -> None:
    assert paas_argv({"PAAS_BIN": "/usr/local/bin/paas"}, "/x/__main__.py", "/py") == [
        "/usr/local/bin/paas"]
    assert paas_argv({}, "/repo/paas/__main__.py", "/venv/bin/python") == [
        "/venv/bin/python", "-m", "paas"]
    assert paas_argv({}, "/usr/local/bin/paas", "/py") == ["/usr/local/bin/paas"]
    env = {"PAAS_INSTANCE": "t1", "PAAS_BIN": "/b", "HOME": "/root", "PYTHONPATH": "/repo",
           "PAAS_AUTHORIZED_KEYS": "/k", "PAAS_SSH_HOST": "h", "PAAS_HTTP_GIT_PORT": "1"}
    assert command_env(env, "/srv") == {"PAAS_INSTANCE": "t1", "PAAS_ROOT": "/srv",
                                        "PYTHONPATH": "/repo"}
    plain = ssh_command_for({"PAAS_BIN": "/usr/local/bin/paas"}, "/var/lib/paas", "k", "", "")
    assert plain == "env PAAS_ROOT=/var/lib/paas /usr/local/bin/paas git:ssh-command --key k"
    sudo = ssh_command_for({"PAAS_BIN": "/usr/local/bin/paas", "PAAS_SSH_SUDO": "1"},
                           "/var/lib/paas", "k", "", "")
    assert sudo == "sudo -n " + plain


def test_store_keeps_foreign_lines_and_refuses_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "ssh" / "authorized_keys"
    path.parent.mkdir()
    foreign = ["# managed by hand", ed25519(9, "admin"), ""]
    path.write_text("\n".join(foreign) + "\n")
    path.chmod(0o640)
    store = KeyStore(str(path))
    a = parse_public_key(ed25519(1))
    store.add("alice", a, "env PAAS_ROOT=/x paas git:ssh-command --key alice")
    assert [k.name for k in store.list()] == ["alice"]
    with pytest.raises(AlreadyExists, match="named 'alice'"):
        store.add("alice", parse_public_key(ed25519(2)), "c")
    with pytest.raises(AlreadyExists, match="registered as 'alice'"):
        store.add("alice2", a, "c")
    with pytest.raises(AlreadyExists, match="not added by paas"):
        store.add("admin", parse_public_key(ed25519(9)), "c")
    store.add("bob", parse_public_key(ed25519(2)), "c")
    lines = path.read_text().splitlines()
    assert lines[:3] == foreign and len(lines) == 5
    assert os.stat(path).st_mode & 0o777 == 0o640  # mode kept across rewrites
    store.remove("alice")
    assert [k.name for k in store.list()] == ["bob"]
    assert path.read_text().splitlines()[:3] == foreign
    with pytest.raises(NotFound):
        store.remove("alice")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".authorized_keys.")]


def test_store_without_file(tmp_path: Path) -> None:
    store = KeyStore(str(tmp_path / "new" / "authorized_keys"))
    assert store.list() == []
    store.add("k", PublicKey("ssh-ed25519", parse_public_key(ed25519()).blob), "c")
    assert os.stat(store.path).st_mode & 0o777 == 0o644
