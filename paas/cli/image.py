"""``image:*`` commands: parse flags, call ``paas.image``, render like Docker.

Progress lines go to stderr in Dokku's style (``-----> ...``); results
(ids, tables, JSON) to stdout. Errors are raised and mapped by ``cli.main``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..model import Image
from .render import emit_json, human_ago, human_size, table

if TYPE_CHECKING:
    from ..image.store import ImageStore
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "history_rows", "image_rows", "inspect_json", "short_id"]

def _store(app: App) -> ImageStore:
    from ..image.store import ImageStore

    return ImageStore(app.ctx, app.conn)


def _progress(text: str) -> None:
    sys.stderr.write(f"-----> {text}\n")
    sys.stderr.flush()


def _detail(text: str) -> None:
    sys.stderr.write(f"       {text}\n")


# -- pure renderers ---------------------------------------------------------------
def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _ts(created: str) -> float:
    try:
        return datetime.fromisoformat(created).timestamp()
    except ValueError:
        return 0.0


def image_rows(images: list[Image], now: float | None = None) -> list[list[str]]:
    """REPOSITORY TAG IMAGE-ID CREATED SIZE rows; one per tag, ``<none>`` when untagged."""
    rows = []
    for img in images:
        refs = [(r.name, r.tag) for r in img.refs] or [("<none>", "<none>")]
        for name, tag in refs:
            rows.append(
                [
                    name,
                    tag,
                    short_id(img.id),
                    human_ago(_ts(img.created), now),
                    human_size(img.size),
                ]
            )
    return rows


def _config_json(img: Image) -> dict[str, Any]:
    c = img.config
    return {
        "Entrypoint": list(c.entrypoint) or None,
        "Cmd": list(c.cmd) if c.cmd is not None else None,
        "Env": list(c.env),
        "WorkingDir": c.working_dir,
        "User": c.user,
        "ExposedPorts": {p: {} for p in c.exposed_ports} or None,
        "Labels": dict(c.labels) or None,
        "StopSignal": c.stop_signal or None,
    }


def inspect_json(img: Image) -> dict[str, Any]:
    """Docker's ``image inspect`` shape (the parts paas has)."""
    return {
        "Id": img.id,
        "RepoTags": [f"{r.name}:{r.tag}" for r in img.refs],
        "RepoDigests": [f"{r.name}@{img.manifest_digest}" for r in img.refs],
        "Manifest": img.manifest_digest,
        "Created": img.created,
        "Size": img.size,
        "Architecture": img.architecture,
        "Os": img.os,
        "Config": _config_json(img),
        "RootFS": {"Type": "layers", "Layers": list(img.diff_ids), "ChainIDs": list(img.chain_ids)},
        "History": [
            {
                "created": h.created,
                "created_by": h.created_by,
                "empty_layer": h.empty_layer,
                "comment": h.comment,
            }
            for h in img.history
        ],
    }


def history_rows(img: Image, layer_sizes: list[int]) -> list[dict[str, Any]]:
    """History entries newest first, each with its layer's size (0 for empty layers)."""
    sizes = iter(layer_sizes)
    out = []
    for h in img.history:
        size = 0 if h.empty_layer else next(sizes, 0)
        out.append(
            {"created": h.created, "created_by": h.created_by, "size": size, "comment": h.comment}
        )
    out.reverse()
    for i, row in enumerate(out):
        row["id"] = img.id if i == 0 else "<missing>"
    return out


# -- handlers ---------------------------------------------------------------------
def _bootstrap(app: App, a: argparse.Namespace) -> int:
    from ..image.bootstrap import bootstrap, mmdebstrap_argv
    from ..image.store import ImageStore

    includes = [p.strip() for p in (a.include or "").split(",") if p.strip()]
    hooks: list[str] = []
    if a.stack:  # the image buildpack builds run in, with its offline wheelhouse
        from ..build.buildpacks import DEFAULT_STACK, STACK_PACKAGES
        from ..build.stackwheels import customize_hooks

        includes = list(dict.fromkeys([*STACK_PACKAGES, *includes]))
        hooks = customize_hooks()
        a.ref = a.ref or DEFAULT_STACK
    a.ref = a.ref or "debian:bookworm"
    ImageStore.target_ref(a.ref)  # bad input fails before any progress line
    mmdebstrap_argv(a.suite, includes, "-")
    _progress(f"Bootstrapping {a.ref} (mmdebstrap {a.suite}, minbase)")
    start = time.monotonic()
    img = bootstrap(_store(app), a.ref, a.suite, includes, hooks=hooks)
    _detail(f"done in {time.monotonic() - start:.1f}s")
    print(img.id)
    return 0


def _import(app: App, a: argparse.Namespace) -> int:
    from ..errors import NotFound
    from ..image.store import ImageStore

    ImageStore.target_ref(a.ref)
    if not os.path.isfile(a.tar):
        raise NotFound(f"no such file: {a.tar}", "give the path of a root filesystem tar")
    _progress(f"Importing {a.tar} as {a.ref}")
    img = _store(app).import_rootfs(a.tar, a.ref, created_by=f"paas image:import {a.tar}")
    print(img.id)
    return 0


