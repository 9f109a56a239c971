"""The buildpack detection table: ``DETECT_ORDER`` is the order buildpacks/README.md
documents, every entry is a shipped buildpack with the three API v2 scripts, and the
stack image has the toolchains the Node.js, Go and PHP buildpacks call (each package on its own
entry of ``STACK_PACKAGES``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from paas.build.buildpacks import DETECT_ORDER, STACK_PACKAGES

REPO = Path(__file__).resolve().parents[3]


def _readme_order() -> list[str]:
    text = (REPO / "buildpacks" / "README.md").read_text()
    section = text.split("## Detection order", 1)[1].split("\n## ", 1)[0]
    rows = re.finditer(r"^\| \d+\s+\| `([a-z0-9_-]+)`", section, re.MULTILINE)
    return [m.group(1) for m in rows]


def test_detect_order_is_the_documented_table() -> None:
    assert _readme_order() == list(DETECT_ORDER)
    assert DETECT_ORDER[-1] == "procfile"  # the catch-all comes last


def test_every_buildpack_in_the_table_is_shipped_with_its_scripts() -> None:
    for name in DETECT_ORDER:
        for script in ("detect", "compile", "release"):
            path = REPO / "buildpacks" / name / "bin" / script
            assert os.access(path, os.X_OK), path
            assert path.read_text().startswith("#!/usr/bin/env bash\n"), path


def test_the_stack_has_the_language_toolchains() -> None:
    for package in ("nodejs", "npm", "golang-go", "php-fpm", "composer", "php-mysql",
                    "nginx-light", "python3-gunicorn"):
        assert package in STACK_PACKAGES
    assert len(set(STACK_PACKAGES)) == len(STACK_PACKAGES)
