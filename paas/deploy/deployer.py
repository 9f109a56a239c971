"""``Deployer``: the one entry point of the deploy stage.

``deploy(app, sha)``: check out the pushed commit, build it (its Dockerfile, else
buildpacks with the app's config as ENV_DIR), record a release, run the
``release`` process type, then cut over (``cutover``). ``release(app, ...)``
makes a new release from the current one with another config, scale or image
(config:set, ps:scale, releases:rollback) and cuts over to it. Progress goes to a
callback in Dokku's ``----->`` style; a failure anywhere before the proxy switch
leaves the previous release serving.

Not here: receiving pushes (``paas.receive``), the proxy's config (``paas.proxy``),
the app registry (``paas.apps``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping

from .. import modes
from ..apps.idmaps import IdMaps
from ..apps.store import AppStore
from ..build.appfiles import read_app_file
from ..build.builder import Builder
from ..build.procfile import parse_procfile, processes_of
from ..build.progress import BuildEvent, render_plain
from ..config import Context
from ..errors import CommandFailed, NotFound, PaasError
from ..image.store import ImageStore
from ..model import BuildRequest, Image, Release, Route, Upstream
from ..runtime.lifecycle import Runtime
from ..sched import background_priority
from .checkout import checkout
from .cutover import Cutover, Plan
from .formation import formation_from_app_json, new_formation, scale_lines
from .health import checks_from_app_json
from .hooks import run_hooks
from .locks import DeployLock, refuse_if_locked
from .processes import web_port
from .releases import DEFAULT_KEEP, ReleaseStore, image_tag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..daemon.client import DaemonClient
    from ..proxy import Proxy

__all__ = ["Deployer"]

Progress = Callable[[str], None]
APP_FILES = ("app.json", "nginx.conf.j2")


class Deployer:
    def __init__(self, ctx: Context, rt: Runtime, client: DaemonClient, proxy: Proxy,
                 progress: Progress) -> None:
        self.ctx = ctx
        self.rt = rt
        self.images: ImageStore = rt.images
        self.client = client
        self.proxy = proxy
        self.progress = progress
        self.apps = AppStore(rt.conn)
        self.releases = ReleaseStore(rt.conn)

    # -- locking ---------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, app: str, wait: bool = True, what: str = "") -> Iterator[None]:
        """The app's deploy lock: one deploy/config change/scale at a time per app
        (``locks.DeployLock``: released when its holder dies; ``what`` is shown to waiters)."""
        with DeployLock(self.ctx.paths.root).hold(app, wait=wait, what=what,
                                                  progress=self.progress), \
                background_priority():  # the apps serving meanwhile come first
            yield

    # -- a push --------------------------------------------------------------------
    def deploy(self, app: str, repo: str, sha: str, pusher: str = "") -> Release:
        refuse_if_locked(self.rt.conn, app)
        started = time.monotonic()
        work = tempfile.mkdtemp(prefix=f"deploy-{app}-", dir=self.ctx.paths.tmp)
        try:
            src = os.path.join(work, "src")
            os.mkdir(src)
            checkout(repo, sha, src)
            # read (and app.json checked) before the build: a bad file rejects the push at once
            files = {name: _read(os.path.join(src, name)) for name in APP_FILES}
            initial: dict[str, int] = {}
            if files["app.json"]:
                checks_from_app_json(files["app.json"])
                initial = formation_from_app_json(files["app.json"])
            procfile = _read(os.path.join(src, "Procfile"))
            if procfile:
                parse_procfile(procfile)
            image, builder, processes = self._build(app, src, sha)
        finally:
            shutil.rmtree(work)
        current = self.releases.current(app)
        formation = new_formation(processes, current, initial)  # app.json's: a first deploy
        release = self.releases.add(
            app, image_id=image.id, processes=processes, config=self.apps.config(app),
            formation=formation, git_sha=sha, description=f"Deploy {sha[:7]}",
            created_by=pusher, builder=builder)
        self._run(release, image, files)
        for line in scale_lines(app, formation):
            self.progress(line)
        self.progress(f"=====> Application deployed in {time.monotonic() - started:.1f}s:")
        for d in self.apps.effective_domains(app):
            self.progress(f"       http://{d}{_port_suffix()}")
        return release

    def _build(self, app: str, src: str, sha: str) -> tuple[Image, str, dict[str, str]]:
        dockerfile = os.path.isfile(os.path.join(src, "Dockerfile"))
        how = "Dockerfile" if dockerfile else "buildpacks"
        self.progress(f"-----> Building {app} from {how} ({sha[:7]})")

        def show(e: BuildEvent) -> None:
            for line in render_plain(e).splitlines():
                # a buildpack's detail lines are indented already
                shown = line.startswith(("----->", "=====>", " !", "       "))
                self.progress(line if shown else f"       {line}")

        req = BuildRequest(context=src, buildpack=not dockerfile, cache_name=app, app=app,
                           build_args=tuple(self.apps.config(app).items()) if not dockerfile else ())
        idmap = IdMaps(self.ctx, self.rt.conn).for_app(app)  # its build containers' too
        result = Builder(self.ctx, self.rt, self.images, show, idmap=idmap).build(req)
        image = result.image
        run_hooks(self.ctx, "post-build", [app, image.id], app, self.progress)
        if dockerfile:
            procfile = _read(os.path.join(src, "Procfile"))
            processes = parse_procfile(procfile) if procfile else {}
            processes.setdefault("web", "")
            return image, "dockerfile", processes
        processes = processes_of(image.config) or {"web": ""}
        return image, "buildpack", processes

    # -- releases from the current one ------------------------------------------------
    def change(self, app: str, description: str, *, config: Mapping[str, str] | None = None,
               formation: Mapping[str, int] | None = None, restart: bool = True) -> Release:
        current = self.releases.current(app)
        if current is None:
            raise NotFound(f"{app} has no release yet", f"deploy it first: git push to {app}")
        release = self.releases.add(
            app, image_id=current.image_id, processes=dict(current.processes),
            config=dict(current.config) if config is None else dict(config),
            formation=dict(current.formation) if formation is None else dict(formation),
            git_sha=current.git_sha, description=description, builder=current.builder)
        if restart:
            self._run(release, self.images.get(release.image_id))
        else:  # current from now on: the next restart starts it
            self.releases.mark_live(app, release.version)
        return release

    def rollback(self, app: str, version: int | None = None) -> Release:
        current = self.releases.current(app)
        if current is None:
            raise NotFound(f"{app} has no release yet", "there is nothing to roll back")
        refuse_if_locked(self.rt.conn, app)
        if version is None:
            older = self.releases.list(app)[1:2]
            if not older:
                raise NotFound(f"{app} has only one release", "there is nothing to roll back to")
            version = older[0].version
        target = self.releases.get(app, version)
        try:
            image = self.images.get(target.image_id)
        except NotFound as err:
            raise NotFound(f"the image of v{version} is gone (older than keep-releases)",
                           "pick a newer release, or deploy again") from err
        release = self.releases.add(
            app, image_id=target.image_id, processes=dict(target.processes),
            config=dict(target.config), formation=dict(current.formation),
            git_sha=target.git_sha, description=f"Rollback to v{version}",
            builder=target.builder)
        # the config vars go back too (Heroku's rollback): the registry follows
        now = self.apps.config(app)
        self.apps.unset_config(app, [k for k in now if k not in dict(target.config)])
        self.apps.set_config(app, dict(target.config))
        self._run(release, image)
        return release

    # -- running a release --------------------------------------------------------------
    # -- files of the app's repo the platform reads (health checks, nginx template) --------
    def app_dir(self, app: str) -> str:
        return os.path.join(self.ctx.paths.root, "apps", app)

    def _keep_app_files(self, app: str, files: Mapping[str, str]) -> None:
        """app.json and nginx.conf.j2 of the deployed commit, for every later restart."""
        d = self.app_dir(app)
        modes.makedirs(d)
        for name in APP_FILES:
            text = files.get(name, "")
            path = os.path.join(d, name)
            if text:
                with open(modes.create(path + ".tmp"), "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(path + ".tmp", path)
            elif os.path.exists(path):
                os.unlink(path)

    def _app_file(self, app: str, name: str, pending: Mapping[str, str] | None = None) -> str:
        if pending is not None:
            return pending.get(name, "")
        return _read(os.path.join(self.app_dir(app), name))

    def route(self, app: str, upstreams: tuple[Upstream, ...],
              pending: Mapping[str, str] | None = None) -> Route:
        settings = {k.removeprefix("nginx."): v for k, v in self._settings(app).items()
                    if k.startswith("nginx.")}
        return Route(app=app, domains=tuple(self.apps.effective_domains(app)),
                     upstreams=upstreams, settings=tuple(sorted(settings.items())),
                     template=self._app_file(app, "nginx.conf.j2", pending))

    def reroute(self, app: str) -> None:
        """Apply the app's route again (domains or nginx settings changed): the running web
        containers of its current release, no restart."""
        from .processes import app_containers, ip_of

        current = self.releases.current(app)
        upstreams: tuple[Upstream, ...] = ()
        if current is not None:
            port = web_port(current, self.images.get(current.image_id).config.exposed_ports)
            upstreams = tuple(Upstream(ip_of(self.rt, p.container), port)
                              for p in app_containers(self.rt, app)
                              if p.type == "web" and p.running and p.version == current.version)
        self.proxy.apply(self.route(app, upstreams))

    def _run(self, release: Release, image: Image, files: Mapping[str, str] | None = None) -> None:
        """Cut over to ``release``; if that fails, the release stays pending (never current;
        the next deploy forgets it, and its number is not reused, so no container name
        of it can clash with a later release's) and ``files`` (app.json, nginx.conf.j2 of
        a push) are not kept."""
        idmaps = IdMaps(self.ctx, self.rt.conn)
        switched: list[bool] = []
        # an app from before id ranges per app moves to its own now (storage re-owned),
        # before the first container of this release; back if it fails before the switch
        move = idmaps.move_app(release.app)
        if move is not None:
            self.progress(f"-----> Moving {release.app} to its own id range "
                          f"({move.new.host_id}-{move.new.host_id + move.new.size - 1})")
        try:
            self._cutover(release, image, files, switched)
        except BaseException:
            with contextlib.suppress(NotFound):
                self.images.remove(image_tag(release.app, release.version), force=True)
            if move is not None and not switched:
                idmaps.undo_move(move)
            raise
        if files is not None:
            self._keep_app_files(release.app, files)

    def _cutover(self, release: Release, image: Image, files: Mapping[str, str] | None,
                 switched: list[bool]) -> None:
        app = release.app
        self.images.tag(image.id, image_tag(app, release.version))
        self.progress(f"-----> Releasing {app} (v{release.version})")
        port = web_port(release, image.config.exposed_ports)
        if "release" in dict(release.processes):
            self._release_phase(release, port)
        app_json = self._app_file(app, "app.json", files)
        checks = tuple(checks_from_app_json(app_json)) if app_json else ()
        plan = Plan(image=image, port=port, route=self.route(app, (), files), checks=checks,
                    check_mode=self.apps.setting(app, "checks", "enabled"),
                    drain=float(os.environ.get("PAAS_DRAIN_SECONDS", "2")))
        run_hooks(self.ctx, "pre-deploy", [app, str(release.version), image.id], app,
                  self.progress)
        self.progress(f"-----> Deploying {app} (v{release.version})")
        self._forget_abandoned(app, release.version)
        def live() -> None:
            switched.append(True)
            self.releases.mark_live(app, release.version)

        Cutover(self.rt, self.client, self.proxy, self.progress, switched=live).run(release, plan)
        self._expire(app)
        self._prune()
        run_hooks(self.ctx, "post-deploy", [app, str(release.version)], app, self.progress)

    def _forget_abandoned(self, app: str, version: int) -> None:
        """Releases that never went live (their cutover failed, or their deploy died: kill
        -9, a crash): their containers, image tags and records go; they never served."""
        from .processes import app_containers, stop_and_remove

        dead = [v for v in self.releases.pending(app) if v < version]
        if not dead:
            return
        left = [p for p in app_containers(self.rt, app) if p.version in dead]
        if left:
            self.progress(f"-----> Cleaning up after an interrupted deploy: "
                          f"{', '.join(sorted({f'v{p.version}' for p in left}))}")
            stop_and_remove(self.rt, left, 0)
        for v in dead:
            self.releases.remove(app, v)
            with contextlib.suppress(NotFound):
                self.images.remove(image_tag(app, v), force=True)

    def _settings(self, app: str) -> dict[str, str]:
        return self.apps.settings(app)

    def _release_phase(self, release: Release, port: int) -> None:
        from .oneoff import run_oneoff

        self.progress("-----> Running the release command")
        code = run_oneoff(self.rt, self.client, release, "release", port, self.progress)
        if code != 0:
            raise CommandFailed(f"the release command failed (exit {code})",
                                "the previous release keeps serving", returncode=code)

    def _expire(self, app: str) -> None:
        """Untag the images of releases older than keep-releases (image:prune frees them)."""
        keep = int(self.apps.setting(app, "keep-releases", str(DEFAULT_KEEP)) or DEFAULT_KEEP)
        in_use = {c.config.image_id: c.name for c in self.rt.store.list_all()}
        for r in self.releases.list(app)[keep:]:
            with contextlib.suppress(NotFound):  # in use (a one-off): untagged, kept
                self.images.remove(image_tag(app, r.version), force=True, in_use=in_use)

    def _prune(self) -> None:
        """What no container, kept release, tag or the build cache (within its cap) needs
        (``gc``), and nginx logs over ``PAAS_NGINX_LOG_MAX`` (default 100m) rotated; a
        failure is reported, the deploy stands."""
        from ..runtime.options import parse_size
        from .prune import auto_prune

        try:
            line = auto_prune(self.rt)
            self.proxy.rotate_logs(parse_size(os.environ.get("PAAS_NGINX_LOG_MAX") or "100m"))
        except (PaasError, OSError, sqlite3.Error, ValueError) as err:
            # the new release is live already: a failed prune must not undo the deploy
            self.progress(f" !     Pruning after the deploy failed: {err}")
            return
        if line:
            self.progress(f"-----> {line}")


_read = read_app_file


def _port_suffix() -> str:
    port = os.environ.get("PAAS_HTTP_PORT", "80")
    return "" if port == "80" else f":{port}"
