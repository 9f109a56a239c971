"""OCI archives: write one image as a tar of an OCI image layout; read and verify one.

``write_archive`` streams blobs from the content store into a tar written
next to the destination and renamed into place. ``read_archive`` accepts a
tar (``oci-archive``) or a layout directory, never extracts it to disk, and
copies every referenced blob into the content store only after *all* of them
were verified (digest and size), so a bad archive leaves nothing behind.

Not here: tags and image records (``store``), JSON shapes (``manifest``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..errors import InvalidArgument, NotFound
from ..model import Descriptor, ImageRef
from .content import ContentStore, Ingest
from .manifest import (
    CONTAINERD_NAME,
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER,
    MEDIA_MANIFEST,
    REF_NAME,
    canonical_json,
    descriptor_from_json,
    parse_manifest,
)
from .reference import parse_reference

__all__ = ["LoadedImage", "read_archive", "write_archive"]

_MAX_JSON = 16 * 1024 * 1024


@dataclass(frozen=True)
class LoadedImage:
    manifest_digest: str
    config_digest: str
    created: str
    size: int
    ref: ImageRef


# -- writing -------------------------------------------------------------------


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def write_archive(
    content: ContentStore, out_path: str, index: Mapping[str, Any], blobs: Sequence[str]
) -> None:
    """Write an OCI archive holding ``index`` and ``blobs`` (digests) to ``out_path`` atomically."""
    out_path = os.path.abspath(out_path)
    if os.path.isdir(out_path):
        raise InvalidArgument(f"{out_path} is a directory", "give a file name for the archive")
    directory = os.path.dirname(out_path)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".paas-save-")
    except (FileNotFoundError, NotADirectoryError) as err:
        raise InvalidArgument(f"cannot write {out_path}: {directory} is not a directory",
                              "create the directory first, or give -o a path in one") from err
    try:
        with os.fdopen(fd, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
                _add_bytes(tar, "index.json", canonical_json(dict(index)))
                _add_dir(tar, "blobs")
                _add_dir(tar, "blobs/sha256")
                for digest in dict.fromkeys(blobs):
                    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":", 1)[1])
                    info.size, info.mode, info.mtime = content.size(digest), 0o644, 0
                    with content.open(digest) as blob:
                        tar.addfile(info, blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- reading -------------------------------------------------------------------


class _Source:
    """Files of an OCI layout, from a tar or a directory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if not os.path.isdir(path):
            try:
                self._tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed in close())
            except (OSError, tarfile.TarError) as err:
                raise InvalidArgument(
                    f"cannot read {path}: {err}",
                    "give an OCI archive made by 'paas image:save' or skopeo",
                ) from err
            for m in self._tar.getmembers():
                if m.isfile():
                    self._members[os.path.normpath(m.name.lstrip("/"))] = m

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        if self._tar is None:
            full = os.path.join(self.path, name)
            if not os.path.isfile(full) or os.path.islink(full):
                raise self._missing(name)
            with open(full, "rb") as fh:
                yield fh
            return
        m = self._members.get(name)
        f = self._tar.extractfile(m) if m is not None else None
        if f is None:
            raise self._missing(name)
        with f:
            yield f

    def _missing(self, name: str) -> InvalidArgument:
        return InvalidArgument(f"{self.path} is not a complete OCI image layout: {name} is missing")

    def json(self, name: str) -> Any:
        with self.open(name) as f:
            data = f.read(_MAX_JSON + 1)
        return _loads(data, f"{name} in {self.path}")


def _loads(data: bytes, what: str) -> Any:
    if len(data) > _MAX_JSON:
        raise InvalidArgument(f"{what} is too large to be image metadata")
    try:
        return json.loads(data)
    except ValueError as err:
        raise InvalidArgument(f"{what} is not valid JSON: {err}") from err


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


