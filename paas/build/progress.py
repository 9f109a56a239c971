"""Build progress events and their two renderings: Docker's classic lines and JSON lines.

The builder emits ``BuildEvent``s; the CLI prints them (``--progress plain|json``) and
the builder keeps the plain rendering as the image's build log.

Not here: deciding when events happen (``paas.build.builder``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["BuildEvent", "render_json", "render_plain", "short"]


@dataclass(frozen=True)
class BuildEvent:
    """``kind``: step (a new step starts: ``text`` is the instruction), cached, running
    (``text`` is the build container), output (``text`` is container output), done
    (``image`` made in ``seconds``), warning, built (the final image), tagged."""

    kind: str
    step: int = 0
    total: int = 0
    text: str = ""
    image: str = ""
    seconds: float = 0.0


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def render_plain(e: BuildEvent) -> str:
    """The lines Docker's classic builder prints, with step timings."""
    if e.kind == "step":
        return f"Step {e.step}/{e.total} : {e.text}\n"
    if e.kind == "cached":
        return f" ---> Using cache\n ---> {short(e.image)}\n"
    if e.kind == "running":
        return f" ---> Running in {e.text[:12]}\n"
    if e.kind == "output":
        return e.text
    if e.kind == "done":
        return f" ---> {short(e.image)} ({e.seconds:.2f}s)\n"
    if e.kind == "warning":
        return f"[Warning] {e.text}\n"
    if e.kind == "built":
        return f"Successfully built {short(e.image)} in {e.seconds:.2f}s\n"
    if e.kind == "tagged":
        return f"Successfully tagged {e.text}\n"
    return f"{e.text}\n"


def render_json(e: BuildEvent) -> str:
    """One JSON object per event and line, fields that are set only."""
    obj: dict[str, object] = {"kind": e.kind}
    if e.step:
        obj["step"], obj["total"] = e.step, e.total
    if e.text:
        obj["text"] = e.text
    if e.image:
        obj["image"] = e.image
    if e.kind in ("done", "built"):
        obj["seconds"] = round(e.seconds, 3)
    return json.dumps(obj) + "\n"
