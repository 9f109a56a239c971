"""Faults during deploys, end to end: ``kill -9`` of the deploy (the pusher's ``paas
git:ssh-command``), of paasd and of the build container at each stage, a simulated
host reboot, nginx killed, and 5 concurrent pushes to one app and to 5 apps.

Every test checks what users see (each request during the fault answered 200 by the
previous or the new release, never a mix after the switch), what the state says
(current release, ``ps``), and that the next push deploys as if nothing happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_helpers import AppRepo, BackgroundPush, Platform, processes_mentioning
from test_deploy import Poller, deploy, wait_body

# (marker in the push's output at which the deploy is killed, whether the new
# release already serves at that point)
STAGES = [
    ("-----> Building", False),
    ("-----> Starting web.1", False),
    ("-----> Checking web.1", False),
    ("s for requests to the old containers", True),
]


def _deploying_pid(platform: Platform, app: str, timeout: float = 20) -> int:
    """The pid of the process holding ``app``'s deploy lock (the push's deploy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = json.loads(platform.cli("apps:info", app, "--format", "json").stdout)
        holder = info["deploy_lock"]["deploying"]
        if holder:
            return int(holder["pid"])
        time.sleep(0.05)
    raise AssertionError(f"no deploy of {app} holds its lock")


def _app_containers(platform: Platform, app: str) -> list[str]:
    return sorted(n for n in platform.container_names() if n.startswith(f"{app}."))


def _next_push_deploys(platform: Platform, repo: AppRepo, app: str, version: str) -> str:
    repo.commit(f"after the fault: {version}", VERSION=f"{version}\n")
    out = deploy(platform, repo, app)
    assert wait_body(platform, app, version).startswith(f"{version} ")
    current = max(platform.release_versions(app))
    # only the new release runs: whatever the fault left behind is gone
    assert _app_containers(platform, app) == [f"{app}.web.1.v{current}"], out
    assert [(r["Process"], r["Release"]) for r in platform.ps(app)] == [("web.1", f"v{current}")]
    return out


@pytest.mark.parametrize(("marker", "switched"), STAGES,
                         ids=["build", "start", "health-check", "drain"])
def test_kill_9_of_the_deploy_at_each_stage(platform: Platform,
                                            app_repo: Callable[..., AppRepo],
                                            marker: str, switched: bool) -> None:
    app = f"kill-{STAGES.index((marker, switched))}"
    repo = app_repo()
    deploy(platform, repo, app)
    wait_body(platform, app, "v1")
    repo.commit("killed", VERSION="v2\n")
    with Poller(platform, app) as poll:
        push = BackgroundPush(repo, platform.ssh_url(app), env=platform.ssh_git_env())
        push.wait_for(marker)
        os.kill(_deploying_pid(platform, app), signal.SIGKILL)
        code, _ = push.wait()
        time.sleep(0.5)
    assert code != 0, push.output
    answers = {a for a in poll.answers}
    assert answers <= {(200, "v1"), (200, "v2")} and (switched or answers == {(200, "v1")}), \
        poll.answers
    serving = "v2" if switched else "v1"
    assert wait_body(platform, app, serving).startswith(f"{serving} ")
    # the state agrees with what serves: the killed release is current only if it serves
    assert max(platform.release_versions(app)) == (2 if switched else 1)
    left = [n for n in _app_containers(platform, app) if n.endswith(".v2")]
    out = _next_push_deploys(platform, repo, app, "v3")
    if left and not switched:  # started but never served: the next deploy removes them
        assert "Cleaning up after an interrupted deploy: v2" in out, out
    platform.cli("apps:destroy", app, "--force")


@pytest.mark.parametrize("marker", ["-----> Building", "-----> Starting web.1",
                                    "-----> Checking web.1"],
                         ids=["build", "start", "health-check"])
def test_kill_9_of_paasd_at_each_stage(platform: Platform, app_repo: Callable[..., AppRepo],
                                       marker: str) -> None:
    app = f"kill-paasd-{marker.split()[1].lower()}"
    repo = app_repo()
    deploy(platform, repo, app)
    repo.commit("paasd dies", VERSION="v2\n")
    status = json.loads(platform.cli("daemon:status", "--format", "json").stdout)
    with Poller(platform, app) as poll:
        push = BackgroundPush(repo, platform.http_url(app))
        push.wait_for(marker)
        os.kill(int(status["pid"]), signal.SIGKILL)
        code, _ = push.wait()
    # whether paasd died before or after it started v2's container, v1 kept serving;
    # the push either failed or (paasd answered just before dying) deployed
    assert {a for a in poll.answers} <= {(200, "v1"), (200, "v2")}, poll.answers
    if code != 0:
        assert set(poll.answers) == {(200, "v1")}, poll.answers
    # the keeper restarts paasd, which adopts the running containers
    deadline = time.monotonic() + 30
    while json.loads(platform.cli("daemon:status", "--format", "json", check=False).stdout
                     or "{}").get("pid") in (None, status["pid"]):
        assert time.monotonic() < deadline, "paasd was not restarted"
        time.sleep(0.2)
    _next_push_deploys(platform, repo, app, "v3")
    platform.cli("apps:destroy", app, "--force")


