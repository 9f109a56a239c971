"""Pure decisions of the runtime: a container's config from run options and its image
(Docker's rules for entrypoint/cmd/env/workdir), signal names, process identity.

No I/O beyond reading ``/proc/<pid>/stat``; the lifecycle calls these.
"""

from __future__ import annotations

import os

from ..errors import InvalidArgument
from ..model import ContainerConfig, Image, RunOptions
from .networking import expand_publish_all

__all__ = ["merge_env", "parse_signal", "pid_start_time", "resolve_config"]

_SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "PWR": 30, "SYS": 31,
}


def parse_signal(text: str) -> str:
    """Normalise 'SIGTERM', 'term', '15' to runc's form ('TERM' or '15')."""
    t = text.strip().upper()
    t = t.removeprefix("SIG")
    if t in _SIGNALS or (t.isdigit() and 0 < int(t) < 65):
        return t
    raise InvalidArgument(f"invalid signal: {text!r}", "use a name like TERM, KILL, HUP or a number 1-64")


def pid_start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot) to tell a live pid from a reused one."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def merge_env(base: tuple[str, ...], extra: tuple[str, ...]) -> tuple[str, ...]:
    env: dict[str, str] = {}
    for item in base + extra:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item!r}", "use -e KEY=VALUE")
        if not sep:  # -e KEY takes the value from the caller's environment, like docker
            if key not in os.environ:
                continue
            value = os.environ[key]
        env[key] = value
    return tuple(f"{k}={v}" for k, v in env.items())


def resolve_config(opts: RunOptions, image: Image, image_ref: str) -> ContainerConfig:
    """Pure: combine run options with the image's defaults (Docker's rules)."""
    ic = image.config
    if opts.entrypoint is not None:
        entrypoint: tuple[str, ...] = (opts.entrypoint,) if opts.entrypoint else ()
        cmd = opts.command
    else:
        entrypoint = ic.entrypoint
        cmd = opts.command or ic.cmd or ()
    args = entrypoint + cmd
    if not args:
        raise InvalidArgument(
            f"no command specified and image {image_ref} has no default command",
            "give a command after the image name",
        )
    workdir = opts.workdir or ic.working_dir or "/"
    if not workdir.startswith("/"):
        raise InvalidArgument(f"working directory {workdir!r} is not absolute", "use -w /path")
    if opts.network not in ("bridge", "none", "host"):
        raise InvalidArgument(
            f"unknown network {opts.network!r}", "use --network bridge (default), none or host"
        )
    exposed = tuple(dict.fromkeys(ic.exposed_ports + opts.expose))
    ports = opts.publish + (expand_publish_all(exposed) if opts.publish_all else ())
    if ports and opts.network != "bridge":
        raise InvalidArgument(
            f"ports cannot be published on network {opts.network!r}", "use the bridge network"
        )
    for b in opts.binds:
        if not b.target.startswith("/") or ".." in b.target.split("/"):
            raise InvalidArgument(f"invalid volume target {b.target!r}", "use -v /host/dir:/container/dir")
    return ContainerConfig(
        image=image_ref,
        image_id=image.id,
        args=args,
        env=merge_env(ic.env, opts.env),
        working_dir=workdir,
        user=opts.user if opts.user is not None else ic.user,
        hostname=opts.hostname or "",
        tty=opts.tty,
        stdin=opts.stdin,
        binds=opts.binds,
        ports=ports,
        resources=opts.resources,
        network=opts.network,
        userns=opts.userns,
        auto_remove=opts.auto_remove,
        restart=opts.restart,
        idmap=opts.idmap if opts.userns else None,
        link_local=opts.link_local,
        tenant=opts.tenant,
        init=opts.init,
    )
