"""Buildpack builds (Heroku buildpack API v2): an app directory into stack image + /app.

The app (without ``.git``) is copied into a fresh ``app`` dir owned by the app
user (uid 1000 in the container), which is bind-mounted at ``/app`` of a build
container from the stack image, together with the buildpacks (read-only), a
per-app cache dir (``CACHE_DIR``), an ``ENV_DIR`` of every config var of the app
(the shipped buildpacks export them with ``buildpacks/lib/common.sh``, mounted
read-only at ``/buildpacks/lib``) and the driver script (``buildpack-driver.sh``)
that runs detect, compile and release as that user. The ``app`` dir then becomes the image's one new layer, so
nothing a buildpack writes elsewhere ends up in the image. Process types come
from ``bin/release`` defaults with the app's Procfile over them; they are
stored as a label, the web one (if any) is the default command, and the
entrypoint sources ``/app/.profile.d/*.sh`` first, as Heroku does.

Selection: ``--buildpacks``, else the app's ``.buildpacks`` file, else a
``BUILDPACK_URL`` config var, else the first of ``DETECT_ORDER`` that detects.
A buildpack is a shipped name (``buildpacks/<name>``) or a local directory.

Not here: Dockerfile builds (``builder``/``stage``), the buildpacks themselves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import replace

from .. import modes
from ..errors import CommandFailed, InvalidArgument, NotFound
from ..model import (
    BindMount,
    BindPolicy,
    BuildRequest,
    BuildResult,
    HistoryEntry,
    Image,
    RunOptions,
)
from . import imageconfig as ic
from .appfiles import read_app_file
from .context import BuildContext, open_context
from .copy import copy_sources
from .ignore import parse_ignore
from .procfile import PROCESSES_LABEL, merge, parse_procfile, parse_release
from .progress import BuildEvent
from .runstep import build_container

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .builder import Builder

__all__ = ["APP_UID", "DEFAULT_STACK", "DETECT_ORDER", "LAUNCHER", "build_with_buildpacks",
           "shipped_dir"]

DEFAULT_STACK = "paas/stack:bookworm"
STACK_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates",
                  # Debian's gunicorn module, packed into the stack's wheelhouse (stackwheels):
                  # no /usr/bin/gunicorn, which would run outside the app's venv
                  "python3-gunicorn",
                  "nginx-light",
                  # the Node.js buildpack: node 18 and npm 9 (no corepack in Debian's)
                  "nodejs",
                  "npm",
                  # Go buildpack: Debian's toolchain (1.19 in bookworm; no gcc: CGO_ENABLED=0)
                  "golang-go",
                  # PHP buildpack: php-fpm behind the stack's nginx, composer, common extensions
                  "php-fpm",
                  "composer",
                  "php-mysql",
                  "php-mbstring",
                  "php-xml",
                  "php-curl",
                  "php-gd",
                  "php-zip",
                  )
# Detection order (see buildpacks/README.md): explicit opt-ins first, the catch-all last.
DETECT_ORDER = ("static", "nodejs", "python", "go", "php", "procfile")
APP_UID = 1000
DEFAULT_PORT = "5000"
# the image's entrypoint: source .profile.d like Heroku's dynos, then run the command
LAUNCHER = ('for f in /app/.profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; '
            'cd /app && exec "$@"')
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_EXIT_NONE_DETECTED = 100
_EXIT_INCOMPATIBLE = 101


def shipped_dir() -> str:
    """The buildpacks shipped with paas (``PAAS_BUILDPACKS_DIR`` overrides)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.environ.get("PAAS_BUILDPACKS_DIR") or os.path.join(here, "buildpacks")


def _driver() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "buildpack-driver.sh")


def resolve_buildpack(spec: str) -> str:
    """A buildpack name or local path as the host directory to mount."""
    spec = spec.strip()
    if "://" in spec or spec.startswith("git@"):
        raise InvalidArgument(f"cannot fetch buildpack {spec}: paas has no access to it",
                              "vendor the buildpack into a local directory and give its path")
    path = spec if spec.startswith("/") else ""
    if not path:
        if not _NAME_RE.match(spec):
            raise InvalidArgument(f"invalid buildpack name {spec!r}",
                                  f"use one of {', '.join(DETECT_ORDER)} or an absolute path")
        path = os.path.join(shipped_dir(), spec)
    if not os.path.isfile(os.path.join(path, "bin", "compile")):
        raise NotFound(f"buildpack {spec} not found (no bin/compile in {path})",
                       f"the shipped buildpacks are {', '.join(DETECT_ORDER)}")
    return os.path.realpath(path)


