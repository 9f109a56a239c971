"""Carrying out a ``GcPlan``: ``prune(rt, policy)`` removes containers, release tags,
images with the blobs and snapshots only they used, orphaned blobs, build cache
entries and stale temp files, and reports what went and the space it freed.

Blobs are deleted under the image store's lock after the rows, re-checking inside
the transaction which blobs the remaining images refer to, so an image recorded
meanwhile keeps its blobs; blobs written in the last ``grace`` seconds stay (a
writer records its image only after writing them).

Not here: what to remove (``gc``), rendering (CLI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ..errors import InvalidArgument, PaasError
from ..image.manifest import parse_manifest
from ..image.store import ImageStore
from ..runtime.lifecycle import Runtime
from ..state import transaction
from .gc import DEFAULT_BUILD_CACHE_MAX, GcPlan, Policy, plan
from .inventory import Inventory, load_inventory
from .locks import DeployLock

__all__ = ["PruneReport", "auto_prune", "build_cache_max", "busy_apps", "parse_cap", "prune",
           "summary"]

TMP_PREFIXES = ("ingest-", "deploy-", "buildpack-", "build-", "bootstrap-", ".tmp-")
TMP_MAX_AGE = 24 * 3600.0


@dataclass
class PruneReport:
    containers: list[str] = field(default_factory=list)  # ids
    untagged: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # image ids
    buildpack_caches: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)  # nginx log files
    blobs: int = 0
    snapshots: int = 0
    reclaimed: int = 0
    failures: list[str] = field(default_factory=list)


def busy_apps(root: str, apps: Collection[str]) -> frozenset[str]:
    """Apps whose deploy lock is held right now."""
    lock = DeployLock(root)
    return frozenset(a for a in apps if lock.holder(a) is not None)


def build_cache_max(env: Mapping[str, str] | None = None) -> int:
    """The build cache's cap: ``PAAS_BUILD_CACHE_MAX`` (a size like 2GB), else 5GB."""
    text = (os.environ if env is None else env).get("PAAS_BUILD_CACHE_MAX", "")
    return parse_cap(text, "PAAS_BUILD_CACHE_MAX") if text else DEFAULT_BUILD_CACHE_MAX


def parse_cap(text: str, what: str = "--build-cache-max") -> int:
    """A size cap: 0, or Docker's sizes (512m, 2g, 10GB: binary units)."""
    from ..runtime.options import parse_size

    if text.strip() == "0":
        return 0
    try:
        return parse_size(text)
    except PaasError as err:
        raise InvalidArgument(f"invalid {what} {text!r}",
                              "use 0 or a size with a unit k, m, g or t, e.g. 2g") from err


def auto_prune(rt: Runtime) -> str:
    """The prune after a deploy: images, blobs, snapshots and build cache beyond its
    cap, never containers; skips the build caches of apps deploying now (not ours:
    our build is done). A one-line summary, '' when nothing went."""
    inv = load_inventory(rt, sizes=False)
    me = os.getpid()
    lock = DeployLock(rt.ctx.paths.root)
    busy = set()
    for a in inv.apps:
        h = lock.holder(a.app)
        if h is not None and h.pid != me:
            busy.add(a.app)
    report = prune(rt, Policy(containers=False, build_cache_max=build_cache_max(),
                              busy_apps=frozenset(busy)), inv)
    return summary(report) if report.images or report.untagged or report.blobs \
        or report.snapshots or report.buildpack_caches else ""


def summary(r: PruneReport) -> str:
    """``Pruned 2 images, 3 layers, 1 build cache: 45.2MB reclaimed``."""
    from ..image.usage import human_size

    parts = [f"{n} {what}{'s' if n != 1 else ''}" for n, what in (
        (len(r.containers), "container"), (len(r.images), "image"), (r.snapshots, "layer"),
        (len(r.buildpack_caches), "build cache"), (r.blobs, "blob")) if n]
    return f"Pruned {', '.join(parts) or 'nothing'}: {human_size(r.reclaimed)} reclaimed"


