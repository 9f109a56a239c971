"""Pure builders and parsers for OCI image JSON: configs, manifests, index.json, ChainIDs.

Everything here is a function of its arguments (no I/O, no clock): JSON is
serialised canonically (sorted keys, compact separators, UTF-8) so the same
image always has the same digest.

Not here: storing blobs (``content``), unpacking layers (``snapshot``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import InvalidArgument
from ..model import Descriptor, Healthcheck, HistoryEntry, ImageConfig

__all__ = [
    "CONTAINERD_NAME",
    "DEFAULT_PATH",
    "MEDIA_CONFIG",
    "MEDIA_INDEX",
    "MEDIA_LAYER",
    "MEDIA_MANIFEST",
    "REF_NAME",
    "build_index",
    "build_manifest",
    "canonical_json",
    "chain_ids",
    "config_from_json",
    "config_to_json",
    "descriptor_from_json",
    "descriptor_json",
    "digest_bytes",
    "extend_config",
    "history_from_json",
    "history_to_json",
    "new_config",
    "parse_manifest",
    "validate_digest",
]

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: equal values give equal bytes (and digests)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>``; InvalidArgument otherwise."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidArgument(
            f"invalid digest: {digest!r}",
            "digests look like sha256: followed by 64 lowercase hex digits",
        )
    return digest


def chain_ids(diff_ids: Sequence[str]) -> tuple[str, ...]:
    """OCI ChainIDs: chain(L0) = diff0; chain(Ln) = sha256(chain(Ln-1) + " " + diff_n)."""
    out: list[str] = []
    for diff in diff_ids:
        out.append(diff if not out else digest_bytes(f"{out[-1]} {diff}".encode()))
    return tuple(out)


# -- config ------------------------------------------------------------------


def config_to_json(cfg: ImageConfig) -> dict[str, Any]:
    """The OCI ``config`` object; empty fields are left out like Docker does."""
    out: dict[str, Any] = {}
    if cfg.entrypoint:
        out["Entrypoint"] = list(cfg.entrypoint)
    if cfg.cmd is not None:
        out["Cmd"] = list(cfg.cmd)
    if cfg.env:
        out["Env"] = list(cfg.env)
    if cfg.working_dir:
        out["WorkingDir"] = cfg.working_dir
    if cfg.user:
        out["User"] = cfg.user
    if cfg.exposed_ports:
        out["ExposedPorts"] = {p: {} for p in cfg.exposed_ports}
    if cfg.labels:
        out["Labels"] = dict(cfg.labels)
    if cfg.stop_signal:
        out["StopSignal"] = cfg.stop_signal
    if cfg.volumes:
        out["Volumes"] = {v: {} for v in cfg.volumes}
    if cfg.healthcheck is not None:
        out["Healthcheck"] = _healthcheck_to_json(cfg.healthcheck)
    if cfg.shell:
        out["Shell"] = list(cfg.shell)
    if cfg.on_build:
        out["OnBuild"] = list(cfg.on_build)
    return out


_HEALTH_FIELDS = (("Interval", "interval"), ("Timeout", "timeout"),
                  ("StartPeriod", "start_period"), ("StartInterval", "start_interval"),
                  ("Retries", "retries"))


def _healthcheck_to_json(h: Healthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {"Test": list(h.test)}
    for key, attr in _HEALTH_FIELDS:
        if getattr(h, attr):
            out[key] = getattr(h, attr)
    return out


def _healthcheck_from_json(obj: Any) -> Healthcheck | None:
    if not isinstance(obj, Mapping):
        return None
    nums = {}
    for key, attr in _HEALTH_FIELDS:
        value = obj.get(key) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"image config field Healthcheck.{key} is not a duration")
        nums[attr] = value
    return Healthcheck(test=_strs(obj.get("Test"), "Healthcheck.Test"), **nums)


def _strs(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"image config field {field} is not a list of strings")
    return tuple(value)


def config_from_json(obj: Mapping[str, Any] | None) -> ImageConfig:
    """Parse the OCI ``config`` object (missing or null fields become empty)."""
    obj = obj or {}
    ports = obj.get("ExposedPorts") or {}
    labels = obj.get("Labels") or {}
    return ImageConfig(
        entrypoint=_strs(obj.get("Entrypoint"), "Entrypoint"),
        cmd=_strs(obj["Cmd"], "Cmd") if obj.get("Cmd") is not None else None,
        env=_strs(obj.get("Env"), "Env"),
        working_dir=str(obj.get("WorkingDir") or ""),
        user=str(obj.get("User") or ""),
        exposed_ports=tuple(sorted(str(p) for p in ports)),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        stop_signal=str(obj.get("StopSignal") or ""),
        volumes=tuple(sorted(str(v) for v in obj.get("Volumes") or {})),
        healthcheck=_healthcheck_from_json(obj.get("Healthcheck")),
        shell=_strs(obj.get("Shell"), "Shell"),
        on_build=_strs(obj.get("OnBuild"), "OnBuild"),
    )


def history_to_json(h: HistoryEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"created": h.created, "created_by": h.created_by}
    if h.empty_layer:
        out["empty_layer"] = True
    if h.comment:
        out["comment"] = h.comment
    return out


def history_from_json(items: Iterable[Mapping[str, Any]] | None) -> tuple[HistoryEntry, ...]:
    return tuple(
        HistoryEntry(
            created=str(h.get("created") or ""),
            created_by=str(h.get("created_by") or ""),
            empty_layer=bool(h.get("empty_layer", False)),
            comment=str(h.get("comment") or ""),
        )
        for h in items or ()
    )


def new_config(
    *,
    created: str,
    cfg: ImageConfig,
    diff_ids: Sequence[str] = (),
    history: Sequence[HistoryEntry] = (),
    architecture: str = "amd64",
    os_name: str = "linux",
) -> dict[str, Any]:
    """A complete OCI image config document."""
    return {
        "architecture": architecture,
        "os": os_name,
        "created": created,
        "config": config_to_json(cfg),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [history_to_json(h) for h in history],
    }


def extend_config(
    base: Mapping[str, Any],
    *,
    created: str,
    diff_id: str | None,
    history: HistoryEntry,
    cfg: ImageConfig | None = None,
) -> dict[str, Any]:
    """``base`` plus one layer (or none: an empty-layer history entry); unknown fields kept."""
    doc = json.loads(canonical_json(base))
    doc["created"] = created
    if cfg is not None:
        doc["config"] = config_to_json(cfg)
    rootfs = doc.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    if diff_id is not None:
        rootfs.setdefault("diff_ids", []).append(diff_id)
    entry = (
        history
        if diff_id is not None
        else HistoryEntry(history.created, history.created_by, True, history.comment)
    )
    doc.setdefault("history", []).append(history_to_json(entry))
    return doc  # type: ignore[no-any-return]


# -- manifest / descriptors --------------------------------------------------


def descriptor_json(d: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
    if d.annotations:
        out["annotations"] = dict(d.annotations)
    return out


def descriptor_from_json(obj: Any) -> Descriptor:
    if not isinstance(obj, dict):
        raise InvalidArgument("malformed descriptor: not an object")
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument(f"malformed descriptor: bad size {size!r}")
    ann = obj.get("annotations") or {}
    if not isinstance(ann, dict):
        raise InvalidArgument("malformed descriptor: annotations is not an object",
                              "the image index or manifest is corrupt; export it again")
    return Descriptor(
        media_type=str(obj.get("mediaType") or ""),
        digest=validate_digest(obj.get("digest", "")),
        size=size,
        annotations=tuple(sorted((str(k), str(v)) for k, v in ann.items())),
    )


def build_manifest(config: Descriptor, layers: Sequence[Descriptor]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": descriptor_json(config),
        "layers": [descriptor_json(layer) for layer in layers],
    }


def parse_manifest(data: bytes) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    """(config, layers) of an OCI image manifest; InvalidArgument for anything else."""
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise InvalidArgument(f"manifest is not valid JSON: {err}") from err
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise InvalidArgument("manifest is not an OCI schemaVersion 2 manifest")
    if doc.get("mediaType", MEDIA_MANIFEST) != MEDIA_MANIFEST:
        raise InvalidArgument(
            f"unsupported manifest media type {doc.get('mediaType')!r}",
            f"only {MEDIA_MANIFEST} is supported",
        )
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidArgument("manifest has no layers list")
    return descriptor_from_json(doc.get("config")), tuple(descriptor_from_json(x) for x in layers)


def build_index(entries: Iterable[tuple[Descriptor, Mapping[str, str]]]) -> dict[str, Any]:
    """An OCI image index: one manifest descriptor per (descriptor, annotations) pair.

    Entries are sorted (by annotations, then digest) so the file is stable.
    """
    manifests = []
    for desc, ann in entries:
        d = descriptor_json(
            Descriptor(desc.media_type, desc.digest, desc.size, tuple(sorted(ann.items())))
        )
        manifests.append(d)
    manifests.sort(key=lambda m: (sorted(m.get("annotations", {}).items()), m["digest"]))
    return {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests}
