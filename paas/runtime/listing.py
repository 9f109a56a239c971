"""Container listings as plain JSON-able rows (what ``container:ps`` shows).

Built where the runtime is loaded (paasd, or the CLI when paasd is down) and
rendered by the CLI without importing the runtime.
"""

from __future__ import annotations

from typing import Any

from ..model import ContainerState
from .lifecycle import Runtime

__all__ = ["rows_of"]


def rows_of(rt: Runtime, *, all: bool) -> list[dict[str, Any]]:
    rows = []
    for c in rt.list_containers(running_only=not all):
        ports = rt.net.ports(c.id, c.config) if c.state == ContainerState.RUNNING else ()
        rows.append({
            "id": c.id, "name": c.name, "image": c.config.image, "args": list(c.config.args),
            "created": c.created, "state": c.state, "started_at": c.started_at,
            "finished_at": c.finished_at, "exit_code": c.exit_code,
            "restart_count": c.restart_count, "ports": [str(p) for p in ports],
        })
    return rows
