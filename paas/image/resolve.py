"""Turn what a user typed into an image record; look up files inside an unpacked root.

``resolve`` accepts NAME[:TAG], NAME@sha256:DIGEST (manifest or config
digest) and unique prefixes of an image id, with or without ``sha256:``,
following Docker's order: a name first, then an id prefix.

Not here: parsing the reference grammar (``reference``), SQL (``catalog``).
"""

from __future__ import annotations

import os
import re

from ..errors import InvalidArgument, NotFound
from ..model import ImageRef
from .catalog import Catalog, ImageRow
from .reference import parse_reference

__all__ = ["has_file", "not_found", "resolve"]

_HEX_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")


def not_found(what: str) -> NotFound:
    return NotFound(
        f"No such image: {what}",
        "run 'paas image:ls' to see images, or 'paas image:bootstrap' to make a Debian base",
    )


def _by_prefix(catalog: Catalog, hexpart: str, text: str) -> ImageRow:
    rows = catalog.by_config_prefix("sha256:" + hexpart)
    ids = {r.config_digest for r in rows}
    if len(ids) > 1:
        raise InvalidArgument(
            f"image id prefix {text!r} is ambiguous: it matches {len(ids)} images",
            "give more characters of the IMAGE ID",
        )
    if not rows:
        raise not_found(text)
    return rows[0]


def _by_digest(catalog: Catalog, ref: ImageRef) -> ImageRow | None:
    assert ref.digest is not None
    row = catalog.image(ref.digest)
    if row is not None:
        return row
    rows = catalog.by_config_prefix(ref.digest)
    return rows[0] if rows else None


def resolve(catalog: Catalog, text: str) -> tuple[ImageRow, tuple[str, str] | None]:
    """The image ``text`` names and, when it named a tag, that (name, tag)."""
    text = text.strip()
    hexmatch = _HEX_RE.match(text)
    if text.startswith("sha256:"):
        if not hexmatch:
            raise InvalidArgument(
                f"invalid image id {text!r}", "image ids are sha256: and hex digits"
            )
        return _by_prefix(catalog, hexmatch.group(1), text), None
    try:
        ref = parse_reference(text)
    except InvalidArgument:
        if hexmatch:
            return _by_prefix(catalog, hexmatch.group(1), text), None
        raise
    if ref.digest:
        row = _by_digest(catalog, ref)
        if row is None:
            raise not_found(str(ref))
        return row, None
    digest = catalog.tag(ref.name, ref.tag)
    if digest is not None:
        row = catalog.image(digest)
        if row is not None:
            return row, (ref.name, ref.tag)
    if hexmatch and ":" not in text and catalog.by_config_prefix("sha256:" + hexmatch.group(1)):
        return _by_prefix(catalog, hexmatch.group(1), text), None
    raise not_found(str(ref))


def _resolve_in_root(root: str, path: str, depth: int = 0) -> str | None:
    """``path`` resolved inside ``root`` (symlinks may not escape it); None when missing."""
    if depth > 40:
        return None
    cur = root
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for i, part in enumerate(parts):
        if part == "..":
            cur = os.path.dirname(cur) if cur != root else root
            continue
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt):
            target = os.readlink(nxt)
            rest = "/".join(parts[i + 1 :])
            rel = cur[len(root) :] if not target.startswith("/") else ""
            return _resolve_in_root(root, f"{rel}/{target}/{rest}", depth + 1)
        if not os.path.lexists(nxt):
            return None
        cur = nxt
    return cur


def has_file(root: str, path: str) -> bool:
    """Whether ``path`` exists in the tree at ``root`` (as the container would see it)."""
    found = _resolve_in_root(root, path)
    return found is not None and os.path.isfile(found)
