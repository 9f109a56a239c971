"""``paas logs APP``: the output of an app's containers, merged in time order, each
line prefixed with its process (``web.1``) like Heroku's ``app[web.1]:``.

Not here: one container's log (``paas.runtime.logs``), which this reads.
"""

from __future__ import annotations

import heapq
import sqlite3
import sys
import time
from collections.abc import Iterator

from ..config import Context
from ..runtime.bundle import Bundle
from ..runtime.lifecycle import Runtime
from ..runtime.logs import LogEntry, read_logs
from .processes import ProcessContainer, app_containers

__all__ = ["show_logs"]


def _lines(rt: Runtime, p: ProcessContainer, tail: int | None) -> Iterator[tuple[str, str, str]]:
    label = f"{p.type}.{p.index}"
    for e in read_logs(Bundle(rt.ctx, p.container.id).log_path, tail=tail):
        yield e.time, label, _text(e)


def _text(e: LogEntry) -> str:
    return e.text if e.text.endswith("\n") else e.text + "\n"


def show_logs(ctx: Context, conn: sqlite3.Connection, app: str, *, follow: bool = False,
              tail: int | None = None, ptype: str | None = None) -> int:
    rt = Runtime(ctx, conn)
    procs = [p for p in app_containers(rt, app) if ptype is None or p.type == ptype]
    merged = heapq.merge(*(_lines(rt, p, tail) for p in procs))
    lines = list(merged)
    if tail is not None:
        lines = lines[-tail:]
    out = sys.stdout
    for ts, label, text in lines:
        out.write(f"{ts} {app}[{label}]: {text}")
    out.flush()
    if not follow:
        return 0
    seen = {p.container.id for p in procs}
    offsets = {p.container.id: len(list(read_logs(Bundle(rt.ctx, p.container.id).log_path)))
               for p in procs}
    while True:  # poll: containers come and go with every release
        time.sleep(0.25)
        for p in app_containers(rt, app):
            if ptype is not None and p.type != ptype:
                continue
            cid = p.container.id
            entries = list(read_logs(Bundle(rt.ctx, cid).log_path))
            start = offsets.get(cid, 0) if cid in seen else 0
            seen.add(cid)
            for e in entries[start:]:
                out.write(f"{e.time} {app}[{p.type}.{p.index}]: {_text(e)}")
            offsets[cid] = len(entries)
        out.flush()
