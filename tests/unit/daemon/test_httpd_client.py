"""The unix-socket HTTP server and the client, in-process (no subprocesses)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paas.config import load_context
from paas.daemon.client import DaemonClient
from paas.daemon.httpd import UnixHTTPServer, bind_unix_socket
from paas.daemon.router import Response, Router
from paas.errors import AlreadyExists, CommandFailed, Conflict, FailedPrecondition, NotFound


def _handlers(router: Router) -> None:
    def echo(params: dict[str, str], body: dict[str, Any]) -> Response:
        peer = params.pop("peer_pid", None)
        return 200, {"params": params, "body": body, "peer": peer}

    def exists(params: dict[str, str], body: dict[str, Any]) -> Response:
        raise AlreadyExists("name web is taken", "pick another name")

    def failed(params: dict[str, str], body: dict[str, Any]) -> Response:
        raise CommandFailed("runc failed", "look", returncode=3, stderr="bad spec")

    def bug(params: dict[str, str], body: dict[str, Any]) -> Response:
        raise RuntimeError("oops")

    router.add("POST", "/echo/{x}", echo)
    router.add("POST", "/exists", exists)
    router.add("POST", "/failed", failed)
    router.add("GET", "/bug", bug)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DaemonClient]:
    ctx = load_context({"PAAS_ROOT": str(tmp_path)})
    Path(ctx.paths.run).mkdir(parents=True)
    router = Router()
    _handlers(router)
    srv = UnixHTTPServer(bind_unix_socket(ctx.paths.daemon_socket), router)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    t.start()
    try:
        yield DaemonClient(ctx, timeout=5)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def raw(client: DaemonClient, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(client.paths.daemon_socket)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out


def test_socket_mode_is_0600(server: DaemonClient) -> None:
    assert Path(server.paths.daemon_socket).stat().st_mode & 0o777 == 0o600


def test_round_trip(server: DaemonClient) -> None:
    """Handlers also get the client's pid (SO_PEERCRED): here, this process."""
    assert server.request("POST", "/echo/a%2Fb?q=1", {"k": [1, 2]}) == {
        "params": {"x": "a/b", "q": "1"}, "body": {"k": [1, 2]}, "peer": str(os.getpid())}


def test_peer_pid_cannot_come_from_the_query(server: DaemonClient) -> None:
    reply = server.request("POST", "/echo/a?peer_pid=1", {})
    assert reply["peer"] == str(os.getpid())


def test_errors_are_reraised_as_their_class(server: DaemonClient) -> None:
    with pytest.raises(AlreadyExists) as ei:
        server.request("POST", "/exists")
    assert ei.value.message == "name web is taken" and ei.value.hint == "pick another name"
    with pytest.raises(CommandFailed) as cf:
        server.request("POST", "/failed")
    assert cf.value.returncode == 3 and cf.value.stderr == "bad spec"
    with pytest.raises(NotFound):
        server.request("GET", "/nothing")


def test_handler_bug_is_500_and_server_survives(server: DaemonClient) -> None:
    with pytest.raises(Exception) as ei:
        server.request("GET", "/bug")
    assert "oops" in str(ei.value) and not isinstance(ei.value, Conflict)
    assert server.request("POST", "/echo/1")["params"] == {"x": "1"}


@pytest.mark.parametrize("garbage", [
    b"\x00\x01garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /echo/1\r\n\r\n",
    b"GET /echo/1 HTTX/1.1\r\n\r\n",
    b"POST /echo/1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n{bad}",
    b"POST /echo/1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]",
    b"POST /echo/1 HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /echo/1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
])
def test_malformed_requests_get_400_json(server: DaemonClient, garbage: bytes) -> None:
    reply = raw(server, garbage)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), reply
    assert b'"message"' in body
    assert server.request("POST", "/echo/ok")["params"] == {"x": "ok"}


def test_client_without_daemon(tmp_path: Path) -> None:
    client = DaemonClient(load_context({"PAAS_ROOT": str(tmp_path)}))
    with pytest.raises(FailedPrecondition) as ei:
        client.request("GET", "/_ping")
    assert "paasd is not running" in ei.value.message and "daemon:start" in ei.value.hint
    assert client.ping() is None


def test_client_with_stale_socket(tmp_path: Path) -> None:
    ctx = load_context({"PAAS_ROOT": str(tmp_path)})
    Path(ctx.paths.run).mkdir(parents=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(ctx.paths.daemon_socket)  # bound, never listening: connect is refused
    try:
        with pytest.raises(FailedPrecondition, match="not running"):
            DaemonClient(ctx).request("GET", "/_ping")
    finally:
        s.close()


def test_socket_path_longer_than_sun_path(tmp_path: Path) -> None:
    root = tmp_path / ("d" * 60) / ("e" * 60)
    ctx = load_context({"PAAS_ROOT": str(root)})
    Path(ctx.paths.run).mkdir(parents=True)
    assert len(ctx.paths.daemon_socket) > 108
    router = Router()
    _handlers(router)
    srv = UnixHTTPServer(bind_unix_socket(ctx.paths.daemon_socket), router)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    t.start()
    try:
        assert Path(ctx.paths.daemon_socket).is_socket()
        assert DaemonClient(ctx).request("POST", "/echo/long")["params"] == {"x": "long"}
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)
