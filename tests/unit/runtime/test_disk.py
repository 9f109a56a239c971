"""The size-limited writable layer's pure parts: layout, mkfs argv, --storage-opt,
the loop ioctl's struct."""

from __future__ import annotations

import pytest

from paas.errors import InvalidArgument
from paas.linux import _loop_config
from paas.runtime.disk import LayerPaths, backend_for, mkfs_argv
from paas.runtime.options import flags_from_argv, options_from_flags, parse_storage_opts


def test_layout_in_the_bundle() -> None:
    layer = LayerPaths("/r/containers/abc")
    assert (layer.image, layer.mountpoint) == ("/r/containers/abc/layer.img",
                                               "/r/containers/abc/layer")
    assert (layer.upper, layer.work) == ("/r/containers/abc/layer/upper",
                                         "/r/containers/abc/layer/work")


def test_mkfs_is_fast_and_reserves_nothing() -> None:
    argv = mkfs_argv("/r/layer.img")
    assert argv[0] == "mkfs.ext4" and argv[-1] == "/r/layer.img"
    assert argv[argv.index("-m") + 1] == "0"
    assert "lazy_itable_init=1,lazy_journal_init=1,nodiscard" in argv


def test_a_bundle_without_an_image_has_no_backend(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert backend_for(LayerPaths(str(tmp_path))) is None
    (tmp_path / "layer.img").write_bytes(b"")
    backend = backend_for(LayerPaths(str(tmp_path)))
    assert backend is not None and backend.name == "loop-ext4"


def test_storage_opt_size() -> None:
    assert parse_storage_opts([]) is None
    assert parse_storage_opts(["size=10G"]) == 10 << 30
    assert parse_storage_opts(["size=1g", "size=2g"]) == 2 << 30  # the last one, as docker
    for opts, message in ((["size=1m"], "too small"), (["foo=1"], "invalid --storage-opt"),
                          (["size"], "invalid --storage-opt"), (["size=x"], "invalid size")):
        with pytest.raises(InvalidArgument, match=message):
            parse_storage_opts(opts)


def test_storage_opt_from_container_runs_argv() -> None:
    flags = flags_from_argv(["--storage-opt", "size=64m", "img", "true"])
    assert flags["storage_opt"] == ["size=64m"]
    assert options_from_flags(flags).resources.disk == 64 << 20
    assert options_from_flags(flags_from_argv(["img"])).resources.disk is None


def test_loop_config_is_the_kernels_struct() -> None:
    cfg = _loop_config(7, "/r/layer.img")
    assert len(cfg) == 304  # struct loop_config: fd, block_size, loop_info64 (232), 8 x u64
    assert cfg[:4] == (7).to_bytes(4, "little")
    flags_at = 8 + 5 * 8 + 3 * 4  # loop_info64.lo_flags
    assert int.from_bytes(cfg[flags_at:flags_at + 4], "little") == 4  # LO_FLAGS_AUTOCLEAR
    assert cfg[flags_at + 4:flags_at + 4 + 12] == b"/r/layer.img"


def test_sparse_copy_keeps_the_holes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from paas.runtime.disk import _sparse_copy

    src, dst = tmp_path / "src", tmp_path / "dst"
    with open(src, "wb") as f:
        f.truncate(1 << 30)
        for off in (0, 5 << 20, (1 << 30) - 4096):
            f.seek(off)
            f.write(b"x" * 4096)
    _sparse_copy(str(src), str(dst))
    assert dst.stat().st_size == 1 << 30 and dst.stat().st_mode & 0o777 == 0o600
    assert dst.stat().st_blocks * 512 <= 1 << 20  # the data, not the gigabyte
    with open(src, "rb") as a, open(dst, "rb") as b:
        for off in (0, 5 << 20, (1 << 30) - 4096, 1 << 20):
            a.seek(off)
            b.seek(off)
            assert a.read(4096) == b.read(4096)
    with pytest.raises(FileExistsError):  # never over an existing layer
        _sparse_copy(str(src), str(dst))


def test_project_quotas_of_the_filesystem_holding_a_path() -> None:
    from paas.runtime.disk import project_quotas

    mountinfo = (
        "23 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "40 23 254:1 / /srv rw,relatime - xfs /dev/vdb rw,attr2,inode64,prjquota\n"
        "41 40 254:2 / /srv/other rw,relatime - ext4 /dev/vdc rw\n"
    )
    assert project_quotas(mountinfo, "/srv/paas") is True
    assert project_quotas(mountinfo, "/srv/other/paas") is False  # the deeper mount
    assert project_quotas(mountinfo, "/var/lib/paas") is False
    assert project_quotas(mountinfo, "/srvx") is False
