"""The instance's parent cgroup ``paas-<instance>``: every container's memory, capped.

Every container (apps, builds, plain ones) has the cgroup ``/paas-<instance>/<id>``
(``Bundle.cgroups_path``), so one memory limit on the parent caps all of them
together below the host's memory: a container without its own limit (or many with
generous ones) is OOM-killed inside that cap, never the platform. paasd writes it at
every start (``ensure_parent``); ``paas report`` compares it with the plan.

Pure: ``layout_from_mountinfo`` (cgroup v1, also hybrid, or the unified v2 hierarchy),
``plan_parent`` (the directories and files to write, for either version),
``parse_limit``; the executor ``apply`` and the readers are the only I/O. Not here: the
cap's size (``paas.runtime.limits``), containers' own limits (the OCI spec; runc
writes them).
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass

from ..config import Context
from ..errors import FailedPrecondition

__all__ = ["CgroupLayout", "ParentPlan", "apply", "ensure_parent", "host_memory",
           "layout_from_mountinfo", "parse_limit", "plan_parent", "read_parent_limit"]

log = logging.getLogger(__name__)

UNLIMITED_V1 = 1 << 62  # memory.limit_in_bytes reads 9223372036854771712 when unlimited


@dataclass(frozen=True)
class CgroupLayout:
    """Where the memory controller is: ``version`` 1 (its own hierarchy at ``memory``)
    or 2 (the unified hierarchy at ``memory``)."""

    version: int
    memory: str


@dataclass(frozen=True)
class ParentPlan:
    """What to write, in order: ``enable`` controllers in ``subtree`` files (v2), make
    ``directory``, then each ``(file, value)`` of ``writes``."""

    directory: str
    writes: tuple[tuple[str, str], ...]
    enable: tuple[tuple[str, str], ...] = ()


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def layout_from_mountinfo(mountinfo: str) -> CgroupLayout | None:
    """The memory controller's hierarchy from ``/proc/self/mountinfo``: v2 when
    /sys/fs/cgroup itself is cgroup2 (runc then uses v2 only), else the v1 hierarchy
    with the ``memory`` option (hybrid hosts: their cgroup2 has no controllers);
    None without one."""
    v1 = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        point, fstype = _unescape(fields[4]), fields[sep + 1] if len(fields) > sep + 1 else ""
        if fstype == "cgroup2" and point == "/sys/fs/cgroup":
            return CgroupLayout(2, point)
        if fstype == "cgroup" and v1 is None:
            options = fields[sep + 3].split(",") if len(fields) > sep + 3 else []
            if "memory" in options:
                v1 = CgroupLayout(1, point)
    return v1


def plan_parent(layout: CgroupLayout, parent: str, cap: int | None) -> ParentPlan:
    """Pure: make ``parent`` under the memory hierarchy and set its limit to ``cap``
    bytes (None: unlimited). v2 enables the memory and pids controllers for the
    root's children first (runc enables the rest below the parent)."""
    directory = os.path.join(layout.memory, parent)
    if layout.version == 1:
        return ParentPlan(directory, ((os.path.join(directory, "memory.limit_in_bytes"),
                                       str(cap) if cap is not None else "-1"),))
    return ParentPlan(
        directory,
        ((os.path.join(directory, "memory.max"), str(cap) if cap is not None else "max"),),
        enable=((os.path.join(layout.memory, "cgroup.subtree_control"), "+memory +pids"),),
    )


def parse_limit(text: str) -> int | None:
    """A memory limit as a cgroup file reads (v1 bytes or v2 ``max``); None: unlimited."""
    text = text.strip()
    if text == "max" or int(text) >= UNLIMITED_V1:
        return None
    return int(text)


def host_memory(meminfo: str) -> int:
    """``MemTotal`` of ``/proc/meminfo``, in bytes."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no MemTotal in /proc/meminfo")


def apply(plan: ParentPlan) -> None:
    """Execute ``plan``; FailedPrecondition naming the file the kernel refused."""
    try:
        for path, value in plan.enable:
            _write(path, value)
        os.makedirs(plan.directory, exist_ok=True)
        for path, value in plan.writes:
            _write(path, value)
    except OSError as err:
        why = ("the containers use more memory than the cap already"
               if err.errno == errno.EBUSY else err.strerror)
        raise FailedPrecondition(
            f"cannot set {err.filename or plan.directory}: {why}",
            "set PAAS_CONTAINERS_MEMORY or PAAS_MEMORY_RESERVE to fit, then restart paasd",
        ) from err


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as err:
        err.filename = err.filename or path
        raise


def _layout() -> CgroupLayout | None:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return layout_from_mountinfo(f.read())


def planned_cap(ctx: Context) -> int | None:
    """The cap this instance's settings give on this host."""
    from .limits import containers_memory_cap

    with open("/proc/meminfo", encoding="utf-8") as f:
        return containers_memory_cap(host_memory(f.read()), ctx.limits)


def ensure_parent(ctx: Context) -> int | None:
    """Create the parent cgroup with its planned memory cap (paasd's start); the cap."""
    layout = _layout()
    if layout is None:
        raise FailedPrecondition("no cgroup memory controller is mounted",
                                 "mount cgroup2 on /sys/fs/cgroup (systemd does at boot)")
    cap = planned_cap(ctx)
    apply(plan_parent(layout, ctx.cgroup_parent, cap))
    log.info("containers of %s: memory cap %s", ctx.cgroup_parent,
             "none" if cap is None else f"{cap} bytes")
    return cap


def read_parent_limit(ctx: Context) -> tuple[bool, int | None]:
    """(whether the parent cgroup exists, its memory limit or None for unlimited)."""
    layout = _layout()
    if layout is None:
        return False, None
    plan = plan_parent(layout, ctx.cgroup_parent, None)
    try:
        with open(plan.writes[0][0], encoding="utf-8") as f:
            return True, parse_limit(f.read())
    except FileNotFoundError:
        return False, None
