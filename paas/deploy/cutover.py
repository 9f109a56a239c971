"""The zero-downtime cutover, one explicit step sequence (Kamal's boot, Dokku's checks).

1. start the new release's containers (every process type, its scale);
2. health gate: each new web container passes its checks (``health``), other
   types must stay up;
3. switch: the proxy's route gets only the new web containers (render, ``nginx -t``,
   atomic rename, graceful reload);
4. drain: wait for requests in flight at the old containers (default 2 s);
5. stop the old release's containers (SIGTERM, then SIGKILL after the stop timeout).

Any failure before the switch removes the new containers and re-raises: users keep
being served by the old release. Nothing after the switch can take the new one down;
right after it, ``switched`` marks the release live.

Not here: building, release records (``deployer``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..apps.options import process_options
from ..model import Release, Route, Upstream
from .health import DEFAULT_UPTIME, Check, exited, wait_healthy
from .processes import ProcessContainer, app_containers, ip_of, run_flags, stop_and_remove

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..daemon.client import DaemonClient
    from ..model import Image
    from ..proxy import Proxy
    from ..runtime.lifecycle import Runtime

__all__ = ["Cutover", "Plan"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What the cutover needs beyond the release."""

    image: Image
    port: int
    route: Route  # domains, nginx settings and template; the upstreams are filled in
    checks: tuple[Check, ...] = ()
    check_mode: str = "enabled"  # enabled | disabled (only: still running) | skipped
    drain: float = 2.0
    stop_timeout: int = 10


class Cutover:
    def __init__(self, rt: Runtime, client: DaemonClient, proxy: Proxy, progress: Progress,
                 switched: Callable[[], None] = lambda: None) -> None:
        self.rt = rt
        self.client = client
        self.proxy = proxy
        self.progress = progress
        self.switched = switched  # called once traffic goes to the new release

    def run(self, release: Release, plan: Plan) -> None:
        old = [p for p in app_containers(self.rt, release.app) if p.version != release.version]
        new: list[ProcessContainer] = []
        try:
            new = self._start(release, plan)
            self._gate(new, plan)
            self._switch(release, plan, new)
        except BaseException:
            if new:
                self.progress("-----> Removing the new containers; the previous release keeps serving")
                stop_and_remove(self.rt, new, 0)
            raise
        self.switched()  # the new release is live (it serves: never undone from here)
        if old:
            if any(p.type == "web" for p in old) and plan.drain > 0:
                self.progress(f"-----> Waiting {plan.drain:g}s for requests to the old containers")
                time.sleep(plan.drain)
            self.progress(f"-----> Stopping {len(old)} container(s) of the previous release")
            stop_and_remove(self.rt, old, plan.stop_timeout)

    def _start(self, release: Release, plan: Plan) -> list[ProcessContainer]:
        started: list[ProcessContainer] = []
        # mounts, limits, restart policy
        options = process_options(self.rt.conn, release.app, self.rt.ctx.limits)
        for ptype, count in release.formation:
            for index in range(1, count + 1):
                flags = run_flags(release, ptype, index, plan.port, options)
                self.progress(f"-----> Starting {ptype}.{index} ({flags['name']})")
                try:
                    self.client.request("POST", "/containers",
                                        {"flags": flags, "start": True, "app": release.app})
                finally:  # paasd removes what it could not start; keep what it made
                    c = self.rt.store.find(flags["name"])
                    if c is not None:
                        started.append(ProcessContainer(c, release.app, ptype, index,
                                                        release.version))
        return started

    def _gate(self, new: list[ProcessContainer], plan: Plan) -> None:
        if plan.check_mode == "skipped":
            self.progress("-----> Zero-downtime checks skipped (checks:skip)")
            return
        # containers start in parallel; the uptime window of the default check is
        # waited once for all of them, after each one listens
        for p in new:
            c = self.rt.get(p.container.id)
            if not self.rt.is_running(c):
                raise exited(self.rt, c)
            if p.type == "web" and plan.check_mode == "enabled":
                self.progress(f"-----> Checking {p.type}.{p.index} on port {plan.port}")
                wait_healthy(self.rt, c, ip_of(self.rt, c), plan.port, checks=list(plan.checks),
                             healthcheck=plan.image.config.healthcheck, progress=self.progress,
                             uptime=0.0)
        time.sleep(DEFAULT_UPTIME)
        for p in new:
            c = self.rt.get(p.container.id)
            if not self.rt.is_running(c):
                raise exited(self.rt, c)

    def _switch(self, release: Release, plan: Plan, new: list[ProcessContainer]) -> None:
        web = [p for p in new if p.type == "web"]
        upstreams = tuple(Upstream(ip_of(self.rt, self.rt.get(p.container.id)), plan.port)
                          for p in web)
        route = replace(plan.route, upstreams=upstreams)
        self.progress(f"-----> Routing {', '.join(route.domains)} to {len(upstreams)} "
                      "web container(s)")
        self.proxy.apply(route)
