"""A build step's writable root filesystem: an overlay of an image (or of nothing, for
``scratch``) with a fresh upper dir, mounted under the instance's tmp dir.

COPY, ADD and WORKDIR change files through the mount (so the upper dir gets
exactly the changes, with parent directories copied up as they are in the
image); the upper dir then becomes the step's layer and snapshot
(``ImageStore.derive(adopt=True)``). ``view`` mounts an image to read from
(``COPY --from``).

Not here: RUN steps (they run in a container: ``paas.build.runstep``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from types import TracebackType
from typing import Self

from .. import linux
from ..image.store import ImageStore
from ..model import IdMap, Image

__all__ = ["BuildRoot"]


class BuildRoot:
    """``with BuildRoot(store, image, idmap, tmp) as root:`` change files under
    ``root.path``; after the block, ``root.upper`` holds the changes until ``cleanup()``."""

    def __init__(self, images: ImageStore, image: Image | None, idmap: IdMap | None,
                 tmp_dir: str) -> None:
        self.images = images
        self.image = image
        self.idmap = idmap
        self.dir = tempfile.mkdtemp(prefix="build-", dir=tmp_dir)
        self.upper = os.path.join(self.dir, "upper")
        self.work = os.path.join(self.dir, "work")
        self.path = os.path.join(self.dir, "root")
        self._mounted = False

    def __enter__(self) -> Self:
        try:
            for d in (self.upper, self.work, self.path):
                os.mkdir(d, 0o755)
            if self.idmap is not None:  # the upper dir's owner is the owner of "/"
                os.chown(self.upper, self.idmap.host_id, self.idmap.host_id)
            m = self.images.rootfs_mount(self.image, self.idmap, self.upper, self.work)
            linux.mount(m, self.path)
            self._mounted = True
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.unmount()
        if et is not None:
            self.cleanup()

    def unmount(self) -> None:
        if self._mounted:
            linux.umount(self.path, linux.MNT_DETACH)
            self._mounted = False

    def changed(self) -> bool:
        """Whether the step changed anything (the upper dir is not empty)."""
        return os.path.isdir(self.upper) and bool(os.listdir(self.upper))

    def cleanup(self) -> None:
        self.unmount()
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
