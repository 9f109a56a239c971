"""The key file sshd reads (issue 12, item 7), with a real sshd and git.

The attack, as a new user met it: ``paas ssh-keys:add`` from a non-login root shell
(no /etc/profile.d variables) exited 0 but wrote a file sshd never reads, and the push
got "Permission denied (publickey)". Here sshd reads the ssh user's own file (as
install.sh's drop-in says, ``/home/paas/.ssh/authorized_keys`` on a real host; a file in
a temp dir here), and the settings come from a paas.conf (``PAAS_CONFIG``), the way
install.sh writes /etc/paas/paas.conf. Every paas command runs with ``env -i`` and only
PATH, HOME, PYTHONPATH (this checkout), PAAS_CONFIG and PAAS_ROOT (so that running this
test against older code can never touch /var/lib/paas).

Then ``ssh-keys:list`` must show what really authenticates and ``paas report`` must say
when the file sshd reads is not paas's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prereq import require
from procs import free_port, sshd_privsep_dir, start_sshd, stop
from receive_helpers import SSHD, Instance, Sshd, Worktree, git_env


@dataclass
class Host:
    """An sshd that reads ``user_keys`` (the ssh user's own file), and a paas.conf."""

    sshd: Sshd
    user_keys: Path
    conf: Path
    instance: Instance

    def write_conf(self, **settings: str) -> None:
        self.conf.write_text("# as install.sh writes it\n"
                             + "".join(f"{k}={v}\n" for k, v in settings.items()))
        self.conf.chmod(0o644)

    def paas(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``paas ARGS`` as from a non-login root shell: env -i, PATH and HOME only
        (plus the test seams named in the module docstring)."""
        keep = {"PATH": os.environ["PATH"], "HOME": "/root",
                "PYTHONPATH": self.instance.env["PYTHONPATH"], "PAAS_CONFIG": str(self.conf),
                "PAAS_ROOT": str(self.instance.root)}
        res = subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in keep.items()),
                              sys.executable, "-m", "paas", *args],
                             capture_output=True, text=True, timeout=60, check=False)
        if check and res.returncode != 0:
            raise AssertionError(f"paas {' '.join(args)} exited {res.returncode}:\n"
                                 f"{res.stdout}{res.stderr}")
        return res


@pytest.fixture(scope="module")
def host(instance: Instance) -> Iterator[Host]:
    require(SSHD, "ssh", "ssh-keygen", "git")
    work = Path(tempfile.mkdtemp(prefix="paas-keysfile-"))
    privsep = contextlib.ExitStack()
    proc = None
    try:
        privsep.enter_context(sshd_privsep_dir())
        for name in ("host_key", "id_pusher"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pusher",
                            "-f", str(work / name)], check=True)
        user_keys = work / "home" / ".ssh" / "authorized_keys"
        port = free_port()
        proc = start_sshd(SSHD, work, port, work / "host_key", user_keys)
        yield Host(Sshd(port=port, key=work / "id_pusher", workdir=work), user_keys,
                   work / "paas.conf", instance)
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
        privsep.close()


def _settings(host: Host, **extra: str) -> dict[str, str]:
    """What install.sh puts in paas.conf, for this host (the ssh user is root here:
    the test sshd permits root's forced commands only)."""
    return {"PAAS_ROOT": str(host.instance.root), "PAAS_INSTANCE": host.instance.env[
        "PAAS_INSTANCE"], "PAAS_SSH_USER": "root", "PAAS_SSHD_CONFIG": str(
        host.sshd.workdir / "sshd_config"), "PAAS_RECEIVE_HOOK": "receive_hook:hook", **extra}


def _check(report: subprocess.CompletedProcess[str], name: str) -> dict[str, Any]:
    doc = json.loads(report.stdout)
    found: dict[str, Any] = next(c for c in doc["checks"] if c["name"] == name)
    return found


@pytest.fixture
def worktree(tmp_path: Path) -> Callable[[Host], Worktree]:
    def make(host: Host) -> Worktree:
        return Worktree(tmp_path / "w", host.sshd.git_env(git_env()))

    return make


def test_ssh_keys_add_from_a_non_login_shell_writes_the_file_sshd_reads(
        host: Host, worktree: Callable[[Host], Worktree]) -> None:
    host.write_conf(**_settings(host, PAAS_AUTHORIZED_KEYS=str(host.user_keys)))
    host.paas("ssh-keys:add", "pusher", str(host.sshd.key) + ".pub")
    w = worktree(host)
    sha = w.commit("over real sshd")
    res = w.git("push", f"ssh://root@127.0.0.1:{host.sshd.port}/keysapp", "main", check=False)
    assert res.returncode == 0, res.stderr  # old code: Permission denied (publickey)
    assert host.instance.repo_ref("keysapp", "refs/heads/main") == sha
    line = host.user_keys.read_text().splitlines()[0]
    assert line.endswith(" paas-key:pusher")
    # the settings file is read by git:ssh-command itself: none of it is in the line
    # (only what the environment set: PAAS_CONFIG and PAAS_ROOT here)
    assert "PAAS_RECEIVE_HOOK" not in line and "PAAS_INSTANCE" not in line

    listed = json.loads(host.paas("ssh-keys:list", "--format", "json").stdout)
    assert [(k["name"], k["file"], k["authenticates"], k["note"]) for k in listed] == [
        ("pusher", str(host.user_keys), True, "")]
    report = host.paas("report", "--format", "json", check=False)
    sshd = _check(report, "sshd")
    assert sshd["ok"] and str(host.user_keys) in sshd["value"], sshd
    host.paas("ssh-keys:remove", "pusher")


def test_list_and_report_say_when_sshd_reads_another_file(host: Host) -> None:
    """The defect's own shape: PAAS_AUTHORIZED_KEYS unset, so keys go to
    PAAS_ROOT/ssh/authorized_keys, which this sshd never reads; meanwhile a key added by
    hand to the file sshd does read lets its owner in with a shell."""
    host.write_conf(**_settings(host))
    host.user_keys.parent.mkdir(parents=True, exist_ok=True)
    admin = subprocess.run(["ssh-keygen", "-y", "-f", str(host.sshd.workdir / "host_key")],
                           capture_output=True, text=True, check=True).stdout.strip()
    host.user_keys.write_text(f"{admin} admin@laptop\n")
    host.paas("ssh-keys:add", "lost", str(host.sshd.key) + ".pub")  # exit 0, as before

    table = host.paas("ssh-keys:list").stdout.splitlines()
    assert table[0].split() == ["NAME", "FINGERPRINT", "NOTE"]
    rows = json.loads(host.paas("ssh-keys:list", "--format", "json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name[""]["note"] == "not added by paas, no forced command: a login shell as root"
    assert by_name[""]["authenticates"] is True
    lost = by_name["lost"]
    assert not lost["authenticates"]
    assert lost["note"] == f"sshd does not read this file for user root (it reads " \
                           f"{host.user_keys})"

    report = host.paas("report", "--format", "json", check=False)
    assert report.returncode != 0
    sshd = _check(report, "sshd")
    assert not sshd["ok"] and "added keys do not authenticate" in sshd["problem"], sshd
    assert f"PAAS_AUTHORIZED_KEYS={host.user_keys} in {host.conf}" in sshd["fix"]
    text = host.paas("report", check=False).stdout
    assert f" !     sshd reads {host.user_keys} for user root, not " in text
    host.paas("ssh-keys:remove", "lost")
    host.user_keys.unlink()


def test_a_settings_file_others_can_write_is_refused_in_one_line(host: Host) -> None:
    host.write_conf(**_settings(host))
    host.conf.chmod(0o666)
    res = host.paas("ssh-keys:list", check=False)
    assert res.returncode == 5
    assert res.stderr.strip().splitlines() == [
        (f"error: {host.conf} may be changed by others than root: its settings are not used "
        f"(chown root:root {host.conf} && chmod 644 {host.conf})")]
    host.conf.write_text('PAAS_SSH_USER="root"\n')
    host.conf.chmod(0o644)
    res = host.paas("ssh-keys:list", check=False)
    assert res.returncode == 2 and "line 1: the value of PAAS_SSH_USER is quoted" in res.stderr
