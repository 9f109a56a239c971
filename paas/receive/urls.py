"""Push URLs the stock ``git push`` accepts as they are (pure functions).

Hosts, ports and the ssh user come from the environment (see ``git_endpoints``):
``PAAS_SSH_HOST`` (default: this host's FQDN), ``PAAS_SSH_PORT`` (22),
``PAAS_SSH_USER`` (paas), ``PAAS_HTTP_GIT_HOST`` (default: the ssh host) and
``PAAS_HTTP_GIT_PORT`` (8022).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from ..errors import InvalidArgument
from .names import validate_app

__all__ = ["DEFAULT_HTTP_PORT", "Endpoints", "git_endpoints", "http_url", "ssh_url"]

DEFAULT_HTTP_PORT = 8022


@dataclass(frozen=True)
class Endpoints:
    ssh_host: str
    ssh_port: int
    ssh_user: str
    http_host: str
    http_port: int


def _port(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise InvalidArgument(f"{key}={raw!r} is not a port number", "use 1-65535")
    return int(raw)


def git_endpoints(env: Mapping[str, str] | None = None) -> Endpoints:
    env = os.environ if env is None else env
    host = env.get("PAAS_SSH_HOST") or socket.getfqdn()
    return Endpoints(
        ssh_host=host,
        ssh_port=_port(env, "PAAS_SSH_PORT", 22),
        ssh_user=env.get("PAAS_SSH_USER") or "paas",
        http_host=env.get("PAAS_HTTP_GIT_HOST") or host,
        http_port=_port(env, "PAAS_HTTP_GIT_PORT", DEFAULT_HTTP_PORT),
    )


def _host(host: str) -> str:
    if not host or any(c in host for c in "/@?# "):
        raise InvalidArgument(f"{host!r} is not a host name", "set PAAS_SSH_HOST")
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def ssh_url(app: str, host: str, port: int = 22, user: str = "paas") -> str:
    """``paas@HOST:APP`` on port 22 (scp-like syntax has no port), else
    ``ssh://paas@HOST:PORT/APP``."""
    validate_app(app)
    if port == 22 and ":" not in host:
        return f"{user}@{host}:{app}"
    return f"ssh://{user}@{_host(host)}:{port}/{app}"


def http_url(app: str, host: str, port: int, *, name: str = "", token: str = "",
             scheme: str = "http") -> str:
    """``http://HOST:PORT/APP.git``, with ``NAME:TOKEN@`` when both are given
    (percent-encoded: git decodes them)."""
    validate_app(app)
    creds = f"{quote(name, safe='')}:{quote(token, safe='')}@" if name and token else ""
    default = 443 if scheme == "https" else 80
    hostport = _host(host) if port == default else f"{_host(host)}:{port}"
    return f"{scheme}://{creds}{hostport}/{app}.git"
