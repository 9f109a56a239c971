"""File modes under ``PAAS_ROOT``: what ``paas report`` finds looser than ``paas.modes``
says, and the repair of ``report --fix`` (and of paasd's start, for upgraded installs).

``scan`` stats the known kinds of paths only: the instance root, the state database,
every file of the image store, the roots of the layer snapshots (never the trees inside:
they keep the image's modes), each container's bundle dir and its root-written files,
nginx's dirs, configs, logs and ACME challenges, certificates, and paas's other top-level dirs (nothing it does not
make: an operator's dir under the root is theirs). A ``Finding`` is a path
whose mode has bits it must not have (or lacks the exact mode of a traversed dir), or
whose owner or group is not the one it must have; ``repair`` chowns and chmods them.

Not here: the modes new files get (``paas.modes``, at each creation site).
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from ..config import Context
from ..modes import BUNDLE_DIR, PRIVATE_DIR, PRIVATE_FILE, SHARED_FILE, TRAVERSE_DIR, WORKERS_FILE
from ..paths import Paths
from .checks import Check

log = logging.getLogger(__name__)

__all__ = ["Finding", "bundle_gid", "checks_of", "probe", "repair", "repair_instance", "scan"]

KIND_ROOT = "instance root"
KIND_DB = "state database"
KIND_IMAGES = "image store"
KIND_SNAPSHOTS = "layer snapshots"
KIND_CONTAINERS = "containers"
KIND_NGINX = "nginx files"
KIND_RUN = "runtime files"
KIND_SECRETS = "keys and tokens"
KIND_APPS = "app files"

FIX = "run 'paas report --fix' (makes them root-only)"

_APP_DIRS = ("tmp", "repos", "hooks", "buildcache")  # the dir alone: contents vary


@dataclass(frozen=True)
class Finding:
    """``path`` (of ``kind``) has ``mode``; it must get ``want`` (and ``uid``/``gid``
    when not None)."""

    kind: str
    path: str
    mode: int
    want: int
    uid: int | None = None
    gid: int | None = None


class _Scan:
    def __init__(self, owner: int) -> None:
        self.owner = owner  # root, but for tests
        self.found: list[Finding] = []
        self.checked = 0

    def _stat(self, path: str) -> os.stat_result | None:
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return None  # never followed; paas makes no links here
        self.checked += 1
        return st

    def cap(self, path: str, kind: str, allowed: int, also: int | None = None,
            st: os.stat_result | None = None) -> os.stat_result | None:
        """``path`` may have no mode bits beyond ``allowed``; its owner is root (or
        ``also``)."""
        st = st or self._stat(path)
        if st is None:
            return None
        mode = stat.S_IMODE(st.st_mode)
        uid = None if st.st_uid in (self.owner, also) else self.owner
        if mode & ~allowed or uid is not None:
            self.found.append(Finding(kind, path, mode, mode & allowed, uid=uid))
        return st

    def exact(self, path: str, kind: str, want: int, gid: int | None = None,
              st: os.stat_result | None = None) -> os.stat_result | None:
        """``path`` must have exactly ``want``, owner root (and group ``gid``)."""
        st = st or self._stat(path)
        if st is None:
            return None
        mode = stat.S_IMODE(st.st_mode)
        bad_gid = gid if gid is not None and st.st_gid != gid else None
        uid = self.owner if st.st_uid != self.owner else None
        if mode != want or bad_gid is not None or uid is not None:
            self.found.append(Finding(kind, path, mode, want, uid=uid, gid=bad_gid))
        return st


def _children(path: str) -> Iterator[tuple[str, str]]:
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return
    for name in names:
        yield name, os.path.join(path, name)


def _files_and_dirs(s: _Scan, path: str, kind: str, also: int | None = None) -> None:
    """The direct children of ``path``: dirs root-only, files root-only (owned by root
    or ``also``)."""
    for _, p in _children(path):
        st = s._stat(p)
        if st is not None:
            s.cap(p, kind, PRIVATE_DIR if stat.S_ISDIR(st.st_mode) else PRIVATE_FILE, also, st)


def _images(s: _Scan, path: str) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        s.cap(dirpath, KIND_IMAGES, PRIVATE_DIR)
        for name in filenames:
            s.cap(os.path.join(dirpath, name), KIND_IMAGES, PRIVATE_FILE)
        dirnames.sort()


def _snapshots(s: _Scan, path: str) -> None:
    """snapshots/, each mapping's dir and each snapshot's dir (not the layer tree)."""
    s.cap(path, KIND_SNAPSHOTS, PRIVATE_DIR)
    for name, key in _children(path):
        if s.cap(key, KIND_SNAPSHOTS, PRIVATE_DIR) is None:
            continue
        if name == "views":  # idmapped views of base/ (paas.image.views): the gate alone
            for _, p in _children(key):  # a view's root shows base/ with shifted owners
                st = s._stat(p)
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    s.cap(p, KIND_SNAPSHOTS, PRIVATE_FILE, st=st)
            continue
        _files_and_dirs(s, key, KIND_SNAPSHOTS)
        _files_and_dirs(s, os.path.join(key, "locks"), KIND_SNAPSHOTS)


def bundle_gid(bundle: str) -> int | None:
    """The host gid of the container's root (its spec's gidMappings), None without a
    user namespace; -1 when the spec cannot be read (half-made: left alone)."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            spec = json.loads(f.read())
    except (OSError, ValueError):
        return -1
    for m in (spec.get("linux") or {}).get("gidMappings") or ():
        if m.get("containerID") == 0:
            return int(m["hostID"])
    return None


