"""An unprivileged host user against PAAS_ROOT (issue 12, items 2 and 3): it must not
read, list or run anything under it.

The instance holds what the review found readable: a deployed app with a config var
(``DATABASE_URL`` with a password, in ``state.db``), a running container with a secret
in its environment (``config.json``) and its log, image blobs and layer trees, nginx's
configs and logs, and a setuid copy of bash the container left in its writable layer.
Root lists every path under the root (the mounted rootfs of each container too); then
a process with a uid and gid nobody uses (``setpriv``, no groups) tries to list each
dir, read and run each file, read each link and connect to each socket, runs the
setuid shell through the bundle's ``upper/`` and ``rootfs/`` paths, and lists every
mount point and overlay dir it finds in ``/proc/self/mountinfo``. The only dirs it may
search (not list) are PAAS_ROOT and ``containers/``, which container uids traverse.

Then the old modes are put back by hand (what main made before the fix): ``paas
report`` names each kind with its fix, the same attack succeeds, ``report --fix`` (and
paasd's start) make the tree root-only again, and the containers and the app still run.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import time
from pathlib import Path

import pytest
from e2e_helpers import AppRepo, Platform
from prereq import require

APP = "modes-app"
LEAK = "modes-leak"
DB_PASSWORD = "s3cr3t-db-pw-7f1c"
ENV_TOKEN = "tok-env-4a9e2b"
LOG_TOKEN = "tok-log-c81d77"

# run as the attacker by the system python (-I: no env, no user site): reads the
# paths to try as JSON on stdin, prints what succeeded as JSON
ATTACK = r"""
import json, os, socket, subprocess, sys
todo = json.load(sys.stdin)
root = todo["root"]
won = []
def attempt(what, path, fn):
    try:
        fn()
    except OSError:
        return
    won.append([what, path])
for d in todo["dirs"]:
    attempt("list", d, lambda: os.listdir(d))
    if os.access(d, os.X_OK) and d not in todo["traversable"]:
        won.append(["search", d])
for f in todo["files"]:
    attempt("read", f, lambda: os.close(os.open(f, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)))
    if os.access(f, os.X_OK):
        won.append(["exec", f])
for ln in todo["links"]:
    attempt("readlink", ln, lambda: os.readlink(ln))
for s in todo["sockets"]:
    def connect(s=s):
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(s)
    attempt("connect", s, connect)
for p in todo["run"]:
    try:
        out = subprocess.run([p, "-p", "-c", "id -u"], capture_output=True, timeout=10)
    except OSError:
        continue
    won.append(["run", p, out.stdout.decode().strip()])
with open("/proc/self/mountinfo") as f:
    mounts = [line.split() for line in f]
for fields in mounts:
    point = fields[4]
    if not point.startswith(root + "/"):
        continue
    attempt("list mount", point, lambda: os.listdir(point))
    for sub in ("bin/bash", "tmp/sh"):
        exe = os.path.join(point, sub)
        if os.path.exists(exe):
            won.append(["see", exe])
    opts = fields[fields.index("-") + 3]
    for opt in opts.split(","):
        key, _, value = opt.partition("=")
        for d in value.split(":") if key in ("lowerdir", "upperdir", "workdir") else ():
            attempt("list overlay dir", d, lambda: os.listdir(d))
