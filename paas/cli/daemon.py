"""``daemon:start``, ``daemon:stop``, ``daemon:status``: manage paasd for this PAAS_ROOT.

Two processes per instance: the keeper (``paas.daemon.keeper``: holds the
containers' pipes, reaps orphans, restarts a crashed worker) and paasd, the
worker it runs. ``daemon:start`` starts the keeper if needed, else asks it
for a worker. ``daemon:stop`` stops the worker only: containers keep running
and their output waits in the pipes until the next ``daemon:start``.
``daemon:stop --all`` stops the keeper too; it refuses (exit 4) while
containers run, unless ``--force`` (they keep running, unsupervised).

Exit codes: 0 success (also start when already running, stop when not
running); ``daemon:status`` exits 3 when paasd is not running; 4 see above;
5 when paasd does not come up or go down in time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, FailedPrecondition

if TYPE_CHECKING:
    from ..config import Context
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure"]

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def configure(name: str, parser: Parser) -> Handler:
    if name == "daemon:start":
        parser.add_argument("--timeout", type=float, default=START_TIMEOUT,
                            help="seconds to wait for paasd to answer (default 10)")
        return start
    if name == "daemon:stop":
        parser.add_argument("--timeout", type=float, default=STOP_TIMEOUT,
                            help="seconds to wait for paasd to exit (default 10)")
        parser.add_argument("--all", action="store_true",
                            help="stop the keeper too (refused while containers run)")
        parser.add_argument("--force", action="store_true",
                            help="with --all: stop even while containers run")
        return stop
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return status


def _log_path(ctx: Context) -> str:
    return os.path.join(ctx.paths.run, "paasd.log")


def _log_tail(ctx: Context, lines: int = 5) -> str:
    try:
        with open(_log_path(ctx), errors="replace") as f:
            tail = f.read().splitlines()[-lines:]
    except OSError:
        return ""
    return " | ".join(tail)


def start(app: App, args: argparse.Namespace) -> int:
    import subprocess

    from .. import proc
    from ..daemon.client import DaemonClient
    from ..daemon.keeper_client import KeeperClient, keeper_pid

    ctx = app.ctx
    client = DaemonClient(ctx)
    info = client.ping()
    if info is not None:
        sys.stdout.write(f"paasd is already running (pid {info['pid']})\n")
        return 0
    os.makedirs(ctx.paths.run, mode=0o700, exist_ok=True)
    child = None
    kpid = keeper_pid(ctx.paths)
    if kpid is not None:
        KeeperClient(ctx.paths).start_worker()
    else:
        env = dict(os.environ, PAAS_ROOT=ctx.paths.root)
        from .. import modes

        with open(modes.create(_log_path(ctx), os.O_WRONLY | os.O_APPEND), "ab") as logf:
            child = proc.spawn([sys.executable, "-m", "paas.daemon.keeper"],
                               stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                               start_new_session=True)
        kpid = child.pid
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        info = client.ping(timeout=1.0)
        if info is not None:
            sys.stdout.write(f"paasd started (pid {info['pid']}, keeper {kpid}, "
                             f"socket {ctx.paths.daemon_socket})\n")
            return 0
        if child is not None and child.poll() is not None:
            raise FailedPrecondition(f"the paasd keeper exited with {child.returncode} while "
                                     f"starting: {_log_tail(ctx)}", f"see {_log_path(ctx)}")
        time.sleep(0.05)
    raise FailedPrecondition(f"paasd did not answer within {args.timeout:g}s: {_log_tail(ctx)}",
                             f"see {_log_path(ctx)}")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (its reaper may be slow)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def stop(app: App, args: argparse.Namespace) -> int:
    from ..daemon.client import DaemonClient
    from ..daemon.keeper_client import KeeperClient, keeper_pid

    client = DaemonClient(app.ctx)
    info = client.ping()
    kpid = keeper_pid(app.ctx.paths) if args.all else None
    if kpid is not None:
        held = KeeperClient(app.ctx.paths).shutdown(force=args.force)
        if held:
            raise Conflict(f"{len(held)} container(s) are running under paasd's keeper",
                           "stop them first, or add --force (they keep running, unsupervised)")
    elif info is not None:
        client.request("POST", "/shutdown")
    if info is None:
        sys.stdout.write("paasd is not running\n")
    else:
        _wait_gone(app, int(info["pid"]), "paasd", args.timeout)
        sys.stdout.write(f"paasd stopped (pid {info['pid']})\n")
    if kpid is not None:
        _wait_gone(app, kpid, "the paasd keeper", args.timeout + 1)
        sys.stdout.write(f"keeper stopped (pid {kpid})\n")
    return 0


def _wait_gone(app: App, pid: int, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise FailedPrecondition(f"{what} (pid {pid}) did not exit within {timeout:g}s",
                                     f"see {_log_path(app.ctx)}; 'kill {pid}' stops it")
        time.sleep(0.05)


def status(app: App, args: argparse.Namespace) -> int:
    from ..daemon.client import DaemonClient
    from ..daemon.keeper_client import keeper_pid

    info = DaemonClient(app.ctx).ping()
    kpid = keeper_pid(app.ctx.paths)
    report: dict[str, Any] = {
        "running": info is not None,
        "pid": info["pid"] if info else None,
        "keeper_pid": kpid,
        "version": info.get("version") if info else None,
        "socket": app.ctx.paths.daemon_socket,
        "root": app.ctx.paths.root,
    }
    if args.format == "json":
        from .render import emit_json

        emit_json(report)
    elif info is not None:
        sys.stdout.write(f"paasd is running (pid {info['pid']}, keeper {kpid}, "
                         f"socket {report['socket']})\n")
    else:
        keeper = f"; its keeper runs (pid {kpid})" if kpid else ""
        sys.stdout.write(f"paasd is not running (PAAS_ROOT={app.ctx.paths.root}{keeper})\n")
    return 0 if info is not None else 3
