"""Per-app operations (Dokku's names): ``storage:*``, ``resource:*``, ``ps:set``,
``ps:report`` and the ``ps`` listing.

Thin: parse, validate every input before a path or the database is touched, call
``paas.apps``, render. Mounts, limits and the restart policy are read when containers
are created, so each change says that it applies at the next deploy or restart.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument

if TYPE_CHECKING:
    from ..model import Container, Limits
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "format_bytes", "limits_text", "status_text"]

_DEFAULT_LABEL = "_default_"  # Dokku's name for the limits of every process type


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _need_app(app: App, name: str) -> None:
    from ..apps.store import AppStore
    from ..apps.validate import validate_app_name

    validate_app_name(name)
    AppStore(app.conn).get(name)  # NotFound with a hint


def _takes_effect(name: str) -> None:
    _out(f"       Takes effect at the next deploy or restart: paas ps:restart {name}")


# -- pure rendering helpers (unit-tested) -----------------------------------------------
def format_bytes(n: int) -> str:
    """Docker's flag syntax for a byte count: 512m, 1g, 1536k, 1000."""
    for unit, size in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def limits_text(memory: int | None, cpus: float | None, pids: int | None,
                disk: int | None = None) -> str:
    parts = []
    if memory:
        parts.append(f"mem={format_bytes(memory)}")
    if cpus:
        parts.append(f"cpus={cpus:g}")
    if pids and pids > 0:
        parts.append(f"pids={pids}")
    if disk:
        parts.append(f"disk={format_bytes(disk)}")
    return " ".join(parts) or "-"


def status_text(c: Container) -> str:
    """The state, with why and how often for a container that exited or backs off."""
    from ..model import ContainerState

    oom = ", OOM killed" if c.oom_killed else ""
    restarts = f", {c.restart_count} restart{'s' if c.restart_count != 1 else ''}"
    if c.state == ContainerState.RESTARTING:
        return f"restarting (exited {c.exit_code}{oom}{restarts})"
    if c.state == ContainerState.EXITED:
        return f"exited ({c.exit_code}{oom}{restarts if c.restart_count else ''})"
    return c.state


# -- storage --------------------------------------------------------------------------------
def _storage_mount(app: App, a: argparse.Namespace) -> int:
    from ..apps.storage import APP_UID, StorageStore, check_host_dir, format_mount, parse_mount

    b = parse_mount(a.mount)
    _need_app(app, a.app)
    check_host_dir(app.ctx.paths, b.source, a.app)
    StorageStore(app.conn).mount(a.app, b)
    _out(f"-----> Mounted {format_mount(b)} into the containers of {a.app}")
    owner = os.stat(b.source).st_uid
    from ..apps.idmaps import IdMaps

    idmap = IdMaps(app.ctx, app.conn).for_app(a.app)
    if not idmap.host_id <= owner < idmap.host_id + idmap.size and not b.readonly:
        _out(f"       Note: {b.source} is owned by host uid {owner}: nobody in the containers.")
        _out(f"       For the app to write there, chown it to {idmap.host_id + APP_UID} (uid "
             f"{APP_UID} in them, the buildpack user) or {idmap.host_id} (their root)")
    _takes_effect(a.app)
    return 0


def _storage_unmount(app: App, a: argparse.Namespace) -> int:
    from ..apps.storage import StorageStore, parse_mount

    b = parse_mount(a.mount)
    _need_app(app, a.app)
    StorageStore(app.conn).unmount(a.app, b)
    _out(f"-----> Unmounted {b.source}:{b.target} from {a.app} (the directory is kept)")
    _takes_effect(a.app)
    return 0


def _storage_list(app: App, a: argparse.Namespace) -> int:
    from ..apps.storage import StorageStore, format_mount
    from .render import emit_json

    _need_app(app, a.app)
    mounts = StorageStore(app.conn).list(a.app)
    if a.format == "json":  # Dokku's keys
        emit_json([{"host_path": b.source, "container_path": b.target,
                    "volume_options": "ro" if b.readonly else ""} for b in mounts])
        return 0
    _out(f"=====> {a.app} volume bind-mounts:")
    for b in mounts:
        _out(f"       {format_mount(b)}")
    return 0


