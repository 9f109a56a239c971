"""An app's process containers: names, run flags, listing, start/stop.

A process container is named ``APP.TYPE.N.vR`` (release R, the N-th of TYPE):
app names have no dots, so the name alone says whose it is. Containers are
created and started by paasd (it supervises them: logs, the app's restart policy,
``on-failure:10`` by default like Dokku's), stopped and removed here. The app's
``ProcessOptions`` (storage mounts, resource limits per type, restart policy) go into
the flags of each container.

Environment of a process: the release's config, then ``PORT`` (web), ``DYNO``
(``web.1``) and ``PAAS_APP``/``PAAS_RELEASE``. Buildpack images run commands
through their ``.profile.d`` launcher (the image's entrypoint) as ``bash -c``;
Dockerfile images run a Procfile command as ``/bin/sh -c`` after their entrypoint,
or their own CMD when the Procfile does not name the type.

Not here: when to start or stop what (``cutover``), health checks (``health``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..apps.resources import limits_for
from ..errors import PaasError
from ..model import BindPolicy, Container, ContainerState, ProcessOptions, Release
from ..runtime.lifecycle import Runtime
from ..runtime.options import format_bind

__all__ = ["DEFAULT_PORT", "ProcessContainer", "app_containers", "container_name",
           "process_env", "run_flags", "web_port"]

DEFAULT_PORT = 5000
_NAME_RE = re.compile(r"^([a-z][a-z0-9-]*)\.([A-Za-z0-9_-]+)\.(\d+)\.v(\d+)$")


@dataclass(frozen=True)
class ProcessContainer:
    container: Container
    app: str
    type: str
    index: int
    version: int

    @property
    def running(self) -> bool:
        return self.container.state in (ContainerState.RUNNING, ContainerState.RESTARTING)


def container_name(app: str, ptype: str, index: int, version: int) -> str:
    return f"{app}.{ptype}.{index}.v{version}"


def app_containers(rt: Runtime, app: str) -> list[ProcessContainer]:
    """Every process container of ``app``, oldest release first."""
    out = []
    for c in rt.list_containers():
        m = _NAME_RE.match(c.name)
        if m and m.group(1) == app:
            out.append(ProcessContainer(c, app, m.group(2), int(m.group(3)), int(m.group(4))))
    return sorted(out, key=lambda p: (p.version, p.type, p.index))


def web_port(release: Release, exposed: Iterable[str]) -> int:
    """``PORT`` from the config, else the image's only EXPOSEd tcp port, else 5000."""
    config = dict(release.config)
    if config.get("PORT", "").isdigit():
        return int(config["PORT"])
    tcp = [int(p.split("/")[0]) for p in exposed if p.endswith("/tcp")]
    return tcp[0] if len(tcp) == 1 and release.builder == "dockerfile" else DEFAULT_PORT


def process_env(release: Release, ptype: str, index: int, port: int) -> list[str]:
    env = [f"{k}={v}" for k, v in release.config]
    env += [f"PORT={port}", f"DYNO={ptype}.{index}", f"PAAS_APP={release.app}",
            f"PAAS_RELEASE=v{release.version}"]
    return env


def command_of(release: Release, ptype: str) -> list[str]:
    command = dict(release.processes).get(ptype, "")
    if not command:
        return []  # the image's own CMD
    shell = "/bin/bash" if release.builder == "buildpack" else "/bin/sh"
    return [shell, "-c", command]


def run_flags(release: Release, ptype: str, index: int, port: int,
              options: ProcessOptions | None = None, *,
              name: str | None = None, detach: bool = True, rm: bool = False,
              command: list[str] | None = None, tty: bool = False) -> dict[str, Any]:
    """The ``POST /containers`` flags (container:run's schema) of one process container;
    ``options``: the app's mounts, limits (of ``ptype``), restart policy, network opt-ins,
    its init (tini as PID 1 unless the app turned it off) and CA bundle opt-in. Its
    tenant on the bridge is the app."""
    options = options or ProcessOptions()
    limits = limits_for(options.limits, ptype)
    return {
        "image": release.image_id,
        "command": command if command is not None else command_of(release, ptype),
        "entrypoint": None, "env": process_env(release, ptype, index, port),
        # strict: each start opens the host dir without following symlinks (paas.hostpath)
        "volume": [format_bind(replace(b, policy=BindPolicy.STRICT)) for b in options.mounts],
        "workdir": None, "user": None, "hostname": None,
        "name": name or container_name(release.app, ptype, index, release.version),
        "tty": tty, "interactive": tty, "detach": detach, "rm": rm, "memory": limits.memory,
        "cpus": limits.cpus, "cpu_shares": None, "pids_limit": limits.pids,
        "network": "bridge", "publish": [], "publish_all": False, "expose": [], "userns": "",
        "restart": options.restart if detach and not rm else "no",
        "allow_link_local": options.allow_link_local, "tenant": f"app:{release.app}",
        "storage_opt": [f"size={disk}"] if (disk := limits.disk or options.default_disk) else [],
        "init": options.init, "host_ca_bundle": options.host_ca,
    }


def ip_of(rt: Runtime, c: Container) -> str:
    from ..network.ipam import Ipam

    row = Ipam(rt.conn).get_row(c.id)
    if row is None:
        raise PaasError(f"container {c.name} has no address on the bridge")
    return row.ip


def stop_and_remove(rt: Runtime, containers: Iterable[ProcessContainer], timeout: int) -> None:
    """SIGTERM (the image's stop signal), SIGKILL after ``timeout`` s, then remove."""
    for p in containers:
        c = rt.get(p.container.id)
        if rt.is_running(c):
            rt.stop(c, timeout)
        rt.remove(rt.get(c.id), force=True)
