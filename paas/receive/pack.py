"""The git protocol side of a push: dulwich's receive-pack over a pair of streams,
with paas's update hook in the middle.

dulwich stores the pushed pack, then for each ref calls the repository's ``update``
hook before moving the ref: that is where ``UpdateHook`` (build and deploy) runs,
with a progress function that writes to side band 2 at once (``remote: ...`` on the
pusher's terminal). A ``PaasError`` from the hook rejects that ref (``ng REF MSG``)
and the ref stays where it was. Shell hooks in the repository are never run.

Importing this module imports dulwich (~150 ms): only ``paas.receive``'s functions
import it, when a push actually arrives. Not covered here: the transports (ssh
forced command, smart HTTP) and deploy policy (which branch deploys).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from typing import Any, Protocol

from dulwich.errors import HookError
from dulwich.hooks import Hook
from dulwich.protocol import Protocol as GitProtocol
from dulwich.protocol import ReceivableProtocol
from dulwich.refs import Ref
from dulwich.repo import Repo
from dulwich.server import BackendRepo, DictBackend, ReceivePackHandler, UploadPackHandler

from ..config import Context
from ..errors import NotFound, PaasError, from_environment
from ..filelock import file_lock
from ..model import Push
from . import UpdateHook
from .names import repo_path, repos_dir, validate_app

__all__ = ["ZERO_SHA", "Reader", "UpdateHook", "Writer", "ensure_repo", "receive_pack",
           "upload_pack"]

log = logging.getLogger(__name__)

ZERO_SHA = "0" * 40
DEFAULT_BRANCH = b"refs/heads/main"
_SIDE_BAND_PROGRESS = 2
_MAX_REASON = 200


class Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


def _lockfile(root: str, app: str) -> str:
    return os.path.join(repos_dir(root), f".{app}.lock")


def _init_repo(root: str, app: str) -> str:
    """Create ``APP.git`` if missing (caller holds the repo lock): a bare repository
    built under a temporary name and renamed, so no one sees half of one."""
    path = repo_path(root, app)
    if os.path.isfile(os.path.join(path, "HEAD")):
        return path
    tmp = tempfile.mkdtemp(prefix=f".{app}.", suffix=".tmp", dir=repos_dir(root))
    try:
        repo = Repo.init_bare(tmp)
        repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(DEFAULT_BRANCH))
        repo.close()
        os.rename(tmp, path)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def ensure_repo(ctx: Context, app: str) -> str:
    """The path of ``app``'s bare repository, created (HEAD -> main) if missing."""
    validate_app(app)
    os.makedirs(repos_dir(ctx.paths.root), mode=0o700, exist_ok=True)
    with file_lock(_lockfile(ctx.paths.root, app)):
        return _init_repo(ctx.paths.root, app)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


class _Progress:
    """Lines to side band 2, sent immediately; silently dropped once the pusher is gone
    (a deploy that started should finish even if the client hangs up)."""

    def __init__(self, handler: ReceivePackHandler) -> None:
        self.handler = handler
        self.gone = False

    def __call__(self, line: str) -> None:
        if self.gone or not self.handler.has_capability(b"side-band-64k"):
            return
        data = "".join(f"{ln}\n" for ln in line.rstrip("\n").split("\n"))
        try:
            self.handler.proto.write_sideband(_SIDE_BAND_PROGRESS,
                                              data.encode("utf-8", "replace"))
        except OSError:
            self.gone = True


