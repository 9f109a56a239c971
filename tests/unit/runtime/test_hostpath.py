"""paas.hostpath: bind sources opened without following symlinks and checked on the open
file (temp dirs and symlinks only: no root, no mounts), and ``-v`` option parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paas import hostpath
from paas.errors import InvalidArgument
from paas.hostpath import Guard, refusal
from paas.model import BindMount, BindPolicy
from paas.runtime.options import format_bind, parse_bind

STRICT, HOST = BindPolicy.STRICT, BindPolicy.HOST


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    (tmp_path / "root" / "data" / "storage" / "web").mkdir(parents=True)
    (tmp_path / "root" / "containers").mkdir()
    (tmp_path / "srv" / "data").mkdir(parents=True)
    return Guard(str(tmp_path / "root"))


@pytest.mark.parametrize("path", [
    "/etc", "/etc/ssh", "/root", "/usr/lib", "/proc/1/root", "/sys/fs", "/dev", "/run/paas",
    "/var/run", "/var/spool/cron", "/var/lib/dpkg/info", "/boot", "/lib64",
    "/", "/var", "/var/lib",  # they contain /var/lib/paas and system directories
    "/var/lib/paas", "/var/lib/paas/state", "/var/lib/paas/data/storage",
])
def test_strict_refuses_system_dirs_and_default_root(path: str, guard: Guard) -> None:
    why = refusal(path, STRICT, guard)
    assert why is not None and why[1]


@pytest.mark.parametrize("path", ["/srv/data", "/mnt/disk/app", "/home/alice/data",
                                  "/var/lib/mysql-data", "/var/lib/paas/data/storage/web",
                                  "/etcetera", "/usrdata", "/rooted"])
def test_strict_allows_the_operators_dirs(path: str, guard: Guard) -> None:
    assert refusal(path, STRICT, guard) is None


def test_the_instance_root_is_refused_except_its_storage(tmp_path: Path, guard: Guard) -> None:
    root = str(tmp_path / "root")
    for policy in (STRICT, HOST):
        for bad in (root, f"{root}/containers", f"{root}/state.db", f"{root}/data/storage",
                    str(tmp_path), os.path.dirname(str(tmp_path))):
            assert refusal(bad, policy, guard) is not None, (policy, bad)
        assert refusal(f"{root}/data/storage/web", policy, guard) is None
        assert refusal(f"{root}/data/storage/web/sub", policy, guard) is None
    assert refusal(root, BindPolicy.INTERNAL, guard) is None  # paas's own build dirs


def test_host_binds_may_reach_system_dirs_but_not_paas_state(guard: Guard) -> None:
    assert refusal("/etc", HOST, guard) is None  # docker -v semantics: the operator's call
    assert refusal("/", HOST, guard) is not None  # it holds PAAS_ROOT
    assert refusal("/var/lib/paas/state.db", HOST, guard) is not None


def test_protected_dirs_are_refused_for_strict_binds(tmp_path: Path) -> None:
    g = Guard(str(tmp_path / "root"), protected=["/home/paas/.ssh"])
    assert refusal("/home/paas/.ssh", STRICT, g) is not None
    assert refusal("/home/paas", STRICT, g) is not None  # contains it
    assert refusal("/home/alice", STRICT, g) is None


def test_open_checked_accepts_a_plain_dir(tmp_path: Path, guard: Guard) -> None:
    fd = hostpath.open_checked(str(tmp_path / "srv" / "data"), STRICT, guard)
    try:
        assert hostpath.fd_path(fd) == str(tmp_path / "srv" / "data")
    finally:
        os.close(fd)


def test_strict_refuses_a_symlink_in_any_component(tmp_path: Path, guard: Guard) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "root")
    with pytest.raises(InvalidArgument, match=r"link is a symlink") as exc:
        hostpath.check(str(tmp_path / "link"), STRICT, guard)
    assert "never follow symlinks" in exc.value.hint
    # a parent component that is a symlink (to a harmless dir, even)
    (tmp_path / "srvlink").symlink_to(tmp_path / "srv")
    with pytest.raises(InvalidArgument, match=r"srvlink is a symlink"):
        hostpath.check(str(tmp_path / "srvlink" / "data"), STRICT, guard)
    # the attack: the checked directory swapped for a symlink to PAAS_ROOT
    data = tmp_path / "srv" / "data"
    hostpath.check(str(data), STRICT, guard)
    data.rmdir()
    data.symlink_to(tmp_path / "root")
    with pytest.raises(InvalidArgument, match=r"data is a symlink"):
        hostpath.check(str(data), STRICT, guard)


def test_host_binds_follow_symlinks_and_check_where_they_lead(tmp_path: Path,
                                                              guard: Guard) -> None:
    (tmp_path / "ok").symlink_to(tmp_path / "srv" / "data")
    hostpath.check(str(tmp_path / "ok"), HOST, guard)
    (tmp_path / "bad").symlink_to(tmp_path / "root")
    with pytest.raises(InvalidArgument, match=r"which is .*/root\) is paas's own state"):
        hostpath.check(str(tmp_path / "bad"), HOST, guard)
    (tmp_path / "db").symlink_to(tmp_path / "root" / "containers")
    with pytest.raises(InvalidArgument, match="paas's own state"):
        hostpath.check(str(tmp_path / "db"), HOST, guard)


def test_missing_and_non_directory_sources(tmp_path: Path, guard: Guard) -> None:
    for policy in (STRICT, HOST):
        with pytest.raises(InvalidArgument, match="does not exist") as exc:
            hostpath.check(str(tmp_path / "nope" / "x"), policy, guard)
        assert exc.value.hint
    f = tmp_path / "srv" / "file"
    f.write_text("x")
    with pytest.raises(InvalidArgument, match="is not a directory"):
        hostpath.check(str(f), STRICT, guard)
    with pytest.raises(InvalidArgument, match="is not a directory"):
        hostpath.check(str(f / "below"), STRICT, guard)
    hostpath.check(str(f), HOST, guard)  # -v of a file, like docker
    with pytest.raises(InvalidArgument, match="not an absolute path"):
        hostpath.open_path("srv/data", follow=False)
    with pytest.raises(InvalidArgument, match=r"'\.\.'"):
        hostpath.open_path(f"{tmp_path}/srv/../root", follow=False)


def test_no_fd_leaks_on_refusals(tmp_path: Path, guard: Guard) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "root")
    before = len(os.listdir("/proc/self/fd"))
    for path, policy in ((str(tmp_path / "link"), STRICT), (str(tmp_path / "root"), HOST),
                         (str(tmp_path / "missing"), STRICT), ("/etc", STRICT)):
        with pytest.raises(InvalidArgument):
            hostpath.check(path, policy, guard)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize(("spec", "bind"), [
    ("/a:/b", BindMount("/a", "/b")),
    ("/a:/b:ro", BindMount("/a", "/b", readonly=True)),
    ("/a:/b:rw", BindMount("/a", "/b")),
    ("/a:/b:strict", BindMount("/a", "/b", policy=STRICT)),
    ("/a:/b:ro,strict", BindMount("/a", "/b", True, STRICT)),
    ("/a:/b:strict,ro", BindMount("/a", "/b", True, STRICT)),
])
def test_parse_bind_options(spec: str, bind: BindMount) -> None:
    assert parse_bind(spec) == bind
    assert parse_bind(format_bind(bind)) == bind


@pytest.mark.parametrize("spec", ["/a:/b:ro,rw", "/a:/b:ro,ro", "/a:/b:internal", "/a:/b:",
                                  "/a:/b:strict,"])
def test_parse_bind_refuses_other_options(spec: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid volume spec") as exc:
        parse_bind(spec)
    assert "strict" in exc.value.hint


def test_internal_binds_cannot_be_sent_as_flags() -> None:
    with pytest.raises(InvalidArgument):
        format_bind(BindMount("/var/lib/paas/builds/x", "/app", policy=BindPolicy.INTERNAL))


def test_the_ssh_users_key_dir_is_protected(tmp_path: Path) -> None:
    g = Guard.for_instance(str(tmp_path / "root"),
                           {"PAAS_AUTHORIZED_KEYS": "/home/paas/.ssh/authorized_keys"})
    assert refusal("/home/paas/.ssh", STRICT, g) is not None
    assert refusal("/home/paas", STRICT, g) is not None
    assert Guard.for_instance("/r", {}).protected == Guard("/r").protected
