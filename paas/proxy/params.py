"""Where the instance's nginx keeps its files and how it listens: ``ProxyParams``.

Everything lives under ``PAAS_ROOT/nginx``::

    nginx.conf            main config (written by paas; includes apps/*.conf)
    apps/APP.conf         one vhost per app
    logs/error.log        the master's log; logs/access.log for unknown hosts
    logs/APP-access.log   per-app logs (APP-error.log too)
    tmp/                  client body and proxy temp files
    nginx.pid, lock       the master's pid; a lock serialising config changes

The environment chooses the listener: ``PAAS_HTTP_PORT`` (default 80),
``PAAS_HTTP_ADDR`` (default 0.0.0.0); ``PAAS_NGINX`` the binary (default
/usr/sbin/nginx), ``PAAS_NGINX_WORKERS`` (default auto). Not here: rendering
and running nginx.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Context
from ..errors import InvalidArgument
from . import safe

__all__ = ["ProxyParams", "params_from_env", "templates_dir", "worker_ids"]


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


def params_from_env(ctx: Context, env: Mapping[str, str] | None = None) -> ProxyParams:
    """The instance's ``ProxyParams`` from ``PAAS_HTTP_*``/``PAAS_NGINX*`` (validated)."""
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
        worker_processes=workers,
        user=("nobody", "nogroup") if os.geteuid() == 0 else None,
        nginx=nginx,
        templates=templates_dir(),
    )
