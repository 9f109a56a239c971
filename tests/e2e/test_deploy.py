"""``git push`` to traffic, end to end: the real git client over smart HTTP and ssh,
buildpack builds on the stack image, releases cut over behind the instance's nginx.

The tests of this module share one instance (``platform``) and each uses its own app,
so they can run alone or in any order. Timings of the first deploy and a redeploy are
printed (``-s`` shows them) and kept in ``TIMINGS``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import pytest
from e2e_helpers import AppRepo, BackgroundPush, Platform, repo_ref

TIMINGS: dict[str, float] = {}


def deploy(platform: Platform, repo: AppRepo, app: str, *, ssh: bool = False,
           refspec: str = "main") -> str:
    """Push and expect a deploy; the push's output (git's stderr)."""
    if ssh:
        res = repo.push(platform.ssh_url(app), refspec, env=platform.ssh_git_env())
    else:
        res = repo.push(platform.http_url(app), refspec)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Application deployed" in out, out
    return out


def wait_body(platform: Platform, app: str, expect: str, timeout: float = 10) -> str:
    """The body of ``/`` once it contains ``expect``."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            r = platform.get(app)
            last = f"{r.status} {r.body!r}"
            if r.status == 200 and expect in r.body:
                return r.body
        except OSError as err:
            last = repr(err)
        if time.monotonic() > deadline:
            raise AssertionError(f"{app}: no 200 with {expect!r} within {timeout}s; last: {last}")
        time.sleep(0.1)


