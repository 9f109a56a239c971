"""Container lifecycle: create, start, stop, kill, remove, commit, exec.

``Runtime`` is the runtime stage's entry point. It combines the image store
(which hands over the rootfs as a ``Mount``), the container records, the OCI
spec builder and runc. Who *owns* a running container's process differs:
a foreground ``container:run`` owns it in the CLI process (``foreground``),
a detached one is owned by paasd's supervisor (``start_supervised``). Both
end in ``finish``, which records the exit and releases host resources.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .. import hostpath, modes, proc
from ..config import Context
from ..errors import CommandFailed, Conflict, PaasError
from ..model import (
    Container,
    ContainerConfig,
    ContainerState,
    HistoryEntry,
    IdMap,
    Image,
    RunOptions,
)
from .bundle import Bundle
from .containers import ContainerStore, new_id, validate_name
from .networking import ContainerNetwork
from .resolve import merge_env, parse_signal, pid_start_time, resolve_config
from .runc import Runc

if TYPE_CHECKING:
    import sqlite3

    from ..image.store import ImageStore

__all__ = ["Runtime", "parse_signal", "pid_start_time", "resolve_config"]


class Runtime:
    """Lifecycle operations for the containers of one instance."""

    def __init__(self, ctx: Context, conn: sqlite3.Connection, images: ImageStore | None = None,
                 *, defer: Callable[[Callable[[], object]], None] | None = None) -> None:
        """``defer`` runs cleanup later (paasd's janitor); None runs it now."""
        self.ctx = ctx
        self.defer = defer
        self.conn = conn
        self._images = images
        self.store = ContainerStore(conn)
        self.runc = Runc(ctx.runc, ctx.paths.runc_root)
        self.net = ContainerNetwork(ctx, conn)

    @property
    def guard(self) -> hostpath.Guard:
        """What bind sources may not reach (``paas.hostpath``)."""
        return hostpath.Guard.for_instance(self.ctx.paths.root)

    @property
    def images(self) -> ImageStore:
        """The image store, opened on first use (listing containers does not need it)."""
        if self._images is None:
            from ..image.store import ImageStore

            self._images = ImageStore(self.ctx, self.conn)
        return self._images

    # -- creation ------------------------------------------------------------
    def create(self, opts: RunOptions) -> Container:
        """Resolve, mount and record a new container (state ``created``); nothing left on failure."""
        from ..image.reference import parse_reference

        if opts.name is not None:
            validate_name(opts.name)
        ref = opts.image
        image = self.images.get(ref)
        if not ref.startswith("sha256:") and len(ref) < 64:
            ref = str(parse_reference(ref))
        if opts.host_ca:  # an app's host-ca-bundle opt-in (paas.build.hostca)
            from ..build.hostca import app_bundle, ca_bind, ca_env

            opts = replace(opts, binds=(*opts.binds, ca_bind(app_bundle(self.ctx.build_ca))),
                           env=ca_env(opts.env, image.config.env))
        cfg = self._with_defaults(resolve_config(opts, image, ref))
        for b in cfg.binds:  # a first look, before any work: each start checks again
            hostpath.check(b.source, b.policy, self.guard)
        self.net.check(cfg)
        cid = new_id()
        bundle = Bundle(self.ctx, cid)
        try:
            bundle.create_dirs(self._idmap(cfg), cfg.resources.disk)
            self._mount(bundle, cfg)
            cfg = self._resolve_user(bundle, cfg)
            container = self.store.add(cid, opts.name, cfg)
            self._write_spec(bundle, container)
        except BaseException:
            self._discard(bundle, cid, cfg)
            raise
        return container

    def _idmap(self, cfg: ContainerConfig) -> IdMap | None:
        """The container's own id range (an app's), else the instance's default one."""
        if not cfg.userns:
            return None
        return cfg.idmap if cfg.idmap is not None else self.ctx.idmap

    def _with_defaults(self, cfg: ContainerConfig) -> ContainerConfig:
        """``cfg`` with the instance's default limits where it sets none (also for records
        made before a default existed: the spec is rewritten at every start)."""
        from .limits import effective_resources

        return replace(cfg, resources=effective_resources(cfg.resources, self.ctx.limits))

    def _mount(self, bundle: Bundle, cfg: ContainerConfig) -> None:
        image = self.images.get(cfg.image_id)
        m = self.images.rootfs_mount(image, self._idmap(cfg), bundle.upper, bundle.work)
        if cfg.auto_remove:
            # the writable layer is thrown away at exit, so skip overlay's sync on unmount
            # (a sync of the whole upper filesystem, ~10-250 ms on a busy disk)
            m = replace(m, options=m.options + ("volatile",))
        bundle.mount_rootfs(m)
        from .user import check_rootfs

        check_rootfs(bundle.rootfs)

    def _resolve_user(self, bundle: Bundle, cfg: ContainerConfig) -> ContainerConfig:
        from .user import resolve_user

        uid, gid, groups = resolve_user(bundle.rootfs, cfg.user)
        user = f"{uid}:{gid}" + (":" + ",".join(map(str, groups)) if groups else "")
        return replace(cfg, user=user)

    def _write_spec(self, bundle: Bundle, c: Container) -> None:
        from .spec import build_spec

        # the host paths of -v and storage mounts are opened and checked now, at every
        # start, and runc gets what was opened (bundle.stage_binds)
        binds = bundle.stage_binds(c.config.binds, self.guard) if c.config.binds else ()
        plan = self.net.attach(c.id, c.config)
        etc_mounts = bundle.write_etc(c, ip=plan.ip, resolv=plan.resolv)
        spec = build_spec(
            replace(self._with_defaults(c.config), binds=binds),
            rootfs=bundle.rootfs,
            cgroups_path=bundle.cgroups_path,
            idmap=self._idmap(c.config),
            hostname=c.config.hostname or c.id[:12],
            netns_path=plan.netns_path,
            userns_path=plan.userns_path,
            extra_mounts=tuple(etc_mounts),
            init=self._init_binary(c.config),
        )
        bundle.write_spec(spec)

    def _init_binary(self, cfg: ContainerConfig) -> str | None:
        """The host path of tini for a ``--init`` container (``paas.runtime.init``)."""
        if not cfg.init:
            return None
        from .init import find_init

        return find_init(self.ctx.init_path)

    def stdio_owner(self, cfg: ContainerConfig) -> tuple[int, int] | None:
        """Who the container's stdio pipes must belong to (``spec.stdio_owner``)."""
        from .spec import stdio_owner

        return stdio_owner(cfg.user, self._idmap(cfg))

    def _discard(self, bundle: Bundle, cid: str, cfg: ContainerConfig) -> None:
        """Undo a (half-)made container; keeps the original error as the one raised."""
        try:
            self.net.detach(cid, cfg)
            bundle.remove()
        finally:
            self.store.remove(cid)

    def prepare(self, c: Container) -> Bundle:
        """Make a created or exited container's bundle runnable again (mount, /etc, spec)."""
        bundle = Bundle(self.ctx, c.id)
        if (c.state == ContainerState.CREATED and bundle.is_mounted()
                and os.path.exists(bundle.path("config.json"))):
            return bundle  # just made by create(): mounted, attached, spec written
        self._mount(bundle, c.config)
        try:
            self._write_spec(bundle, c)  # e.g. a storage mount that became a symlink
        except BaseException:
            bundle.unmount_rootfs()
            raise
        # a stale runc state from an unclean stop would make 'runc run' refuse the id
        if os.path.exists(os.path.join(self.ctx.paths.runc_root, c.id)):
            proc.run(self.runc.delete(c.id, force=True), check=False)
        return bundle

    # -- exit ------------------------------------------------------------------
    def finish(self, cid: str, exit_code: int, *, keep_layer: bool = False,
               restarting: bool = False) -> None:
        """Record an exit and release runc state, mounts (and the container, with --rm);
        ``keep_layer``: a limited writable layer stays attached (a build reads it next);
        ``restarting``: its restart policy will start it again (recorded as such)."""
        c = self.store.get(cid)
        bundle = Bundle(self.ctx, cid)
        if c.config.auto_remove and self.defer is not None:
            # never started again: its runc state, cgroup, mount and bundle can go after we
            # reply (a crash before that is collected by collect_garbage at the next start)
            self.net.detach(cid, c.config, wait=False)
            self.store.remove(cid)
            delete = self.runc.delete(cid, force=True)
            self.defer(lambda: proc.run(delete, check=False))
            self.defer(bundle.remove)
            return
        oom = bundle.oom_killed()
        proc.run(self.runc.delete(cid, force=True), check=False)
        bundle.unmount_rootfs(keep_layer=keep_layer)
        # the network attachment (netns, veth, address) stays until the container is
        # removed: a restart (by its policy, or container:start) keeps its address, so
        # whatever points at it (an app's service address) stays right
        # recorded last: whoever sees "exited" (container:rm) finds the cleanup done
        self.store.set_exited(cid, exit_code, oom_killed=oom,
                              restarting=restarting and not c.config.auto_remove)
        if c.config.auto_remove:
            try:
                bundle.remove()
            finally:
                self.store.remove(cid)

    def collect_garbage(self) -> int:
        """``runc delete`` every runc container of this instance that has no record, and
        remove every bundle without one (a removed container whose deferred cleanup a
        crash interrupted); how many. Only while nothing is being created."""
        res = proc.run(self.runc.list_ids(), check=False)
        known = set(self.store.ids())
        gone = {cid for cid in res.stdout.split() if cid not in known}
        for cid in gone:
            proc.run(self.runc.delete(cid, force=True), check=False)
        try:
            dirs = set(os.listdir(self.ctx.paths.containers)) - known
        except FileNotFoundError:
            dirs = set()
        for cid in dirs:
            Bundle(self.ctx, cid).remove()
        return len(gone | dirs)

    # -- queries -----------------------------------------------------------------
    def get(self, ref: str) -> Container:
        return self.reconcile(self.store.get(ref))

    def list_containers(self, *, running_only: bool = False) -> list[Container]:
        return [self.reconcile(c) for c in self.store.list_all(running_only=running_only)]

    def reconcile(self, c: Container) -> Container:
        """A 'running' record whose process is gone and whose owner never recorded the exit
        (the owner died) becomes exited with 255, as Docker reports such containers."""
        if c.state != ContainerState.RUNNING or c.pid is None:
            return c
        if self._alive(c):
            return c
        # the owner reaps and records within milliseconds; a busy paasd may take seconds,
        # and recording 255 over its real status would lose the exit code
        for wait in (0.5, 10.0 if self._paasd_running() else 0.0):
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                time.sleep(0.02)
                try:
                    fresh = self.store.get(c.id)
                except PaasError:
                    return c  # removed by its owner (--rm)
                if fresh.state != ContainerState.RUNNING or fresh.pid != c.pid:
                    return fresh
        if self._keeper_without_paasd():
            return c  # live restore: the keeper has its status, the next paasd records it
        self.finish(c.id, 255)
        try:
            return self.store.get(c.id)
        except PaasError:
            return c

    def _paasd_running(self) -> bool:
        from ..daemon.process import read_pidfile

        pid = read_pidfile(self.ctx.paths.daemon_pidfile)
        return pid is not None and pid_start_time(pid) is not None

    def _keeper_without_paasd(self) -> bool:
        from ..daemon.process import read_pidfile

        def running(pidfile: str) -> bool:
            pid = read_pidfile(pidfile)
            return pid is not None and pid_start_time(pid) is not None

        paths = self.ctx.paths
        return running(paths.keeper_pidfile) and not running(paths.daemon_pidfile)

    def _alive(self, c: Container) -> bool:
        return c.pid is not None and pid_start_time(c.pid) == self.store.pid_start(c.id)

    def is_running(self, c: Container) -> bool:
        return self.reconcile(c).state == ContainerState.RUNNING

    # -- signals, stop, remove -------------------------------------------------------
    def kill(self, c: Container, signal: str = "KILL") -> None:
        if not self.is_running(c):
            raise Conflict(f"container {c.name} is not running", "start it with 'paas container:start'")
        from .restart import FATAL_SIGNALS

        if parse_signal(signal) in FATAL_SIGNALS | {self._stop_signal(c)}:
            self.store.set_stopped_by_user(c.id, True)  # Docker: disables the restart policy
        proc.run(self.runc.kill(c.id, parse_signal(signal), all_processes=False),
                 what=f"signal container {c.name}")

    def wait_exit(self, c: Container, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.is_running(self.store.get(c.id)):
                    return True
            except PaasError:
                return True  # removed (--rm) meanwhile
            time.sleep(0.02)
        return False

    def stop(self, c: Container, timeout: float = 10.0) -> None:
        self.store.set_stopped_by_user(c.id, True)  # no restart policy applies until a start
        if not self.is_running(c):
            return
        image_sig = self._stop_signal(c)
        proc.run(self.runc.kill(c.id, image_sig), check=False)
        if self.wait_exit(c, timeout):
            return
        proc.run(self.runc.kill(c.id, "KILL", all_processes=True), check=False)
        if not self.wait_exit(c, 10.0):
            raise CommandFailed(f"container {c.name} did not exit after SIGKILL")

    def _stop_signal(self, c: Container) -> str:
        try:
            sig = self.images.get(c.config.image_id).config.stop_signal
        except PaasError:
            sig = ""
        return parse_signal(sig) if sig else "TERM"

    def remove(self, c: Container, *, force: bool = False) -> None:
        c = self.reconcile(c)
        if c.state == ContainerState.RUNNING and not force:
            raise Conflict(
                f"cannot remove running container {c.name}",
                f"stop it first with 'paas container:stop {c.name}' or use -f",
            )
        # no restart policy may bring it back (and mount its rootfs again) while it goes
        self.store.set_stopped_by_user(c.id, True)
        if c.state == ContainerState.RUNNING:
            proc.run(self.runc.kill(c.id, "KILL", all_processes=True), check=False)
            self.wait_exit(c, 10.0)
        proc.run(self.runc.delete(c.id, force=True), check=False)
        try:
            self._discard(Bundle(self.ctx, c.id), c.id, c.config)
        except OSError as err:
            raise CommandFailed(f"could not remove container {c.name}: {err}") from err

    # -- images from containers ----------------------------------------------------
    def commit(self, c: Container, ref: str | None, *, message: str = "", author: str = "") -> Image:
        base = self.images.get(c.config.image_id)
        bundle = Bundle(self.ctx, c.id)
        running = self.is_running(c)
        if running:
            proc.run(self.runc.pause(c.id), check=False)
        try:
            history = HistoryEntry(
                created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                created_by=" ".join(c.config.args),
                comment=message,
            )
            with bundle.layer_attached():  # a stopped container's limited layer is not
                return self.images.commit_layer(
                    base, bundle.upper, ref, history=history, idmap=self._idmap(c.config)
                )
        finally:
            if running:
                proc.run(self.runc.resume(c.id), check=False)

    # -- exec -------------------------------------------------------------------------
    def exec_argv(self, c: Container, args: list[str], *, tty: bool, env: tuple[str, ...] = (),
                  user: str | None = None, workdir: str | None = None) -> list[str]:
        """Write a process.json for ``args`` and return the ``runc exec`` argv."""
        if not self.is_running(c):
            raise Conflict(f"container {c.name} is not running", "start it with 'paas container:start'")
        bundle = Bundle(self.ctx, c.id)
        with open(bundle.path("config.json")) as f:
            process: dict[str, Any] = json.load(f)["process"]
        process["args"] = list(args)
        process["terminal"] = tty
        process["env"] = list(merge_env(tuple(process.get("env", [])), env))
        if workdir:
            process["cwd"] = workdir
        if user:
            from .spec import capabilities_for
            from .user import resolve_user

            uid, gid, groups = resolve_user(bundle.rootfs, user)
            process["user"] = {"uid": uid, "gid": gid, "additionalGids": list(groups)}
            process["capabilities"] = capabilities_for(uid)
        path = bundle.path(f"exec-{os.getpid()}-{time.monotonic_ns()}.json")
        with open(modes.create(path), "w") as f:  # the environment: root-only
            f.write(json.dumps(process))
        return self.runc.exec(c.id, path, tty=tty)

    # -- attached start (the CLI runs runc) ------------------------------------------------
    def attach_plan(self, c: Container) -> dict[str, Any]:
        """What a CLI needs to run ``c`` attached: runc argv (detached init unless a TTY,
        so the CLI can reap it as a subreaper), pid file, log path, and the kill argv."""
        bundle = self.prepare(c)
        pid_file = bundle.path("init.pid")
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        argv = self.runc.run(c.id, bundle.dir, detach=not c.config.tty, pid_file=pid_file)
        argv[0] = _on_path(argv[0])  # spares the CLI a walk of its PATH
        return {
            "id": c.id,
            "name": c.name,
            "argv": argv,
            "stdin": c.config.stdin,
            "tty": c.config.tty,
            "pid_file": pid_file,
            "log_path": bundle.log_path,
            "kill_argv": self.runc.kill(c.id, "")[:-1],
            "init": c.config.init,  # tini is PID 1: SIGPIPE reaches the command itself
            "stdio_owner": self.stdio_owner(c.config),
        }

    # -- supervised start (paasd) --------------------------------------------------------
    def start_supervised(self, c: Container, launch: Callable[..., int],
                         on_exit: Callable[[str, int, int], None]) -> Container:
        """Start ``c`` detached under paasd. ``launch`` is ``Supervisor.launch``; ``on_exit``
        must call ``finish`` (with a DB connection of the supervisor's thread)."""
        c = self.reconcile(c)
        if c.state == ContainerState.RUNNING:
            return c
        bundle = self.prepare(c)
        pid_file = bundle.path("init.pid")
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        argv = self.runc.run(c.id, bundle.dir, detach=True, pid_file=pid_file)
        try:
            pid = launch(c.id, argv, pid_file=pid_file, log_path=bundle.log_path,
                         open_stdin=c.config.stdin, on_exit=on_exit,
                         owner=self.stdio_owner(c.config))
        except BaseException:
            bundle.unmount_rootfs()
            self.net.detach(c.id, c.config)
            raise
        self.record_start(c.id, pid)
        return self.store.get(c.id)

    def record_start(self, cid: str, pid: int) -> None:
        """Mark running unless the process is already reaped (its exit is being recorded).
        The staged bind sources go now: the container has its own mounts of them, and
        nothing under PAAS_ROOT should lead into the operator's data while it runs."""
        Bundle(self.ctx, cid).unstage_binds()
        start = pid_start_time(pid)
        if start is not None:
            self.store.set_running(cid, pid, start)


@lru_cache(maxsize=4)
def _on_path(binary: str) -> str:
    """``binary`` as an absolute path when found on PATH, else as given."""
    import shutil

    return shutil.which(binary) or binary
