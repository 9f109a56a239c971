"""Disk hygiene and deploy locks end to end (issue 6), with real pushes:

- repeated deploys do not grow the store beyond the retained releases' own layers (the
  prune after each deploy); ``system:df`` / ``system:prune`` on a deployed instance keep
  what the running app and its kept releases need (a rollback still works);
- ``apps:lock`` rejects a push with a clear message, ``apps:unlock`` lets it deploy;
- a deploy killed with SIGKILL while holding the app's deploy lock does not block the
  next one; a push waiting for a live holder says who holds the lock.

``bench/disk_growth`` runs the 50-deploy version of the growth test and prints figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e_helpers import AppRepo, BackgroundPush, Platform
from test_deploy import deploy, wait_body

STORE_DIRS = ("images", "snapshots", "containers", "buildcache", "tmp")


def store_bytes(root: Path) -> int:
    """Allocated bytes under the store's dirs (an independent walk, not paas's own)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for d in STORE_DIRS:
        for dirpath, dirnames, filenames in os.walk(root / d):
            for name in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
            dirnames[:] = [n for n in dirnames
                           if not os.path.ismount(os.path.join(dirpath, n))]
    return total


def images(platform: Platform) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(platform.cli("image:ls", "-a", "--format",
                                                        "json").stdout)
    return out


def release_layer_bytes(platform: Platform, app: str) -> int:
    """Bytes of the largest own layer (image size minus the stack's) of the app's
    release images: its blob plus its unpacked snapshot take about twice that."""
    def size(ref: str) -> int:
        return int(json.loads(platform.cli("image:inspect", ref).stdout)[0]["Size"])

    stack = size("paas/stack:bookworm")
    return max([size(f"paas-apps/{app}:{i['Tag']}") - stack for i in images(platform)
                if i["Repository"] == f"paas-apps/{app}"], default=0)


def test_repeated_deploys_do_not_grow_the_store(platform: Platform,
                                                app_repo: Callable[..., AppRepo]) -> None:
    app, keep, deploys = "hygiene", 2, 12
    platform.cli("apps:create", app)
    platform.cli("settings:set", app, "keep-releases", str(keep))
    repo = app_repo()
    sizes = []
    started = time.monotonic()
    for i in range(deploys):
        repo.commit(f"v{i}", VERSION=f"v{i}\n")
        deploy(platform, repo, app)
        sizes.append(store_bytes(platform.root))
    took = time.monotonic() - started
    assert wait_body(platform, app, f"v{deploys - 1}").startswith(f"v{deploys - 1} ")
    tags = sorted(str(i["Tag"]) for i in images(platform)
                  if i["Repository"] == f"paas-apps/{app}")
    assert tags == [f"v{deploys - 1}", f"v{deploys}"]  # v1..vN: the kept ones only
    # after `keep` deploys the store is at its steady state: later ones only replace
    # a release's own layer (blob + snapshot), nothing accumulates
    steady = max(sizes[keep - 1:keep + 1])
    slack = 4 * max(release_layer_bytes(platform, app), 256 * 1024) + 2 * 1024 * 1024
    growth = max(sizes[keep:]) - steady
    print(f"\n{deploys} deploys in {took:.1f}s; store after each (MB): "
          f"{[round(s / 1e6, 1) for s in sizes]}; growth after {keep}: {growth / 1e6:.2f}MB")
    assert growth <= slack, (sizes, slack)
    # nothing left for a prune to take but the expired releases' data it took already
    df = json.loads(platform.cli("system:df", "--format", "json").stdout)
    layers = next(r for r in df if r["Type"] == "Layers")
    assert layers["Active"] >= 1 and layers["Size"]