SLOW_DOCKERFILE = """\
FROM paas/stack:bookworm
WORKDIR /app
COPY . /app
RUN if [ -f SLOW ]; then echo "slow $((6 * 7))"; sleep 120; fi
CMD ["python3", "-m", "gunicorn", "--bind", "0.0.0.0:5000", "app:application"]
"""


def test_kill_9_of_the_build_container(platform: Platform,
                                       app_repo: Callable[..., AppRepo]) -> None:
    app = "kill-build"
    repo = app_repo()
    repo.commit("a Dockerfile app", Dockerfile=SLOW_DOCKERFILE)
    deploy(platform, repo, app)
    wait_body(platform, app, "v1")
    repo.commit("slow build", VERSION="v2\n", SLOW="1\n")
    with Poller(platform, app) as poll:
        push = BackgroundPush(repo, platform.http_url(app))
        push.wait_for("slow 42", timeout=120)  # the command's output: it runs
        sleepers = [int(p.split(":")[0]) for p in processes_mentioning("sleep 120")]
        assert sleepers, push.output
        for pid in sleepers:
            os.kill(pid, signal.SIGKILL)
        code, _ = push.wait()
    assert code != 0 and "returned a non-zero code: 137" in push.output, push.output
    assert set(poll.answers) == {(200, "v1")}, poll.answers
    repo.remove("SLOW")
    _next_push_deploys(platform, repo, app, "v3")
    platform.cli("apps:destroy", app, "--force")


def _instance_processes(platform: Platform) -> list[int]:
    """Pids of every container init of the instance (runc's state dir lists them)."""
    pids = []
    runc_root = platform.root / "run" / "runc"
    for state in runc_root.glob("*/state.json"):
        pid = json.loads(state.read_text()).get("init_process_pid")
        if pid:
            pids.append(int(pid))
    return pids


def test_reboot_brings_every_app_back_with_correct_upstreams(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    apps = ["boot-a", "boot-b"]
    repos = {app: app_repo() for app in apps}
    for app in apps:
        deploy(platform, repos[app], app)
    platform.cli("ps:scale", "boot-b", "web=2")
    for app in apps:
        wait_body(platform, app, "v1")
    # the "reboot": paasd, the keeper and nginx stop, every container process dies and
    # the kernel forgets the instance's mounts, netns, veths, bridge and iptables rules
    platform.cli("daemon:stop", "--all", "--force")
    platform.cli("nginx:stop")
    for pid in _instance_processes(platform):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    for cid in os.listdir(platform.root / "run" / "runc"):
        subprocess.run(["runc", "--root", str(platform.root / "run" / "runc"), "delete",
                        "--force", cid], check=False, capture_output=True)
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(str(platform.root))), reverse=True):
        subprocess.run(["umount", "-l", target], check=True)
    inst = platform.env["PAAS_INSTANCE"]
    bridge = platform.env.get("PAAS_BRIDGE") or f"pb-{inst}"
    subprocess.run(["ip", "link", "del", bridge], check=True)
    save = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert f"PAAS-{inst.upper()}-SVC" in save
    _flush_instance_rules(inst)
    # (the boot id stays: paasd's start restores the bridge and rules regardless)

    # boot: what paas.service does (paasd, then ps:restore)
    platform.cli("daemon:start")
    restore = platform.cli("ps:restore").stdout
    for app in apps:
        try:
            wait_body(platform, app, "v1", timeout=30)
        except AssertionError as err:
            svc = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True,
                                 text=True, check=False).stdout
            diag = "\n".join([
                restore, str(platform.ps(app)),
                *[ln for ln in svc.splitlines() if inst.upper() in ln],
                subprocess.run(["ip", "-4", "addr", "show", bridge], capture_output=True,
                               text=True, check=False).stdout,
                subprocess.run(["ip", "route"], capture_output=True, text=True,
                               check=False).stdout,
                platform.cli("container:ps", "-a").stdout,
                subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                               capture_output=True, text=True, check=False).stdout,
                str(sorted(os.listdir(platform.root / "run" / "netns"))),
                *[ln for ln in Path("/proc/self/mountinfo").read_text().splitlines()
                  if "netns" in ln and str(platform.root) in ln]])
            raise AssertionError(f"{err}\n{diag}") from err
    assert len([r for r in platform.ps("boot-b") if r["State"] == "running"]) == 2
    # their size-limited writable layers (the default 10g) were attached again
    for row in platform.ps("boot-b"):
        df = platform.cli("container:exec", row["Name"], "df", "-B1", "--output=size", "/")
        assert 9 << 30 < int(df.stdout.split()[-1]) <= 10 << 30, df.stdout
    # and the next deploy works
    repos["boot-a"].commit("after the reboot", VERSION="v9\n")
    deploy(platform, repos["boot-a"], "boot-a")
    assert wait_body(platform, "boot-a", "v9").startswith("v9 ")
    for app in apps:
        platform.cli("apps:destroy", app, "--force")


