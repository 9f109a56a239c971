"""paasd's entry point: lock the instance, become subreaper, serve the API, supervise.

``Daemon`` wires the pieces (pid lock, unix socket, router, supervisor) and
runs until ``POST /shutdown``, SIGTERM or SIGINT; a thread renews ACME
certificates (``renewals``). Stopping the daemon does not
stop containers. Normally paasd runs as the child of the keeper
(``paas.daemon.keeper``), which holds the containers' pipes and reaps them
while no paasd runs; ``keeper`` is then its client. Without a keeper (paasd
started by hand) containers still work, but lose live restore.
Diagnostics go to ``<PAAS_ROOT>/run/paasd.log``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .. import modes
from ..config import Context, load_context
from ..errors import PaasError, exit_code_for
from . import routes
from .httpd import UnixHTTPServer, bind_unix_socket
from .process import PidLock, set_child_subreaper
from .router import Router
from .supervisor import Supervisor

if TYPE_CHECKING:
    from .keeper_client import KeeperClient
    from .renewals import Renewals

__all__ = ["Daemon", "log_path", "main"]

log = logging.getLogger(__name__)


def log_path(ctx: Context) -> str:
    return os.path.join(ctx.paths.run, "paasd.log")


class Daemon:
    """One paasd: ``ctx``, ``router`` and ``supervisor`` are what routes use."""

    def __init__(self, ctx: Context, supervisor: Supervisor | None = None,
                 keeper: KeeperClient | None = None) -> None:
        self.ctx = ctx
        self.router = Router()
        self.keeper = keeper
        self.supervisor = supervisor or Supervisor(keeper=keeper)
        self.on_shutdown: list[Callable[[], None]] = []
        self._stop = threading.Event()

    def request_shutdown(self) -> None:
        self._stop.set()

    def serve(self) -> None:
        """Run until shutdown is requested. Raises AlreadyExists if this instance has a paasd."""
        os.makedirs(self.ctx.paths.run, mode=0o700, exist_ok=True)
        lock = PidLock(self.ctx.paths.daemon_pidfile)
        lock.acquire()
        try:
            set_child_subreaper()
            _repair_modes(self.ctx)
            _limit_containers(self.ctx)
            sock = bind_unix_socket(self.ctx.paths.daemon_socket)
            self.supervisor.start()  # before install: routes may adopt running containers
            routes.install(self.router, self)
            renewals = _renewals(self.ctx)
            server = UnixHTTPServer(sock, self.router)
            thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="paasd-http",
                                      daemon=True)
            thread.start()
            log.info("paasd (pid %d) serving %s", os.getpid(), self.ctx.paths.daemon_socket)
            while not self._stop.wait(1.0):
                pass
            log.info("paasd shutting down")
            server.shutdown()
            server.server_close()
            _unlink(self.ctx.paths.daemon_socket)
            self._run_shutdown_hooks()
            renewals.stop()
            self.supervisor.stop()
        finally:
            lock.release()

    def _run_shutdown_hooks(self) -> None:
        for hook in self.on_shutdown:
            try:
                hook()
            except Exception:
                log.exception("shutdown hook %r failed", hook)


def _repair_modes(ctx: Context) -> None:
    """An upgraded instance's files made root-only (what ``paas report --fix`` does)."""
    from ..doctor.modes import repair_instance

    try:
        fixed = repair_instance(ctx)
    except OSError as err:
        log.warning("could not check the modes under %s: %s", ctx.paths.root, err)
        return
    if fixed:
        log.warning("made %d paths under %s root-only (e.g. %s %04o -> %04o)", len(fixed),
                    ctx.paths.root, fixed[0].path, fixed[0].mode, fixed[0].want)
def _renewals(ctx: Context) -> Renewals:
    """paasd renews ACME certificates (``paas.daemon.renewals``)."""
    from .renewals import Renewals

    renewals = Renewals(ctx)
    renewals.start()
    return renewals


def _limit_containers(ctx: Context) -> None:
    """paasd last for the OOM killer; the containers' parent cgroup capped below the host."""
    from ..oom import DAEMON_OOM_SCORE_ADJ, protect
    from ..runtime.cgroups import ensure_parent

    protect(DAEMON_OOM_SCORE_ADJ)
    try:
        ensure_parent(ctx)
    except PaasError as err:  # paasd still serves; 'paas report' shows the problem
        log.error("%s", err.render())


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _setup_logging(ctx: Context) -> None:
    os.makedirs(ctx.paths.run, mode=0o700, exist_ok=True)
    os.close(modes.create(log_path(ctx), os.O_WRONLY))  # root-only before FileHandler's open
    handler = logging.FileHandler(log_path(ctx))
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(os.environ.get("PAAS_LOG_LEVEL", "INFO").upper())


def _keeper(ctx: Context) -> KeeperClient | None:
    from .keeper_client import KeeperClient, keeper_pid

    if keeper_pid(ctx.paths) is None:
        log.warning("no keeper runs for this instance: containers lose live restore")
        return None
    return KeeperClient(ctx.paths)


def main(argv: Sequence[str] | None = None) -> int:
    """Run paasd in the foreground for the instance named by ``PAAS_ROOT``."""
    try:
        from .. import conffile

        conffile.apply(os.environ)  # started by hand or a unit file: settings as the CLI's
        ctx = load_context()
        _setup_logging(ctx)
        daemon = Daemon(ctx, keeper=_keeper(ctx))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _signo, _frame: daemon.request_shutdown())
        daemon.serve()
    except PaasError as err:
        log.error("paasd: %s", err.render())
        sys.stderr.write(f"paasd: {err.render()}\n")
        return exit_code_for(err)
    return 0
