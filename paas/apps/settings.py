"""The per-app settings paas knows: a table of key -> validator, default, summary.

``deploy-branch``, ``checks``, ``keep-releases``, ``restart-policy``,
``allow-link-local``, ``init-process`` and ``host-ca-bundle`` are fixed keys; ``nginx.<key>`` is a family whose values go into the app's nginx config, so they
are held to a conservative character set here (no ``;``, braces, quotes, ``$``, ``#``
or control characters); the proxy decides which ``nginx.`` keys it uses.

Not here: storing them (``store``), acting on them (deploy, proxy).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InvalidArgument
from ..model import DEFAULT_RESTART_POLICY
from .validate import validate_branch_name

__all__ = ["NGINX_PREFIX", "SETTINGS", "Setting", "known_keys", "validate_setting", "validate_setting_key"]

NGINX_PREFIX = "nginx."

_NGINX_KEY = re.compile(r"[a-z][a-z0-9-]{0,62}")
_NGINX_VALUE = re.compile(r"[A-Za-z0-9._:/@%+,=~*!&?| -]{0,1024}")


@dataclass(frozen=True)
class Setting:
    """A known setting: ``validate`` returns the normalized value or raises InvalidArgument."""

    validate: Callable[[str], str]
    default: str
    summary: str


def _checks(value: str) -> str:
    if value not in ("enabled", "disabled", "skipped"):
        raise InvalidArgument(f"invalid value {value!r} for checks",
                              "use enabled, disabled or skipped")
    return value


def _keep_releases(value: str) -> str:
    try:
        n = int(value.strip(), 10)
    except ValueError:
        n = 0
    if not 1 <= n <= 100:
        raise InvalidArgument(f"invalid value {value!r} for keep-releases",
                              "use a whole number from 1 to 100")
    return str(n)


def _restart_policy(value: str) -> str:
    from ..runtime.restart import parse_restart_policy  # pure; container:run's own parser

    return str(parse_restart_policy(value))


def _nginx_value(value: str) -> str:
    if not _NGINX_VALUE.fullmatch(value) or value != value.strip():
        raise InvalidArgument(
            f"invalid nginx setting value {value!r}",
            "use letters, digits, spaces and ._:/@%+,=~*!&?|- only"
            " (no ; { } quotes $ # or line breaks), at most 1024 characters",
        )
    return value


def _true_false(value: str) -> str:
    if value not in ("true", "false"):
        raise InvalidArgument(f"invalid value {value!r}", "use true or false")
    return value


def _on_off(value: str) -> str:
    if value not in ("on", "off"):
        raise InvalidArgument(f"invalid value {value!r}", "use on or off")
    return value


SETTINGS: dict[str, Setting] = {
    "deploy-branch": Setting(validate_branch_name, "main", "the branch a git push deploys"),
    "checks": Setting(_checks, "enabled",
                      "health checks before cutover: enabled, disabled or skipped"),
    "keep-releases": Setting(_keep_releases, "5", "how many releases to keep (1-100)"),
    "default-domain": Setting(_on_off, "on",
                              "serve the app on APP.<global domain> besides its own domains"),
    "restart-policy": Setting(_restart_policy, DEFAULT_RESTART_POLICY,
                              "of process containers: no, on-failure[:N], always, unless-stopped"),
    "allow-link-local": Setting(_true_false, "false",
                                "process containers may reach 169.254.0.0/16 (cloud metadata)"),
    "init-process": Setting(_true_false, "true",
                            "process containers run tini as PID 1 (signals, zombies)"),
    "host-ca-bundle": Setting(_true_false, "false",
                              "process containers get the host's CA bundle and its variables"),
}


def known_keys() -> str:
    return ", ".join([*SETTINGS, f"{NGINX_PREFIX}<key>"])


def validate_setting_key(key: str) -> Setting:
    """The ``Setting`` for ``key``; ``nginx.<key>`` keys share one (default '')."""
    if key in SETTINGS:
        return SETTINGS[key]
    if key.startswith(NGINX_PREFIX) and _NGINX_KEY.fullmatch(key[len(NGINX_PREFIX):]):
        return Setting(_nginx_value, "", "an nginx setting of the app's vhost")
    raise InvalidArgument(f"unknown setting {key[:80]!r}", f"known settings: {known_keys()}")


def validate_setting(key: str, value: str) -> str:
    """The normalized ``value`` for ``key``, or InvalidArgument."""
    return validate_setting_key(key).validate(value)
