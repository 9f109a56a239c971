"""Live restore, restart policies and reboot restore on real runc (keeper + paasd worker).

Containers run with ``--network none``: networking is not what is tested here.
One instance for the module (``engine``); tests run in file order and the
reboot simulation, which stops the keeper, comes last. Each test removes its
containers.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

TICKER = ("i=0; while [ ! -e /x/stop ]; do i=$((i+1)); echo $i; sleep 0.05; done; "
          "echo done; exit 3")


@pytest.fixture
def trigger(tmp_path: Path) -> Path:
    """A host dir bind-mounted at /x, writable by the container's mapped root (outside
    PAAS_ROOT: ``-v`` refuses paas's own state)."""
    d = tmp_path / "x"
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    return d


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def numbers(engine: Any, ref: str) -> list[int]:
    out = engine("container:logs", ref).stdout.split()
    return [int(x) for x in out if x.isdigit()]


def assert_no_gap(nums: list[int]) -> None:
    assert nums, "no output logged"
    missing = sorted(set(range(1, nums[-1] + 1)) - set(nums))
    assert nums == list(range(1, len(nums) + 1)), f"lines lost: {missing[:20]} (of {len(missing)})"


def test_kill_9_of_the_worker_loses_no_line_and_no_exit_code(engine: Any, trigger: Path) -> None:
    engine("container:run", "-d", "--network", "none", "--name", "tick9", "-v", f"{trigger}:/x", "debian:bookworm",
           "sh", "-c", TICKER)
    time.sleep(1.0)
    pid = engine.inspect("tick9")["State"]["Pid"]
    keeper = engine.keeper_pid()

    old = engine.worker_pid()
    assert old is not None
    killed_at = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new = engine.wait_new_worker(old)
    took = time.monotonic() - killed_at
    print(f"\nkeeper brought a new worker up {took:.2f}s after kill -9")
    assert took < 3.0
    assert engine.keeper_pid() == keeper and alive(keeper)
    time.sleep(1.0)
    info = engine.inspect("tick9")
    assert info["State"]["Running"] is True and info["State"]["Pid"] == pid

    # the container exits while no worker runs: the keeper reaps it, the next worker records it
    os.kill(new, signal.SIGKILL)
    (trigger / "stop").touch()
    newer = engine.wait_new_worker(new)
    info = engine.wait_state("tick9", lambda i: not i["State"]["Running"])
    assert info["State"]["Status"] == "exited"
    assert info["State"]["ExitCode"] == 3
    log = (engine.root / "run" / "paasd.log").read_text()
    assert "exit status 3 from the keeper" in log
    nums = numbers(engine, "tick9")
    assert len(nums) > 30
    assert_no_gap(nums)
    assert engine("container:logs", "tick9").stdout.endswith("done\n")
    assert engine.worker_pid() == newer
    engine("container:rm", "tick9")
    assert len(os.listdir(f"/proc/{keeper}/fd")) < 12  # the keeper let go of the container's pipes


def test_daemon_stop_and_start_keep_the_container_and_its_output(engine: Any,
                                                                 trigger: Path) -> None:
    engine("container:run", "-d", "--network", "none", "--name", "tickss", "-v", f"{trigger}:/x", "debian:bookworm",
           "sh", "-c", TICKER)
    time.sleep(0.5)
    pid = engine.inspect("tickss")["State"]["Pid"]
    stopped = engine("daemon:stop")
    assert "paasd stopped" in stopped.stdout
    assert engine("daemon:status", check=False).returncode == 3
    refused = engine("daemon:stop", "--all", check=False)
    assert refused.returncode == 4 and "--force" in refused.stderr
    time.sleep(1.5)  # ~30 lines wait in the pipe meanwhile
    assert alive(pid) and alive(engine.keeper_pid())
    assert "keeper" in engine("daemon:status", check=False).stdout
    engine("daemon:start")
    time.sleep(0.5)
    assert engine.inspect("tickss")["State"]["Pid"] == pid
    (trigger / "stop").touch()
    info = engine.wait_state("tickss", lambda i: not i["State"]["Running"])
    assert info["State"]["ExitCode"] == 3
    nums = numbers(engine, "tickss")
    assert len(nums) > 40
    assert_no_gap(nums)
    engine("container:rm", "tickss")


def test_on_failure_2_restarts_twice_then_stays_exited(engine: Any) -> None:
    engine("container:run", "-d", "--network", "none", "--name", "fail2", "--restart", "on-failure:2",
           "debian:bookworm", "sh", "-c", "echo run; exit 1")
    # an exit its policy restarts is "restarting" at once, never "exited" in between
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = engine.inspect("fail2")
        seen.append((info["State"]["Status"], info["RestartCount"]))
        if seen[-1] == ("exited", 2):
            break
    assert seen[-1] == ("exited", 2), seen
    assert [s for s in seen if s[0] == "exited" and s[1] < 2] == [], seen
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    time.sleep(1.0)
    info = engine.inspect("fail2")
    assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 1
    assert "Exited (1)" in engine("container:ps", "-a").stdout
    assert engine("container:logs", "fail2").stdout == "run\nrun\nrun\n"
    engine("container:rm", "fail2")


