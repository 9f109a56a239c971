"""Route table of paasd's JSON API and the PaasError -> HTTP status mapping.

Pure: no sockets here (``paas.daemon.httpd`` does the HTTP). A route is a
method plus a pattern like ``/containers/{id}/start``; ``{name}`` matches one
path segment. Handlers get ``(params, body)`` and return ``(status, json)``.
Errors travel as ``{"message", "hint", "kind"}``; ``kind`` is the PaasError
class name so the client can re-raise the exact class.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import (
    ERROR_KINDS,
    AlreadyExists,
    CommandFailed,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PaasError,
)

__all__ = ["ERROR_KINDS", "PEER_PID", "Handler", "Response", "Router", "Stream", "error_body",
           "status_for"]

Response = tuple[int, Any]
PEER_PID = "peer_pid"  # params key: the pid of the process that sent the request


class Stream:
    """A streamed reply (``application/x-ndjson``): ``produce(emit)`` runs in the
    connection's thread and every ``emit(obj)`` goes out as one JSON line at once; what
    ``produce`` returns becomes a last line ``{"result": ...}``, a ``PaasError`` it raises
    a last line ``{"error": error_body(err)}``. A client that goes away makes ``emit``
    raise ``BrokenPipeError``, which ends ``produce`` (e.g. a build is stopped)."""

    def __init__(self, produce: Callable[[Callable[[dict[str, Any]], None]], Any]) -> None:
        self.produce = produce
Handler = Callable[[dict[str, str], dict[str, Any]], Response]

_STATUS: list[tuple[type[PaasError], int]] = [
    (NotFound, 404),
    (InvalidArgument, 400),
    (AlreadyExists, 409),
    (Conflict, 409),
    (FailedPrecondition, 412),
]


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def status_for(err: PaasError) -> int:
    """HTTP status for an error category (500 for anything else, e.g. CommandFailed)."""
    for cls, status in _STATUS:
        if isinstance(err, cls):
            return status
    return 500


def error_body(err: PaasError) -> dict[str, Any]:
    body: dict[str, Any] = {"message": err.message, "hint": err.hint, "kind": type(err).__name__}
    if isinstance(err, CommandFailed):
        body["returncode"] = err.returncode
        body["stderr"] = err.stderr[-4000:]
    return body


def _compile(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    out, pos = [], 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out))


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler


class Router:
    """Method + path pattern -> handler; first registered match wins."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        method = method.upper()
        if any(r.method == method and r.pattern == pattern for r in self._routes):
            raise ValueError(f"route {method} {pattern} is already registered")
        self._routes.append(_Route(method, pattern, _compile(pattern), handler))

    def routes(self) -> list[tuple[str, str]]:
        return [(r.method, r.pattern) for r in self._routes]

    def match(self, method: str, target: str) -> tuple[Handler, dict[str, str]]:
        """The handler and params for a request target (path plus optional query string).

        Query parameters are merged into params; path parameters win. Raises
        NotFound for an unknown path, InvalidArgument (405-ish) for a known
        path with another method.
        """
        split = urllib.parse.urlsplit(target)
        path = split.path  # matched still encoded, so %2F inside a parameter is not a separator
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        allowed = []
        for r in self._routes:
            m = r.regex.fullmatch(path)
            if not m:
                continue
            if r.method == method.upper():
                params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                return r.handler, {**query, **params}
            allowed.append(r.method)
        if allowed:
            raise InvalidArgument(
                f"{method} is not allowed on {path}", f"use {' or '.join(sorted(allowed))}"
            )
        raise NotFound(f"no API route {method} {path}", "this paasd may be older than the CLI")

    def dispatch(self, method: str, target: str, body: dict[str, Any], *,
                 peer_pid: int | None = None) -> Response:
        """Run the matching handler; every PaasError becomes its status and error body.
        ``peer_pid``: the client's pid (``SO_PEERCRED``), handed to the handler as
        ``params[PEER_PID]`` (never taken from the query string)."""
        try:
            handler, params = self.match(method, target)
            params.pop(PEER_PID, None)
            if peer_pid is not None:
                params[PEER_PID] = str(peer_pid)
            return handler(params, body)
        except PaasError as err:
            return status_for(err), error_body(err)
