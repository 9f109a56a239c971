"""Integration test: layers made from a real overlayfs upper dir, and applied back.

The kernel creates the whiteouts and opaque dirs; we turn them into a tar and
check that the extracted layer, stacked on the lower dir, hides what was deleted.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.image.layer import extract_layer, write_layer


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="paas-overlay-"))
    mounted: list[Path] = []
    try:
        yield path
    finally:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1]
            if target.startswith(str(path)):
                mounted.append(Path(target))
        for target in reversed(mounted):
            subprocess.run(["umount", str(target)], check=True)
        shutil.rmtree(path)


def _mount(merged: Path, lower: str, upper: Path | None = None, work: Path | None = None) -> None:
    opts = f"lowerdir={lower}"
    if upper is not None and work is not None:
        opts += f",upperdir={upper},workdir={work}"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)


def test_overlay_upper_round_trip(work: Path) -> None:
    lower, upper, wdir = work / "lower", work / "upper", work / "work"
    for d in (lower / "d", upper, wdir):
        d.mkdir(parents=True)
    for f in ("a", "keep", "d/x"):
        (lower / f).write_text(f)

    merged = work / "merged"
    _mount(merged, str(lower), upper, wdir)
    (merged / "a").unlink()
    shutil.rmtree(merged / "d")
    (merged / "d").mkdir()
    (merged / "d" / "y").write_text("new")
    subprocess.run(["umount", str(merged)], check=True)

    buf = io.BytesIO()
    digest = write_layer(str(upper), buf, overlay_upper=True)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        names = [m.name + "/" if m.isdir() else m.name for m in tar.getmembers()]
    assert names == [".wh.a", "d/", "d/.wh..wh..opq", "d/y"]

    layer = work / "layer"
    layer.mkdir()
    assert extract_layer(io.BytesIO(buf.getvalue()), str(layer)) == digest
    view = work / "view"
    _mount(view, f"{layer}:{lower}")
    assert sorted(p.name for p in view.iterdir()) == ["d", "keep"]
    assert [p.name for p in (view / "d").iterdir()] == ["y"]
    assert (view / "d" / "y").read_text() == "new"
