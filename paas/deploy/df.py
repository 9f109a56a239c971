"""``system:df``'s figures, pure over an ``Inventory``: Docker's TYPE / TOTAL / ACTIVE /
SIZE / RECLAIMABLE rows for images, layers (unpacked snapshots), containers, the build
cache and logs, and the per-item details of ``-v``.

Sizes are real disk usage, each byte counted once: a blob shared by images counts
in the images row once; blobs only build step images use count in the build cache.
RECLAIMABLE is what ``system:prune --all`` would free (``gc.plan`` with ``all``).

Not here: measuring (``inventory``), rendering (CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..image.prune import assign_blobs
from ..model import ContainerState
from .gc import GcPlan
from .inventory import Inventory

__all__ = ["UsageRow", "details", "usage_rows"]


@dataclass(frozen=True)
class UsageRow:
    type: str
    total: int
    active: int
    size: int
    reclaimable: int


def _sum(sizes: dict[str, int], keys: Any) -> int:
    return sum(sizes.get(k, 0) for k in set(keys))


def usage_rows(inv: Inventory, plan: GcPlan) -> list[UsageRow]:
    cache = set(inv.cache)
    images = [n for n in inv.images if n.manifest not in cache]
    steps = [n for n in inv.images if n.manifest in cache]
    used_ids = {c.config.image_id for c in inv.containers}
    running = [c for c in inv.containers if c.state == ContainerState.RUNNING]
    running_ids = {c.config.image_id for c in running}
    removed = set(plan.images.remove)
    image_blobs = {b for n in images for b in n.blobs}
    freed = plan.images.freed_blobs

    active_chains = {ch for n in inv.images if n.config in running_ids for ch in n.chains}
    doomed_snaps = set(plan.snapshots)

    step_sizes = assign_blobs(sorted(steps, key=lambda n: -inv.cache[n.manifest]), images,
                              inv.blobs)
    dirs = inv.buildpack_caches
    dropped_dirs = set(plan.buildpack_caches)

    doomed = {c.id for c in plan.containers}
    clogs = inv.container_logs
    removed_logs = sum(n for m, n in inv.build_logs.items() if m in removed)
    nginx_active = [n for n in inv.nginx_logs if n not in plan.nginx_logs]
    return [
        UsageRow("Images", len(images), sum(1 for n in images if n.config in used_ids),
                 _sum(dict(inv.blobs), image_blobs),
                 _sum(dict(inv.blobs), image_blobs & freed)),
        UsageRow("Layers", len(inv.snapshots),
                 sum(1 for s in inv.snapshots if s.chain in active_chains),
                 sum(s.size for s in inv.snapshots) + inv.staging,
                 sum(s.size for s in inv.snapshots if s.id in doomed_snaps) + inv.staging),
        UsageRow("Containers", len(inv.containers), len(running),
                 sum(inv.container_sizes.values()),
                 sum(inv.container_sizes.get(c, 0) for c in doomed)),
        UsageRow("Build cache", len(steps) + len(dirs), 0,
                 sum(step_sizes.values()) + sum(s for _, s in dirs.values()),
                 sum(step_sizes[n.manifest] for n in steps if n.manifest in removed)
                 + sum(s for a, (_, s) in dirs.items() if a in dropped_dirs)),
        UsageRow("Logs", len(clogs) + len(inv.nginx_logs) + len(inv.build_logs),
                 sum(1 for c in running if clogs.get(c.id)) + len(nginx_active),
                 sum(clogs.values()) + sum(inv.nginx_logs.values())
                 + sum(inv.build_logs.values()),
                 sum(clogs.get(c, 0) for c in doomed) + removed_logs
                 + sum(inv.nginx_logs.get(n, 0) for n in plan.nginx_logs)),
    ]


def details(inv: Inventory) -> dict[str, list[dict[str, Any]]]:
    """``-v``: each image (its shared and unique bytes, containers), container, cache entry."""
    cache = set(inv.cache)
    images = [n for n in inv.images if n.manifest not in cache]
    users: dict[str, int] = {}
    for c in inv.containers:
        users[c.config.image_id] = users.get(c.config.image_id, 0) + 1
    refs: dict[str, int] = {}
    for n in inv.images:
        for b in set(n.blobs):
            refs[b] = refs.get(b, 0) + 1
    out_images = []
    for n in images:
        size = _sum(dict(inv.blobs), n.blobs)
        unique = _sum(dict(inv.blobs), [b for b in n.blobs if refs.get(b, 0) == 1])
        out_images.append({"id": n.config, "tags": list(n.tags), "added": n.added,
                           "size": size, "shared": size - unique, "unique": unique,
                           "containers": users.get(n.config, 0)})
    out_containers = [{"id": c.id, "name": c.name, "image": c.config.image, "state": c.state,
                       "created": c.created, "size": inv.container_sizes.get(c.id, 0),
                       "logs": inv.container_logs.get(c.id, 0)} for c in inv.containers]
    steps = sorted((n for n in inv.images if n.manifest in cache),
                   key=lambda n: -inv.cache[n.manifest])
    sizes = assign_blobs(steps, images, inv.blobs)
    out_cache = [{"id": n.config, "type": "step", "size": sizes[n.manifest],
                  "used": inv.cache[n.manifest]} for n in steps]
    out_cache += [{"id": app, "type": "buildpack", "size": size, "used": mtime}
                  for app, (mtime, size) in sorted(inv.buildpack_caches.items())]
    out_logs = [{"file": name, "size": size} for name, size in sorted(inv.nginx_logs.items())]
    return {"images": out_images, "containers": out_containers, "build_cache": out_cache,
            "logs": out_logs}
