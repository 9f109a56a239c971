"""The proxy stage: the instance's own nginx master, one vhost per app (``Route``).

``Proxy(ctx)`` runs it (``ensure_running``, ``apply``, ``remove``, ``show``,
``validate``, ``reload``, ``stop``, ``is_running``); ``render_main`` and
``render_app`` are the pure renderers; ``NGINX_SETTINGS`` validates the
per-app settings of ``nginx:set``. Not here: choosing the upstreams (the deploy
hands over healthy web containers), certificates (``paas.certs``), a system nginx.
"""

from __future__ import annotations

from .params import ProxyParams, params_from_env
from .proxy import NginxConfigError, Proxy
from .render import render_app, render_main
from .safe import DEFAULT_SETTINGS, NGINX_SETTINGS, Safe, validate_setting, validate_settings

__all__ = [
    "DEFAULT_SETTINGS",
    "NGINX_SETTINGS",
    "NginxConfigError",
    "Proxy",
    "ProxyParams",
    "Safe",
    "params_from_env",
    "render_app",
    "render_main",
    "validate_setting",
    "validate_settings",
]
