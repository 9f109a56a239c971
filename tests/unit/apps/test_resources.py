"""paas.apps.resources and the restart-policy setting, and how they reach a process
container's flags (``process_options`` + ``run_flags``); temp SQLite, no root."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.apps.options import process_options
from paas.apps.resources import ResourceStore, limits_for, parse_limits
from paas.apps.storage import StorageStore, parse_mount
from paas.apps.store import AppStore
from paas.deploy.processes import run_flags
from paas.errors import InvalidArgument, NotFound
from paas.model import DEFAULT_RESTART_POLICY, Limits, ProcessOptions, Release
from paas.runtime.options import options_from_flags
from paas.state import connect

RELEASE = Release(app="web", version=3, image_id="sha256:" + "a" * 64,
                  processes=(("web", "gunicorn app"), ("worker", "python w.py")),
                  config=(("A", "1"),), formation=(("web", 1), ("worker", 1)),
                  git_sha="b" * 40, description="Deploy", created=0.0, builder="buildpack")


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(str(tmp_path / "state" / "state.db"))
    AppStore(c).create("web")
    yield c
    c.close()


def test_parse_limits_normalizes_and_validates_like_container_run() -> None:
    assert parse_limits(" 512M ", "0.5", "256") == Limits("512m", "0.5", "256")
    assert parse_limits(memory="1g") == Limits(memory="1g")
    for kw, message in (({"memory": "lots"}, "invalid size"), ({"memory": "1m"}, "too small"),
                        ({"cpus": "0"}, "invalid --cpus"),
                        ({"cpus": str((os.cpu_count() or 1) + 1)}, "invalid --cpus"),
                        ({"pids": "-5"}, "invalid --pids-limit"),
                        ({"pids": "many"}, "invalid --pids-limit"),
                        ({"memory": ""}, "empty --memory")):
        with pytest.raises(InvalidArgument, match=message):
            parse_limits(**kw)


def test_limits_for_merges_default_and_type_key_by_key() -> None:
    limits = {"": Limits(memory="512m", cpus="1"), "worker": Limits(memory="64m", pids="10")}
    assert limits_for(limits.items(), "worker") == Limits("64m", "1", "10")
    assert limits_for(limits.items(), "web") == Limits("512m", "1", None)
    assert limits_for((), "web") == Limits()


def test_store_set_merges_and_clear(conn: sqlite3.Connection) -> None:
    store = ResourceStore(conn)
    assert store.limits("web") == {}
    store.set("web", "", Limits(memory="512m"))
    assert store.set("web", "", Limits(cpus="1")) == Limits(memory="512m", cpus="1")
    store.set("web", "worker", Limits(pids="10"))
    assert store.limits("web") == {"": Limits("512m", "1"), "worker": Limits(pids="10")}
    store.clear("web", "worker")
    assert store.limits("web") == {"": Limits("512m", "1")}
    store.set("web", "worker", Limits(pids="10"))
    store.clear("web", "")
    assert store.limits("web") == {"worker": Limits(pids="10")}
    store.clear("web")
    assert store.limits("web") == {}


def test_store_refuses(conn: sqlite3.Connection) -> None:
    store = ResourceStore(conn)
    with pytest.raises(InvalidArgument, match="no limit given"):
        store.set("web", "", Limits())
    with pytest.raises(InvalidArgument, match="invalid process type"):
        store.set("web", "Web!", Limits(memory="64m"))
    with pytest.raises(InvalidArgument, match="invalid size"):
        store.set("web", "", Limits(memory="x"))
    with pytest.raises(NotFound):
        store.set("api", "", Limits(memory="64m"))
    assert conn.execute("SELECT COUNT(*) FROM app_limits").fetchone()[0] == 0


def test_restart_policy_setting(conn: sqlite3.Connection) -> None:
    apps = AppStore(conn)
    assert apps.setting("web", "restart-policy") == DEFAULT_RESTART_POLICY == "on-failure:10"
    assert apps.set_setting("web", "restart-policy", "on-failure:0") == "on-failure"
    assert apps.set_setting("web", "restart-policy", "unless-stopped") == "unless-stopped"
    for bad in ("sometimes", "always:3", "on-failure:x", ""):
        with pytest.raises(InvalidArgument, match="restart policy"):
            apps.set_setting("web", "restart-policy", bad)


def test_process_options_gathers_everything(conn: sqlite3.Connection) -> None:
    assert process_options(conn, "web") == ProcessOptions()
    StorageStore(conn).mount("web", parse_mount("/srv/web:/data"))
    ResourceStore(conn).set("web", "", Limits(memory="256m"))
    AppStore(conn).set_setting("web", "restart-policy", "always")
    assert process_options(conn, "web") == ProcessOptions(
        mounts=(parse_mount("/srv/web:/data"),), limits=(("", Limits(memory="256m")),),
        restart="always")


def test_run_flags_defaults_are_those_of_before() -> None:
    flags = run_flags(RELEASE, "web", 1, 5000)
    assert flags["volume"] == [] and flags["restart"] == "on-failure:10"
    assert (flags["memory"], flags["cpus"], flags["pids_limit"]) == (None, None, None)


def test_run_flags_carry_the_app_options_and_paasd_accepts_them() -> None:
    options = ProcessOptions(
        mounts=(parse_mount("/srv/web:/data"), parse_mount("/srv/conf:/etc/app:ro")),
        limits=(("", Limits(memory="512m", cpus="1")), ("worker", Limits(memory="64m", pids="10"))),
        restart="unless-stopped")
    web = run_flags(RELEASE, "web", 1, 5000, options)
    # strict: paasd opens each host dir at every start without following symlinks
    assert web["volume"] == ["/srv/web:/data:strict", "/srv/conf:/etc/app:ro,strict"]
    assert (web["memory"], web["cpus"], web["pids_limit"]) == ("512m", "1", None)
    assert web["restart"] == "unless-stopped"
    worker = run_flags(RELEASE, "worker", 2, 5000, options)
    assert (worker["memory"], worker["cpus"], worker["pids_limit"]) == ("64m", "1", "10")
    opts = options_from_flags(worker)  # what paasd does with them
    assert opts.resources.memory == 64 << 20 and opts.resources.cpus == 1.0
    assert opts.resources.pids_limit == 10 and opts.restart == "unless-stopped"
    assert [(b.source, b.target, b.readonly, b.policy) for b in opts.binds] == [
        ("/srv/web", "/data", False, "strict"), ("/srv/conf", "/etc/app", True, "strict")]
    # one-offs (release phase, paas run): the mounts, the limits of their type, no restarts
    oneoff = run_flags(RELEASE, "run", 1, 5000, options, name="web.run.1234", rm=True)
    assert oneoff["restart"] == "no" and oneoff["volume"] == web["volume"]
    assert oneoff["memory"] == "512m"


def test_allow_link_local_reaches_the_containers_flags(conn: sqlite3.Connection) -> None:
    assert AppStore(conn).setting("web", "allow-link-local") == "false"
    flags = run_flags(RELEASE, "web", 1, 5000, process_options(conn, "web"))
    opts = options_from_flags(flags)
    assert (opts.link_local, opts.tenant) == (False, "app:web")
    for bad in ("yes", "1", "True", "on"):
        with pytest.raises(InvalidArgument, match="invalid value") as err:
            AppStore(conn).set_setting("web", "allow-link-local", bad)
        assert err.value.hint == "use true or false"
    AppStore(conn).set_setting("web", "allow-link-local", "true")
    assert process_options(conn, "web").allow_link_local is True
    opts = options_from_flags(run_flags(RELEASE, "worker", 1, 5000, process_options(conn, "web")))
    assert (opts.link_local, opts.tenant) == (True, "app:web")


def test_disk_limits_per_type_over_the_instance_default(conn: sqlite3.Connection) -> None:
    from paas.model import DefaultLimits

    assert parse_limits(disk=" 10G ") == Limits(disk="10g")
    for disk, message in (("1m", "--disk 1m is too small"), ("lots", "invalid size")):
        with pytest.raises(InvalidArgument, match=message):
            parse_limits(disk=disk)
    ResourceStore(conn).set("web", "worker", Limits(disk="2g"))  # migration 12: key 'disk'
    options = process_options(conn, "web", DefaultLimits(app_disk=10 << 30))
    assert options.default_disk == str(10 << 30)
    web, worker = (run_flags(RELEASE, t, 1, 5000, options) for t in ("web", "worker"))
    assert web["storage_opt"] == [f"size={10 << 30}"] and worker["storage_opt"] == ["size=2g"]
    assert options_from_flags(worker).resources.disk == 2 << 30
    assert options_from_flags(web).resources.disk == 10 << 30
    no_default = process_options(conn, "web", DefaultLimits(app_disk=None))
    assert run_flags(RELEASE, "web", 1, 5000, no_default)["storage_opt"] == []


def test_init_process_is_on_by_default_and_off_per_app(conn: sqlite3.Connection) -> None:
    """App processes (web, workers, one-offs, the release phase: all of run_flags) run
    under tini unless the app turns it off (Dokku's init-process)."""
    assert AppStore(conn).setting("web", "init-process") == "true"
    for ptype, kw in (("web", {}), ("worker", {}), ("release", {"rm": True}),
                      ("run", {"name": "web.run.1234", "rm": True, "detach": False})):
        flags = run_flags(RELEASE, ptype, 1, 5000, process_options(conn, "web"), **kw)
        assert options_from_flags(flags).init is True, ptype
    AppStore(conn).set_setting("web", "init-process", "false")
    assert process_options(conn, "web").init is False
    assert options_from_flags(run_flags(RELEASE, "web", 1, 5000,
                                        process_options(conn, "web"))).init is False
    with pytest.raises(InvalidArgument, match="invalid value"):
        AppStore(conn).set_setting("web", "init-process", "tini")


def test_host_ca_bundle_is_an_opt_in(conn: sqlite3.Connection) -> None:
    assert AppStore(conn).setting("web", "host-ca-bundle") == "false"
    assert options_from_flags(run_flags(RELEASE, "web", 1, 5000,
                                        process_options(conn, "web"))).host_ca is False
    AppStore(conn).set_setting("web", "host-ca-bundle", "true")
    assert options_from_flags(run_flags(RELEASE, "worker", 1, 5000,
                                        process_options(conn, "web"))).host_ca is True
