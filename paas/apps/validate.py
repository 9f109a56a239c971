"""Validation of everything a user names about an app, before it reaches a path,
a command line or an nginx config: app names, domains, config vars, git branch names.

Pure functions: each returns the normalized value or raises ``InvalidArgument``
with a hint saying what is allowed. User input is echoed with ``repr`` so a
newline in it can never start a second line of output.

Not here: whether a name is taken or a domain belongs to another app (``store``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import InvalidArgument

__all__ = [
    "MAX_CONFIG_KEY",
    "MAX_CONFIG_VALUE",
    "parse_assignments",
    "validate_app_name",
    "validate_branch_name",
    "validate_config_key",
    "validate_config_value",
    "validate_domain",
    "validate_process_type",
]

MAX_CONFIG_KEY = 255
MAX_CONFIG_VALUE = 64 * 1024  # bytes of UTF-8

_APP_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_CONFIG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROCESS_TYPE = re.compile(r"[a-z0-9_-]{1,63}")
# git check-ref-format: no control characters, space, ~ ^ : ? * [ \ (and DEL)
_BRANCH_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def validate_app_name(name: str) -> str:
    """``^[a-z][a-z0-9-]{0,62}$``, not ending with '-'. It becomes a directory,
    a hostname label and a container name prefix."""
    if not _APP_NAME.fullmatch(name) or name.endswith("-"):
        raise InvalidArgument(
            f"invalid app name {name!r}",
            "use 1-63 lower-case letters, digits and '-', starting with a letter"
            " and not ending with '-'",
        )
    return name


def validate_domain(domain: str) -> str:
    """An RFC 1123 hostname, returned lower-cased without a trailing dot.

    Single labels (``localhost``) are fine; ``*.`` is allowed as the whole first
    label only. Non-ASCII (IDN) names must be given in punycode (``xn--...``)."""
    hint = ("use a hostname like app.example.com: labels of a-z, 0-9 and '-',"
            " a leading '*.' at most, IDNs in punycode")
    # isascii before lower(): "\u212a".lower() is an ASCII "k"
    d = domain.lower() if domain.isascii() else ""
    d = d.removesuffix(".")
    if not d or len(d) > 253:
        raise InvalidArgument(f"invalid domain {domain!r}", hint)
    labels = d.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if not labels:
            raise InvalidArgument(f"invalid domain {domain!r}: a wildcard needs a parent", hint)
    for label in labels:
        if len(label) > 63 or not _LABEL.fullmatch(label):
            raise InvalidArgument(f"invalid domain {domain!r}", hint)
    return d


def validate_config_key(key: str) -> str:
    """An environment variable name: ``^[A-Za-z_][A-Za-z0-9_]*$``, at most 255 characters."""
    if len(key) > MAX_CONFIG_KEY or not _CONFIG_KEY.fullmatch(key):
        raise InvalidArgument(
            f"invalid config key {key[:64]!r}",
            "use letters, digits and '_', not starting with a digit, at most 255 characters",
        )
    return key


def validate_config_value(value: str) -> str:
    """Any text (spaces, quotes, '=', newlines, unicode) but NUL bytes, at most 64 KiB.

    Values end up in a container's environment, where NUL ends a string."""
    if "\0" in value:
        raise InvalidArgument("config values cannot contain NUL bytes",
                              "remove the NUL (\\0) characters from the value")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as err:  # lone surrogates: not storable text
        raise InvalidArgument("config value is not valid UTF-8 text",
                              "pass the value as UTF-8") from err
    if size > MAX_CONFIG_VALUE:
        raise InvalidArgument(f"config value is too long ({size} bytes)",
                              f"keep values at most {MAX_CONFIG_VALUE} bytes; mount a file instead")
    return value


def parse_assignments(items: Iterable[str]) -> list[tuple[str, str]]:
    """``["K=V", ...]`` -> ``[(K, V), ...]``, split at the first '=', each validated."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"expected KEY=VALUE, got {item[:64]!r}",
                                  f"write {key[:64]}=VALUE (an empty value: {key[:64]}=)")
        out.append((validate_config_key(key), validate_config_value(value)))
    return out


def validate_branch_name(name: str) -> str:
    """A branch name git accepts (``git check-ref-format --branch``'s main rules)."""
    hint = ("use a git branch name like main or release/v2: no spaces, '..', '@{',"
            " ~^:?*[\\, no component starting with '.' or ending with '.lock'")
    bad = (
        not name
        or len(name) > 255
        or name.startswith("-")
        or name in ("@", "HEAD")
        or _BRANCH_BAD_CHARS.search(name) is not None
        or ".." in name
        or "@{" in name
        or name.endswith(".")
        or any(not part or part.startswith(".") or part.endswith(".lock")
               for part in name.split("/"))
    )
    if bad:
        raise InvalidArgument(f"invalid branch name {name!r}", hint)
    return name


def validate_process_type(name: str) -> str:
    """A Procfile process type as used for scaling: ``[a-z0-9_-]+``, at most 63."""
    if not _PROCESS_TYPE.fullmatch(name):
        raise InvalidArgument(f"invalid process type {name!r}",
                              "use lower-case letters, digits, '_' and '-' (e.g. web, worker)")
    return name
