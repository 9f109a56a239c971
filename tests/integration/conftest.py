"""Integration tests drive the real host: root, runc, overlayfs, cgroups.

Every test under this directory gets the ``integration`` marker (so
``pytest -m 'not integration'`` runs only the fast tiers) and is skipped when the
host cannot run it. In CI the top-level conftest turns those skips into failures.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

_HERE = Path(__file__).parent
_TOOLS = ("runc", "mmdebstrap", "umount")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root (try: sudo ./test.sh)"
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (run: sudo ./install.sh)"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlayfs (modprobe overlay)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _HERE in item.path.parents:
        reason = _missing_prerequisite()
        if reason and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}: in CI every prerequisite must be installed by test.sh")
        if reason:
            pytest.skip(reason)  # only outside CI (failed just above in CI)
