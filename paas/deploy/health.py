"""Health gates of a new process container, before it gets traffic.

In order of precedence: the app's ``app.json`` ``healthchecks`` (Dokku's format:
``{"healthchecks": {"web": [{"path": "/", "content": "ok", "attempts": 5,
"wait": 1, "timeout": 5, "initialDelay": 0}]}}``; a check without ``path`` is
a TCP connect), the image's Dockerfile ``HEALTHCHECK`` (run in the container),
else the default: ``GET /`` gets an HTTP response (any status: a 404 or a 500 is
a web server that answers) within ``DEFAULT_TIMEOUT``, then the process is still
up after a short uptime window (the cutover waits it once for all containers).
A port that accepts connections is not enough: gunicorn's master keeps its port
open while its workers die at import (a missing module), and nothing answers.
A container that exits while being checked fails at once. Failures carry the
container's last output lines.

Not here: which containers to check (``cutover``).
"""

from __future__ import annotations

import functools
import http.client
import json
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from .. import proc
from ..errors import FailedPrecondition, InvalidArgument
from ..model import Container, Healthcheck
from ..runtime.bundle import Bundle
from ..runtime.lifecycle import Runtime
from ..runtime.logs import read_logs

__all__ = ["DEFAULT_CHECK", "DEFAULT_UPTIME", "Check", "HealthCheckFailed", "checks_from_app_json", "exited",
           "wait_healthy"]

DEFAULT_UPTIME = 1.0
DEFAULT_TIMEOUT = 30.0


class HealthCheckFailed(FailedPrecondition):
    """The new container did not become healthy; the old release keeps serving."""


@dataclass(frozen=True)
class Check:
    path: str = ""  # "" = TCP connect only
    content: str = ""
    timeout: float = 5.0
    attempts: int = 5
    wait: float = 1.0
    initial_delay: float = 0.0
    name: str = ""
    any_status: bool = False  # any HTTP response passes (the default check)


# the default gate of a web process: an HTTP answer, whatever its status
DEFAULT_CHECK = Check(path="/", timeout=5.0, any_status=True)


def _num(obj: dict[str, object], key: str, default: float) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise InvalidArgument(f"app.json: healthchecks '{key}' must be a number >= 0",
                              "see Dokku's app.json healthchecks format")
    return float(value)


