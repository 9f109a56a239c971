"""Pure renderers of the instance's nginx configs: ``render_main``, ``render_app``.

Templates are files (``templates/``), rendered by jinja2 with autoescape off and
a ``finalize`` that refuses every ``{{ }}`` value which is not ``safe.Safe``: only
validated values reach a config, whatever the template does with them (joining,
slicing or formatting gives a plain ``str`` again, which is refused). The
template variables are validated here, and the same validators are the
templates' filters. An app's own template (``Route.template``) is rendered in a
``SandboxedEnvironment`` with the same variables and checked by
``paas.proxy.lint``. No I/O beyond reading the template files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.sandbox

from ..errors import InvalidArgument
from ..model import Route
from . import lint, safe
from .params import ProxyParams
from .stapling import Stapling

__all__ = ["render_app", "render_main", "upstream_name"]

_FILTERS = {
    "app_name": safe.app_name, "domain": safe.domain, "ip": safe.ip, "port": safe.port,
    "size": safe.size, "time": safe.time, "onoff": safe.onoff, "path": safe.path,
    "text": safe.text, "join": safe.join,
}
_TIMEOUTS = (("proxy-connect-timeout", "proxy_connect_timeout"),
             ("proxy-read-timeout", "proxy_read_timeout"),
             ("proxy-send-timeout", "proxy_send_timeout"))


class UnsafeValue(InvalidArgument):
    """A template printed a value that did not pass a validator."""


def _finalize(value: object) -> object:
    if isinstance(value, safe.Safe):
        return value
    raise UnsafeValue(f"a template printed an unvalidated value: {str(value)[:60]!r}",
                      "pass every value through a filter: domain, ip, port, size, time, "
                      "onoff, path, text, join")


def _configure(env: jinja2.Environment) -> jinja2.Environment:
    env.filters.update(_FILTERS)
    return env


_OPTIONS: dict[str, Any] = {
    "autoescape": False, "undefined": jinja2.StrictUndefined, "finalize": _finalize,
    "trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True,
}


@lru_cache(maxsize=4)
def _files(directory: str) -> jinja2.Environment:
    return _configure(jinja2.Environment(loader=jinja2.FileSystemLoader(directory), **_OPTIONS))


_MAX_PRODUCT = 1 << 20


class _Sandbox(jinja2.sandbox.SandboxedEnvironment):
    """Also bounds ``*`` and ``**``: ``{{ 'x' * 10**10 }}`` must not take the host's memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any,
                   right: Any) -> Any:
        numbers = all(isinstance(v, int | float) for v in (left, right))
        if numbers:  # a power of a small number by a small exponent (chains stay bounded)
            too_big = operator == "**" and (abs(right) > 64 or abs(left) > 2**64)
        else:  # repeating a string or a list
            too_big = any(isinstance(v, int) and v > _MAX_PRODUCT for v in (left, right))
        if too_big:
            raise jinja2.exceptions.SecurityError(f"{operator} with {right!r} is too large")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=1)
def _sandbox() -> jinja2.sandbox.SandboxedEnvironment:
    env = _Sandbox(**_OPTIONS)
    _configure(env)
    return env


def _page(params: ProxyParams, name: str) -> safe.Safe:
    with open(os.path.join(params.templates, name), encoding="utf-8") as f:
        return safe.text(f.read())


def _listen(params: ProxyParams) -> safe.Safe:
    return safe.Safe(f"{safe.ip(params.http_addr)}:{safe.port(params.http_port)}")


def _https_listen(params: ProxyParams) -> safe.Safe | None:
    if not params.https_port:
        return None
    return safe.Safe(f"{safe.ip(params.http_addr)}:{safe.port(params.https_port)}")


def cert_variable_path(params: ProxyParams, app: str) -> safe.Safe:
    """``"PAAS_ROOT/certs/APP/tls.pem$paas_tls"``: the variable (always empty) makes
    nginx read the file on each handshake instead of at (re)load."""
    quoted = safe.path(params.cert_file(app))
    return safe.Safe(quoted[:-1] + '$paas_tls"')


def _user(params: ProxyParams) -> safe.Safe | None:
    if params.user is None:
        return None
    for name in params.user:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", name):
            raise InvalidArgument(f"invalid user or group name for nginx: {name!r}")
    return safe.Safe(" ".join(params.user))


def upstream_name(app: str) -> safe.Safe:
    return safe.Safe(f"paas-{safe.app_name(app)}")


