"""Parse and validate image references: ``NAME[:TAG]`` or ``NAME@sha256:HEX``.

Names follow the distribution spec's grammar (lowercase path components,
optional registry host[:port]); untagged means ``:latest``. A reference with
both a tag and a digest keeps both (the digest wins when resolving).

Not here: normalising short names to ``docker.io/library/...`` (paas keeps
names exactly as typed), resolving references against the store.
"""

from __future__ import annotations

import re

from ..errors import InvalidArgument
from ..model import ImageRef

__all__ = ["NAME_TOTAL_LENGTH_MAX", "parse_reference"]

NAME_TOTAL_LENGTH_MAX = 255

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

_HINT = (
    "use NAME[:TAG] or NAME@sha256:DIGEST: NAME is lowercase letters, digits and "
    "separators (. _ __ -) in '/'-separated components, optionally after a "
    "registry HOST[:PORT]/; TAG is up to 128 letters, digits, '_', '.' or '-'"
)


def _invalid(text: str, why: str = "") -> InvalidArgument:
    suffix = f": {why}" if why else ""
    return InvalidArgument(f"invalid reference format: {text!r}{suffix}", _HINT)


def _split_domain(name: str) -> tuple[str, str]:
    """Split ``name`` into (domain, remainder) the way Docker does: the first
    component is a registry when it has a '.' or ':' or is ``localhost``."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", name


def _check_name(text: str, name: str) -> None:
    if not name:
        raise _invalid(text, "empty name")
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise _invalid(text, f"name longer than {NAME_TOTAL_LENGTH_MAX} characters")
    domain, path = _split_domain(name)
    if domain and not _DOMAIN_RE.fullmatch(domain):
        raise _invalid(text, f"bad registry host {domain!r}")
    if path.lower() != path:
        raise _invalid(text, "repository name must be lowercase")
    if not _PATH_RE.fullmatch(path):
        raise _invalid(text)


def _split_tag(rest: str) -> tuple[str, str | None]:
    """Split ``NAME[:TAG]``; a ':' before the last '/' is a registry port, not a tag."""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        return rest[:colon], rest[colon + 1 :]
    return rest, None


def parse_reference(text: str) -> ImageRef:
    """Parse ``text`` or raise ``InvalidArgument`` saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise _invalid(str(text), "empty reference")
    rest, at, digest = text.partition("@")
    if at and not _DIGEST_RE.fullmatch(digest):
        raise _invalid(text, "digest must be sha256: followed by 64 lowercase hex digits")
    name, tag = _split_tag(rest)
    if tag is not None and not _TAG_RE.fullmatch(tag):
        raise _invalid(text, "bad tag")
    _check_name(text, name)
    return ImageRef(name=name, tag=tag if tag is not None else "latest", digest=digest or None)
