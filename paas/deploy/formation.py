"""How many containers of each process type a deploy runs, and what the push says of it.

The scale of a new deploy is the current release's for the types it knows; a type
new to the app starts at ``web=1`` and 0 for every other one, as on Heroku and Dokku.
An app's *first* deploy (no release ever went live) takes its initial scale from
``app.json``'s ``formation`` (Heroku's format: ``{"formation": {"web": {"quantity":
2}, "worker": {"quantity": 1}}}``); later deploys keep what ``ps:scale`` set, as
Heroku does (Dokku instead treats the key as authoritative and refuses ``ps:scale``).

Pure: no I/O. Not here: applying a scale (``cutover``), ``ps:scale`` (``paas.cli``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..errors import InvalidArgument
from ..model import Release

__all__ = ["MAX_SCALE", "formation_from_app_json", "new_formation", "scale_lines"]

MAX_SCALE = 100  # ps:scale's limit too
_HINT = 'e.g. "formation": {"web": {"quantity": 2}}; see Heroku\'s app.json schema'


def formation_from_app_json(text: str) -> dict[str, int]:
    """``app.json``'s ``formation`` as {type: quantity} ({} when it has none); entries
    without a ``quantity`` are left out."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise InvalidArgument(f"app.json is not valid JSON: {err}", "fix app.json") from err
    formation = doc.get("formation") if isinstance(doc, dict) else None
    if formation is None:
        return {}
    if not isinstance(formation, dict):
        raise InvalidArgument("app.json: formation must be an object of process types", _HINT)
    out: dict[str, int] = {}
    for ptype, entry in formation.items():
        if not isinstance(entry, dict):
            raise InvalidArgument(f"app.json: formation.{ptype[:40]} must be an object", _HINT)
        if "quantity" not in entry:
            continue
        quantity = entry["quantity"]
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not (
                0 <= quantity <= MAX_SCALE):
            raise InvalidArgument(
                f"app.json: formation.{ptype[:40]}.quantity must be a whole number "
                f"from 0 to {MAX_SCALE}", _HINT)
        if ptype == "release":
            raise InvalidArgument("app.json: formation cannot scale the release command",
                                  "it runs once per deploy; drop formation.release")
        out[ptype] = quantity
    return out


def new_formation(processes: Mapping[str, str], current: Release | None,
                  initial: Mapping[str, int] | None = None) -> dict[str, int]:
    """The scale of a new deploy of ``processes``: the current release's for known types,
    else ``initial`` (``app.json``'s formation, used only when there is no current
    release), else web=1 and 0. A type in ``initial`` the app does not define is an error."""
    initial = dict(initial or {}) if current is None else {}
    unknown = sorted(set(initial) - set(processes))
    if unknown:
        known = ", ".join(t for t in processes if t != "release")
        raise InvalidArgument(f"app.json: formation names process type {unknown[0]!r}, which "
                              "the app does not define", f"the app's process types are: {known}")
    previous = dict(current.formation) if current else {}
    return {t: previous.get(t, initial.get(t, 1 if t == "web" else 0))
            for t in processes if t != "release"}


def scale_lines(app: str, formation: Mapping[str, int]) -> list[str]:
    """What the push says of the scale: every type and its count (web first), and how to
    start those at 0."""
    formation = dict(sorted(formation.items(), key=lambda item: item[0] != "web"))
    shown = ", ".join(f"{t}={n}" for t, n in formation.items())
    lines = [f"-----> Process types: {shown}"]
    idle = [t for t, n in formation.items() if n == 0]
    for t in idle:
        lines.append(f"       {t} is not running (scale 0): start it with "
                     f"'paas ps:scale {app} {t}=1'")
    return lines
