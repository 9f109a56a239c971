"""Subordinate ids: the pool of host uid/gid ranges apps' id ranges are cut from.

Pure functions over the text of ``/etc/subuid`` and ``/etc/subgid`` (``NAME:START:COUNT``
lines, ``subuid(5)``): the entries of one user (``root`` by default, as Incus and LXD
use), the ids present in BOTH files (a paas ``IdMap`` maps uids and gids to the same
host ids), and the 65,536-id slots that fit in them. The instance's default range
(``PAAS_SUBUID``, for plain ``container:run`` containers) never becomes a slot: a slot
overlapping it is skipped, so root of an app's containers never owns what a
``container:run`` container made.

Where the files are: ``PAAS_SUBUID_FILE`` / ``PAAS_SUBGID_FILE`` (default
``/etc/subuid`` / ``/etc/subgid``) and whose entries: ``PAAS_SUBID_USER`` (default
``root``); tests point these at their own files and never edit the host's.

Not here: which app has which slot (``paas.apps.idmaps``, in the state DB).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import FailedPrecondition
from .model import IdMap

__all__ = ["SLOT_SIZE", "SubidRange", "intersect", "merge", "overlaps", "parse_subid",
           "pool_from_text", "ranges_for", "slots"]

SLOT_SIZE = 65536  # ids per app: a whole 16-bit id space, as Docker and Incus give


@dataclass(frozen=True, order=True)
class SubidRange:
    """Host ids [start, start + count)."""

    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.count


def parse_subid(text: str, path: str = "/etc/subuid") -> list[tuple[str, SubidRange]]:
    """``(name, range)`` of every entry; blank lines and ``#`` comments are skipped.
    FailedPrecondition naming the line for anything else that is not ``NAME:START:COUNT``."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if (len(parts) != 3 or not parts[0] or not parts[1].isdigit()
                or not parts[2].isdigit() or int(parts[2]) == 0):
            raise FailedPrecondition(
                f"{path}:{n}: {line[:80]!r} is not NAME:START:COUNT",
                f"fix or remove that line of {path} (see subuid(5))")
        out.append((parts[0], SubidRange(int(parts[1]), int(parts[2]))))
    return out


def merge(ranges: Iterable[SubidRange]) -> list[SubidRange]:
    """Sorted, with overlapping or adjacent ranges joined."""
    out: list[SubidRange] = []
    for r in sorted(ranges):
        if out and r.start <= out[-1].end:
            last = out[-1]
            out[-1] = SubidRange(last.start, max(last.end, r.end) - last.start)
        else:
            out.append(r)
    return out


def intersect(a: Sequence[SubidRange], b: Sequence[SubidRange]) -> list[SubidRange]:
    """The ids in both (each a merged, sorted list)."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i].start, b[j].start), min(a[i].end, b[j].end)
        if lo < hi:
            out.append(SubidRange(lo, hi - lo))
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return out


def ranges_for(entries: Iterable[tuple[str, SubidRange]], user: str) -> list[SubidRange]:
    return merge(r for name, r in entries if name == user)


def pool_from_text(subuid: str, subgid: str, user: str = "root",
                   paths: tuple[str, str] = ("/etc/subuid", "/etc/subgid")) -> list[SubidRange]:
    """The host ids ``user`` has in both files (uids and gids map to the same ids)."""
    return intersect(ranges_for(parse_subid(subuid, paths[0]), user),
                     ranges_for(parse_subid(subgid, paths[1]), user))


def overlaps(a: SubidRange | IdMap, b: SubidRange | IdMap) -> bool:
    def span(x: SubidRange | IdMap) -> tuple[int, int]:
        return (x.start, x.end) if isinstance(x, SubidRange) else (x.host_id, x.host_id + x.size)

    (s1, e1), (s2, e2) = span(a), span(b)
    return s1 < e2 and s2 < e1


def slots(pool: Sequence[SubidRange], avoid: Sequence[IdMap] = (),
          size: int = SLOT_SIZE) -> list[int]:
    """Start ids of every ``size``-id slot in ``pool`` (aligned to each range's start),
    lowest first, minus those overlapping a range in ``avoid`` (the default range).
    Id 0 is never part of a slot: host root is nobody's container root."""
    out = []
    for r in pool:
        start = r.start
        while start + size <= r.end:
            cand = SubidRange(start, size)
            if start > 0 and not any(overlaps(cand, a) for a in avoid):
                out.append(start)
            start += size
    return out
