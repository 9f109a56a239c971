"""``container:run``'s flags -> validated ``RunOptions``: pure parsing, no I/O.

The CLI ships its raw argv to paasd (``POST /containers``), which parses it
with ``flags_from_argv`` (the flags of ``add_run_flags``) and validates it with
``options_from_flags``; so every check lives here once, and the CLI's run path
imports nothing heavy (not even argparse). ``RUN_FLAGS`` is the schema of the
flags, which paas's own callers (a deploy's containers) send instead of argv.
"""

from __future__ import annotations

import argparse
import os
import threading
from dataclasses import replace
from typing import Any, NoReturn

from ..errors import InvalidArgument
from ..model import BindMount, BindPolicy, Resources, RunOptions

__all__ = ["RUN_FLAGS", "add_run_flags", "flags_from_argv", "format_bind", "options_from_flags",
           "parse_bind", "parse_resources", "parse_run_options", "parse_size",
           "parse_storage_opts"]

# flag name (argparse dest) -> JSON type of its value
RUN_FLAGS: dict[str, type | tuple[type, ...]] = {
    "image": str, "command": list, "entrypoint": (str, type(None)), "env": list,
    "volume": list, "workdir": (str, type(None)), "user": (str, type(None)),
    "hostname": (str, type(None)), "name": (str, type(None)), "tty": bool,
    "interactive": bool, "detach": bool, "rm": bool, "memory": (str, type(None)),
    "cpus": (str, type(None)), "cpu_shares": (str, type(None)),
    "pids_limit": (str, type(None)), "network": str, "publish": list, "publish_all": bool,
    "expose": list, "userns": str, "restart": str, "allow_link_local": bool, "tenant": str,
    "storage_opt": list, "init": bool, "host_ca_bundle": bool,
}


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ``container:run``; their dests are the keys of ``RUN_FLAGS``."""
    p.add_argument("-d", "--detach", action="store_true", help="run in the background under paasd")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", help="container name (unique)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-v", "--volume", action="append", default=[],
                   metavar="HOSTDIR:DIR[:ro][,strict]")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]")
    p.add_argument("--entrypoint", metavar="CMD")
    p.add_argument("--hostname", metavar="H")
    p.add_argument("--memory", "-m", metavar="SIZE", help="memory limit, e.g. 256m")
    p.add_argument("--cpus", metavar="N", help="CPU quota, e.g. 0.5")
    p.add_argument("--cpu-shares", metavar="N")
    p.add_argument("--pids-limit", metavar="N", help="most processes (default 4096, -1: no limit)")
    p.add_argument("--storage-opt", action="append", default=[], metavar="size=SIZE",
                   help="size of the writable layer, e.g. size=10G (ENOSPC when it is full)")
    p.add_argument("--network", default="bridge", help="bridge (default), none or host")
    p.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[HOSTIP:]HOSTPORT:CONTAINERPORT[/udp]")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish every EXPOSEd port on a random host port")
    p.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]",
                   help="expose a port (published with -P) in addition to the image's")
    p.add_argument("--userns", default="", help="'host' runs without a user namespace")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="no (default), on-failure[:N], always or unless-stopped")
    p.add_argument("--allow-link-local", action="store_true",
                   help="let the container reach 169.254.0.0/16 (cloud metadata services)")
    p.add_argument("--init", action="store_true",
                   help="run an init (tini) as PID 1: it forwards signals and reaps zombies")
    # whose container this is ("app:NAME", "build"): set by paas's own callers (a deploy)
    p.add_argument("--tenant", default="", help=argparse.SUPPRESS)
    # the host's CA bundle read-only in the container (an app's host-ca-bundle opt-in)
    p.add_argument("--host-ca-bundle", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


class _ArgvParser(argparse.ArgumentParser):
    """argparse for paasd: a usage error is an ``InvalidArgument``, never an exit."""

    def error(self, message: str) -> NoReturn:
        raise InvalidArgument(message, "see 'paas container:run --help'")


def flags_from_argv(argv: object) -> dict[str, Any]:
    """``container:run``'s flags (the keys of ``RUN_FLAGS``) from its argv; InvalidArgument
    for a usage error, worded as argparse words it."""
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise InvalidArgument("argv must be a list of strings", "send container:run's arguments")
    parser = getattr(_parsers, "parser", None)
    if parser is None:  # one per thread: building it is ~0.8 ms of every create
        parser = _parsers.parser = _ArgvParser(prog="paas container:run", add_help=False)
        add_run_flags(parser)
    return dict(vars(parser.parse_args(argv)))


_parsers = threading.local()


def options_from_flags(flags: object) -> RunOptions:
    """``RunOptions`` from the JSON flags of a ``POST /containers``; InvalidArgument for
    a malformed body (unknown or missing flag, wrong type)."""
    if not isinstance(flags, dict):
        raise InvalidArgument("flags must be an object", "send the flags of container:run")
    unknown = set(flags) - set(RUN_FLAGS)
    missing = set(RUN_FLAGS) - set(flags)
    if unknown or missing:
        raise InvalidArgument(
            f"flags: unknown {sorted(unknown)}, missing {sorted(missing)}",
            "the CLI and paasd may be of different versions; restart paasd",
        )
    for key, typ in RUN_FLAGS.items():
        value = flags[key]
        if not isinstance(value, typ) or (
            isinstance(value, list) and not all(isinstance(v, str) for v in value)
        ):
            raise InvalidArgument(f"flag {key}: unexpected value {value!r}", "check the request")
    return parse_run_options(argparse.Namespace(**flags))


_BIND_OPTIONS = ("ro", "rw", "strict")


def parse_bind(text: str) -> BindMount:
    """``-v HOST:DIR[:OPTS]``, OPTS a comma list of ``ro``|``rw`` and ``strict`` (the host
    path resolved without following symlinks, system directories refused: how app storage
    mounts are applied; see ``paas.hostpath``)."""
    parts = text.split(":")
    opts = parts[2].split(",") if len(parts) == 3 else []
    if (len(parts) not in (2, 3) or any(o not in _BIND_OPTIONS for o in opts)
            or len(set(opts)) != len(opts) or {"ro", "rw"} <= set(opts)):
        raise InvalidArgument(f"invalid volume spec {text!r}",
                              "use -v /host/dir:/container/dir[:ro|rw][,strict]")
    src, dst = parts[0], parts[1]
    if not src.startswith("/"):
        raise InvalidArgument(
            f"volume source {src!r} is not an absolute host path", "named volumes are not supported; use /host/dir"
        )
    if not dst.startswith("/"):
        raise InvalidArgument(f"volume target {dst!r} is not absolute", "use -v /host/dir:/container/dir")
    return BindMount(os.path.normpath(src), os.path.normpath(dst), readonly="ro" in opts,
                     policy=BindPolicy.STRICT if "strict" in opts else BindPolicy.HOST)


def format_bind(b: BindMount) -> str:
    """The ``-v`` text of ``b`` (``parse_bind``'s inverse; internal binds have none)."""
    if b.policy == BindPolicy.INTERNAL:
        raise InvalidArgument(f"bind {b.source} is paas's own", "it cannot be sent as -v")
    opts = [o for o, on in (("ro", b.readonly), ("strict", b.policy == BindPolicy.STRICT)) if on]
    return f"{b.source}:{b.target}" + (":" + ",".join(opts) if opts else "")


def _positive_float(text: str, flag: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1
    if not v > 0 or v > (os.cpu_count() or 1):
        raise InvalidArgument(
            f"invalid {flag} value {text!r}", f"use a number between 0.01 and {os.cpu_count()}"
        )
    return v


def _int(text: str, flag: str, minimum: int) -> int:
    try:
        v = int(text)
    except ValueError:
        v = minimum - 1
    if v < minimum:
        raise InvalidArgument(f"invalid {flag} value {text!r}", f"use an integer >= {minimum}")
    return v


def _expose(text: str) -> str:
    port, _, proto = text.partition("/")
    if not port.isdigit() or not 1 <= int(port) <= 65535 or proto not in ("", "tcp", "udp"):
        raise InvalidArgument(f"invalid --expose {text!r}", "use PORT or PORT/tcp or PORT/udp")
    return f"{int(port)}/{proto or 'tcp'}"


def _pids(text: str) -> int:
    """``--pids-limit``: a number of processes, or -1/0 for none (Docker's spelling)."""
    if text.strip() in ("-1", "0"):
        return -1
    return _int(text, "--pids-limit", 1)


def parse_resources(memory: str | None, cpus: str | None, cpu_shares: str | None = None,
                    pids_limit: str | None = None) -> Resources:
    """Validated ``Resources`` from the text of ``--memory``, ``--cpus``, ``--cpu-shares``
    and ``--pids-limit`` (None or '': not limited; no pids limit: the instance's default,
    -1 or 0: unlimited)."""
    resources = Resources(
        memory=parse_size(memory) if memory else None,
        cpus=_positive_float(cpus, "--cpus") if cpus else None,
        cpu_shares=_int(cpu_shares, "--cpu-shares", 2) if cpu_shares else None,
        pids_limit=_pids(pids_limit) if pids_limit else None,
    )
    if resources.memory is not None and resources.memory < 6 * 1024 * 1024:
        raise InvalidArgument(f"--memory {memory} is too small", "the minimum is 6m")
    return resources


def parse_run_options(a: argparse.Namespace) -> RunOptions:
    """Validated ``RunOptions`` from ``container:run``'s flags (an argparse namespace)."""
    from ..network.ports import parse_publish
    from ..network.settings import validate_tenant

    for e in a.env:
        if not e or e.startswith("="):
            raise InvalidArgument(f"invalid environment variable {e!r}", "use -e KEY=VALUE")
    if a.userns not in ("", "host"):
        raise InvalidArgument(f"invalid --userns {a.userns!r}", "the only mode is --userns=host")
    from .restart import parse_restart_policy

    policy = parse_restart_policy(a.restart)
    if a.rm and policy.name != "no":
        raise InvalidArgument("--rm and --restart cannot be combined", "drop one of them")
    resources = replace(parse_resources(a.memory, a.cpus, a.cpu_shares, a.pids_limit),
                        disk=parse_storage_opts(a.storage_opt))
    return RunOptions(
        image=a.image,
        command=tuple(a.command),
        entrypoint=a.entrypoint,
        env=tuple(a.env),
        binds=tuple(parse_bind(v) for v in a.volume),
        workdir=a.workdir,
        user=a.user,
        hostname=a.hostname,
        name=a.name,
        tty=a.tty,
        stdin=a.interactive,
        detach=a.detach,
        auto_remove=a.rm,
        resources=resources,
        network=a.network,
        publish=tuple(parse_publish(p) for p in a.publish),
        publish_all=a.publish_all,
        expose=tuple(_expose(e) for e in a.expose),
        userns=a.userns != "host",
        restart=str(policy),
        link_local=a.allow_link_local,
        tenant=validate_tenant(a.tenant),
        init=a.init,
        host_ca=a.host_ca_bundle,
    )


def parse_storage_opts(opts: list[str]) -> int | None:
    """``--storage-opt size=10G`` (Docker's flag; ``size`` is the one option): the writable
    layer's size in bytes, None without one."""
    from .limits import parse_disk_size

    size = None
    for opt in opts:
        key, sep, value = opt.partition("=")
        if key.strip().lower() != "size" or not sep:
            raise InvalidArgument(f"invalid --storage-opt {opt!r}",
                                  "the only storage option is size=SIZE, e.g. size=10G")
        size = parse_disk_size(value, "--storage-opt size")
    return size


_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """Parse Docker's memory sizes ('256m', '1g', '512k', '1048576'); InvalidArgument otherwise."""
    t = text.strip().lower()
    if t.endswith("b") and len(t) > 1 and t[-2] in "kmgt":
        t = t[:-1]
    num, unit = t, ""
    if t and t[-1] in _UNITS and not t[-1].isdigit():
        num, unit = t[:-1], t[-1]
    try:
        value = float(num)
    except ValueError:
        value = -1.0
    if value <= 0 or num.startswith(("+", "-")) or num in ("inf", "nan"):
        raise InvalidArgument(
            f"invalid size: {text!r}", "use a number with an optional unit b, k, m or g, e.g. 256m"
        )
    return int(value * _UNITS[unit])
