"""``system:df`` and ``system:prune``: Docker's disk usage summary and prune, over
everything an instance keeps (images, unpacked layers, containers, build cache, logs).

Not here: the figures (``paas.deploy.df``), what is kept (``paas.deploy.gc``), the
removal (``paas.deploy.prune``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument
from .render import emit_json, human_ago, human_size, table

if TYPE_CHECKING:
    from ..deploy.df import UsageRow
    from ..deploy.prune import PruneReport
    from ..runtime.lifecycle import Runtime
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "df_rows", "prune_lines"]

WARNING = """WARNING! This will remove:
  - all stopped containers (not those paasd restarts, nor an app's current processes)
  - images of releases older than each app's keep-releases
  - {images}
  - {cache}
  - unpacked layers and blobs no image needs
"""


def _runtime(app: App) -> Runtime:
    from ..runtime.lifecycle import Runtime

    return Runtime(app.ctx, app.conn)


# -- pure renderers ------------------------------------------------------------------
def _percent(part: int, whole: int) -> str:
    return f"{human_size(part)} ({round(100 * part / whole) if whole else 0}%)"


def df_rows(rows: list[UsageRow]) -> list[list[str]]:
    """TYPE TOTAL ACTIVE SIZE RECLAIMABLE, like ``docker system df``."""
    return [[r.type, str(r.total), str(r.active), human_size(r.size),
             _percent(r.reclaimable, r.size)] for r in rows]


def _df_json(r: UsageRow) -> dict[str, Any]:
    return {"Type": r.type, "TotalCount": r.total, "Active": r.active,
            "Size": human_size(r.size), "Reclaimable": _percent(r.reclaimable, r.size),
            "SizeBytes": r.size, "ReclaimableBytes": r.reclaimable}


def prune_lines(r: PruneReport) -> list[str]:
    """Docker's ``system prune`` report, ending with ``Total reclaimed space: 1.2GB``."""
    lines: list[str] = []
    if r.containers:
        lines += ["Deleted Containers:", *r.containers, ""]
    if r.untagged or r.images:
        lines += ["Deleted Images:", *(f"untagged: {t}" for t in r.untagged),
                  *(f"deleted: {i}" for i in r.images), ""]
    if r.snapshots or r.blobs:
        lines += [(f"Deleted Layers: {r.snapshots} unpacked, {r.blobs} blob"
                  f"{'s' if r.blobs != 1 else ''}"), ""]
    if r.buildpack_caches:
        lines += ["Deleted build cache objects:",
                  *(f"buildpack cache of {a}" for a in r.buildpack_caches), ""]
    if r.logs:
        lines += ["Deleted Logs:", *r.logs, ""]
    lines.append(f"Total reclaimed space: {human_size(r.reclaimed)}")
    return lines


# -- handlers ------------------------------------------------------------------------
def _df(app: App, a: argparse.Namespace) -> int:
    from ..deploy.df import details, usage_rows
    from ..deploy.gc import Policy, plan
    from ..deploy.inventory import load_inventory

    inv = load_inventory(_runtime(app))
    rows = usage_rows(inv, plan(inv, Policy(all=True, grace=0.0, created_grace=0.0)))
    more = details(inv) if a.verbose else None
    if a.format == "json":
        types = [_df_json(r) for r in rows]
        emit_json(types if more is None else {"Types": types, "Images": more["images"],
                                               "Containers": more["containers"],
                                               "BuildCache": more["build_cache"],
                                               "Logs": more["logs"]})
        return 0
    table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], df_rows(rows))
    if more is not None:
        _df_verbose(more)
    return 0


def _df_verbose(more: dict[str, list[dict[str, Any]]]) -> None:
    print("\nImages space usage:\n")
    table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE",
           "CONTAINERS"],
          [[*(t.rsplit(":", 1) if t else ["<none>", "<none>"]), i["id"].split(":")[1][:12],
            human_ago(i["added"]), human_size(i["size"]), human_size(i["shared"]),
            human_size(i["unique"]), str(i["containers"])]
           for i in more["images"] for t in (i["tags"] or [""])])
    print("\nContainers space usage:\n")
    table(["CONTAINER ID", "IMAGE", "SIZE", "LOGS", "CREATED", "STATUS", "NAMES"],
          [[c["id"][:12], c["image"], human_size(c["size"]), human_size(c["logs"]),
            human_ago(c["created"]), c["state"], c["name"]] for c in more["containers"]])
    print("\nBuild cache usage:\n")
    table(["CACHE ID", "CACHE TYPE", "SIZE", "LAST USED"],
          [[c["id"].split(":")[-1][:12], c["type"], human_size(c["size"]), human_ago(c["used"])]
           for c in more["build_cache"]])
    print("\nLogs space usage (nginx):\n")
    table(["FILE", "SIZE"], [[x["file"], human_size(x["size"])] for x in more["logs"]])


def _confirm(a: argparse.Namespace) -> bool:
    if a.force:
        return True
    if not sys.stdin.isatty():
        raise InvalidArgument("system:prune asks before removing anything and stdin is not a "
                              "terminal", "add --force to prune without asking")
    sys.stdout.write(WARNING.format(
        images="every image no container or kept release uses" if a.all
        else "dangling images (untagged, unused)",
        cache="the whole build cache" if a.all
        else f"build cache beyond {human_size(a.cap)} (least recently used first)"))
    sys.stdout.write("\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _prune(app: App, a: argparse.Namespace) -> int:
    from ..deploy.gc import Policy
    from ..deploy.prune import build_cache_max, busy_apps, parse_cap, prune

    a.cap = parse_cap(a.build_cache_max) if a.build_cache_max is not None \
        else build_cache_max()
    if not _confirm(a):
        return 0
    rt = _runtime(app)
    from ..deploy.inventory import load_inventory

    inv = load_inventory(rt)
    busy = busy_apps(app.ctx.paths.root, [x.app for x in inv.apps])
    # while a deploy runs its new image may not be tagged yet: keep recent images then
    policy = Policy(all=a.all, build_cache_max=a.cap, busy_apps=busy,
                    grace=600.0 if busy else 0.0)
    report = prune(rt, policy, inv)
    print("\n".join(prune_lines(report)))
    for f in report.failures:
        sys.stderr.write(f" !     {f}\n")
    return 1 if report.failures else 0


def configure(name: str, p: Parser) -> Handler:
    if name == "system:df":
        p.add_argument("--format", choices=["table", "json"], default="table")
        p.add_argument("-v", "--verbose", action="store_true",
                       help="show each image, container, build cache entry and log file")
        return _df
    p.add_argument("-a", "--all", action="store_true",
                   help="also every unused image (not the stack) and the whole build cache")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--build-cache-max", metavar="SIZE", default=None,
                   help="keep at most SIZE of build cache, e.g. 2g (default: "
                        "PAAS_BUILD_CACHE_MAX, else 5g)")
    return _prune
