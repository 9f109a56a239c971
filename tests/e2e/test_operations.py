"""Per-app operations end to end (issue 6): storage mounts, resource limits and restart
policies of deployed apps, pushed with the real git client and served through nginx.

- storage: data written by the app survives a redeploy, a rollback, ``ps:rebuild`` and
  ``apps:destroy``; the release phase and ``paas run`` see the mount too;
- resources: the limits are in the containers' cgroups (v1 memory and pids
  controllers); a worker over its memory limit is OOM-killed and restarted per its
  app's policy (``ps`` shows it backing off) while another app keeps serving;
- ``ps:set restart-policy`` is used by the next release, not the running one;
- an app's containers get the instance's default writable-layer size (10g), and
  ``resource:limit --disk`` a smaller one: a write past it is ENOSPC inside.

Apps come from ``apps/ops`` (a web process with /read and /write on ``/data``, an
``eater`` worker, a release phase appending to ``/data/releases``) and ``apps/hello``.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e_helpers import AppRepo, Platform
from test_deploy import Poller, deploy, wait_body

TIMINGS: dict[str, float] = {}


def app_user(platform: Platform, app: str) -> int:
    """Host uid of uid 1000 in ``app``'s containers (its own id range)."""
    info = json.loads(platform.cli("apps:info", app, "--format", "json").stdout)
    return int(info["id_range"]["host_id"]) + 1000


def storage_for(platform: Platform, app: str) -> Path:
    """``apps:create`` + ``storage:ensure-directory`` + ``storage:mount DIR:/data``."""
    platform.cli("apps:create", app)
    platform.cli("storage:ensure-directory", app)
    data = platform.root / "data" / "storage" / app
    out = platform.cli("storage:mount", app, f"{data}:/data").stdout
    assert "Takes effect at the next deploy or restart" in out
    return data


def get_ok(platform: Platform, app: str, path: str) -> str:
    r = platform.get(app, path)
    assert r.status == 200, (path, r)
    return r.body.strip()


def cgroup_file(platform: Platform, name: str, controller: str, filename: str) -> str:
    """A file of container ``name``'s cgroup under the v1 ``controller`` on the host."""
    cid = json.loads(platform.cli("container:inspect", name).stdout)[0]["Id"]
    found = glob.glob(f"/sys/fs/cgroup/{controller}/**/{cid}/{filename}", recursive=True)
    assert len(found) == 1, (controller, cid, found)
    return Path(found[0]).read_text().strip()


def by_process(platform: Platform, app: str) -> dict[str, dict[str, Any]]:
    return {r["Process"]: r for r in platform.ps(app)}