class _UpdateHookAdapter(Hook):
    """dulwich's ``update`` hook calling paas's ``UpdateHook`` with a ``Push``."""

    def __init__(self, app: str, repo: str, pusher: str, hook: UpdateHook,
                 progress: _Progress) -> None:
        self.app, self.repo, self.pusher = app, repo, pusher
        self.hook, self.progress = hook, progress

    def execute(self, *args: Any) -> tuple[None, None]:
        ref_b, old_b, new_b = args
        ref = bytes(ref_b).decode("utf-8", "replace")
        if not ref.startswith(("refs/heads/", "refs/tags/")):
            raise HookError("only branches and tags can be pushed")
        push = Push(app=self.app, ref=ref, old=bytes(old_b).decode(), new=bytes(new_b).decode(),
                    repo=self.repo, pusher=self.pusher)
        try:
            self.hook(push, self.progress)
        except PaasError as err:
            log.info("push of %s to %s rejected: %s", ref, self.app, err.render())
            lines = err.message.splitlines()
            if len(lines) > 1:  # e.g. a failed health check and the container's last output:
                for line in lines:  # git's reason is one line, cut: the whole of it first
                    self.progress(f" !     {line}")
            if err.hint:
                self.progress(f"hint: {err.hint}")
            raise HookError(_one_line(err.message) or "deploy failed") from err
        except Exception as err:
            known = from_environment(err)
            if known is not None:  # e.g. a full disk: the pusher is told what and what to do
                log.info("push of %s to %s rejected: %s", ref, self.app, known.render())
                self.progress(f" !     {known.message}")
                self.progress(f"hint: {known.hint}")
                raise HookError(known.message) from err
            log.exception("update hook failed for %s of %s", ref, self.app)
            raise HookError("deploy failed") from err
        return None, None


def _backend(repo: Repo) -> DictBackend:
    repos: dict[str, BackendRepo] = {"/": repo}
    return DictBackend(repos)


def _stream_writer(stdout: Writer) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        stdout.write(data)
        stdout.flush()

    return write


def receive_pack(ctx: Context, app: str, stdin: Reader, stdout: Writer, hook: UpdateHook,
                 pusher: str = "", *, stateless: bool = False, advertise: bool = False) -> None:
    """Serve one ``git-receive-pack`` for ``app`` over ``stdin``/``stdout``.

    ``hook`` runs for every ref update (objects stored, ref not yet moved); a
    ``PaasError`` rejects that ref. The repository is created on first use and
    locked (flock) for the whole exchange, so concurrent pushes to one app queue
    up instead of racing. ``stateless``/``advertise`` are smart HTTP's two halves
    (the ref advertisement, then one request with commands and pack)."""
    validate_app(app)
    root = ctx.paths.root
    os.makedirs(repos_dir(root), mode=0o700, exist_ok=True)
    if advertise:  # read-only: no need to wait for a push in progress
        path = ensure_repo(ctx, app)
        _serve_receive(app, path, stdin, stdout, hook, pusher, stateless, advertise)
        return
    with file_lock(_lockfile(root, app)):
        path = _init_repo(root, app)
        _serve_receive(app, path, stdin, stdout, hook, pusher, stateless, advertise)


def _serve_receive(app: str, path: str, stdin: Reader, stdout: Writer, hook: UpdateHook,
                   pusher: str, stateless: bool, advertise: bool) -> None:
    repo = Repo(path)
    try:
        proto: GitProtocol
        if stateless:
            proto = ReceivableProtocol(stdin.read, _stream_writer(stdout))
        else:
            proto = GitProtocol(stdin.read, _stream_writer(stdout))
        handler = ReceivePackHandler(_backend(repo), ["/"], proto,
                                     stateless_rpc=stateless, advertise_refs=advertise)
        repo.hooks.clear()  # never the shell hooks of the repo directory
        repo.hooks["update"] = _UpdateHookAdapter(app, path, pusher, hook, _Progress(handler))
        handler.handle()
    finally:
        repo.close()


def upload_pack(ctx: Context, app: str, stdin: Reader, stdout: Writer) -> None:
    """Serve ``git-upload-pack`` (clone, fetch) of an existing app repository: read-only."""
    path = repo_path(ctx.paths.root, validate_app(app))
    if not os.path.isfile(os.path.join(path, "HEAD")):
        raise NotFound(f"app {app!r} has no repository yet", "push to it first")
    repo = Repo(path)
    try:
        proto = GitProtocol(stdin.read, _stream_writer(stdout))
        UploadPackHandler(_backend(repo), ["/"], proto).handle()
    finally:
        repo.close()
