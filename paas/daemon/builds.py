"""``POST /builds``: paasd runs ``image:build`` for the CLI and streams its progress.

paasd has the builder's modules loaded already, so a build costs the CLI only its
own start (a no-change rebuild is mostly that). The body carries the
``BuildRequest`` fields (paths are the caller's, on this host); each progress
event is one streamed JSON line, the last one the image id. A client that goes
away stops the build (its next progress line fails).

Not here: the build itself (``paas.build``), the CLI's rendering (``paas.cli.build``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument
from ..model import BuildRequest
from ..sched import background_priority
from ..state import connect
from .router import Response, Router, Stream

if TYPE_CHECKING:
    from .main import Daemon

__all__ = ["install", "request_from_json"]

_STR = ("context", "dockerfile", "target", "network", "stack", "cache_name", "app")
_BOOL = ("no_cache", "buildpack")


def request_from_json(body: dict[str, Any]) -> BuildRequest:
    """A ``BuildRequest`` from a JSON body; InvalidArgument for anything malformed."""
    known = set(_STR) | set(_BOOL) | {"tags", "build_args", "buildpacks", "source_date_epoch"}
    unknown = set(body) - known
    if unknown or not isinstance(body.get("context"), str):
        raise InvalidArgument(f"bad build request (unknown {sorted(unknown)}, or no context)",
                              "the CLI and paasd may be of different versions")
    kw: dict[str, Any] = {}
    for key in _STR:
        if key in body:
            if not isinstance(body[key], str):
                raise InvalidArgument(f"{key} must be a string")
            kw[key] = body[key]
    for key in _BOOL:
        if key in body:
            if not isinstance(body[key], bool):
                raise InvalidArgument(f"{key} must be true or false")
            kw[key] = body[key]
    for key in ("tags", "buildpacks"):
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(f"{key} must be a list of strings")
        kw[key] = tuple(value)
    pairs = body.get("build_args", [])
    if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in pairs):
        raise InvalidArgument("build_args must be a list of [name, value] pairs")
    kw["build_args"] = tuple((p[0], p[1]) for p in pairs)
    return BuildRequest(**kw)


def install(router: Router, daemon: Daemon) -> None:
    def build(params: dict[str, str], body: dict[str, Any]) -> Response:
        req = request_from_json(body)
        sde = body.get("source_date_epoch") or ""
        if not isinstance(sde, str) or (sde and not sde.isdigit()):
            raise InvalidArgument("source_date_epoch must be a number of seconds")

        def produce(emit: Any) -> dict[str, Any]:
            from ..build.builder import Builder
            from ..build.progress import BuildEvent
            from ..image.store import ImageStore
            from ..runtime.lifecycle import Runtime

            # a build must not starve the apps it will replace (they serve meanwhile):
            # this thread, and the build containers it starts, yield the CPU
            with background_priority():
                conn = connect(daemon.ctx.paths.db)
                try:
                    # the caller's SOURCE_DATE_EPOCH, not paasd's: reproducible builds
                    images = ImageStore(daemon.ctx, conn,
                                        env={"SOURCE_DATE_EPOCH": sde} if sde else {})

                    def progress(e: BuildEvent) -> None:
                        emit({"event": e.to_json()})

                    idmap = None
                    if req.app:  # an app's build: its containers in the app's id range
                        from ..apps.idmaps import IdMaps
                        from ..apps.store import need_app

                        need_app(conn, req.app)
                        idmap = IdMaps(daemon.ctx, conn).for_app(req.app)
                    builder = Builder(daemon.ctx, Runtime(daemon.ctx, conn, images), images,
                                      progress, idmap=idmap)
                    result = builder.build(req)
                    return {"image": result.image.id, "steps": result.steps,
                            "cached": result.cached}
                finally:
                    conn.close()

        return 200, Stream(produce)

    router.add("POST", "/builds", build)
    # load the builder now (~60 ms at start), so the first build is as fast as the next
    # and paasd's memory does not jump later
    importlib.import_module("paas.build.builder")