def wait_ps(platform: Platform, app: str, process: str, pred: Callable[[dict[str, Any]], bool],
            timeout: float) -> list[dict[str, Any]]:
    """Poll ``ps APP --format json`` until ``pred`` holds for ``process``; every row seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        row = by_process(platform, app).get(process)
        if row is not None:
            seen.append(row)
            if pred(row):
                return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{app} {process}: never matched within {timeout}s: {seen[-3:]}")
        time.sleep(0.1)


def test_storage_survives_redeploy_rollback_rebuild_and_destroy(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    data = storage_for(platform, "keep")
    repo = app_repo("ops")
    started = time.monotonic()
    deploy(platform, repo, "keep")
    TIMINGS["deploy with storage"] = time.monotonic() - started
    assert get_ok(platform, "keep", "/write/note/hello") == "written"
    assert (data / "note").read_text() == "hello"
    # the app user, through the id shift of the app's own range
    assert (data / "note").stat().st_uid == app_user(platform, "keep")
    assert (data / "releases").read_text().split() == ["v1"]  # the release phase has it too
    assert by_process(platform, "keep")["web.1"]["Mounts"] == [f"{data}:/data"]

    repo.commit("v2", VERSION="v2\n")
    deploy(platform, repo, "keep")
    assert get_ok(platform, "keep", "/").startswith("v2")
    assert get_ok(platform, "keep", "/read/note") == "hello"

    platform.cli("releases:rollback", "keep", "v1")
    assert get_ok(platform, "keep", "/").startswith("v1 web.1 v3")
    assert get_ok(platform, "keep", "/read/note") == "hello"

    started = time.monotonic()
    platform.cli("ps:rebuild", "keep", timeout=300)
    TIMINGS["rebuild"] = time.monotonic() - started
    assert get_ok(platform, "keep", "/read/note") == "hello"
    assert (data / "releases").read_text().split() == ["v1", "v2", "v3", "v4"]
    run = platform.cli("run", "keep", "cat", "/data/note")  # one-offs get it as well
    assert run.stdout.strip().endswith("hello"), run.stdout

    platform.cli("apps:destroy", "keep", "--force")
    assert (data / "note").read_text() == "hello"  # the operator's data outlives the app
    assert platform.cli("storage:list", "keep", check=False).returncode == 3
    print(f"\ndeploy with storage {TIMINGS['deploy with storage']:.1f}s, "
          f"ps:rebuild {TIMINGS['rebuild']:.1f}s")


def test_unmount_takes_effect_at_the_next_restart(platform: Platform,
                                                  app_repo: Callable[..., AppRepo]) -> None:
    data = storage_for(platform, "gone")
    (data / "note").write_text("kept")
    ro = platform.root / "data" / "storage" / "gone-ro"
    platform.cli("storage:ensure-directory", "gone-ro")
    (ro / "conf").write_text("c")  # a second mount, read-only
    platform.cli("storage:mount", "gone", f"{ro}:/etc/conf:ro")
    deploy(platform, app_repo("ops"), "gone")
    run = platform.cli("run", "gone", "sh", "-c", "cat /etc/conf/conf; touch /etc/conf/x",
                       check=False)
    assert run.returncode != 0 and "Read-only file system" in run.stdout + run.stderr, run
    platform.cli("storage:unmount", "gone", f"{ro}:/etc/conf")
    assert by_process(platform, "gone")["web.1"]["Mounts"] == [f"{data}:/data",
                                                               f"{ro}:/etc/conf:ro"]
    platform.cli("ps:restart", "gone")
    assert by_process(platform, "gone")["web.1"]["Mounts"] == [f"{data}:/data"]
    assert get_ok(platform, "gone", "/read/note") == "kept"
    platform.cli("apps:destroy", "gone", "--force")


def test_a_storage_dir_swapped_for_a_symlink_to_paas_root_is_refused_at_restart(
        platform: Platform, app_repo: Callable[..., AppRepo], tmp_path: Path) -> None:
    """Issue 12, item 5: ``storage:mount`` accepts a real directory; its owner later
    replaces it (or a parent) with a symlink to PAAS_ROOT. Every start opens the path
    again without following symlinks: ``ps:restart`` and ``paas run`` are refused with
    one line, the running release keeps serving its old mount, and no container ever
    sees state.db."""
    owner = tmp_path / "alice"  # a directory its owner controls (not under PAAS_ROOT)
    data = owner / "data"
    data.mkdir(parents=True)
    platform.cli("apps:create", "swap")
    platform.cli("storage:ensure-directory", "swap")  # gives the app its id range
    os.chown(data, app_user(platform, "swap"), app_user(platform, "swap"))
    platform.cli("storage:mount", "swap", f"{data}:/data")
    deploy(platform, app_repo("ops"), "swap")
    assert get_ok(platform, "swap", "/write/note/before") == "written"

    data.rename(owner / "moved")  # the attack
    data.symlink_to(platform.root)
    restart = platform.cli("ps:restart", "swap", check=False)
    assert restart.returncode != 0
    err = restart.stderr.strip().splitlines()
    assert len(err) == 1 and f"{data} is a symlink" in err[0], restart.stderr
    assert "Traceback" not in restart.stdout + restart.stderr
    run = platform.cli("run", "swap", "head", "-c", "15", "/data/state.db", check=False)
    assert run.returncode != 0 and "is a symlink" in run.stderr, run
    assert "SQLite" not in run.stdout
    assert platform.get("swap", "/read/state.db").status == 404  # the old mount serves
    assert get_ok(platform, "swap", "/read/note") == "before"

    data.unlink()  # a parent component instead: alice -> a dir whose data is PAAS_ROOT
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "data").symlink_to(platform.root)
    owner.rename(tmp_path / "alice-real")
    owner.symlink_to(tmp_path / "evil")
    run = platform.cli("run", "swap", "head", "-c", "15", "/data/state.db", check=False)
    assert run.returncode != 0 and f"{owner} is a symlink" in run.stderr, run
    assert "SQLite" not in run.stdout

    owner.unlink()  # the real directory back: restarts work again
    (tmp_path / "alice-real").rename(owner)
    (owner / "moved").rename(data)
    platform.cli("ps:restart", "swap")
    assert get_ok(platform, "swap", "/read/note") == "before"
    platform.cli("apps:destroy", "swap", "--force")


def test_memory_limit_oom_kill_restarts_per_policy_while_another_app_serves(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    deploy(platform, app_repo("hello"), "calm")
    wait_body(platform, "calm", "v1")

    data = storage_for(platform, "hog")
    platform.cli("resource:limit", "hog", "--memory", "96m", "--pids", "200")
    platform.cli("resource:limit", "hog", "--process", "eater", "--memory", "48m", "--cpus", "1")
    platform.cli("ps:set", "hog", "restart-policy", "on-failure:5")
    deploy(platform, app_repo("ops"), "hog")
    platform.cli("ps:scale", "hog", "eater=1")
    rows = by_process(platform, "hog")
    assert rows["eater.1"]["State"] == "running" and rows["eater.1"]["Release"] == "v2"

    # the limits are the containers' cgroups (v1 memory, cpu and pids controllers)
    web, eater = rows["web.1"], rows["eater.1"]
    assert cgroup_file(platform, web["Name"], "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert cgroup_file(platform, eater["Name"], "memory", "memory.limit_in_bytes") == str(48 << 20)
    assert cgroup_file(platform, eater["Name"], "pids", "pids.max") == "200"
    assert cgroup_file(platform, eater["Name"], "cpu", "cpu.cfs_quota_us") == "100000"
    assert (eater["Memory"], eater["Cpus"], eater["PidsLimit"]) == (48 << 20, 1.0, 200)
    assert eater["Limits"] == "mem=48m cpus=1 pids=200 disk=10g"  # the instance's disk default
    assert web["RestartPolicy"] == "on-failure:5"
    assert "mem=96m pids=200" in platform.cli("ps", "hog").stdout

    # over its limit: OOM-killed, restarted with Docker's backoff, 5 times, then left exited
    with Poller(platform, "calm") as poll:
        (data / "eat").write_text("")
        seen = wait_ps(platform, "hog", "eater.1", lambda r: r["State"] == "exited", timeout=90)
        table = platform.cli("ps", "hog").stdout
    restarting = [r for r in seen if r["State"] == "restarting"]
    assert restarting, [r["Status"] for r in seen]
    assert restarting[-1]["ExitCode"] == 137 and restarting[-1]["OOMKilled"] is True, (
        restarting[-1], platform.cli("container:inspect", restarting[-1]["Name"],
                                     check=False).stdout)
    assert restarting[-1]["Status"].startswith("restarting (exited 137, OOM killed, ")
    final = seen[-1]
    assert (final["ExitCode"], final["OOMKilled"], final["Restarts"]) == (137, True, 5), final
    assert final["Status"] == "exited (137, OOM killed, 5 restarts)"
    assert "exited (137, OOM killed, 5 restarts)" in table
    assert len((data / "eater-starts").read_text().splitlines()) == 6  # 1 start + 5 restarts
    # meanwhile: the other app answered every request, and hog's web is still up
    assert len(poll.answers) > 20 and all(s == 200 for s, _ in poll.answers), poll.answers[-5:]
    assert by_process(platform, "hog")["web.1"]["State"] == "running"
    assert get_ok(platform, "hog", "/").startswith("v1 web.1")

    (data / "eat").unlink()
    platform.cli("ps:restart", "hog")  # a new release starts a fresh eater
    assert by_process(platform, "hog")["eater.1"]["Status"] == "running"
    for app in ("hog", "calm"):
        platform.cli("apps:destroy", app, "--force")


def test_restart_policy_and_limits_are_used_by_the_next_release(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    deploy(platform, app_repo("hello"), "pol")
    before = by_process(platform, "pol")["web.1"]
    assert before["RestartPolicy"] == "on-failure:10"
    assert before["Limits"] == "pids=4096 disk=10g"  # the instance's defaults
    platform.cli("ps:set", "pol", "restart-policy", "unless-stopped")
    platform.cli("resource:limit", "pol", "--process", "web", "--memory", "200m")
    same = by_process(platform, "pol")["web.1"]  # the running release is left alone
    assert same["Name"] == before["Name"] and same["RestartPolicy"] == "on-failure:10"
    assert "Restart policy: unless-stopped" in platform.cli("ps:report", "pol").stdout

    platform.cli("ps:restart", "pol")
    after = by_process(platform, "pol")["web.1"]
    assert after["Release"] == "v2" and after["RestartPolicy"] == "unless-stopped"
    assert after["Limits"] == "mem=200m pids=4096 disk=10g"
    assert cgroup_file(platform, after["Name"], "memory", "memory.limit_in_bytes") == \
        str(200 << 20)
    report = json.loads(platform.cli("ps:report", "pol", "--format", "json").stdout)
    assert report["release"] == "v2" and report["running"] == 1
    assert report["containers"][0]["RestartPolicy"] == "unless-stopped"
    platform.cli("apps:destroy", "pol", "--force")


def _ip(platform: Platform, name: str) -> str:
    """The container's address on the bridge (the state DB's IPAM row)."""
    cid = json.loads(platform.cli("container:inspect", name).stdout)[0]["Id"]
    conn = sqlite3.connect(f"file:{platform.root / 'state.db'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT ip FROM net_attachments WHERE container_id = ?",
                           (cid,)).fetchone()
    finally:
        conn.close()
    return str(row[0]) if row else ""


def test_web_container_restarted_by_its_policy_gets_traffic_again(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    deploy(platform, app_repo("hello"), "back")
    web = by_process(platform, "back")["web.1"]
    assert web["RestartPolicy"] == "on-failure:10"
    before = _ip(platform, web["Name"])
    pid = json.loads(platform.cli("container:inspect", web["Name"]).stdout)[0]["State"]["Pid"]
    try:
        os.kill(pid, signal.SIGKILL)  # from outside, not a user's stop: the policy applies
        rows = wait_ps(platform, "back", "web.1",
                       lambda r: r["Restarts"] >= 1 and r["State"] == "running", timeout=30)
        assert rows[-1]["Name"] == web["Name"]
        # a restart keeps the container's address, so the app's service still reaches it
        assert _ip(platform, web["Name"]) == before
        wait_body(platform, "back", "v1")
    finally:
        platform.cli("apps:destroy", "back", "--force")


def test_apps_get_the_default_disk_limit_and_resource_limit_disk_lowers_it(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    deploy(platform, app_repo("hello"), "dsk")
    web = by_process(platform, "dsk")["web.1"]
    assert web["Disk"] == 10 << 30 and "disk=10g" in web["Limits"]
    df = platform.cli("container:exec", web["Name"], "df", "-B1", "--output=size", "/").stdout
    assert 9 << 30 < int(df.split()[-1]) <= 10 << 30  # its own 10 GiB filesystem
    cid = json.loads(platform.cli("container:inspect", web["Name"]).stdout)[0]["Id"]
    image = platform.root / "containers" / cid / "layer.img"
    assert image.stat().st_size == 10 << 30 and image.stat().st_blocks * 512 < 200 << 20

    platform.cli("resource:limit", "dsk", "--disk", "64m")
    report = json.loads(platform.cli("resource:report", "dsk", "--format", "json").stdout)
    assert report["effective"]["web"]["disk"] == "64m"
    platform.cli("ps:restart", "dsk")
    web = by_process(platform, "dsk")["web.1"]
    assert web["Disk"] == 64 << 20
    res = platform.cli("container:exec", web["Name"], "dd", "if=/dev/zero", "of=/tmp/fill",
                       "bs=1M", "count=200", check=False)
    assert res.returncode != 0 and "No space left on device" in res.stderr, res.stderr
    assert get_ok(platform, "dsk", "/").startswith("v1 ")  # a full layer, a serving app
    platform.cli("apps:destroy", "dsk", "--force")
