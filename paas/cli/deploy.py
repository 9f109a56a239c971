"""App commands that change what runs: config:set/unset, ps:*, releases, rollback,
apps:destroy, run, logs, checks:* (thin: parse, call ``paas.deploy``, render).

Each change that affects running containers makes a new release and cuts over to it
with zero downtime (see ``paas.deploy.cutover``); ``--no-restart`` only records it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from ..deploy.deployer import Deployer
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure"]


def _progress(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _deployer(app: App) -> Deployer:
    from ..deploy.push import make_deployer

    return make_deployer(app.ctx, _progress)


def _need_app(app: App, name: str) -> None:
    from ..apps.store import AppStore
    from ..apps.validate import validate_app_name

    validate_app_name(name)
    AppStore(app.conn).get(name)  # NotFound with a hint


# -- config ---------------------------------------------------------------------------
def _config_set(app: App, a: argparse.Namespace) -> int:
    from ..apps.validate import parse_assignments

    _need_app(app, a.app)
    pairs = parse_assignments(a.pairs)  # all validated before anything is written
    keys = [k for k, _ in pairs]
    return _config_change(app, a.app, a.no_restart, "Set", keys,
                          lambda store: store.set_config(a.app, pairs))


def _config_unset(app: App, a: argparse.Namespace) -> int:
    from ..apps.validate import validate_config_key

    _need_app(app, a.app)
    keys = [validate_config_key(k) for k in a.keys]
    return _config_change(app, a.app, a.no_restart, "Unset", keys,
                          lambda store: store.unset_config(a.app, keys))


def _config_change(app: App, name: str, no_restart: bool, verb: str, keys: list[str],
                   apply: Callable[[Any], dict[str, str]]) -> int:
    """Change the config vars with ``apply(store)``; unless ``no_restart``, as a new release
    under the app's lock, undone if that release fails (the vars stay what runs)."""
    from ..apps.store import AppStore
    from ..deploy.releases import ReleaseStore

    store = AppStore(app.conn)
    if no_restart or ReleaseStore(app.conn).current(name) is None:
        apply(store)
        when = "no restart" if no_restart else "used from the first deploy"
        _progress(f"-----> {verb}ting config vars of {name} ({when}): {', '.join(keys)}")
        return 0
    d = _deployer(app)
    with d.locked(name):
        before = store.config(name)
        try:
            config = apply(store)
            _progress(f"-----> {verb}ting config vars: {', '.join(keys)}")
            d.change(name, f"{verb} {', '.join(keys)}", config=config)
        except BaseException:
            store.unset_config(name, [k for k in store.config(name) if k not in before])
            store.set_config(name, before)
            raise
    return 0


# -- ps ---------------------------------------------------------------------------------
def _scale(app: App, a: argparse.Namespace) -> int:
    _need_app(app, a.app)
    wanted: dict[str, int] = {}
    for item in a.counts:
        name, eq, count = item.partition("=")
        if not eq or not count.isdigit() or not 0 <= int(count) <= 100:
            raise InvalidArgument(f"invalid scale {item!r}", "write TYPE=COUNT, e.g. web=3")
        wanted[name] = int(count)
    from ..deploy.releases import ReleaseStore

    if ReleaseStore(app.conn).current(a.app) is None:
        raise InvalidArgument(f"{a.app} has no release yet", "deploy it before scaling")
    d = _deployer(app)
    with d.locked(a.app):
        current = d.releases.current(a.app)
        if current is None:
            raise InvalidArgument(f"{a.app} has no release yet", "deploy it before scaling")
        unknown = set(wanted) - set(dict(current.processes)) - {"web"}
        if unknown or "release" in wanted:
            known = ", ".join(t for t, _ in current.processes if t != "release")
            raise InvalidArgument(f"unknown process type {min(unknown or {'release'})!r}",
                                  f"the app's process types are: {known}")
        formation = {**dict(current.formation), **wanted}
        shown = " ".join(f"{t}={n}" for t, n in formation.items())
        _progress(f"-----> Scaling {a.app} to {shown}")
        d.change(a.app, f"Scale {shown}", formation=formation)
    return 0