def checks_from_app_json(text: str, ptype: str = "web") -> list[Check]:
    """The checks ``app.json`` defines for ``ptype`` ([] when none)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as err:  # RecursionError: absurdly deep nesting
        raise InvalidArgument(f"app.json is not valid JSON: {err}", "fix app.json") from err
    checks = (doc.get("healthchecks") or {}) if isinstance(doc, dict) else {}
    if not isinstance(checks, dict):
        raise InvalidArgument("app.json: healthchecks must be an object of process types",
                              'e.g. "healthchecks": {"web": [{"path": "/"}]}; see Dokku\'s docs')
    entries = checks.get(ptype) or []
    if not isinstance(entries, list):
        raise InvalidArgument("app.json: healthchecks.web must be a list", "see Dokku's docs")
    out = []
    for e in entries:
        if not isinstance(e, dict):
            raise InvalidArgument("app.json: each healthcheck must be an object", "see Dokku's docs")
        path = str(e.get("path") or "")
        if path and not path.startswith("/"):
            raise InvalidArgument(f"app.json: healthcheck path {path!r} must start with /",
                                  "e.g. \"path\": \"/health\"")
        out.append(Check(path=path, content=str(e.get("content") or ""),
                         timeout=_num(e, "timeout", 5), attempts=int(_num(e, "attempts", 5)) or 1,
                         wait=_num(e, "wait", 1), initial_delay=_num(e, "initialDelay", 0),
                         name=str(e.get("name") or path or "port check")))
    return out


def _last_output(rt: Runtime, c: Container, lines: int = 15) -> str:
    try:
        entries = list(read_logs(Bundle(rt.ctx, c.id).log_path, tail=lines))
    except OSError:
        return ""
    return "".join(e.text if e.text.endswith("\n") else e.text + "\n" for e in entries)


def _fail(rt: Runtime, c: Container, why: str) -> HealthCheckFailed:
    out = _last_output(rt, c)
    shown = ("; its last output:\n" + out.rstrip()) if out else ""
    return HealthCheckFailed(f"{c.name} is not healthy: {why}{shown}",
                             "the previous release keeps serving; fix the app and push again")


def exited(rt: Runtime, c: Container) -> HealthCheckFailed:
    """The failure for a new container that is not running any more, with its output."""
    fresh = rt.store.get(c.id)
    code = f" (exit {fresh.exit_code})" if fresh.exit_code is not None else ""
    return _fail(rt, c, f"it exited{code}")


def _probe(ip: str, port: int, check: Check) -> str | None:
    """None if ``check`` passes once, else why not."""
    if not check.path:
        try:
            with socket.create_connection((ip, port), timeout=check.timeout):
                return None
        except OSError as err:
            return f"port {port} does not accept connections ({err.strerror or err})"
    conn = http.client.HTTPConnection(ip, port, timeout=check.timeout)
    try:
        conn.request("GET", check.path, headers={"Host": "localhost", "User-Agent": "paas-check"})
        resp = conn.getresponse()
        if check.any_status:
            return None  # an HTTP server answered
        body = resp.read(1 << 20).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as err:
        return f"GET {check.path} failed: {_why(err)}"
    finally:
        conn.close()
    if not 200 <= resp.status < 400:
        return f"GET {check.path} answered {resp.status}"
    if check.content and check.content not in body:
        return f"GET {check.path} did not contain {check.content!r}"
    return None


def _why(err: Exception) -> str:
    if isinstance(err, TimeoutError) or str(err) == "timed out":
        return "no response (timed out)"
    if isinstance(err, http.client.RemoteDisconnected):
        return "the connection was closed without a response"
    if isinstance(err, http.client.HTTPException):
        return f"not an HTTP response ({type(err).__name__})"
    return str(getattr(err, "strerror", None) or err)


def _exec_check(rt: Runtime, c: Container, hc: Healthcheck) -> str | None:
    args = list(hc.test[1:]) if hc.test[0] == "CMD" else ["/bin/sh", "-c", hc.test[1]]
    res = proc.run(rt.exec_argv(rt.store.get(c.id), args, tty=False), check=False,
                   timeout=(hc.timeout / 1e9) or 30.0)
    return None if res.returncode == 0 else f"HEALTHCHECK exited {res.returncode}"


def wait_healthy(rt: Runtime, c: Container, ip: str, port: int, *, checks: list[Check],
                 healthcheck: Healthcheck | None, uptime: float = DEFAULT_UPTIME,
                 progress: Callable[[str], None] = lambda _s: None,
                 window: float = DEFAULT_TIMEOUT) -> None:
    """Wait until ``c`` (at ``ip``:``port``) passes its checks (``checks``, else
    ``healthcheck``, else the default one within ``window`` seconds, then ``uptime``);
    HealthCheckFailed with its last output lines otherwise."""
    def alive() -> bool:
        return rt.is_running(rt.store.get(c.id))

    if checks:
        for check in checks:
            time.sleep(check.initial_delay)
            _retry(rt, c, alive, check.attempts, check.wait,
                   functools.partial(_probe, ip, port, check), progress, check.name)
        return
    if healthcheck is not None and healthcheck.test and healthcheck.test[0] != "NONE":
        attempts = healthcheck.retries or 3
        wait = min((healthcheck.interval / 1e9) or 1.0, 1.0)
        _retry(rt, c, alive, attempts * 5, wait, lambda: _exec_check(rt, c, healthcheck),
               progress, "HEALTHCHECK")
        return
    deadline = time.monotonic() + window

    def probe() -> str | None:  # each attempt within what is left of the window
        left = max(deadline - time.monotonic(), 0.1)
        return _probe(ip, port, replace(DEFAULT_CHECK, timeout=min(DEFAULT_CHECK.timeout, left)))

    _retry(rt, c, alive, int(window / 0.05) + 1, 0.05, probe, progress, "",
           deadline=deadline, failed=lambda why: f"no HTTP response on port {port} within "
                                                f"{window:g}s (last: {why})")
    if uptime <= 0:
        return
    time.sleep(uptime)  # the process must stay up a moment after it listens
    if not alive():
        raise _fail(rt, c, f"it exited within {uptime:.0f}s of listening")


def _retry(rt: Runtime, c: Container, alive: Callable[[], bool], attempts: int, wait: float,
           probe: Callable[[], str | None], progress: Callable[[str], None], name: str,
           deadline: float | None = None,
           failed: Callable[[str], str] = lambda why: why) -> None:
    why = "no attempt made"
    for attempt in range(1, max(attempts, 1) + 1):
        if not alive():
            raise exited(rt, c)
        why_now = probe()
        if why_now is None:
            if name:
                progress(f"       check {name!r} passed")
            return
        why = why_now
        if deadline is not None and time.monotonic() > deadline:
            break
        if name:
            progress(f"       attempt {attempt}/{attempts}: {why}")
        time.sleep(wait)
    raise _fail(rt, c, failed(why))
