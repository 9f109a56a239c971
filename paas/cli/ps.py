"""``container:ps``: asks paasd (warm, DB open) for the rows and only renders them.

Falls back to reading the state DB itself when paasd is not running, which is
slower (imports the runtime) but still works.
"""

from __future__ import annotations

import argparse
import time

from ..errors import FailedPrecondition
from .render import emit_json, human_ago, table
from .status import command_text, status_text_of

TYPE_CHECKING = False  # typing costs ~3 ms of CLI start
if TYPE_CHECKING:
    from typing import Any

    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "container_rows"]

def container_rows(app: App, all: bool) -> list[dict[str, Any]]:
    """Rows as paasd's ``GET /containers`` gives them (newest first)."""
    from ..daemon.client import DaemonClient

    client = DaemonClient(app.paths)
    try:
        rows: list[dict[str, Any]] = client.request("GET", f"/containers?all={int(all)}")
        return rows
    except FailedPrecondition:
        if client.ping() is not None:
            raise
    from ..runtime.lifecycle import Runtime
    from ..runtime.listing import rows_of

    return rows_of(Runtime(app.ctx, app.conn), all=all)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e9):09d}Z"


def _ps(app: App, a: argparse.Namespace) -> int:
    rows = container_rows(app, a.all)
    now = time.time()

    def status(r: dict[str, Any]) -> str:
        return status_text_of(r["state"], r["exit_code"], r["started_at"], r["finished_at"], now)

    if a.quiet:
        for r in rows:
            print(r["id"][:12])
        return 0
    if a.format == "json":
        emit_json([{"ID": r["id"], "Image": r["image"], "Command": " ".join(r["args"]),
                    "CreatedAt": _iso(r["created"]), "State": r["state"], "Status": status(r),
                    "ExitCode": r["exit_code"], "Ports": ", ".join(r["ports"]),
                    "Names": r["name"]} for r in rows])
        return 0
    table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
          [[r["id"][:12], r["image"], command_text(r["args"]), human_ago(r["created"], now),
            status(r), ", ".join(r["ports"]), r["name"]] for r in rows])
    return 0


def configure(name: str, p: Parser) -> Handler:
    p.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    p.add_argument("--format", choices=["table", "json"], default="table")
    return _ps
