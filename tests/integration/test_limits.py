"""Default limits on real runc and cgroups (issue 12, item 4): the attacks as written.

- a fork bomb-ish loop of 5,000 ``sleep`` processes stops at the default pids limit;
- a container without a memory limit allocating past the instance's (test-configured,
  small) parent cap is OOM-killed while paasd, its keeper and nginx survive, and
  other containers keep running; none of the platform's processes can be picked
  first by the OOM killer, none of the containers' processes inherits that;
- ``dd`` of more than a container's size limit into its writable layer gets "No space
  left on device" inside, and the host's free space drops by at most about the limit.

One instance for the module (``PAAS_CONTAINERS_MEMORY`` small, so the parent cap is
reached quickly, and ``PAAS_BUILD_DISK_LIMIT`` 64m); each test removes the containers
it made.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import free_port

CAP = 1 << 30  # the containers' parent cgroup cap for this module (4096 sleeps: ~750 MB)


@pytest.fixture(scope="module")
def limited(instance_tools: Any, engine_class: Any, rootfs_tar: Path) -> Iterator[Any]:
    paas_instance, cli_for = instance_tools
    with paas_instance() as env:
        env.update(PAAS_CONTAINERS_MEMORY=str(CAP), PAAS_BUILD_DISK_LIMIT="64m",
                   PAAS_HTTP_ADDR="127.0.0.1", PAAS_HTTP_PORT=str(free_port()))
        cli = cli_for(env)
        cli("image:import", str(rootfs_tar), "debian:bookworm")
        cli("daemon:start")
        cli("nginx:start")
        yield engine_class(env, cli)


# perl (in minbase) forks without a shell's retry-with-backoff on EAGAIN: each child
# execs sleep; the parent counts what it could start, then kills them all (it is pid 1)
_FORKER = r"""
my $n = 0;
for (1..5000) {
    my $pid = fork;
    if (!defined $pid) { print "fork failed: $!\n"; last }
    if ($pid == 0) { exec "sleep", "300"; exit 1 }
    $n++;
}
print "started $n\n";
kill "KILL", -1;
"""


def test_fork_bomb_stops_at_the_default_pids_limit(limited: Any) -> None:
    res = limited("container:run", "--rm", "debian:bookworm", "perl", "-e", _FORKER,
                  timeout=300)
    assert res.returncode == 0, res.stderr
    started = int(res.stdout.split("started ")[1].split()[0])
    assert "fork failed: Resource temporarily unavailable" in res.stdout, res.stdout
    # 4096 pids: perl itself and its children (a few may still be forking when it counts)
    assert 4000 <= started <= 4095, started


def test_pids_limit_flag_and_minus_one_override_the_default(limited: Any) -> None:
    script = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
    for flags, want in (([], "4096"), (["--pids-limit", "100"], "100"),
                        (["--pids-limit", "-1"], "max")):
        res = limited("container:run", "--rm", *flags, "debian:bookworm", "sh", "-c", script)
        assert res.stdout.strip() == want, (flags, res.stdout, res.stderr)


def _cgroup_memory(limited: Any) -> Path:
    v1 = Path("/sys/fs/cgroup/memory", f"paas-{limited.instance}")
    return v1 if v1.parent.is_dir() else Path("/sys/fs/cgroup", f"paas-{limited.instance}")


def _limit_file(path: Path) -> Path:
    v1 = path / "memory.limit_in_bytes"
    return v1 if v1.exists() else path / "memory.max"


def _limit(path: Path) -> str:
    return _limit_file(path).read_text().strip()


def _platform_pids(limited: Any) -> dict[str, int]:
    nginx = int((limited.root / "nginx" / "nginx.pid").read_text())
    return {"keeper": limited.keeper_pid(), "paasd": limited.worker_pid() or 0, "nginx": nginx}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_the_containers_parent_cgroup_is_capped_and_reported(limited: Any) -> None:
    assert _limit(_cgroup_memory(limited)) == str(CAP)
    doc = json.loads(limited("report", "--format", "json", check=False).stdout)
    cap = next(c for c in doc["checks"] if c["name"] == "containers' memory cap")
    assert cap["ok"] and cap["value"].startswith("1.07GB of "), cap
    layers = next(c for c in doc["checks"] if c["name"] == "writable layers")
    assert layers["value"].startswith("loop-ext4, 0 attached (project quotas here: "), layers
    # changed behind paasd's back: report says so, report --fix puts it back
    _limit_file(_cgroup_memory(limited)).write_text(str(CAP * 2))
    doc = json.loads(limited("report", "--format", "json", check=False).stdout)
    cap = next(c for c in doc["checks"] if c["name"] == "containers' memory cap")
    assert not cap["ok"] and "report --fix" in cap["fix"], cap
    limited("report", "--fix", check=False)
    assert _limit(_cgroup_memory(limited)) == str(CAP)


def test_an_unlimited_container_past_the_cap_is_oom_killed_alone(limited: Any) -> None:
    before = _platform_pids(limited)
    other = limited("container:run", "-d", "--name", "bystander", "debian:bookworm",
                    "sleep", "300").stdout.strip()
    # no --memory: only the instance's cap stops it (perl touches every byte of 1.5 GiB)
    res = limited("container:run", "--name", "hog", "debian:bookworm", "perl", "-e",
                  '$x = "a" x (1536 * 1024 * 1024); print "allocated\n"', check=False,
                  timeout=120)
    assert res.returncode == 137 and "allocated" not in res.stdout, (res.returncode, res.stdout)
    assert limited.inspect("hog")["State"]["OOMKilled"] is True
    assert limited.inspect(other)["State"]["Running"] is True
    for what, pid in before.items():
        assert _alive(pid), f"{what} (pid {pid}) died"
    assert _platform_pids(limited) == before
    assert limited("container:exec", "bystander", "true").returncode == 0
    limited("container:rm", "-f", "hog", "bystander")


def _has_cap_sys_resource() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def _adj(pid: int | str) -> int:
    return int(Path(f"/proc/{pid}/oom_score_adj").read_text())


def test_the_platform_goes_last_for_the_oom_killer_and_containers_inherit_nothing(
        limited: Any) -> None:
    platform = _platform_pids(limited)
    nginx_workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                     and _ppid(int(p.name)) == platform["nginx"]]
    assert nginx_workers
    targets = {"keeper": -999, "paasd": -500, "nginx": -900}
    if _has_cap_sys_resource():  # a real host: root may lower them
        for what, pid in platform.items():
            assert _adj(pid) == targets[what], what
        assert all(_adj(w) == -900 for w in nginx_workers)
    cid = limited("container:run", "-d", "debian:bookworm", "sh", "-c",
                  "sleep 300 & sleep 301").stdout.strip()
    init = limited.inspect(cid)["State"]["Pid"]
    procs = [init, *(int(p.name) for p in Path("/proc").iterdir()
                     if p.name.isdigit() and _ppid(int(p.name)) == init)]
    assert len(procs) == 3
    exec_adj = limited("container:exec", cid, "cat", "/proc/self/oom_score_adj").stdout
    for adj in [*(_adj(p) for p in procs), int(exec_adj)]:
        assert adj == 500  # the OOM killer's first choice, whoever started runc
        assert all(adj > _adj(p) for p in [*platform.values(), *nginx_workers])
    # and a container cannot lower its own score below what the platform has
    res = limited("container:exec", cid, "sh", "-c",
                  "echo -1 > /proc/self/oom_score_adj; cat /proc/self/oom_score_adj",
                  check=False)
    assert res.stdout == "500\n" and res.stderr, (res.stdout, res.stderr)  # EACCES
    limited("container:rm", "-f", cid)


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


# -- the writable layer's size ------------------------------------------------------------

def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _loops_under(root: Path) -> list[str]:
    """Loop devices whose backing file is under ``root`` (sysfs, as conftest checks)."""
    out = []
    for f in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if f.read_text().strip().startswith(f"{root}/"):
                out.append(f.parent.parent.name)
        except OSError:
            continue
    return out


def test_dd_past_the_size_limit_gets_enospc_and_the_host_keeps_its_space(
        limited: Any) -> None:
    free = _free(limited.root)
    res = limited("container:run", "--name", "filler", "--storage-opt", "size=64m",
                  "debian:bookworm", "sh", "-c",
                  "df -B1 --output=size / | tail -1; dd if=/dev/zero of=/big bs=1M count=1024;"
                  " sync", check=False, timeout=120)
    assert res.returncode == 0, res.stderr  # sync's status: dd failed before it
    assert "No space left on device" in res.stderr, res.stderr
    size = int(res.stdout.split()[0])
    assert 48 << 20 <= size <= 64 << 20  # ext4's own metadata takes a little of it
    # the exited container keeps its layer (a commit could still read it): at most the
    # limit on the host, where without a limit the whole GiB would be (other sessions
    # write to this disk too: the slack)
    cid = limited.inspect("filler")["Id"]
    image = limited.root / "containers" / cid / "layer.img"
    assert image.stat().st_blocks * 512 <= 64 << 20
    assert free - _free(limited.root) < (64 << 20) + (300 << 20)
    df = json.loads(limited("system:df", "-v", "--format", "json").stdout)
    row = next(c for c in df["Containers"] if c["id"] == cid)
    assert 40 << 20 <= row["size"] <= 70 << 20, row  # the real usage, not 1 GiB or 4 KB
    assert _loops_under(limited.root) == []  # exited: no loop device held
    assert limited.inspect("filler")["HostConfig"]["StorageOpt"] == {"size": str(64 << 20)}
    limited("container:rm", "filler")
    assert not image.parent.exists()


def test_no_storage_opt_no_layer_filesystem(limited: Any) -> None:
    res = limited("container:run", "--name", "plain", "debian:bookworm", "sh", "-c",
                  "df -B1 --output=size / | tail -1")
    assert int(res.stdout) > 1 << 30  # the host's filesystem
    bundle = limited.root / "containers" / limited.inspect("plain")["Id"]
    assert (bundle / "upper").is_dir() and not (bundle / "layer.img").exists()
    limited("container:rm", "plain")


def _layer_size(limited: Any, name: str) -> int:
    out = limited("container:exec", name, "df", "-B1", "--output=size,target", "/").stdout
    return int(out.split()[-2])


def test_a_limited_layer_survives_restarts_live_restore_and_a_reboot(limited: Any) -> None:
    limited("container:run", "-d", "--name", "keep", "--restart", "always", "--storage-opt",
            "size=64m", "debian:bookworm", "sh", "-c",
            "test -e /marker || echo first > /marker; exec sleep 600")
    cid = limited.inspect("keep")["Id"]
    assert len(_loops_under(limited.root)) == 1 and _layer_size(limited, "keep") < 64 << 20

    # paasd restarts (live restore): the container and its layer stay as they are
    old = limited.worker_pid()
    limited("daemon:stop")
    limited("daemon:start")
    limited.wait_new_worker(old)
    assert limited.inspect("keep")["State"]["Running"] is True
    assert limited("container:exec", "keep", "cat", "/marker").stdout == "first\n"

    # stopped: nothing attached; started again: re-attached with its files
    limited("container:stop", "-t", "1", "keep")
    assert _loops_under(limited.root) == []
    limited("container:start", "keep")
    assert limited("container:exec", "keep", "cat", "/marker").stdout == "first\n"
    assert _layer_size(limited, "keep") < 64 << 20

    # the "reboot" (as tests/e2e/test_faults.py): processes die, the kernel forgets
    # every mount (so the loop device goes too), paasd comes back and restarts it
    limited("daemon:stop", "--all", "--force")
    pid = limited.inspect("keep")["State"]["Pid"]
    os.kill(pid, 9)
    runc = limited.root / "run" / "runc"
    subprocess.run(["runc", "--root", str(runc), "delete", "--force", cid], check=False,
                   capture_output=True)
    mounts = [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(f"{limited.root}/")), reverse=True):
        subprocess.run(["umount", "-l", target], check=True)
    deadline = time.monotonic() + 10
    while _loops_under(limited.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _loops_under(limited.root) == []
    limited("daemon:start")
    info = limited.wait_state("keep", lambda i: i["State"]["Running"], timeout=30)
    assert info["State"]["Running"], info["State"]
    assert limited("container:exec", "keep", "cat", "/marker").stdout == "first\n"
    assert _layer_size(limited, "keep") < 64 << 20
    limited("container:rm", "-f", "keep")
    assert _loops_under(limited.root) == []


def test_a_busy_layer_detached_lazily_is_mounted_again_from_its_own_device(
        limited: Any) -> None:
    """A stopped container whose layer something still holds (here a host process with
    its cwd in the upper dir; in life an exiting container's overlay) is detached
    lazily; its next start mounts the same loop device again, never a second device
    on the same ext4 image (two superblocks over one filesystem corrupt it)."""
    limited("container:run", "-d", "--name", "busy", "--storage-opt", "size=64m",
            "debian:bookworm", "sh", "-c", "echo kept > /kept; exec sleep 600")
    limited.wait_state("busy", lambda i: i["State"]["Running"], timeout=30)
    cid = limited.inspect("busy")["Id"]
    upper = limited.root / "containers" / cid / "layer" / "upper"
    holder = subprocess.Popen(["sleep", "600"], cwd=upper)
    try:
        limited("container:stop", "-t", "1", "busy")
        held = _loops_under(limited.root)
        assert len(held) == 1  # detached lazily: the holder keeps the filesystem alive
        limited("container:start", "busy")
        assert _loops_under(limited.root) == held  # the same device, no second one
        assert limited("container:exec", "busy", "cat", "/kept").stdout == "kept\n"
    finally:
        holder.kill()
        holder.wait()
    limited("container:rm", "-f", "busy")
    deadline = time.monotonic() + 10
    while _loops_under(limited.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _loops_under(limited.root) == []


def test_a_run_step_that_fills_its_layer_fails_the_build_in_one_line(
        limited: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM debian:bookworm\nRUN dd if=/dev/zero of=/huge bs=1M count=300\n")
    res = limited("image:build", "-t", "huge:v1", str(tmp_path), check=False, timeout=300)
    assert res.returncode != 0
    assert "No space left on device" in res.stdout + res.stderr
    assert "error: the step ran out of space: its writable layer is full (64 MiB)" in res.stderr
    assert res.stderr.count("error:") == 1, res.stderr
    assert _loops_under(limited.root) == []


def test_bad_storage_opts_are_one_line(limited: Any) -> None:
    for opt, msg in (("size=1m", "--storage-opt size 1m is too small"),
                     ("foo=1", "invalid --storage-opt 'foo=1'"), ("size=lots", "invalid size")):
        res = limited("container:run", "--rm", "--storage-opt", opt, "debian:bookworm", "true",
                      check=False)
        assert res.returncode == 125 and msg in res.stderr, res.stderr
        assert len(res.stderr.splitlines()) == 1


def test_uninstall_leaves_no_loop_device(cli: Any, paas_root: dict[str, str],
                                         rootfs_tar: Path) -> None:
    root = Path(paas_root["PAAS_ROOT"])
    cli("image:import", str(rootfs_tar), "debian:bookworm")
    cli("daemon:start")
    cli("container:run", "-d", "--storage-opt", "size=32m", "debian:bookworm", "sleep", "600")
    cli("container:run", "--storage-opt", "size=32m", "debian:bookworm", "true")  # exited
    assert len(_loops_under(root)) == 1
    cli("system:uninstall")
    assert _loops_under(root) == []
    assert not list((root / "containers").iterdir())