# bind-mounted and read in the container; init.pid: runc's (no secret, under the 0710 dir)
_BUNDLE_SHARED = ("hosts", "hostname", "resolv.conf", "init.pid")


def _containers(s: _Scan, path: str) -> None:
    s.exact(path, KIND_CONTAINERS, TRAVERSE_DIR)
    for _, d in _children(path):
        gid = bundle_gid(d)
        if gid is None:
            s.exact(d, KIND_CONTAINERS, PRIVATE_DIR)
        elif gid >= 0:
            s.exact(d, KIND_CONTAINERS, BUNDLE_DIR, gid)
        for name, p in _children(d):
            if name in ("rootfs", "upper"):
                continue  # the container's "/": its own modes and owners
            st = s._stat(p)
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                s.cap(p, KIND_CONTAINERS, PRIVATE_DIR, st=st)
            else:
                s.cap(p, KIND_CONTAINERS,
                      SHARED_FILE if name in _BUNDLE_SHARED else PRIVATE_FILE, st=st)


def _nginx(s: _Scan, path: str, workers: tuple[int, int] | None) -> None:
    gid = workers[1] if workers is not None else None

    def traversed(p: str, st: os.stat_result | None = None) -> None:
        if gid is None:
            s.cap(p, KIND_NGINX, PRIVATE_DIR, st=st)
        else:
            s.exact(p, KIND_NGINX, BUNDLE_DIR, gid, st=st)

    traversed(path)
    for name, p in _children(path):
        st = s._stat(p)
        if st is None:
            continue
        if name in ("logs", "tmp") and stat.S_ISDIR(st.st_mode):
            traversed(p, st)
        elif name == "acme" and stat.S_ISDIR(st.st_mode):  # the workers serve challenges
            _acme(s, p, traversed, gid)
        elif stat.S_ISDIR(st.st_mode):
            s.cap(p, KIND_NGINX, PRIVATE_DIR, st=st)
            _files_and_dirs(s, p, KIND_NGINX)
        else:
            s.cap(p, KIND_NGINX, PRIVATE_FILE, st=st)
    # the master chowns reopened logs to the workers' user
    _files_and_dirs(s, os.path.join(path, "logs"), KIND_NGINX,
                    None if workers is None else workers[0])


def _acme(s: _Scan, path: str, traversed: Callable[..., None], gid: int | None) -> None:
    """nginx/acme/: dirs 0710 root:workers, challenge files 0640 root:workers."""
    for dirpath, dirnames, filenames in os.walk(path):
        traversed(dirpath)
        for name in filenames:
            _shared_file(s, os.path.join(dirpath, name), KIND_NGINX, gid)
        dirnames.sort()


def _shared_file(s: _Scan, path: str, kind: str, gid: int | None) -> None:
    if gid is None:
        s.cap(path, kind, PRIVATE_FILE)
    else:
        s.exact(path, kind, WORKERS_FILE, gid)


def _certs(s: _Scan, path: str, workers: tuple[int, int] | None) -> None:
    """certs/ and certs/APP/: 0710 root:workers; tls.pem 0640 root:workers (the workers
    read it per handshake); anything else root-only."""
    gid = workers[1] if workers is not None else None

    def traversed(p: str) -> None:
        if gid is None:
            s.cap(p, KIND_SECRETS, PRIVATE_DIR)
        else:
            s.exact(p, KIND_SECRETS, BUNDLE_DIR, gid)

    traversed(path)
    for _, d in _children(path):
        st = s._stat(d)
        if st is None:
            continue
        if not stat.S_ISDIR(st.st_mode):
            s.cap(d, KIND_SECRETS, PRIVATE_FILE, st=st)
            continue
        traversed(d)
        for name, p in _children(d):
            if name == "tls.pem":
                _shared_file(s, p, KIND_SECRETS, gid)
            else:
                s.cap(p, KIND_SECRETS, PRIVATE_FILE)


def _run(s: _Scan, path: str) -> None:
    s.cap(path, KIND_RUN, PRIVATE_DIR)
    for name, p in _children(path):
        if name.endswith((".log", ".pid")):
            s.cap(p, KIND_RUN, PRIVATE_FILE)


