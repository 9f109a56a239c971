"""``daemon:start``, ``daemon:stop``, ``daemon:status``: manage paasd for this PAAS_ROOT.

Exit codes: 0 success (also start when already running, stop when not
running); ``daemon:status`` exits 3 when paasd is not running; 5 when paasd
does not come up or go down in time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import FailedPrecondition

if TYPE_CHECKING:
    from ..config import Context
    from .main import App, Handler, Parser

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

    ctx = app.ctx
    client = DaemonClient(ctx)
    info = client.ping()
    if info is not None:
        sys.stdout.write(f"paasd is already running (pid {info['pid']})\n")
        return 0
    os.makedirs(ctx.paths.run, mode=0o700, exist_ok=True)
    env = dict(os.environ, PAAS_ROOT=ctx.paths.root)
    with open(_log_path(ctx), "ab") as logf:
        child = proc.spawn([sys.executable, "-m", "paas.daemon"], stdin=subprocess.DEVNULL,
                           stdout=logf, stderr=logf, env=env, start_new_session=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        info = client.ping(timeout=1.0)
        if info is not None:
            sys.stdout.write(f"paasd started (pid {info['pid']}, socket {ctx.paths.daemon_socket})\n")
            return 0
        if child.poll() is not None:
            raise FailedPrecondition(f"paasd exited with {child.returncode} while starting: "
                                     f"{_log_tail(ctx)}", f"see {_log_path(ctx)}")
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

    client = DaemonClient(app.ctx)
    info = client.ping()
    if info is None:
        sys.stdout.write("paasd is not running\n")
        return 0
    pid = int(info["pid"])
    client.request("POST", "/shutdown")
    deadline = time.monotonic() + args.timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise FailedPrecondition(f"paasd (pid {pid}) did not exit within {args.timeout:g}s",
                                     f"see {_log_path(app.ctx)}; 'kill {pid}' stops it")
        time.sleep(0.05)
    sys.stdout.write(f"paasd stopped (pid {pid})\n")
    return 0


def status(app: App, args: argparse.Namespace) -> int:
    from ..daemon.client import DaemonClient

    info = DaemonClient(app.ctx).ping()
    report: dict[str, Any] = {
        "running": info is not None,
        "pid": info["pid"] if info else None,
        "version": info.get("version") if info else None,
        "socket": app.ctx.paths.daemon_socket,
        "root": app.ctx.paths.root,
    }
    if args.format == "json":
        from .render import emit_json

        emit_json(report)
    elif info is not None:
        sys.stdout.write(f"paasd is running (pid {info['pid']}, socket {report['socket']})\n")
    else:
        sys.stdout.write(f"paasd is not running (PAAS_ROOT={app.ctx.paths.root})\n")
    return 0 if info is not None else 3
