"""Output helpers for the CLI: Docker-style column tables, JSON, human sizes and times."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["emit_json", "human_ago", "human_duration", "human_size", "table"]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: Any = None) -> None:
    """Print rows in Docker's column style: left-aligned, at least 3 spaces between columns."""
    out = out or sys.stdout
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [list(headers)] + [list(r) for r in rows]:
        cells = [c.ljust(widths[i]) for i, c in enumerate(row)]
        out.write("   ".join(cells).rstrip() + "\n")


def emit_json(value: Any, out: Any = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def human_size(n: float) -> str:
    """Docker's decimal units: 74.8MB, 1.2GB, 512B."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(n)}{unit}"
            return f"{n:.3g}{unit}"
        n /= 1000.0
    return f"{n}PB"  # pragma: no cover


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration: 'Less than a second', '2 seconds', 'About a minute', '3 hours'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def human_ago(ts: float, now: float | None = None) -> str:
    return human_duration((now or time.time()) - ts) + " ago"
