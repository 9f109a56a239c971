"""Unit tests for paas.image.reference: the distribution-spec reference grammar."""

from __future__ import annotations

import pytest

from paas.errors import InvalidArgument
from paas.image.reference import parse_reference
from paas.model import ImageRef

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "name", "tag", "digest"),
    [
        ("busybox", "busybox", "latest", None),
        ("busybox:1.36", "busybox", "1.36", None),
        ("library/debian:bookworm-slim", "library/debian", "bookworm-slim", None),
        ("a", "a", "latest", None),
        ("a/b/c/d", "a/b/c/d", "latest", None),
        ("my_app", "my_app", "latest", None),
        ("my__app", "my__app", "latest", None),
        ("my-app", "my-app", "latest", None),
        ("my---app", "my---app", "latest", None),
        ("my.app", "my.app", "latest", None),
        ("app:V1_x.y-Z", "app", "V1_x.y-Z", None),
        ("app:_tag", "app", "_tag", None),
        ("localhost/app", "localhost/app", "latest", None),
        ("localhost:5000/app:1", "localhost:5000/app", "1", None),
        ("registry.example.com/team/app:v2", "registry.example.com/team/app", "v2", None),
        ("Registry.Example.com/app", "Registry.Example.com/app", "latest", None),
        ("[::1]:5000/app:t", "[::1]:5000/app", "t", None),
        ("example.com:443/a/b", "example.com:443/a/b", "latest", None),
        ("app@" + D, "app", "latest", D),
        ("app:v1@" + D, "app", "v1", D),
        ("localhost:5000/app@" + D, "localhost:5000/app", "latest", D),
        ("app:" + "t" * 128, "app", "t" * 128, None),
        ("0/1", "0/1", "latest", None),
    ],
)
def test_good_references(text: str, name: str, tag: str, digest: str | None) -> None:
    assert parse_reference(text) == ImageRef(name=name, tag=tag, digest=digest)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "app ",
        " app",
        "my app",
        "App",
        "library/Debian",
        "app:",
        ":tag",
        "/app",
        "app/",
        "a//b",
        "..",
        "a/../b",
        "../app",
        "a..b",
        "-app",
        "app-",
        "_app",
        "app_",
        "a___b",
        ".app",
        "app.",
        "app:-tag",
        "app:.tag",
        "app:" + "t" * 129,
        "app:t:t",
        "app:ta/g",
        "app@sha256:abc",
        "app@sha256:" + "A" * 64,
        "app@sha512:" + "a" * 128,
        "app@" + "a" * 64,
        "app@",
        "@" + D,
        "app@" + D + "@" + D,
        "a" * 256,
        "example.com/" + "a" * 244,
        "-bad.example.com/app",
        "example.com:port/app",
        "app\n",
        "app\x00",
        "ÿapp",
        "app:tág",
        "localhost:5000/",
    ],
)
def test_bad_references(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_reference(text)
    assert info.value.message.startswith(f"invalid reference format: {text!r}")
    assert "NAME[:TAG]" in info.value.hint


def test_name_of_exactly_255_characters_is_accepted() -> None:
    name = "a" * 255
    assert parse_reference(name + ":x").name == name


def test_str_round_trips() -> None:
    for text in ("app:1", "localhost:5000/a/b:x", "app@" + D):
        assert str(parse_reference(text)) == text
    assert str(parse_reference("app")) == "app:latest"
