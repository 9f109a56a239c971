"""Pure parts of ``paas report``: a ``Check`` (what was looked at, what was found, and
for a problem the fix), the cgroup mode from the mount table, version strings from
tools' output, and the free-space verdict.

Not here: running the probes (``probes``), rendering (``paas.cli.doctor``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Check", "cgroup_mode", "disk_check", "first_version", "git_http_port"]

MIN_FREE_BYTES = 2 * 1000**3
MIN_FREE_RATIO = 0.10


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    value: str
    problem: str = ""  # empty: fine
    fix: str = ""
    warning: bool = False  # shown with its fix, but not a failure (exit status 0)

    @property
    def ok(self) -> bool:
        return not self.problem


def cgroup_mode(mountinfo: str) -> str:
    """``v2`` (unified at /sys/fs/cgroup), ``hybrid`` (v1 controllers plus a cgroup2
    mount) or ``v1``; ``none`` when no cgroup filesystem is mounted."""
    v1 = v2 = False
    unified_root = False
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        fstype = fields[sep + 1] if len(fields) > sep + 1 else ""
        if fstype == "cgroup2":
            v2 = True
            unified_root = unified_root or fields[4] == "/sys/fs/cgroup"
        elif fstype == "cgroup":
            v1 = True
    if unified_root and not v1:
        return "v2"
    if v1 and v2:
        return "hybrid"
    return "v1" if v1 else ("v2" if v2 else "none")


def first_version(text: str) -> str:
    """The first dotted version number in a tool's output (``runc version 1.1.5`` ->
    ``1.1.5``, ``nginx version: nginx/1.22.1`` -> ``1.22.1``); '' when none."""
    m = re.search(r"\d+\.\d+(?:\.\d+)?(?:[-+~][\w.+~-]*)?", text)
    return m.group(0) if m else ""


def disk_check(path: str, free: int, total: int) -> Check:
    from ..image.usage import human_size

    pct = round(100 * free / total) if total else 0
    value = f"{human_size(free)} free of {human_size(total)} ({pct}%) under {path}"
    if total and (free < MIN_FREE_BYTES or free / total < MIN_FREE_RATIO):
        return Check("storage", "disk", value, f"little disk space left under {path}",
                     "free space with 'paas system:prune' (see 'paas system:df'), or grow "
                     "the filesystem")
    return Check("storage", "disk", value)


def git_http_port(env_file_text: str, env_value: str = "") -> int:
    """The port of ``paas-git-http.service``: ``PAAS_HTTP_GIT_PORT`` from the environment,
    else from ``/etc/default/paas-git-http``, else 8022."""
    value = env_value
    if not value:
        for line in env_file_text.splitlines():
            key, _, v = line.strip().partition("=")
            if key == "PAAS_HTTP_GIT_PORT":
                value = v.strip().strip("'\"")
    return int(value) if value.isdigit() and 0 < int(value) < 65536 else 8022
