"""The container supervisor: one thread, one ``selectors`` loop, every container.

``launch`` runs a ``runc run --detach --pid-file F`` argv with stdout/stderr on
fresh pipes, waits for runc to exit (the container has started by then),
reads the container's pid from ``F`` and watches it with a pidfd. The loop
pumps every container's pipes into its ``LogWriter`` and, when a pidfd
turns readable, reaps exactly that pid (never ``waitpid(-1)``: that would
steal statuses from ``subprocess`` calls elsewhere in the daemon), drains
the pipes, and hands ``(cid, exit_code, pid)`` to ``on_exit`` on a separate
callback thread so slow callbacks never stall log pumping.

The daemon must be a child subreaper (see ``paas.daemon.process``) so the
container init, orphaned when runc exits, becomes our child and can be
reaped. ``watch`` adopts an already running process (live restore); if it is
not our child its status comes from the ``FdKeeper`` (the keeper process,
which reaped it), else ``EXIT_UNKNOWN`` is reported.

Live restore: with an ``FdKeeper``, duplicates of every container's pipe ends
are handed to the keeper before runc starts, and the pipes hold 1 MiB, so a
container keeps writing while no paasd runs; a new paasd gets the fds back
from the keeper and passes them to ``watch``. The keeper lets go of them
once the exit is recorded (after ``on_exit`` returned).

Not covered: building argv (``paas.runtime.runc``), container state, signals.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import selectors
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import proc
from ..errors import CommandFailed, Conflict, FailedPrecondition, NotFound, PaasError
from ..runtime.logs import DEFAULT_MAX_BYTES, LogWriter
from .children import (
    EXIT_UNKNOWN,
    FdKeeper,
    exit_code_from_status,
    grow_pipe,
    read_pid,
    reap,
    runc_error,
)

__all__ = ["EXIT_UNKNOWN", "FdKeeper", "OnExit", "Supervisor", "exit_code_from_status",
           "runc_error"]

log = logging.getLogger(__name__)

PENDING_LIMIT = 1024 * 1024  # output buffered while runc is still starting the container
READ_SIZE = 65536

OnExit = Callable[[str, int, int], None]
T = TypeVar("T")


@dataclass(eq=False)
class _Box:
    """Everything the loop knows about one supervised container."""

    cid: str
    on_exit: OnExit
    streams: dict[int, str] = field(default_factory=dict)  # read fd -> "stdout"/"stderr"
    pending: list[tuple[str, bytes]] | None = field(default_factory=list)
    pending_size: int = 0
    writer: LogWriter | None = None
    pid: int = 0
    pidfd: int = -1
    stdin_w: int | None = None
    gone: bool = False  # adopted after its exit: nothing to reap here


class Supervisor:
    """Launches and watches containers; all fd work happens on one loop thread."""

    def __init__(self, *, start_timeout: float = 120.0, log_max_bytes: int = DEFAULT_MAX_BYTES,
                 log_max_files: int = 3, keeper: FdKeeper | None = None) -> None:
        self.start_timeout = start_timeout
        self.keeper = keeper
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._calls = queue.SimpleQueue()
        self._boxes: dict[str, _Box] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._callbacks = concurrent.futures.ThreadPoolExecutor(1, "paasd-on-exit")
        self._sel.register(self._wake_r, selectors.EVENT_READ, lambda fd: self._run_calls())

    # ---- lifecycle of the loop -------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="paasd-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and close our ends of the pipes; the containers keep running."""
        if self._thread is None or self._stopping:
            return
        self._call(self._close_all)
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join()
        while not self._calls.empty():  # raced with shutdown: fail instead of hanging the caller
            _fn, fut = self._calls.get_nowait()
            fut.set_exception(FailedPrecondition("paasd is shutting down", ""))
        self._callbacks.shutdown(wait=True)
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _loop(self) -> None:
        while not self._stopping:
            for key, _ in self._sel.select():
                try:
                    key.data(key.fd)
                except Exception:  # one bad container must not stop the supervision of all others
                    log.exception("supervisor event on fd %d failed", key.fd)

    def _run_calls(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                fn, fut = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except Exception as err:  # noqa: BLE001 - re-raised in the caller's thread
                fut.set_exception(err)

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop thread and return its result (re-raising its exception)."""
        if threading.current_thread() is self._thread:
            return fn()
        if self._thread is None or self._stopping:
            raise FailedPrecondition("paasd is shutting down", "start it again with 'paas daemon:start'")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put((fn, fut))
        os.write(self._wake_w, b"x")
        return fut.result()

    # ---- public API (any thread) -----------------------------------------------------------

    def launch(self, cid: str, argv: list[str], *, pid_file: str, log_path: str,
               open_stdin: bool = False, on_exit: OnExit,
               owner: tuple[int, int] | None = None) -> int:
        """Run a detaching runc argv, then supervise the container it started; returns its pid.

        ``owner``: the host uid and gid the container's stdio pipes are given (its user in
        its user namespace, ``Runtime.stdio_owner``), so that it may open ``/dev/stdout``.
        Raises CommandFailed (with runc's error text) if runc exits non-zero.
        """
        box = _Box(cid, on_exit)
        with self._lock:
            if cid in self._boxes:
                raise Conflict(f"container {cid} is already running under paasd",
                               "stop it first")
            self._boxes[cid] = box
        try:
            return self._launch(box, argv, pid_file, log_path, open_stdin, owner)
        except BaseException:
            with self._lock:
                self._boxes.pop(cid, None)
            raise

    def watch(self, cid: str, pid: int, *, on_exit: OnExit, log_path: str | None = None,
              streams: dict[int, str] | None = None, stdin_w: int | None = None,
              gone: bool = False) -> None:
        """Adopt a running process: report its exit; pump ``streams`` (fd -> name) if given.

        ``gone``: it exited while nobody watched; drain ``streams`` and report at once."""
        box = _Box(cid, on_exit, pending=None, pid=pid, stdin_w=stdin_w, gone=gone)
        box.streams = dict(streams or {})
        with self._lock:
            if cid in self._boxes:
                raise Conflict(f"container {cid} is already supervised", "")
            self._boxes[cid] = box
        for fd in box.streams:
            os.set_blocking(fd, False)
        self._call(lambda: self._adopt(box, log_path))

    def supervised(self) -> dict[str, int]:
        """cid -> pid of every container currently watched (pid 0 while still starting)."""
        with self._lock:
            return {cid: b.pid for cid, b in self._boxes.items()}

    def write_stdin(self, cid: str, data: bytes) -> None:
        fd = self._box(cid).stdin_w
        if fd is None:
            raise FailedPrecondition(f"container {cid} has no open stdin",
                                     "start it with stdin kept open")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def close_stdin(self, cid: str) -> None:
        box = self._box(cid)
        fd, box.stdin_w = box.stdin_w, None
        if fd is not None:
            os.close(fd)
            self._keeper_call(lambda k: k.drop(cid, ["stdin"]))

    def _keeper_call(self, fn: Callable[[FdKeeper], None]) -> None:
        """Best effort: without the keeper, containers only lose live restore."""
        if self.keeper is None:
            return
        try:
            fn(self.keeper)
        except PaasError as err:
            log.warning("keeper: %s", err.render())

    def _box(self, cid: str) -> _Box:
        with self._lock:
            box = self._boxes.get(cid)
        if box is None:
            raise NotFound(f"container {cid} is not running under paasd", "")
        return box

    # ---- launch steps (caller's thread) ----------------------------------------------------

    def _launch(self, box: _Box, argv: list[str], pid_file: str, log_path: str,
                open_stdin: bool, owner: tuple[int, int] | None) -> int:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        if open_stdin:
            in_r, box.stdin_w = os.pipe2(os.O_CLOEXEC)
        else:
            in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if owner is not None:  # a pipe's two ends are one inode: chown once per pipe
            for end in (out_w, err_w) + ((in_r,) if open_stdin else ()):
                os.fchown(end, *owner)
        grow_pipe(out_r)
        grow_pipe(err_r)
        held = {"stdout": out_r, "stderr": err_r}
        if box.stdin_w is not None:
            held["stdin"] = box.stdin_w
        self._keeper_call(lambda k: k.hold(box.cid, held))
        try:
            # own session: a signal to paasd's process group must not reach the container
            child = proc.spawn(argv, stdin=in_r, stdout=out_w, stderr=err_w, start_new_session=True)
        except BaseException:
            for fd in (out_r, err_r, box.stdin_w):
                if fd is not None:
                    os.close(fd)
            self._keeper_call(lambda k: k.drop(box.cid))
            raise
        finally:
            for fd in (out_w, err_w, in_r):
                os.close(fd)
        box.streams = {out_r: "stdout", err_r: "stderr"}
        for fd in box.streams:
            os.set_blocking(fd, False)
        self._call(lambda: self._register_streams(box))
        rc = self._wait_runc(child)
        if rc != 0:
            text = self._call(lambda: self._abort(box))
            self._keeper_call(lambda k: k.drop(box.cid))
            log.warning("runc failed for %s (exit %d): %s", box.cid, rc, text.strip())
            raise CommandFailed(f"{os.path.basename(argv[0])} failed to start container "
                                f"{box.cid} (exit {rc}): {runc_error(text)}",
                                "check the container's command and settings; runc's output is in paasd.log",
                                returncode=rc, stderr=text)
        try:
            pid = read_pid(pid_file)
        except BaseException:
            self._call(lambda: self._abort(box))
            self._keeper_call(lambda k: k.drop(box.cid))
            raise
        self._call(lambda: self._attach(box, pid, log_path))
        return pid

    def _wait_runc(self, child: subprocess.Popen[bytes]) -> int:
        try:
            return child.wait(timeout=self.start_timeout)  # waitpid on runc's pid only
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            return 128 + 9

    # ---- loop-thread steps -----------------------------------------------------------------

    def _register_streams(self, box: _Box) -> None:
        for fd in box.streams:
            self._sel.register(fd, selectors.EVENT_READ, lambda fd, b=box: self._on_output(b, fd))

    def _on_output(self, box: _Box, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        if not data:
            self._close_stream(box, fd)
            return
        self._deliver(box, box.streams[fd], data)

    def _deliver(self, box: _Box, stream: str, data: bytes) -> None:
        if box.pending is not None:
            if box.pending_size < PENDING_LIMIT:
                box.pending.append((stream, data))
                box.pending_size += len(data)
            return
        if box.writer is not None:
            try:
                box.writer.write(stream, data)
            except OSError:
                log.exception("cannot write the log of %s; output dropped", box.cid)

    def _drain(self, box: _Box) -> None:
        """Read whatever is buffered in the pipes now, then close them."""
        for fd in list(box.streams):
            while True:
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break  # someone outside the container still holds the write end
                if not data:
                    break
                self._deliver(box, box.streams[fd], data)
            self._close_stream(box, fd)

    def _close_stream(self, box: _Box, fd: int) -> None:
        self._sel.unregister(fd)
        os.close(fd)
        del box.streams[fd]

    def _abort(self, box: _Box) -> str:
        """runc failed: return what it (and anything else) printed, close everything."""
        self._drain(box)
        if box.stdin_w is not None:
            os.close(box.stdin_w)
            box.stdin_w = None
        chunks = box.pending or []
        return b"".join(d for s, d in chunks if s == "stderr").decode("utf-8", "replace")

    def _attach(self, box: _Box, pid: int, log_path: str) -> None:
        box.pid = pid
        box.writer = LogWriter(log_path, self.log_max_bytes, self.log_max_files)
        pending, box.pending = box.pending or [], None
        for stream, data in pending:
            self._deliver(box, stream, data)
        self._watch_pid(box)

    def _adopt(self, box: _Box, log_path: str | None) -> None:
        if log_path is not None:
            box.writer = LogWriter(log_path, self.log_max_bytes, self.log_max_files)
        self._register_streams(box)
        if box.gone:
            self._finish(box)
        else:
            self._watch_pid(box)

    def _watch_pid(self, box: _Box) -> None:
        try:
            box.pidfd = os.pidfd_open(box.pid)
        except ProcessLookupError:
            self._finish(box)  # gone already and not our zombie: status is lost
            return
        self._sel.register(box.pidfd, selectors.EVENT_READ, lambda fd: self._finish(box))

    def _finish(self, box: _Box) -> None:
        """The container's init exited: reap it, flush its output, report."""
        if box.pidfd >= 0:
            self._sel.unregister(box.pidfd)
            os.close(box.pidfd)
            box.pidfd = -1
        code = None if box.gone else reap(box.pid)
        self._drain(box)
        self._release(box)
        log.info("container %s (pid %d) exited with %s", box.cid, box.pid,
                 "a status the keeper has" if code is None else code)
        self._callbacks.submit(self._report, box.on_exit, box.cid, code, box.pid)

    def _release(self, box: _Box) -> None:
        if box.writer is not None:
            box.writer.close()
        if box.stdin_w is not None:
            os.close(box.stdin_w)
            box.stdin_w = None
        with self._lock:
            if self._boxes.get(box.cid) is box:
                del self._boxes[box.cid]

    def _close_all(self) -> None:
        with self._lock:
            boxes = list(self._boxes.values())
        for box in boxes:
            for fd in list(box.streams):
                self._close_stream(box, fd)
            if box.pidfd >= 0:
                self._sel.unregister(box.pidfd)
                os.close(box.pidfd)
                box.pidfd = -1
            self._release(box)


    def _report(self, on_exit: OnExit, cid: str, code: int | None, pid: int) -> None:
        """On the callback thread: resolve a status the keeper reaped, record, release."""
        if code is None:
            status = None
            if self.keeper is not None:
                try:
                    status = self.keeper.exit_status(pid)
                except PaasError as err:
                    log.warning("keeper: %s", err.render())
            code = EXIT_UNKNOWN if status is None else exit_code_from_status(status)
            log.info("container %s (pid %d): exit status %d from the keeper", cid, pid, code)
        try:
            on_exit(cid, code, pid)
        except Exception:
            log.exception("on_exit callback for %s failed", cid)
            return  # the keeper keeps fds and status: a restarted paasd records the exit
        self._keeper_call(lambda k: _release_in_keeper(k, cid, pid))


def _release_in_keeper(keeper: FdKeeper, cid: str, pid: int) -> None:
    keeper.drop(cid)
    keeper.forget([pid])


