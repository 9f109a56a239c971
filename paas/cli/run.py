"""``container:run``: the hottest CLI path, kept thin.

The CLI sends its raw arguments to paasd, which parses them
(``paas.runtime.options.flags_from_argv``), validates them, creates the
container (image, rootfs, network, state) and, for ``-d``, starts it.
Attached runs come back as a plan: this process runs runc itself (so the
container has our terminal or pipes) and reports the start and the exit.

Imports here stay light: no argparse (paasd parses), no ``paas.model``, no
``paas.config``, no dataclasses. Only an argv with ``-h``/``--help`` in it is
parsed here, with the same flags, since the help may be asked for while
paasd is down (and ``--help`` after the image belongs to the command).
"""

from __future__ import annotations

import sys

from ..errors import CommandFailed, InvalidArgument

TYPE_CHECKING = False  # typing costs ~3 ms of CLI start
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from .main import App, Handler, Parser

__all__ = ["QUICK_EXIT", "configure", "run_argv"]

# paas.cli.main.entry may skip Python's shutdown: this command leaves nothing to it
QUICK_EXIT = True

_HELP = ("-h", "--help")


def run_argv(app: App, argv: list[str]) -> int:
    """``paas container:run ARGV...``: paasd parses ``argv``."""
    if any(a in _HELP for a in argv):
        return _parse_here(app, argv)
    return _run(app, {"argv": argv, "stdin_tty": sys.stdin.isatty()})


def _parse_here(app: App, argv: list[str]) -> int:
    from .parser import Parser

    parser = Parser(prog="paas container:run", description="Run a command in a new container")
    _run_flags = configure("container:run", parser)
    return _run_flags(app, parser.parse_args(argv))


def _run_parsed(app: App, a: argparse.Namespace) -> int:
    if a.tty and not a.detach and not sys.stdin.isatty():
        raise InvalidArgument("the input device is not a TTY", "drop -t, or run from a terminal")
    return _run(app, {"flags": {k: v for k, v in vars(a).items() if not k.startswith("_")}})


def _run(app: App, body: dict[str, Any]) -> int:
    app.error_exit = 125  # failures before the container runs exit 125, like docker run
    from ..daemon.client import DaemonClient

    client = DaemonClient(app.paths)
    # no paasd: the client raises "paasd is not running ... start it with daemon:start"
    reply = client.begin("POST", "/containers", body)
    # imported while paasd creates the container (~5 ms of each overlap)
    from ..runtime.foreground import StartFailed, run_attached, start_exit_code

    try:
        plan = reply()
    except CommandFailed as err:  # -d: runc could not start it (127 for a missing command)
        app.error_exit = start_exit_code(err.stderr)
        raise
    if plan.get("detached"):
        sys.stdout.write(plan["id"] + "\n")
        return 0
    app.error_exit = None

    def notify(path: str, body: dict[str, Any]) -> Callable[[], object]:
        return client.begin("POST", path, body)

    try:
        return run_attached(plan, notify, stdin=bool(plan["stdin"]), tty=bool(plan["tty"]))
    except StartFailed as err:
        app.error_exit = err.returncode
        raise


def configure(name: str, p: Parser) -> Handler:
    """The argparse form, for ``--help`` (``run_argv`` is the command's entry)."""
    from ..runtime.options import add_run_flags

    add_run_flags(p)
    return _run_parsed
