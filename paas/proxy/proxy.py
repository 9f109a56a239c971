"""``Proxy``: the instance's own nginx master and its vhosts, changed safely.

Every config change follows one sequence, under a lock file: render (pure),
write the candidate next to its target, ``nginx -t`` a temporary main config
that includes the other apps' live vhosts plus the candidate, atomic rename,
then a graceful reload (SIGHUP through ``nginx -s reload``: old workers finish
their requests) or a start when the master is not running. A candidate that
fails ``nginx -t`` is deleted and never installed; the error carries nginx's
message. After a reload, ``reload`` waits until every accepting worker is one
started by the reload, so the new config is live when ``apply`` returns.

With a ``Switch`` (the deploy passes ``paas.network.services.AppServices``), a
vhost proxies to the app's stable service address instead of container IPs,
and ``apply`` moves traffic by switching that address's targets: the vhost
text does not change between deploys, so nginx is not reloaded and clients'
keep-alive connections are never cut. A reload happens only when the vhost
itself changes (domains, settings, template, the app starting or stopping);
then the switch happens before the reload when the app gets containers, and
after it when the app loses them, so nginx never proxies to an empty address.

paas only touches files under ``PAAS_ROOT/nginx`` (see ``paas.proxy.params``).
With HTTPS (``PAAS_HTTPS_PORT``), every vhost also has a TLS server whose
certificate nginx reads per handshake from ``PAAS_ROOT/certs/APP/tls.pem``: a
certificate change is a file rename (``paas.certs``) and never touches nginx;
except a certificate naming an OCSP responder, loaded at reload to be stapled
(``paas.proxy.stapling``; ``paas.deploy.tls`` reloads when it changes).

Not here: deciding which containers are healthy (the deploy does, and hands a
``Route``), certificates, and driving a system nginx.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from .. import modes, proc
from ..config import Context, prepare_root
from ..errors import CommandFailed, FailedPrecondition, InvalidArgument, NotFound
from ..model import Route, Upstream
from . import nginx
from .params import ProxyParams, params_from_env, worker_ids
from .render import render_app, render_main
from .stapling import stapling_of

__all__ = ["NginxConfigError", "Proxy", "Switch"]

log = logging.getLogger(__name__)

RELOAD_TIMEOUT = 10.0
START_TIMEOUT = 5.0
STOP_TIMEOUT = 10.0
# the master's: logs and the pid file it creates are root-only (0600; it chowns logs to
# the workers' user when it reopens them), its temp dirs 0700
NGINX_UMASK = 0o077


class NginxConfigError(InvalidArgument):
    """``nginx -t`` refused a config; ``output`` is what nginx said."""

    def __init__(self, message: str, hint: str = "", *, output: str = "") -> None:
        super().__init__(message, hint)
        self.output = output


class Switch(Protocol):
    """Stable per-app addresses whose targets change without touching nginx."""

    def front(self, app: str) -> tuple[Upstream, ...]: ...

    def switch(self, app: str, endpoints: Sequence[Upstream]) -> None: ...

    def forget(self, app: str) -> None: ...


class Proxy:
    """The instance's nginx: ``apply``/``remove`` vhosts, ``reload``, ``stop``."""

    def __init__(self, ctx: Context, env: Mapping[str, str] | None = None,
                 params: ProxyParams | None = None, switch: Switch | None = None) -> None:
        self.ctx = ctx
        self.params = params or params_from_env(ctx, env)
        self.switch = switch

    # --- queries ------------------------------------------------------------------

    def is_running(self) -> bool:
        return nginx.master_pid(self.params) is not None

    def show(self, app: str) -> str:
        """The installed vhost of ``app``."""
        try:
            with open(self.params.app_conf(app), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError as err:
            raise NotFound(f"app {app} has no nginx config",
                           "it gets one when it is deployed") from err

    def apps(self) -> list[str]:
        """The apps that have a vhost installed."""
        try:
            names = os.listdir(self.params.apps_dir)
        except FileNotFoundError:
            return []
        return sorted(n.removesuffix(".conf") for n in names
                      if n.endswith(".conf") and not n.startswith("."))

    # --- changes ------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Write the main config (when it changed) and start the master if it is down."""
        with self._locked():
            self._prepare()
            if not self.is_running():
                self._start()

    def apply(self, route: Route) -> None:
        """Send ``route.app``'s traffic to ``route.upstreams``: switch the service address
        when the vhost is unchanged, else install the new vhost (validated by ``nginx -t``
        first) and reload."""
        endpoints = route.upstreams
        if self.switch is not None and endpoints:
            route = replace(route, upstreams=self.switch.front(route.app))
        # refuses bad values before any change; a stapled certificate is loaded statically
        text = render_app(route, self.params, stapling_of(self.params, route.app))
        with self._locked():
            main_changed = self._prepare()
            target = self.params.app_conf(route.app)
            if not main_changed and self.is_running() and _read(target) == text:
                self._switch(route.app, endpoints)
                log.info("switched %s to %d upstreams, nginx unchanged", route.app, len(endpoints))
                return
            candidate = os.path.join(self.params.apps_dir,
                                     f".{route.app}.conf.{secrets.token_hex(4)}")
            _write(candidate, text)
            try:
                self._test(self._live_vhosts(exclude=target) + [candidate],
                           what=f"the nginx config of app {route.app}",
                           shown={candidate: target})
                if endpoints:  # the address has its targets before nginx uses it
                    self._switch(route.app, endpoints)
                os.replace(candidate, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(candidate)
            log.info("installed the vhost of %s (%d upstreams)", route.app, len(endpoints))
            self._reload_or_start()
            if not endpoints:  # nginx no longer uses the address
                self._switch(route.app, ())

    def _switch(self, app: str, endpoints: Sequence[Upstream]) -> None:
        if self.switch is not None:
            self.switch.switch(app, endpoints)

    def remove(self, app: str) -> None:
        """Remove ``app``'s vhost (its logs stay), reload, and drop its service address."""
        with self._locked():
            try:
                os.unlink(self.params.app_conf(app))
            except FileNotFoundError:
                pass
            else:
                if self.is_running():
                    self._reload()
            if self.switch is not None:
                self.switch.forget(app)

    def validate(self) -> None:
        """``nginx -t`` of the live config; ``NginxConfigError`` with nginx's message."""
        if not os.path.exists(self.params.main_conf):
            raise FailedPrecondition("nginx is not set up for this instance",
                                     "run 'paas nginx:start'")
        self._test(None, what="the nginx config")

    def reload(self) -> None:
        """Graceful reload (in-flight requests finish on the old workers)."""
        with self._locked():
            self._prepare()
            self._reload_or_start()

    def rotate_logs(self, max_bytes: int) -> list[str]:
        """Every log of the instance's nginx larger than ``max_bytes`` moves to ``NAME.1``
        (replacing the previous one) and nginx reopens its logs: disk use stays bounded
        however much traffic comes. The names rotated."""
        rotated = []
        with self._locked():
            try:
                names = sorted(os.listdir(self.params.logs_dir))
            except FileNotFoundError:
                return []
            for name in names:
                path = os.path.join(self.params.logs_dir, name)
                if name.endswith(".log") and os.path.getsize(path) > max_bytes:
                    os.replace(path, path + ".1")
                    rotated.append(name)
            if rotated and self.is_running():
                proc.run(nginx.signal_argv(self.params, "reopen"), what="reopen nginx's logs")
        return rotated

    def stop(self, *, keep_config: bool = False, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the master (graceful quit, then TERM, then KILL of the master and its
        workers) and, unless ``keep_config``, delete ``PAAS_ROOT/nginx``."""
        pid = nginx.master_pid(self.params)
        if pid is not None:
            _stop_master(pid, timeout)
        if not keep_config:
            shutil.rmtree(self.params.nginx_dir, ignore_errors=True)

    # --- steps --------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One config change at a time per instance (two deploys may race)."""
        self._dirs()
        with open(modes.create(self.params.lock_file, os.O_WRONLY | os.O_APPEND), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _prepare(self) -> bool:
        """Directories, and the main config when it is missing or changed (tested first);
        True when the main config was (re)written."""
        prepare_root(self.ctx.paths)  # workers (nobody) must traverse to tmp/
        p = self.params
        self._dirs()
        text = render_main(p)
        try:
            with open(p.main_conf, encoding="utf-8") as f:
                if f.read() == text:
                    return False
        except FileNotFoundError:
            pass
        candidate = f"{p.main_conf}.{secrets.token_hex(4)}"
        _write(candidate, text)
        try:
            # the candidate main config, with the live vhosts it will include
            self._test_file(candidate, what="the main nginx config")
            os.replace(candidate, p.main_conf)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(candidate)
        return True

    def _dirs(self) -> None:
        """nginx/, logs/ and tmp/ searchable by root and the workers' group only (workers
        reopen the logs and write temp files), apps/ root-only; with HTTPS, the ACME
        webroot the same way as nginx/ (workers read the challenge files); made once."""
        p = self.params
        made = os.path.isdir(p.apps_dir)
        if made and (not p.https_port or os.path.isdir(p.acme_challenge_dir)):
            return
        ids = worker_ids(p)
        gid = ids[1] if ids is not None else None
        acme = (p.acme_webroot, os.path.dirname(p.acme_challenge_dir), p.acme_challenge_dir)
        for d in (p.nginx_dir, p.logs_dir, p.tmp_dir, *(acme if p.https_port else ())):
            if not os.path.isdir(d):
                modes.private_bundle_dir(d, gid)
        modes.makedirs(p.apps_dir)

    def _live_vhosts(self, exclude: str = "") -> list[str]:
        return [self.params.app_conf(a) for a in self.apps()
                if self.params.app_conf(a) != exclude]

    def _test(self, includes: list[str] | None, *, what: str,
              shown: Mapping[str, str] | None = None) -> None:
        """``nginx -t`` of the main config with ``includes`` instead of the vhost glob."""
        if includes is None:
            self._test_file(self.params.main_conf, what=what)
            return
        conf = os.path.join(self.params.nginx_dir, f".test-{secrets.token_hex(4)}.conf")
        _write(conf, render_main(self.params, includes))
        try:
            self._test_file(conf, what=what, shown=shown)
        finally:
            os.unlink(conf)

    def _test_file(self, conf: str, *, what: str,
                   shown: Mapping[str, str] | None = None) -> None:
        res = proc.run(nginx.test_argv(self.params, conf), check=False, what="nginx -t",
                       umask=NGINX_UMASK)
        output = res.stderr.strip() or res.stdout.strip()
        # two servers of one name: nginx keeps the first and only warns, so a name would
        # be answered by an app that does not own it (paas.apps.domains prevents it;
        # this is the last line, e.g. for an app template's own server_name)
        conflicts = [ln for ln in output.splitlines() if "conflicting server name" in ln]
        if res.returncode == 0 and not conflicts:
            return
        for tmp, real in (shown or {}).items():  # name the file the user knows
            output = output.replace(tmp, real)
        lines = [ln.removeprefix("nginx: ") for ln in output.splitlines()
                 if "[emerg]" in ln or "[alert]" in ln or "[crit]" in ln]
        lines += [re.sub(r"^.*?\[warn\] (?:[0-9#]+: )?", "", ln) for ln in conflicts]
        raise NginxConfigError(f"{what} is invalid: {'; '.join(lines) or output}",
                               "nothing was changed: the previous config keeps serving",
                               output=output)

    def _start(self) -> None:
        pid = nginx.master_pid(self.params)
        if pid is not None:
            return
        proc.run(nginx.start_argv(self.params), timeout=30, what="start nginx",
                 umask=NGINX_UMASK)
        # the daemonized master writes its pid file after the command returned
        deadline = time.monotonic() + START_TIMEOUT
        while nginx.master_pid(self.params) is None:
            if time.monotonic() > deadline:
                raise CommandFailed("nginx exited right after starting",
                                    f"see {self.params.error_log}")
            time.sleep(0.01)
        _protect(nginx.master_pid(self.params))
        log.info("started nginx on %s:%d", self.params.http_addr, self.params.http_port)

    def _reload_or_start(self) -> None:
        if self.is_running():
            self._reload()
        else:
            self._start()

    def _reload(self) -> None:
        """``nginx -s reload``, then wait until only new workers accept connections."""
        pid = nginx.master_pid(self.params)
        if pid is None:
            raise FailedPrecondition("nginx is not running", "run 'paas nginx:start'")
        before = set(nginx.workers(pid))
        proc.run(nginx.signal_argv(self.params, "reload"), what="reload nginx")
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            now = {w for w, title in nginx.workers(pid).items() if _is_worker(title)}
            # live once new workers run and the old ones stopped accepting (they
            # retitle themselves "shutting down" and finish their requests)
            if now and not now & before:
                return
            time.sleep(0.02)
        raise CommandFailed(f"nginx did not load its new config within {RELOAD_TIMEOUT:.0f}s",
                            f"see {self.params.error_log}")


def _protect(master: int | None) -> None:
    """The master and its workers last for the OOM killer (workers forked later inherit
    the master's value, so the master goes first)."""
    from ..oom import NGINX_OOM_SCORE_ADJ, protect

    if master is not None and protect(NGINX_OOM_SCORE_ADJ, master):
        for worker in nginx.workers(master):
            protect(NGINX_OOM_SCORE_ADJ, worker)


def _is_worker(title: str) -> bool:
    return title.startswith("nginx: worker process") and "shutting down" not in title


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write(path: str, text: str) -> None:
    with open(modes.create(path), "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(nginx.alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


def _stop_master(pid: int, timeout: float) -> None:
    """QUIT (graceful), TERM (fast) after ``timeout``, then KILL the master and its workers."""
    children = list(nginx.workers(pid))
    for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGTERM, 5.0)):
        _signal(pid, sig)
        if _wait_gone([pid, *children], wait):
            return
    for p in [pid, *children, *nginx.workers(pid)]:
        _signal(p, signal.SIGKILL)
    if not _wait_gone([pid, *children], 5.0):
        raise CommandFailed(f"nginx (pid {pid}) did not stop", f"kill {pid} by hand")
