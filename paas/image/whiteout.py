"""Whiteout vocabulary shared by layer writing and extraction.

OCI tars say ``.wh.NAME`` (NAME deleted) and ``.wh..wh..opq`` (directory
opaque); overlayfs says a 0/0 character device NAME and the
``trusted.overlay.opaque=y`` xattr. This module only names and recognises
those forms; it does no I/O.
"""

from __future__ import annotations

import os
import stat

__all__ = [
    "OPAQUE_MARKER",
    "OPAQUE_VALUE",
    "OPAQUE_XATTR",
    "WHITEOUT_META_PREFIX",
    "WHITEOUT_PREFIX",
    "is_whiteout_device",
    "keep_xattr",
]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
OPAQUE_VALUE = b"y"

# Overlay bookkeeping and host security labels describe this host, not the image.
_DROPPED_XATTR_PREFIXES = ("trusted.overlay.", "security.selinux")


def is_whiteout_device(st: os.stat_result) -> bool:
    """True for overlayfs's whiteout form: a character device 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def keep_xattr(key: str) -> bool:
    """Whether an xattr belongs in a layer (both when writing and extracting)."""
    return not key.startswith(_DROPPED_XATTR_PREFIXES)