def _selection(req: BuildRequest, ctx: BuildContext) -> tuple[list[str], bool]:
    """(buildpack specs, whether to detect among them)."""
    if req.buildpacks:
        return list(req.buildpacks), False
    listed = os.path.join(ctx.root, ".buildpacks")
    if os.path.isfile(listed) and not os.path.islink(listed):
        with open(listed, encoding="utf-8") as f:
            specs = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        if specs:
            return specs, False
    url = dict(req.build_args).get("BUILDPACK_URL", "")
    if url:
        return [url], False
    return list(DETECT_ORDER), True


def build_with_buildpacks(b: Builder, req: BuildRequest) -> BuildResult:
    started = time.monotonic()
    for tag in req.tags:
        b.images.target_ref(tag)
    stack_ref = req.stack or DEFAULT_STACK
    try:
        stack = b.images.get(stack_ref)
    except NotFound as err:
        raise NotFound(f"stack image {stack_ref} not found",
                       "make it with 'paas image:bootstrap --stack'") from err
    context = open_context(req.context)
    specs, detect = _selection(req, context)
    packs = [resolve_buildpack(s) for s in specs]
    b.emit(BuildEvent("note", text=f"-----> Building with buildpacks on {stack_ref}"))
    work = tempfile.mkdtemp(prefix="buildpack-", dir=b.ctx.paths.tmp)
    try:
        layer = _stage_app(b, context, work)
        out = _run(b, req, stack, packs, detect, work, specs)
        image = _commit(b, stack, layer, out, specs)
    finally:
        if os.path.exists(work):
            shutil.rmtree(work)
    return b.finish(image, req, started, steps=1, cached=0)


def _owner(b: Builder) -> int:
    return b.idmap.to_host(APP_UID)


def _owned_dir(path: str, owner: int, mode: int = 0o755) -> str:
    os.makedirs(path, exist_ok=True)
    os.chown(path, owner, owner)
    os.chmod(path, mode)
    return path


def _stage_app(b: Builder, context: BuildContext, work: str) -> str:
    """``work/layer/app``: the app's files owned by the app user; returns ``work/layer``."""
    root = b.idmap.host_id
    layer = _owned_dir(os.path.join(work, "layer"), root)
    os.chown(layer, root, root)
    src = BuildContext(context.root, parse_ignore(".git\n"))
    copy_sources(src, src.resolve(["."]), "/app/", layer, uid=_owner(b), gid=_owner(b))
    _owned_dir(os.path.join(layer, "app"), _owner(b))
    return layer


def _env_dir(work: str, env: tuple[tuple[str, str], ...], owner: int) -> str:
    path = _owned_dir(os.path.join(work, "env"), owner, 0o700)
    for key, value in env:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise InvalidArgument(f"invalid config var name {key!r}", "use letters, digits and _")
        fpath = os.path.join(path, key)
        with open(fpath, "w", encoding="utf-8") as f:
            f.write(value)
        os.chown(fpath, owner, owner)
    return path


