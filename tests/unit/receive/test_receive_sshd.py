"""paas.receive.sshd: ``sshd -T`` output, AuthorizedKeysFile tokens, and the audit of the
files sshd reads (pure: no sshd runs here); the forced command keeps settings that came
from the settings file out of key lines."""

from __future__ import annotations

import pytest
from test_receive_sshkeys import ed25519

from paas.receive.sshd import SshdView, audit, expand_files, parse_sshd_t, sshd_argv
from paas.receive.sshkeys import build_line, parse_public_key, ssh_command_for

SSHD_T = """port 22
pubkeyauthentication yes
authorizedkeyscommand none
authorizedkeysfile .ssh/authorized_keys /etc/ssh/keys/%u %h/extra %%odd %U
"""


def test_sshd_argv_asks_for_the_users_match_blocks() -> None:
    assert sshd_argv("/usr/sbin/sshd", "/etc/ssh/sshd_config", "paas") == [
        "/usr/sbin/sshd", "-T", "-f", "/etc/ssh/sshd_config", "-C",
        "user=paas,host=localhost,addr=127.0.0.1"]


def test_parse_and_expand_the_key_files() -> None:
    conf = parse_sshd_t(SSHD_T)
    assert conf["authorizedkeyscommand"] == ["none"]
    assert expand_files(conf["authorizedkeysfile"], "paas", "/home/paas", 998) == (
        "/home/paas/.ssh/authorized_keys", "/etc/ssh/keys/paas", "/home/paas/extra",
        "/home/paas/%odd", "/home/paas/998")
    assert expand_files(["none"], "paas", "/home/paas", 1) == ()


PAAS_FILE = "/home/paas/.ssh/authorized_keys"
COMMAND = "sudo -n env PAAS_ROOT=/var/lib/paas /usr/local/bin/paas git:ssh-command --key alice"


def test_audit_of_a_working_setup() -> None:
    alice = build_line("alice", parse_public_key(ed25519(1)), COMMAND)
    view = SshdView("paas", "/etc/ssh/sshd_config", files=(PAAS_FILE,))
    lines = audit(view, PAAS_FILE, lambda p: [alice] if p == PAAS_FILE else [])
    assert [(k.name, k.authenticates, k.note) for k in lines] == [("alice", True, "")]


def test_audit_flags_keys_sshd_never_reads_and_keys_paas_did_not_write() -> None:
    """The issue's case: keys written to PAAS_ROOT/ssh/authorized_keys while sshd reads
    the paas user's own file, where a hand-added key without forced command sits."""
    ours = "/var/lib/paas/ssh/authorized_keys"
    alice = build_line("alice", parse_public_key(ed25519(1)), COMMAND)
    shell = ed25519(2, "admin@laptop")
    pinned = 'command="/usr/bin/backup" ' + ed25519(3, "backup")
    content = {ours: [alice], PAAS_FILE: ["# by hand", shell, pinned, ""]}
    view = SshdView("paas", "/etc/ssh/sshd_config", files=(PAAS_FILE,))
    lines = audit(view, ours, lambda p: content.get(p, []))
    assert [(k.file, k.name, k.authenticates) for k in lines] == [
        (PAAS_FILE, "", True), (PAAS_FILE, "", True), (ours, "alice", False)]
    assert lines[0].note == "not added by paas, no forced command: a login shell as paas"
    assert lines[1].note == "not added by paas (a forced command of its own)"
    assert lines[2].note == f"sshd does not read this file for user paas (it reads {PAAS_FILE})"
    assert lines[0].fingerprint.startswith("SHA256:")


def test_audit_flags_a_paas_line_whose_command_was_changed() -> None:
    line = build_line("alice", parse_public_key(ed25519(1)), "/bin/bash")
    view = SshdView("paas", "c", files=(PAAS_FILE,))
    (k,) = audit(view, PAAS_FILE, lambda p: [line])
    assert k.note == "its forced command is not paas git:ssh-command"


def test_audit_when_sshd_cannot_be_asked() -> None:
    alice = build_line("alice", parse_public_key(ed25519(1)), COMMAND)
    view = SshdView("paas", "c", error="the ssh user paas does not exist")
    (k,) = audit(view, PAAS_FILE, lambda p: [alice])
    assert not k.authenticates and "the ssh user paas does not exist" in k.note


@pytest.mark.parametrize("from_file", [(), ("PAAS_PIDS_DEFAULT", "PAAS_ROOT")])
def test_settings_from_the_file_stay_out_of_the_forced_command(
        from_file: tuple[str, ...]) -> None:
    """git:ssh-command reads the settings file itself; a production line stays
    ``env PAAS_ROOT=... paas ...`` so the sudoers rule matches it."""
    env = {"PAAS_BIN": "/usr/local/bin/paas", "PAAS_SSH_SUDO": "1",
           "PAAS_PIDS_DEFAULT": "4096", "PAAS_SSHD_CONFIG": "/x", "PAAS_ROOT": "/var/lib/paas"}
    cmd = ssh_command_for(env, "/var/lib/paas", "alice", "", "", from_file=from_file)
    if from_file:
        assert cmd == COMMAND
    else:  # set in the environment: embedded, as before
        assert "PAAS_PIDS_DEFAULT=4096" in cmd and "PAAS_SSHD_CONFIG" not in cmd


def test_listener_processes_by_their_title() -> None:
    from paas.receive.sshd import listener_argv

    title = "sshd: /usr/sbin/sshd -D -e -f /tmp/x/sshd_config [listener] 0 of 10-100 startups"
    assert listener_argv([title]) == ["/usr/sbin/sshd", "-D", "-e", "-f", "/tmp/x/sshd_config"]
    assert listener_argv(["/usr/sbin/sshd", "-D"]) == ["/usr/sbin/sshd", "-D"]
    assert listener_argv(["sshd: root@notty"]) is None
    assert listener_argv(["sshd: paas [priv]"]) is None
    assert listener_argv(["/usr/bin/notsshd"]) is None
    assert listener_argv([]) is None
