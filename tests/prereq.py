"""Missing prerequisites of a test: a failure in CI (``CI=true``: test.sh must install
every tool the tests need), a skip elsewhere (a developer's machine without them)."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

__all__ = ["IN_CI", "require", "unavailable"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason}: in CI test.sh must provide it")
    pytest.skip(reason)  # outside CI only: failed just above in CI


def require(*tools: str, root: bool = False) -> None:
    """Every tool (a name on PATH or an absolute path) present, and root if asked."""
    missing = [t for t in tools if shutil.which(t) is None and not os.access(t, os.X_OK)]
    if root and os.geteuid() != 0:
        missing.append("root")
    if missing:
        unavailable(f"missing {', '.join(missing)}")
