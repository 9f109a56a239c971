"""``Builder.build``: the one entry point of the image builder for Dockerfiles.

Parses the Dockerfile, works out which stages the target needs (the last
stage by default; stages it does not reach through FROM or ``COPY --from`` are
skipped, as BuildKit does), runs each stage's instructions through
``paas.build.stage`` with the step cache, and tags the result only when every
step succeeded. Progress goes to a callback as ``BuildEvent``s; their plain
rendering is kept as the image's build log.

Not here: what each instruction does (``stage``), the cache table (``cache``),
context files (``context``/``copy``), rendering for the terminal (CLI).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..config import Context
from ..errors import InvalidArgument, NotFound
from ..image.store import ImageStore
from ..model import BuildRequest, BuildResult, IdMap, Image
from ..runtime.lifecycle import Runtime
from .cache import BuildCache
from .context import open_context
from .dockerfile import Dockerfile, Stage, parse
from .progress import BuildEvent, render_plain
from .shellwords import expand_word
from .stage import StageBuild, Stages

__all__ = ["Builder", "needed_stages"]

Progress = Callable[[BuildEvent], None]


def needed_stages(df: Dockerfile, target: int, meta: dict[str, str]) -> list[int]:
    """Indexes of the stages ``target`` depends on (itself included), in file order."""
    needed: set[int] = set()
    todo = [target]
    while todo:
        i = todo.pop()
        if i in needed:
            continue
        needed.add(i)
        stage = df.stages[i]
        refs = [expand_word(stage.base, meta, df.escape)]
        refs += [ins.flag("from") or "" for ins in stage.instructions
                 if ins.keyword in ("COPY", "ADD") and ins.flag("from")]
        for ref in refs:
            j = df.stage_index(ref)
            if j is not None and j < i:
                todo.append(j)
    return sorted(needed)


class Builder:
    def __init__(self, ctx: Context, runtime: Runtime, images: ImageStore,
                 progress: Progress, idmap: IdMap | None = None) -> None:
        """``idmap``: the id range of the build containers and of the files COPY makes
        (an app's own range for its deploys), default the instance's default range."""
        self.ctx = ctx
        self.idmap = idmap if idmap is not None else ctx.idmap
        self.runtime = runtime
        self.images = images
        self.cache = BuildCache(images.conn)
        self._progress = progress
        self.log: list[str] = []

    def emit(self, event: BuildEvent) -> None:
        self.log.append(render_plain(event))
        self._progress(event)

    def build(self, req: BuildRequest) -> BuildResult:
        if req.buildpack:
            from .buildpacks import build_with_buildpacks

            return build_with_buildpacks(self, req)
        started = time.monotonic()
        for tag in req.tags:
            self.images.target_ref(tag)  # a bad tag fails before any work
        context = open_context(req.context)
        df = self._dockerfile(req)
        target = self._target(df, req.target)
        build_args = dict(req.build_args)
        meta = _meta_args(df, build_args)
        order = needed_stages(df, target, meta)
        total = sum(1 + len(df.stages[i].instructions) for i in order)
        stages = Stages(df, self.images)
        counter = [0, 0]  # steps done, cached
        used: set[str] = set()
        image: Image | None = None
        for i in order:
            sb = StageBuild(self, df, df.stages[i], stages, context, req, meta, counter, total)
            image = sb.run()
            used |= sb.used_args
            stages.done(i, image)
        if image is None:
            raise InvalidArgument("the build produced no image", "add instructions after FROM")
        warnings = tuple(
            f"One or more build-args [{', '.join(sorted(set(build_args) - used - set(meta)))}] "
            "were not consumed"
            for _ in [0] if set(build_args) - used - set(meta)
        )
        for w in warnings:
            self.emit(BuildEvent("warning", text=w))
        return self.finish(image, req, started, counter[0], counter[1], warnings)

    def finish(self, image: Image, req: BuildRequest, started: float, steps: int, cached: int,
               warnings: tuple[str, ...] = ()) -> BuildResult:
        """Tag the image (only now: a failed build tags nothing) and keep its build log."""
        seconds = time.monotonic() - started
        self.emit(BuildEvent("built", image=image.id, seconds=seconds))
        for tag in req.tags:
            image = self.images.tag(image.id, tag)
            self.emit(BuildEvent("tagged", text=str(self.images.target_ref(tag))))
        self.cache.save_log(image.manifest_digest, "".join(self.log))
        return BuildResult(image=image, steps=steps, cached=cached, seconds=seconds,
                           warnings=warnings)

    def _dockerfile(self, req: BuildRequest) -> Dockerfile:
        path = req.dockerfile or os.path.join(req.context, "Dockerfile")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError as err:
            raise NotFound(f"no Dockerfile at {path}",
                           "add a Dockerfile to the context or give one with -f") from err
        except (IsADirectoryError, NotADirectoryError) as err:
            raise InvalidArgument(f"{path} is not a file", "give -f the Dockerfile's path") from err
        except UnicodeDecodeError as err:
            raise InvalidArgument(f"{path} is not UTF-8 text", "save the Dockerfile as UTF-8") from err
        return parse(text, os.path.basename(path) if not req.dockerfile else req.dockerfile)

    @staticmethod
    def _target(df: Dockerfile, target: str) -> int:
        if not target:
            return len(df.stages) - 1
        i = df.stage_index(target)
        if i is None:
            names = ", ".join(s.name for s in df.stages if s.name) or "none"
            raise NotFound(f"target stage {target!r} could not be found",
                           f"the stages are named: {names}")
        return i


def _meta_args(df: Dockerfile, build_args: dict[str, str]) -> dict[str, str]:
    """The values of the ARGs before the first FROM (usable in FROM lines)."""
    meta: dict[str, str] = {}
    for ins in df.meta_args:
        for word in ins.args:
            name, eq, default = word.partition("=")
            if name in build_args:
                meta[name] = build_args[name]
            elif eq:
                meta[name] = expand_word(default, meta, df.escape)
            else:
                meta.setdefault(name, "")
    return meta


def stage_label(stage: Stage) -> str:
    return stage.original or f"FROM {stage.base}"
