"""ImageStore: the one entry point of the image stage.

Holds an OCI image layout under ``ctx.paths.layout`` (blobs by digest,
``index.json`` kept in sync with the tags table) and unpacked layers as
snapshots keyed by ChainID (one tree per id mapping). Tags live in SQLite.

Not here: running containers (runtime), building images (builder).
"""

from __future__ import annotations

import sqlite3
from typing import Sequence

from ..config import Context
from ..model import HistoryEntry, IdMap, Image, ImageConfig, Mount

__all__ = ["ImageStore"]


class ImageStore:
    def __init__(self, ctx: Context, conn: sqlite3.Connection) -> None:
        self.ctx = ctx
        self.conn = conn

    # -- queries -----------------------------------------------------------
    def get(self, ref: str) -> Image:
        """Resolve NAME[:TAG], NAME@DIGEST, or a (prefix of an) image id; NotFound otherwise."""
        raise NotImplementedError

    def list(self) -> list[Image]:
        """Every image, with its tags in ``refs`` (an untagged image has none)."""
        raise NotImplementedError

    # -- creation ----------------------------------------------------------
    def import_rootfs(self, tar_path: str, ref: str, *, created_by: str = "") -> Image:
        """Import a root filesystem tar as a one-layer image and tag it ``ref``."""
        raise NotImplementedError

    def commit_layer(
        self,
        base: Image,
        upper_dir: str,
        ref: str | None,
        *,
        config: ImageConfig | None = None,
        history: HistoryEntry | None = None,
        idmap: IdMap | None = None,
    ) -> Image:
        """New image = ``base`` + a layer made from overlay ``upper_dir`` (ids unshifted via ``idmap``)."""
        raise NotImplementedError

    def tag(self, source: str, target: str) -> Image:
        raise NotImplementedError

    def remove(self, ref: str, *, force: bool = False, in_use: Sequence[str] = ()) -> list[str]:
        """Untag ``ref``; delete the image when no tag is left. Returns lines like Docker's
        ``Untagged: ...`` / ``Deleted: sha256:...``. ``in_use`` holds image ids that
        containers use: Conflict unless ``force``."""
        raise NotImplementedError

    # -- archives ----------------------------------------------------------
    def save(self, ref: str, out_path: str) -> None:
        """Write an OCI archive (tar of an image layout) that skopeo and umoci accept."""
        raise NotImplementedError

    def load(self, in_path: str) -> list[Image]:
        """Load every image of an OCI archive; verify every digest."""
        raise NotImplementedError

    # -- runtime hand-off ----------------------------------------------------
    def rootfs_mount(self, image: Image, idmap: IdMap | None, upper: str, work: str) -> Mount:
        """Unpack (once) the image's layers for ``idmap`` and return the overlay ``Mount``
        with ``upper``/``work`` as the writable layer."""
        raise NotImplementedError

    def prune_snapshots(self) -> int:
        """Remove snapshots no image needs; return how many."""
        raise NotImplementedError