class _Reader:
    """Stages verified blobs as ingests; ``commit_all`` moves them into the store."""

    def __init__(self, src: _Source, content: ContentStore, stack: contextlib.ExitStack) -> None:
        self.src, self.content, self.stack = src, content, stack
        self.staged: dict[str, Ingest] = {}
        self.small: dict[str, bytes] = {}

    def stage(self, d: Descriptor) -> None:
        """Copy and verify one blob (even one the store has: the archive must be intact)."""
        if d.digest in self.staged:
            return
        w = self.stack.enter_context(self.content.ingest())
        with self.src.open(_blob_name(d.digest)) as f:
            while chunk := f.read(1 << 20):
                w.write(chunk)
        got = w.finish()
        if got != d.digest or w.size != d.size:
            raise InvalidArgument(
                f"blob {d.digest} in {self.src.path} is corrupt (got {got}, {w.size} bytes)",
                "the archive was damaged or changed; export it again",
            )
        self.staged[d.digest] = w

    def read_json(self, d: Descriptor, what: str) -> Any:
        """Stage a small blob and return its parsed JSON."""
        self.stage(d)
        with open(self.staged[d.digest].tmp_path, "rb") as f:
            return _loads(f.read(_MAX_JSON + 1), f"{what} {d.digest}")

    def commit_all(self) -> None:
        for digest, w in self.staged.items():
            if self.content.has(digest):
                w.discard()
            else:
                w.commit(digest)


def _name_of(d: Descriptor, where: str) -> ImageRef:
    ann = dict(d.annotations)
    text = ann.get(CONTAINERD_NAME) or ann.get(REF_NAME)
    if not text:
        raise InvalidArgument(
            f"image {d.digest[:19]} in {where} has no name (no {CONTAINERD_NAME} or {REF_NAME} annotation)",
            "tag it before saving, e.g. 'skopeo copy ... oci-archive:FILE:NAME:TAG'",
        )
    try:
        ref = parse_reference(text)
    except InvalidArgument as err:
        raise InvalidArgument(
            f"image {d.digest[:19]} in {where} has an invalid name {text!r}: {err.message}",
            "re-export it with a NAME:TAG name",
        ) from err
    if ref.digest:
        raise InvalidArgument(
            f"image {d.digest[:19]} in {where} is named by digest ({text})", "name it NAME:TAG"
        )
    return ref


def _load_one(r: _Reader, d: Descriptor) -> LoadedImage:
    where = r.src.path
    if d.media_type != MEDIA_MANIFEST:
        raise InvalidArgument(
            f"{where}: unsupported manifest type {d.media_type!r}",
            f"only {MEDIA_MANIFEST} is supported",
        )
    ref = _name_of(d, where)
    r.stage(d)
    with open(r.staged[d.digest].tmp_path, "rb") as f:
        config_desc, layers = parse_manifest(f.read(_MAX_JSON + 1))
    if config_desc.media_type != MEDIA_CONFIG:
        raise InvalidArgument(f"{where}: unsupported config type {config_desc.media_type!r}")
    for layer in layers:
        if layer.media_type != MEDIA_LAYER:
            raise InvalidArgument(
                f"{where}: layer {layer.digest[:19]} has unsupported type {layer.media_type!r}",
                "only uncompressed layers are supported; re-export without compression",
            )
    config = r.read_json(config_desc, "config")
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if diff_ids != [layer.digest for layer in layers]:
        raise InvalidArgument(
            f"{where}: the config's rootfs.diff_ids do not match the manifest's layers"
        )
    for layer in layers:
        r.stage(layer)
    return LoadedImage(
        manifest_digest=d.digest,
        config_digest=config_desc.digest,
        created=str(config.get("created") or ""),
        size=sum(layer.size for layer in layers),
        ref=ref,
    )


def read_archive(path: str, content: ContentStore) -> list[LoadedImage]:
    """Verify every image of the archive at ``path`` and copy its blobs into ``content``."""

    if not os.path.exists(path):
        raise NotFound(f"no such file: {path}", "give the path of an OCI archive")
    src = _Source(path)
    try:
        layout = src.json("oci-layout")
        if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
            raise InvalidArgument(f"{path}: unsupported oci-layout {layout!r}")
        index = src.json("index.json")
        if not isinstance(index, dict) or index.get("mediaType", MEDIA_INDEX) != MEDIA_INDEX:
            raise InvalidArgument(f"{path}: index.json is not an OCI image index")
        descs = [descriptor_from_json(m) for m in index.get("manifests") or []]
        if not descs:
            raise InvalidArgument(f"{path} holds no images")
        with contextlib.ExitStack() as stack:
            reader = _Reader(src, content, stack)
            loaded = [_load_one(reader, d) for d in descs]
            reader.commit_all()
        return loaded
    finally:
        src.close()