class Poller:
    """Requests ``/`` of an app in a thread while something else happens; every answer kept."""

    def __init__(self, platform: Platform, app: str) -> None:
        self.platform, self.app = platform, app
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                r = self.platform.get(self.app, timeout=5)
                self.answers.append((r.status, r.body.split(" ")[0].strip()))
            except OSError as err:
                self.answers.append((0, repr(err)))
            time.sleep(0.05)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_http_push_first_deploy_then_redeploy(platform: Platform,
                                              app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    started = time.monotonic()
    out = deploy(platform, repo, "hello")
    TIMINGS["first deploy"] = time.monotonic() - started
    assert "Created app hello" in out
    assert "http://hello.localhost:" in out
    assert wait_body(platform, "hello", "v1").split() == ["v1", "-", "web.1", "v1"]

    repo.commit("v2", VERSION="v2\n")
    # a client keeping its connection open across the deploy (a browser, wrk)
    kept = http.client.HTTPConnection("127.0.0.1", platform.http_port, timeout=5)
    assert _ask(kept, "hello").startswith("v1")
    local = kept.sock.getsockname()
    workers = nginx_workers(platform)
    with Poller(platform, "hello") as poll:
        started = time.monotonic()
        deploy(platform, repo, "hello")
        TIMINGS["redeploy"] = time.monotonic() - started
        wait_body(platform, "hello", "v2")
    # the deploy switched the app's service address: nginx was not reloaded and the
    # kept connection is still open, now answered by v2
    assert nginx_workers(platform) == workers
    assert _ask(kept, "hello").startswith("v2") and kept.sock.getsockname() == local
    kept.close()
    print(f"\nfirst deploy {TIMINGS['first deploy']:.1f}s, redeploy {TIMINGS['redeploy']:.1f}s")
    # zero downtime: every answer during the redeploy was a 200 from v1 or v2, in order
    assert poll.answers and all(s == 200 for s, _ in poll.answers), poll.answers
    versions = [v for _, v in poll.answers]
    assert versions == sorted(versions), versions
    assert platform.release_versions("hello") == [1, 2]
    assert [r["Process"] for r in platform.ps("hello")] == ["web.1"]


def _ask(conn: http.client.HTTPConnection, app: str) -> str:
    conn.request("GET", "/", headers={"Host": f"{app}.localhost"})
    resp = conn.getresponse()
    assert resp.status == 200
    return resp.read().decode()


def nginx_workers(platform: Platform) -> set[int]:
    """Pids of the instance's nginx workers (a reload replaces them all)."""
    master = (platform.root / "nginx" / "nginx.pid").read_text().strip()
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def reject(platform: Platform, repo: AppRepo, app: str) -> str:
    """Push and expect git to report the ref as rejected by the remote."""
    res = repo.push(platform.http_url(app))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "! [remote rejected] main" in out, out
    return out


def test_rejected_push_keeps_the_previous_release_serving(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    good = repo.head()
    deploy(platform, repo, "keep")
    wait_body(platform, "keep", "v1")
    repo.commit("broken build", VERSION="v2\n",
                Procfile="web: python3 -m http.server $PORT\nthis line has no process type\n")
    with Poller(platform, "keep") as poll:
        out = reject(platform, repo, "keep")
        time.sleep(0.5)
    assert "expected 'name: command'" in out
    assert poll.answers and set(poll.answers) == {(200, "v1")}, poll.answers
    assert repo_ref(platform.root, "keep", "refs/heads/main") == good
    assert platform.release_versions("keep") == [1]
    assert [(r["Process"], r["Release"]) for r in platform.ps("keep")] == [("web.1", "v1")]


def test_ssh_push_deploys(platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    out = deploy(platform, repo, "viassh", ssh=True)
    assert "Created app viassh" in out
    assert wait_body(platform, "viassh", "v1").split()[0] == "v1"
    rels = json.loads(platform.cli("releases", "viassh", "--format", "json").stdout)
    assert [(r["Version"], r["GitSha"], r["By"]) for r in rels] == [(1, repo.head(), "e2e")]


def test_push_to_another_branch_is_stored_not_deployed(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, repo, "branchy")
    sha = repo.commit("feature work", VERSION="feature\n")
    res = repo.push(platform.http_url("branchy"), "HEAD:refs/heads/feature")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "refs/heads/feature stored; only main deploys" in out
    assert "Application deployed" not in out and "Building" not in out
    assert repo_ref(platform.root, "branchy", "refs/heads/feature") == sha
    assert platform.release_versions("branchy") == [1]
    assert platform.get("branchy").body.startswith("v1 ")


def test_config_set_restarts_run_and_logs(platform: Platform,
                                          app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, repo, "cfg")
    wait_body(platform, "cfg", "v1 - web.1 v1")
    with Poller(platform, "cfg") as poll:
        res = platform.cli("config:set", "cfg", "GREETING=hola")
        wait_body(platform, "cfg", "v1 hola web.1 v2")
    assert "Releasing cfg (v2)" in res.stdout
    assert poll.answers and all(s == 200 for s, _ in poll.answers), poll.answers
    assert platform.release_versions("cfg") == [1, 2]
    assert [(r["Process"], r["Release"]) for r in platform.ps("cfg")] == [("web.1", "v2")]

    run = platform.cli("run", "cfg", "sh", "-c", 'echo "greeting=$GREETING dyno=$DYNO"; ls')
    assert "greeting=hola" in run.stdout and "app.py" in run.stdout, run.stdout
    assert not [c for c in platform.container_names() if c.startswith("cfg.run.")]

    platform.get("cfg", "/logged")
    deadline = time.monotonic() + 5
    while True:
        logs = platform.cli("logs", "cfg").stdout
        if "served /logged" in logs or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    lines = logs.splitlines()
    assert any(re.search(r" cfg\[web\.1\]: booting hello v1 as web\.1$", ln) for ln in lines), logs
    assert any(re.search(r" cfg\[web\.1\]: served /logged from v1$", ln) for ln in lines), logs
    assert all(re.match(r"\S+ cfg\[web\.1\]: ", ln) for ln in lines), logs


def test_domains_route_by_host_header(platform: Platform,
                                      app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, repo, "dom")
    wait_body(platform, "dom", "v1")
    platform.cli("domains:add", "dom", "www.dom.test")
    assert platform.get("dom", host="www.dom.test").body.startswith("v1 ")
    assert platform.get("dom", host="WWW.dom.test:80").status == 200
    assert platform.get("dom", host="other.dom.test").status == 404
    assert platform.get("dom", host="unknown.example").status == 404
    platform.cli("domains:remove", "dom", "www.dom.test")
    assert platform.get("dom", host="www.dom.test").status == 404
    assert platform.get("dom").status == 200
    assert platform.release_versions("dom") == [1]  # routing changes need no release


def test_ps_scale(platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, repo, "scaly")
    wait_body(platform, "scaly", "v1")
    platform.cli("ps:scale", "scaly", "web=2")
    ps = platform.ps("scaly")
    assert sorted(r["Process"] for r in ps) == ["web.1", "web.2"], ps
    assert {r["State"] for r in ps} == {"running"}, ps
    dynos = {platform.get("scaly").body.split()[2] for _ in range(12)}
    assert dynos == {"web.1", "web.2"}
    # the scale ran at background priority (paas.sched); the app it started did not
    for row in ps:
        pid = json.loads(platform.cli("container:inspect", row["Name"]).stdout)[0]["State"]["Pid"]
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER, row
        assert os.getpriority(os.PRIO_PROCESS, pid) == 0, row
    platform.cli("ps:scale", "scaly", "web=1")
    assert [r["Process"] for r in platform.ps("scaly")] == ["web.1"]
    assert {platform.get("scaly").body.split()[2] for _ in range(4)} == {"web.1"}
    bad = platform.cli("ps:scale", "scaly", "worker=1", check=False)
    assert bad.returncode == 2 and "unknown process type 'worker'" in bad.stderr


def test_rollback(platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, repo, "rolly")
    repo.commit("v2", VERSION="v2\n")
    deploy(platform, repo, "rolly")
    wait_body(platform, "rolly", "v2")
    with Poller(platform, "rolly") as poll:
        out = platform.cli("releases:rollback", "rolly").stdout
        wait_body(platform, "rolly", "v1 - web.1 v3")
    assert "rolled back: v3 (Rollback to v1)" in out
    assert poll.answers and all(s == 200 for s, _ in poll.answers), poll.answers
    platform.cli("releases:rollback", "rolly", "v2")
    wait_body(platform, "rolly", "v2 - web.1 v4")
    assert platform.release_versions("rolly") == [1, 2, 3, 4]


RELEASE_OK = ("web: exec python3 -m gunicorn --bind 0.0.0.0:$PORT --workers 1 app:application\n"
              "release: echo \"release phase of $(cat VERSION) in $PWD as $DYNO\"\n")
RELEASE_FAILS = ("web: exec python3 -m gunicorn --bind 0.0.0.0:$PORT --workers 1 app:application\n"
                 "release: echo migrating; exit 3\n")


def test_release_phase_runs_and_a_failing_one_rejects_the_push(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    repo.commit("with a release phase", Procfile=RELEASE_OK)
    out = deploy(platform, repo, "rel")
    assert "release phase of v1 in /app as release.1" in out
    assert out.index("Running the release command") < out.index("Starting web.1")
    wait_body(platform, "rel", "v1")
    good = repo.head()

    repo.commit("failing release phase", VERSION="v2\n", Procfile=RELEASE_FAILS)
    with Poller(platform, "rel") as poll:
        out = reject(platform, repo, "rel")
    assert "migrating" in out and "the release command failed (exit 3)" in out
    assert poll.answers and set(poll.answers) == {(200, "v1")}, poll.answers
    assert repo_ref(platform.root, "rel", "refs/heads/main") == good
    assert [(r["Process"], r["Release"]) for r in platform.ps("rel")] == [("web.1", "v1")]
    assert not [c for c in platform.container_names() if c.startswith("rel.release.")]


CHECKS_OK = '{"healthchecks": {"web": [{"path": "/health", "content": "ok", "attempts": 5}]}}\n'
CHECKS_FAIL = ('{"healthchecks": {"web": [{"path": "/fail", "attempts": 4, "wait": 0.5,'
               ' "timeout": 2}]}}\n')


def test_failing_health_check_rejects_the_push(platform: Platform,
                                               app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    repo.commit("checked", **{"app.json": CHECKS_OK})
    out = deploy(platform, repo, "checky")
    assert "check '/health' passed" in out
    wait_body(platform, "checky", "v1")
    good = repo.head()

    repo.commit("check fails", VERSION="v2\n", **{"app.json": CHECKS_FAIL})
    with Poller(platform, "checky") as poll:
        out = reject(platform, repo, "checky")
    assert "GET /fail answered 500" in out
    assert "previous release keeps serving" in out
    assert poll.answers and set(poll.answers) == {(200, "v1")}, poll.answers
    assert repo_ref(platform.root, "checky", "refs/heads/main") == good
    assert [(r["Process"], r["Release"]) for r in platform.ps("checky")] == [("web.1", "v1")]


def test_crashing_app_is_not_deployed(platform: Platform,
                                      app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    repo.commit("crashes", Procfile="web: echo crashing on purpose; exit 1\n")
    started = time.monotonic()
    out = reject(platform, repo, "crashy")
    assert time.monotonic() - started < 30, out
    assert platform.ps("crashy") == []
    assert not [c for c in platform.container_names() if c.startswith("crashy.")]
    assert repo_ref(platform.root, "crashy", "refs/heads/main") is None
    assert platform.get("crashy").status != 200


def test_destroy_leaves_nothing_behind(platform: Platform,
                                       app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, repo, "doomed")
    platform.cli("config:set", "doomed", "GREETING=bye")
    wait_body(platform, "doomed", "bye")
    refused = platform.cli("apps:destroy", "doomed", check=False)
    assert refused.returncode == 2
    platform.cli("apps:destroy", "doomed", "--force")
    assert platform.get("doomed").status == 404
    assert platform.cli("ps", "doomed", check=False).returncode == 3
    assert "doomed" not in platform.cli("apps:list").stdout
    assert not [c for c in platform.container_names() if c.startswith("doomed.")]
    assert "doomed" not in platform.cli("image:ls", "-a").stdout
    assert _files_named(platform, "doomed", but=("*.lock",)) == []
    save = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                          check=True).stdout
    assert ":svc:doomed" not in save  # its service address is released too
    # the name is free again: a new app of that name starts from scratch
    deploy(platform, repo, "doomed")
    assert wait_body(platform, "doomed", "v1").split() == ["v1", "-", "web.1", "v1"]


def test_two_apps_with_the_same_internal_port(platform: Platform,
                                              app_repo: Callable[..., AppRepo]) -> None:
    a, b = app_repo(), app_repo()
    a.commit("a", VERSION="twin-a\n")
    b.commit("b", VERSION="twin-b\n")
    deploy(platform, a, "twin-a")
    deploy(platform, b, "twin-b")
    for _ in range(3):
        assert platform.get("twin-a").body.split()[0] == "twin-a"
        assert platform.get("twin-b").body.split()[0] == "twin-b"
    # tenants on the bridge: an app's one-off reaches its own web container, not the other's
    conn = sqlite3.connect(f"file:{platform.root / 'state.db'}?mode=ro", uri=True)
    ips = dict(conn.execute("SELECT c.name, n.ip FROM containers c JOIN net_attachments n "
                            "ON n.container_id = c.id WHERE c.name LIKE '%.web.1.v1'"))
    conn.close()
    probe = ("import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], 5000), 3)"
             "\n    print('reached')\nexcept OSError as err:\n    print('refused', err)\n")
    for target, seen in (("twin-a", "reached"), ("twin-b", "refused")):
        run = platform.cli("run", "twin-a", "python3", "-c", probe, ips[f"{target}.web.1.v1"])
        assert seen in run.stdout, (target, run.stdout)


def _concurrent_pushes(platform: Platform, app_repo: Callable[..., AppRepo], app: str,
                       ssh: bool) -> tuple[list[str], str, str]:
    """Deploy a base commit, then push A and, while A builds, B (a child of A) from another
    clone: (the two pushes' outputs, sha A, sha B)."""
    first = app_repo()
    deploy(platform, first, app, ssh=ssh)
    sha_a = first.commit("A", VERSION="vA\n")
    second = first.copy(first.path.parent / f"{app}-second")
    sha_b = second.commit("B", VERSION="vB\n")
    url = platform.ssh_url(app) if ssh else platform.http_url(app)
    env = platform.ssh_git_env() if ssh else None
    push_a = BackgroundPush(first, url, env)
    push_a.wait_for("Building")
    push_b = BackgroundPush(second, url, env)
    code_a, end_a = push_a.wait()
    code_b, end_b = push_b.wait()
    assert (code_a, code_b) == (0, 0), push_a.output + push_b.output
    assert end_a < end_b
    return [push_a.output, push_b.output], sha_a, sha_b


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_concurrent_pushes_deploy_in_order(platform: Platform, transport: str,
                                           app_repo: Callable[..., AppRepo]) -> None:
    app = f"queue-{transport}"
    outputs, sha_a, sha_b = _concurrent_pushes(platform, app_repo, app, ssh=transport == "ssh")
    # the second push saw the first one's commit as the remote's main: it waited for it
    assert f"{sha_a[:7]}..{sha_b[:7]}  main -> main" in outputs[1], outputs[1]
    rels = json.loads(platform.cli("releases", app, "--format", "json").stdout)
    assert [r["GitSha"] for r in sorted(rels, key=lambda r: r["Version"])][1:] == [sha_a, sha_b]
    assert wait_body(platform, app, "vB").startswith("vB ")
    assert repo_ref(platform.root, app, "refs/heads/main") == sha_b


def _files_named(platform: Platform, app: str, but: tuple[str, ...] = ()) -> list[str]:
    """Paths under the instance's root named after ``app``, except the per-app nginx logs
    (documented to stay) and names matching ``but``."""
    return sorted(str(p) for p in platform.root.rglob(f"*{app}*")
                  if p.parent != platform.root / "nginx" / "logs"
                  and not any(p.match(pattern) for pattern in but))


# --- bugs found by these tests (fixed): each must stay fixed ----


def test_destroy_removes_the_lock_files_too(platform: Platform,
                                            app_repo: Callable[..., AppRepo]) -> None:
    deploy(platform, app_repo(), "doomed-locks")
    platform.cli("apps:destroy", "doomed-locks", "--force")
    assert _files_named(platform, "doomed-locks") == []


def test_crashing_app_shows_its_output(platform: Platform,
                                       app_repo: Callable[..., AppRepo]) -> None:
    # racy (about 3 pushes in 4 show the bug), so four pushes must all be right
    repo = app_repo()
    repo.commit("crashes", Procfile="web: echo crashing on purpose; exit 1\n")
    for n in range(4):
        out = reject(platform, repo, f"crashy-out{n}")
        assert "not healthy" in out and "crashing on purpose" in out, out


def test_run_exit_status_under_concurrency(platform: Platform,
                                           app_repo: Callable[..., AppRepo]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    deploy(platform, app_repo(), "runner")

    def one(_: int) -> int:
        return platform.cli("run", "runner", "sh", "-c", "exit 7", check=False,
                            timeout=60).returncode

    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(one, range(4))) == [7, 7, 7, 7]


def test_rejected_deploy_is_not_the_current_release(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, repo, "phantom")
    repo.commit("check fails", VERSION="v2\n", **{"app.json": CHECKS_FAIL})
    reject(platform, repo, "phantom")
    res = platform.cli("config:set", "phantom", "GREETING=after", check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert wait_body(platform, "phantom", "after").split()[:2] == ["v1", "after"]


def test_rollback_after_a_rejected_push(platform: Platform,
                                        app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, repo, "sticky")
    repo.commit("check fails", VERSION="v2\n", **{"app.json": CHECKS_FAIL})
    reject(platform, repo, "sticky")
    res = platform.cli("releases:rollback", "sticky", "v1", check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_hooks_and_nginx_settings(platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    """Operator hooks run with their arguments; a failing pre-deploy hook stops the deploy
    (the previous release keeps serving); nginx:set is applied without a restart."""
    hooks = Path(platform.root) / "hooks"
    (hooks / "post-deploy.d").mkdir(parents=True)
    (hooks / "pre-deploy.d").mkdir(parents=True)
    seen = Path(platform.root) / "hook-args"
    post = hooks / "post-deploy.d" / "10-record"
    post.write_text(f'#!/bin/sh\necho "post-deploy $*" >> {seen}\necho recorded\n')
    post.chmod(0o755)
    repo = app_repo()
    try:
        out = deploy(platform, repo, "hooked")
        assert "Running post-deploy hook 10-record" in out and "recorded" in out
        assert seen.read_text() == "post-deploy hooked 1\n"
        gate = hooks / "pre-deploy.d" / "10-refuse"
        gate.write_text('#!/bin/sh\necho "deploys of $1 are frozen"\nexit 1\n')
        gate.chmod(0o755)
        repo.commit("v2", VERSION="v2\n")
        out = reject(platform, repo, "hooked")
        assert "deploys of hooked are frozen" in out and "pre-deploy hook 10-refuse failed" in out
        assert wait_body(platform, "hooked", "v1").split()[0] == "v1"
        assert platform.release_versions("hooked") == [1]
    finally:
        shutil.rmtree(hooks)
    platform.cli("nginx:set", "hooked", "client-max-body-size", "3m")
    vhost = platform.cli("nginx:show-config", "hooked").stdout
    assert "client_max_body_size 3m;" in vhost
    assert platform.release_versions("hooked") == [1]  # no new release, no restart
    bad = platform.cli("nginx:set", "hooked", "client-max-body-size", "1m; evil", check=False)
    assert bad.returncode == 2 and "client_max_body_size 3m;" in platform.cli(
        "nginx:show-config", "hooked").stdout
