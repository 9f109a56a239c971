"""Build progress events and their two renderings: Docker's classic lines and JSON lines.

The builder emits ``BuildEvent``s; the CLI prints them (``--progress plain|json``) and
the builder keeps the plain rendering as the image's build log.

Not here: deciding when events happen (``paas.build.builder``).
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # typing costs the CLI ~3 ms
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BuildEvent", "render_json", "render_plain", "short"]

_FIELDS = ("kind", "step", "total", "text", "image", "seconds")


class BuildEvent:
    """``kind``: step (a new step starts: ``text`` is the instruction), cached, running
    (``text`` is the build container), output (``text`` is container output), done
    (``image`` made in ``seconds``), warning, note, built (the final image), tagged.

    A plain class, not a dataclass: the CLI renders events paasd streams to it, and
    importing ``dataclasses`` would cost it ~15 ms."""

    __slots__ = _FIELDS

    def __init__(self, kind: str, step: int = 0, total: int = 0, text: str = "",
                 image: str = "", seconds: float = 0.0) -> None:
        self.kind = kind
        self.step = step
        self.total = total
        self.text = text
        self.image = image
        self.seconds = seconds

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BuildEvent) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(tuple(self.to_json().items()))

    def __repr__(self) -> str:
        return f"BuildEvent({self.to_json()!r})"

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _FIELDS}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> BuildEvent:
        return cls(str(obj.get("kind", "")), int(obj.get("step", 0)), int(obj.get("total", 0)),
                   str(obj.get("text", "")), str(obj.get("image", "")),
                   float(obj.get("seconds", 0.0)))


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
