"""Bind sources on real runc (issue 12, item 5): a host path is opened and checked at
every container start, and the container gets exactly what was checked.

The attack: a directory accepted once (``-v DIR:/data:strict``, how app storage mounts
are applied; ``storage:mount`` for apps, see tests/e2e/test_operations.py) is swapped
for a symlink to ``PAAS_ROOT``, or one of its parents is; the next start of that
container, and a new container, must be refused with one line, and nothing of
``PAAS_ROOT`` may be visible inside. Plain ``-v`` follows symlinks like Docker's but
never reaches ``PAAS_ROOT`` either. Staged mounts (``containers/ID/binds/N``) are gone
once a container stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(path + "/")]


def _wait_exited(engine: Any, name: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = engine.inspect(name)["State"]
        if state["Status"] == "exited" or time.monotonic() > deadline:
            return dict(state)
        time.sleep(0.05)


def test_swapping_a_strict_source_for_a_symlink_to_paas_root_is_refused_at_start(
        engine: Any, tmp_path: Path) -> None:
    root = engine.env["PAAS_ROOT"]
    data = tmp_path / "srv" / "data"
    data.mkdir(parents=True)
    (data / "hello").write_text("mine\n")
    spec = f"{data}:/data:strict"
    res = engine("container:run", "--name", "strict1", "-v", spec, "debian:bookworm",
                 "ls", "/data")
    assert res.stdout == "hello\n", res.stdout
    bundle = os.path.join(root, "containers", engine.inspect("strict1")["Id"])
    assert _mounts_under(bundle) == []  # the staged source went with the stop

    # the attack: the checked directory becomes a symlink to PAAS_ROOT
    (data / "hello").unlink()
    data.rmdir()
    data.symlink_to(root)
    res = engine("container:start", "strict1", check=False)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{data} is a symlink" in lines[0], res.stderr
    assert "state.db" not in res.stdout
    assert _mounts_under(bundle) == []  # nothing left mounted by the refused start
    res = engine("container:run", "--rm", "-v", spec, "debian:bookworm", "ls", "/data",
                 check=False)
    assert res.returncode == 125 and "is a symlink" in res.stderr
    assert "state.db" not in res.stdout

    # a parent component swapped instead: srv -> PAAS_ROOT, so srv/data is ROOT/data
    # (every app's storage)
    data.unlink()
    os.makedirs(os.path.join(root, "data", "storage"), exist_ok=True)
    (tmp_path / "srv").rename(tmp_path / "real-srv")
    (tmp_path / "srv").symlink_to(root)
    res = engine("container:start", "strict1", check=False)
    assert res.returncode != 0 and f"{tmp_path}/srv is a symlink" in res.stderr, res.stderr
    assert _mounts_under(bundle) == []
    # ...and a harmless symlinked parent is refused too: strict follows none
    (tmp_path / "real-srv" / "data").mkdir()
    (tmp_path / "srv").unlink()
    (tmp_path / "srv").symlink_to(tmp_path / "real-srv")
    res = engine("container:start", "strict1", check=False)
    assert res.returncode != 0 and f"{tmp_path}/srv is a symlink" in res.stderr, res.stderr
    # the real directory back: it starts again
    (tmp_path / "srv").unlink()
    (tmp_path / "real-srv").rename(tmp_path / "srv")
    engine("container:start", "strict1")
    assert _wait_exited(engine, "strict1")["ExitCode"] == 0
    assert "state.db" not in engine("container:logs", "strict1").stdout
    assert _mounts_under(bundle) == []
    engine("container:rm", "-f", "strict1")


def test_strict_sources_cannot_be_system_dirs_or_paas_state(engine: Any) -> None:
    root = engine.env["PAAS_ROOT"]
    for source in ("/etc", "/", "/proc/self", "/var/lib", root, f"{root}/containers"):
        res = engine("container:run", "--rm", "-v", f"{source}:/x:strict", "debian:bookworm",
                     "true", check=False)
        assert res.returncode == 125, (source, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_plain_volumes_follow_symlinks_but_never_reach_paas_root(engine: Any,
                                                                tmp_path: Path) -> None:
    root = engine.env["PAAS_ROOT"]
    target = tmp_path / "target"
    target.mkdir()
    (target / "f").write_text("via link\n")
    (tmp_path / "link").symlink_to(target)
    res = engine("container:run", "--rm", "-v", f"{tmp_path}/link:/h", "debian:bookworm",
                 "cat", "/h/f")
    assert res.stdout == "via link\n"  # docker -v semantics
    (tmp_path / "evil").symlink_to(root)
    for source in (f"{tmp_path}/evil", root, f"{root}/state.db", "/"):
        res = engine("container:run", "--rm", "-v", f"{source}:/h", "debian:bookworm",
                     "sh", "-c", "head -c 15 /h/state.db /h/*/state.db", check=False)
        assert res.returncode == 125, (source, res.stdout, res.stderr)
        assert "paas's own state" in res.stderr, res.stderr
        assert "SQLite" not in res.stdout
    # a detached container whose source is swapped after its first start
    d = tmp_path / "d"
    d.mkdir()
    engine("container:run", "-d", "--name", "swap1", "-v", f"{d}:/h", "debian:bookworm",
           "ls", "/h")
    assert _wait_exited(engine, "swap1")["ExitCode"] == 0
    d.rmdir()
    d.symlink_to(root)
    res = engine("container:start", "swap1", check=False)
    assert res.returncode != 0 and "paas's own state" in res.stderr, res.stderr
    assert "state.db" not in engine("container:logs", "swap1").stdout
    engine("container:rm", "-f", "swap1")


def test_a_file_source_and_a_source_with_a_submount(engine: Any, tmp_path: Path) -> None:
    f = tmp_path / "conf.txt"
    f.write_text("conf\n")
    res = engine("container:run", "--rm", "-v", f"{f}:/etc/app.conf:ro", "debian:bookworm",
                 "cat", "/etc/app.conf")
    assert res.stdout == "conf\n"
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", f"{data}/sub"],
                   check=True)
    try:
        (data / "sub" / "inner").write_text("submount\n")
        res = engine("container:run", "--rm", "-v", f"{data}:/d:strict", "debian:bookworm",
                     "cat", "/d/sub/inner")
        assert res.stdout == "submount\n"  # recursive, like -v
    finally:
        subprocess.run(["umount", f"{data}/sub"], check=True)
    ids = json.loads(engine("container:ps", "-a", "--format", "json").stdout)
    assert ids == []


def test_staged_sources_go_once_the_container_runs(engine: Any, tmp_path: Path) -> None:
    """Nothing under PAAS_ROOT leads into the operator's data while a container runs:
    the staged mount goes once runc has started it (the container keeps its own)."""
    root = engine.env["PAAS_ROOT"]
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("still here\n")
    engine("container:run", "-d", "--name", "running1", "-v", f"{data}:/d:strict",
           "debian:bookworm", "sh", "-c", "sleep 1; cat /d/f; sleep 30")
    bundle = os.path.join(root, "containers", engine.inspect("running1")["Id"])
    assert _mounts_under(bundle) == [f"{bundle}/rootfs"]
    deadline = time.monotonic() + 20
    while "still here" not in engine("container:logs", "running1").stdout:
        assert time.monotonic() < deadline, engine("container:logs", "running1")
        time.sleep(0.1)
    engine("container:rm", "-f", "running1")
    # attached: gone at the CLI's "started" report, while the command still runs
    run = subprocess.Popen([sys.executable, "-m", "paas", "container:run", "--rm", "-v",
                            f"{data}:/d", "debian:bookworm", "sh", "-c",
                            "echo up; sleep 2; cat /d/f"], env=engine.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stdout is not None
    assert run.stdout.readline() == "up\n"
    time.sleep(0.5)  # the report follows the first 20 ms of the run
    staged = [m for m in _mounts_under(os.path.join(root, "containers")) if "/binds/" in m]
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert out == "still here\n" and staged == []
