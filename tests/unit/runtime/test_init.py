"""``--init`` (tini as PID 1) in the spec and the flags, and whose a container's stdio
pipes are (``stdio_owner``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from paas.errors import FailedPrecondition, InvalidArgument
from paas.model import ContainerConfig, IdMap
from paas.runtime.init import DEFAULT_INIT, INIT_TARGET, find_init, init_args
from paas.runtime.options import flags_from_argv, options_from_flags
from paas.runtime.resolve import resolve_config
from paas.runtime.spec import build_spec, stdio_owner

IDMAP = IdMap(container_id=0, host_id=200000, size=65536)


def _cfg(**kw: Any) -> ContainerConfig:
    base = ContainerConfig(image="debian:bookworm", image_id="sha256:" + "a" * 64,
                           args=("python3", "-m", "http.server"))
    return dataclasses.replace(base, **kw)


def _spec(cfg: ContainerConfig, **kw: Any) -> dict[str, Any]:
    return build_spec(cfg, rootfs="/r/rootfs", cgroups_path="/paas-x/abc", idmap=IDMAP,
                      hostname="abc", **kw)


def test_init_runs_the_command_as_tinis_child_with_process_group_signals() -> None:
    spec = _spec(_cfg(init=True), init="/usr/bin/tini-static")
    assert spec["process"]["args"] == [INIT_TARGET, "-g", "--", "python3", "-m", "http.server"]
    mounts = [m for m in spec["mounts"] if m["destination"] == INIT_TARGET]
    assert mounts == [{"destination": "/dev/init", "type": "bind",
                       "source": "/usr/bin/tini-static",
                       "options": ["bind", "ro", "nosuid", "nodev"]}]
    # after /dev's tmpfs: the mount point is made there, never in the rootfs
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests.index("/dev") < dests.index(INIT_TARGET)


def test_without_init_nothing_changes() -> None:
    spec = _spec(_cfg(), init="/usr/bin/tini-static")
    assert spec["process"]["args"] == ["python3", "-m", "http.server"]
    assert INIT_TARGET not in [m["destination"] for m in spec["mounts"]]


def test_init_without_a_binary_is_a_bug_not_a_silent_default() -> None:
    with pytest.raises(InvalidArgument, match="init binary"):
        _spec(_cfg(init=True))


def test_init_args_keep_dashes_of_the_command() -> None:
    assert init_args(("sh", "-c", "exec -- x")) == ["/dev/init", "-g", "--", "sh", "-c",
                                                    "exec -- x"]


def test_init_flag_reaches_the_config() -> None:
    from paas.model import Image, ImageConfig

    image = Image(id="sha256:" + "b" * 64, manifest_digest="sha256:" + "c" * 64, created="",
                  size=0, config=ImageConfig(cmd=("true",)), diff_ids=(), chain_ids=())
    for argv, want in ((["--init", "debian"], True), (["debian"], False)):
        opts = options_from_flags(flags_from_argv(argv))
        assert opts.init is want
        assert resolve_config(opts, image, "debian:latest").init is want


def test_find_init(tmp_path: Path) -> None:
    tini = tmp_path / "tini"
    tini.write_text("#!/bin/sh\n")
    tini.chmod(0o755)
    assert find_init(str(tini)) == str(tini)
    with pytest.raises(FailedPrecondition, match="container init .* is missing") as err:
        find_init(str(tmp_path / "missing"))
    assert "apt-get install tini" in err.value.hint and "init-process false" in err.value.hint
    tini.chmod(0o644)  # not executable
    with pytest.raises(FailedPrecondition):
        find_init(str(tini))
    with pytest.raises(InvalidArgument, match="absolute"):
        find_init("tini")
    if os.path.exists(DEFAULT_INIT):
        assert find_init("") == DEFAULT_INIT


@pytest.mark.parametrize("user, idmap, owner", [
    ("0:0", IDMAP, (200000, 200000)),  # the container's root, in its own (an app's) range
    ("1000:1000", IDMAP, (201000, 201000)),  # its user: root there may open it too
    ("33:4:5,6", IDMAP, (200033, 200004)),
    ("0:0", None, None),  # --userns=host root: host root's pipes as they are made
    ("1000:100", None, (1000, 100)),
])
def test_stdio_owner_is_the_containers_user_mapped_through_its_range(
        user: str, idmap: IdMap | None, owner: tuple[int, int] | None) -> None:
    assert stdio_owner(user, idmap) == owner
