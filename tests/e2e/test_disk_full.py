"""A nearly full disk: the instance's root is a small ext4 filesystem (a loop device);
a push whose build runs out of space is rejected with a clear message, leaves no
half-written image, release or temp dir, the running release keeps serving, and once
there is room again the next push deploys."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import AppRepo, Platform, start_platform
from prereq import require
from test_deploy import deploy, wait_body

SIZE = "3G"  # the two base images, the app's layers and a little room


@pytest.fixture(scope="module")
def small_platform(instance_tools: Any, rootfs_tar: Path, stack_tar: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    require("mkfs.ext4", "losetup", root=True)
    image = Path(tempfile.mkdtemp(prefix="paas-small-")) / "fs.img"
    mnt = Path(tempfile.mkdtemp(prefix="paas-small-root-"))
    try:
        subprocess.run(["truncate", "-s", SIZE, str(image)], check=True)
        # -m 0: no blocks reserved for root (paas runs as root: they would not fill up)
        subprocess.run(["mkfs.ext4", "-q", "-m", "0", "-F", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
        with start_platform(instance_tools, rootfs_tar, stack_tar,
                            tmp_path_factory.mktemp("small-servers"), root_dir=mnt) as p:
            yield p
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["umount", str(mnt)], check=False)
        shutil.rmtree(image.parent, ignore_errors=True)
        if mnt.exists():
            mnt.rmdir()


def _fill(root: Path, leave: int) -> Path:
    """A file taking all free space of ``root``'s filesystem but ``leave`` bytes."""
    filler = root / "filler"
    st = os.statvfs(root)
    size = st.f_bavail * st.f_frsize - leave
    subprocess.run(["fallocate", "-l", str(size), str(filler)], check=True)
    return filler


def _snapshot(platform: Platform) -> tuple[str, list[int], list[str]]:
    """Tagged images, releases, and the instance's scratch dirs (staged blobs, build
    contexts, deploy checkouts): what a failed build must leave as it was."""
    images = platform.cli("image:ls", "-q").stdout
    tmp = sorted(os.listdir(platform.root / "tmp")) if (platform.root / "tmp").exists() else []
    return images, platform.release_versions("full"), tmp


DOCKERFILE = """\
FROM paas/stack:bookworm
WORKDIR /app
COPY . /app
RUN if [ -f BIG ]; then head -c 40M /dev/urandom > /big; fi
CMD ["python3", "-m", "gunicorn", "--bind", "0.0.0.0:5000", "app:application"]
"""


def test_a_build_that_runs_out_of_space_is_rejected_cleanly(
        small_platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    platform = small_platform
    repo = app_repo()
    repo.commit("a Dockerfile app", Dockerfile=DOCKERFILE)
    deploy(platform, repo, "full")
    assert wait_body(platform, "full", "v1").startswith("v1 ")
    before = _snapshot(platform)
    # the RUN step's 40 MiB fit in the 48 MiB left; the layer made of them does not
    repo.commit("big", VERSION="v2\n", BIG="1\n")
    filler = _fill(platform.root, 48 << 20)
    try:
        res = repo.push(platform.http_url("full"))
        out = res.stdout + res.stderr
        assert res.returncode != 0 and "! [remote rejected] main" in out, out
        assert "no space left on device" in out.lower(), out
        assert "Traceback" not in out and "internal error" not in out.lower(), out
        # nothing half-written, and users never noticed
        assert _snapshot(platform) == before
        assert wait_body(platform, "full", "v1").startswith("v1 ")
    finally:
        filler.unlink()
    repo.remove("BIG")
    repo.commit("no big file")
    deploy(platform, repo, "full")
    assert wait_body(platform, "full", "v2").startswith("v2 ")