def _ps_stop(app: App, a: argparse.Namespace) -> int:
    from ..deploy.processes import app_containers, stop_and_remove

    _need_app(app, a.app)
    d = _deployer(app)
    with d.locked(a.app):
        running = app_containers(d.rt, a.app)
        _progress(f"-----> Stopping {a.app} ({len(running)} container(s))")
        d.proxy.apply(_empty_route(d, a.app))  # 503 first, then no request reaches a dying one
        stop_and_remove(d.rt, running, 10)
    return 0


def _empty_route(d: Deployer, name: str) -> Any:
    from ..model import Route

    return Route(app=name, domains=tuple(d.apps.effective_domains(name)))


def _ps_restart(app: App, a: argparse.Namespace) -> int:
    """ps:start / ps:restart / ps:rebuild: run the current release again (rolling)."""
    _need_app(app, a.app)
    d = _deployer(app)
    with d.locked(a.app):
        if a._verb == "rebuild":
            current = d.releases.current(a.app)
            if current is None or not current.git_sha:
                raise InvalidArgument(f"{a.app} has nothing to rebuild", "push it first")
            repo = os.path.join(app.ctx.paths.root, "repos", f"{a.app}.git")
            d.deploy(a.app, repo, current.git_sha)
        else:
            d.change(a.app, "Restart" if a._verb == "restart" else "Start")
    return 0


def _ps_restore(app: App, a: argparse.Namespace) -> int:
    """After a reboot: nginx up; every app whose current release has no running
    containers is started, and every other one rerouted (paasd may have restarted its
    containers by their policy, with new addresses)."""
    from ..deploy.processes import app_containers

    d = _deployer(app)
    d.proxy.ensure_running()
    for rec in d.apps.list():
        current = d.releases.current(rec.name)
        if current is None:
            continue
        running = [p for p in app_containers(d.rt, rec.name)
                   if p.running and p.version == current.version]
        with d.locked(rec.name):
            if not running and any(n for _, n in current.formation):
                _progress(f"-----> Restoring {rec.name}")
                d.change(rec.name, "Restore")
            else:
                _progress(f"-----> Routing {rec.name} to its running containers")
                d.reroute(rec.name)
    return 0


# -- releases -------------------------------------------------------------------------
def _releases(app: App, a: argparse.Namespace) -> int:
    from ..deploy.releases import ReleaseStore
    from .render import emit_json, human_ago, table

    _need_app(app, a.app)
    rels = ReleaseStore(app.conn).list(a.app)
    if a.format == "json":
        emit_json([{"Version": r.version, "Description": r.description, "Image": r.image_id,
                    "GitSha": r.git_sha, "By": r.created_by, "Created": r.created,
                    "Formation": dict(r.formation)} for r in rels])
        return 0
    table(["VERSION", "DESCRIPTION", "COMMIT", "BY", "CREATED"],
          [[f"v{r.version}", r.description, r.git_sha[:7], r.created_by, human_ago(r.created)]
           for r in rels])
    return 0


def _rollback(app: App, a: argparse.Namespace) -> int:
    _need_app(app, a.app)
    version = None
    if a.version:
        text = a.version.removeprefix("v")
        if not text.isdigit():
            raise InvalidArgument(f"invalid release {a.version!r}", "write vN, e.g. v3")
        version = int(text)
    d = _deployer(app)
    with d.locked(a.app):
        started = time.monotonic()
        r = d.rollback(a.app, version)
        _progress(f"=====> {a.app} rolled back: v{r.version} ({r.description}) "
                  f"in {time.monotonic() - started:.1f}s")
    return 0