def _ls(app: App, a: argparse.Namespace) -> int:
    images = _store(app).list()
    if not a.all:  # like docker images: untagged build steps only with -a
        from ..build.cache import BuildCache

        steps = BuildCache(app.conn).intermediates()
        images = [i for i in images if i.refs or i.manifest_digest not in steps]
    if a.quiet:
        for img_id in dict.fromkeys(short_id(i.id) for i in images):
            print(img_id)
        return 0
    rows = image_rows(images)
    if a.format == "json":
        keys = ["Repository", "Tag", "ID", "CreatedSince", "Size"]
        emit_json([dict(zip(keys, r)) for r in rows])
    else:
        table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows)
    return 0


def _inspect(app: App, a: argparse.Namespace) -> int:
    store = _store(app)
    emit_json([inspect_json(store.get(ref)) for ref in a.refs])
    return 0


def _history(app: App, a: argparse.Namespace) -> int:
    store = _store(app)
    img = store.get(a.ref)
    sizes = [store.content.size(d) for d in img.diff_ids]
    rows = history_rows(img, sizes)
    if a.format == "json":
        emit_json(rows)
        return 0
    table(
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        [
            [
                short_id(r["id"]) if r["id"] != "<missing>" else r["id"],
                human_ago(_ts(r["created"])),
                _trunc(r["created_by"], 45),
                human_size(r["size"]),
                r["comment"],
            ]
            for r in rows
        ],
    )
    return 0


def _trunc(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _tag(app: App, a: argparse.Namespace) -> int:
    _store(app).tag(a.source, a.target)
    return 0


def _in_use(app: App) -> dict[str, str]:
    """image id -> name of a container using it."""
    rows = app.conn.execute(
        "SELECT json_extract(config, '$.image_id'), name FROM containers ORDER BY created"
    ).fetchall()
    out: dict[str, str] = {}
    for image_id, name in rows:
        if image_id:
            out.setdefault(str(image_id), str(name))
    return out


def _rm(app: App, a: argparse.Namespace) -> int:
    store = _store(app)
    users = _in_use(app)
    for ref in a.refs:
        for line in store.remove(ref, force=a.force, in_use=users):
            print(line)
    return 0


def _log(app: App, a: argparse.Namespace) -> int:
    """The build output kept with an image built by image:build."""
    from ..build.cache import BuildCache
    from ..errors import NotFound

    img = _store(app).get(a.ref)
    log = BuildCache(app.conn).log_of(img.manifest_digest)
    if log is None:
        raise NotFound(f"image {a.ref} has no build log", "only images made by image:build have one")
    sys.stdout.write(log)
    return 0


def _prune(app: App, a: argparse.Namespace) -> int:
    """Every untagged image no container uses: dangling images and the build cache."""
    store = _store(app)
    users = _in_use(app)
    removed = 0
    for img in store.list():
        if not img.refs and img.id not in users:
            for line in store.remove(img.id, in_use=users):
                print(line)
            removed += 1
    print(f"Removed {removed} image{'s' if removed != 1 else ''}")
    return 0


def _save(app: App, a: argparse.Namespace) -> int:
    _store(app).save(a.ref, a.output)
    return 0


def _load(app: App, a: argparse.Namespace) -> int:
    for ref, _img in _store(app).load_named(a.input):
        print(f"Loaded image: {ref.name}:{ref.tag}")
    return 0


def configure(name: str, p: Parser) -> Handler:
    if name == "image:bootstrap":
        p.add_argument("ref", nargs="?", default="", metavar="NAME[:TAG]",
                       help="default debian:bookworm, or paas/stack:bookworm with --stack")
        p.add_argument("--stack", action="store_true",
                       help="the buildpack stack: python3, venv, pip, gunicorn, nginx")
        p.add_argument("--suite", default="bookworm", help="Debian suite (default: bookworm)")
        p.add_argument("--include", default="", metavar="PKG,PKG", help="extra packages to install")
        return _bootstrap
    if name == "image:import":
        p.add_argument("tar", metavar="ROOTFS.tar")
        p.add_argument("ref", metavar="NAME[:TAG]")
        return _import
    if name == "image:ls":
        p.add_argument("--format", choices=["table", "json"], default="table")
        p.add_argument("-q", "--quiet", action="store_true", help="only image ids")
        p.add_argument("-a", "--all", action="store_true",
                       help="also the untagged images of build steps (the build cache)")
        return _ls
    if name == "image:inspect":
        p.add_argument("refs", nargs="+", metavar="REF")
        return _inspect
    if name == "image:history":
        p.add_argument("ref", metavar="REF")
        p.add_argument("--format", choices=["table", "json"], default="table")
        return _history
    if name == "image:tag":
        p.add_argument("source", metavar="SOURCE")
        p.add_argument("target", metavar="TARGET")
        return _tag
    if name == "image:rm":
        p.add_argument(
            "-f",
            "--force",
            action="store_true",
            help="remove even if tagged several times or in use",
        )
        p.add_argument("refs", nargs="+", metavar="REF")
        return _rm
    if name == "image:log":
        p.add_argument("ref", metavar="REF")
        return _log
    if name == "image:prune":
        return _prune
    if name == "image:save":
        p.add_argument("ref", metavar="REF")
        p.add_argument("-o", "--output", required=True, metavar="FILE")
        return _save
    if name == "image:load":
        p.add_argument("-i", "--input", required=True, metavar="FILE")
        return _load
    raise KeyError(name)