def _flush_instance_rules(inst: str) -> None:
    """Remove the instance's iptables jumps, chains and rules (as a reboot does)."""
    save = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    table = ""
    chains: dict[str, list[str]] = {}
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A ") and f"PAAS-{inst.upper()}" in line \
                and not line.split()[1].startswith(f"PAAS-{inst.upper()}"):
            subprocess.run(["iptables", "-w", "-t", table, "-D", *line.split()[1:]], check=True)
        elif line.startswith(f":PAAS-{inst.upper()}"):
            chains.setdefault(table, []).append(line[1:].split()[0])
    for table, names in chains.items():
        for name in names:
            subprocess.run(["iptables", "-w", "-t", table, "-F", name], check=True)
        for name in names:
            subprocess.run(["iptables", "-w", "-t", table, "-X", name], check=True)


def test_nginx_killed_is_restored_and_a_broken_override_stays_local(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()
    deploy(platform, app_repo(), "ngx-a")
    deploy(platform, repo, "ngx-b")
    pid = int((platform.root / "nginx" / "nginx.pid").read_text())
    workers = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for victim in [pid, *map(int, workers)]:
        os.kill(victim, signal.SIGKILL)
    time.sleep(0.2)
    with pytest.raises(OSError):
        platform.get("ngx-a", timeout=2)
    # the next command that touches routing brings nginx back
    platform.cli("ps:restart", "ngx-a")
    assert wait_body(platform, "ngx-a", "v1").startswith("v1 ")
    assert wait_body(platform, "ngx-b", "v1").startswith("v1 ")
    # an app's own template that nginx refuses is rejected; other apps keep serving
    repo.commit("broken template", VERSION="v2\n",
                **{"nginx.conf.j2": "server { listen {{ listen }}; no_such_directive on; }\n"})
    res = repo.push(platform.http_url("ngx-b"))
    assert res.returncode != 0 and "no_such_directive" in res.stderr, res.stderr
    assert wait_body(platform, "ngx-a", "v1").startswith("v1 ")
    assert wait_body(platform, "ngx-b", "v1").startswith("v1 ")
    for app in ("ngx-a", "ngx-b"):
        platform.cli("apps:destroy", app, "--force")


def test_five_pushes_to_one_app_serialize_and_to_five_apps_run_in_parallel(
        platform: Platform, app_repo: Callable[..., AppRepo], tmp_path: Path) -> None:
    base = app_repo()
    deploy(platform, base, "conc-one")
    # five developers push five different commits to one app at once
    clones = [base.copy(tmp_path / f"dev{i}") for i in range(5)]
    for i, clone in enumerate(clones):
        clone.commit(f"dev {i}", VERSION=f"d{i}\n")
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    spans: dict[str, tuple[float, float]] = {}

    def push(name: str, repo: AppRepo, app: str, force: bool = False) -> None:
        t0 = time.monotonic()
        results[name] = repo.push(platform.http_url(app), "+main" if force else "main")
        spans[name] = (t0, time.monotonic())

    threads = [threading.Thread(target=push, args=(f"one-{i}", c, "conc-one", True))
               for i, c in enumerate(clones)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    ok = [n for n, r in results.items() if r.returncode == 0]
    assert len(ok) == 5, {n: r.stderr[-800:] for n, r in results.items()}
    # each deploy ran alone (the lock), in some order; what serves is the last one's
    versions = platform.release_versions("conc-one")
    assert versions == [1, 2, 3, 4, 5, 6]
    assert _app_containers(platform, "conc-one") == ["conc-one.web.1.v6"]
    body = wait_body(platform, "conc-one", "d")
    assert body.split()[0] in {f"d{i}" for i in range(5)}

    # five apps at once: in parallel (no push waits for another's lock)
    repos = {f"conc-{i}": app_repo() for i in range(5)}
    results.clear()
    spans.clear()
    started = time.monotonic()
    threads = [threading.Thread(target=push, args=(a, r, a)) for a, r in repos.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    elapsed = time.monotonic() - started
    assert all(r.returncode == 0 for r in results.values()), \
        {n: r.stderr[-800:] for n, r in results.items()}
    assert not any("Waiting for another deploy" in r.stderr for r in results.values())
    # all five were in flight at the same moment
    assert max(a for a, _ in spans.values()) < min(b for _, b in spans.values()), spans
    for a in repos:
        assert wait_body(platform, a, "v1").startswith("v1 ")
        assert _app_containers(platform, a) == [f"{a}.web.1.v1"]
    print(f"\n5 first deploys of 5 apps at once: {elapsed:.1f}s")
    for a in ["conc-one", *repos]:
        platform.cli("apps:destroy", a, "--force")
