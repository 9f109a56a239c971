"""Pure builders of the image store: canonical JSON, ChainIDs, configs, manifests, index.json."""

from __future__ import annotations

import hashlib
import json

import pytest

from paas.errors import InvalidArgument
from paas.image.manifest import (
    CONTAINERD_NAME,
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER,
    MEDIA_MANIFEST,
    REF_NAME,
    build_index,
    build_manifest,
    canonical_json,
    chain_ids,
    config_from_json,
    config_to_json,
    digest_bytes,
    extend_config,
    history_from_json,
    new_config,
    parse_manifest,
)
from paas.model import Descriptor, HistoryEntry, ImageConfig

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def test_canonical_json_is_sorted_compact_and_stable() -> None:
    a = canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]})
    assert a == '{"a":[1,{"c":"é","d":2}],"b":1}'.encode()
    assert a == canonical_json(json.loads(a))


def test_chain_ids_follow_the_oci_formula() -> None:
    assert chain_ids([]) == ()
    assert chain_ids([D1]) == (D1,)
    c2 = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    c3 = "sha256:" + hashlib.sha256(f"{c2} {D3}".encode()).hexdigest()
    assert chain_ids([D1, D2, D3]) == (D1, c2, c3)
    # order matters
    assert chain_ids([D2, D1])[1] != c2


def test_config_round_trip_and_empty_fields_omitted() -> None:
    cfg = ImageConfig(
        entrypoint=("/bin/app",),
        cmd=("serve", "--port", "5000"),
        env=("PATH=/bin", "A=1"),
        working_dir="/app",
        user="1000:1000",
        exposed_ports=("5000/tcp",),
        labels=(("org.example", "x"),),
        stop_signal="SIGINT",
    )
    obj = config_to_json(cfg)
    assert obj["ExposedPorts"] == {"5000/tcp": {}}
    assert obj["Labels"] == {"org.example": "x"}
    assert config_from_json(obj) == cfg
    assert config_to_json(ImageConfig(cmd=("sh",))) == {"Cmd": ["sh"]}
    assert config_from_json(None) == ImageConfig()
    assert config_from_json({"Cmd": None, "Env": None}) == ImageConfig()


def test_config_from_json_rejects_malformed_lists() -> None:
    with pytest.raises(InvalidArgument):
        config_from_json({"Cmd": "bash -c x"})


def test_new_config_has_oci_shape() -> None:
    h = HistoryEntry("2024-01-01T00:00:00Z", "mmdebstrap --variant=minbase bookworm")
    doc = new_config(
        created="2024-01-01T00:00:00Z", cfg=ImageConfig(cmd=("bash",)), diff_ids=[D1], history=[h]
    )
    assert doc == {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["bash"]},
        "rootfs": {"type": "layers", "diff_ids": [D1]},
        "history": [
            {
                "created": "2024-01-01T00:00:00Z",
                "created_by": "mmdebstrap --variant=minbase bookworm",
            }
        ],
    }
    # same input, same digest
    assert digest_bytes(canonical_json(doc)) == digest_bytes(
        canonical_json(dict(reversed(doc.items())))
    )


def test_extend_config_appends_layer_and_history_keeps_unknown_fields() -> None:
    base = new_config(
        created="t0",
        cfg=ImageConfig(cmd=("bash",)),
        diff_ids=[D1],
        history=[HistoryEntry("t0", "a")],
    )
    base["author"] = "someone"
    out = extend_config(
        base, created="t1", diff_id=D2, history=HistoryEntry("t1", "b", comment="c")
    )
    assert out["rootfs"]["diff_ids"] == [D1, D2]
    assert out["history"][-1] == {"created": "t1", "created_by": "b", "comment": "c"}
    assert out["author"] == "someone" and out["created"] == "t1"
    assert out["config"] == {"Cmd": ["bash"]}
    assert base["rootfs"]["diff_ids"] == [D1], "base must not be mutated"
    new = extend_config(
        base,
        created="t1",
        diff_id=D2,
        history=HistoryEntry("t1", "b"),
        cfg=ImageConfig(cmd=("sh",)),
    )
    assert new["config"] == {"Cmd": ["sh"]}
    empty = extend_config(base, created="t1", diff_id=None, history=HistoryEntry("t1", "ENV"))
    assert empty["rootfs"]["diff_ids"] == [D1]
    assert empty["history"][-1]["empty_layer"] is True
    assert history_from_json(empty["history"])[-1].empty_layer


def test_manifest_build_and_parse_round_trip() -> None:
    cfg = Descriptor(MEDIA_CONFIG, D1, 100)
    layers = [Descriptor(MEDIA_LAYER, D2, 2000), Descriptor(MEDIA_LAYER, D3, 30)]
    m = build_manifest(cfg, layers)
    assert m["schemaVersion"] == 2 and m["mediaType"] == MEDIA_MANIFEST
    assert m["config"] == {"mediaType": MEDIA_CONFIG, "digest": D1, "size": 100}
    assert parse_manifest(canonical_json(m)) == (cfg, tuple(layers))


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b'{"schemaVersion": 1}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "layers": []}',
        b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:bad", "size": 1}, "layers": []}',
        b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "'
        + D1.encode()
        + b'", "size": -1}, "layers": []}',
    ],
)
def test_parse_manifest_rejects_bad_documents(doc: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_manifest(doc)


def test_build_index_is_sorted_and_annotated() -> None:
    a = Descriptor(MEDIA_MANIFEST, D2, 400)
    b = Descriptor(MEDIA_MANIFEST, D1, 300)
    idx = build_index([(a, {REF_NAME: "web:v2"}), (b, {REF_NAME: "debian:bookworm"}), (a, {})])
    assert idx["schemaVersion"] == 2 and idx["mediaType"] == MEDIA_INDEX
    names = [m.get("annotations", {}).get(REF_NAME) for m in idx["manifests"]]
    assert names == [None, "debian:bookworm", "web:v2"]
    assert idx["manifests"][1] == {
        "mediaType": MEDIA_MANIFEST,
        "digest": D1,
        "size": 300,
        "annotations": {REF_NAME: "debian:bookworm"},
    }
    # order of input does not matter
    again = build_index([(a, {}), (b, {REF_NAME: "debian:bookworm"}), (a, {REF_NAME: "web:v2"})])
    assert canonical_json(again) == canonical_json(idx)
    both = build_index([(b, {REF_NAME: "bookworm", CONTAINERD_NAME: "debian:bookworm"})])
    assert both["manifests"][0]["annotations"] == {
        REF_NAME: "bookworm",
        CONTAINERD_NAME: "debian:bookworm",
    }
