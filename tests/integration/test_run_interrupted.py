"""An interrupted attached ``container:run``: nothing of its container is left behind.

Issue 12 (8): ``container:run --rm IMG ... | head -1`` (SIGPIPE), a Ctrl-C, a SIGTERM or
SIGHUP of the CLI left the container "Created" with its rootfs mount, cgroup, bundle and
record. Now the CLI keeps signals until the container runs, then forwards them (sig-proxy);
a lost stdout closes the container's pipe (and ends an init that would have died of
SIGPIPE); and paasd removes the container of a CLI that died anyway (SIGKILL).
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

LOOP = ["sh", "-c", "echo start; while :; do sleep 0.05; done"]  # sh as init: ignores signals
TRAP = ["sh", "-c", 'trap "exit 3" INT TERM HUP; echo start; while :; do sleep 0.05; done']


def _leftovers(engine, cid: str | None = None) -> list[str]:
    """Every trace of containers (or of ``cid``): records, bundles, mounts, cgroups, runc."""
    found = [f"record {c['ID']}" for c in
             json.loads(engine("container:ps", "-a", "--format", "json").stdout)
             if cid is None or cid.startswith(c["ID"])]
    containers = engine.root / "containers"
    ids = [cid] if cid else [p.name for p in containers.iterdir()] if containers.exists() else []
    for i in ids:
        if (containers / i).exists():
            found.append(f"bundle {i[:12]}")
        if (engine.root / "run" / "runc" / i).exists():
            found.append(f"runc state {i[:12]}")
        for depth in ("*", "*/*", "*/*/*"):
            found += [f"cgroup {p}" for p in glob.glob(f"/sys/fs/cgroup/{depth}/{i}")]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f
                  if line.split()[4].startswith(str(containers) + "/")]
    return found


def _gone(engine, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _leftovers(engine)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _cli(engine, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "paas", "container:run", *args], env=engine.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(pred: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def _bundles(engine) -> set[str]:
    d = engine.root / "containers"
    return {p.name for p in d.iterdir()} if d.exists() else set()


@pytest.fixture(autouse=True)
def _clean(engine):
    assert _gone(engine) == []
    yield
    for c in json.loads(engine("container:ps", "-a", "--format", "json").stdout):
        engine("container:rm", "-f", c["ID"], check=False)


@pytest.mark.parametrize("command", [["yes"], ["sh", "-c", "while :; do echo line; done"]])
def test_sigpipe_of_a_pipe_into_head_removes_the_container(engine, command) -> None:
    """The pipeline ends at once and, as in a plain pipeline, the writer dies of SIGPIPE
    (141) or stops at EPIPE; the --rm container is gone."""
    argv = [sys.executable, "-m", "paas", "container:run", "--rm", "debian:bookworm", *command]
    res = subprocess.run(["bash", "-c", 'set -o pipefail; "$@" | head -1; echo "rc=${PIPESTATUS[0]}"',
                          "sh", *argv], env=engine.env, capture_output=True, text=True, timeout=30,
                         check=False)
    first, rc = res.stdout.splitlines()
    assert first in ("y", "line")
    assert rc in ("rc=141", "rc=1"), res.stderr  # yes: "standard output: Broken pipe", exit 1
    assert "Traceback" not in res.stderr
    assert _gone(engine) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_container_is_made_removes_it(engine, sig) -> None:
    """The signal lands between paasd's create and the start: the CLI used to die there."""
    before = _bundles(engine)
    p = _cli(engine, "--rm", "debian:bookworm", *LOOP)
    _wait_for(lambda: _bundles(engine) - before or p.poll() is not None)
    p.send_signal(sig)
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 128 + sig, err  # it was not started
    assert "Traceback" not in err
    assert _gone(engine) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signals_are_forwarded_to_the_running_container(engine, sig) -> None:
    p = _cli(engine, "--rm", "debian:bookworm", *TRAP)
    assert p.stdout is not None and p.stdout.readline() == "start\n"
    p.send_signal(sig)
    p.communicate(timeout=30)
    assert p.returncode == 3  # its trap ran: the container's exit status
    assert _gone(engine) == []


