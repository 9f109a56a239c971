"""Client of paasd's JSON API over its unix socket (used on the CLI's hot path: stdlib only,
and of that only C modules: ``_socket`` and ``paas.jsonc``; ``socket`` and ``json`` import
``enum`` and ``re``, ~10 ms of every CLI call).

``DaemonClient(ctx).request("POST", "/containers/abc/start", {...})`` returns
the decoded JSON reply, or raises the daemon-side ``PaasError`` class with its
message and hint. A missing or refusing socket is ``FailedPrecondition``
("paasd is not running ...").
"""

from __future__ import annotations

import _socket

from .. import jsonc
from ..errors import (
    ERROR_KINDS,
    CommandFailed,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PaasError,
    from_environment,
)
from .sockpath import unix_address

TYPE_CHECKING = False  # not typing's: importing typing costs ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from ..config import Context
    from ..paths import Paths

    T = TypeVar("T")

__all__ = ["DEFAULT_TIMEOUT", "DaemonClient"]


DEFAULT_TIMEOUT = 120.0
_BY_STATUS: dict[int, type[PaasError]] = {
    400: InvalidArgument, 404: NotFound, 409: Conflict, 412: FailedPrecondition,
}


class _ProtocolError(Exception):
    """paasd's reply was not the HTTP/1.1 we speak."""


def _send(path: str, method: str, target: str, data: bytes, timeout: float) -> _socket.socket:
    """Connect and send one HTTP/1.1 request over a unix socket; the socket to read from.

    Hand-written instead of ``http.client``: that module pulls in the ``email``
    package, ~25 ms of imports on every CLI call.
    """
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with unix_address(path) as addr:
            sock.connect(addr)
        head = (f"{method} {target} HTTP/1.1\r\nHost: paasd\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        sock.sendall(head.encode() + data)
    except BaseException:
        sock.close()
        raise
    return sock


def _read_head(sock: _socket.socket) -> tuple[int, list[str], bytes]:
    """Read up to the end of the reply headers: (status, header lines, what came after)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise _ProtocolError("connection closed before the reply headers")
        buf += chunk
    header, _, rest = buf.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _ProtocolError(f"bad status line {lines[0]!r}")
    return int(parts[1]), lines[1:], rest


def _receive(sock: _socket.socket) -> tuple[int, bytes]:
    """Read the reply to the request sent on ``sock``, then close it; (status, body)."""
    try:
        status, headers, body = _read_head(sock)
        length = None
        for line in headers:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while length is None or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body if length is None else body[:length]
    finally:
        sock.close()



class DaemonClient:
    """One call = one connection; cheap enough for a CLI, simple enough to be robust."""

    def __init__(self, where: Context | Paths, timeout: float = DEFAULT_TIMEOUT) -> None:
        """``where``: the instance's ``Context``, or just its ``Paths`` (the CLI's hot path
        avoids loading the full configuration)."""
        self.paths: Paths = where.paths if hasattr(where, "paths") else where  # type: ignore[assignment]
        self.timeout = timeout

    def not_running(self) -> FailedPrecondition:
        """The error for "no paasd answers on this instance's socket"."""
        return FailedPrecondition(f"paasd is not running for PAAS_ROOT={self.paths.root}",
                                  "start it with 'paas daemon:start'")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> Any:
        """Send one request; the decoded JSON reply (a dict for every paasd route) on 2xx."""
        return self.begin(method, path, body, timeout=timeout)()

    def begin(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              timeout: float | None = None) -> Callable[[], Any]:
        """Send a request now; call the result for its decoded reply (so the caller can
        do other work while paasd handles it)."""
        data = jsonc.dumps(body).encode() if body is not None else b""
        wait = timeout or self.timeout
        sock = self._guard(method, path, wait,
                           lambda: _send(self.paths.daemon_socket, method, path, data, wait))
        return lambda: _decode(*self._guard(method, path, wait, lambda: _receive(sock)))

    def stream(self, method: str, path: str, body: dict[str, Any],
               on_line: Callable[[dict[str, Any]], None], *, timeout: float | None = None) -> Any:
        """A request whose reply is streamed (``router.Stream``): ``on_line`` gets each JSON
        line as it arrives; returns the final result, or raises the error paasd sent."""
        data = jsonc.dumps(body).encode()
        wait = timeout or self.timeout
        sock = self._guard(method, path, wait,
                           lambda: _send(self.paths.daemon_socket, method, path, data, wait))
        try:
            return self._guard(method, path, wait, lambda: _read_stream(sock, on_line))
        finally:
            sock.close()

    def _guard(self, method: str, path: str, timeout: float, step: Callable[[], T]) -> T:
        """Run one step of a request, turning socket trouble into FailedPrecondition."""
        try:
            return step()
        except (FileNotFoundError, ConnectionRefusedError) as err:
            raise self.not_running() from err
        except PermissionError as err:  # not root: "paas must run as root: ..."
            known = from_environment(PermissionError(err.errno, err.strerror,
                                                     self.paths.daemon_socket))
            if known is None:
                raise
            raise known from err
        except TimeoutError as err:
            raise FailedPrecondition(
                f"paasd did not answer {method} {path} within {timeout:g}s",
                f"see {self.paths.run}/paasd.log") from err
        except (OSError, ValueError, _ProtocolError) as err:
            raise FailedPrecondition(f"cannot talk to paasd at {self.paths.daemon_socket}: {err}",
                                     "restart it with 'paas daemon:stop' and 'paas daemon:start'"
                                     ) from err

    def ping(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """paasd's ``/_ping`` reply, or None if it is not running."""
        try:
            reply = self.request("GET", "/_ping", timeout=timeout)
        except FailedPrecondition as err:
            if isinstance(err.__cause__, PermissionError):
                raise  # not "not running": we may not ask
            return None
        return reply if isinstance(reply, dict) else None


def _read_stream(sock: _socket.socket, on_line: Callable[[dict[str, Any]], None]) -> Any:
    status, _headers, buf = _read_head(sock)
    if status != 200:  # an ordinary JSON error reply (bad request, not found...)
        while chunk := sock.recv(65536):
            buf += chunk
        return _decode(status, buf)
    while True:
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            obj = jsonc.loads(line)
            if "result" in obj:
                return obj["result"]
            if "error" in obj:
                raise _error(500, obj["error"])
            on_line(obj)
        chunk = sock.recv(65536)
        if not chunk:
            raise _ProtocolError("the stream ended without a result")
        buf += chunk


def _decode(status: int, raw: bytes) -> Any:
    try:
        obj = jsonc.loads(raw) if raw else {}
    except ValueError as err:
        raise PaasError(f"paasd sent a reply that is not JSON (HTTP {status})",
                        "paasd and the CLI may be of different versions") from err
    if 200 <= status < 300:
        return obj
    raise _error(status, obj if isinstance(obj, dict) else {})


def _error(status: int, obj: dict[str, Any]) -> PaasError:
    message = str(obj.get("message") or f"paasd answered HTTP {status}")
    hint = str(obj.get("hint") or "")
    cls = ERROR_KINDS.get(str(obj.get("kind"))) or _BY_STATUS.get(status, PaasError)
    if cls is CommandFailed:
        return CommandFailed(message, hint, returncode=int(obj.get("returncode", 1)),
                             stderr=str(obj.get("stderr", "")))
    return cls(message, hint)