def test_prune_keeps_what_the_app_and_its_kept_releases_need(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    app = "hygiene-keep"
    repo = app_repo()
    for i in range(3):
        repo.commit(f"k{i}", VERSION=f"k{i}\n")
        deploy(platform, repo, app)
    res = platform.cli("system:prune", "--all", "--force")
    assert "Total reclaimed space:" in res.stdout, res.stdout
    assert wait_body(platform, app, "k2").startswith("k2 ")
    platform.cli("releases:rollback", app, "v2")  # its image was kept: no rebuild
    assert wait_body(platform, app, "k1").startswith("k1 ")
    stack = [i for i in images(platform) if i["Repository"] == "paas/stack"]
    assert stack, "--all keeps the buildpack stack"
    # a push still builds after --all (the stack and the build steps it needs are there)
    repo.commit("k3", VERSION="k3\n")
    deploy(platform, repo, app)
    assert wait_body(platform, app, "k3").startswith("k3 ")


def test_apps_lock_rejects_pushes_until_unlock(platform: Platform,
                                               app_repo: Callable[..., AppRepo]) -> None:
    app = "hygiene-locked"
    repo = app_repo()
    deploy(platform, repo, app)
    assert "Deploy lock created" in platform.cli("apps:lock", app).stdout
    info = platform.cli("apps:info", app).stdout
    assert "Deploy locked: true" in info, info
    repo.commit("while locked", VERSION="locked\n")
    res = repo.push(platform.http_url(app))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert f"{app} is locked: deploys are refused" in out, out
    assert f"paas apps:unlock {app}" in out, out
    assert "Deploy lock removed" in platform.cli("apps:unlock", app).stdout
    deploy(platform, repo, app)
    assert wait_body(platform, app, "locked").startswith("locked ")


def _holder(platform: Platform, app: str, push: BackgroundPush,
            timeout: float = 60) -> dict[str, Any]:
    """The holder of the app's deploy lock once ``push`` is building."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and push.proc.poll() is None:
        info = json.loads(platform.cli("apps:info", app, "--format", "json").stdout)
        if info["deploy_lock"]["deploying"] and "Building" in push.output:
            return dict(info["deploy_lock"]["deploying"])
        time.sleep(0.05)
    push.wait()
    raise AssertionError(f"the push never built while holding the deploy lock of {app} "
                         f"(exit {push.proc.returncode}):\n{push.output}")


def test_a_killed_deploy_does_not_block_the_next(platform: Platform,
                                                 app_repo: Callable[..., AppRepo]) -> None:
    app = "hygiene-killed"
    repo = app_repo()
    deploy(platform, repo, app)
    repo.commit("to be killed", VERSION="killed\n")
    push = BackgroundPush(repo, platform.ssh_url(app), env=platform.ssh_git_env())
    holder = _holder(platform, app, push)
    assert "git push" in holder["command"], holder
    os.kill(int(holder["pid"]), signal.SIGKILL)
    push.wait()
    assert json.loads(platform.cli("apps:info", app, "--format", "json").stdout)[
        "deploy_lock"]["deploying"] is None
    repo.commit("after the kill", VERSION="after\n")
    started = time.monotonic()
    out = deploy(platform, repo, app)
    assert "Waiting for another deploy" not in out, out
    assert wait_body(platform, app, "after").startswith("after ")
    assert time.monotonic() - started < 120


def test_a_waiting_push_says_who_holds_the_lock(platform: Platform,
                                                app_repo: Callable[..., AppRepo]) -> None:
    app = "hygiene-wait"
    repo = app_repo()
    deploy(platform, repo, app)
    code = ("import sys, time\nfrom paas.deploy.locks import DeployLock\n"
            f"with DeployLock({str(platform.root)!r}).hold({app!r}, what='maintenance'):\n"
            "    print('held', flush=True)\n    time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=platform.env)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        repo.commit("waits", VERSION="waited\n")
        push = BackgroundPush(repo, platform.http_url(app))
        push.wait_for(f"Waiting for another deploy of {app} to finish (pid {holder.pid}, "
                      "maintenance, for ")
        holder.kill()  # SIGKILL: the push goes on
        code_, _ = push.wait()
        assert code_ == 0, push.output
        assert wait_body(platform, app, "waited").startswith("waited ")
    finally:
        holder.kill()
        holder.wait()