@pytest.mark.parametrize("when", ["creating", "running"])
def test_sigkill_of_the_cli_leaves_the_container_to_paasd(engine, when) -> None:
    """Nothing runs in a SIGKILLed CLI: paasd sees it die and kills and removes the container
    (the container's init ignores SIGTERM and SIGINT; only the kill ends it)."""
    before = _bundles(engine)
    p = _cli(engine, "--rm", "debian:bookworm", *LOOP)
    if when == "creating":
        _wait_for(lambda: _bundles(engine) - before)
    else:
        assert p.stdout is not None and p.stdout.readline() == "start\n"
    p.kill()
    p.communicate(timeout=30)
    assert _gone(engine) == []


def test_sigkill_of_the_cli_records_the_exit_of_a_kept_container(engine) -> None:
    p = _cli(engine, "--name", "kept", "debian:bookworm", *LOOP)
    assert p.stdout is not None and p.stdout.readline() == "start\n"
    p.kill()
    p.communicate(timeout=30)
    info = engine.wait_state("kept", lambda i: i["State"]["Status"] == "exited")
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137
    cid = info["Id"]
    assert [x for x in _leftovers(engine, cid) if not x.startswith(("record", "bundle"))] == []
    engine("container:rm", "kept")
    assert _gone(engine) == []


def test_a_paasd_started_meanwhile_still_removes_the_container_of_a_killed_cli(engine) -> None:
    p = _cli(engine, "--rm", "debian:bookworm", *LOOP)
    assert p.stdout is not None and p.stdout.readline() == "start\n"
    old = engine.worker_pid()
    engine("daemon:stop")
    engine("daemon:start")
    engine.wait_new_worker(old)
    assert _leftovers(engine) != []  # still running, attached
    p.kill()
    p.communicate(timeout=30)
    assert _gone(engine) == []


def test_the_owner_file_is_root_only(engine) -> None:
    p = _cli(engine, "--rm", "debian:bookworm", *LOOP)
    assert p.stdout is not None and p.stdout.readline() == "start\n"
    try:
        (cid,) = _bundles(engine)
        owner = Path(engine.root / "containers" / cid / "owner")
        assert owner.stat().st_mode & 0o777 == 0o600
        pid, _start = owner.read_text().split()
        assert int(pid) == p.pid
    finally:
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
    assert _gone(engine) == []
    assert os.path.exists(engine.root)  # the instance itself is untouched


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_with_a_tty_a_signal_is_forwarded_and_a_killed_cli_leaves_nothing(engine, sig) -> None:
    """-t: runc runs in the foreground on our terminal; SIGTERM goes to it (and on to the
    container), a SIGKILLed CLI leaves the container (and runc) to paasd."""
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "paas", "container:run", "-it", "--rm",
                          "debian:bookworm", *TRAP[:2], TRAP[2].replace("exit 3", "exit 7")],
                         env=engine.env, stdin=slave, stdout=slave, stderr=slave,
                         start_new_session=True)
    os.close(slave)
    try:
        seen = b""
        while b"start" not in seen:
            seen += os.read(master, 4096)
        p.send_signal(sig)
        assert p.wait(timeout=30) == (7 if sig == signal.SIGTERM else -signal.SIGKILL)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert _gone(engine) == []


def test_a_container_started_again_by_paasd_is_not_its_old_clis(engine) -> None:
    """Run attached, exit, container:start (paasd's now), restart paasd: its first CLI is long
    gone, but the container is not an orphan and keeps running."""
    engine("container:run", "--name", "again", "debian:bookworm", *LOOP[:2],
           "test -e /ran && exec sleep 300; touch /ran")
    engine("container:start", "again")
    assert engine.wait_state("again", lambda i: i["State"]["Running"])["State"]["Running"]
    old = engine.worker_pid()
    engine("daemon:stop")
    engine("daemon:start")
    engine.wait_new_worker(old)
    time.sleep(1.0)  # an orphan would be killed by now
    assert engine.inspect("again")["State"]["Running"]
    engine("container:rm", "-f", "again")
    assert _gone(engine) == []
