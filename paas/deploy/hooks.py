"""Lifecycle triggers: operators' executables under ``PAAS_ROOT/hooks/<trigger>.d/``.

Each executable file of a trigger's directory runs in name order with the
trigger's arguments (see hooks/README.md), the app's name in ``PAAS_APP`` and its
output streamed to the pusher. A failing ``pre-*`` hook aborts what it guards
(the previous release keeps serving); a failing ``post-*`` hook is reported and
ignored (what it follows already happened).

Not here: deciding when triggers fire (``deployer``, ``push``, the CLI).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence

from .. import proc
from ..config import Context
from ..errors import CommandFailed, InvalidArgument

__all__ = ["TRIGGERS", "run_hooks"]

TRIGGERS = ("pre-receive", "post-build", "pre-deploy", "post-deploy", "post-destroy")


def hook_dir(ctx: Context, trigger: str) -> str:
    if trigger not in TRIGGERS:
        raise InvalidArgument(f"unknown trigger {trigger!r}", f"use one of {', '.join(TRIGGERS)}")
    return os.path.join(ctx.paths.root, "hooks", f"{trigger}.d")


def run_hooks(ctx: Context, trigger: str, args: Sequence[str], app: str,
              progress: Callable[[str], None]) -> None:
    d = hook_dir(ctx, trigger)
    if not os.path.isdir(d):
        return
    env = dict(os.environ, PAAS_APP=app, PAAS_TRIGGER=trigger)
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if name.startswith(".") or not os.path.isfile(path) or not os.access(path, os.X_OK):
            continue
        progress(f"-----> Running {trigger} hook {name}")
        child = proc.spawn([path, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env)
        assert child.stdout is not None
        for raw in child.stdout:
            progress("       " + raw.decode("utf-8", "replace").rstrip("\n"))
        code = child.wait()
        if code != 0:
            if trigger.startswith("pre-"):
                raise CommandFailed(f"the {trigger} hook {name} failed (exit {code})",
                                    "see its output above; nothing was changed", returncode=code)
            progress(f" !     the {trigger} hook {name} failed (exit {code}); ignored")
