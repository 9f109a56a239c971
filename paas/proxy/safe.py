"""Values that may reach an nginx config: validators that return ``Safe`` tokens.

Every value interpolated into a template goes through one of these functions.
Each either refuses the value (``InvalidArgument``) or returns it as a ``Safe``
string that cannot break out of the directive it is written into: no ``;``,
``{``, ``}``, quotes, ``$``, whitespace or control characters, except inside a
double-quoted string built here (``path``, ``text``). The renderers refuse any
``{{ }}`` value that is not ``Safe`` (see ``paas.proxy.render``), so a template can
only emit values that passed a validator.

Also here: ``NGINX_SETTINGS``, the table of per-app settings (``nginx:set``) and
their validators. Not here: rendering and the app-template directive check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from ..errors import InvalidArgument

__all__ = [
    "DEFAULT_SETTINGS",
    "NGINX_SETTINGS",
    "Safe",
    "app_name",
    "domain",
    "hsts_header",
    "ip",
    "join",
    "onoff",
    "path",
    "port",
    "size",
    "text",
    "time",
    "validate_setting",
    "validate_settings",
]


class Safe(str):
    """A string that passed a validator and may be written into an nginx config as is."""

    __slots__ = ()


# matched whole with fullmatch: a "$" anchor would also accept a trailing newline
_APP_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_SIZE_RE = re.compile(r"[0-9]{1,9}[kmg]?")
_TIME_RE = re.compile(r"[0-9]{1,9}(ms|s|m|h)?")
# a path may hold anything but what ends or escapes a quoted nginx string or starts a variable
_PATH_BAD = re.compile(r'["\\$;{}\x00-\x1f\x7f]')


def _bad(kind: str, value: object, hint: str) -> InvalidArgument:
    return InvalidArgument(f"invalid {kind} for nginx: {value!r}", hint)


def app_name(value: object) -> Safe:
    """An app name: lowercase letters, digits, ``-`` and ``_`` (also used in file names)."""
    if not isinstance(value, str) or not _APP_RE.fullmatch(value):
        raise _bad("app name", value, "use lowercase letters, digits, '-' and '_' (max 63)")
    return Safe(value)


def domain(value: object) -> Safe:
    """A host name (RFC 1123, lowercased), optionally with a leading ``*.`` wildcard."""
    if not isinstance(value, str):
        raise _bad("domain", value, "use a host name like app.example.com")
    name = value.lower().removesuffix(".")
    labels = name.removeprefix("*.").split(".")
    if (len(name) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels)
            or name.count("*") > (1 if name.startswith("*.") else 0)):
        raise _bad("domain", value, "use a host name like app.example.com or *.example.com")
    return Safe(name)


def ip(value: object) -> Safe:
    """An IP address; IPv6 comes bracketed, ready for ``host:port``."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        value = str(value)
    if not isinstance(value, str):
        raise _bad("IP address", value, "use an IPv4 or IPv6 address")
    try:
        addr = ipaddress.ip_address(value.strip("[]"))
    except ValueError as err:
        raise _bad("IP address", value, "use an IPv4 or IPv6 address") from err
    return Safe(f"[{addr}]" if addr.version == 6 else str(addr))


