"""``apps:lock`` / ``apps:unlock``: Dokku's deploy lock (pushes, ``ps:rebuild`` and
rollbacks of a locked app are refused with a hint; restarts, scaling and config
changes still work). ``lock_fields`` gives ``apps:info`` its deploy-lock rows.

Not here: the locks themselves (``paas.deploy.locks``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING, Any

from ..apps.validate import validate_app_name

if TYPE_CHECKING:
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "lock_info"]


def lock_info(app: App, name: str) -> dict[str, Any]:
    """``{"locked": {...} | None, "deploying": {...} | None}`` for apps:info."""
    from ..deploy.locks import AppLocks, DeployLock, holder_text

    lock = AppLocks(app.conn).get(name)
    holder = DeployLock(app.ctx.paths.root).holder(name)
    return {
        "locked": None if lock is None else {"by": lock.locked_by, "since": lock.created,
                                             "reason": lock.reason},
        "deploying": None if holder is None else {
            "pid": holder.pid, "command": holder.command, "since": holder.since,
            "text": holder_text(holder)},
    }


def lock_fields(info: dict[str, Any]) -> list[tuple[str, str]]:
    """Pure: the ``Deploy locked`` / ``Deploying`` rows of apps:info."""
    from ..deploy.locks import ago

    locked = info["locked"]
    deploying = info["deploying"]
    lock_text = "false"
    if locked is not None:
        by = f" by {locked['by']}" if locked["by"] else ""
        reason = f": {locked['reason']}" if locked["reason"] else ""
        lock_text = f"true ({ago(locked['since'])}{by}{reason})"
    return [("Deploy locked", lock_text),
            ("Deploying", deploying["text"] if deploying is not None else "no")]


def _who() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _lock(app: App, a: argparse.Namespace) -> int:
    from ..deploy.locks import AppLocks

    validate_app_name(a.app)
    if len(a.reason) > 200 or not a.reason.isprintable():
        from ..errors import InvalidArgument

        raise InvalidArgument("invalid --reason", "give one line of at most 200 characters")
    AppLocks(app.conn).lock(a.app, _who(), a.reason)
    print("-----> Deploy lock created")
    return 0


def _unlock(app: App, a: argparse.Namespace) -> int:
    from ..deploy.locks import AppLocks

    validate_app_name(a.app)
    from ..apps.store import AppStore

    AppStore(app.conn).get(a.app)  # NotFound with a hint
    if AppLocks(app.conn).unlock(a.app):
        print("-----> Deploy lock removed")
    else:
        sys.stderr.write(" !     Deploy lock does not exist\n")
    return 0


def configure(name: str, p: Parser) -> Handler:
    p.add_argument("app", metavar="APP")
    if name == "apps:lock":
        p.add_argument("--reason", default="", help="shown to whoever pushes (apps:info too)")
        return _lock
    return _unlock
