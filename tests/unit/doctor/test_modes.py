"""paas.doctor.modes: which paths of an instance's tree are too open, the report lines,
and the repair. The tree is made here with the modes main gave before issue 12."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from paas.doctor.modes import Finding, bundle_gid, checks_of, repair, scan
from paas.paths import Paths

CID = "c" * 64


def _put(root: Path, rel: str, mode: int, text: str = "x") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if rel.endswith("/"):
        p.mkdir(exist_ok=True)
    else:
        p.write_text(text)
    p.chmod(mode)
    return p


def _old_tree(root: Path) -> None:
    root.chmod(0o755)
    _put(root, "state.db", 0o644)
    _put(root, "state.db-wal", 0o644)
    _put(root, "images/blobs/sha256/ab", 0o644)
    _put(root, "images/index.json", 0o644)
    for d in ("images/blobs/sha256/", "images/blobs/", "images/"):
        _put(root, d, 0o755)
    _put(root, "snapshots/100000-65536/1/fs/etc/secret", 0o644)  # a layer tree: its own
    _put(root, "snapshots/100000-65536/locks/ab", 0o644)
    _put(root, "snapshots/100000-65536/", 0o711)
    _put(root, "snapshots/", 0o755)
    spec = {"linux": {"gidMappings": [{"containerID": 0, "hostID": os.getgid(), "size": 1}]}}
    b = f"containers/{CID}/"
    _put(root, b + "config.json", 0o644, json.dumps(spec))
    _put(root, b + "container.log", 0o644)
    _put(root, b + "hosts", 0o644)  # read in the container: fine
    _put(root, b + "upper/tmp/sh", 0o4755)  # the container's own
    _put(root, b + "work/", 0o755)
    _put(root, b, 0o711)
    _put(root, "containers/", 0o711)
    _put(root, "nginx/logs/app-access.log", 0o644)
    _put(root, "nginx/nginx.conf", 0o644)
    _put(root, "nginx/logs/", 0o755)
    _put(root, "nginx/", 0o755)
    _put(root, "run/paasd.log", 0o644)
    _put(root, "run/network.lock", 0o644)  # under the 0700 run/: not looked at
    _put(root, "run/", 0o700)
    _put(root, "data/storage/app/f", 0o644)  # the app's
    _put(root, "data/storage/", 0o755)
    _put(root, "tmp/", 0o755)
    _put(root, "auth/tokens.json", 0o600)
    _put(root, "auth/", 0o755)
    _put(root, "backup.tar", 0o644)


EXPECTED = {
    ("instance root", "."), ("state database", "state.db"),
    ("state database", "state.db-wal"),
    ("image store", "images"), ("image store", "images/blobs"),
    ("image store", "images/blobs/sha256"), ("image store", "images/blobs/sha256/ab"),
    ("image store", "images/index.json"),
    ("layer snapshots", "snapshots"), ("layer snapshots", "snapshots/100000-65536"),
    ("layer snapshots", "snapshots/100000-65536/locks/ab"),
    ("layer snapshots", "snapshots/100000-65536/locks"),  # made 0755 by _put's parents
    ("layer snapshots", "snapshots/100000-65536/1"), ("app files", "data"),
    ("containers", f"containers/{CID}"), ("containers", f"containers/{CID}/config.json"),
    ("containers", f"containers/{CID}/container.log"), ("containers", f"containers/{CID}/work"),
    ("nginx files", "nginx"), ("nginx files", "nginx/logs"),
    ("nginx files", "nginx/nginx.conf"), ("nginx files", "nginx/logs/app-access.log"),
    ("runtime files", "run/paasd.log"),
    ("app files", "data/storage"), ("app files", "tmp"),
    ("keys and tokens", "auth"),  # not backup.tar: not paas's
}


def _scan(root: Path) -> tuple[set[tuple[str, str]], list[Finding], int]:
    found, checked = scan(Paths(str(root)), (os.getuid(), os.getgid()), owner=os.getuid())
    return {(f.kind, os.path.relpath(f.path, root)) for f in found}, found, checked


def test_scan_finds_the_old_modes_and_not_what_containers_own(tmp_path: Path) -> None:
    _old_tree(tmp_path)
    got, found, checked = _scan(tmp_path)
    assert got == EXPECTED
    by_path = {os.path.relpath(f.path, tmp_path): f for f in found}
    assert by_path["."].want == 0o711 and by_path["containers/" + CID].want == 0o710
    assert by_path["state.db"].want == 0o600 and by_path["images"].want == 0o700
    assert by_path["nginx"].want == 0o710 and by_path["nginx/logs"].want == 0o710
    assert checked < 45  # roots of trees, not what is inside them


def test_repair_makes_the_tree_root_only(tmp_path: Path) -> None:
    _old_tree(tmp_path)
    _, found, _ = _scan(tmp_path)
    assert repair(found) == len(found)
    assert _scan(tmp_path)[0] == set()
    assert stat.S_IMODE((tmp_path / "containers" / CID).stat().st_mode) == 0o710
    assert stat.S_IMODE((tmp_path / "state.db").stat().st_mode) == 0o600
    # inside the container's and the layer's trees nothing changed
    assert stat.S_IMODE((tmp_path / "containers" / CID / "upper/tmp/sh").stat().st_mode) == 0o4755
    fs = tmp_path / "snapshots/100000-65536/1/fs/etc/secret"
    assert stat.S_IMODE(fs.stat().st_mode) == 0o644


def test_a_foreign_owner_is_a_finding(tmp_path: Path) -> None:
    tmp_path.chmod(0o711)
    _put(tmp_path, "state.db", 0o600)
    found, _ = scan(Paths(str(tmp_path)), None, owner=os.getuid() + 1)
    assert {(f.kind, f.uid) for f in found} == {("instance root", os.getuid() + 1),
                                                ("state database", os.getuid() + 1)}


def test_bundle_gid(tmp_path: Path) -> None:
    assert bundle_gid(str(tmp_path)) == -1  # no spec: left alone
    (tmp_path / "config.json").write_text(json.dumps({"linux": {"gidMappings": [
        {"containerID": 1000, "hostID": 5, "size": 1},
        {"containerID": 0, "hostID": 200000, "size": 65536}]}}))
    assert bundle_gid(str(tmp_path)) == 200000
    (tmp_path / "config.json").write_text(json.dumps({"linux": {}}))
    assert bundle_gid(str(tmp_path)) is None  # --userns=host: root's alone


def test_checks_one_problem_per_kind(tmp_path: Path) -> None:
    _old_tree(tmp_path)
    _, found, checked = _scan(tmp_path)
    checks = checks_of(found, checked, str(tmp_path))
    assert len(checks) == len({k for k, _ in EXPECTED})
    db = next(c for c in checks if c.name == "state database")
    assert db.value == "2 paths too open (e.g. state.db: 0644, must be 0600)"
    assert not db.ok and "paas report --fix" in db.fix and str(tmp_path) in db.problem
    ok = checks_of([], 31, str(tmp_path))
    assert [(c.name, c.ok, c.value) for c in ok] == [("file modes", True,
                                                       "root-only (31 paths checked)")]