def _parse_chown(value: str) -> int | None:
    from ..apps.storage import CHOWN_UIDS

    if value == "false":
        return None
    if value in CHOWN_UIDS:
        return CHOWN_UIDS[value]
    if value.isdigit() and int(value) < 65536:
        return int(value)
    raise InvalidArgument(f"invalid --chown {value!r}",
                          "use heroku (uid 1000, default), root, false or a uid from 0 to 65535")


def _storage_ensure(app: App, a: argparse.Namespace) -> int:
    from ..apps.idmaps import IdMaps
    from ..apps.storage import host_uid, storage_dir
    from ..apps.store import AppStore, need_app

    uid = _parse_chown(a.chown)
    path = storage_dir(app.paths, a.name)  # validates the name
    # owned in the range of the app it is for: --app, else the app called NAME, else
    # the default range of plain container:run containers
    owner_app = a.app or (a.name if AppStore(app.conn).exists(a.name) else "")
    if owner_app:
        need_app(app.conn, owner_app)
    idmap = IdMaps(app.ctx, app.conn).for_app(owner_app) if owner_app else app.ctx.idmap
    host = None if uid is None else host_uid(idmap, uid)
    from .. import modes

    # root-only parents: runc opens a bind mount's source as host root
    modes.makedirs(app.paths.storage)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise InvalidArgument(f"{path} exists and is not a directory",
                                  "move it away, or pick another name") from None
    _out(f"-----> Ensuring {path} exists")
    if host is not None:
        os.chown(path, host, host, follow_symlinks=False)
        whose = f"of {owner_app}" if owner_app else "of container:run (no app)"
        _out(f"       Owner {host}:{host} on the host (uid {uid} in the containers {whose})")
    target = owner_app or "APP"
    _out(f"       Mount it with: paas storage:mount {target} {path}:/data")
    return 0


# -- resources ------------------------------------------------------------------------------
def _ptype(value: str | None) -> str:
    from ..apps.validate import validate_process_type

    return "" if value in (None, _DEFAULT_LABEL) else validate_process_type(str(value))


def _limit_rows(limits: Limits) -> list[tuple[str, str]]:
    return [("memory", limits.memory or ""), ("cpus", limits.cpus or ""),
            ("pids", limits.pids or ""), ("disk", limits.disk or "")]


def _resource_limit(app: App, a: argparse.Namespace) -> int:
    from ..apps.resources import ResourceStore, parse_limits

    ptype = _ptype(a.process)
    limits = parse_limits(a.memory, a.cpus, a.pids, a.disk)
    if all(v is None for v in (limits.memory, limits.cpus, limits.pids, limits.disk)):
        raise InvalidArgument("no limit given",
                              f"e.g. paas resource:limit {a.app} --memory 512m --cpus 1")
    _need_app(app, a.app)
    now = ResourceStore(app.conn).set(a.app, ptype, limits)
    _out(f"=====> Setting resource limits for {a.app} ({ptype or _DEFAULT_LABEL})")
    for key, value in _limit_rows(now):
        if value:
            _out(f"       {key}: {value}")
    _takes_effect(a.app)
    return 0


def _with_default_disk(limits: Limits, app: App) -> Limits:
    """What a container of the type gets: the instance's default disk size unless set."""
    from dataclasses import replace

    default = app.ctx.limits.app_disk
    if limits.disk or not default:
        return limits
    return replace(limits, disk=format_bytes(default))


