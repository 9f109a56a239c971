"""What an instance holds on disk and what refers to it, read once: ``Inventory``.

Images (as ``ImageNode``s), the build cache's step images and buildpack cache dirs,
containers, each app's releases and keep-releases setting, every blob with its
real disk usage, snapshots, build log sizes. ``system:df`` and ``system:prune``
(and the prune after each deploy) plan on this one read; sizes of committed
snapshots come from a cache (they never change), everything else is measured.

Not here: deciding what to remove (``gc``), rendering (CLI).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from ..apps.store import AppStore
from ..image.manifest import chain_ids, parse_manifest
from ..image.prune import ImageNode
from ..image.store import ImageStore
from ..image.usage import UsageCache, disk_usage, file_usage
from ..model import Container
from ..runtime.lifecycle import Runtime
from .releases import DEFAULT_KEEP, ReleaseStore, image_tag

__all__ = ["AppReleases", "Inventory", "SnapshotInfo", "load_inventory"]


@dataclass(frozen=True)
class SnapshotInfo:
    id: int
    chain: str
    idmap: str
    size: int  # disk usage of its tree


@dataclass(frozen=True)
class AppReleases:
    """An app's releases (newest first: version, image id) and how many it keeps."""

    app: str
    versions: tuple[tuple[int, str], ...]
    keep: int

    @property
    def current(self) -> int | None:
        return self.versions[0][0] if self.versions else None

    @property
    def kept(self) -> tuple[tuple[int, str], ...]:
        return self.versions[:self.keep]

    def kept_tags(self) -> set[str]:
        return {image_tag(self.app, v) for v, _ in self.kept}


@dataclass(frozen=True)
class Inventory:
    images: tuple[ImageNode, ...]
    cache: Mapping[str, float]  # build step image manifest -> when recorded (newest)
    containers: tuple[Container, ...]
    apps: tuple[AppReleases, ...]
    blobs: Mapping[str, int]  # every blob file: digest -> disk usage
    blob_mtimes: Mapping[str, float]
    snapshots: tuple[SnapshotInfo, ...]
    staging: int  # bytes in snapshot staging dirs
    buildpack_caches: Mapping[str, tuple[float, int]]  # app -> (mtime, disk usage)
    build_logs: Mapping[str, int]  # manifest -> bytes of its build log
    container_sizes: Mapping[str, int]  # id -> writable layer + bundle, logs excluded
    container_logs: Mapping[str, int]  # id -> bytes of its json-file logs
    nginx_logs: Mapping[str, int]  # file name -> bytes


def _images(store: ImageStore) -> list[ImageNode]:
    tags: dict[str, list[str]] = {}
    for name, tag, digest in store.catalog.all_tags():
        tags.setdefault(digest, []).append(f"{name}:{tag}")
    added = {str(r[0]): float(r[1]) for r in store.conn.execute(
        "SELECT manifest_digest, added FROM images").fetchall()}
    nodes = []
    for row in store.catalog.images():
        _cfg, layers = parse_manifest(store.content.read(row.manifest_digest))
        doc = json.loads(store.content.read(row.config_digest))
        diff_ids = (doc.get("rootfs") or {}).get("diff_ids") or ()
        nodes.append(ImageNode(
            manifest=row.manifest_digest, config=row.config_digest,
            layers=tuple(d.digest for d in layers), chains=chain_ids(diff_ids),
            tags=tuple(tags.get(row.manifest_digest, ())),
            added=added.get(row.manifest_digest, 0.0)))
    return nodes


def _blobs(blob_dir: str) -> tuple[dict[str, int], dict[str, float]]:
    sizes: dict[str, int] = {}
    mtimes: dict[str, float] = {}
    try:
        entries = list(os.scandir(blob_dir))
    except FileNotFoundError:
        return sizes, mtimes
    for e in entries:
        try:
            st = e.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        sizes["sha256:" + e.name] = st.st_blocks * 512
        mtimes["sha256:" + e.name] = st.st_mtime
    return sizes, mtimes


