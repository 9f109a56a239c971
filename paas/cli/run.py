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

from ..errors import CommandFailed

TYPE_CHECKING = False  # typing costs ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..runtime.sigproxy import SignalProxy
    from .main import App

__all__ = ["QUICK_EXIT", "run_argv"]

# paas.cli.main.entry may skip Python's shutdown: this command leaves nothing to it
QUICK_EXIT = True

_HELP = ("-h", "--help")


def run_argv(app: App, argv: list[str]) -> int:
    """``paas container:run ARGV...``: paasd parses ``argv``."""
    if any(a in _HELP for a in argv):
        _help_here(argv)
    return _run(app, {"argv": argv, "stdin_tty": sys.stdin.isatty()})


def _help_here(argv: list[str]) -> None:
    """Print the help and exit when ``-h``/``--help`` is container:run's (before the image);
    return when it is the command's."""
    from ..runtime.options import add_run_flags
    from .main import COMMANDS
    from .parser import Parser

    parser = Parser(prog="paas container:run", description=COMMANDS["container:run"][1])
    add_run_flags(parser)
    parser.parse_args(argv)


def _run(app: App, body: dict[str, Any]) -> int:
    from ..runtime.sigproxy import SignalProxy

    # from here on SIGINT/SIGTERM/SIGHUP cannot kill us between paasd's create and our
    # report of the exit (that left a created container behind): kept, then forwarded
    signals = SignalProxy()
    try:
        return _run_with(app, body, signals)
    finally:
        signals.restore()


def _run_with(app: App, body: dict[str, Any], signals: SignalProxy) -> int:
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
        return 0  # paasd started it: a signal meanwhile does not undo that
    app.error_exit = None

    def notify(path: str, body: dict[str, Any]) -> Callable[[], object]:
        return client.begin("POST", path, body)

    try:
        return run_attached(plan, notify, stdin=bool(plan["stdin"]), tty=bool(plan["tty"]),
                            signals=signals)
    except StartFailed as err:
        app.error_exit = err.returncode
        raise
