"""What the metadata instructions do to an image config (pure functions).

ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, CMD,
ENTRYPOINT and ONBUILD, with Docker's rules: ENV replaces a variable in place,
a relative WORKDIR is joined to the previous one, ``EXPOSE 80`` means
``80/tcp`` and ranges expand, shell forms become ``SHELL + [command]``, and
ENTRYPOINT resets a CMD inherited from the base image (not one set earlier in
the same stage). Arguments arrive already expanded (see ``paas.build.shellwords``).

Not here: ARG scoping, running anything, layers, the cache.
"""

from __future__ import annotations

import posixpath
import re
import signal
from collections.abc import Sequence
from dataclasses import replace

from ..errors import InvalidArgument
from ..model import Healthcheck, ImageConfig

__all__ = [
    "DEFAULT_SHELL",
    "env_dict",
    "healthcheck",
    "parse_duration",
    "set_env",
    "set_labels",
    "shell_form",
    "validate_stop_signal",
    "with_exposed",
    "with_volumes",
    "with_workdir",
]

DEFAULT_SHELL = ("/bin/sh", "-c")
_PORT_RE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def env_dict(env: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` entries as a dict (later entries win)."""
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def set_env(cfg: ImageConfig, pairs: Sequence[tuple[str, str]]) -> ImageConfig:
    """ENV: replace an existing variable where it is, append a new one."""
    env = list(cfg.env)
    for key, value in pairs:
        if not key or "=" in key:
            raise InvalidArgument(f"invalid environment variable name: {key!r}",
                                  "write ENV NAME=value")
        entry = f"{key}={value}"
        for i, item in enumerate(env):
            if item.partition("=")[0] == key:
                env[i] = entry
                break
        else:
            env.append(entry)
    return replace(cfg, env=tuple(env))


def set_labels(cfg: ImageConfig, pairs: Sequence[tuple[str, str]]) -> ImageConfig:
    labels = dict(cfg.labels)
    for key, value in pairs:
        if not key:
            raise InvalidArgument("LABEL names must not be empty", "write LABEL name=value")
        labels[key] = value
    return replace(cfg, labels=tuple(sorted(labels.items())))


def with_workdir(cfg: ImageConfig, path: str) -> ImageConfig:
    """WORKDIR: an absolute path as written; a relative one joined to the current one and
    cleaned like Go's filepath.Join (Docker's classic builder)."""
    if not path:
        raise InvalidArgument("WORKDIR needs a path", "write WORKDIR /app")
    if path.startswith("/"):
        return replace(cfg, working_dir=path)
    joined = posixpath.join("/", cfg.working_dir or "/", path)
    return replace(cfg, working_dir=posixpath.normpath(joined).replace("//", "/"))


def with_exposed(cfg: ImageConfig, words: Sequence[str]) -> ImageConfig:
    """EXPOSE: ``80``, ``80/udp``, ``8000-8002/tcp`` (each port of a range)."""
    ports = list(cfg.exposed_ports)
    for word in words:
        m = _PORT_RE.match(word)
        if not m:
            raise InvalidArgument(f"invalid port in EXPOSE: {word!r}",
                                  "write EXPOSE PORT[/tcp|/udp], e.g. EXPOSE 8080")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if not 0 < lo <= hi <= 65535:
            raise InvalidArgument(f"invalid port range in EXPOSE: {word!r}",
                                  "ports are 1-65535, ranges LOW-HIGH")
        proto = (m.group(3) or "tcp").lower()
        ports.extend(f"{p}/{proto}" for p in range(lo, hi + 1))
    return replace(cfg, exposed_ports=tuple(sorted(set(ports))))


def with_volumes(cfg: ImageConfig, paths: Sequence[str]) -> ImageConfig:
    if not paths or any(not p.strip() for p in paths):
        raise InvalidArgument("VOLUME specified can not be an empty string",
                              "write VOLUME /data or VOLUME [\"/data\"]")
    return replace(cfg, volumes=tuple(sorted(set(cfg.volumes) | set(paths))))


def validate_stop_signal(value: str) -> str:
    """STOPSIGNAL: a signal name (SIGTERM, TERM) or number, as Docker accepts."""
    name = value.upper()
    if name.isdigit():
        if 0 < int(name) < 65:
            return value
    else:
        full = name if name.startswith("SIG") else "SIG" + name
        if full in signal.Signals.__members__ or re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?", full):
            return value
    raise InvalidArgument(f"invalid STOPSIGNAL: {value!r}", "use a signal name or number, e.g. SIGTERM")


def shell_form(cfg: ImageConfig, command: str) -> tuple[str, ...]:
    """The argv of a shell-form RUN/CMD/ENTRYPOINT: the stage's SHELL plus the command."""
    return (*(cfg.shell or DEFAULT_SHELL), command)


def parse_duration(text: str, flag: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds."""
    pos, total = 0, 0.0
    if text == "0":
        return 0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise InvalidArgument(f"invalid duration for --{flag}: {text!r}",
                              "use a number with a unit, e.g. 30s, 1m30s or 500ms")
    return int(total)


def healthcheck(args: Sequence[str], json_form: bool, flags: dict[str, str],
                cfg: ImageConfig) -> Healthcheck:
    """HEALTHCHECK NONE | [flags] CMD ...: Docker's Test forms and duration rules."""
    if args and args[0].upper() == "NONE":
        return Healthcheck(test=("NONE",))
    if len(args) < 2:
        raise InvalidArgument("HEALTHCHECK CMD needs a command", "write HEALTHCHECK CMD curl -f http://localhost/")
    test = ("CMD", *args[1:]) if json_form else ("CMD-SHELL", args[1])
    durations = {}
    for flag, attr in (("interval", "interval"), ("timeout", "timeout"),
                       ("start-period", "start_period"), ("start-interval", "start_interval")):
        ns = parse_duration(flags[flag], flag) if flag in flags else 0
        if ns and ns < 1_000_000:
            raise InvalidArgument(f"--{flag} cannot be less than 1ms", f"e.g. --{flag}=30s")
        durations[attr] = ns
    retries = 0
    if "retries" in flags:
        try:
            retries = int(flags["retries"])
        except ValueError:
            retries = -1
        if retries < 0:
            raise InvalidArgument(f"invalid --retries: {flags['retries']!r}", "use a whole number >= 0")
    return Healthcheck(test=test, retries=retries, **durations)
