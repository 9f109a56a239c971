"""The update hook the receive integration tests install through the
``PAAS_RECEIVE_HOOK`` seam (``receive_hook:hook``). It stands in for the deploy
stage and is steered by the pushed commit's message, which it reads from the
repository: that proves the objects are stored when the hook runs.

- ``[reject]``: a PaasError (the ref must not move); ``[crash]``: any other exception;
- ``[wait:NAME]``: print a line, then wait (up to 30s) for ``$PAAS_ROOT/ack-NAME``,
  which the test creates once it has *seen* that line: progress must be streamed;
- deleting refs/heads/main is refused; other branches are just stored.
Every call is appended to ``$PAAS_ROOT/pushes.jsonl``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable

from dulwich.repo import Repo

from paas.errors import Conflict, FailedPrecondition
from paas.model import Push

ZERO = "0" * 40


def hook(push: Push, progress: Callable[[str], None]) -> None:
    root = os.environ["PAAS_ROOT"]
    with open(os.path.join(root, "pushes.jsonl"), "a") as f:
        f.write(json.dumps(push.__dict__) + "\n")
    progress(f"hook: {push.ref} {push.old[:7]}..{push.new[:7]} pusher={push.pusher}")
    if push.new == ZERO:
        if push.ref == "refs/heads/main":
            raise Conflict("the deploy branch cannot be deleted")
        return
    message = Repo(push.repo)[push.new.encode()].message.decode()
    if push.ref != "refs/heads/main":
        progress("stored, not deployed")
        return
    wait = re.search(r"\[wait:([a-z0-9]+)\]", message)
    if wait:
        progress(f"waiting for ack-{wait.group(1)}")
        ack = os.path.join(root, f"ack-{wait.group(1)}")
        deadline = time.monotonic() + 30
        while not os.path.exists(ack):
            if time.monotonic() > deadline:
                raise FailedPrecondition("progress was not streamed to the pusher")
            time.sleep(0.05)
        progress("ack seen")
    if "[reject]" in message:
        progress("building... failed")
        raise FailedPrecondition("build failed: the test said so", "fix the app")
    if "[crash]" in message:
        raise RuntimeError("unexpected crash in the hook")
    progress("deployed")
