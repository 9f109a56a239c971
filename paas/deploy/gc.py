"""Garbage collection of an instance: what ``system:prune`` (and the prune after each
deploy) keeps, and the plan of what goes, pure over an ``Inventory``.

GC roots (containerd's word): images of any container left after the prune, images
of each app's releases within its keep-releases, tagged images (all of them unless
``--all``; with it only the buildpack stack ``paas/stack`` and images whose layers a
kept image contains anyway), build cache images within the size cap (none with
``--all``), and images added in the last ``grace`` seconds (a build in progress has
not tagged its image yet). Tags ``paas-apps/APP:vN`` of releases beyond keep-releases
(or of apps that are gone) are no roots and are removed; tags newer than an app's
current release belong to a deploy in progress and stay.

Containers: stopped ones, except those paasd will start again (their restart policy
says so) and the process containers of an app's current release (``ps`` shows why
they stopped); ``created`` ones younger than ``created_grace`` may be starting.

Not here: reading the inventory (``inventory``), deleting (``prune``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field

from ..image.prune import CacheEntry, ImageNode, ImagePlan, assign_blobs, over_cap, plan_images
from ..model import Container, ContainerState
from ..runtime.restart import parse_restart_policy, should_restart
from .inventory import Inventory

__all__ = ["DEFAULT_BUILD_CACHE_MAX", "GcPlan", "Policy", "cache_entries", "image_roots",
           "kept_release_tags",
           "plan", "prunable_containers", "stale_nginx_logs"]

DEFAULT_BUILD_CACHE_MAX = 5 * 1000**3
STACK_NAME = "paas/stack"
RELEASE_TAG = re.compile(r"^paas-apps/([a-z][a-z0-9-]*):v(\d+)$")
NGINX_APP_LOG = re.compile(r"^([a-z][a-z0-9-]*)-(?:access|error)\.log(?:\.\d+(?:\.gz)?)?$")
PROCESS_NAME = re.compile(r"^([a-z][a-z0-9-]*)\.([A-Za-z0-9_-]+)\.(\d+)\.v(\d+)$")


@dataclass(frozen=True)
class Policy:
    all: bool = False  # unused tagged images and the whole build cache too
    build_cache_max: int = DEFAULT_BUILD_CACHE_MAX
    containers: bool = True  # the prune after a deploy leaves containers alone
    grace: float = 600.0  # images and blobs this recent stay (a build may be writing them)
    created_grace: float = 600.0  # containers 'created' this recently may be starting
    now: float = field(default_factory=time.time)
    busy_apps: frozenset[str] = frozenset()  # apps deploying now: their build cache stays


@dataclass(frozen=True)
class GcPlan:
    containers: tuple[Container, ...]
    untag: tuple[str, ...]  # release tags to drop ("paas-apps/APP:vN")
    images: ImagePlan
    buildpack_caches: tuple[str, ...]  # app names
    orphan_blobs: frozenset[str]
    snapshots: tuple[int, ...]  # snapshot ids no kept image needs
    nginx_logs: tuple[str, ...] = ()  # log files of apps that are gone


def stale_nginx_logs(names: Collection[str], apps: Collection[str]) -> list[str]:
    """``APP-access.log``/``APP-error.log`` (and rotations) of apps that no longer exist."""
    out = []
    for n in names:
        m = NGINX_APP_LOG.match(n)
        if m and m.group(1) not in apps:
            out.append(n)
    return sorted(out)


def prunable_containers(containers: Collection[Container], current: dict[str, int],
                        policy: Policy) -> list[Container]:
    out = []
    for c in containers:
        if c.state in (ContainerState.RUNNING, ContainerState.RESTARTING):
            continue
        if c.state == ContainerState.CREATED and policy.now - c.created < policy.created_grace:
            continue
        if c.state == ContainerState.EXITED and should_restart(
                parse_restart_policy(c.config.restart), c.exit_code or 0, c.restart_count,
                c.stopped_by_user):
            continue
        m = PROCESS_NAME.match(c.name)
        if m and current.get(m.group(1)) == int(m.group(4)):
            continue
        out.append(c)
    return out


def cache_entries(inv: Inventory, others: Collection[ImageNode]) -> list[CacheEntry]:
    """The build cache for the size cap: step images (bytes no other image shares) and
    buildpack cache dirs."""
    steps = sorted((n for n in inv.images if n.manifest in inv.cache),
                   key=lambda n: -inv.cache[n.manifest])
    sizes = assign_blobs(steps, others, inv.blobs)
    entries = [CacheEntry(f"image:{n.manifest}", inv.cache[n.manifest], sizes[n.manifest])
               for n in steps]
    entries += [CacheEntry(f"dir:{app}", mtime, size)
                for app, (mtime, size) in inv.buildpack_caches.items()]
    return entries


def kept_release_tags(inv: Inventory, tags: Collection[str]) -> set[str]:
    """Release tags to keep: those of kept releases, and those newer than an app's current
    release (a deploy in progress tags its image before it goes live)."""
    kept: set[str] = set()
    for a in inv.apps:
        kept |= a.kept_tags()
    current = {a.app: a.current or 0 for a in inv.apps}
    for t in tags:
        m = RELEASE_TAG.match(t)
        if m and m.group(1) in current and int(m.group(2)) > current[m.group(1)]:
            kept.add(t)
    return kept


def image_roots(inv: Inventory, containers: Collection[Container], policy: Policy,
                dropped_cache: Collection[str]) -> set[str]:
    """Manifests of the images to keep (see the module docstring)."""
    by_id: dict[str, set[str]] = {}
    for n in inv.images:
        by_id.setdefault(n.config, set()).add(n.manifest)
    keep: set[str] = set()
    for c in containers:
        keep |= by_id.get(c.config.image_id, set())
    kept_tags = kept_release_tags(inv, [t for n in inv.images for t in n.tags])
    for a in inv.apps:
        for _v, image_id in a.kept:
            keep |= by_id.get(image_id, set())
    for n in inv.images:
        user_tags = [t for t in n.tags if not RELEASE_TAG.match(t)]
        if (n.added > policy.now - policy.grace
                or any(t in kept_tags for t in n.tags)
                or (user_tags and not policy.all)
                or any(t.startswith(f"{STACK_NAME}:") for t in user_tags)
                or (n.manifest in inv.cache and f"image:{n.manifest}" not in dropped_cache)):
            keep.add(n.manifest)
    if policy.all:  # a base image whose layers a kept image holds anyway costs ~nothing
        kept_chains = {n.chains for n in inv.images if n.manifest in keep}
        for n in inv.images:
            if n.tags and any(ch[:len(n.chains)] == n.chains for ch in kept_chains):
                keep.add(n.manifest)
    return keep


def plan(inv: Inventory, policy: Policy) -> GcPlan:
    current = {a.app: a.current for a in inv.apps if a.current is not None}
    doomed = prunable_containers(inv.containers, current, policy) if policy.containers else []
    gone_ids = {c.id for c in doomed}
    remaining = [c for c in inv.containers if c.id not in gone_ids]
    # the cap sees the build cache against every image that is kept for another reason
    kept_no_cache = image_roots(inv, remaining, policy,
                                dropped_cache={f"image:{m}" for m in inv.cache})
    others = [n for n in inv.images if n.manifest in kept_no_cache]
    entries = [e for e in cache_entries(inv, others)
               if e.key.removeprefix("dir:") not in policy.busy_apps]
    apps = {a.app for a in inv.apps}
    cap = 0 if policy.all else policy.build_cache_max
    dropped = set(over_cap(entries, cap))
    dropped |= {f"dir:{a}" for a in inv.buildpack_caches if a not in apps}
    dropped -= {f"dir:{a}" for a in policy.busy_apps}
    keep = image_roots(inv, remaining, policy, dropped)
    images = plan_images(inv.images, keep)
    kept_tags = kept_release_tags(inv, [t for n in inv.images for t in n.tags])
    untag = tuple(t for n in inv.images if n.manifest in keep for t in n.tags
                  if RELEASE_TAG.match(t) and t not in kept_tags)
    referenced = {b for n in inv.images for b in n.blobs}
    orphan_grace = max(policy.grace, 3600.0)
    orphans = frozenset(d for d, mtime in inv.blob_mtimes.items()
                        if d not in referenced and mtime < policy.now - orphan_grace)
    snapshots = tuple(s.id for s in inv.snapshots if s.chain not in images.kept_chains)
    return GcPlan(
        containers=tuple(doomed), untag=untag, images=images,
        buildpack_caches=tuple(sorted(k.removeprefix("dir:") for k in dropped
                                      if k.startswith("dir:"))),
        orphan_blobs=orphans, snapshots=snapshots,
        nginx_logs=tuple(stale_nginx_logs(inv.nginx_logs, apps)))
