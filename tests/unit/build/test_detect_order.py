"""The detection table of buildpacks/README.md is paas's DETECT_ORDER, and every
buildpack in it is shipped with executable detect, compile and release scripts."""

from __future__ import annotations

import os
import re
from pathlib import Path

from paas.build.buildpacks import DETECT_ORDER, shipped_dir

README = Path(shipped_dir()) / "README.md"


def test_the_readme_table_lists_detect_order() -> None:
    rows = re.findall(r"^\| (\d+) +\| `([a-z0-9_-]+)` +\|", README.read_text(), re.MULTILINE)
    assert [name for _, name in rows] == list(DETECT_ORDER)
    assert [int(n) for n, _ in rows] == list(range(1, len(DETECT_ORDER) + 1))


def test_every_buildpack_in_the_order_is_shipped() -> None:
    for name in DETECT_ORDER:
        for script in ("detect", "compile", "release"):
            path = Path(shipped_dir()) / name / "bin" / script
            assert path.is_file() and os.access(path, os.X_OK), path
