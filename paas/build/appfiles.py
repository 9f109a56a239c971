"""Text files of an app's source that paas itself reads (``Procfile``, ``app.json``,
``nginx.conf.j2``): a regular file (a symlink is ignored, as if absent), at most 1 MiB,
UTF-8. Anything else is one ``InvalidArgument`` naming the file, so a push is rejected
saying what to fix (not "deploy failed").

Not here: what the files mean (``procfile``, ``paas.deploy.health``, ``paas.proxy``).
"""

from __future__ import annotations

import os

from ..errors import InvalidArgument

__all__ = ["MAX_BYTES", "read_app_file"]

MAX_BYTES = 1 << 20


def read_app_file(path: str, name: str | None = None) -> str:
    """The text of ``path``, "" when it is missing or not a regular file; ``name`` is what
    the error calls it (default: its base name)."""
    name = name or os.path.basename(path)
    if not os.path.isfile(path) or os.path.islink(path):
        return ""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InvalidArgument(f"{name} is larger than 1 MiB", "shorten it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise InvalidArgument(
            f"{name} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line})",
            f"save {name} as UTF-8 and push again") from err
