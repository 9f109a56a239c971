"""``container:run``: the hottest CLI path, kept thin.

The CLI sends the raw flags to paasd, which validates them
(``paas.runtime.options``), creates the container (image, rootfs, network,
state) and, for ``-d``, starts it. Attached runs come back as a plan: this
process runs runc itself (so the container has our terminal or pipes) and
reports the start and the exit. Imports here stay light: no ``paas.model``,
no ``paas.config``, no dataclasses.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import InvalidArgument

TYPE_CHECKING = False  # typing costs ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .main import App, Handler, Parser

__all__ = ["QUICK_EXIT", "add_run_flags", "configure"]

# paas.cli.main.entry may skip Python's shutdown: this command leaves nothing to it
QUICK_EXIT = True

def add_run_flags(p: Parser) -> None:
    """The flags of ``container:run``; their dests are the keys of ``RUN_FLAGS``."""
    p.add_argument("-d", "--detach", action="store_true", help="run in the background under paasd")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", help="container name (unique)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="HOSTDIR:DIR[:ro]")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]")
    p.add_argument("--entrypoint", metavar="CMD")
    p.add_argument("--hostname", metavar="H")
    p.add_argument("--memory", "-m", metavar="SIZE", help="memory limit, e.g. 256m")
    p.add_argument("--cpus", metavar="N", help="CPU quota, e.g. 0.5")
    p.add_argument("--cpu-shares", metavar="N")
    p.add_argument("--pids-limit", metavar="N")
    p.add_argument("--network", default="bridge", help="bridge (default), none or host")
    p.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[HOSTIP:]HOSTPORT:CONTAINERPORT[/udp]")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish every EXPOSEd port on a random host port")
    p.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]",
                   help="expose a port (published with -P) in addition to the image's")
    p.add_argument("--userns", default="", help="'host' runs without a user namespace")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="no (default), on-failure[:N], always or unless-stopped")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _run(app: App, a: argparse.Namespace) -> int:
    a._error_exit = 125  # failures before the container runs exit 125, like docker run
    if a.tty and not a.detach and not sys.stdin.isatty():
        raise InvalidArgument("the input device is not a TTY", "drop -t, or run from a terminal")
    from ..daemon.client import DaemonClient

    client = DaemonClient(app.paths)
    flags = {k: v for k, v in vars(a).items() if not k.startswith("_")}
    # no paasd: the client raises "paasd is not running ... start it with daemon:start"
    reply = client.begin("POST", "/containers", {"flags": flags, "start": a.detach})
    if not a.detach:
        # imported while paasd creates the container (~5 ms of each overlap)
        from ..runtime.foreground import run_attached
    plan = reply()
    if a.detach:
        sys.stdout.write(plan["id"] + "\n")
        return 0

    a._error_exit = None

    def notify(path: str, body: dict[str, Any]) -> Callable[[], object]:
        return client.begin("POST", path, body)

    return run_attached(plan, notify, stdin=a.interactive, tty=a.tty)


def configure(name: str, p: Parser) -> Handler:
    add_run_flags(p)
    return _run
