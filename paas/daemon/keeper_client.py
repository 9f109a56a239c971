"""Client of the keeper (``paas.daemon.keeper``): used by the paasd worker and by ``daemon:*``.

One connection, one request at a time (a lock serialises threads). Every
method raises ``FailedPrecondition`` when the keeper cannot be reached, so
callers decide whether live restore is essential (``daemon:stop --all``) or
best effort (the worker handing over pipe fds).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from ..config import Paths
from ..errors import FailedPrecondition
from .keeper import keeper_pidfile, keeper_socket, recv_msg, send_msg
from .process import read_pidfile
from .sockpath import unix_address

__all__ = ["KeeperClient", "keeper_pid"]


def keeper_pid(paths: Paths) -> int | None:
    """The keeper's pid if its pid file names a live (non-zombie) process."""
    pid = read_pidfile(keeper_pidfile(paths))
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in ("Z", "X") else pid


class KeeperClient:
    def __init__(self, paths: Paths, timeout: float = 10.0) -> None:
        self.path = keeper_socket(paths)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.settimeout(self.timeout)
        try:
            with unix_address(self.path) as addr:
                sock.connect(addr)
        except OSError as err:
            sock.close()
            raise FailedPrecondition(f"the paasd keeper is not running ({err.strerror})",
                                     "start it with 'paas daemon:start'") from err
        return sock

    def call(self, req: dict[str, Any], fds: list[int] | None = None) -> tuple[dict[str, Any], list[int]]:
        """Send one request; its reply and any fds that came with it (caller closes them)."""
        with self._lock:
            for attempt in (1, 2):  # a keeper restarted since the last call: reconnect once
                if self._sock is None:
                    self._sock = self._connect()
                try:
                    send_msg(self._sock, req, fds or [])
                    reply, got = recv_msg(self._sock)
                except OSError as err:
                    self._sock.close()
                    self._sock = None
                    if attempt == 2 or isinstance(err, TimeoutError):
                        raise FailedPrecondition(f"the paasd keeper did not answer: {err}",
                                                 "see paasd.log; 'paas daemon:start' restarts it"
                                                 ) from err
                    continue
                if reply is None:
                    self._sock.close()
                    self._sock = None
                    if attempt == 2:
                        raise FailedPrecondition("the paasd keeper closed the connection",
                                                 "see paasd.log")
                    continue
                if "error" in reply:
                    for fd in got:
                        os.close(fd)
                    raise FailedPrecondition(f"the paasd keeper refused {req.get('op')}: "
                                             f"{reply['error']}", "see paasd.log")
                return reply, got
        raise AssertionError("unreachable")

    # ---- operations ----------------------------------------------------------------------

    def hold(self, cid: str, fds: dict[str, int]) -> None:
        self.call({"op": "hold", "cid": cid, "names": list(fds)}, list(fds.values()))

    def drop(self, cid: str, names: list[str] | None = None) -> None:
        self.call({"op": "drop", "cid": cid, "names": names})

    def held(self) -> tuple[dict[str, list[str]], dict[int, int]]:
        """(cid -> held stream names, pid -> wait status of exits the keeper reaped)."""
        reply, _ = self.call({"op": "list"})
        return dict(reply["held"]), {int(p): int(s) for p, s in reply["exits"].items()}

    def get(self, cid: str) -> dict[str, int]:
        """Fresh duplicates of the fds held for ``cid`` (name -> fd, now owned by the caller)."""
        reply, fds = self.call({"op": "get", "cid": cid})
        return dict(zip(reply["names"], fds, strict=True))

    def exit_status(self, pid: int, timeout: float = 2.0) -> int | None:
        """The wait status of ``pid`` once the keeper has reaped it (None: not its child)."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self.call({"op": "exit", "pid": pid})[0]
            status = reply["status"]
            if status is not None or reply.get("foreign") or time.monotonic() > deadline:
                return None if status is None else int(status)
            time.sleep(0.02)

    def forget(self, pids: list[int]) -> None:
        self.call({"op": "forget", "pids": pids})

    def start_worker(self) -> int:
        return int(self.call({"op": "start_worker"})[0]["worker"])

    def status(self) -> dict[str, Any]:
        return self.call({"op": "status"})[0]

    def shutdown(self, force: bool) -> list[str]:
        """Ask the keeper to stop (and its worker); returns the held cids if it refused."""
        reply = self.call({"op": "shutdown", "force": force})[0]
        return [] if reply.get("ok") else list(reply.get("held", []))
