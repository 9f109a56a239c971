"""``paas report``'s limits section: the containers' memory cap, the platform's OOM
protection, the default pids and writable-layer limits and the disk backend.

``memory_cap_check`` and ``oom_check`` are pure verdicts (unit-tested); ``limits``
reads the host (cgroup files, ``/proc/<pid>/oom_score_adj``) and never changes it;
``repair_limits`` is ``report --fix``'s part: the parent cgroup's cap written again.
"""

from __future__ import annotations

from ..config import Context
from .checks import Check

__all__ = ["limits", "memory_cap_check", "oom_check", "repair_limits"]

FIX_CAP = "run 'paas report --fix' (or restart paasd: it sets the cap at every start)"
FIX_RESTART = ("restart it: 'paas daemon:stop --all' then 'paas daemon:start' "
               "(nginx: nginx:stop, nginx:start)")


def _size(n: int) -> str:
    from ..image.usage import human_size

    return human_size(n)


def memory_cap_check(parent: str, exists: bool, limit: int | None, planned: int | None,
                     total: int) -> Check:
    """The parent cgroup's memory limit against the planned cap (1 % slack: the kernel
    rounds to pages)."""
    name = "containers' memory cap"
    if planned is None:
        return Check("limits", name, f"none ({parent}: PAAS_CONTAINERS_MEMORY=max)",
                     "containers may use all of the host's memory",
                     "unset PAAS_CONTAINERS_MEMORY to keep a reserve for the platform",
                     warning=True)
    want = f"{_size(planned)} of {_size(total)}"
    if not exists:
        return Check("limits", name, f"not set ({parent} does not exist; want {want})",
                     "containers would not be capped below the host's memory", FIX_CAP)
    if limit is None or abs(limit - planned) > planned // 100:
        got = "unlimited" if limit is None else _size(limit)
        return Check("limits", name, f"{got} ({parent}; want {want})",
                     "the containers' memory cap is not the planned one", FIX_CAP)
    return Check("limits", name, f"{want} ({parent})")


def oom_check(what: str, adj: int | None, target: int) -> Check:
    """A platform process's ``oom_score_adj``: ``target``, or at least below the
    containers'; None: not running (nothing to say here, the services section does)."""
    from ..oom import CONTAINER_OOM_SCORE_ADJ

    name = f"{what} OOM score"
    if adj is None:
        return Check("limits", name, "not running")
    if adj <= target:
        return Check("limits", name, f"oom_score_adj {adj}")
    if adj < CONTAINER_OOM_SCORE_ADJ:
        return Check("limits", name, f"oom_score_adj {adj} (want {target})",
                     f"{what} is not protected from the OOM killer (containers still go "
                     f"first: theirs is {CONTAINER_OOM_SCORE_ADJ}); lowering it needs "
                     "CAP_SYS_RESOURCE", "run paasd as root with CAP_SYS_RESOURCE (this host "
                     "or sandbox drops it), then restart it", warning=True)
    return Check("limits", name, f"oom_score_adj {adj} (want {target})",
                 f"the OOM killer may pick {what} before the containers", FIX_RESTART)


def limits(ctx: Context) -> list[Check]:
    from ..daemon.process import read_pidfile
    from ..oom import DAEMON_OOM_SCORE_ADJ, KEEPER_OOM_SCORE_ADJ, NGINX_OOM_SCORE_ADJ, oom_score_adj
    from ..proxy import nginx
    from ..proxy.params import params_from_env
    from ..runtime.cgroups import host_memory, planned_cap, read_parent_limit

    with open("/proc/meminfo", encoding="utf-8") as f:
        total = host_memory(f.read())
    exists, limit = read_parent_limit(ctx)
    out = [memory_cap_check(ctx.cgroup_parent, exists, limit, planned_cap(ctx), total)]
    for what, pidfile, target in (("keeper", ctx.paths.keeper_pidfile, KEEPER_OOM_SCORE_ADJ),
                                  ("paasd", ctx.paths.daemon_pidfile, DAEMON_OOM_SCORE_ADJ)):
        pid = read_pidfile(pidfile)
        out.append(oom_check(what, None if pid is None else oom_score_adj(pid), target))
    master = nginx.master_pid(params_from_env(ctx))
    out.append(oom_check("nginx", None if master is None else oom_score_adj(master),
                         NGINX_OOM_SCORE_ADJ))
    d = ctx.limits
    out.append(Check("limits", "default limits", ", ".join((
        f"pids {d.pids or 'unlimited'}",
        f"app disk {_size(d.app_disk) if d.app_disk else 'unlimited'}",
        f"build disk {_size(d.build_disk) if d.build_disk else 'unlimited'}"))))
    out.append(_layers(ctx))
    return out


def _layers(ctx: Context) -> Check:
    """Which mechanism limits writable layers here, and how many are attached."""
    from ..runtime.disk import attached_layers, detect_backend, project_quotas

    backend = detect_backend(ctx.paths.root)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        quotas = "yes" if project_quotas(f.read(), ctx.paths.root) else "no"
    attached = len(attached_layers(ctx.paths.containers))
    return Check("limits", "writable layers",
                 f"{backend.name}, {attached} attached (project quotas here: {quotas})")


def repair_limits(ctx: Context) -> None:
    """``report --fix``: the parent cgroup and its memory cap (again)."""
    from ..runtime.cgroups import ensure_parent

    ensure_parent(ctx)