def prune(rt: Runtime, policy: Policy, inv: Inventory | None = None) -> PruneReport:
    inv = inv if inv is not None else load_inventory(rt)
    p = plan(inv, policy)
    report = PruneReport()
    _containers(rt, inv, p, report)
    _images(rt.images, inv, p, policy, report)
    _buildpack_caches(rt, inv, p, report)
    logs = os.path.join(rt.ctx.paths.root, "nginx", "logs")
    for name in p.nginx_logs:
        with contextlib.suppress(FileNotFoundError):  # rotated away meanwhile
            os.unlink(os.path.join(logs, name))
            report.logs.append(name)
            report.reclaimed += inv.nginx_logs.get(name, 0)
    report.reclaimed += _stale_tmp(rt.ctx.paths.tmp, policy.now)
    return report


def _containers(rt: Runtime, inv: Inventory, p: GcPlan, report: PruneReport) -> None:
    for c in p.containers:
        try:
            rt.remove(rt.store.get(c.id))
        except PaasError as err:  # started again meanwhile, or already removed
            report.failures.append(f"container {c.name}: {err.render()}")
            continue
        report.containers.append(c.id)
        report.reclaimed += inv.container_sizes.get(c.id, 0) + inv.container_logs.get(c.id, 0)


def _images(store: ImageStore, inv: Inventory, p: GcPlan, policy: Policy,
            report: PruneReport) -> None:
    if not (p.untag or p.images.remove or p.orphan_blobs):
        if p.snapshots:
            _snapshots(store, inv, report)
        return
    catalog = store.catalog
    ids = {n.manifest: n.config for n in inv.images}
    candidates = set(p.images.freed_blobs) | set(p.orphan_blobs)
    with store._lock():  # the store's own lock: writers record images under it
        with transaction(store.conn):
            for ref in p.untag:
                name, _, tag = ref.rpartition(":")
                if catalog.tag(name, tag) is not None:
                    catalog.delete_tag(name, tag)
                    report.untagged.append(ref)
            for m in p.images.remove:
                if catalog.image(m) is None:
                    continue
                for name, tag in catalog.tags_of(m):
                    catalog.delete_tag(name, tag)
                    report.untagged.append(f"{name}:{tag}")
                catalog.delete_image(m)  # its build cache rows and build log go with it
                report.images.append(ids[m])
            referenced: set[str] = set()
            for row in catalog.images():
                cfg, layers = parse_manifest(store.content.read(row.manifest_digest))
                referenced.update([row.manifest_digest, cfg.digest, *(d.digest for d in layers)])
        fresh = policy.now - policy.grace
        for digest in sorted(candidates - referenced):
            if inv.blob_mtimes.get(digest, 0.0) >= fresh:
                continue
            if store.content.delete(digest):
                report.blobs += 1
                report.reclaimed += inv.blobs.get(digest, 0)
        store._sync_index()
    _snapshots(store, inv, report)


def _snapshots(store: ImageStore, inv: Inventory, report: PruneReport) -> None:
    """Snapshots no image needs any more (and staging dirs a day old)."""
    report.snapshots += store.prune_snapshots()
    left = {int(r[0]) for r in store.conn.execute("SELECT id FROM snapshots").fetchall()}
    report.reclaimed += sum(s.size for s in inv.snapshots if s.id not in left)


def _buildpack_caches(rt: Runtime, inv: Inventory, p: GcPlan, report: PruneReport) -> None:
    for app in p.buildpack_caches:
        path = os.path.join(rt.ctx.paths.build_cache, app)
        if DeployLock(rt.ctx.paths.root).holder(app) is not None:
            continue  # a build of it started meanwhile
        if os.path.isdir(path):
            shutil.rmtree(path)
            report.buildpack_caches.append(app)
            report.reclaimed += inv.buildpack_caches.get(app, (0.0, 0))[1]


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f if len(line.split()) > 4]


def _stale_tmp(tmp: str, now: float) -> int:
    """Temp files and dirs of crashed builds/deploys older than a day (none with a
    mount inside); the bytes freed."""
    from ..image.usage import disk_usage

    freed = 0
    try:
        names = [n for n in os.listdir(tmp) if n.startswith(TMP_PREFIXES)]
    except FileNotFoundError:
        return 0
    mounts: list[str] | None = None
    for name in names:
        path = os.path.join(tmp, name)
        try:
            if now - os.lstat(path).st_mtime < TMP_MAX_AGE:
                continue
        except FileNotFoundError:
            continue
        if mounts is None:
            mounts = _mount_points()
        if any(m == path or m.startswith(path + "/") for m in mounts):
            continue
        freed += disk_usage(path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    return freed