def _top(s: _Scan, name: str, path: str, nginx: tuple[int, int] | None) -> None:
    if name == "images":
        _images(s, path)
    elif name == "snapshots":
        _snapshots(s, path)
    elif name == "containers":
        _containers(s, path)
    elif name == "nginx":
        _nginx(s, path, nginx)
    elif name == "run":
        _run(s, path)
    elif name == "certs":
        _certs(s, path, nginx)
    elif name in ("auth", "ssh"):
        s.cap(path, KIND_SECRETS, PRIVATE_DIR)
        if name == "auth":  # ssh/: the file sshd reads is ssh-keys' (its login user's)
            _files_and_dirs(s, path, KIND_SECRETS)
    elif name in ("apps", "locks"):
        s.cap(path, KIND_APPS, PRIVATE_DIR)
        _files_and_dirs(s, path, KIND_APPS)
        for _, d in _children(path) if name == "apps" else ():
            _files_and_dirs(s, d, KIND_APPS)
    elif name == "data":
        s.cap(path, KIND_APPS, PRIVATE_DIR)
        s.cap(os.path.join(path, "storage"), KIND_APPS, PRIVATE_DIR)  # not the app's dirs
    elif name in _APP_DIRS:
        s.cap(path, KIND_APPS, PRIVATE_DIR)
    elif name.startswith("state.db"):
        s.cap(path, KIND_DB, PRIVATE_FILE)
    # anything else is not paas's (an operator's dir to bind-mount, say): left alone


def scan(paths: Paths, nginx: tuple[int, int] | None = None,
         owner: int = 0) -> tuple[list[Finding], int]:
    """Every path under ``paths.root`` looser than it must be, and how many were checked
    (``nginx``: the workers' uid and gid, see ``paas.proxy.params.worker_ids``; ``owner``:
    who must own it all, root but in tests)."""
    s = _Scan(owner)
    if s.exact(paths.root, KIND_ROOT, TRAVERSE_DIR) is None:
        return [], 0
    for name, p in _children(paths.root):
        _top(s, name, p, nginx)
    return s.found, s.checked


def repair(findings: Iterable[Finding]) -> int:
    """chown/chmod every finding (paths gone meanwhile are skipped); how many."""
    done = 0
    for f in findings:
        try:
            if f.uid is not None or f.gid is not None:
                os.chown(f.path, -1 if f.uid is None else f.uid,
                         -1 if f.gid is None else f.gid, follow_symlinks=False)
            os.chmod(f.path, f.want)
        except FileNotFoundError:
            continue
        except OSError as err:  # e.g. a mount paas did not expect: the next report shows it
            log.warning("could not repair %s: %s", f.path, err.strerror)
            continue
        done += 1
    return done


def checks_of(findings: list[Finding], checked: int, root: str) -> list[Check]:
    """Pure: one problem per kind (how many paths, one example), or one line saying all
    is root-only."""
    if not findings:
        return [Check("permissions", "file modes", f"root-only ({checked} paths checked)")]
    by_kind: dict[str, list[Finding]] = {}
    for f in findings:
        by_kind.setdefault(f.kind, []).append(f)
    out = []
    for kind, group in by_kind.items():
        ex = group[0]
        rel = os.path.relpath(ex.path, root) if ex.path != root else root
        what = f"{ex.mode:04o}, must be {ex.want:04o}"
        if ex.uid is not None:
            what += f", owner {ex.uid}"
        if ex.gid is not None:
            what += f", group {ex.gid}"
        n = len(group)
        out.append(Check("permissions", kind, f"{n} path{'s' if n != 1 else ''} too open "
                         f"(e.g. {rel}: {what})",
                         f"{kind}: {n} path{'s' if n != 1 else ''} under {root} other "
                         "users may read, list or run", FIX))
    return out


def _workers(ctx: Context) -> tuple[int, int] | None:
    """nginx's workers' ids as ``params_from_env`` picks them (without reading the rest
    of the environment: a bad ``PAAS_HTTP_PORT`` must not stop a repair)."""
    from ..proxy.params import ProxyParams, default_user, worker_ids

    params = ProxyParams(os.path.join(ctx.paths.root, "nginx"), user=default_user())
    return worker_ids(params if os.geteuid() == 0 else replace(params, user=None))


def probe(ctx: Context) -> list[Check]:
    """``paas report``'s permissions section."""
    found, checked = scan(ctx.paths, _workers(ctx))
    return checks_of(found, checked, ctx.paths.root)


def repair_instance(ctx: Context) -> list[Finding]:
    """``report --fix`` and paasd's start: repair every finding; what was repaired."""
    found, _ = scan(ctx.paths, _workers(ctx))
    repair(found)
    return found
