"""Who the kernel's OOM killer picks first: the platform last, containers first.

paasd's keeper (-999, as containerd), paasd (-500, as dockerd) and the instance's nginx
master and workers (-900) lower their ``oom_score_adj``; every container process gets
``CONTAINER_OOM_SCORE_ADJ`` (+500) from its OCI spec, written by runc for the init and
for every ``runc exec``, so nothing a container runs inherits the platform's protection
(a child of paasd would otherwise start at -500). Lowering needs CAP_SYS_RESOURCE;
without it (some sandboxes drop it even for root) the platform stays at 0 and only the
containers' +500 orders the victims; ``paas report`` says which.

Stdlib only: the keeper imports this.
"""

from __future__ import annotations

import logging

__all__ = ["CONTAINER_OOM_SCORE_ADJ", "DAEMON_OOM_SCORE_ADJ", "KEEPER_OOM_SCORE_ADJ",
           "NGINX_OOM_SCORE_ADJ", "oom_score_adj", "protect"]

log = logging.getLogger(__name__)

KEEPER_OOM_SCORE_ADJ = -999
DAEMON_OOM_SCORE_ADJ = -500
NGINX_OOM_SCORE_ADJ = -900
CONTAINER_OOM_SCORE_ADJ = 500


def oom_score_adj(pid: int | str = "self") -> int | None:
    """The process's ``oom_score_adj`` (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/oom_score_adj") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def protect(value: int, pid: int | str = "self") -> bool:
    """Set ``oom_score_adj`` of ``pid`` to ``value``; False (logged) when the kernel
    refuses (lowering without CAP_SYS_RESOURCE) or the process is gone."""
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(value))
        return True
    except OSError as err:
        log.warning("cannot set oom_score_adj of %s to %d: %s", pid, value, err.strerror)
        return False
