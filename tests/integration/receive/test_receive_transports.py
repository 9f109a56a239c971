"""What each transport refuses: ssh keys (management, forced command, no shell), smart
HTTP auth and services. Shares the module-scoped servers of conftest."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from receive_helpers import HttpServer, Instance, Sshd, Worktree, git_env


@pytest.fixture(scope="module")
def key(instance: Instance, sshd: Sshd) -> str:
    instance.cli("ssh-keys:add", "tester", str(sshd.key) + ".pub")
    return "tester"


def ssh(sshd: Sshd, *command: str) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-i", str(sshd.key), "-p", str(sshd.port), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1",
            *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)


def test_key_management(instance: Instance, sshd: Sshd, key: str) -> None:
    listed = json.loads(instance.cli("ssh-keys:list", "--format", "json").stdout)
    keygen = subprocess.run(["ssh-keygen", "-l", "-f", str(sshd.key) + ".pub"],
                            capture_output=True, text=True, check=True).stdout.split()[1]
    keys = str(instance.root / "ssh" / "authorized_keys")
    assert listed == [{"name": "tester", "fingerprint": keygen, "type": "ssh-ed25519",
                       "file": keys, "authenticates": True, "note": ""}]
    table = instance.cli("ssh-keys:list").stdout.splitlines()
    assert table[0].split() == ["NAME", "FINGERPRINT", "NOTE"]
    assert table[1].split() == ["tester", keygen]
    dup = instance.cli("ssh-keys:add", "other", str(sshd.key) + ".pub", check=False)
    assert dup.returncode == 4 and "already registered as 'tester'" in dup.stderr
    bad = instance.cli("ssh-keys:add", "x", "-", input="not a key\n", check=False)
    assert bad.returncode == 2
    private = instance.cli("ssh-keys:add", "x", str(sshd.key), check=False)
    assert private.returncode == 2 and "private key" in private.stderr
    line = (instance.root / "ssh" / "authorized_keys").read_text().splitlines()[0]
    assert line.startswith('restrict,command="env ') and line.endswith(" paas-key:tester")
    assert "git:ssh-command --key tester" in line


@pytest.mark.parametrize("command", [
    (),  # an interactive login
    ("ls", "/"),
    ("git-receive-pack 'a;touch /tmp/paas-pwned'",),
    ("git-receive-pack '../x'",),
    ("git-upload-archive 'x'",),
])
def test_forced_command_refuses_everything_else(sshd: Sshd, key: str, command: tuple[str, ...],
                                                instance: Instance) -> None:
    res = ssh(sshd, *command)
    assert res.returncode != 0
    assert "error:" in res.stderr
    assert not (instance.root / "repos" / "x.git").exists()
    assert not (instance.root.parent / "paas-pwned").exists()


def test_clone_over_ssh_is_read_only(sshd: Sshd, key: str, instance: Instance,
                                     worktree: Callable[..., Worktree]) -> None:
    w = worktree(sshd.git_env(git_env()))
    sha = w.commit("to clone")
    w.git("push", f"ssh://root@127.0.0.1:{sshd.port}/cloneme", "main")
    w.git("clone", "-q", f"ssh://root@127.0.0.1:{sshd.port}/cloneme.git", "copy")
    assert w.git("-C", "copy", "rev-parse", "HEAD").stdout.strip() == sha
    res = w.git("clone", f"ssh://root@127.0.0.1:{sshd.port}/nothere", "copy2", check=False)
    assert res.returncode != 0 and "no repository" in res.stderr


def test_removed_key_cannot_push(instance: Instance, sshd: Sshd,
                                 worktree: Callable[..., Worktree]) -> None:
    instance.cli("ssh-keys:add", "temp", str(sshd.key) + ".pub", check=False)
    w = worktree(sshd.git_env(git_env()))
    w.commit("x")
    names = [k["name"] for k in json.loads(instance.cli("ssh-keys:list", "--format",
                                                        "json").stdout)]
    for name in names:
        instance.cli("ssh-keys:remove", name)
    res = w.git("push", f"ssh://root@127.0.0.1:{sshd.port}/gone", "main", check=False)
    assert res.returncode != 0 and "Permission denied" in res.stderr
    assert instance.cli("ssh-keys:remove", "tester", check=False).returncode == 3
    for name in names:  # restore for the module's other tests
        instance.cli("ssh-keys:add", name, str(sshd.key) + ".pub")


def _get(url: str, auth: str = "") -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url)
    if auth:
        import base64

        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def test_http_needs_a_token(instance: Instance, http_server: HttpServer,
                            worktree: Callable[..., Worktree]) -> None:
    token = instance.cli("auth:add", "deployer").stdout.strip()
    listed = json.loads(instance.cli("auth:list", "--format", "json").stdout)
    assert "deployer" in [t["name"] for t in listed]
    assert token not in (instance.root / "auth" / "tokens.json").read_text()
    base = f"http://127.0.0.1:{http_server.port}/web.git/info/refs?service=git-receive-pack"
    status, headers = _get(base)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert _get(base, "deployer:wrong")[0] == 401
    assert _get(base, f"deployer:{token}")[0] == 200
    upload = f"http://127.0.0.1:{http_server.port}/web.git/info/refs?service=git-upload-pack"
    assert _get(upload, f"deployer:{token}")[0] == 403
    dumb = f"http://127.0.0.1:{http_server.port}/web.git/info/refs"
    assert _get(dumb, f"deployer:{token}")[0] == 403

    w = worktree()
    w.commit("anonymous")
    res = w.git("push", http_server.url("anon"), "main", check=False)
    assert res.returncode != 0
    assert "Authentication failed" in res.stderr or "could not read Username" in res.stderr
    res = w.git("push", http_server.url("anon", "deployer:wrong"), "main", check=False)
    assert res.returncode != 0
    assert instance.repo_ref("anon", "refs/heads/main") is None
    res = w.git("clone", http_server.url("anon", f"deployer:{token}"), "c", check=False)
    assert res.returncode != 0
    instance.cli("auth:remove", "deployer")
    assert _get(base, f"deployer:{token}")[0] == 401
