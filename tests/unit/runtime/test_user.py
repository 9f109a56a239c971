"""USER resolution against an untrusted rootfs, and rootfs sanity checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paas.errors import FailedPrecondition, InvalidArgument, NotFound
from paas.runtime.user import check_rootfs, read_in_root, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
broken line
app:x:1000:1000::/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """root:x:0:
daemon:x:1:
adm:x:4:app
staff:x:50:root,app
app:x:1000:
docker:x:999:other
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    etc = tmp_path / "rootfs" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    return tmp_path / "rootfs"


@pytest.mark.parametrize("user,expected", [
    ("", (0, 0, (50,))),
    ("root", (0, 0, (50,))),
    ("0", (0, 0, (50,))),
    ("app", (1000, 1000, (4, 50))),
    ("1000", (1000, 1000, (4, 50))),
    ("app:staff", (1000, 50, ())),
    ("app:999", (1000, 999, ())),
    ("1000:1000", (1000, 1000, ())),
    ("4242", (4242, 0, ())),           # numeric uid without a passwd entry
    ("4242:4343", (4242, 4343, ())),   # numeric gid without a group entry
    ("4242:docker", (4242, 999, ())),
    ("daemon", (1, 1, ())),
])
def test_resolve_user_forms(rootfs: Path, user: str, expected: tuple[int, int, tuple[int, ...]]
                            ) -> None:
    assert resolve_user(str(rootfs), user) == expected


def test_unknown_user_name(rootfs: Path) -> None:
    with pytest.raises(NotFound) as err:
        resolve_user(str(rootfs), "ghost")
    assert err.value.message == "unable to find user ghost: no matching entries in passwd file"
    assert err.value.hint


def test_unknown_group_name(rootfs: Path) -> None:
    with pytest.raises(NotFound, match="unable to find group ghosts"):
        resolve_user(str(rootfs), "app:ghosts")


@pytest.mark.parametrize("user", ["-1", "app:", "99999999999"])
def test_invalid_user_strings(rootfs: Path, user: str) -> None:
    with pytest.raises(InvalidArgument):
        resolve_user(str(rootfs), user)


def test_missing_passwd_allows_root_and_numeric(tmp_path: Path) -> None:
    assert resolve_user(str(tmp_path), "") == (0, 0, ())
    assert resolve_user(str(tmp_path), "12:34") == (12, 34, ())
    with pytest.raises(NotFound):
        resolve_user(str(tmp_path), "app")


def test_absolute_symlink_resolves_inside_rootfs(tmp_path: Path) -> None:
    # the host file must never be read: an absolute link is relative to the rootfs
    host_secret = tmp_path / "hostetc"
    host_secret.mkdir()
    (host_secret / "passwd").write_text("evil:x:7:7::/:/bin/sh\n")
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "real").mkdir()
    (root / "real" / "passwd").write_text("app:x:1000:1000::/:/bin/sh\n")
    os.symlink(str(host_secret / "passwd"), root / "etc" / "passwd")
    with pytest.raises(NotFound):
        resolve_user(str(root), "evil")
    os.unlink(root / "etc" / "passwd")
    os.symlink("/real/passwd", root / "etc" / "passwd")
    assert resolve_user(str(root), "app") == (1000, 1000, ())


def test_dotdot_symlink_cannot_escape(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("evil:x:7:7::/:/bin/sh\n")
    root = tmp_path / "rootfs"
    root.mkdir()
    os.symlink("../../../../..", root / "etc")  # etc -> way above the root
    assert read_in_root(str(root), "/etc/passwd") is None
    os.unlink(root / "etc")
    os.symlink("..", root / "etc")  # rootfs/.. would be tmp_path: clamped to the root
    assert read_in_root(str(root), "/etc/passwd") is None
    with pytest.raises(NotFound):
        resolve_user(str(root), "evil")


def test_directory_symlink_inside_rootfs_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "data" / "etc").mkdir(parents=True)
    (root / "data" / "etc" / "passwd").write_text("app:x:5:6::/:/bin/sh\n")
    os.symlink("data/etc", root / "etc")
    assert resolve_user(str(root), "app") == (5, 6, ())


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.symlink("passwd", root / "etc" / "passwd")
    with pytest.raises(InvalidArgument, match="/etc/passwd"):
        resolve_user(str(root), "app")


def test_fifo_passwd_is_refused_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "passwd")
    with pytest.raises(InvalidArgument, match="not a regular file"):
        resolve_user(str(root), "app")


def test_check_rootfs_accepts_dirs_and_missing(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    check_rootfs(str(tmp_path))  # dev and sys missing: runc creates them


@pytest.mark.parametrize("name", ["dev", "proc", "sys"])
def test_check_rootfs_refuses_symlinks(tmp_path: Path, name: str) -> None:
    os.symlink("/", tmp_path / name)
    with pytest.raises(FailedPrecondition, match=f"/{name} is a symlink"):
        check_rootfs(str(tmp_path))


def test_check_rootfs_refuses_files(tmp_path: Path) -> None:
    (tmp_path / "sys").write_text("")
    with pytest.raises(FailedPrecondition, match="/sys is not a directory"):
        check_rootfs(str(tmp_path))
