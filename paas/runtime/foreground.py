"""Run a container attached to the calling process (``container:run`` without ``-d``).

Without a TTY the caller becomes a child subreaper, starts the container with
``runc run --detach`` so the container's init re-parents to it, copies the
container's stdout/stderr to its own and to the json-file log, forwards
SIGINT/SIGTERM/SIGHUP/SIGQUIT to the container, and reaps the init to get the
real exit status (and read the memory cgroup's OOM counter before
``runc delete``). With a TTY, ``runc run`` in the foreground owns the
terminal (raw mode, window size, job control) and its exit status is the
container's.

Not here: detached containers (paasd's supervisor owns those).
"""

from __future__ import annotations

import os
import select
import sys
import time

from .. import proc
from ..errors import CommandFailed
from ..linux import set_child_subreaper
from ..proc import exit_code_from_status
from .logwriter import LogWriter

__all__ = ["StartFailed", "run_attached", "start_exit_code"]

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    # notify(path, body) sends a request to paasd and returns a function that waits for its reply
    Notify = Callable[[str, dict[str, Any]], Callable[[], object]]

# _signal and select.epoll, not signal and selectors: those import enum, ~4 ms of every run
if TYPE_CHECKING:
    import signal as _signal  # _signal has no stubs; signal re-exports it with enums
else:
    import _signal

_FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)
_AT_ONCE = 0.02  # s: an exit within this is reported with the start, in one request


class StartFailed(CommandFailed):
    """runc could not start the container: ``returncode`` is ``start_exit_code`` of its
    error text, ``stderr``."""


def start_exit_code(runc_error: str) -> int:
    """docker run's exit status for a container that did not start, from runc's error:
    127 when the command is not found, 126 when it cannot be executed, else 125."""
    if "executable file not found" in runc_error or "no such file or directory" in runc_error:
        return 127
    if "permission denied" in runc_error:
        return 126
    return 125


def run_attached(plan: dict[str, Any], notify: Notify, *, stdin: bool, tty: bool) -> int:
    """Run the container paasd created (``plan`` from ``POST /containers``) attached to our
    stdio; ``notify(path, body)`` reports the start and the exit back to paasd."""
    cid = str(plan["id"])
    if tty:
        code = proc.spawn_light(list(plan["argv"])).wait()
        notify(f"/containers/{cid}/finish", {"exit_code": code})()
        return code
    return _run_piped(plan, notify, stdin)


def _run_piped(plan: dict[str, Any], notify: Notify, open_stdin: bool) -> int:
    cid, pid_file = str(plan["id"]), str(plan["pid_file"])
    set_child_subreaper()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    stdin = sys.stdin.fileno() if open_stdin else os.open(os.devnull, os.O_RDONLY)
    try:
        runc = proc.spawn_light(list(plan["argv"]), stdin=stdin, stdout=out_w, stderr=err_w)
    finally:
        os.close(out_w)
        os.close(err_w)
        if not open_stdin:
            os.close(stdin)
    log = LogWriter(str(plan["log_path"]))
    pump = _Pump(log, {out_r: ("stdout", sys.stdout.buffer), err_r: ("stderr", sys.stderr.buffer)})
    runc_fd = os.pidfd_open(runc.pid)
    pump.watch_exit(runc_fd)
    pump.until(lambda: pump.exited)
    os.close(runc_fd)
    if runc.wait() != 0:
        pump.drain()
        log.close()
        error = pump.stderr_tail()
        code = start_exit_code(error)
        notify(f"/containers/{cid}/finish", {"exit_code": code})()
        raise StartFailed(f"container {plan['name']} failed to start (runc exit "
                          f"{runc.returncode})", "see the runc error above",
                          returncode=code, stderr=error)
    with open(pid_file) as f:
        pid = int(f.read().strip())
    kill = list(plan["kill_argv"])
    previous = {s: _signal.signal(s, lambda n, _f: _forward(kill, n)) for s in _FORWARDED}
    started: Callable[[], object] | None = None
    try:
        pidfd = os.pidfd_open(pid)
        pump.watch_exit(pidfd)
        # a command that ends at once (`true`, a failing one) is reported in one request
        # with its exit; a longer one is reported running first (answered while it runs)
        pump.until(lambda: pump.exited, timeout=_AT_ONCE)
        if not pump.exited:
            started = notify(f"/containers/{cid}/started", {"pid": pid})
            pump.until(lambda: pump.exited)
        os.close(pidfd)
        pump.drain()
        _, status = os.waitpid(pid, 0)
    finally:
        for s, h in previous.items():
            _signal.signal(s, h)
        log.close()
    code = exit_code_from_status(status)
    if started is not None:
        started()
    notify(f"/containers/{cid}/finish", {"exit_code": code, "pid": pid})()
    return code


def _forward(kill_argv: list[str], signum: int) -> None:
    """SIGINT/SIGTERM/... to us goes to the container (docker run's sig-proxy)."""
    proc.run([*kill_argv, str(signum)], check=False)


class _Pump:
    """Copy container pipes to our stdio and the log until a condition holds."""

    def __init__(self, log: LogWriter, fds: dict[int, tuple[str, Any]]) -> None:
        self.log = log
        self.fds = dict(fds)
        self.sel = select.epoll()
        for fd in fds:
            self.sel.register(fd, select.EPOLLIN)
        self.exited = False
        self._pidfd = -1
        self._err_tail = b""

    def watch_exit(self, pidfd: int) -> None:
        """Stop ``until(lambda: pump.exited)`` when the process behind ``pidfd`` exits."""
        self._pidfd = pidfd
        self.exited = False
        self.sel.register(pidfd, select.EPOLLIN)

    def _read(self, fd: int) -> bool:
        data = os.read(fd, 65536)
        stream, out = self.fds[fd]
        if not data:
            self.sel.unregister(fd)
            os.close(fd)
            del self.fds[fd]
            return False
        out.write(data)
        out.flush()
        self.log.write(stream, data)
        if stream == "stderr":
            self._err_tail = (self._err_tail + data)[-4096:]
        return True

    def stderr_tail(self) -> str:
        """The last 4 KiB read from stderr (runc's error, when it failed to start)."""
        return self._err_tail.decode("utf-8", "replace")

    def until(self, done: Any, timeout: float | None = None) -> None:
        """Pump until ``done()``, or ``timeout`` seconds passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            for fd, _ in self.sel.poll(-1 if left is None else left):
                if fd == self._pidfd:
                    self.sel.unregister(fd)
                    self._pidfd = -1
                    self.exited = True
                else:
                    self._read(fd)

    def drain(self) -> None:
        """Read what is left; pipes reach EOF once every container process is gone.
        Stops after a quiet second: a leaked process outside the container may hold a pipe."""
        while self.fds:
            events = self.sel.poll(1.0)
            if not events:
                break
            for fd, _ in events:
                if fd in self.fds:
                    self._read(fd)
        for fd in list(self.fds):
            self.sel.unregister(fd)
            os.close(fd)
        self.fds.clear()
        self.sel.close()