def _resource_clear(app: App, a: argparse.Namespace) -> int:
    from ..apps.resources import ResourceStore

    if a.all and a.process is not None:
        raise InvalidArgument("--all and --process cannot be combined", "drop one of them")
    ptype = None if a.all else _ptype(a.process)
    _need_app(app, a.app)
    ResourceStore(app.conn).clear(a.app, ptype)
    which = "all process types" if ptype is None else ptype or _DEFAULT_LABEL
    _out(f"-----> Cleared the resource limits of {a.app} ({which})")
    _takes_effect(a.app)
    return 0


def _resource_report(app: App, a: argparse.Namespace) -> int:
    from ..apps.resources import ResourceStore, limits_for
    from ..deploy.releases import ReleaseStore
    from .apps import report_lines
    from .render import emit_json

    _need_app(app, a.app)
    limits = ResourceStore(app.conn).limits(a.app)
    current = ReleaseStore(app.conn).current(a.app)
    types = [t for t, _ in current.processes] if current else []
    types += sorted(t for t in limits if t and t not in types)
    effective = {t: _with_default_disk(limits_for(limits.items(), t), app) for t in types}
    if a.format == "json":
        emit_json({"limits": {t or _DEFAULT_LABEL: dict(_limit_rows(v)) for t, v in limits.items()},
                   "effective": {t: dict(_limit_rows(v)) for t, v in effective.items()}})
        return 0
    fields = [(f"{t or _DEFAULT_LABEL} limit {k}", v) for t, lim in limits.items()
              for k, v in _limit_rows(lim) if v]
    fields += [(f"{t} effective", " ".join(f"{k}={v}" for k, v in _limit_rows(lim) if v) or "-")
               for t, lim in effective.items()]
    _out("\n".join(report_lines(f"{a.app} resource information", fields)))
    return 0


# -- ps ---------------------------------------------------------------------------------------
def _ps_rows(app: App, name: str) -> list[dict[str, Any]]:
    from ..deploy.processes import app_containers
    from ..runtime.lifecycle import Runtime
    from .render import human_ago

    rows = []
    for p in app_containers(Runtime(app.ctx, app.conn), name):
        c = p.container
        res = c.config.resources
        rows.append({"Process": f"{p.type}.{p.index}", "Release": f"v{p.version}",
                     "State": c.state, "Status": status_text(c), "Name": c.name,
                     "Id": c.id[:12], "Started": human_ago(c.started_at) if c.started_at else "",
                     "Restarts": c.restart_count, "ExitCode": c.exit_code,
                     "OOMKilled": c.oom_killed, "RestartPolicy": c.config.restart,
                     "Memory": res.memory, "Cpus": res.cpus, "PidsLimit": res.pids_limit,
                     "Disk": res.disk,
                     "Limits": limits_text(res.memory, res.cpus, res.pids_limit, res.disk),
                     "Mounts": [f"{b.source}:{b.target}" + (":ro" if b.readonly else "")
                                for b in c.config.binds]})
    return rows


def _ps(app: App, a: argparse.Namespace) -> int:
    from .render import emit_json, table

    _need_app(app, a.app)
    rows = _ps_rows(app, a.app)
    if a.format == "json":
        emit_json(rows)
    else:
        table(["PROCESS", "RELEASE", "STATE", "LIMITS", "STARTED", "CONTAINER"],
              [[r["Process"], r["Release"], r["Status"], r["Limits"], r["Started"], r["Name"]]
               for r in rows])
    return 0


PS_KEYS = ("restart-policy", "init-process", "host-ca-bundle")


def _ps_set(app: App, a: argparse.Namespace) -> int:
    from ..apps.store import AppStore

    if a.key not in PS_KEYS:
        raise InvalidArgument(f"unknown ps setting {a.key[:80]!r}",
                              f"use one of {', '.join(PS_KEYS)}; others: paas settings:set")
    store = AppStore(app.conn)
    if a.value is None:
        _need_app(app, a.app)
        store.unset_setting(a.app, a.key)
        value = store.setting(a.app, a.key)
        _out(f"-----> Reset {a.key} of {a.app} to the default ({value})")
    else:
        from ..apps.settings import validate_setting

        validate_setting(a.key, a.value)
        _need_app(app, a.app)
        value = store.set_setting(a.app, a.key, a.value)
        _out(f"-----> Setting {a.key} to {value} for {a.app}")
    _takes_effect(a.app)
    return 0


