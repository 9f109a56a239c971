"""Parse and validate image references: ``NAME[:TAG]`` or ``NAME@sha256:HEX``.

Names follow the distribution spec's grammar (lowercase path components,
optional registry host); untagged means ``:latest``.
"""

from __future__ import annotations

from ..model import ImageRef

__all__ = ["parse_reference"]


def parse_reference(text: str) -> ImageRef:
    """Parse ``text`` or raise ``InvalidArgument`` saying what is wrong."""
    raise NotImplementedError