# -- apps -------------------------------------------------------------------------------
def _destroy(app: App, a: argparse.Namespace) -> int:
    from ..deploy.processes import app_containers, stop_and_remove
    from ..deploy.releases import ReleaseStore, image_tag

    _need_app(app, a.app)
    if not a.force and a.confirm != a.app:
        raise InvalidArgument(f"destroying {a.app} removes its containers, images, repo and config",
                              f"confirm with --force or --confirm {a.app}")
    d = _deployer(app)
    with d.locked(a.app):
        _progress(f"-----> Destroying {a.app}")
        d.proxy.remove(a.app)
        stop_and_remove(d.rt, app_containers(d.rt, a.app), 10)
        for r in ReleaseStore(app.conn).list(a.app):
            with contextlib.suppress(NotFound):  # tags of expired releases are gone already
                d.images.remove(image_tag(a.app, r.version), force=True)
        root = app.ctx.paths.root
        for path in (os.path.join(root, "repos", f"{a.app}.git"),
                     os.path.join(app.ctx.paths.build_cache, a.app), d.app_dir(a.app),
                     os.path.join(app.ctx.paths.certs, a.app)):  # its row goes with the app
            if os.path.isdir(path):
                shutil.rmtree(path)
        for path in (os.path.join(root, "repos", f".{a.app}.lock"),
                     os.path.join(root, "nginx", "logs", f"{a.app}-access.log"),
                     os.path.join(root, "nginx", "logs", f"{a.app}-error.log"),
                     os.path.join(root, "locks", f"{a.app}.lock")):  # held by us: flock is on the fd
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        d.apps.remove(a.app)
    from ..deploy.hooks import run_hooks

    run_hooks(app.ctx, "post-destroy", [a.app], a.app, _progress)
    _progress(f"=====> {a.app} destroyed")
    return 0


def _rename(app: App, a: argparse.Namespace) -> int:
    """State, repo and cache move to the new name; the current release is started under
    it (container names carry the app name), then the old containers and vhost go."""
    from ..apps.validate import validate_app_name
    from ..deploy.processes import app_containers, stop_and_remove
    from ..deploy.tls import stapled

    _need_app(app, a.app)
    validate_app_name(a.new)
    d = _deployer(app)
    with d.locked(a.app), d.locked(a.new):
        old_containers = app_containers(d.rt, a.app)
        if stapled(app.ctx, a.app):  # its vhost loads certs/OLD/tls.pem, which moves
            d.proxy.remove(a.app)
        d.apps.rename(a.app, a.new)
        _progress(f"-----> Renaming {a.app} to {a.new}")
        for base, suffix in ((os.path.join(app.ctx.paths.root, "repos"), ".git"),
                             (app.ctx.paths.build_cache, ""),
                             (os.path.dirname(d.app_dir(a.app)), ""),
                             (app.ctx.paths.certs, "")):  # its certificate's row follows
            src = os.path.join(base, a.app + suffix)
            if os.path.isdir(src):
                os.rename(src, os.path.join(base, a.new + suffix))
        if d.releases.current(a.new) is not None:
            d.change(a.new, f"Rename from {a.app}")
        stop_and_remove(d.rt, old_containers, 10)
        d.proxy.remove(a.app)
    _progress(f"=====> {a.app} is now {a.new}")
    return 0


# -- run / logs ------------------------------------------------------------------------
def _run(app: App, a: argparse.Namespace) -> int:
    from ..deploy.oneoff import run_oneoff
    from ..deploy.processes import web_port

    _need_app(app, a.app)
    if not a.command:
        raise InvalidArgument("give a command to run", f"e.g. paas run {a.app} bash -c 'ls'")
    d = _deployer(app)
    current = d.releases.current(a.app)
    if current is None:
        raise InvalidArgument(f"{a.app} has no release yet", "deploy it first")
    port = web_port(current, d.images.get(current.image_id).config.exposed_ports)
    command = list(a.command)
    if current.builder == "buildpack":  # through the image's .profile.d launcher
        command = ["/bin/bash", "-c", 'exec "$@"', "run", *command]
    if a.detach:  # paasd supervises it and removes it when it exits
        from ..deploy.oneoff import oneoff_name
        from ..deploy.processes import run_flags

        name = oneoff_name(a.app, "run")
        from ..apps.options import process_options

        flags = run_flags(current, "run", 1, port,
                          process_options(app.conn, a.app, app.ctx.limits), name=name,
                          command=command, rm=True)
        flags["restart"] = "no"
        d.client.request("POST", "/containers", {"flags": flags, "start": True, "app": a.app})
        _progress(name)
        return 0
    return run_oneoff(d.rt, d.client, current, "run", port,
                      lambda line: _progress(line.removeprefix("       ")), command=command)