def _run(b: Builder, req: BuildRequest, stack: Image, packs: list[str], detect: bool,
         work: str, specs: list[str]) -> str:
    owner = _owner(b)
    name = req.app or req.cache_name or (
        req.tags[0].split(":")[0].replace("/", "-") if req.tags else "default")
    if not req.app:
        # not an app's build: its containers are in another id range than any app's, so
        # they never share (or poison) an app's cache ('_' is in no app name)
        name = f"image_{name}"[:63]
    if not _NAME_RE.match(name):
        raise InvalidArgument(f"invalid cache name {name!r}", "use an app name")
    modes.makedirs(b.ctx.paths.build_cache)  # root-only (runc opens bind sources as root)
    cache = _owned_dir(os.path.join(b.ctx.paths.build_cache, name), owner)
    out = _owned_dir(os.path.join(work, "out"), owner)
    # paas's own directories (under PAAS_ROOT, which -v refuses) and the buildpacks it
    # resolved: internal binds, mounted as they are
    internal = BindPolicy.INTERNAL
    binds = [BindMount(os.path.join(work, "layer", "app"), "/app", policy=internal),
             BindMount(cache, "/cache", policy=internal),
             BindMount(_env_dir(work, req.build_args, owner), "/env", True, internal),
             BindMount(out, "/paas/out", policy=internal),
             BindMount(_driver(), "/paas/driver", True, internal)]
    shared = os.path.join(shipped_dir(), "lib")  # buildpacks/lib/common.sh for every pack
    if os.path.isdir(shared):
        binds.append(BindMount(os.path.realpath(shared), "/buildpacks/lib", True, internal))
    targets = []
    for i, pack in enumerate(packs):
        targets.append(f"/buildpacks/{i}-{os.path.basename(pack)}")
        binds.append(BindMount(pack, targets[-1], True, internal))
    argv = ("/bin/bash", "/paas/driver", "/app", "/cache", "/env", "/paas/out",
            "detect" if detect else "given", *targets)
    env = ("HOME=/app", "TMPDIR=/tmp", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin",
           "STACK=paas-bookworm")
    opts = RunOptions(image=stack.id, command=argv, entrypoint="", env=env, binds=tuple(binds),
                      user=f"{APP_UID}:{APP_UID}", workdir="/app", network=req.network,
                      idmap=b.idmap, tenant="build")
    with build_container(b.runtime, opts) as bc:
        code = bc.run(lambda data: b.emit(BuildEvent("output", text=data.decode("utf-8", "replace"))))
    if code == _EXIT_NONE_DETECTED:
        raise NotFound(f"no buildpack detected the app (tried: {', '.join(specs)})",
                       "add a Procfile, package.json, requirements.txt, go.mod, composer.json or "
                       "static.json, a Dockerfile, "
                       "or name a buildpack with --buildpacks")
    if code == _EXIT_INCOMPATIBLE:
        raise InvalidArgument("the app is not compatible with the buildpack it names",
                              "see the message above")
    if code != 0:
        raise CommandFailed(f"buildpack compile failed (exit {code})",
                            "see its output above; nothing was tagged", returncode=code)
    return out


def _commit(b: Builder, stack: Image, layer: str, out: str, specs: list[str]) -> Image:
    names, defaults = [], {}
    for n in range(1, 65):
        name_file = os.path.join(out, f"name-{n}")
        if not os.path.exists(name_file):
            break
        with open(name_file, encoding="utf-8") as f:
            names.append(f.read().strip())
        release = os.path.join(out, f"release-{n}.yml")
        if os.path.exists(release):
            with open(release, encoding="utf-8") as f:
                defaults.update(parse_release(f.read()))
    procfile_path = os.path.join(layer, "app", "Procfile")
    procfile = {}
    text = read_app_file(procfile_path, "Procfile")
    if text:
        procfile = parse_procfile(text)
    processes = merge(defaults, procfile)
    cfg = stack.config
    default = processes.get("web") or next(iter(processes.values()), "")
    cfg = ic.set_env(cfg, [("HOME", "/app"), ("PORT", DEFAULT_PORT)])
    cfg = ic.set_labels(cfg, [(PROCESSES_LABEL, json.dumps(processes, sort_keys=True)),
                              ("io.paas.buildpacks", ",".join(names))])
    cfg = replace(cfg, working_dir="/app", user=f"{APP_UID}:{APP_UID}",
                  entrypoint=("/bin/bash", "-c", LAUNCHER, "launcher"),
                  cmd=("/bin/bash", "-c", default) if default else ("/bin/bash",))
    if "web" in processes:
        cfg = ic.with_exposed(cfg, [DEFAULT_PORT])
    b.emit(BuildEvent("note", text="-----> Discovering process types"))
    shown = ", ".join(processes) or "none"
    b.emit(BuildEvent("note", text=f"       Procfile declares types -> {shown}"))
    history = HistoryEntry("", f"buildpacks: {', '.join(names) or ', '.join(specs)}")
    return b.images.derive(stack, config=cfg, history=history, layer_dir=layer,
                           idmap=b.idmap, adopt=True)
