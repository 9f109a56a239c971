"""git push with the real git client, over ssh (a real sshd, the forced command of
``ssh-keys:add``) and over smart HTTP (gunicorn, a token from ``auth:add``): the same
behaviour on both transports."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from receive_helpers import HttpServer, Instance, Sshd, Worktree, git_env

ZERO = "0" * 40


@dataclass
class Remote:
    kind: str
    url: Callable[[str], str]
    env: dict[str, str]
    pusher: str


@pytest.fixture(scope="module")
def ssh_key_added(instance: Instance, sshd: Sshd) -> str:
    res = instance.cli("ssh-keys:add", "tester", str(sshd.key) + ".pub")
    return res.stdout.split()[1]


@pytest.fixture(scope="module")
def token(instance: Instance) -> str:
    return instance.cli("auth:add", "ci").stdout.strip()


@pytest.fixture(params=["ssh", "http"])
def remote(request: pytest.FixtureRequest, instance: Instance) -> Remote:
    if request.param == "ssh":
        sshd: Sshd = request.getfixturevalue("sshd")
        request.getfixturevalue("ssh_key_added")
        return Remote("ssh", lambda app: f"ssh://root@127.0.0.1:{sshd.port}/{app}",
                      sshd.git_env(git_env()), "tester")
    server: HttpServer = request.getfixturevalue("http_server")
    tok = request.getfixturevalue("token")
    return Remote("http", lambda app: server.url(app, f"ci:{tok}"), git_env(), "ci")


def remote_lines(stderr: str) -> list[str]:
    return [ln[len("remote: "):].strip() for ln in stderr.splitlines()
            if ln.startswith("remote: ")]


def test_push_deploys_and_streams_progress(remote: Remote, instance: Instance,
                                           worktree: Callable[..., Worktree]) -> None:
    app = f"stream-{remote.kind}"
    w = worktree(remote.env)
    sha = w.commit(f"first [wait:{remote.kind}]")
    seen = []

    def on_line(line: str) -> None:
        seen.append(line)
        if f"waiting for ack-{remote.kind}" in line:  # only ack what the pusher has seen
            (instance.root / f"ack-{remote.kind}").touch()

    code, stderr = w.push_streaming(remote.url(app), "main", on_line)
    assert code == 0, stderr
    lines = remote_lines(stderr)
    assert lines[:4] == [f"hook: refs/heads/main 0000000..{sha[:7]} pusher={remote.pusher}",
                         f"waiting for ack-{remote.kind}", "ack seen", "deployed"], stderr
    assert instance.repo_ref(app, "refs/heads/main") == sha
    pushes = [json.loads(ln) for ln in (instance.root / "pushes.jsonl").read_text().splitlines()]
    assert {"app": app, "ref": "refs/heads/main", "old": ZERO, "new": sha,
            "repo": str(instance.root / "repos" / f"{app}.git"),
            "pusher": remote.pusher} in pushes


def test_rejected_push_leaves_ref_and_next_push_works(remote: Remote, instance: Instance,
                                                      worktree: Callable[..., Worktree]) -> None:
    app = f"reject-{remote.kind}"
    w = worktree(remote.env)
    good = w.commit("good")
    w.git("push", remote.url(app), "main")
    w.commit("bad [reject]")
    res = w.git("push", remote.url(app), "main", check=False)
    assert res.returncode != 0
    assert "! [remote rejected] main -> main (build failed: the test said so)" in res.stderr
    assert remote_lines(res.stderr)[-2:] == ["building... failed", "hint: fix the app"]
    assert instance.repo_ref(app, "refs/heads/main") == good

    w.commit("crash [crash]")
    res = w.git("push", remote.url(app), "main", check=False)
    assert "! [remote rejected] main -> main (deploy failed)" in res.stderr
    assert "Traceback" not in res.stderr
    assert instance.repo_ref(app, "refs/heads/main") == good

    fixed = w.commit("fixed")
    res = w.git("push", remote.url(app), "main")
    assert "deployed" in remote_lines(res.stderr)
    assert instance.repo_ref(app, "refs/heads/main") == fixed


def test_other_branches_are_stored_and_main_is_not_deleted(
        remote: Remote, instance: Instance, worktree: Callable[..., Worktree]) -> None:
    app = f"branches-{remote.kind}"
    w = worktree(remote.env)
    main = w.commit("main")
    w.git("push", remote.url(app), "main")
    w.git("checkout", "-q", "-b", "feature")
    feature = w.commit("feature work")
    res = w.git("push", remote.url(app), "feature")
    assert "stored, not deployed" in remote_lines(res.stderr)
    assert instance.repo_ref(app, "refs/heads/feature") == feature
    assert instance.repo_ref(app, "refs/heads/main") == main

    res = w.git("push", remote.url(app), ":main", check=False)
    assert "! [remote rejected] main (the deploy branch cannot be deleted)" in res.stderr
    assert instance.repo_ref(app, "refs/heads/main") == main
    w.git("push", remote.url(app), ":feature")
    assert instance.repo_ref(app, "refs/heads/feature") is None
    fsck = subprocess.run(["git", "--git-dir", str(instance.root / "repos" / f"{app}.git"),
                           "fsck", "--strict"], capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr


def test_concurrent_pushes_to_one_repo(remote: Remote, instance: Instance,
                                       worktree: Callable[..., Worktree]) -> None:
    app = f"race-{remote.kind}"
    trees = [worktree(remote.env) for _ in range(3)]
    shas = []
    for i, w in enumerate(trees):
        w.git("checkout", "-q", "-b", f"b{i}")
        shas.append(w.commit(f"branch {i}"))
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda w=w, i=i: results.append(
        w.git("push", remote.url(app), f"b{i}", check=False))) for i, w in enumerate(trees)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    for i, sha in enumerate(shas):
        assert instance.repo_ref(app, f"refs/heads/b{i}") == sha
    fsck = subprocess.run(["git", "--git-dir", str(instance.root / "repos" / f"{app}.git"),
                           "fsck", "--strict"], capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr


def test_invalid_app_name_is_refused(remote: Remote, instance: Instance,
                                     worktree: Callable[..., Worktree]) -> None:
    w = worktree(remote.env)
    w.commit("x")
    res = w.git("push", remote.url("Bad_Name"), "main", check=False)
    assert res.returncode != 0
    assert not (instance.root / "repos" / "Bad_Name.git").exists()


def test_git_url_command(instance: Instance) -> None:
    env_cli = instance.cli
    out = env_cli("git:url", "web", check=True).stdout.strip()
    assert out.endswith(":web")
    res = env_cli("git:url", "web", "--http")
    assert res.stdout.strip().endswith("/web.git") and "credential.helper" in res.stderr
    res = env_cli("git:url", "web", "--http", "--name", "ci", "--token", "t0k")
    assert "://ci:t0k@" in res.stdout
