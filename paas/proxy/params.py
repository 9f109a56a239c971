"""Where the instance's nginx keeps its files and how it listens: ``ProxyParams``.

Everything lives under ``PAAS_ROOT/nginx``::

    nginx.conf            main config (written by paas; includes apps/*.conf)
    apps/APP.conf         one vhost per app
    logs/error.log        the master's log; logs/access.log for unknown hosts
    logs/APP-access.log   per-app logs (APP-error.log too)
    tmp/                  client body and proxy temp files
    nginx.pid, lock       the master's pid; a lock serialising config changes
    acme/.well-known/acme-challenge/TOKEN  HTTP-01 answers (``acme_webroot``)

and each app's certificate in ``PAAS_ROOT/certs/APP/tls.pem`` (``cert_file``: key,
leaf, chain), which the workers read on every TLS handshake.

The environment chooses the listeners: ``PAAS_HTTP_PORT`` (default 80),
``PAAS_HTTPS_PORT`` (default 443; ``0`` or ``off``: no HTTPS at all), both on
``PAAS_HTTP_ADDR`` (default 0.0.0.0); ``PAAS_NGINX`` the binary (default
/usr/sbin/nginx), ``PAAS_NGINX_WORKERS`` (default auto). The workers run as
``nobody`` with the group ``paas-www`` (made by install.sh; only they have it, so only
they can read keys), or ``nogroup`` on hosts without it. Not here: rendering and
running nginx.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Context
from ..errors import InvalidArgument
from . import safe

__all__ = ["WORKERS_GROUP", "ProxyParams", "default_user", "params_from_env", "templates_dir",
           "worker_ids"]

WORKERS_GROUP = "paas-www"


def templates_dir() -> str:
    """The shipped templates (``PAAS_TEMPLATES_DIR`` overrides, e.g. for tests)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.environ.get("PAAS_TEMPLATES_DIR") or os.path.join(here, "templates")


@dataclass(frozen=True)
class ProxyParams:
    """The instance-wide inputs of the renderers (pure data: no I/O)."""

    nginx_dir: str
    http_addr: str = "0.0.0.0"
    http_port: int = 80
    https_port: int = 0  # 0: no HTTPS listener (params_from_env's default is 443)
    client_max_body_size: str = "1m"
    worker_processes: str = "auto"
    user: tuple[str, str] | None = ("nobody", "nogroup")  # workers' user, group (when root)
    nginx: str = "/usr/sbin/nginx"
    templates: str = ""

    @property
    def main_conf(self) -> str:
        return os.path.join(self.nginx_dir, "nginx.conf")

    @property
    def apps_dir(self) -> str:
        return os.path.join(self.nginx_dir, "apps")

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.nginx_dir, "logs")

    @property
    def tmp_dir(self) -> str:
        return os.path.join(self.nginx_dir, "tmp")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.nginx_dir, "nginx.pid")

    @property
    def lock_file(self) -> str:
        return os.path.join(self.nginx_dir, "lock")

    @property
    def error_log(self) -> str:
        return os.path.join(self.logs_dir, "error.log")

    @property
    def acme_webroot(self) -> str:
        """The root of the ACME challenge location (its files under
        ``.well-known/acme-challenge/``)."""
        return os.path.join(self.nginx_dir, "acme")

    @property
    def acme_challenge_dir(self) -> str:
        """Where HTTP-01 answers go: one file per token, served as is."""
        return os.path.join(self.acme_webroot, ".well-known", "acme-challenge")

    @property
    def certs_dir(self) -> str:
        """``PAAS_ROOT/certs``: one dir per app holding ``tls.pem``."""
        return os.path.join(os.path.dirname(self.nginx_dir), "certs")

    def cert_file(self, app: str) -> str:
        """The file nginx reads on each handshake for ``app``: key, leaf, chain."""
        return os.path.join(self.certs_dir, safe.app_name(app), "tls.pem")

    def chain_file(self, app: str) -> str:
        """The CA certificates that verify ``app``'s stapled OCSP responses."""
        return os.path.join(self.certs_dir, safe.app_name(app), "chain.pem")

    def app_conf(self, app: str) -> str:
        return os.path.join(self.apps_dir, f"{safe.app_name(app)}.conf")

    def app_logs(self, app: str) -> tuple[str, str]:
        """(access log, error log) of an app."""
        name = safe.app_name(app)
        return (os.path.join(self.logs_dir, f"{name}-access.log"),
                os.path.join(self.logs_dir, f"{name}-error.log"))


def worker_ids(params: ProxyParams) -> tuple[int, int] | None:
    """The workers' (uid, gid): they traverse ``nginx/``, ``logs/`` and ``tmp/``, and
    own the logs the master reopened; None when nginx does not switch users (or the
    user or group does not exist)."""
    import grp
    import pwd

    if params.user is None:
        return None
    try:
        return pwd.getpwnam(params.user[0]).pw_uid, grp.getgrnam(params.user[1]).gr_gid
    except KeyError:
        return None


def default_user() -> tuple[str, str]:
    """The workers' (user, group): ``paas-www`` when the host has that group."""
    import grp

    try:
        grp.getgrnam(WORKERS_GROUP)
    except KeyError:
        return ("nobody", "nogroup")
    return ("nobody", WORKERS_GROUP)


def _https_port(value: str) -> int:
    if value.strip().lower() in ("0", "off"):
        return 0
    try:
        return int(safe.port(value.strip()))
    except InvalidArgument as err:
        raise InvalidArgument(f"PAAS_HTTPS_PORT={value!r} is not a port",
                              "use a number from 1 to 65535, or 0 or off for no HTTPS") from err


def params_from_env(ctx: Context, env: Mapping[str, str] | None = None) -> ProxyParams:
    """The instance's ``ProxyParams`` from ``PAAS_HTTP*``/``PAAS_NGINX*`` (validated)."""
    env = os.environ if env is None else env
    addr = safe.ip(env.get("PAAS_HTTP_ADDR") or "0.0.0.0").strip("[]")
    port = int(safe.port(env.get("PAAS_HTTP_PORT") or "80"))
    workers = env.get("PAAS_NGINX_WORKERS") or "auto"
    if not re.fullmatch(r"auto|[1-9][0-9]{0,2}", workers):
        raise InvalidArgument(f"PAAS_NGINX_WORKERS={workers!r} is not a worker count",
                              "use auto or a number from 1 to 999")
    nginx = env.get("PAAS_NGINX") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                      else "nginx")
    return ProxyParams(
        nginx_dir=os.path.join(ctx.paths.root, "nginx"),
        http_addr=addr,
        http_port=port,
        https_port=_https_port(env.get("PAAS_HTTPS_PORT") or "443"),
        worker_processes=workers,
        user=default_user() if os.geteuid() == 0 else None,
        nginx=nginx,
        templates=templates_dir(),
    )