def _ps_report(app: App, a: argparse.Namespace) -> int:
    from ..apps.store import AppStore
    from ..deploy.releases import ReleaseStore
    from ..model import ContainerState
    from .apps import report_lines
    from .render import emit_json

    _need_app(app, a.app)
    current = ReleaseStore(app.conn).current(a.app)
    rows = _ps_rows(app, a.app)
    report: dict[str, Any] = {
        "deployed": current is not None,
        "release": f"v{current.version}" if current else None,
        "processes": len(rows),
        "running": sum(1 for r in rows if r["State"] == ContainerState.RUNNING),
        "restarting": sum(1 for r in rows if r["State"] == ContainerState.RESTARTING),
        "restart_policy": AppStore(app.conn).setting(a.app, "restart-policy"),
        "init_process": AppStore(app.conn).setting(a.app, "init-process"),
        "host_ca_bundle": AppStore(app.conn).setting(a.app, "host-ca-bundle"),
        "containers": rows,
    }
    if a.format == "json":
        emit_json(report)
        return 0
    fields = [("Deployed", "true" if current else "false"), ("Release", report["release"] or "-"),
              ("Processes", str(report["processes"])), ("Running", str(report["running"])),
              ("Restarting", str(report["restarting"])),
              ("Restart policy", report["restart_policy"]),
              ("Init process", report["init_process"]),
              ("Host CA bundle", report["host_ca_bundle"])]
    fields += [(f"Status {r['Process']}", f"{r['Status']} (CID: {r['Id']}, {r['Release']})")
               for r in rows]
    _out("\n".join(report_lines(f"{a.app} ps information", fields)))
    return 0


def configure(name: str, p: Parser) -> Handler:
    if name == "storage:ensure-directory":
        p.add_argument("name", metavar="NAME", help="usually the app's name")
        p.add_argument("--app", default="", metavar="APP",
                       help="the app whose id range owns it (default: the app called NAME)")
        p.add_argument("--chown", default="heroku", metavar="WHO",
                       help="heroku (uid 1000 in containers, default), root, false or a uid")
        return _storage_ensure
    p.add_argument("app", metavar="APP")
    if name in ("storage:mount", "storage:unmount"):
        p.add_argument("mount", metavar="HOSTDIR:CONTAINERDIR[:ro]")
        return _storage_mount if name == "storage:mount" else _storage_unmount
    if name == "ps:set":
        p.add_argument("key", metavar="KEY", help=", ".join(PS_KEYS))
        p.add_argument("value", nargs="?", metavar="VALUE",
                       help="restart-policy: no, on-failure[:N], always or unless-stopped; "
                            "init-process, host-ca-bundle: true or false; none: the default")
        return _ps_set
    if name in ("resource:limit", "resource:limit-clear"):
        p.add_argument("--process", "--process-type", metavar="TYPE",
                       help="one process type (default: the limits of every type)")
        if name == "resource:limit-clear":
            p.add_argument("--all", action="store_true", help="every type's limits")
            return _resource_clear
        p.add_argument("--memory", metavar="SIZE", help="e.g. 512m, 1g")
        p.add_argument("--cpus", "--cpu", metavar="N", help="e.g. 0.5, 1")
        p.add_argument("--pids", "--pids-limit", metavar="N", help="most processes at once")
        p.add_argument("--disk", metavar="SIZE",
                       help="the writable layer's size, e.g. 10g (ENOSPC when it is full)")
        return _resource_limit
    p.add_argument("--format", choices=["table", "json"], default="table")
    return {"storage:list": _storage_list, "resource:report": _resource_report,
            "ps": _ps, "ps:report": _ps_report}[name]
