"""ImageStore: the one entry point of the image stage.

Holds an OCI image layout under ``ctx.paths.layout`` (blobs by digest,
``index.json`` kept in sync with the tags table) and unpacked layers as
snapshots keyed by ChainID: one unshifted tree seen through each id range's
idmapped view (``views``), or one id-shifted tree per mapping where the kernel
refuses idmapped mounts. Tags live in SQLite.
Image ID = config digest (like Docker); layers are uncompressed, so a layer's
digest is its DiffID.

Not here: running containers (runtime), building images (builder), JSON
shapes (``manifest``), blob files (``content``), unpacking (``snapshot``),
archives (``archive``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime

from ..config import Context
from ..errors import Conflict, InvalidArgument, NotFound, PaasError
from ..model import Descriptor, HistoryEntry, IdMap, Image, ImageConfig, ImageRef, Mount
from ..state import transaction
from .catalog import Catalog, ImageRow
from .content import ContentStore
from .manifest import (
    CONTAINERD_NAME,
    DEFAULT_PATH,
    MEDIA_CONFIG,
    MEDIA_LAYER,
    MEDIA_MANIFEST,
    REF_NAME,
    build_index,
    build_manifest,
    canonical_json,
    chain_ids,
    config_from_json,
    extend_config,
    history_from_json,
    new_config,
    parse_manifest,
)
from .reference import parse_reference
from .resolve import has_file, resolve
from .snapshot import Snapshotter, idmap_key
from .views import BASE_KEY, IDENTITY, Views

__all__ = ["ImageStore", "rfc3339", "source_date_epoch"]

# aliases: inside ImageStore, ``list`` is the method
Lines = list[str]
Images = list[Image]
NamedImages = list[tuple[ImageRef, Image]]


def source_date_epoch(env: Mapping[str, str]) -> int | None:
    value = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    if not re.fullmatch(r"\d{1,12}", value):
        raise InvalidArgument(
            f"SOURCE_DATE_EPOCH={value!r} is not a Unix timestamp",
            "set it to whole seconds since 1970",
        )
    return int(value)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ImageStore:
    def __init__(
        self, ctx: Context, conn: sqlite3.Connection, env: Mapping[str, str] | None = None
    ) -> None:
        self.ctx = ctx
        self.conn = conn
        self.env = os.environ if env is None else env
        self.content = ContentStore(ctx.paths.layout, ctx.paths.tmp)
        self.catalog = Catalog(conn)
        self.snapshots = Snapshotter(ctx.paths.snapshots, conn)
        self.views = Views(ctx.paths.snapshots, enabled=ctx.idmapped != "off")
        self.content.init()

    # -- helpers -----------------------------------------------------------
    def _epoch(self) -> int | None:
        return source_date_epoch(self.env)

    def _now(self) -> str:
        sde = self._epoch()
        return rfc3339(sde if sde is not None else time.time())

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Store-wide lock for changes to which blobs are referenced (and index.json)."""
        fd = os.open(os.path.join(self.ctx.paths.tmp, "store.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _manifest(self, manifest_digest: str) -> tuple[Descriptor, tuple[Descriptor, ...]]:
        return parse_manifest(self.content.read(manifest_digest))

    def _image(self, row: ImageRow) -> Image:
        _config_desc, layer_descs = self._manifest(row.manifest_digest)
        doc = json.loads(self.content.read(row.config_digest))
        diff_ids = tuple((doc.get("rootfs") or {}).get("diff_ids") or ())
        refs = tuple(ImageRef(n, t) for n, t in self.catalog.tags_of(row.manifest_digest))
        return Image(
            id=row.config_digest,
            manifest_digest=row.manifest_digest,
            created=str(doc.get("created") or row.created),
            size=sum(d.size for d in layer_descs),
            config=config_from_json(doc.get("config")),
            diff_ids=diff_ids,
            chain_ids=chain_ids(diff_ids),
            history=history_from_json(doc.get("history")),
            refs=refs,
            architecture=str(doc.get("architecture") or ""),
            os=str(doc.get("os") or ""),
        )

    def _sync_index(self) -> None:
        """Rewrite index.json from the tags table (caller holds ``_lock``)."""
        entries = []
        tagged = set()
        for name, tag, digest in self.catalog.all_tags():
            tagged.add(digest)
            desc = Descriptor(MEDIA_MANIFEST, digest, self.content.size(digest))
            entries.append((desc, {REF_NAME: f"{name}:{tag}"}))
        for row in self.catalog.images():
            if row.manifest_digest not in tagged:
                desc = Descriptor(
                    MEDIA_MANIFEST, row.manifest_digest, self.content.size(row.manifest_digest)
                )
                entries.append((desc, {}))
        self.content.write_index(build_index(entries))

    @staticmethod
    def target_ref(ref: str) -> ImageRef:
        r = parse_reference(ref)
        if r.digest:
            raise InvalidArgument(
                f"cannot tag with a digest reference: {ref}", "give NAME[:TAG] as the new name"
            )
        return r

    # -- queries -----------------------------------------------------------
    def get(self, ref: str) -> Image:
        """Resolve NAME[:TAG], NAME@DIGEST, or a (prefix of an) image id; NotFound otherwise."""
        row, _tag = resolve(self.catalog, ref)
        return self._image(row)

    def by_manifest(self, manifest_digest: str) -> Image:
        row = self.catalog.image(manifest_digest)
        if row is None:
            raise NotFound(f"no image with manifest {manifest_digest}")
        return self._image(row)

    def list(self) -> Images:
        """Every image, with its tags in ``refs`` (an untagged image has none)."""
        return [self._image(row) for row in self.catalog.images()]

    # -- creation ----------------------------------------------------------
    def _write_image(
        self, config_doc: dict[str, object], layer_descs: Sequence[Descriptor], ref: ImageRef | None
    ) -> Image:
        """Store config + manifest blobs and record the image (and tag) in one transaction."""
        config_bytes = canonical_json(config_doc)
        config_desc = Descriptor(
            MEDIA_CONFIG, self.content.write_bytes(config_bytes), len(config_bytes)
        )
        manifest_bytes = canonical_json(build_manifest(config_desc, layer_descs))
        manifest_digest = self.content.write_bytes(manifest_bytes)
        row = ImageRow(
            manifest_digest,
            config_desc.digest,
            str(config_doc.get("created")),
            sum(d.size for d in layer_descs),
        )
        with self._lock():
            for d in (*layer_descs, config_desc):
                if not self.content.has(d.digest):  # removed by a concurrent image:rm
                    raise Conflict(
                        f"blob {d.digest} vanished while the image was written", "try again"
                    )
            with transaction(self.conn):
                self.catalog.add_image(row)
                if ref is not None:
                    self.catalog.set_tag(ref.name, ref.tag, manifest_digest)
            self._sync_index()
        return self._image(row)

    def _write_layer(self, src_dir: str, idmap: IdMap | None, overlay_upper: bool) -> Descriptor:
        with self.content.ingest() as w:
            from . import layer as layers  # heavy (tarfile): only when writing layers

            diff_id = layers.write_layer(
                src_dir,
                w.as_binary(),
                idmap=idmap,
                source_date_epoch=self._epoch(),
                overlay_upper=overlay_upper,
            )
            digest = w.commit()
            size = w.size
        if diff_id != digest:
            raise PaasError(
                f"layer writer reported {diff_id} but wrote {digest}", "this is a bug in paas"
            )
        return Descriptor(MEDIA_LAYER, digest, size)

    def import_rootfs(self, tar_path: str, ref: str, *, created_by: str = "") -> Image:
        """Import a root filesystem tar as a one-layer image and tag it ``ref``."""
        target = self.target_ref(ref)
        if not os.path.isfile(tar_path):
            raise NotFound(f"no such file: {tar_path}", "give the path of a root filesystem tar")
        # unpacked as the default range's containers will see it: through views, once
        # for all ranges; else shifted for the default range
        unpack_map = IDENTITY if self.views.refused is None else self.ctx.idmap
        key = BASE_KEY if self.views.refused is None else idmap_key(self.ctx.idmap)
        staging = self.snapshots.staging(key)
        try:
            fs = os.path.join(staging, "fs")
            with open(tar_path, "rb") as f:
                from . import layer as layers

                layers.extract_layer(f, fs, idmap=unpack_map)
            layer = self._write_layer(fs, unpack_map, overlay_upper=False)
            now = self._now()
            cfg = ImageConfig(
                cmd=("bash",) if has_file(fs, "/bin/bash") else ("sh",), env=(DEFAULT_PATH,)
            )
            history = HistoryEntry(now, created_by or f"import {os.path.basename(tar_path)}")
            doc = new_config(created=now, cfg=cfg, diff_ids=[layer.digest], history=[history])
            with self.snapshots.lock(key, layer.digest):
                image = self._write_image(doc, [layer], target)
                if self.snapshots.lookup(key, layer.digest) is None:
                    self.snapshots.commit(staging, key, layer.digest, None, layer.size)
            return image
        finally:
            if os.path.exists(staging):
                self.snapshots.discard(staging)

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
        """New image = ``base`` + a layer made from overlay ``upper_dir`` (ids unshifted via ``idmap``).

        The layer is unpacked as a snapshot only when first mounted."""
        target = self.target_ref(ref) if ref is not None else None
        layer = self._write_layer(upper_dir, idmap, overlay_upper=True)
        now = self._now()
        h = history or HistoryEntry(now, "")
        h = HistoryEntry(h.created or now, h.created_by, False, h.comment)
        base_doc = json.loads(self.content.read(base.id))
        doc = extend_config(base_doc, created=now, diff_id=layer.digest, history=h, cfg=config)
        _cfg, base_layers = self._manifest(base.manifest_digest)
        return self._write_image(doc, [*base_layers, layer], target)

    def derive(
        self,
        base: Image | None,
        *,
        config: ImageConfig,
        history: HistoryEntry,
        layer_dir: str | None = None,
        idmap: IdMap | None = None,
        adopt: bool = False,
        ref: str | None = None,
    ) -> Image:
        """A new image: ``base`` (None: an empty image, ``FROM scratch``) with ``config``,
        plus one layer made from the overlay upper dir ``layer_dir`` (ids in ``idmap``),
        or an empty-layer history entry without one.

        ``adopt``: ``layer_dir`` is renamed into the snapshots as the new ChainID's
        tree (it is one already), so the next build step mounts it without unpacking
        the layer again; it stays where it is if it cannot be moved (another filesystem)."""
        target = self.target_ref(ref) if ref is not None else None
        now = self._now()
        h = HistoryEntry(history.created or now, history.created_by, False, history.comment)
        base_doc = (json.loads(self.content.read(base.id)) if base is not None
                    else new_config(created=now, cfg=config))
        base_layers: tuple[Descriptor, ...] = ()
        if base is not None:
            _cfg, base_layers = self._manifest(base.manifest_digest)
        if layer_dir is None:
            doc = extend_config(base_doc, created=now, diff_id=None, history=h, cfg=config)
            return self._write_image(doc, base_layers, target)
        layer = self._write_layer(layer_dir, idmap, overlay_upper=True)
        doc = extend_config(base_doc, created=now, diff_id=layer.digest, history=h, cfg=config)
        chains = chain_ids((*(base.diff_ids if base is not None else ()), layer.digest))
        key = idmap_key(idmap)
        with self.snapshots.lock(key, chains[-1]):
            image = self._write_image(doc, [*base_layers, layer], target)
            if adopt and self.snapshots.lookup(key, chains[-1]) is None:
                self._adopt(layer_dir, key, chains, layer.size)
        return image

    def _adopt(self, layer_dir: str, key: str, chains: Sequence[str], size: int) -> None:
        parent = None
        if len(chains) > 1:  # under a base tree too: views stack both (ensure_viewed)
            parent = self.snapshots.lookup(key, chains[-2])
            if parent is None and key != "host" and self.views.refused is None:
                parent = self.snapshots.lookup(BASE_KEY, chains[-2])
        if len(chains) > 1 and parent is None:
            return  # the parent chain is not unpacked for this id map: unpack on first use
        staging = self.snapshots.staging(key)
        fs = os.path.join(staging, "fs")
        try:
            os.rmdir(fs)
            os.rename(layer_dir, fs)
        except OSError:
            self.snapshots.discard(staging)
            return
        self.snapshots.commit(staging, key, chains[-1], parent, size)

    def tag(self, source: str, target: str) -> Image:
        row, _tag = resolve(self.catalog, source)
        r = self.target_ref(target)
        with self._lock():
            with transaction(self.conn):
                self.catalog.set_tag(r.name, r.tag, row.manifest_digest)
            self._sync_index()
        return self._image(row)

    # -- removal -------------------------------------------------------------
    def remove(
        self, ref: str, *, force: bool = False, in_use: Sequence[str] | Mapping[str, str] = ()
    ) -> Lines:
        """Untag ``ref``; delete the image when no tag is left. Returns lines like Docker's
        ``Untagged: ...`` / ``Deleted: sha256:...``. ``in_use`` holds image ids that
        containers use (or maps them to a container name): Conflict unless ``force``;
        forced, an image in use is untagged but kept."""
        row, via_tag = resolve(self.catalog, ref)
        users = dict(in_use) if isinstance(in_use, Mapping) else {i: "" for i in in_use}
        tags = self.catalog.tags_of(row.manifest_digest)
        if via_tag is not None and len(tags) > 1:
            return self._untag_and_delete(row, [via_tag], delete=False)
        short = row.config_digest.split(":", 1)[1][:12]
        if via_tag is None and len(tags) > 1 and not force:
            raise Conflict(
                f"unable to delete {short} (must be forced): image is referenced by several tags",
                "use -f, or remove the tags one by one",
            )
        used = row.config_digest in users
        if used and not force:
            who = users[row.config_digest]
            what = ":".join(via_tag) if via_tag else short
            raise Conflict(
                f"unable to remove {what}: image is being used by container {who or '(stopped or running)'}",
                "remove the container first (paas container:rm), or use -f to untag it anyway",
            )
        return self._untag_and_delete(row, tags, delete=not used)

    def _untag_and_delete(
        self, row: ImageRow, untag: Sequence[tuple[str, str]], delete: bool
    ) -> Lines:
        lines = [f"Untagged: {n}:{t}" for n, t in untag]
        doomed: Lines = []
        with self._lock():
            with transaction(self.conn):
                for n, t in untag:
                    self.catalog.delete_tag(n, t)
                if delete:
                    self.catalog.delete_image(row.manifest_digest)
                    doomed = self._unreferenced(row)
            for digest in doomed:
                self.content.delete(digest)
            self._sync_index()
        if delete:
            lines.append(f"Deleted: {row.config_digest}")
            self.prune_snapshots()
        return lines

    def _unreferenced(self, gone: ImageRow) -> Lines:
        """Blobs of ``gone`` that no remaining image refers to (inside the transaction)."""
        _c, gone_layers = self._manifest(gone.manifest_digest)
        kept: set[str] = set()
        for other in self.catalog.images():
            c, ls = self._manifest(other.manifest_digest)
            kept.update([other.manifest_digest, c.digest, *(d.digest for d in ls)])
        candidates = [gone.manifest_digest, gone.config_digest, *(d.digest for d in gone_layers)]
        return [d for d in dict.fromkeys(candidates) if d not in kept]

    # -- archives ----------------------------------------------------------
    def save(self, ref: str, out_path: str) -> None:
        """Write an OCI archive (tar of an image layout) that skopeo and umoci accept."""
        row, via_tag = resolve(self.catalog, ref)
        tags = self.catalog.tags_of(row.manifest_digest)
        name_tag = via_tag or (tags[0] if tags else None)
        ann = (
            {REF_NAME: name_tag[1], CONTAINERD_NAME: f"{name_tag[0]}:{name_tag[1]}"}
            if name_tag
            else {}
        )
        config_desc, layer_descs = self._manifest(row.manifest_digest)
        desc = Descriptor(
            MEDIA_MANIFEST, row.manifest_digest, self.content.size(row.manifest_digest)
        )
        index = build_index([(desc, ann)])
        blobs = [row.manifest_digest, config_desc.digest, *(d.digest for d in layer_descs)]
        from .archive import write_archive

        write_archive(self.content, out_path, index, blobs)

    def load(self, in_path: str) -> Images:
        """Load every image of an OCI archive (or layout dir); verify every digest."""
        return [img for _ref, img in self.load_named(in_path)]

    def load_named(self, in_path: str) -> NamedImages:
        """Like ``load``, with the name each image was loaded under."""
        from .archive import read_archive

        loaded = read_archive(in_path, self.content)
        rows = [ImageRow(x.manifest_digest, x.config_digest, x.created, x.size) for x in loaded]
        with self._lock():
            with transaction(self.conn):
                for x, row in zip(loaded, rows):
                    self.catalog.add_image(row)
                    self.catalog.set_tag(x.ref.name, x.ref.tag, x.manifest_digest)
            self._sync_index()
        return [(x.ref, self._image(row)) for x, row in zip(loaded, rows)]

    # -- runtime hand-off ----------------------------------------------------
    def rootfs_mount(self, image: Image | None, idmap: IdMap | None, upper: str, work: str) -> Mount:
        """Unpack (once) the image's layers for ``idmap`` and return the overlay ``Mount``
        with ``upper``/``work`` as the writable layer (None: an empty root, ``scratch``)."""
        view = self.views.get(idmap) if idmap is not None else None
        if idmap is not None and view is not None:
            lowers = [] if image is None else self.snapshots.ensure_viewed(
                image.chain_ids, image.diff_ids, self.content.open, idmap, view)
            return self.snapshots.mount_lowers(lowers, view, upper, work)
        if image is None:
            return self.snapshots.mount(idmap_key(idmap), [], upper, work)
        ids = self.snapshots.ensure(image.chain_ids, image.diff_ids, self.content.open, idmap)
        return self.snapshots.mount(idmap_key(idmap), ids, upper, work)

    def prune_snapshots(self) -> int:
        """Remove snapshots no image needs; return how many."""
        self.snapshots.remove_stale_staging()
        return self.snapshots.remove_unneeded(self._needed_chains)

    def _needed_chains(self) -> set[str]:
        needed: set[str] = set()
        for row in self.catalog.images():
            doc = json.loads(self.content.read(row.config_digest))
            needed.update(chain_ids((doc.get("rootfs") or {}).get("diff_ids") or ()))
        return needed
