"""``git:ssh-command``, ``git:http-serve``, ``git:url``: the transports of ``git push``.

``git:ssh-command --key NAME`` is what sshd runs for a key added by ``ssh-keys:add``
(the forced command): it reads ``SSH_ORIGINAL_COMMAND`` (``git-receive-pack 'APP'``;
``git-upload-pack`` for a read-only clone), refuses anything else, and speaks the
git protocol on stdin/stdout. ``git:http-serve`` runs gunicorn with the smart HTTP
app ``paas.receive.http:app`` in the foreground. ``git:url APP`` prints a push URL.

Test seam: ``PAAS_RECEIVE_HOOK=module:function`` replaces the deploy stage as the
update hook (only honoured when set). Exit codes as for every command (2 refused
command, 5 deploys unavailable...).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, BinaryIO

from ..errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure"]


def configure(name: str, parser: Parser) -> Handler:
    if name == "git:ssh-command":
        parser.add_argument("--key", default="", help="name of the ssh key that logged in")
        return ssh_command
    if name == "git:http-serve":
        parser.add_argument("--bind", default="", metavar="ADDR:PORT",
                            help="where to listen (default 0.0.0.0:$PAAS_HTTP_GIT_PORT or 8022)")
        parser.add_argument("--workers", type=int, default=2,
                            help="gunicorn worker processes: concurrent pushes (default 2)")
        parser.add_argument("--timeout", type=int, default=3600,
                            help="seconds a push (with its deploy) may take (default 3600)")
        return http_serve
    parser.add_argument("app", metavar="APP")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--ssh", dest="kind", action="store_const", const="ssh",
                      help="an ssh URL (default)")
    kind.add_argument("--http", dest="kind", action="store_const", const="http",
                      help="a smart HTTP URL")
    parser.add_argument("--name", default="", help="with --http: the token's name")
    parser.add_argument("--token", default="", help="with --http: embed this token in the URL")
    return url


def _protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """The git protocol's own copies of stdin/stdout; fds 0 and 1 then point at
    /dev/null and stderr, so nothing a hook or its subprocesses print can corrupt
    the protocol or read the pack."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return proto_in, proto_out


def _log_to_file(path: str) -> None:
    """Diagnostics (tracebacks of failed hooks) go to a log file, not to the pusher."""
    import logging

    from .. import modes

    modes.makedirs(os.path.dirname(path))
    os.close(modes.create(path, os.O_WRONLY))  # root-only before FileHandler's open
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)


def ssh_command(app: App, a: argparse.Namespace) -> int:
    from ..receive import default_hook, parse_ssh_command, receive_pack, upload_pack

    cmd = parse_ssh_command(os.environ.get("SSH_ORIGINAL_COMMAND"))
    ctx = app.ctx
    _log_to_file(os.path.join(ctx.paths.run, "git-ssh.log"))
    hook = default_hook(ctx) if cmd.writes else None
    proto_in, proto_out = _protocol_streams()
    try:
        if hook is not None:
            receive_pack(ctx, cmd.app, proto_in, proto_out, hook, pusher=a.key)
        else:
            upload_pack(ctx, cmd.app, proto_in, proto_out)
    except BrokenPipeError:
        return 1  # the client hung up
    return 0


def http_serve(app: App, a: argparse.Namespace) -> int:
    from ..proc import exit_code_from_status, spawn
    from ..receive.urls import DEFAULT_HTTP_PORT

    bind = a.bind or f"0.0.0.0:{os.environ.get('PAAS_HTTP_GIT_PORT') or DEFAULT_HTTP_PORT}"
    if os.geteuid() != 0:  # its workers read the tokens and write the repositories
        raise FailedPrecondition("paas must run as root: git:http-serve writes PAAS_ROOT",
                                 "run it as root, e.g. with sudo")
    if a.workers < 1 or a.timeout < 0:
        raise InvalidArgument("--workers must be >= 1 and --timeout >= 0")
    env = dict(os.environ, PAAS_ROOT=app.paths.root)
    argv = [sys.executable, "-m", "gunicorn", "--worker-class", "sync",
            "--workers", str(a.workers), "--timeout", str(a.timeout), "--bind", bind,
            "--access-logfile", "-", "paas.receive.http:app"]
    child = spawn(argv, env=env)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(child.pid, 0)
            break
        except InterruptedError:
            continue
    child.returncode = exit_code_from_status(status)
    return child.returncode


def url(app: App, a: argparse.Namespace) -> int:
    from ..receive.urls import git_endpoints, http_url, ssh_url

    ep = git_endpoints()
    if a.kind == "http":
        if bool(a.name) != bool(a.token):
            raise InvalidArgument("--name and --token go together",
                                  "or leave both out: git then asks for them")
        sys.stdout.write(http_url(a.app, ep.http_host, ep.http_port, name=a.name,
                                  token=a.token) + "\n")
        if not a.token:
            sys.stderr.write(
                "note: git asks for a user name (the token's name, see paas auth:list) and "
                "password (the token);\n      to store them: git config credential.helper store\n")
        return 0
    if a.name or a.token:
        raise InvalidArgument("--name and --token are for --http URLs")
    sys.stdout.write(ssh_url(a.app, ep.ssh_host, ep.ssh_port, ep.ssh_user) + "\n")
    return 0
