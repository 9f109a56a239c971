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
from ..runtime.logs import LogEntry, LogTail, read_logs
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
    # one open handle per container, reading only what is new; containers come and go
    # with every release, so the list is looked at again each round
    tails = {p.container.id: LogTail(Bundle(rt.ctx, p.container.id).log_path, from_start=False)
             for p in procs}
    labels = {p.container.id: f"{p.type}.{p.index}" for p in procs}
    try:
        while True:
            time.sleep(0.25)
            current = {p.container.id: p for p in app_containers(rt, app)
                       if ptype is None or p.type == ptype}
            for cid, p in current.items():
                if cid not in tails:
                    tails[cid] = LogTail(Bundle(rt.ctx, cid).log_path, from_start=True)
                    labels[cid] = f"{p.type}.{p.index}"
            for cid in list(tails):
                for e in tails[cid].read():  # a removed container's last lines too
                    out.write(f"{e.time} {app}[{labels[cid]}]: {_text(e)}")
                if cid not in current:
                    tails.pop(cid).close()
            out.flush()
    finally:
        for t in tails.values():
            t.close()
