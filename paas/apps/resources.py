"""Resource limits of an app (Dokku's ``resource:*``): memory, cpus, pids and the writable
layer's size (disk) per process type, with a default for every type that a type's own
limits override key by key (and the instance's default disk size below both).

``parse_limits`` validates with ``container:run``'s parsers (paasd parses the same text
again when it creates a container); ``ResourceStore`` keeps them in ``app_limits``
(type ``""`` is the default); ``limits_for`` merges the default and a type's own.

Not here: applying them (``paas.deploy.processes.run_flags`` puts them in the flags of
the next release's containers; the runtime writes the cgroup limits).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from ..errors import InvalidArgument
from ..model import Limits
from ..runtime.limits import parse_disk_size
from ..runtime.options import parse_resources
from ..state import transaction
from .store import need_app
from .validate import validate_process_type

__all__ = ["DEFAULT_TYPE", "KEYS", "ResourceStore", "limits_for", "parse_limits"]

DEFAULT_TYPE = ""  # the row that applies to every process type
KEYS = ("memory", "cpus", "pids", "disk")


def parse_limits(memory: str | None = None, cpus: str | None = None,
                 pids: str | None = None, disk: str | None = None) -> Limits:
    """Validated ``Limits`` (values normalized: stripped, lower case); InvalidArgument."""
    def norm(v: str | None) -> str | None:
        return None if v is None else v.strip().lower()

    memory, cpus, pids, disk = norm(memory), norm(cpus), norm(pids), norm(disk)
    for key, value in (("memory", memory), ("cpus", cpus), ("pids", pids), ("disk", disk)):
        if value == "":
            raise InvalidArgument(f"empty --{key} value",
                                  "give a value, or clear limits with: paas resource:limit-clear")
    parse_resources(memory, cpus, None, pids)
    if disk is not None:
        parse_disk_size(disk, "--disk")
    return Limits(memory=memory, cpus=cpus, pids=pids, disk=disk)


def limits_for(limits: Iterable[tuple[str, Limits]], ptype: str) -> Limits:
    """The limits of ``ptype``: its own where set, else the default's."""
    by_type = dict(limits)
    base = by_type.get(DEFAULT_TYPE, Limits())
    own = by_type.get(ptype, Limits())
    return Limits(memory=own.memory or base.memory, cpus=own.cpus or base.cpus,
                  pids=own.pids or base.pids, disk=own.disk or base.disk)


def _type(ptype: str) -> str:
    return ptype if ptype == DEFAULT_TYPE else validate_process_type(ptype)


class ResourceStore:
    """The ``app_limits`` table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _need(self, app: str) -> None:
        need_app(self.conn, app)

    def limits(self, app: str) -> dict[str, Limits]:
        """Process type ("" = default) -> its explicitly set limits, sorted by type."""
        self._need(app)
        values: dict[str, dict[str, str]] = {}
        for ptype, key, value in self.conn.execute(
                "SELECT type, key, value FROM app_limits WHERE app = ? ORDER BY type, key",
                (app,)):
            values.setdefault(str(ptype), {})[str(key)] = str(value)
        return {t: Limits(**v) for t, v in values.items()}

    def set(self, app: str, ptype: str, limits: Limits) -> Limits:
        """Set the given (non-None) limits of ``ptype``; the others stay. Its new limits."""
        ptype = _type(ptype)
        parse_limits(limits.memory, limits.cpus, limits.pids, limits.disk)
        pairs = [(k, v) for k, v in (("memory", limits.memory), ("cpus", limits.cpus),
                                     ("pids", limits.pids), ("disk", limits.disk))
                 if v is not None]
        if not pairs:
            raise InvalidArgument("no limit given", "give --memory, --cpus, --pids and/or --disk")
        with transaction(self.conn):
            self._need(app)
            self.conn.executemany(
                "INSERT OR REPLACE INTO app_limits (app, type, key, value) VALUES (?, ?, ?, ?)",
                [(app, ptype, k, v) for k, v in pairs])
        return self.limits(app).get(ptype, Limits())

    def clear(self, app: str, ptype: str | None = None) -> None:
        """Remove the limits of ``ptype`` ("" = the default), or all of them with None."""
        if ptype is not None:
            ptype = _type(ptype)
        with transaction(self.conn):
            self._need(app)
            if ptype is None:
                self.conn.execute("DELETE FROM app_limits WHERE app = ?", (app,))
            else:
                self.conn.execute("DELETE FROM app_limits WHERE app = ? AND type = ?",
                                  (app, ptype))