def port(value: object) -> Safe:
    """A TCP port, 1-65535 (an int or a string of digits)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _bad("port", value, "use a number from 1 to 65535")
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,5}", value):
        raise _bad("port", value, "use a number from 1 to 65535")
    number = int(value)
    if not 1 <= number <= 65535:
        raise _bad("port", value, "use a number from 1 to 65535")
    return Safe(str(number))


def size(value: object) -> Safe:
    """An nginx size: digits with an optional k, m or g suffix (``1m``, ``512k``, ``0``)."""
    if not isinstance(value, str) or not _SIZE_RE.fullmatch(value.lower()):
        raise _bad("size", value, "use digits with an optional k, m or g suffix, e.g. 10m")
    return Safe(value.lower())


def time(value: object) -> Safe:
    """An nginx time: digits with an optional ms, s, m or h suffix (``60s``, ``500ms``)."""
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise _bad("time", value, "use digits with an optional ms, s, m or h suffix, e.g. 60s")
    return Safe(value)


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_MIN_BUFFER, _MAX_BUFFER = 1 << 10, 16 << 20


def _buffer_size(value: object) -> Safe:
    """A proxy buffer size, 1k to 16m: nginx refuses a config whose buffers do not fit
    its other limits (busy buffers, temp files), and each connection takes 8 of them."""
    checked = size(value)
    number, unit = (checked[:-1], checked[-1]) if checked[-1] in _UNITS else (checked, "")
    if not _MIN_BUFFER <= int(number) * _UNITS[unit] <= _MAX_BUFFER:
        raise _bad("buffer size", value, "use a size from 1k to 16m, e.g. 8k")
    return checked


def onoff(value: object) -> Safe:
    if value not in ("on", "off"):
        raise _bad("flag", value, "use on or off")
    return Safe(str(value))


def _proto(value: object) -> Safe:
    if value not in ("http", "https"):
        raise _bad("protocol", value, "use http or https")
    return Safe(str(value))


def _truefalse(value: object) -> Safe:
    if value not in ("true", "false"):
        raise _bad("flag", value, "use true or false")
    return Safe(str(value))


def _seconds(value: object) -> Safe:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,10}", value) \
            or int(value) >= 1 << 31:
        raise _bad("number of seconds", value, "use a number of seconds, e.g. 15724800")
    return Safe(str(int(value)))


def path(value: object) -> Safe:
    """An absolute file path as a double-quoted nginx string (already quoted: kept)."""
    if isinstance(value, Safe) and len(value) > 2 and value[0] == value[-1] == '"':
        return value
    if not isinstance(value, str) or not value.startswith("/") or _PATH_BAD.search(value):
        raise _bad("path", value, 'use an absolute path without quotes, "\\", "$", ";", braces '
                   "or control characters")
    return Safe(f'"{value}"')


def text(value: object) -> Safe:
    """Static text (an error page body) as a double-quoted nginx string.

    nginx strings have no escape for ``$`` (a variable), so text holding one is
    refused; backslashes and quotes are escaped, newlines are fine inside quotes.
    Already-quoted ``Safe`` text is kept."""
    if isinstance(value, Safe) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value
    if not isinstance(value, str) or "$" in value or re.search(r"[\x00-\x08\x0b-\x1f\x7f]",
                                                               value):
        raise _bad("text", value[:40] if isinstance(value, str) else value,
                   'static text may not contain "$" or control characters')
    return Safe('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')


def join(values: object) -> Safe:
    """``Safe`` values separated by spaces (e.g. ``server_name``'s arguments)."""
    items = list(values) if isinstance(values, list | tuple) else [values]
    tokens = [v for v in items if isinstance(v, Safe)]
    if not tokens or len(tokens) != len(items):
        raise _bad("list", values, "join only validated values (pass each through a filter)")
    return Safe(" ".join(tokens))


# nginx:set KEY VALUE. Each validator returns the value as written into the vhost.
NGINX_SETTINGS: Mapping[str, Callable[[object], Safe]] = {
    "client-max-body-size": size,
    # HSTS (Dokku's names), sent by the HTTPS server only, off unless hsts is true
    "hsts": _truefalse,
    "hsts-include-subdomains": _truefalse,
    "hsts-max-age": _seconds,
    "hsts-preload": _truefalse,
    # false: a certificate naming an OCSP responder stays read per handshake (no staple)
    "ocsp-stapling": _truefalse,
    "proxy-buffering": onoff,
    "proxy-buffer-size": _buffer_size,
    "proxy-connect-timeout": time,
    "proxy-read-timeout": time,
    "proxy-send-timeout": time,
    "x-forwarded-proto-value": _proto,
}

# settings written into every vhost unless the app sets them (others: nginx's defaults)
DEFAULT_SETTINGS: Mapping[str, str] = {"client-max-body-size": "1m"}


HSTS_MAX_AGE = "15724800"  # Dokku's default: 182 days


def hsts_header(settings: Mapping[str, str]) -> Safe | None:
    """The quoted ``Strict-Transport-Security`` value of validated settings, None
    unless ``hsts`` is true (``hsts-include-subdomains`` defaults to true, ``preload``
    to false, as in Dokku)."""
    if settings.get("hsts") != "true":
        return None
    value = f"max-age={_seconds(settings.get('hsts-max-age', HSTS_MAX_AGE))}"
    if settings.get("hsts-include-subdomains", "true") == "true":
        value += "; includeSubDomains"
    if settings.get("hsts-preload") == "true":
        value += "; preload"
    return text(value)


def validate_setting(key: str, value: str) -> Safe:
    """The validated value of one ``nginx:set`` setting; ``InvalidArgument`` if unknown or bad."""
    validator = NGINX_SETTINGS.get(key)
    if validator is None:
        raise InvalidArgument(f"unknown nginx setting {key!r}",
                              "known settings: " + ", ".join(sorted(NGINX_SETTINGS)))
    try:
        return validator(value)
    except InvalidArgument as err:
        raise InvalidArgument(f"nginx setting {key}: {err.message}", err.hint) from err


def validate_settings(pairs: tuple[tuple[str, str], ...],
                      defaults: Mapping[str, str] = DEFAULT_SETTINGS) -> dict[str, Safe]:
    """Defaults overridden by ``pairs`` (later pairs win), every value validated."""
    merged = dict(defaults)
    merged.update(dict(pairs))
    return {key: validate_setting(key, value) for key, value in merged.items()}
