"""Docker's STATUS column ("Up 2 seconds", "Exited (1) 3 minutes ago"), from plain fields.

Pure and light (no ``paas.model``): ``container:ps`` renders rows it got from paasd.
"""

from __future__ import annotations

import time

from .render import human_ago, human_duration

__all__ = ["command_text", "status_text_of"]


def status_text_of(state: str, exit_code: int | None, started_at: float | None,
                   finished_at: float | None, now: float | None = None) -> str:
    now = now or time.time()
    code = exit_code if exit_code is not None else 255
    if state == "running":
        return "Up " + human_duration(now - (started_at or now))
    if state == "restarting":  # Docker's wording, time since the last exit
        return f"Restarting ({code}) " + human_ago(finished_at or now, now)
    if state == "exited":
        return f"Exited ({code}) " + human_ago(finished_at or now, now)
    return state.capitalize()


def command_text(args: list[str] | tuple[str, ...]) -> str:
    """The COMMAND column: quoted, cut to 20 characters like docker ps."""
    cmd = " ".join(args)
    return '"' + (cmd if len(cmd) <= 20 else cmd[:19] + "…") + '"'
