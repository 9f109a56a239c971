"""An app's ``ProcessOptions``: what every process container of its next release gets
from ``storage:*``, ``resource:*``, ``ps:set`` (``restart-policy``, ``init-process``,
``host-ca-bundle``) and ``network:set allow-link-local``.

Read when containers are created (cutover, release phase, ``paas run``), so a change
takes effect at the next deploy or restart, as in Dokku; releases do not record them
(a rollback runs with today's mounts and limits, like Dokku's).
"""

from __future__ import annotations

import sqlite3

from ..model import DefaultLimits, ProcessOptions
from .resources import ResourceStore
from .storage import StorageStore
from .store import AppStore

__all__ = ["process_options"]


def process_options(conn: sqlite3.Connection, app: str,
                    defaults: DefaultLimits | None = None) -> ProcessOptions:
    """``defaults``: the instance's (``Context.limits``), for the default disk size."""
    disk = defaults.app_disk if defaults is not None else None
    return ProcessOptions(
        mounts=tuple(StorageStore(conn).list(app)),
        limits=tuple(ResourceStore(conn).limits(app).items()),
        restart=AppStore(conn).setting(app, "restart-policy"),
        allow_link_local=AppStore(conn).setting(app, "allow-link-local") == "true",
        init=AppStore(conn).setting(app, "init-process") != "false",
        host_ca=AppStore(conn).setting(app, "host-ca-bundle") == "true",
        default_disk=str(disk) if disk else None,
    )
