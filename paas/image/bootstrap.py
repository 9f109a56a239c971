"""Build a Debian base image with mmdebstrap and import it into the store.

``mmdebstrap_argv`` is pure: it validates the suite and package names with
strict patterns before they reach an argv. ``bootstrap`` runs it through
``paas.proc`` into a temp tar under the instance's tmp dir and imports it.

Not here: importing tars (``store.import_rootfs``), progress output (CLI).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence

from .. import modes, proc
from ..errors import InvalidArgument
from ..model import Image
from .store import ImageStore

__all__ = ["DEFAULT_REF", "DEFAULT_SUITE", "bootstrap", "created_by", "mmdebstrap_argv"]

DEFAULT_SUITE = "bookworm"
DEFAULT_REF = "debian:bookworm"
VARIANTS = (
    "extract",
    "custom",
    "essential",
    "apt",
    "required",
    "minbase",
    "buildd",
    "important",
    "standard",
)

_SUITE_RE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
# Debian policy 5.6.1: lowercase letters, digits, + - . ; at least two chars, alnum first
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]{1,62}$")


def _check(suite: str, includes: Sequence[str], variant: str) -> None:
    if not _SUITE_RE.match(suite):
        raise InvalidArgument(
            f"invalid suite name: {suite!r}",
            "use a Debian codename or suite, e.g. bookworm or stable",
        )
    for pkg in includes:
        if not _PACKAGE_RE.match(pkg):
            raise InvalidArgument(
                f"invalid package name: {pkg!r}",
                "package names are lowercase letters, digits, '+', '-' and '.', e.g. ca-certificates",
            )
    if variant not in VARIANTS:
        raise InvalidArgument(f"invalid variant: {variant!r}", f"use one of {', '.join(VARIANTS)}")


def mmdebstrap_argv(
    suite: str, includes: Sequence[str], out_tar: str, variant: str = "minbase",
    hooks: Sequence[str] = (),
) -> list[str]:
    """The mmdebstrap command that writes a ``variant`` rootfs of ``suite`` to ``out_tar``;
    ``hooks`` are paas's own ``--customize-hook=...`` arguments (never user input)."""
    _check(suite, includes, variant)
    argv = ["mmdebstrap", f"--variant={variant}", "--format=tar", "--quiet"]
    if includes:
        argv.append("--include=" + ",".join(includes))
    for hook in hooks:
        if not hook.startswith("--customize-hook="):
            raise InvalidArgument(f"invalid mmdebstrap hook: {hook!r}",
                                  "only --customize-hook=... arguments are accepted")
        argv.append(hook)
    return [*argv, suite, out_tar]


def created_by(suite: str, includes: Sequence[str], variant: str = "minbase") -> str:
    """The history line for a bootstrapped image."""
    inc = f" --include={','.join(includes)}" if includes else ""
    return f"mmdebstrap --variant={variant}{inc} {suite}"


def bootstrap(
    store: ImageStore,
    ref: str = DEFAULT_REF,
    suite: str = DEFAULT_SUITE,
    includes: Sequence[str] = (),
    variant: str = "minbase",
    timeout: float = 1800.0,
    hooks: Sequence[str] = (),
) -> Image:
    """Run mmdebstrap (with paas's own customize ``hooks``) and import the result as
    ``ref``."""
    store.target_ref(ref)  # a bad name fails before the slow part
    tmp_dir = store.ctx.paths.tmp
    modes.makedirs(tmp_dir)
    fd, out = tempfile.mkstemp(dir=tmp_dir, prefix="bootstrap-", suffix=".tar")
    os.close(fd)
    try:
        proc.run(
            mmdebstrap_argv(suite, includes, out, variant, hooks),
            timeout=timeout,
            what=f"mmdebstrap {suite}",
        )
        return store.import_rootfs(out, ref, created_by=created_by(suite, includes, variant))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out)
