"""Smart HTTP for ``git push``: a WSGI app serving ``receive-pack`` only.

Routes (``.git`` optional)::

    GET  /APP.git/info/refs?service=git-receive-pack   ref advertisement
    POST /APP.git/git-receive-pack                     commands + pack -> report

Every request needs HTTP Basic auth with a token from ``paas auth:add NAME`` (user
NAME, password TOKEN); otherwise 401 with ``WWW-Authenticate``. Too many wrong
credentials from one address and it gets 429 with ``Retry-After`` for a while
(``paas.receive.ratelimit``). Dumb HTTP and
``upload-pack`` (clone/fetch) are refused. The response body is a generator fed by
the push running in a thread, so progress lines of the update hook reach the
client while it runs (under gunicorn's sync worker each chunk is sent as yielded).

Run it with ``paas git:http-serve`` (gunicorn, ``paas.receive.http:app``). Not
covered: TLS (put nginx or another proxy in front for https).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
import math
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ..errors import PaasError
from .names import APP_NAME_RE
from .ratelimit import client_address

if TYPE_CHECKING:
    from ..config import Context
    from . import UpdateHook
    from .ratelimit import FailedLogins
    from .tokens import TokenStore

__all__ = ["GitHttpApp", "app", "basic_credentials"]

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
_PATH_RE = re.compile(r"^/(?P<app>[^/]+?)(?:\.git)?/(?P<rest>.+)$")
_SERVICE = "git-receive-pack"
_REALM = 'Basic realm="paas git push", charset="UTF-8"'


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic ...`` header value."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class _QueueWriter:
    def __init__(self, q: queue.SimpleQueue[bytes | None]) -> None:
        self.q = q

    def write(self, data: bytes) -> int:
        self.q.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class GitHttpApp:
    """The WSGI application. ``ctx``, ``hook`` and ``tokens`` default to the instance
    of the process environment (``PAAS_ROOT``...) and ``paas.receive.default_hook``."""

    def __init__(self, ctx: Context | None = None, hook: UpdateHook | None = None,
                 tokens: TokenStore | None = None, failures: FailedLogins | None = None
                 ) -> None:
        self._ctx, self._hook, self._tokens = ctx, hook, tokens
        self._failures = failures

    def _failed_logins(self) -> FailedLogins:
        if self._failures is None:
            import os

            from .ratelimit import FailedLogins, Policy

            path = os.path.join(self._context().paths.root, "auth", "http-failures.db")
            self._failures = FailedLogins(path, Policy.from_env(os.environ))
        return self._failures

    def _context(self) -> Context:
        if self._ctx is None:
            from ..config import load_context

            self._ctx = load_context()
        return self._ctx

    def _token_store(self) -> TokenStore:
        if self._tokens is None:
            from .tokens import TokenStore

            self._tokens = TokenStore.for_root(self._context().paths.root)
        return self._tokens

    def _update_hook(self) -> UpdateHook:
        if self._hook is None:
            from . import default_hook

            self._hook = default_hook(self._context())
        return self._hook

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._route(environ, start_response)
        except PaasError as err:
            log.warning("git http: %s", err.render())
            return _plain(start_response, "400 Bad Request", err.render())

    def _authenticate(self, environ: dict[str, Any], addr: str) -> str | None:
        """The token's name; None for no or wrong credentials (counted when wrong)."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # git's first request of every push: not a failure
        creds = basic_credentials(header)
        if creds is not None and creds[0] and creds[1] and self._token_store().check(*creds):
            self._failed_logins().succeeded(addr)
            return creds[0]
        wait = self._failed_logins().failed(addr)
        if wait:
            log.warning("git http: %s blocked for %ds after too many failed logins", addr, wait)
        return None

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        failures = self._failed_logins()
        addr = client_address(environ, failures.policy.trusted_proxies)
        wait = failures.blocked(addr)
        if wait:
            return _too_many(start_response, wait)
        user = self._authenticate(environ, addr)
        if user is None:
            return _plain(start_response, "401 Unauthorized",
                          "authentication required: user NAME, password a token from "
                          "'paas auth:add NAME'", [("WWW-Authenticate", _REALM)])
        m = _PATH_RE.fullmatch(environ.get("PATH_INFO", ""))
        if m is None or not APP_NAME_RE.fullmatch(m["app"]):
            return _plain(start_response, "404 Not Found", "no such repository")
        app_name, rest, method = m["app"], m["rest"], environ.get("REQUEST_METHOD", "GET")
        if rest == "info/refs":
            service = parse_qs(environ.get("QUERY_STRING", "")).get("service", [""])[0]
            if service != _SERVICE:
                return _plain(start_response, "403 Forbidden",
                              "only git push (smart HTTP, git-receive-pack) is served")
            if method != "GET":
                return _plain(start_response, "405 Method Not Allowed", "use GET")
            return self._advertise(app_name, start_response)
        if rest == _SERVICE:
            if method != "POST":
                return _plain(start_response, "405 Method Not Allowed", "use POST")
            if environ.get("CONTENT_TYPE") != f"application/x-{_SERVICE}-request":
                return _plain(start_response, "415 Unsupported Media Type",
                              f"expected application/x-{_SERVICE}-request")
            return self._receive(app_name, user, environ, start_response)
        if rest == "git-upload-pack":
            return _plain(start_response, "403 Forbidden", "clone and fetch are not served")
        return _plain(start_response, "404 Not Found", "dumb HTTP is not served")

    def _advertise(self, app_name: str, start_response: StartResponse) -> Iterable[bytes]:
        from io import BytesIO

        from dulwich.protocol import pkt_line

        from . import receive_pack

        out = BytesIO()
        out.write(pkt_line(f"# service={_SERVICE}\n".encode()) + pkt_line(None))
        receive_pack(self._context(), app_name, BytesIO(), out, self._update_hook(),
                     stateless=True, advertise=True)
        start_response("200 OK", [
            ("Content-Type", f"application/x-{_SERVICE}-advertisement"),
            *_NO_CACHE,
        ])
        return [out.getvalue()]

    def _receive(self, app_name: str, user: str, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterator[bytes]:
        from . import receive_pack

        body: Any = environ["wsgi.input"]
        if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            body = gzip.GzipFile(fileobj=body, mode="rb")
        ctx, hook = self._context(), self._update_hook()
        q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

        def run() -> None:
            try:
                receive_pack(ctx, app_name, body, _QueueWriter(q), hook, user, stateless=True)
            except Exception:
                log.exception("git http push to %s failed", app_name)
            finally:
                q.put(None)

        start_response("200 OK", [("Content-Type", f"application/x-{_SERVICE}-result"),
                                  *_NO_CACHE])
        worker = threading.Thread(target=run, name=f"push-{app_name}", daemon=True)
        worker.start()
        return _drain(q)


def _drain(q: queue.SimpleQueue[bytes | None]) -> Iterator[bytes]:
    while (chunk := q.get()) is not None:
        yield chunk


_NO_CACHE = [("Cache-Control", "no-cache, max-age=0, must-revalidate"),
             ("Expires", "Fri, 01 Jan 1980 00:00:00 GMT"), ("Pragma", "no-cache")]


def _too_many(start_response: StartResponse, wait: float) -> list[bytes]:
    seconds = max(1, math.ceil(wait))
    return _plain(start_response, "429 Too Many Requests",
                  f"too many failed logins from your address: try again in {seconds}s",
                  [("Retry-After", str(seconds))])


def _plain(start_response: StartResponse, status: str, text: str,
           headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = (text + "\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), *(headers or [])])
    return [body]


app = GitHttpApp()
