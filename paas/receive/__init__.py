"""The receive stage: ``git push`` into an app's bare repository, over ssh or smart HTTP.

Entry point: ``receive_pack(ctx, app, stdin, stdout, hook, pusher)`` speaks the git
protocol over two streams; both transports (``paas git:ssh-command``, the forced
command of ``ssh-keys:add`` keys, and the WSGI app ``paas.receive.http:app``) call it.
For each ref update the ``UpdateHook`` gets a ``paas.model.Push`` (objects stored,
ref not moved yet) and a progress function; raising ``PaasError`` rejects the ref.

Repositories live in ``PAAS_ROOT/repos/APP.git``. This package decides nothing about
deploys (which branch, locking an app): that is the hook's business, by default
``paas.deploy.push.deploy_push`` (see ``default_hook``).

Nothing here imports dulwich at module level (it costs ~150 ms): the functions below
import ``paas.receive.pack`` when called.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from ..errors import FailedPrecondition, InvalidArgument
from ..model import Push
from .names import GitCommand, parse_ssh_command, repo_path, validate_app

if TYPE_CHECKING:
    from ..config import Context
    from .pack import Reader, Writer

__all__ = [
    "GitCommand",
    "UpdateHook",
    "authorized_keys_path",
    "default_hook",
    "ensure_repo",
    "parse_ssh_command",
    "receive_pack",
    "repo_path",
    "upload_pack",
    "validate_app",
]

UpdateHook = Callable[[Push, Callable[[str], None]], None]

# Test seam: "module:function" naming an UpdateHook used instead of the deploy stage.
# Only read when set; documented for integration tests, not for production use.
HOOK_ENV = "PAAS_RECEIVE_HOOK"


def receive_pack(ctx: Context, app: str, stdin: Reader, stdout: Writer, hook: UpdateHook,
                 pusher: str = "", *, stateless: bool = False, advertise: bool = False) -> None:
    """Serve one ``git-receive-pack`` for ``app`` (see ``paas.receive.pack.receive_pack``)."""
    from .pack import receive_pack as _receive_pack

    _receive_pack(ctx, app, stdin, stdout, hook, pusher, stateless=stateless,
                  advertise=advertise)


def upload_pack(ctx: Context, app: str, stdin: Reader, stdout: Writer) -> None:
    """Serve a read-only ``git-upload-pack`` (clone) of ``app``'s repository."""
    from .pack import upload_pack as _upload_pack

    _upload_pack(ctx, app, stdin, stdout)


def ensure_repo(ctx: Context, app: str) -> str:
    """The path of ``app``'s bare repository, created if missing."""
    from .pack import ensure_repo as _ensure_repo

    return _ensure_repo(ctx, app)


def authorized_keys_path(root: str, env: Mapping[str, str] | None = None) -> str:
    """``PAAS_AUTHORIZED_KEYS``, else ``ROOT/ssh/authorized_keys``."""
    env = os.environ if env is None else env
    return os.path.abspath(env.get("PAAS_AUTHORIZED_KEYS") or os.path.join(root, "ssh",
                                                                           "authorized_keys"))


def _load_hook(spec: str) -> UpdateHook:
    module, sep, func = spec.partition(":")
    if not sep or not module or not func:
        raise InvalidArgument(f"{HOOK_ENV}={spec!r} is not module:function")
    return cast(UpdateHook, getattr(importlib.import_module(module), func))


def default_hook(ctx: Context, env: Mapping[str, str] | None = None) -> UpdateHook:
    """The hook the CLI's transports use: ``paas.deploy.push.deploy_push`` bound to
    ``ctx``, or the ``PAAS_RECEIVE_HOOK`` test seam when that is set."""
    env = os.environ if env is None else env
    spec = env.get(HOOK_ENV)
    if spec:
        return _load_hook(spec)
    try:
        deploy = importlib.import_module("paas.deploy.push")
    except ModuleNotFoundError as err:
        if err.name not in ("paas.deploy.push", "paas.deploy"):
            raise
        return _no_deploy
    deploy_push = cast(Callable[["Context", Push, Callable[[str], None]], None],
                       deploy.deploy_push)

    def hook(push: Push, progress: Callable[[str], None]) -> None:
        deploy_push(ctx, push, progress)

    return hook


def _no_deploy(push: Push, progress: Callable[[str], None]) -> None:
    raise FailedPrecondition("deploys are not part of this build",
                             "install a paas with paas.deploy.push")