print(json.dumps(won))
"""


def unused_id() -> int:
    """A uid and gid no user, group or file of the instance has."""
    for i in range(23456, 24456):
        try:
            pwd.getpwuid(i)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(i)
            continue
        except KeyError:
            return i
    raise AssertionError("no unused id in 23456-24455")


def inventory(root: Path) -> dict[str, list[str]]:
    """Every path under ``root`` by type (as root sees them), setuid files to run."""
    out: dict[str, list[str]] = {"dirs": [], "files": [], "links": [], "sockets": [],
                                 "run": []}
    for dirpath, dirnames, filenames in os.walk(root):
        out["dirs"].append(dirpath)
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                out["links"].append(p)
            elif stat.S_ISSOCK(st.st_mode):
                out["sockets"].append(p)
            elif not stat.S_ISDIR(st.st_mode):
                out["files"].append(p)
                if st.st_mode & stat.S_ISUID and name == "sh":
                    out["run"].append(p)
    return out


def attack(root: Path) -> list[list[str]]:
    """What the unprivileged user managed to do under ``root``."""
    require("setpriv", "/usr/bin/python3")
    todo = inventory(root)
    assert len(todo["files"]) > 1000, "the instance has no layer trees to attack"
    uid = unused_id()
    res = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
         "/usr/bin/python3", "-I", "-c", ATTACK],
        input=json.dumps({**todo, "root": str(root),
                          "traversable": [str(root), str(root / "containers")]}),
        capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"}, check=False,
        cwd="/")
    assert res.returncode == 0, res.stderr
    won: list[list[str]] = json.loads(res.stdout)
    return won


def summary(won: list[list[str]], root: Path) -> str:
    kinds: dict[str, list[str]] = {}
    for w in won:
        kinds.setdefault(w[0], []).append(os.path.relpath(w[1], root))
    return "\n".join(f"{k} ({len(v)}): {', '.join(v[:6])}" for k, v in kinds.items())


@pytest.fixture(scope="module")
def secrets(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The deployed app with its config var and the leaking container; their ids."""
    cli = platform.cli
    cli("apps:create", APP)
    cli("config:set", APP, f"DATABASE_URL=postgres://app:{DB_PASSWORD}@db/app", "--no-restart")
    repo = AppRepo(tmp_path_factory.mktemp("modes") / "hello", "hello")
    res = repo.push(platform.http_url(APP))
    assert res.returncode == 0 and "Application deployed" in res.stderr, res.stderr
    cid = cli("container:run", "-d", "--name", LEAK, "-e", f"API_TOKEN={ENV_TOKEN}",
              "debian:bookworm", "sh", "-c",
              f"echo {LOG_TOKEN}; cp /bin/bash /tmp/sh && chmod 4755 /tmp/sh; "
              "exec sleep 600").stdout.strip()
    deadline = time.monotonic() + 20
    while cli("container:exec", LEAK, "test", "-u", "/tmp/sh", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the container never made its setuid shell"
        time.sleep(0.2)
    return {"cid": cid}


def _contains(path: Path, needle: str) -> bool:
    return path.is_file() and needle.encode() in path.read_bytes()


def test_an_unprivileged_user_reads_lists_and_runs_nothing(
        platform: Platform, secrets: dict[str, str]) -> None:
    root = platform.root
    bundle = root / "containers" / secrets["cid"]
    # the secrets are there (as root sees them), or the attack would prove nothing
    assert _contains(bundle / "config.json", ENV_TOKEN)
    assert _contains(bundle / "container.log", LOG_TOKEN)
    assert any(_contains(p, DB_PASSWORD) for p in root.glob("state.db*"))
    assert (bundle / "upper" / "tmp" / "sh").stat().st_mode & stat.S_ISUID
    assert (root / "nginx" / "logs").is_dir() and (root / "repos" / f"{APP}.git").is_dir()

    won = attack(root)
    assert not won, "the unprivileged user got in:\n" + summary(won, root)

    # and the platform still works: the app serves, containers read their /etc files
    # as any user and resolve names
    assert platform.get(APP).status == 200
    out = platform.cli("container:exec", "-u", "1000", LEAK, "sh", "-c",
                       f"cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null && "
                       f"getent hosts {LEAK}").stdout
    assert LEAK in out
    report = json.loads(platform.cli("report", "--format", "json", check=False).stdout)
    assert [(c["name"], c["ok"]) for c in report["checks"]
            if c["section"] == "permissions"] == [("file modes", True)], report


def test_storage_dirs_stay_usable_under_root_only_parents(platform: Platform) -> None:
    """data/ and data/storage are 0700: runc opens a bind mount's source as host root,
    so the app user still reads and writes its storage dir."""
    platform.cli("storage:ensure-directory", "modes-data")
    data = platform.root / "data" / "storage" / "modes-data"
    assert stat.S_IMODE((platform.root / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((platform.root / "data" / "storage").stat().st_mode) == 0o700
    out = platform.cli("container:run", "--rm", "-u", "1000", "-v", f"{data}:/data",
                       "debian:bookworm", "sh", "-c",
                       "echo kept > /data/f && cat /data/f && id -u").stdout.split()
    assert out == ["kept", "1000"]
    assert (data / "f").read_text() == "kept\n"


def _loosen(root: Path, cid: str) -> None:
    """The modes main gave these paths before the fix."""
    for p in root.glob("state.db*"):
        p.chmod(0o644)
    for dirpath, _, files in os.walk(root / "images"):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    for p in (root / "snapshots", root / "tmp", root / "data", root / "buildcache"):
        p.chmod(0o755)
    for key in (root / "snapshots").iterdir():
        key.chmod(0o711)
        for d in key.iterdir():
            d.chmod(0o755)  # 0700 (mkdtemp) on main too: loosened to prove the check
    bundle = root / "containers" / cid
    os.chown(bundle, 0, 0)
    bundle.chmod(0o711)
    for name in ("config.json", "container.log"):
        (bundle / name).chmod(0o644)
    (bundle / "work").chmod(0o755)
    for d in (root / "nginx", root / "nginx" / "logs", root / "nginx" / "apps"):
        d.chmod(0o755)
    for f in (root / "nginx" / "logs").iterdir():
        f.chmod(0o644)


def test_report_finds_the_old_modes_and_fix_repairs_them(
        platform: Platform, secrets: dict[str, str]) -> None:
    root = platform.root
    _loosen(root, secrets["cid"])
    res = platform.cli("report", "--format", "json", check=False)
    assert res.returncode == 1
    problems = {c["name"]: c for c in json.loads(res.stdout)["checks"]
                if c["section"] == "permissions" and not c["ok"]}
    assert set(problems) >= {"state database", "image store", "layer snapshots",
                             "containers", "nginx files", "app files"}, problems
    assert all("paas report --fix" in c["fix"] for c in problems.values())
    text = platform.cli("report", check=False).stdout
    assert "state database: 3 paths under" in text, text

    won = attack(root)  # the review's reads work again on these modes
    got = {(w[0], os.path.relpath(w[1], root)) for w in won}
    assert ("read", "state.db") in got
    assert ("read", f"containers/{secrets['cid']}/config.json") in got
    assert any(w[0] == "run" and w[2] == "100000" for w in won), summary(won, root)

    fixed = platform.cli("report", "--fix", check=False)
    assert "root-only" in fixed.stderr
    after = json.loads(platform.cli("report", "--format", "json", check=False).stdout)
    assert [(c["name"], c["ok"]) for c in after["checks"]
            if c["section"] == "permissions"] == [("file modes", True)], after
    won = attack(root)
    assert not won, "still reachable after report --fix:\n" + summary(won, root)

    # what was repaired still works: the container restarts, the app serves
    platform.cli("container:restart", LEAK)
    assert platform.cli("container:exec", LEAK, "id", "-u").stdout.strip() == "0"
    assert platform.get(APP).status == 200


def test_paasd_start_repairs_an_upgraded_instance(platform: Platform) -> None:
    db = platform.root / "state.db"
    db.chmod(0o644)
    (platform.root / "images").chmod(0o755)
    platform.cli("daemon:stop")
    platform.cli("daemon:start")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE((platform.root / "images").stat().st_mode) == 0o700
    log = (platform.root / "run" / "paasd.log").read_text()
    assert "root-only" in log

