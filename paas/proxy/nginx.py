"""nginx argv builders (pure) and a look at the running master through /proc.

Every command names the instance's prefix, main config and error log
explicitly (``-p``, ``-c``, ``-e``), so Debian's /etc/nginx and /var/log/nginx
are never read or written. Running them is ``paas.proxy.proxy``'s job.
"""

from __future__ import annotations

import contextlib
import os

from .params import ProxyParams

__all__ = ["alive", "master_pid", "signal_argv", "start_argv", "test_argv", "workers"]


def _base(params: ProxyParams, conf: str) -> list[str]:
    return [params.nginx, "-p", params.nginx_dir + "/", "-e", params.error_log, "-c", conf]


def test_argv(params: ProxyParams, conf: str) -> list[str]:
    """``nginx -t`` of ``conf`` (the main config, or a candidate main config)."""
    return [*_base(params, conf), "-q", "-t"]


def start_argv(params: ProxyParams) -> list[str]:
    """Start the master (it daemonizes; the command returns once it listens)."""
    return _base(params, params.main_conf)


def signal_argv(params: ProxyParams, signal: str) -> list[str]:
    """``nginx -s reload|quit|stop|reopen`` through the pid file of the main config."""
    return [*_base(params, params.main_conf), "-s", signal]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not; one of ours is reaped here)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def master_pid(params: ProxyParams) -> int | None:
    """The pid of the instance's running nginx master (its pid file, checked in /proc)."""
    try:
        with open(params.pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    stat = _stat(pid)
    if stat is None or stat[0] == "Z" or not _cmdline(pid).startswith("nginx: master"):
        return None  # gone, or a stale pid file whose pid was reused
    return pid


def workers(master: int) -> dict[int, str]:
    """The master's children: pid -> title ("nginx: worker process", "... is shutting down")."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == master and stat[0] != "Z":
                out[int(entry)] = _cmdline(int(entry))
    return out
