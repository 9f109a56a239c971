"""One build stage: FROM, then each instruction as a cached step producing an image.

A step's cache key is its instruction with the values it sees (expanded
arguments, build args, COPY source checksums); its parent is the image before
it. Filesystem steps (RUN, COPY, ADD, WORKDIR creating its directory) make a
layer from an overlay upper dir that then becomes the snapshot of the new
ChainID; metadata steps make an image with an empty-layer history entry. The
first cache miss turns the cache off for the rest of the stage, like Docker.

Not here: stage selection and tagging (``builder``), file copying (``copy``),
the build container (``runstep``), config rules (``imageconfig``).
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import InvalidArgument, NotFound, PaasError
from ..image.manifest import DEFAULT_PATH
from ..model import BuildRequest, HistoryEntry, Image, ImageConfig, RunOptions
from ..runtime.user import resolve_user
from . import imageconfig as ic
from .cache import step_key
from .context import BuildContext, resolve_in_scope
from .copy import copy_sources
from .dockerfile import Dockerfile, Instruction, Stage, parse
from .progress import BuildEvent
from .rootfs import BuildRoot
from .runstep import build_container, check_exit
from .shellwords import expand_word, expand_words

if TYPE_CHECKING:
    from ..image.store import ImageStore
    from .builder import Builder

__all__ = ["StageBuild", "Stages"]

_METADATA = ("ENV", "LABEL", "USER", "EXPOSE", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
             "CMD", "ENTRYPOINT", "ONBUILD", "MAINTAINER")


class Stages:
    """Images of finished stages, and images named by ``FROM``/``--from``."""

    def __init__(self, df: Dockerfile, images: ImageStore) -> None:
        self.df = df
        self.images = images
        self.results: dict[int, Image] = {}

    def done(self, index: int, image: Image) -> None:
        self.results[index] = image

    def image(self, ref: str, before: int) -> Image | None:
        """The image ``ref`` names: an earlier stage, ``scratch`` (None), or a stored image."""
        i = self.df.stage_index(ref)
        if i is not None and i < before and i in self.results:
            return self.results[i]
        if ref == "scratch":
            return None
        try:
            return self.images.get(ref)
        except NotFound as err:
            raise NotFound(
                f"image {ref!r} not found: paas does not pull from registries",
                "build it first, or make it with 'paas image:bootstrap' or 'paas image:load'",
            ) from err


class StageBuild:
    def __init__(self, builder: Builder, df: Dockerfile, stage: Stage, stages: Stages,
                 context: BuildContext, req: BuildRequest, meta: dict[str, str],
                 counter: list[int], total: int) -> None:
        self.b = builder
        self.df = df
        self.stage = stage
        self.stages = stages
        self.context = context
        self.req = req
        self.meta = meta
        self.counter = counter
        self.total = total
        self.build_args = dict(req.build_args)
        self.args: dict[str, str | None] = {}  # this stage's ARGs; None: declared, no value
        self.used_args: set[str] = set()
        self.image: Image | None = None
        self.config = ImageConfig()
        self.cmd_set = False
        self.use_cache = not req.no_cache
        self.idmap = builder.idmap

    # -- the stage ---------------------------------------------------------
    def run(self) -> Image:
        self._from()
        for trigger in self._triggers():
            self._step(trigger, counted=False)
        for ins in self.stage.instructions:
            self._step(ins)
        if self.image is None:  # FROM scratch and nothing else
            self.image = self.b.images.derive(None, config=self.config,
                                              history=HistoryEntry("", "FROM scratch"))
        return self.image

    def _begin(self, text: str, counted: bool = True) -> float:
        if counted:
            self.counter[0] += 1
            self.b.emit(BuildEvent("step", self.counter[0], self.total, text))
        else:
            self.b.emit(BuildEvent("note", text=f" ---> Executing ONBUILD trigger: {text}"))
        return time.monotonic()

    def _from(self) -> None:
        started = self._begin(self.stage.original or f"FROM {self.stage.base}")
        ref = expand_word(self.stage.base, self.meta, self.df.escape)
        self.image = self.stages.image(ref, self.stage.index)
        if self.image is not None:
            self.config = replace(self.image.config, on_build=())
            self.b.emit(BuildEvent("done", image=self.image.id,
                                   seconds=time.monotonic() - started))
        else:  # Docker gives scratch the default PATH
            self.config = ImageConfig(env=(DEFAULT_PATH,))
            self.b.emit(BuildEvent("note", text=" ---> (scratch)"))

    def _triggers(self) -> list[Instruction]:
        triggers = self.image.config.on_build if self.image is not None else ()
        out = []
        for text in triggers:
            ins = parse(f"FROM scratch\n{text}\n", "ONBUILD").stages[0].instructions[0]
            out.append(ins)
        return out

    # -- one step ------------------------------------------------------------
    def _step(self, ins: Instruction, counted: bool = True) -> None:
        started = self._begin(ins.original, counted)
        handler: Callable[[Instruction], tuple[str, Callable[[], Image]]] = {
            "RUN": self._run, "COPY": self._copy, "ADD": self._copy, "WORKDIR": self._workdir,
            "ARG": self._arg,
        }.get(ins.keyword, self._metadata)
        key, make = handler(ins)
        parent = self._id()
        cached = self._cached(parent, key)
        if cached is not None:
            self.counter[1] += 1
            self.image, self.config = cached, cached.config
            self._after(ins)
            self.b.emit(BuildEvent("cached", image=cached.id))
            return
        self.use_cache = False
        image = make()
        self.b.cache.record(parent, key, image.manifest_digest)
        self.image, self.config = image, image.config
        self._after(ins)
        self.b.emit(BuildEvent("done", image=image.id, seconds=time.monotonic() - started))

    def _after(self, ins: Instruction) -> None:
        if ins.keyword == "CMD":
            self.cmd_set = True

    def _id(self) -> str:
        return self.image.id if self.image is not None else "scratch"

    def _cached(self, parent: str, key: str) -> Image | None:
        if not self.use_cache:
            return None
        digest = self.b.cache.lookup(parent, key)
        if digest is None:
            return None
        try:
            return self.b.images.by_manifest(digest)
        except PaasError:
            self.b.cache.forget(parent, key)
            return None

    def _history(self, ins: Instruction, text: str = "") -> HistoryEntry:
        return HistoryEntry("", text or ins.original)

    # -- ARG / environment -----------------------------------------------------
    def _arg(self, ins: Instruction) -> tuple[str, Callable[[], Image]]:
        """Declare ARGs (their values matter to later RUN keys, not to this step's)."""
        for word in ins.args:
            name, eq, default = word.partition("=")
            if name in self.build_args:
                self.args[name] = self.build_args[name]
                self.used_args.add(name)
            elif eq:
                self.args[name] = expand_word(default, self._env(), self.df.escape)
            elif name in self.meta:
                self.args[name] = self.meta[name]
            else:
                self.args[name] = None  # declared without a value: unset for RUN
        return self._metadata(ins)

    def _env(self) -> dict[str, str]:
        """What ``$VAR`` means in an instruction: declared ARGs, overridden by ENV."""
        args = {k: v for k, v in self.args.items() if v is not None}
        return {**args, **ic.env_dict(self.config.env)}

    def _run_env(self) -> tuple[str, ...]:
        """ARG values a RUN sees as variables (ENV of the same name wins)."""
        env = ic.env_dict(self.config.env)
        return tuple(f"{k}={v}" for k, v in sorted(self.args.items())
                     if k not in env and v is not None)

    def _word(self, word: str) -> str:
        return expand_word(word, self._env(), self.df.escape)

    # -- RUN -------------------------------------------------------------------
    def _run(self, ins: Instruction) -> tuple[str, Callable[[], Image]]:
        for flag in ("mount", "network", "security"):
            if ins.flag(flag) is not None:
                raise InvalidArgument(f"{self.df.path}:{ins.line}: RUN --{flag} is not supported",
                                      "drop the flag; RUN steps use the bridge network")
        argv = tuple(ins.args) if ins.json_form else ic.shell_form(self.config, ins.args[0])
        env = self._run_env()
        key = step_key("RUN", argv, env)

        def make() -> Image:
            if self.image is None:
                raise InvalidArgument(f"{self.df.path}:{ins.line}: RUN needs a base image with a "
                                      "shell, not scratch", "start the stage FROM an image")
            image = self.image
            opts = RunOptions(image=image.id, command=argv, entrypoint="", env=env,
                              network=self.req.network, idmap=self.idmap,
                              tenant="build")
            with build_container(self.b.runtime, opts) as bc:
                created = _volume_dirs(bc.rootfs, self.config.volumes, self._root_id())
                self.b.emit(BuildEvent("running", text=bc.container.id))
                code = bc.run(lambda data: self.b.emit(
                    BuildEvent("output", text=data.decode("utf-8", "replace"))))
                check_exit(code, " ".join(argv) if ins.json_form else ins.args[0])
                _drop_volumes(bc.upper, self.config.volumes, created, self._root_id())
                text = f"RUN {shlex.join(argv) if ins.json_form else ' '.join(argv)}"
                if env:
                    text = f"|{len(env)} {' '.join(env)} {text}"
                return self.b.images.derive(image, config=self.config, layer_dir=bc.upper,
                                            idmap=self.idmap, adopt=True,
                                            history=self._history(ins, text))
        return key, make

    # -- COPY / ADD --------------------------------------------------------------
    def _copy(self, ins: Instruction) -> tuple[str, Callable[[], Image]]:
        words = [self._word(w) for w in ins.args]
        sources, dest = words[:-1], words[-1]
        if any("://" in s or s.startswith("git@") for s in sources):
            raise InvalidArgument(
                f"{self.df.path}:{ins.line}: {ins.keyword} from a URL is not supported",
                "download the file in a RUN step (curl/wget), or put it in the build context",
            )
        for flag in ("parents", "exclude"):
            if ins.flag(flag) is not None:
                raise InvalidArgument(f"{self.df.path}:{ins.line}: {ins.keyword} --{flag} is not "
                                      "supported", "copy the paths one by one")
        chown = self._word(ins.flag("chown") or "")
        chmod = _chmod(ins.flag("chmod"), ins, self.df.path)
        src_from = self._word(ins.flag("from") or "")
        workdir = self.config.working_dir or "/"
        if src_from:
            return self._copy_from(ins, src_from, sources, dest, chown, chmod, workdir)
        resolved = self.context.resolve(sources, ins.keyword)
        key = step_key(ins.keyword, self.context.checksum(resolved), dest, chown, chmod, workdir)
        return key, lambda: self._copy_into(ins, self.context, resolved, dest, chown, chmod)

    def _copy_from(self, ins: Instruction, src_from: str, sources: list[str], dest: str,
                   chown: str, chmod: int | None, workdir: str) -> tuple[str, Callable[[], Image]]:
        source_image = self.stages.image(src_from, self.stage.index)
        key = step_key(ins.keyword, "from", source_image.id if source_image else "scratch",
                       sources, dest, chown, chmod, workdir)

        def make() -> Image:
            with BuildRoot(self.b.images, source_image, self.idmap, self.b.ctx.paths.tmp) as src:
                try:
                    ctx = BuildContext(src.path)
                    return self._copy_into(ins, ctx, ctx.resolve(sources, ins.keyword), dest,
                                           chown, chmod, from_image=True)
                finally:
                    src.cleanup()
        return key, make

    def _copy_into(self, ins: Instruction, ctx: BuildContext, sources: tuple[object, ...],
                   dest: str, chown: str, chmod: int | None, from_image: bool = False) -> Image:
        with BuildRoot(self.b.images, self.image, self.idmap, self.b.ctx.paths.tmp) as root:
            try:
                uid, gid = self._owner(root.path, chown)
                idmap = self.idmap
                copy_sources(ctx, sources, dest, root.path,  # type: ignore[arg-type]
                             workdir=self.config.working_dir or "/", uid=uid, gid=gid,
                             chmod=chmod, extract_archives=ins.keyword == "ADD",
                             keep_owners=from_image and not chown,
                             archive_owner=idmap.to_host if idmap is not None else int)
                root.unmount()
                return self.b.images.derive(self.image, config=self.config,
                                            layer_dir=root.upper, idmap=self.idmap, adopt=True,
                                            history=self._history(ins))
            finally:
                root.cleanup()

    def _owner(self, rootfs: str, chown: str) -> tuple[int, int]:
        uid, gid = 0, 0
        if chown:
            # Docker: a user without a group means the group of the same name (or number)
            user = chown if ":" in chown else f"{chown}:{chown}"
            uid, gid, _groups = resolve_user(rootfs, user)
        if self.idmap is not None:
            return self.idmap.to_host(uid), self.idmap.to_host(gid)
        return uid, gid

    # -- WORKDIR ---------------------------------------------------------------------
    def _workdir(self, ins: Instruction) -> tuple[str, Callable[[], Image]]:
        config = ic.with_workdir(self.config, self._word(ins.args[0]))
        key = step_key("WORKDIR", config.working_dir)

        def make() -> Image:
            with BuildRoot(self.b.images, self.image, self.idmap, self.b.ctx.paths.tmp) as root:
                try:
                    _make_dirs(root.path, config.working_dir,
                               self.idmap.host_id if self.idmap else 0)
                    root.unmount()
                    changed = root.changed()
                    return self.b.images.derive(
                        self.image, config=config, idmap=self.idmap, adopt=True,
                        layer_dir=root.upper if changed else None, history=self._history(ins))
                finally:
                    root.cleanup()
        return key, make

    def _root_id(self) -> int:
        return self.idmap.host_id if self.idmap is not None else 0

    # -- metadata ----------------------------------------------------------------------
    def _metadata(self, ins: Instruction) -> tuple[str, Callable[[], Image]]:
        config = self._configured(ins)
        key = step_key(ins.keyword, json.dumps(_config_json(config), sort_keys=True))
        return key, lambda: self.b.images.derive(self.image, config=config,
                                                 history=self._history(ins))

    def _configured(self, ins: Instruction) -> ImageConfig:
        cfg, kw, args = self.config, ins.keyword, ins.args
        if kw in ("ENV", "LABEL"):
            pairs = [(self._word(args[i]), self._word(args[i + 1])) for i in range(0, len(args), 2)]
            return ic.set_env(cfg, pairs) if kw == "ENV" else ic.set_labels(cfg, pairs)
        if kw == "USER":
            return replace(cfg, user=self._word(args[0]))
        if kw == "EXPOSE":
            return ic.with_exposed(cfg, [w for a in args for w in expand_words(a, self._env())])
        if kw == "VOLUME":
            return ic.with_volumes(cfg, [self._word(a) for a in args])
        if kw == "STOPSIGNAL":
            return replace(cfg, stop_signal=ic.validate_stop_signal(self._word(args[0])))
        if kw == "HEALTHCHECK":
            return replace(cfg, healthcheck=ic.healthcheck(args, ins.json_form, dict(ins.flags), cfg))
        if kw == "SHELL":
            return replace(cfg, shell=tuple(args))
        if kw == "CMD":
            return replace(cfg, cmd=self._command(ins))
        if kw == "ENTRYPOINT":
            return replace(cfg, entrypoint=self._command(ins),
                           cmd=cfg.cmd if self.cmd_set else None)
        if kw == "ONBUILD":
            return replace(cfg, on_build=(*cfg.on_build, args[0]))
        return cfg  # MAINTAINER: deprecated, recorded in the history only

    def _command(self, ins: Instruction) -> tuple[str, ...]:
        if ins.json_form:
            return tuple(ins.args)
        return ic.shell_form(self.config, ins.args[0])


def _volume_dirs(rootfs: str, volumes: tuple[str, ...], owner: int) -> list[str]:
    """Create the missing volume directories in a RUN's root (Docker creates the mount
    points of a RUN's volumes); the ones created, relative to the root."""
    created = []
    for vol in volumes:
        rel = posixpath.normpath("/" + vol).lstrip("/")
        if rel and not os.path.lexists(os.path.join(rootfs, rel)):
            _make_dirs(rootfs, "/" + rel, owner)
            created.append(rel)
    return created


def _drop_volumes(upper: str, volumes: tuple[str, ...], created: list[str], owner: int) -> None:
    """Forget what a RUN wrote below the image's volumes (Docker mounts volumes there);
    keep the volume directories the RUN's container had to create."""
    for vol in volumes:
        rel = posixpath.normpath("/" + vol).lstrip("/")
        path = os.path.join(upper, rel)
        if not rel:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        if rel in created:
            os.mkdir(path, 0o755)
            os.chown(path, owner, owner)
            os.chmod(path, 0o755)


def _chmod(value: str | None, ins: Instruction, path: str) -> int | None:
    if value is None:
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise InvalidArgument(f"{path}:{ins.line}: invalid --chmod={value}",
                              "give an octal mode such as --chmod=755")
    return mode


def _make_dirs(root: str, path: str, owner: int) -> None:
    """``mkdir -p path`` inside ``root`` as a chroot would resolve it (symlinks in the
    image followed, never out of ``root``); new directories are 0755 and owned by the
    (shifted) root, like Docker's WORKDIR."""
    def readlink(parts: tuple[str, ...]) -> str | None:
        p = os.path.join(root, *parts)
        return os.readlink(p) if os.path.islink(p) else None

    parts = resolve_in_scope(path.strip("/").split("/"), readlink, clamp=True)
    current = root
    for comp in parts:
        current = os.path.join(current, comp)
        if os.path.isdir(current) and not os.path.islink(current):
            continue
        if os.path.lexists(current):
            raise InvalidArgument(f"WORKDIR {path}: {comp} exists and is not a directory",
                                  "choose another WORKDIR")
        os.mkdir(current, 0o755)
        os.chown(current, owner, owner, follow_symlinks=False)
        os.chmod(current, 0o755)


def _config_json(cfg: ImageConfig) -> dict[str, object]:
    from ..image.manifest import config_to_json

    return config_to_json(cfg)
