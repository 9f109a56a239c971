"""Image archives flattened to file trees, and the diff of a built image against its base.

Reads both archive formats the conformance tests meet: an OCI image layout in a tar
(``paas image:save``: ``index.json`` -> manifest -> config and layers) and Docker's
``docker save`` archive (``manifest.json`` with ``Config`` and ``Layers`` paths).
Layers are applied in order with the OCI whiteout rules (``.wh.NAME`` deletes NAME,
``.wh..wh..opq`` empties its directory of what lower layers put there).

A tree maps a path (``/etc/passwd``) to an entry: ``type`` (file, dir, symlink, hardlink
resolved to file, fifo, char, block), ``mode`` (permission bits with setuid, setgid,
sticky; not for symlinks), ``uid``, ``gid``, ``target`` (symlinks), ``sha256`` (files),
``text`` (the content of small UTF-8 files, for readable diffs).
Mtimes are never recorded: Docker and paas stamp them differently by design.

Not here: building images or talking to an engine (the tests and ``make_expected.py``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_FIELDS",
    "IGNORED",
    "Entry",
    "Tree",
    "config_fields",
    "describe_diff",
    "diff_trees",
    "read_archive",
]

Entry = dict[str, Any]
Tree = dict[str, Entry]

# Image config fields compared with Docker (config.<Field> of the image config JSON).
CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Labels",
                 "Healthcheck", "StopSignal", "Volumes", "Shell")

# Paths whose presence or content in a diff says nothing about the builder. Keep short;
# every entry says why.
IGNORED: dict[str, str] = {
    # The base rootfs has no /etc/hosts. paas bind-mounts the engine's hosts file into
    # RUN containers on an empty file it creates in the container's upper dir, so that
    # mount point ends up in RUN layers; Docker creates it in the container's init layer,
    # which is never committed. An empty placeholder that every container gets a real
    # hosts file mounted over; not build output.
    "/etc/hosts": "mount point of the RUN container's hosts file (engine plumbing)",
}

_TEXT_MAX = 200

_TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.FIFOTYPE: "fifo",
    tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block",
}


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    path = posixpath.normpath("/" + name)
    return "/" if path in ("/", "//", "/.") else path


class _Archive:
    """The members of an image archive tar, by name."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.names = {m.name.removeprefix("./"): m for m in self.tar.getmembers()}

    def read(self, name: str) -> bytes:
        member = self.names[name.removeprefix("./")]
        f = self.tar.extractfile(member)
        assert f is not None, name
        return f.read()

    def json(self, name: str) -> Any:
        return json.loads(self.read(name))

    def blob(self, digest: str) -> bytes:
        algo, _, hexd = digest.partition(":")
        return self.read(f"blobs/{algo}/{hexd}")


def read_archive(path: Path) -> tuple[Tree, dict[str, Any]]:
    """The flattened tree and the image config JSON of the single image in ``path``."""
    with tarfile.open(path) as tar:
        ar = _Archive(tar)
        if "index.json" in ar.names:
            index = ar.json("index.json")
            manifests = index["manifests"]
            assert len(manifests) == 1, f"{path}: expected one image, got {len(manifests)}"
            manifest = json.loads(ar.blob(manifests[0]["digest"]))
            if "manifests" in manifest:  # a nested index (not written by paas, but legal)
                manifest = json.loads(ar.blob(manifest["manifests"][0]["digest"]))
            config = json.loads(ar.blob(manifest["config"]["digest"]))
            layers = [ar.blob(layer["digest"]) for layer in manifest["layers"]]
        else:
            (manifest,) = ar.json("manifest.json")
            config = ar.json(manifest["Config"])
            layers = [ar.read(name) for name in manifest["Layers"]]
    tree: Tree = {"/": {"type": "dir", "mode": 0o755, "uid": 0, "gid": 0}}
    for blob in layers:
        if blob[:2] == b"\x1f\x8b":
            blob = gzip.decompress(blob)
        _apply_layer(tree, blob)
    return tree, config


def _apply_layer(tree: Tree, blob: bytes) -> None:
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        members = tar.getmembers()
        # opaque markers and whiteouts act on lower layers only: collect them first
        for m in members:
            path = _norm(m.name)
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base == ".wh..wh..opq":
                prefix = parent.rstrip("/") + "/"
                for p in [p for p in tree if p.startswith(prefix)]:
                    del tree[p]
            elif base.startswith(".wh."):
                gone = posixpath.join(parent, base[4:])
                for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                    del tree[p]
        for m in members:
            path = _norm(m.name)
            if posixpath.basename(path).startswith(".wh."):
                continue
            old = tree.get(path)
            if old is not None and not (old["type"] == "dir" and m.isdir()):
                # a non-dir replacing anything (or anything replacing a non-dir)
                for p in [p for p in tree if p.startswith(path + "/")]:
                    del tree[p]
            tree[path] = _entry(tar, m, tree)


def _entry(tar: tarfile.TarFile, m: tarfile.TarInfo, tree: Tree) -> Entry:
    if m.islnk():
        target = tree.get(_norm(m.linkname))
        assert target is not None, f"hardlink {m.name} -> {m.linkname}: target not in layer"
        return dict(target)
    kind = _TYPES.get(m.type)
    assert kind is not None, f"{m.name}: unsupported tar type {m.type!r}"
    entry: Entry = {"type": kind, "uid": m.uid, "gid": m.gid}
    if kind != "symlink":
        entry["mode"] = m.mode & 0o7777
    if kind == "symlink":
        entry["target"] = m.linkname
    elif kind == "file":
        f = tar.extractfile(m)
        assert f is not None
        data = f.read()
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        if len(data) <= _TEXT_MAX:
            try:
                entry["text"] = data.decode()  # readable expectations and failures
            except UnicodeDecodeError:
                pass
    elif kind in ("char", "block"):
        entry["dev"] = f"{m.devmajor}:{m.devminor}"
    return entry


def diff_trees(base: Tree, image: Tree) -> dict[str, Entry | None]:
    """Paths added or changed in ``image`` (their entry) or removed from it (None),
    except the ``IGNORED`` ones."""
    out: dict[str, Entry | None] = {}
    for path in sorted(set(base) | set(image)):
        if path in IGNORED:
            continue
        if path not in image:
            out[path] = None
        elif base.get(path) != image[path]:
            out[path] = image[path]
    return out


def config_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The compared part of an image config JSON. Unset, null, "" and {} are one value
    (Docker writes ``"Labels": null``, others omit it); an empty list is kept apart
    from null (``CMD []`` is explicit)."""
    inner = config.get("config") or {}
    out: dict[str, Any] = {}
    for field in CONFIG_FIELDS:
        value = inner.get(field)
        out[field] = value if value not in (None, "", {}) else None
    return out


def describe_diff(label_a: str, a: dict[str, Any], label_b: str, b: dict[str, Any]) -> str:
    """One line per key whose value differs between ``a`` and ``b``."""
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            lines.append(f"  {key}:\n    {label_a}: {a.get(key, '<absent>')}\n"
                         f"    {label_b}: {b.get(key, '<absent>')}")
    return "\n".join(lines)
