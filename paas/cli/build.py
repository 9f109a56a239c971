"""``image:build``: a Dockerfile and its context into an image (``paas.build.builder``).

Sends the flags to paasd, whose builder is warm (like docker -> dockerd), and
prints the progress it streams: Docker's classic ``Step N/M : ...`` lines
(``--progress plain``, the default) or one JSON object per event (``--progress
json``); ``-q`` prints only the image id. Without a running paasd the build runs
in this process. Either way RUN steps are containers of this instance.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import InvalidArgument

TYPE_CHECKING = False  # typing costs ~3 ms on every call
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..build.progress import BuildEvent
    from .main import App, Handler
    from .parser import Parser

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
    """Ask paasd to build (its builder is warm), streaming its progress; build here
    when paasd is not running."""
    from ..build.progress import render_json, render_plain

    if a.network not in ("bridge", "none", "host"):
        raise InvalidArgument(f"unknown network {a.network!r}", "use bridge (default), none or host")
    body = {
        "context": os.path.abspath(a.context),
        "dockerfile": os.path.abspath(a.file) if a.file else "",
        "tags": list(a.tag),
        "build_args": [list(p) for p in parse_build_args(a.build_arg)],
        "target": a.target or "",
        "no_cache": a.no_cache,
        "network": a.network,
        "buildpack": a.buildpack or bool(a.buildpacks),
        "buildpacks": [p for p in (a.buildpacks or "").split(",") if p],
        "stack": a.stack or "",
        "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH", ""),
    }
    render = render_json if a.progress == "json" else render_plain
    out = sys.stdout
    shown = [0]

    def progress(e: BuildEvent) -> None:
        shown[0] += 1
        if not a.quiet:
            out.write(render(e))
            out.flush()

    image_id = _remote(app, body, progress, shown) or _local(app, body, progress)
    if a.quiet:
        out.write(image_id + "\n")
    return 0


def _remote(app: App, body: dict[str, Any], progress: Callable[[BuildEvent], None],
            shown: list[int]) -> str:
    """The image id paasd built, or "" if paasd is not running (nothing was shown)."""
    from ..build.progress import BuildEvent
    from ..daemon.client import DaemonClient
    from ..errors import FailedPrecondition

    client = DaemonClient(app.paths, timeout=24 * 3600.0)
    try:
        result = client.stream("POST", "/builds", body,
                               lambda line: progress(BuildEvent.from_json(line["event"])))
    except FailedPrecondition as err:
        if shown[0] == 0 and err.message == client.not_running().message:
            return ""
        raise
    return str(result["image"])


def _local(app: App, body: dict[str, Any], progress: Callable[[BuildEvent], None]) -> str:
    from ..build.builder import Builder
    from ..daemon.builds import request_from_json
    from ..image.store import ImageStore
    from ..runtime.lifecycle import Runtime

    images = ImageStore(app.ctx, app.conn)
    builder = Builder(app.ctx, Runtime(app.ctx, app.conn, images), images, progress)
    body = {k: v for k, v in body.items() if k != "source_date_epoch"}  # os.environ has it
    return builder.build(request_from_json(body)).image.id


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
