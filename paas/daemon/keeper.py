"""The keeper: a tiny per-instance process that makes paasd restartable without losing containers.

``python -m paas.daemon.keeper`` (started by ``paas daemon:start``) is the
*parent* of the paasd worker (``python -m paas.daemon``) and a child
subreaper. It

- restarts the worker with a backoff when it dies of anything but a clean
  exit (a clean exit is ``daemon:stop``: the worker stays down until
  ``daemon:start`` asks for it again with ``start_worker``);
- adopts container inits orphaned by a dead worker (subreaper), reaps them
  and remembers ``{pid: wait status}`` until a worker fetches them;
- holds duplicates of every container's pipe ends, sent by the worker with
  SCM_RIGHTS. It never reads them: while no worker runs, output waits in the
  pipe (writers block instead of getting EPIPE) and the next worker takes
  the fds back and keeps pumping.

Protocol: one JSON object per SOCK_SEQPACKET message on ``run/keeper.sock``
(mode 0600), fds attached; every request gets one reply (see
``Keeper._handle``; the client is ``keeper_client.KeeperClient``).
Stdlib-only imports, no sqlite: its RSS stays a few MB. Not covered here:
what containers are (the worker knows; the keeper only knows cids and pids).
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import proc
from ..errors import PaasError, exit_code_for
from ..oom import KEEPER_OOM_SCORE_ADJ, protect
from ..paths import Paths, paths_from_env
from .process import PidLock, set_child_subreaper
from .sockpath import unix_address

__all__ = ["MAX_FDS", "Keeper", "keeper_pidfile", "keeper_socket", "main", "recv_msg", "send_msg"]

log = logging.getLogger("paas.keeper")

MAX_MSG = 1 << 20
MAX_FDS = 250  # SCM_MAX_FD is 253 per message
MAX_EXITS = 4096
WORKER_BACKOFF = (0.1, 5.0)  # first delay, cap; doubles, reset after a run of 10 s
STOP_TIMEOUT = 10.0


def keeper_socket(paths: Paths) -> str:
    return paths.keeper_socket


def keeper_pidfile(paths: Paths) -> str:
    return paths.keeper_pidfile


def send_msg(sock: socket.socket, obj: dict[str, Any], fds: Sequence[int] = ()) -> None:
    data = json.dumps(obj).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def recv_msg(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and its fds; (None, []) when the peer closed the connection."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MSG, MAX_FDS)
    for fd in fds:
        os.set_inheritable(fd, False)  # recv_fds does not ask for MSG_CMSG_CLOEXEC
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    obj = json.loads(data)
    return (obj if isinstance(obj, dict) else {}), fds


class Keeper:
    """State and event loop of the keeper process."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths  # only paths: the keeper stays small (no config, no dataclasses)
        self.held: dict[str, dict[str, int]] = {}  # cid -> {"stdout": fd, ...}
        self.exits: dict[int, int] = {}  # pid -> wait status of reaped orphans
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_started = 0.0
        self.backoff = 0.0
        self.restart_at: float | None = None
        self.stopping = False
        self._sel = selectors.DefaultSelector()

    # ---- worker -------------------------------------------------------------------------

    def start_worker(self) -> int:
        if self.worker is not None:
            return self.worker.pid
        self.restart_at = None
        env = dict(os.environ, PAAS_ROOT=self.paths.root)
        # own session: a signal to the keeper's group must not reach the worker
        self.worker = proc.spawn([sys.executable, "-m", "paas.daemon"], stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        self.worker_started = time.monotonic()
        log.info("keeper %d: started paasd worker %d", os.getpid(), self.worker.pid)
        return self.worker.pid

    def _worker_exited(self, status: int) -> None:
        assert self.worker is not None
        self.worker.returncode = os.waitstatus_to_exitcode(status)
        code, pid = self.worker.returncode, self.worker.pid
        self.worker = None
        if self.stopping or code == 0:
            log.info("keeper: paasd worker %d exited (%d); not restarting", pid, code)
            return
        ran = time.monotonic() - self.worker_started
        first, cap = WORKER_BACKOFF
        self.backoff = first if ran >= 10 or not self.backoff else min(self.backoff * 2, cap)
        self.restart_at = time.monotonic() + self.backoff
        log.warning("keeper: paasd worker %d died (%d); restarting in %.1fs", pid, code, self.backoff)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._record(pid, status)

    def _record(self, pid: int, status: int) -> None:
        if self.worker is not None and pid == self.worker.pid:
            self._worker_exited(status)
            return
        self.exits[pid] = status
        while len(self.exits) > MAX_EXITS:  # statuses nobody asked for (orphaned runc runs)
            del self.exits[next(iter(self.exits))]

    def _exit_of(self, pid: int) -> dict[str, Any]:
        """``{"status": S}`` once reaped, ``{"status": None}`` while still running,
        ``{"status": None, "foreign": True}`` if it is not our child at all."""
        if pid not in self.exits:
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return {"status": None, "foreign": True}
            if got:
                self._record(got, status)
        return {"status": self.exits.get(pid)}

    # ---- requests -------------------------------------------------------------------------

    def _handle(self, req: dict[str, Any], fds: list[int]) -> tuple[dict[str, Any], list[int]]:
        op = req.get("op")
        if op == "hold":
            names = [str(n) for n in req.get("names", [])]
            if len(names) != len(fds):
                raise ValueError(f"hold: {len(names)} names for {len(fds)} fds")
            box = self.held.setdefault(str(req["cid"]), {})
            for name, fd in zip(names, fds, strict=True):
                old = box.pop(name, None)
                if old is not None:
                    os.close(old)
                box[name] = fd
            return {"ok": True}, []
        if op == "drop":
            self._drop(str(req["cid"]), req.get("names"))
            return {"ok": True}, []
        if op == "list":
            return {"held": {cid: sorted(box) for cid, box in self.held.items()},
                    "exits": {str(p): s for p, s in self.exits.items()}}, []
        if op == "get":
            box = self.held.get(str(req["cid"]), {})
            return {"names": list(box)}, list(box.values())
        if op == "exit":
            return self._exit_of(int(req["pid"])), []
        if op == "forget":
            for pid in req.get("pids", []):
                self.exits.pop(int(pid), None)
            return {"ok": True}, []
        if op == "start_worker":
            return {"worker": self.start_worker()}, []
        if op == "shutdown":
            if self.held and not req.get("force"):
                return {"ok": False, "held": sorted(self.held)}, []
            self.stopping = True
            return {"ok": True}, []
        if op == "status":
            return {"keeper": os.getpid(), "worker": self.worker.pid if self.worker else 0,
                    "held": len(self.held), "exits": len(self.exits)}, []
        raise ValueError(f"unknown op {op!r}")

    def _drop(self, cid: str, names: list[str] | None) -> None:
        box = self.held.get(cid, {})
        for name in list(box) if names is None else names:
            fd = box.pop(str(name), None)
            if fd is not None:
                os.close(fd)
        if not box:
            self.held.pop(cid, None)

    def _on_client(self, conn: socket.socket) -> None:
        try:
            req, fds = recv_msg(conn)
        except (OSError, ValueError) as err:
            log.warning("keeper: bad request: %s", err)
            req, fds = None, []
        if req is None:
            self._sel.unregister(conn)
            conn.close()
            return
        try:
            reply, out = self._handle(req, fds)
        except (KeyError, ValueError, TypeError, OSError) as err:
            for fd in fds:
                os.close(fd)
            reply, out = {"error": f"{type(err).__name__}: {err}"}, []
        try:
            send_msg(conn, reply, out)
        except OSError as err:
            log.warning("keeper: cannot reply: %s", err)

    def _on_accept(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        conn.setblocking(True)
        self._sel.register(conn, selectors.EVENT_READ, self._on_client)

    # ---- main loop ------------------------------------------------------------------------

    def serve(self) -> None:
        run = self.paths.run
        os.makedirs(run, mode=0o700, exist_ok=True)
        lock = PidLock(keeper_pidfile(self.paths), "the paasd keeper",
                       "stop it with 'paas daemon:stop --all'")
        lock.acquire()
        try:
            set_child_subreaper()
            protect(KEEPER_OOM_SCORE_ADJ)  # the containers' pipes die with it
            listener = _bind(keeper_socket(self.paths))
            wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            signal.set_wakeup_fd(wake_w)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
            self._sel.register(listener, selectors.EVENT_READ, self._on_accept)
            self._sel.register(wake_r, selectors.EVENT_READ, lambda _f: _drain_pipe(wake_r))
            self.start_worker()
            self._loop()
            self._shutdown(listener)
        finally:
            lock.release()

    def _on_signal(self, signo: int, _frame: object) -> None:
        if signo != signal.SIGCHLD:
            self.stopping = True

    def _loop(self) -> None:
        while not self.stopping:
            timeout = None if self.restart_at is None else max(0.0, self.restart_at - time.monotonic())
            for key, _ in self._sel.select(timeout):
                key.data(key.fileobj)
            self._reap()
            if self.restart_at is not None and time.monotonic() >= self.restart_at and not self.stopping:
                self.start_worker()

    def _shutdown(self, listener: socket.socket) -> None:
        log.info("keeper %d: shutting down", os.getpid())
        if self.worker is not None:
            self.worker.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.worker is not None and time.monotonic() < deadline:
                time.sleep(0.02)
                self._reap()
            if self.worker is not None:
                self.worker.kill()
                while self.worker is not None:
                    time.sleep(0.02)
                    self._reap()
        for cid in list(self.held):
            self._drop(cid, None)
        listener.close()
        try:
            os.unlink(keeper_socket(self.paths))
        except FileNotFoundError:
            pass


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _bind(path: str) -> socket.socket:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        with unix_address(path) as addr:
            sock.bind(addr)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    return sock


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s [keeper] %(message)s")
    try:
        Keeper(paths_from_env()).serve()
    except PaasError as err:
        log.error("%s", err.render())
        return exit_code_for(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