def _enter(app: App, a: argparse.Namespace) -> int:
    """A shell (or CMD) in a running container of the app, like ``dokku enter``."""
    from .. import proc
    from ..deploy.processes import app_containers
    from ..runtime.lifecycle import Runtime

    _need_app(app, a.app)
    rt = Runtime(app.ctx, app.conn)
    running = [p for p in app_containers(rt, a.app) if p.running]
    wanted = a.process or "web.1"
    match = [p for p in running if f"{p.type}.{p.index}" == wanted] or (
        running if a.process is None else [])
    if not match:
        shown = ", ".join(f"{p.type}.{p.index}" for p in running) or "none"
        raise InvalidArgument(f"{a.app} has no running {wanted}", f"running: {shown}")
    c = rt.get(match[-1].container.id)
    tty = sys.stdin.isatty()
    command = list(a.command) or ["/bin/bash"]
    argv = rt.exec_argv(c, command, tty=tty)
    return proc.spawn(argv).wait()


def _logs(app: App, a: argparse.Namespace) -> int:
    from ..deploy.applogs import show_logs

    _need_app(app, a.app)
    return show_logs(app.ctx, app.conn, a.app, follow=a.follow, tail=a.num, ptype=a.ps)


def _checks(app: App, a: argparse.Namespace) -> int:
    from ..apps.store import AppStore

    _need_app(app, a.app)
    value = {"enable": "enabled", "disable": "disabled", "skip": "skipped"}[a._verb]
    AppStore(app.conn).set_setting(a.app, "checks", value)
    _progress(f"-----> Zero-downtime checks of {a.app}: {value}")
    return 0


def configure(name: str, p: Parser) -> Handler:
    verb = name.split(":", 1)[1] if ":" in name else name
    p.set_defaults(_verb=verb)
    if name in ("config:set", "config:unset"):
        p.add_argument("app", metavar="APP")
        p.add_argument("--no-restart", action="store_true", help="record only; no new release")
        if name == "config:set":
            p.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
            return _config_set
        p.add_argument("keys", nargs="+", metavar="KEY")
        return _config_unset
    if name == "ps:restore":
        return _ps_restore
    p.add_argument("app", metavar="APP")
    if name == "ps:scale":
        p.add_argument("counts", nargs="+", metavar="TYPE=N")
        return _scale
    if name == "ps:stop":
        return _ps_stop
    if name in ("ps:start", "ps:restart", "ps:rebuild"):
        return _ps_restart
    if name == "releases":
        p.add_argument("--format", choices=["table", "json"], default="table")
        return _releases
    if name == "releases:rollback":
        p.add_argument("version", nargs="?", metavar="vN", help="default: the previous release")
        return _rollback
    if name == "apps:destroy":
        p.add_argument("--force", action="store_true", help="do not ask for confirmation")
        p.add_argument("--confirm", metavar="APP", help="the app's name, typed again")
        return _destroy
    if name == "apps:rename":
        p.add_argument("new", metavar="NEW")
        return _rename
    if name == "run":
        p.add_argument("-d", "--detach", action="store_true",
                       help="in the background; 'paas logs APP' shows its output")
        p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")
        return _run
    if name == "enter":
        p.add_argument("process", nargs="?", metavar="TYPE.N", help="default: web.1")
        p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")
        return _enter
    if name == "logs":
        p.add_argument("-f", "--follow", action="store_true")
        p.add_argument("-n", "--num", type=int, default=None, metavar="N")
        p.add_argument("--ps", metavar="TYPE", help="only this process type")
        return _logs
    return _checks  # checks:enable / checks:disable / checks:skip
