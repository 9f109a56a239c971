"""Pure parsing and validation for the receive stage: app names, repo paths, and the
``SSH_ORIGINAL_COMMAND`` a forced ssh command is asked to run.

Nothing here touches the disk or imports dulwich; every user-supplied string is
checked against a strict pattern *before* it is joined into a path.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
from dataclasses import dataclass

from ..errors import InvalidArgument

__all__ = [
    "APP_NAME_RE",
    "GitCommand",
    "parse_ssh_command",
    "repo_path",
    "repos_dir",
    "validate_app",
]

APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

# the services a forced command will run, and whether they write
_SERVICES = {"git-receive-pack": True, "git-upload-pack": False}
# what may appear between the quotes: an app name, optionally with a leading "/"
# and a trailing ".git" (the shapes git itself sends for `paas@host:APP` and
# `ssh://paas@host/APP.git`)
_REPO_ARG_RE = re.compile(r"^'/?([^'/]*?)(?:\.git)?/?'$")


def validate_app(name: str) -> str:
    """``name`` if it is a valid app name, else ``InvalidArgument``.

    Uses ``paas.apps.validate.validate_app_name`` when that module exists, so the
    rule lives in one place; the same pattern otherwise."""
    try:
        shared = importlib.import_module("paas.apps.validate").validate_app_name
    except (ImportError, AttributeError):
        shared = None
    if shared is not None:
        shared(name)
    if not isinstance(name, str) or not APP_NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"{name!r} is not a valid app name",
            "use 1-63 lowercase letters, digits and dashes, starting with a letter",
        )
    return name


def repos_dir(root: str) -> str:
    """The directory holding every app's bare repository."""
    return os.path.join(root, "repos")


def repo_path(root: str, app: str) -> str:
    """``ROOT/repos/APP.git`` for a validated app name."""
    return os.path.join(repos_dir(root), f"{validate_app(app)}.git")


@dataclass(frozen=True)
class GitCommand:
    """A parsed ``SSH_ORIGINAL_COMMAND``: the git service and the app it addresses."""

    service: str  # git-receive-pack | git-upload-pack
    app: str

    @property
    def writes(self) -> bool:
        return _SERVICES[self.service]


def parse_ssh_command(command: str | None, *, allow_read: bool = True) -> GitCommand:
    """Parse what git's ssh transport asks for: ``git-receive-pack 'APP'`` (or
    ``'/APP.git'``...). Anything else, including shell metacharacters, extra words or
    a name that is not an app name, is ``InvalidArgument``.

    The command is never handed to a shell; parsing is strict so that nothing
    unexpected reaches a path either."""
    if not command:
        raise InvalidArgument(
            "this ssh key only accepts git pushes",
            "use: git push paas@HOST:APP main (an interactive login is not offered)",
        )
    if len(command) > 300 or any(c in command for c in "\n\r\0"):
        raise InvalidArgument("the ssh command is malformed", "use git push")
    verb, sep, arg = command.partition(" ")
    if verb == "git" and arg.startswith(("receive-pack ", "upload-pack ")):
        sub, _, arg = arg.partition(" ")  # `git receive-pack 'x'` (dashless form)
        verb = f"git-{sub}"
    if verb not in _SERVICES or not sep:
        raise InvalidArgument(
            f"{shlex.quote(verb)} is not allowed over ssh",
            "only git push (git-receive-pack) and clone (git-upload-pack) are served",
        )
    if not _SERVICES[verb] and not allow_read:
        raise InvalidArgument("cloning is not allowed over ssh", "only git push is served")
    m = _REPO_ARG_RE.fullmatch(arg.strip())
    if m is None:
        raise InvalidArgument(
            "the repository argument is malformed",
            "address the app by name: git push paas@HOST:APP",
        )
    return GitCommand(service=verb, app=validate_app(m.group(1)))
