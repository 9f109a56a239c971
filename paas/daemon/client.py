"""Client of paasd's JSON API over its unix socket (used on the CLI's hot path: stdlib only).

``DaemonClient(ctx).request("POST", "/containers/abc/start", {...})`` returns
the decoded JSON reply, or raises the daemon-side ``PaasError`` class with its
message and hint. A missing or refusing socket is ``FailedPrecondition``
("paasd is not running ...").
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from ..config import Context
from ..errors import (
    CommandFailed,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PaasError,
)
from .router import ERROR_KINDS
from .sockpath import unix_address

__all__ = ["DEFAULT_TIMEOUT", "DaemonClient"]

DEFAULT_TIMEOUT = 120.0
_BY_STATUS: dict[int, type[PaasError]] = {
    400: InvalidArgument, 404: NotFound, 409: Conflict, 412: FailedPrecondition,
}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("paasd", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with unix_address(self._path) as addr:
                sock.connect(addr)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class DaemonClient:
    """One call = one connection; cheap enough for a CLI, simple enough to be robust."""

    def __init__(self, ctx: Context, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.ctx = ctx
        self.timeout = timeout

    def _not_running(self) -> FailedPrecondition:
        return FailedPrecondition(f"paasd is not running for PAAS_ROOT={self.ctx.paths.root}",
                                  "start it with 'paas daemon:start'")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> Any:
        """Send one request; the decoded JSON reply (a dict for every paasd route) on 2xx."""
        conn = _UnixConnection(self.ctx.paths.daemon_socket, timeout or self.timeout)
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
        except (FileNotFoundError, ConnectionRefusedError) as err:
            raise self._not_running() from err
        except TimeoutError as err:
            raise FailedPrecondition(
                f"paasd did not answer {method} {path} within {timeout or self.timeout:g}s",
                f"see {self.ctx.paths.run}/paasd.log") from err
        except (OSError, http.client.HTTPException) as err:
            raise FailedPrecondition(f"cannot talk to paasd at {self.ctx.paths.daemon_socket}: {err}",
                                     "restart it with 'paas daemon:stop' and 'paas daemon:start'"
                                     ) from err
        finally:
            conn.close()
        return _decode(status, raw)

    def ping(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """paasd's ``/_ping`` reply, or None if it is not running."""
        try:
            reply = self.request("GET", "/_ping", timeout=timeout)
        except FailedPrecondition:
            return None
        return reply if isinstance(reply, dict) else None


def _decode(status: int, raw: bytes) -> Any:
    try:
        obj = json.loads(raw) if raw else {}
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
