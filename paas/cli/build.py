"""``image:build``: a Dockerfile and its context into an image (``paas.build.builder``).

Parses the flags into a ``BuildRequest``, runs the builder in this process
(RUN steps are containers of this instance) and prints its progress: Docker's
classic ``Step N/M : ...`` lines (``--progress plain``, the default) or one
JSON object per event (``--progress json``); ``-q`` prints only the image id.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from ..errors import InvalidArgument

if TYPE_CHECKING:
    from ..build.progress import BuildEvent
    from .main import App, Handler, Parser

__all__ = ["configure", "parse_build_args"]


def parse_build_args(values: list[str]) -> tuple[tuple[str, str], ...]:
    """``--build-arg K=V`` (or ``K``, taking K from this environment, as docker does)."""
    out = []
    for item in values:
        key, eq, value = item.partition("=")
        if not key or not (key[0].isalpha() or key[0] == "_") or not key.replace("_", "").isalnum():
            raise InvalidArgument(f"invalid --build-arg {item!r}", "write --build-arg NAME=value")
        if not eq:
            if key not in os.environ:
                continue  # docker skips an unset NAME
            value = os.environ[key]
        out.append((key, value))
    return tuple(out)


def _build(app: App, a: argparse.Namespace) -> int:
    from ..build.builder import Builder
    from ..build.progress import render_json, render_plain
    from ..image.store import ImageStore
    from ..model import BuildRequest
    from ..runtime.lifecycle import Runtime

    if a.network not in ("bridge", "none", "host"):
        raise InvalidArgument(f"unknown network {a.network!r}", "use bridge (default), none or host")
    req = BuildRequest(
        context=os.path.abspath(a.context),
        dockerfile=os.path.abspath(a.file) if a.file else "",
        tags=tuple(a.tag),
        build_args=parse_build_args(a.build_arg),
        target=a.target or "",
        no_cache=a.no_cache,
        network=a.network,
        buildpack=a.buildpack or bool(a.buildpacks),
        buildpacks=tuple(p for p in (a.buildpacks or "").split(",") if p),
        stack=a.stack or "",
    )
    render = render_json if a.progress == "json" else render_plain
    out = sys.stdout

    def progress(e: BuildEvent) -> None:
        if a.quiet:
            return
        out.write(render(e))
        out.flush()

    images = ImageStore(app.ctx, app.conn)
    builder = Builder(app.ctx, Runtime(app.ctx, app.conn, images), images, progress)
    result = builder.build(req)
    if a.quiet:
        out.write(result.image.id + "\n")
    return 0


def configure(name: str, p: Parser) -> Handler:
    p.add_argument("context", metavar="CONTEXT", help="the build context directory")
    p.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]",
                   help="name the image (repeatable)")
    p.add_argument("-f", "--file", metavar="DOCKERFILE", help="default: CONTEXT/Dockerfile")
    p.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--target", metavar="STAGE", help="build up to this stage")
    p.add_argument("--no-cache", action="store_true", help="run every step again")
    p.add_argument("--progress", choices=["plain", "json"], default="plain")
    p.add_argument("--network", default="bridge", help="network of RUN steps: bridge, none, host")
    p.add_argument("--buildpack", action="store_true",
                   help="build with buildpacks (detected) instead of a Dockerfile")
    p.add_argument("--buildpacks", metavar="NAME|DIR,...",
                   help="build with these buildpacks, in order")
    p.add_argument("--stack", metavar="IMAGE", help="stack image (default paas/stack:bookworm)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    return _build