def test_always_backs_off_and_stop_keeps_it_stopped(engine: Any, trigger: Path) -> None:
    starts = trigger / "starts"
    engine("container:run", "-d", "--network", "none", "--name", "crashy", "--restart", "always", "--userns=host",
           "-v", f"{trigger}:/x", "debian:bookworm", "sh", "-c", "date +%s.%N >> /x/starts; exit 1")
    saw_restarting = ""
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline:
        ps = engine("container:ps").stdout  # without -a: a restarting container is listed
        if "Restarting (1)" in ps:
            saw_restarting = ps
        time.sleep(0.1)
    times = [float(t) for t in starts.read_text().split()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    print(f"\nalways: {len(times)} starts, gaps {[round(g, 2) for g in gaps]}")
    assert len(times) >= 5
    assert gaps[-1] > 2 * gaps[0]
    assert all(b > a * 1.2 for a, b in itertools.pairwise(gaps[1:])), gaps
    assert saw_restarting, "ps never showed Restarting (1)"
    assert engine.inspect("crashy")["RestartCount"] >= 4

    engine("container:stop", "crashy")
    count = len(starts.read_text().split())
    assert engine.inspect("crashy")["State"]["Status"] == "exited"
    time.sleep(4.0)  # longer than the next backoff delay
    assert len(starts.read_text().split()) == count
    engine("container:rm", "crashy")


def test_stop_of_a_running_always_container_is_final_until_start(engine: Any,
                                                                 trigger: Path) -> None:
    engine("container:run", "-d", "--network", "none", "--name", "svc", "--restart", "always", "-v", f"{trigger}:/x",
           "debian:bookworm", "sh", "-c",
           "trap 'exit 0' TERM; while [ ! -e /x/crash ]; do sleep 0.1; done; rm /x/crash; exit 1")
    engine("container:stop", "svc")
    time.sleep(1.0)
    info = engine.inspect("svc")
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == 0
    engine("container:start", "svc")
    assert engine.inspect("svc")["State"]["Running"] is True
    pid = engine.inspect("svc")["State"]["Pid"]
    (trigger / "crash").touch()  # a crash, not a user stop: restarted
    info = engine.wait_state("svc", lambda i: i["RestartCount"] == 1 and i["State"]["Running"])
    assert info["State"]["Running"] is True and info["State"]["Pid"] != pid
    engine("container:rm", "-f", "svc")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_engine_rss_with_20_idle_containers(engine: Any) -> None:
    def rss() -> tuple[int, int]:
        worker = engine.worker_pid()
        assert worker is not None
        return _rss_kb(engine.keeper_pid()), _rss_kb(worker)

    before = rss()
    names = [f"idle{i}" for i in range(20)]
    for n in names:
        engine("container:run", "-d", "--network", "none", "--name", n, "debian:bookworm", "sleep", "infinity")
    time.sleep(0.5)
    after = rss()
    per = (sum(after) - sum(before)) / len(names)
    print(f"\nRSS keeper+worker: 0 containers {before[0]}+{before[1]} kB, "
          f"20 containers {after[0]}+{after[1]} kB, {per:.0f} kB per container")
    engine("container:rm", "-f", *names)
    assert per < 2048


def test_reboot_restore(engine: Any) -> None:
    engine("container:run", "-d", "--network", "none", "--name", "aw", "--restart", "always", "debian:bookworm",
           "sleep", "infinity")
    engine("container:run", "-d", "--network", "none", "--name", "nn", "debian:bookworm", "sleep", "infinity")
    ids = {n: engine.inspect(n)["Id"] for n in ("aw", "nn")}
    pids = {n: engine.inspect(n)["State"]["Pid"] for n in ("aw", "nn")}
    keeper = engine.keeper_pid()
    refused = engine("daemon:stop", "--all", check=False)
    assert refused.returncode == 4
    out = engine("daemon:stop", "--all", "--force").stdout
    assert "keeper stopped" in out and not alive(keeper)
    # the "reboot": every container process and mount disappears
    runc_root = str(engine.root / "run" / "runc")
    for cid in ids.values():
        subprocess.run(["runc", "--root", runc_root, "delete", "--force", cid], check=True)
        subprocess.run(["umount", str(engine.root / "containers" / cid / "rootfs")], check=True)
    for pid in pids.values():
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid)

    engine("daemon:start")
    aw = engine.wait_state("aw", lambda i: i["State"]["Running"])
    assert aw["State"]["Running"] is True and aw["State"]["Pid"] != pids["aw"]
    assert aw["RestartCount"] == 1
    nn = engine.inspect("nn")
    assert nn["State"]["Status"] == "exited" and nn["State"]["ExitCode"] == 255
    assert "Exited (255)" in engine("container:ps", "-a").stdout
    engine("container:rm", "-f", "aw", "nn")
