"""``container:*`` commands: parse flags, call ``paas.runtime``, render like Docker."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import FailedPrecondition, InvalidArgument, PaasError
from ..model import Container, ContainerState
from .render import emit_json
from .status import status_text_of

if TYPE_CHECKING:
    from ..runtime.lifecycle import Runtime
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "status_text"]

def _runtime(app: App) -> Runtime:
    from ..runtime.lifecycle import Runtime

    return Runtime(app.ctx, app.conn)


def _client(app: App) -> Any:
    """A client of this instance's paasd; FailedPrecondition (before anything is created)
    when it is not running."""
    from ..daemon.client import DaemonClient

    client = DaemonClient(app.paths)
    if client.ping() is None:
        raise client.not_running()
    return client


# -- rendering (pure) --------------------------------------------------------------
def status_text(c: Container, now: float | None = None) -> str:
    return status_text_of(c.state, c.exit_code, c.started_at, c.finished_at, now)


def _iso(ts: float | None) -> str:
    if not ts:
        return "0001-01-01T00:00:00Z"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e9):09d}Z"


def _restart_policy(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count) if count.isdigit() else 0}


def inspect_dict(c: Container, ctx_root: str) -> dict[str, Any]:
    cfg = c.config
    r = cfg.resources
    return {
        "Id": c.id,
        "Name": c.name,
        "Created": _iso(c.created),
        "Path": cfg.args[0] if cfg.args else "",
        "Args": list(cfg.args[1:]),
        "State": {
            "Status": c.state,
            "Running": c.state == ContainerState.RUNNING,
            "Restarting": c.state == ContainerState.RESTARTING,
            "Pid": c.pid or 0,
            "ExitCode": c.exit_code or 0,
            "OOMKilled": c.oom_killed,
            "Error": c.error,
            "StartedAt": _iso(c.started_at),
            "FinishedAt": _iso(c.finished_at),
        },
        "RestartCount": c.restart_count,
        "Image": cfg.image_id,
        "LogPath": os.path.join(ctx_root, "containers", c.id, "container.log"),
        "Config": {
            "Hostname": cfg.hostname or c.id[:12],
            "User": cfg.user,
            "Env": list(cfg.env),
            "Cmd": list(cfg.args),
            "Image": cfg.image,
            "WorkingDir": cfg.working_dir,
            "Tty": cfg.tty,
            "OpenStdin": cfg.stdin,
        },
        "HostConfig": {
            "Binds": [f"{b.source}:{b.target}" + (":ro" if b.readonly else "") for b in cfg.binds],
            "NetworkMode": cfg.network,
            "AutoRemove": cfg.auto_remove,
            "UsernsMode": "" if cfg.userns else "host",
            "RestartPolicy": _restart_policy(cfg.restart),
            "Memory": r.memory or 0,
            "NanoCpus": int((r.cpus or 0) * 1e9),
            "CpuShares": r.cpu_shares or 0,
            "PidsLimit": r.pids_limit or 0,
            "StorageOpt": {"size": str(r.disk)} if r.disk else {},
            "Init": cfg.init,
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "UpperDir": os.path.join(ctx_root, "containers", c.id,
                                         "layer/upper" if r.disk else "upper"),
                "MergedDir": os.path.join(ctx_root, "containers", c.id, "rootfs"),
            },
        },
    }


# -- handlers ------------------------------------------------------------------------
def _port(app: App, a: argparse.Namespace) -> int:
    rt = _runtime(app)
    c = rt.get(a.container)
    ports = rt.net.ports(c.id, c.config) if c.state == ContainerState.RUNNING else ()
    if a.format == "json":
        emit_json([{"HostIp": p.host_ip, "HostPort": p.host_port, "ContainerPort": p.container_port,
                    "Proto": p.proto} for p in ports])
        return 0
    for p in ports:
        print(f"{p.container_port}/{p.proto} -> {p.host_ip}:{p.host_port}")
    return 0


def _each(app: App, refs: list[str], fn: Callable[[Runtime, Container], None]) -> int:
    """Apply ``fn`` to every container; report each failure on its own line, like docker."""
    rt = _runtime(app)
    failed: PaasError | None = None
    for ref in refs:
        try:
            fn(rt, rt.get(ref))
            print(ref)
        except PaasError as err:
            sys.stderr.write(f"error: {err.render()}\n")
            failed = err
    if failed is not None:
        from ..errors import exit_code_for

        return exit_code_for(failed)
    return 0


def _start_via_daemon(app: App) -> Callable[[Runtime, Container], None]:
    client = _client(app)

    def start(rt: Runtime, c: Container) -> None:
        client.request("POST", f"/containers/{c.id}/start")

    return start


def _start(app: App, a: argparse.Namespace) -> int:
    return _each(app, a.containers, _start_via_daemon(app))


def _stop(app: App, a: argparse.Namespace) -> int:
    return _each(app, a.containers, lambda rt, c: rt.stop(c, a.time))


def _restart(app: App, a: argparse.Namespace) -> int:
    start = _start_via_daemon(app)

    def restart(rt: Runtime, c: Container) -> None:
        rt.stop(c, a.time)
        start(rt, c)

    return _each(app, a.containers, restart)


def _kill(app: App, a: argparse.Namespace) -> int:
    from ..runtime.resolve import parse_signal

    sig = parse_signal(a.signal)
    return _each(app, a.containers, lambda rt, c: rt.kill(c, sig))


def _rm(app: App, a: argparse.Namespace) -> int:
    return _each(app, a.containers, lambda rt, c: rt.remove(c, force=a.force))


def _logs(app: App, a: argparse.Namespace) -> int:
    from ..runtime.bundle import Bundle
    from ..runtime.logs import read_logs

    rt = _runtime(app)
    c = rt.get(a.container)
    path = Bundle(app.ctx, c.id).log_path

    def stopped() -> bool:
        try:
            return not rt.is_running(rt.store.get(c.id))
        except PaasError:
            return True

    tail = None
    if a.tail not in (None, "all"):
        if not a.tail.isdigit():
            raise InvalidArgument(f"invalid --tail value {a.tail!r}", "use a number or 'all'")
        tail = int(a.tail)
    for e in read_logs(path, tail=tail, follow=a.follow, stop=stopped):
        out = sys.stdout if e.stream == "stdout" else sys.stderr
        out.write((e.time + " " if a.timestamps else "") + e.text)
        if a.follow:
            out.flush()
    return 0


def _exec(app: App, a: argparse.Namespace) -> int:
    from .. import proc

    if not a.command:
        raise InvalidArgument("no command given", "usage: paas container:exec CONTAINER CMD [ARG...]")
    rt = _runtime(app)
    c = rt.get(a.container)
    argv = rt.exec_argv(c, a.command, tty=a.tty, env=tuple(a.env), user=a.user, workdir=a.workdir)
    import subprocess

    p = proc.spawn(argv, stdin=None if a.interactive or a.tty else subprocess.DEVNULL)
    return p.wait()


def _inspect(app: App, a: argparse.Namespace) -> int:
    rt = _runtime(app)
    emit_json([inspect_dict(rt.get(ref), app.ctx.paths.root) for ref in a.containers])
    return 0


def _commit(app: App, a: argparse.Namespace) -> int:
    rt = _runtime(app)
    image = rt.commit(rt.get(a.container), a.ref, message=a.message or "", author=a.author or "")
    print(image.id)
    return 0


def _prune(app: App, a: argparse.Namespace) -> int:
    rt = _runtime(app)
    removed = []
    for c in rt.list_containers():
        if c.state != ContainerState.RUNNING:
            rt.remove(c)
            removed.append(c.id)
    if removed:
        print("Deleted Containers:\n" + "\n".join(removed) + "\n")
    print(f"Total containers removed: {len(removed)}")
    return 0


def configure(name: str, p: Parser) -> Handler:
    verb = name.split(":", 1)[1]
    if verb in ("start", "stop", "restart", "kill", "rm", "inspect"):
        if verb in ("stop", "restart"):
            p.add_argument("-t", "--time", type=float, default=10.0, help="seconds before SIGKILL")
        if verb == "kill":
            p.add_argument("-s", "--signal", default="KILL")
        if verb == "rm":
            p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        return {"start": _start, "stop": _stop, "restart": _restart, "kill": _kill, "rm": _rm,
                "inspect": _inspect}[verb]
    if verb == "port":
        p.add_argument("--format", choices=["table", "json"], default="table")
        p.add_argument("container")
        return _port
    if verb == "logs":
        p.add_argument("-f", "--follow", action="store_true")
        p.add_argument("-n", "--tail", metavar="N")
        p.add_argument("-t", "--timestamps", action="store_true")
        p.add_argument("container")
        return _logs
    if verb == "exec":
        p.add_argument("-i", "--interactive", action="store_true")
        p.add_argument("-t", "--tty", action="store_true")
        p.add_argument("-e", "--env", action="append", default=[])
        p.add_argument("-u", "--user")
        p.add_argument("-w", "--workdir")
        p.add_argument("container")
        p.add_argument("command", nargs=argparse.REMAINDER)
        return _exec
    if verb == "commit":
        p.add_argument("-m", "--message")
        p.add_argument("-a", "--author")
        p.add_argument("container")
        p.add_argument("ref", nargs="?")
        return _commit
    if verb == "prune":
        p.add_argument("-f", "--force", action="store_true", help="accepted for docker compatibility")
        return _prune
    raise FailedPrecondition(f"unknown container command {name}")
