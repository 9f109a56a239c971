"""The default health gate of a web process: an HTTP response (any status) within the
window, against real sockets on loopback; the container is a fake (always running)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from paas.config import Paths
from paas.deploy.health import HealthCheckFailed, wait_healthy
from paas.model import Container, ContainerConfig
from paas.runtime.logwriter import LogWriter

CID = "c" * 64


class _Rt:
    """What wait_healthy asks of a Runtime: the record, whether it runs, its log."""

    def __init__(self, root: Path, running: bool = True) -> None:
        self.ctx = SimpleNamespace(paths=Paths(str(root)))
        self.container = Container(CID, "app.web.1.v2", ContainerConfig(
            image="x", image_id="sha256:" + "a" * 64, args=("gunicorn",)), "running", 0.0)
        self.store = SimpleNamespace(get=lambda _cid: self.container)
        self.running = running
        log_dir = root / "containers" / CID
        log_dir.mkdir(parents=True)
        writer = LogWriter(str(log_dir / "container.log"))
        writer.write("stderr", b"ModuleNotFoundError: No module named 'nosuchmodule'\n")
        writer.close()

    def is_running(self, _c: Any) -> bool:
        return self.running


@contextlib.contextmanager
def _server(handle: Any) -> Iterator[int]:
    """A loopback listener; ``handle(conn)`` for each accepted connection (None: never
    accept, as gunicorn's master holds its port while no worker takes a connection)."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    if handle is not None:
        thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        if handle is not None:
            thread.join()
        sock.close()


def _answer(status: str) -> Any:
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
    return handle


def _gate(rt: _Rt, port: int, window: float = 1.5) -> None:
    wait_healthy(rt, rt.container, "127.0.0.1", port, checks=[],  # type: ignore[arg-type]
                 healthcheck=None, uptime=0.0, window=window)


@pytest.mark.parametrize("status", ["200 OK", "404 Not Found", "500 Internal Server Error"])
def test_any_http_answer_passes(tmp_path: Path, status: str) -> None:
    with _server(_answer(status)) as port:
        _gate(_Rt(tmp_path), port)


def test_a_port_that_accepts_but_never_answers_is_rejected_with_the_output(
        tmp_path: Path) -> None:
    """The issue's gunicorn: the master listens, its workers die at import. A TCP
    connect passes (the kernel's backlog accepts); no HTTP answer comes."""
    with _server(None) as port:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # TCP passes
        started = time.monotonic()
        with pytest.raises(HealthCheckFailed) as err:
            _gate(_Rt(tmp_path), port)
        assert 1.4 < time.monotonic() - started < 5
    msg = err.value.message
    assert msg.startswith("app.web.1.v2 is not healthy: no HTTP response on port")
    assert "within 1.5s (last: GET / failed: no response (timed out))" in msg
    assert "No module named 'nosuchmodule'" in msg  # the container's last output
    assert "previous release keeps serving" in err.value.hint


@pytest.mark.parametrize("reply, why", [
    (b"", "closed without a response"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP response"),
])
def test_what_is_not_an_http_answer_is_rejected(tmp_path: Path, reply: bytes, why: str) -> None:
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(reply)

    with _server(handle) as port, pytest.raises(HealthCheckFailed, match=why):
        _gate(_Rt(tmp_path), port, window=0.5)


def test_a_server_that_comes_up_later_passes(tmp_path: Path) -> None:
    with _server(_answer("200 OK")) as port:
        pass  # the port is free again: connections are refused at first

    def up_after_a_while() -> None:
        time.sleep(0.3)
        with socket.create_server(("127.0.0.1", port)) as later:
            conn, _ = later.accept()
            with conn:
                _answer("204 No Content")(conn)

    thread = threading.Thread(target=up_after_a_while, daemon=True)
    thread.start()
    try:
        _gate(_Rt(tmp_path), port, window=3)
    finally:
        thread.join()


def test_a_container_that_exits_fails_at_once(tmp_path: Path) -> None:
    with _server(None) as port, pytest.raises(HealthCheckFailed, match="it exited"):
        _gate(_Rt(tmp_path, running=False), port, window=10)
