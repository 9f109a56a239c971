"""Apps' own id ranges with real runc (issue 12, item 3: "a local user becomes root of
every container ... all containers share one uid range").

The attack: app A's container root leaves a setuid-root copy of a shell in its rootfs;
whoever runs it on the host runs as A's container root uid. Here that uid is used
directly (``setpriv --reuid``): it must not signal app B's processes nor write B's
files, because B's containers run in another range. The layers both apps share stay
one copy on disk (the same inode behind both apps' lower dirs, each app seeing its own
owners through its idmapped view); without idmapped mounts (``PAAS_IDMAPPED=off``)
each range gets its own shifted copy; ``system:uninstall`` leaves no view mounted.

Containers are made the way deploys make them: ``POST /containers`` with the app's
name (``paas.deploy`` sends it; a pushed app's build containers are in
tests/e2e/test_idmaps_deploy.py).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paas.daemon.client import DaemonClient
from paas.paths import Paths
from paas.runtime.options import flags_from_argv

pytestmark = pytest.mark.integration

DEFAULT = (100000, 65536)  # PAAS_SUBUID: container:run's range
CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]


def app_container(root: Path, app: str, name: str, script: str) -> str:
    """A detached container of ``app`` running ``script`` then sleeping; its id, once
    the script touched /ready."""
    flags = flags_from_argv(["-d", "--name", name, "debian:bookworm", "sh", "-c",
                             f"{script} && touch /ready && exec sleep 600"])
    reply = DaemonClient(Paths(str(root))).request(
        "POST", "/containers", {"flags": flags, "start": True, "app": app})
    cid = str(reply["id"])
    deadline = time.monotonic() + 20
    while not (root / "containers" / cid / "upper" / "ready").exists():
        assert time.monotonic() < deadline, f"{name} never got ready"
        time.sleep(0.05)
    return cid


def host_root(root: Path, cid: str) -> int:
    """The host uid of root in the container (its spec's uid map)."""
    spec = json.loads((root / "containers" / cid / "config.json").read_text())
    [uid_map] = spec["linux"]["uidMappings"]
    [gid_map] = spec["linux"]["gidMappings"]
    assert uid_map == gid_map and uid_map["containerID"] == 0 and uid_map["size"] == 65536
    return int(uid_map["hostID"])


def pid_of(engine: Any, name: str) -> int:
    return int(engine.inspect(name)["State"]["Pid"])


def as_uid(uid: int, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` run on the host as uid/gid ``uid`` with no other groups and no
    capabilities: what a setuid copy of a shell owned by ``uid`` gives its caller."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                           "--inh-caps=-all", "--", "sh", "-c", script],
                          capture_output=True, text=True, timeout=30, check=False)


def lower_dirs(cid: str) -> list[str]:
    """The overlay lower dirs of the container's rootfs mount, top first."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4].endswith(f"/containers/{cid}/rootfs"):
                opts = fields[fields.index("-") + 3]
                lower = next(o for o in opts.split(",") if o.startswith("lowerdir="))
                return lower.removeprefix("lowerdir=").split(":")
    raise AssertionError(f"no rootfs mount of {cid}")


def test_root_of_one_apps_containers_owns_nothing_of_anothers(engine: Any) -> None:
    root: Path = engine.root
    engine("apps:create", "ida")
    engine("apps:create", "idb")
    a = app_container(root, "ida", "ida.web.1.v1",
                      "echo from-a > /owned-by-a && cp /bin/sh /rootsh && chmod 4755 /rootsh")
    b = app_container(root, "idb", "idb.web.1.v1", "echo from-b > /victim")
    ha, hb = host_root(root, a), host_root(root, b)
    upper_b = root / "containers" / b / "upper"
    # the setuid shell's uid (A's root) against B: no signal, no write
    pid_b = pid_of(engine, "idb.web.1.v1")
    res = as_uid(ha, f"kill -0 {pid_b}")
    assert res.returncode != 0 and "not permitted" in res.stderr, res
    for target in (upper_b / "victim", root / "containers" / b / "rootfs" / "victim",
                   root / "containers" / b / "rootfs" / "new-file"):
        res = as_uid(ha, f"echo pwned >> '{target}'")
        assert res.returncode != 0, (target, res)
    assert (upper_b / "victim").read_text() == "from-b\n"
    assert not (upper_b / "new-file").exists()
    # ... while B's own root may (the test could fail): the ranges are what differs
    assert as_uid(hb, f"kill -0 {pid_b}").returncode == 0
    assert as_uid(ha, f"kill -0 {pid_of(engine, 'ida.web.1.v1')}").returncode == 0

    # two ranges that do not overlap each other or container:run's
    spans = sorted([(ha, 65536), (hb, 65536), DEFAULT])
    assert all(s1 + n1 <= s2 for (s1, n1), (s2, _) in itertools.pairwise(spans)), spans

    # on disk, what each container made is owned by its own range
    upper_a, upper_b = root / "containers" / a / "upper", root / "containers" / b / "upper"
    st = (upper_a / "rootsh").stat()
    assert (st.st_uid, st.st_gid) == (ha, ha) and st.st_mode & stat.S_ISUID
    assert (upper_a / "owned-by-a").stat().st_uid == ha
    assert (upper_b / "victim").stat().st_uid == hb

    # a one-off of A (paas run) and a restart keep A's range
    c = app_container(root, "ida", "ida.run.1234", "true")
    assert host_root(root, c) == ha
    engine("container:restart", "ida.web.1.v1")
    assert host_root(root, a) == ha
    # container:run without an app: the default range, as before
    out = engine("container:run", "--rm", "debian:bookworm", "cat", "/proc/self/uid_map").stdout
    assert out.split() == ["0", str(DEFAULT[0]), "65536"]
    for name in ("ida.web.1.v1", "idb.web.1.v1", "ida.run.1234"):
        engine("container:rm", "-f", name)


def test_shared_base_layer_is_stored_once_and_seen_shifted_per_app(engine: Any) -> None:
    root: Path = engine.root
    engine("apps:create", "lya")
    engine("apps:create", "lyb")
    a = app_container(root, "lya", "lya.web.1.v1", "true")
    b = app_container(root, "lyb", "lyb.web.1.v1", "true")
    ha, hb = host_root(root, a), host_root(root, b)
    base_a, base_b = lower_dirs(a)[-1], lower_dirs(b)[-1]
    assert base_a != base_b  # each through its own range's view ...
    fa, fb = os.stat(f"{base_a}/etc/debian_version"), os.stat(f"{base_b}/etc/debian_version")
    assert (fa.st_dev, fa.st_ino) == (fb.st_dev, fb.st_ino)  # ... of one copy on disk
    assert (fa.st_uid, fb.st_uid) == (ha, hb)  # root-owned in the image: each app's root
    with sqlite3.connect(root / "state.db") as conn:
        rows = conn.execute("SELECT idmap FROM snapshots").fetchall()
    assert [r[0] for r in rows].count("base") == 1, rows
    assert not any(r[0] in (f"{ha}-65536", f"{hb}-65536") for r in rows), rows
    report = engine("report", "--format", "json", check=False).stdout
    assert "idmapped views" in report
    for name in ("lya.web.1.v1", "lyb.web.1.v1"):
        engine("container:rm", "-f", name)


def test_without_idmapped_mounts_each_range_gets_a_shifted_copy(
        paas_root: dict[str, str], cli: CliRunner, rootfs_tar: Path) -> None:
    root = Path(paas_root["PAAS_ROOT"])
    paas_root["PAAS_IDMAPPED"] = "off"
    cli("image:import", str(rootfs_tar), "debian:bookworm")
    cli("daemon:start")
    for app in ("offa", "offb"):
        cli("apps:create", app)
    a = app_container(root, "offa", "offa.web.1.v1", "touch /mine")
    b = app_container(root, "offb", "offb.web.1.v1", "touch /mine")
    ha, hb = host_root(root, a), host_root(root, b)
    assert ha != hb
    for cid, h in ((a, ha), (b, hb)):
        [lower] = lower_dirs(cid)
        assert lower.startswith(f"{root}/snapshots/{h}-65536/"), lower
        assert os.stat(f"{lower}/etc/debian_version").st_uid == h
        assert (root / "containers" / cid / "upper" / "mine").stat().st_uid == h
    assert not any(p.startswith(f"{root}/") and "/views/" in p
                   for p in Path("/proc/self/mountinfo").read_text().split())
    assert "id-shifted copies per range (PAAS_IDMAPPED=off)" in cli("report", check=False).stdout


def test_uninstall_unmounts_the_views(paas_root: dict[str, str], cli: CliRunner,
                                      rootfs_tar: Path) -> None:
    root = Path(paas_root["PAAS_ROOT"])
    cli("image:import", str(rootfs_tar), "debian:bookworm")
    cli("daemon:start")
    cli("apps:create", "gone")
    app_container(root, "gone", "gone.web.1.v1", "true")

    def views() -> list[str]:
        prefix = f"{root}/snapshots/views/"
        with open("/proc/self/mountinfo") as f:
            return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]

    assert len(views()) == 1  # the app's range's, mounted at its first container
    cli("system:uninstall")
    assert views() == []


def test_pool_exhausted_is_one_line_and_destroyed_ranges_stay_reserved(
        paas_root: dict[str, str], cli: CliRunner) -> None:
    Path(paas_root["PAAS_SUBUID_FILE"]).write_text("root:1000000:131072\n")  # two slots
    Path(paas_root["PAAS_SUBGID_FILE"]).write_text("root:1000000:131072\n")
    cli("daemon:start")  # apps:destroy goes through it
    for app in ("one", "two", "three"):
        cli("apps:create", app)
    cli("storage:ensure-directory", "one")
    cli("storage:ensure-directory", "two")
    cli("apps:destroy", "two", "--force")
    res = cli("storage:ensure-directory", "three", check=False)
    assert res.returncode == 5 and res.stdout == "", res  # failed precondition
    [line] = res.stderr.strip().splitlines()  # what is wrong, and what to do
    assert line.startswith("error: no free id range for app three"), line
    assert "1 kept for destroyed apps" in line and "larger range" in line, line
    assert paas_root["PAAS_SUBUID_FILE"] in line and "Traceback" not in res.stderr
    storage = Path(paas_root["PAAS_ROOT"]) / "data" / "storage"
    assert not (storage / "three").exists()  # nothing half-made
    assert (storage / "two").stat().st_uid == 1065536 + 1000  # two's files: still its ids
    cli("apps:create", "two")  # the same name again gets its range (and files) back
    cli("storage:ensure-directory", "two")
    assert json.loads(cli("apps:info", "two", "--format", "json").stdout)[
        "id_range"]["host_id"] == 1065536
