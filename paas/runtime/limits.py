"""Default limits of an instance: read from ``PAAS_*`` settings, applied to containers.

Pure: ``limits_from_env`` parses the settings into a ``DefaultLimits`` (an invalid
value is one ``InvalidArgument`` naming the variable); ``effective_resources`` fills a
container's unset pids limit with the default; ``containers_memory_cap`` is the
memory cap of the instance's parent cgroup for a host with ``total`` bytes.

Settings (see the README's table):

- ``PAAS_PIDS_LIMIT`` (default 4096): processes per container; ``max`` for none.
- ``PAAS_APP_DISK_LIMIT``/``PAAS_BUILD_DISK_LIMIT`` (default 10g): the writable layer
  of app process containers / build containers; ``max`` for none.
- ``PAAS_MEMORY_RESERVE`` (default ``1g,10%``): host memory kept from the containers
  (the larger of a size and a percentage, either alone works too).
- ``PAAS_CONTAINERS_MEMORY``: the containers' cap given explicitly (``max``: no cap).

Not here: writing cgroups (``paas.runtime.cgroups``), making disks (``paas.runtime.disk``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..errors import InvalidArgument
from ..model import DefaultLimits, Resources

__all__ = ["MIN_DISK", "containers_memory_cap", "effective_resources", "limits_from_env",
           "parse_disk_size"]

MIN_DISK = 16 << 20  # an ext4 below this has no room for a journal and a few files
_NONE = ("max", "none", "unlimited", "-1", "0")
_MIN_CAP = 64 << 20


def parse_disk_size(text: str, what: str) -> int:
    """A writable-layer size ('10g', '512m'); InvalidArgument below ``MIN_DISK``."""
    from .options import parse_size

    size = parse_size(text)
    if size < MIN_DISK:
        raise InvalidArgument(f"{what} {text} is too small", "the minimum is 16m")
    return size


def _size_or_none(env: Mapping[str, str], key: str, default: int | None,
                  minimum: int) -> int | None:
    text = env.get(key, "").strip().lower()
    if not text:
        return default
    if text in _NONE:
        return None
    from .options import parse_size

    try:
        value = parse_size(text)
    except InvalidArgument:
        value = -1
    if value < minimum:
        raise InvalidArgument(f"{key}={text!r} is not a usable size",
                              f"use a size of at least {minimum >> 20}m (e.g. 10g), or max")
    return value


def _pids(env: Mapping[str, str]) -> int | None:
    text = env.get("PAAS_PIDS_LIMIT", "").strip().lower()
    if not text:
        return DefaultLimits.pids
    if text in _NONE:
        return None
    if not text.isdigit() or int(text) < 16:
        raise InvalidArgument(f"PAAS_PIDS_LIMIT={text!r} is not a usable limit",
                              "use a number of processes of at least 16 (e.g. 4096), or max")
    return int(text)


def _reserve(env: Mapping[str, str]) -> tuple[int, int]:
    text = env.get("PAAS_MEMORY_RESERVE", "").strip().lower()
    if not text:
        return DefaultLimits.memory_reserve, DefaultLimits.memory_reserve_pct
    size, pct = 0, 0
    from .options import parse_size

    try:
        for part in text.split(","):
            part = part.strip()
            if part.endswith("%") and part[:-1].isdigit() and int(part[:-1]) < 90:
                pct = max(pct, int(part[:-1]))
            else:
                size = max(size, parse_size(part))
    except InvalidArgument:
        raise InvalidArgument(f"PAAS_MEMORY_RESERVE={text!r} is not a usable reserve",
                              "use a size, a percentage below 90 or both, e.g. 1g,10%") from None
    return size, pct


def limits_from_env(env: Mapping[str, str]) -> DefaultLimits:
    """The instance's ``DefaultLimits`` from its settings; InvalidArgument naming a bad one."""
    size, pct = _reserve(env)
    return DefaultLimits(
        pids=_pids(env),
        app_disk=_size_or_none(env, "PAAS_APP_DISK_LIMIT", DefaultLimits.app_disk, MIN_DISK),
        build_disk=_size_or_none(env, "PAAS_BUILD_DISK_LIMIT", DefaultLimits.build_disk,
                                 MIN_DISK),
        memory_reserve=size,
        memory_reserve_pct=pct,
        containers_memory=_cap(env),
    )


def _cap(env: Mapping[str, str]) -> int | None:
    if env.get("PAAS_CONTAINERS_MEMORY", "").strip().lower() in _NONE:
        return 0  # no cap at all
    return _size_or_none(env, "PAAS_CONTAINERS_MEMORY", None, _MIN_CAP)


def effective_resources(res: Resources, defaults: DefaultLimits) -> Resources:
    """``res`` with the default pids limit where it sets none (-1 stays: unlimited)."""
    if res.pids_limit is None and defaults.pids is not None:
        return replace(res, pids_limit=defaults.pids)
    return res


def containers_memory_cap(total: int, defaults: DefaultLimits) -> int | None:
    """The memory cap of the instance's parent cgroup on a host with ``total`` bytes of
    memory: total minus the reserve (the larger of size and percentage), or the explicit
    ``containers_memory``; None for no cap. Never below 64 MiB."""
    if defaults.containers_memory is not None:
        return defaults.containers_memory or None
    reserve = max(defaults.memory_reserve, total * defaults.memory_reserve_pct // 100)
    return max(total - reserve, _MIN_CAP)
