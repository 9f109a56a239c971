"""Restart policies (``--restart``), pure: parsing, the restart decision, Docker's backoff.

``parse_restart_policy("on-failure:3")`` validates the flag;
``should_restart`` and ``next_backoff`` follow Docker's restartmanager:
a delay of 100 ms that doubles after every restart, capped at one minute and
reset once a run lasted 10 s or more. An explicit stop or fatal kill by the
user disables the policy until the next explicit start (``stopped_by_user``).
Scheduling and starting live in paasd (``paas.daemon.restarts``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidArgument

__all__ = [
    "BACKOFF_MAX",
    "BACKOFF_START",
    "RESET_AFTER",
    "RestartPolicy",
    "next_backoff",
    "parse_restart_policy",
    "should_restart",
]

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
RESET_AFTER = 10.0  # a run at least this long resets the delay to BACKOFF_START
NAMES = ("no", "on-failure", "always", "unless-stopped")
# signals after which `container:kill` disables the policy (Docker: "fatal" signals)
FATAL_SIGNALS = frozenset({"KILL", "9", "TERM", "15", "INT", "2", "QUIT", "3"})


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"
    max_retries: int = 0  # on-failure only; 0 = unlimited

    def __str__(self) -> str:
        if self.name == "on-failure" and self.max_retries:
            return f"on-failure:{self.max_retries}"
        return self.name


def parse_restart_policy(text: str) -> RestartPolicy:
    """``no``, ``on-failure``, ``on-failure:N`` (N >= 0), ``always``, ``unless-stopped``."""
    name, sep, count = text.partition(":")
    if name not in NAMES:
        raise InvalidArgument(f"invalid restart policy {text!r}",
                              "use no, on-failure[:N], always or unless-stopped")
    if not sep:
        return RestartPolicy(name)
    if name != "on-failure":
        raise InvalidArgument(f"restart policy {name!r} takes no retry count",
                              "only on-failure accepts :N, e.g. --restart on-failure:3")
    if not count.isdigit():
        raise InvalidArgument(f"invalid retry count in restart policy {text!r}",
                              "use on-failure:N with N an integer >= 0")
    return RestartPolicy(name, int(count))


def should_restart(policy: RestartPolicy, exit_code: int, restart_count: int,
                   stopped_by_user: bool) -> bool:
    """Docker's decision after an exit (the daemon shutting down never gets here)."""
    if policy.name == "no" or stopped_by_user:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.max_retries and restart_count >= policy.max_retries:
        return False
    return exit_code != 0


def next_backoff(previous: float, run_seconds: float) -> float:
    """The delay before the next restart, given the previous one (0 = none yet)."""
    if run_seconds >= RESET_AFTER or previous <= 0:
        return BACKOFF_START
    return min(previous * 2, BACKOFF_MAX)
