"""Pure parts of bootstrap: the mmdebstrap argv and its validation; snapshot mount options."""

from __future__ import annotations

import pytest

from paas.errors import FailedPrecondition, InvalidArgument
from paas.image.bootstrap import created_by, mmdebstrap_argv
from paas.image.snapshot import MAX_MOUNT_OPTIONS, idmap_key, overlay_options
from paas.model import IdMap


def test_argv_minbase() -> None:
    assert mmdebstrap_argv("bookworm", [], "/x/out.tar") == [
        "mmdebstrap",
        "--variant=minbase",
        "--format=tar",
        "--quiet",
        "bookworm",
        "/x/out.tar",
    ]


def test_argv_with_includes_and_variant() -> None:
    argv = mmdebstrap_argv(
        "trixie", ["ca-certificates", "python3", "libstdc++6"], "/o.tar", variant="apt"
    )
    assert argv[1] == "--variant=apt"
    assert "--include=ca-certificates,python3,libstdc++6" in argv
    assert argv[-2:] == ["trixie", "/o.tar"]


@pytest.mark.parametrize(
    "suite", ["", "Bookworm", "bookworm;rm -rf /", "--help", "a", "../x", "x" * 40]
)
def test_argv_rejects_bad_suites(suite: str) -> None:
    with pytest.raises(InvalidArgument, match="suite"):
        mmdebstrap_argv(suite, [], "/o.tar")


@pytest.mark.parametrize(
    "pkg", ["", "-x", "--hook-dir=/tmp", "a b", "pkg,other", "Pkg", "a", "x$(id)"]
)
def test_argv_rejects_bad_packages(pkg: str) -> None:
    with pytest.raises(InvalidArgument, match="package"):
        mmdebstrap_argv("bookworm", [pkg], "/o.tar")


def test_argv_rejects_unknown_variant() -> None:
    with pytest.raises(InvalidArgument, match="variant"):
        mmdebstrap_argv("bookworm", [], "/o.tar", variant="tiny")


def test_created_by() -> None:
    assert created_by("bookworm", []) == "mmdebstrap --variant=minbase bookworm"
    assert (
        created_by("bookworm", ["curl"]) == "mmdebstrap --variant=minbase --include=curl bookworm"
    )


def test_overlay_options_order_and_values() -> None:
    opts = overlay_options(["/s/3/fs", "/s/1/fs"], "/c/upper", "/c/work")
    assert opts == ("lowerdir=/s/3/fs:/s/1/fs", "upperdir=/c/upper", "workdir=/c/work")


def test_overlay_options_forty_layers_fit_with_a_long_root() -> None:
    root = "/tmp/pytest-of-root/pytest-123/test_something_long0/root/snapshots/100000-65536"
    lowers = [f"{root}/{i}/fs" for i in range(140, 100, -1)]
    opts = overlay_options(lowers, f"{root}/c/upper", f"{root}/c/work")
    assert len(",".join(opts)) <= MAX_MOUNT_OPTIONS
    assert opts[0].count(":") == 39


def test_overlay_options_too_long_or_bad_chars() -> None:
    with pytest.raises(FailedPrecondition, match="too many layers"):
        overlay_options(["/" + "x" * 200 + f"/{i}" for i in range(30)], "/u", "/w")
    with pytest.raises(FailedPrecondition, match="cannot take"):
        overlay_options(["/a,b"], "/u", "/w")


def test_idmap_key() -> None:
    assert idmap_key(None) == "host"
    assert idmap_key(IdMap(0, 100000, 65536)) == "100000-65536"