def _snapshots(store: ImageStore, cache: UsageCache | None) -> tuple[list[SnapshotInfo], int]:
    rows = store.conn.execute("SELECT id, chain_id, idmap, created FROM snapshots").fetchall()
    out = []
    for sid, chain, idmap, created in rows:
        tree = os.path.join(store.ctx.paths.snapshots, str(idmap), str(sid))
        size = cache.get(f"{idmap}/{sid}", repr(float(created)), tree) if cache else 0
        out.append(SnapshotInfo(int(sid), str(chain), str(idmap), size))
    if cache is None:
        return out, 0
    cache.save(keep={f"{s.idmap}/{s.id}" for s in out})
    staging = 0
    root = store.ctx.paths.snapshots
    for key in os.listdir(root) if os.path.isdir(root) else []:
        kdir = os.path.join(root, key)
        if os.path.isdir(kdir):
            staging += sum(disk_usage(os.path.join(kdir, n)) for n in os.listdir(kdir)
                           if n.startswith("tmp-"))
    return out, staging


def _apps(conn: sqlite3.Connection) -> list[AppReleases]:
    apps = AppStore(conn)
    releases = ReleaseStore(conn)
    out = []
    for rec in apps.list():
        keep = int(rec.setting("keep-releases") or DEFAULT_KEEP)
        versions = tuple((r.version, r.image_id) for r in releases.list(rec.name))
        out.append(AppReleases(rec.name, versions, keep))
    return out


def _dir_sizes(root: str) -> dict[str, tuple[float, int]]:
    out = {}
    for name in os.listdir(root) if os.path.isdir(root) else []:
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            out[name] = (os.lstat(path).st_mtime, disk_usage(path))
    return out


def _logs(bundle_dir: str) -> int:
    try:
        names = os.listdir(bundle_dir)
    except FileNotFoundError:
        return 0
    return sum(file_usage(os.path.join(bundle_dir, n)) for n in names
               if n.startswith("container.log"))


def load_inventory(rt: Runtime, *, sizes: bool = True) -> Inventory:
    """Everything ``gc``/``df`` need, read once (containers reconciled first).
    ``sizes=False``: no walks of snapshot and container trees (their sizes are 0),
    for the quick prune after a deploy."""
    store = rt.images
    paths = rt.ctx.paths
    containers = tuple(rt.list_containers())
    cache = {str(m): float(t) for m, t in rt.conn.execute(
        "SELECT manifest_digest, MAX(created) FROM build_cache GROUP BY manifest_digest")}
    logs = {str(m): int(n) for m, n in rt.conn.execute(
        "SELECT manifest_digest, length(CAST(log AS BLOB)) FROM build_logs")}
    blobs, mtimes = _blobs(store.content.blob_dir)
    cache_file = os.path.join(paths.tmp, "usage-cache.json")
    snaps, staging = _snapshots(store, UsageCache(cache_file) if sizes else None)
    bundles = {c.id: paths.container_dir(c.id) for c in containers} if sizes else {}
    nginx_logs = os.path.join(paths.root, "nginx", "logs")
    return Inventory(
        images=tuple(_images(store)), cache=cache, containers=containers,
        apps=tuple(_apps(rt.conn)), blobs=blobs, blob_mtimes=mtimes,
        snapshots=tuple(snaps), staging=staging,
        buildpack_caches=_dir_sizes(paths.build_cache), build_logs=logs,
        # binds/: a starting container's bind sources (the operator's data), not its own
        container_sizes={cid: disk_usage(d, skip_prefix=("container.log",), skip_top=("binds",))
                         for cid, d in bundles.items()},
        container_logs={cid: _logs(d) for cid, d in bundles.items()},
        nginx_logs={n: file_usage(os.path.join(nginx_logs, n))
                    for n in (os.listdir(nginx_logs) if os.path.isdir(nginx_logs) else [])},
    )
