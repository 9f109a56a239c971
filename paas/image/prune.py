"""Pure prune planning over the image graph: which images, blobs and snapshots go when a
set of images is kept, what each removal frees, and a size cap over cache entries.

An image is its manifest, config and layer blobs plus the ChainIDs of its layers
(its snapshots). Blobs and snapshots are shared: one goes only when no kept image
refers to it. Sizes are looked up in a ``digest -> bytes`` mapping (real disk
usage, measured by the caller).

Not here: deciding what to keep (``paas.deploy.gc``: releases, containers), deleting
anything (``ImageStore``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CacheEntry", "ImageNode", "ImagePlan", "assign_blobs", "exclusive_size",
           "over_cap", "plan_images", "unreferenced"]


@dataclass(frozen=True)
class ImageNode:
    """One image as the planner sees it."""

    manifest: str
    config: str  # the image id
    layers: tuple[str, ...] = ()  # layer blob digests, bottom first
    chains: tuple[str, ...] = ()  # ChainIDs, bottom first
    tags: tuple[str, ...] = ()  # "name:tag"
    added: float = 0.0

    @property
    def blobs(self) -> tuple[str, ...]:
        return (self.manifest, self.config, *self.layers)


@dataclass(frozen=True)
class ImagePlan:
    remove: tuple[str, ...]  # manifest digests, in the order given
    freed_blobs: frozenset[str]  # blobs only removed images refer to
    kept_blobs: frozenset[str]
    kept_chains: frozenset[str]  # snapshots still needed


@dataclass(frozen=True)
class CacheEntry:
    """Something the build cache holds: ``used`` orders it (oldest goes first)."""

    key: str
    used: float
    size: int


def plan_images(nodes: Sequence[ImageNode], keep: Collection[str]) -> ImagePlan:
    """Remove every image whose manifest is not in ``keep``."""
    kept = [n for n in nodes if n.manifest in keep]
    gone = [n for n in nodes if n.manifest not in keep]
    kept_blobs = frozenset(b for n in kept for b in n.blobs)
    freed = frozenset(b for n in gone for b in n.blobs) - kept_blobs
    chains = frozenset(c for n in kept for c in n.chains)
    return ImagePlan(tuple(n.manifest for n in gone), freed, kept_blobs, chains)


def unreferenced(on_disk: Iterable[str], nodes: Iterable[ImageNode]) -> set[str]:
    """Blobs on disk that no image refers to (left by a crash or a failed write)."""
    referenced = {b for n in nodes for b in n.blobs}
    return {d for d in on_disk if d not in referenced}


def exclusive_size(group: Collection[str], nodes: Sequence[ImageNode],
                   sizes: Mapping[str, int]) -> int:
    """Bytes freed by removing the images ``group`` (manifests) and nothing else."""
    inside = {b for n in nodes if n.manifest in group for b in n.blobs}
    outside = {b for n in nodes if n.manifest not in group for b in n.blobs}
    return sum(sizes.get(b, 0) for b in inside - outside)


def assign_blobs(owners: Sequence[ImageNode], others: Iterable[ImageNode],
                 sizes: Mapping[str, int]) -> dict[str, int]:
    """Bytes each of ``owners`` (newest first) accounts for: the blobs no image of
    ``others`` refers to, each counted once, by the newest owner using it (a build
    step's own layer, config and manifest)."""
    taken = {b for n in others for b in n.blobs}
    out: dict[str, int] = {}
    for n in owners:
        mine = [b for b in dict.fromkeys(n.blobs) if b not in taken]
        taken.update(mine)
        out[n.manifest] = sum(sizes.get(b, 0) for b in mine)
    return out


def over_cap(entries: Sequence[CacheEntry], cap: int) -> list[str]:
    """Keys to drop, least recently used first, until the rest fits in ``cap`` bytes."""
    total = sum(e.size for e in entries)
    drop = []
    for e in sorted(entries, key=lambda e: (e.used, e.key)):
        if total <= cap:
            break
        drop.append(e.key)
        total -= e.size
    return drop
