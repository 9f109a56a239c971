"""Run a container attached to the calling process (``container:run`` without ``-d``).

Without a TTY the caller becomes a child subreaper, starts the container with
``runc run --detach`` so the container's init re-parents to it, copies the
container's stdout/stderr to its own and to the json-file log, forwards
SIGINT/SIGTERM/SIGHUP/SIGQUIT to the container, and reaps the init to get the
real exit status (and read the memory cgroup's OOM counter before
``runc delete``). With a TTY, ``runc run`` in the foreground owns the
terminal (raw mode, window size, job control), gets the forwarded signals
and its exit status is the container's.

When our stdout or stderr goes away (``paas container:run IMG yes | head -1``:
EPIPE; a hung-up terminal: EIO) we stop copying that stream and close our read
end of the container's pipe, so the container gets EPIPE/SIGPIPE as it would
in a plain pipeline, and we still wait for its exit and report it (``--rm``
removes it). One difference to a pipeline is the kernel's: a pid namespace's
init never dies of a signal it has no handler for, so an init that leaves
SIGPIPE at its default (which would end it at its next write) is killed here,
and the exit reported is 141 (128 + SIGPIPE) as in a pipeline. Should this process die anyway (SIGKILL), paasd notices and
removes the container (``paas.daemon.owners``).

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
from .sigproxy import SignalProxy

__all__ = ["StartFailed", "run_attached", "start_exit_code"]

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    # notify(path, body) sends a request to paasd and returns a function that waits for its reply
    Notify = Callable[[str, dict[str, Any]], Callable[[], object]]

# select.epoll, not selectors: that imports enum, ~4 ms of every run
_SIGPIPE, _SIGKILL = 13, 9  # the same on every Linux architecture paas runs on
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


def run_attached(plan: dict[str, Any], notify: Notify, *, stdin: bool, tty: bool,
                 signals: SignalProxy) -> int:
    """Run the container paasd created (``plan`` from ``POST /containers``) attached to our
    stdio; ``notify(path, body)`` reports the start and the exit back to paasd. ``signals``
    caught before it runs mean it is not started: the exit reported is 128+N."""
    cid = str(plan["id"])
    if signals.pending:
        code = 128 + signals.pending[0]
        notify(f"/containers/{cid}/finish", {"exit_code": code})()
        return code
    if tty:
        runc = proc.spawn_light(list(plan["argv"]))
        signals.forward_to(lambda n: os.kill(runc.pid, n))  # runc passes them on
        code = runc.wait()
        notify(f"/containers/{cid}/finish", {"exit_code": code})()
        return code
    return _run_piped(plan, notify, stdin, signals)


def _run_piped(plan: dict[str, Any], notify: Notify, open_stdin: bool,
               signals: SignalProxy) -> int:
    cid, pid_file = str(plan["id"]), str(plan["pid_file"])
    set_child_subreaper()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    owner = plan.get("stdio_owner")
    if owner:  # the container's user may open /dev/stdout (Runtime.stdio_owner)
        os.fchown(out_w, owner[0], owner[1])
        os.fchown(err_w, owner[0], owner[1])
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
    signals.forward_to(lambda n: _forward(kill, n))  # those that came while runc ran, first
    if not plan.get("init"):  # with tini as PID 1 the writer is its child: SIGPIPE works
        pump.on_lost(lambda: _broken_pipe(pid))
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
        log.close()
    code = exit_code_from_status(status)
    if pump.lost and code == 128 + _SIGKILL and pump.killed:
        code = 128 + _SIGPIPE  # what the pipe would have made of it
    if started is not None:
        started()
    notify(f"/containers/{cid}/finish", {"exit_code": code, "pid": pid})()
    return code


def _broken_pipe(pid: int) -> bool:
    """Our stdout/stderr reader is gone. Kill the container if its init leaves SIGPIPE at
    the default (the kernel would spare it, unlike any other writer); whether we did."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        handled = int(fields["SigCgt"], 16) | int(fields["SigIgn"], 16)
    except (OSError, KeyError, ValueError):
        return False  # already gone
    if handled & (1 << (_SIGPIPE - 1)):
        return False  # it handles or ignores SIGPIPE: the EPIPE of its next write tells it
    os.kill(pid, _SIGKILL)  # our unreaped child: the pid cannot have been reused
    return True


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
        self.lost = False  # a stream's reader (our stdout/stderr) went away
        self.killed = False  # ...and on_lost() killed the container for it
        self._on_lost: Callable[[], bool] | None = None
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
        self.log.write(stream, data)
        if out is not None:
            try:
                out.write(data)
                out.flush()
            except OSError:  # EPIPE: our reader is gone (`| head`); EIO: a hung-up terminal
                self._lost(fd)
                return True
        if stream == "stderr":
            self._err_tail = (self._err_tail + data)[-4096:]
        return True

    def on_lost(self, fn: Callable[[], bool]) -> None:
        """Call ``fn`` (once) when a stream is lost; at once if one already was. It returns
        whether it killed the container."""
        self._on_lost = fn
        if self.lost:
            self.killed = fn()

    def _lost(self, fd: int) -> None:
        """Nobody reads what we copy from ``fd`` any more: close it, so the container's next
        write to that stream fails (EPIPE) as it would in a plain pipeline."""
        self.sel.unregister(fd)
        os.close(fd)
        del self.fds[fd]
        if not self.lost:
            self.lost = True
            if self._on_lost is not None:
                self.killed = self._on_lost()

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
