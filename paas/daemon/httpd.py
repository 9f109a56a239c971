"""HTTP/1.1 over a unix socket: ``http.server`` adapted to AF_UNIX, JSON in and out.

One thread per connection (``ThreadingMixIn``); each request is dispatched
to a ``Router``. Malformed requests (garbage request line, bad JSON, bad
Content-Length) are answered with 400 and ``{"message": ...}`` and the
server keeps serving. What the routes do is not this module's business.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import socket
import socketserver
import sys
from typing import Any

from ..errors import PaasError, from_environment
from .router import Router, Stream, error_body, status_for
from .sockpath import unix_address

__all__ = ["MAX_BODY", "UnixHTTPServer", "bind_unix_socket"]

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024


class _BadRequest(Exception):
    """The request cannot be understood; answered with 400."""


class _Handler(http.server.BaseHTTPRequestHandler):
    """JSON request handler; the router lives on the server."""

    server: UnixHTTPServer
    protocol_version = "HTTP/1.1"
    # so error replies to a garbage request line still carry a status line (not HTTP/0.9)
    default_request_version = "HTTP/1.0"
    timeout = 300  # an idle keep-alive connection is dropped after this

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if len(self.requestline.split()) != 3:
            self.send_error(400, "request line must be 'METHOD PATH HTTP/1.1'")
            return False
        return True

    def __getattr__(self, name: str) -> Any:
        # http.server looks up do_<METHOD>; route every method through _handle
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except (_BadRequest, ValueError) as err:
            self.close_connection = True
            self._send_json(400, {"message": f"malformed request: {err}"})
            return
        try:
            status, obj = self.server.router.dispatch(self.command, self.path, body,
                                                      peer_pid=self._peer_pid())
        except Exception as err:  # a handler bug must not kill the connection thread silently
            known = from_environment(err)  # e.g. a full disk: said as such
            if known is not None:
                status, obj = status_for(known), error_body(known)
            else:
                log.exception("handler for %s %s failed", self.command, self.path)
                status, obj = 500, {"message": f"internal error in paasd: {err}",
                                    "hint": "see paasd.log in the instance's run directory"}
        if isinstance(obj, Stream):
            self._send_stream(obj)
        else:
            self._send_json(status, obj)

    def _send_stream(self, stream: Stream) -> None:
        self.close_connection = True  # the end of the stream is the end of the connection
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Connection", "close")
        self.end_headers()

        def emit(obj: dict[str, Any]) -> None:
            self.wfile.write((json.dumps(obj) + "\n").encode())
            self.wfile.flush()

        try:
            last: dict[str, Any] = {"result": stream.produce(emit)}
        except PaasError as err:
            last = {"error": error_body(err)}
        except BrokenPipeError:
            log.info("client of %s %s went away", self.command, self.path)
            return
        except Exception as err:
            known = from_environment(err)  # e.g. a full disk: said as such
            if known is not None:
                last = {"error": error_body(known)}
            else:
                log.exception("streamed handler for %s %s failed", self.command, self.path)
                last = {"error": {"message": f"internal error in paasd: {err}",
                                  "hint": "see paasd.log in the instance's run directory"}}
        try:
            emit(last)
        except OSError:
            log.info("client of %s %s went away before the end", self.command, self.path)

    def _peer_pid(self) -> int | None:
        """The pid of the process at the other end of this connection (``SO_PEERCRED``)."""
        try:
            cred = self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        except (OSError, AttributeError):
            return None
        pid = int.from_bytes(cred[:4], sys.byteorder, signed=True)
        return pid if pid > 0 else None

    def _read_body(self) -> dict[str, Any]:
        if self.headers.get("Transfer-Encoding"):
            raise _BadRequest("Transfer-Encoding is not supported; send Content-Length")
        raw_len = self.headers.get("Content-Length", "0")
        if not raw_len.isdigit():
            raise _BadRequest(f"bad Content-Length {raw_len!r}")
        length = int(raw_len)
        if length > MAX_BODY:
            raise _BadRequest(f"body of {length} bytes is larger than {MAX_BODY}")
        if length == 0:
            return {}
        data = self.rfile.read(length)
        if len(data) != length:
            raise _BadRequest("body shorter than Content-Length")
        obj = json.loads(data)  # JSONDecodeError is a ValueError
        if not isinstance(obj, dict):
            raise _BadRequest("body must be a JSON object")
        return obj

    def _send_json(self, status: int, obj: Any) -> None:
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, headers too long...) as JSON."""
        self.close_connection = True
        try:
            self._send_json(code, {"message": message or self.responses.get(code, ("error",))[0]})
        except OSError:
            log.debug("client went away before the %d reply", code)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s", format % args)

    def log_error(self, format: str, *args: Any) -> None:
        log.info("%s", format % args)


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Threading HTTP server on an already bound and listening unix socket."""

    daemon_threads = True

    def __init__(self, sock: socket.socket, router: Router) -> None:
        super().__init__(sock.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.router = router

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error while serving a request")


def bind_unix_socket(path: str, mode: int = 0o600) -> socket.socket:
    """A listening AF_UNIX socket at ``path`` with ``mode`` from the start (no chmod race).

    The caller must hold the instance lock: a stale socket file is removed.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777 & ~mode)
    try:
        with unix_address(path) as addr:
            sock.bind(addr)
    finally:
        os.umask(old)
    os.chmod(path, mode)
    sock.listen(64)
    return sock