def render_main(params: ProxyParams, includes: Sequence[str] | None = None) -> str:
    """The main config. ``includes``: the vhost files to include (default: the
    ``apps/*.conf`` glob; ``nginx -t`` of a candidate passes explicit files)."""
    tmp = params.tmp_dir
    variables: dict[str, Any] = {
        "user": _user(params),
        "worker_processes": (safe.Safe(params.worker_processes)
                             if re.fullmatch(r"auto|[1-9][0-9]{0,2}", params.worker_processes)
                             else safe.port(params.worker_processes)),
        "pid_file": params.pid_file,
        "error_log": params.error_log,
        "access_log": os.path.join(params.logs_dir, "access.log"),
        "listen": _listen(params),
        "https_listen": _https_listen(params),
        "acme_webroot": params.acme_webroot,
        "page_404": _page(params, "404.html"),
        "includes": (list(includes) if includes is not None
                     else [os.path.join(params.apps_dir, "*.conf")]),
        **{f"tmp_{d}": os.path.join(tmp, d)
           for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")},
    }
    return _files(params.templates).get_template("nginx.conf.j2").render(variables)


@dataclass(frozen=True)
class _Upstream:
    host: safe.Safe
    port: safe.Safe


def _stapled(stapling: Stapling | None, route: Route, settings: dict[str, safe.Safe],
             params: ProxyParams) -> tuple[safe.Safe, list[safe.Safe]] | None:
    """(the leaf's sha256, the resolvers: [] for none needed) of a stapled HTTPS server,
    None when the certificate is read per handshake: no responder, ``ocsp-stapling
    false``, no HTTPS, or an app's own template (it cannot use ``ssl_*`` directives)."""
    from ..certs.ocsp import valid_url

    if (stapling is None or not params.https_port or route.template
            or settings.get("ocsp-stapling", "true") != "true"):
        return None
    if valid_url(stapling.responder) is None:
        raise InvalidArgument(f"invalid OCSP responder URL: {stapling.responder[:80]!r}",
                              "install the certificate again")
    if not re.fullmatch(r"[0-9a-f]{64}", stapling.fingerprint):
        raise InvalidArgument(f"invalid certificate fingerprint: {stapling.fingerprint[:80]!r}",
                              "install the certificate again")
    return safe.Safe(stapling.fingerprint), [safe.ip(r) for r in stapling.resolvers]


def app_variables(route: Route, params: ProxyParams,
                  stapling: Stapling | None = None) -> dict[str, Any]:
    """The variables of a vhost template, every one validated (``Safe``)."""
    access_log, error_log = params.app_logs(route.app)
    settings = safe.validate_settings(
        route.settings, {"client-max-body-size": params.client_max_body_size})
    https_port = params.https_port
    stapled = _stapled(stapling, route, settings, params)
    return {
        "app": safe.app_name(route.app),
        "upstream_name": upstream_name(route.app),
        "upstreams": [_Upstream(safe.ip(u.host), safe.port(u.port)) for u in route.upstreams],
        "domains": [safe.domain(d) for d in route.domains],
        "listen": _listen(params),
        "https_listen": _https_listen(params),
        "https_port_suffix": safe.Safe("" if https_port in (0, 443) else f":{https_port}"),
        "cert_file": (cert_variable_path(params, route.app) if stapled is None
                      else safe.path(params.cert_file(route.app))),
        "ocsp_stapling": stapled is not None,
        "cert_fingerprint": stapled[0] if stapled else safe.Safe(""),
        "resolvers": stapled[1] if stapled else [],
        "trusted_certificate": safe.path(params.chain_file(route.app)),
        "cert_path": safe.path(params.cert_file(route.app)),
        "acme_webroot": safe.path(params.acme_webroot),
        "hsts": safe.hsts_header(settings),
        "access_log": safe.path(access_log),
        "error_log": safe.path(error_log),
        "settings": settings,
        "timeouts": [(safe.Safe(k), safe.Safe(d)) for k, d in _TIMEOUTS],
        "page_502": _page(params, "502.html"),
        "page_503": _page(params, "503.html"),
    }


def render_app(route: Route, params: ProxyParams, stapling: Stapling | None = None) -> str:
    """One app's vhost: the default template, or the app's own (sandboxed and linted).
    ``stapling``: the app's certificate names an OCSP responder (``stapling_of``): its
    HTTPS server loads it statically and staples (the default template only)."""
    variables = app_variables(route, params, stapling)
    if not route.template:
        return _files(params.templates).get_template("app.conf.j2").render(variables)
    try:
        text = _sandbox().from_string(route.template).render(variables)
    except InvalidArgument:
        raise
    except jinja2.TemplateSyntaxError as err:
        raise InvalidArgument(f"the nginx template of app {route.app} has a syntax error "
                              f"on line {err.lineno}: {err.message}",
                              "fix the template (jinja2 syntax)") from err
    except jinja2.TemplateError as err:
        raise InvalidArgument(f"the nginx template of app {route.app} failed: {err}",
                              "use only the documented variables and filters") from err
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as err:
        # Python errors of the template's own expressions ({{ 1/0 }}, a huge range)
        raise InvalidArgument(f"the nginx template of app {route.app} failed: "
                              f"{type(err).__name__}: {err}",
                              "fix the template's expressions; use only the documented "
                              "variables and filters") from err
    https = variables["https_listen"]
    lint.check_app_config(text, route.app, listen=variables["listen"],
                          logs=params.app_logs(route.app), https_listen=https or "",
                          cert=params.cert_file(route.app) + "$paas_tls" if https else "",
                          acme_root=params.acme_webroot if https else "")
    return text
