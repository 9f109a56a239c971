"""A tiny init as a container's PID 1 (``container:run --init``, on by default for apps).

A process that is PID 1 of its pid namespace gets no default signal actions: a
``python3 -m http.server`` or ``sleep`` that installs no SIGTERM handler ignores
``container:stop`` and is killed only after the stop timeout (10 s). Nor does it reap
the orphans re-parented to it. ``docker run --init`` fixes both with tini as PID 1
(``/sbin/docker-init -- CMD...``); paas does the same with Debian's static tini
(package ``tini``, ``/usr/bin/tini-static``; ``PAAS_INIT_PATH`` names another),
bind-mounted read-only at ``INIT_TARGET`` (never copied into an image or layer: ``/dev``
is the container's own tmpfs, so the mount point lands there, not in the rootfs).

tini runs with ``-g``: a signal it gets (``container:stop``'s SIGTERM, ``container:kill
-s HUP``) goes to the command's whole process group, as Heroku sends SIGTERM to every
process of a dyno, so ``sh -c 'server'`` and the server both hear it. tini exits with
its child's status (128+N when the child died of signal N), so exit codes are the
command's; a command that cannot be executed exits 127 (not found) or 126, as
``docker run --init`` reports it.

Pure except ``find_init`` (one ``os.path`` check).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import FailedPrecondition, InvalidArgument

__all__ = ["DEFAULT_INIT", "INIT_TARGET", "find_init", "init_args", "init_mount"]

DEFAULT_INIT = "/usr/bin/tini-static"
INIT_TARGET = "/dev/init"


def init_args(args: tuple[str, ...] | list[str]) -> list[str]:
    """The process args with tini in front: ``/dev/init -g -- ARGS...``."""
    return [INIT_TARGET, "-g", "--", *args]


def init_mount(source: str) -> dict[str, Any]:
    """The OCI bind mount of the init binary ``source``: read-only, no device files, no
    set-uid (tini needs neither)."""
    return {"destination": INIT_TARGET, "type": "bind", "source": source,
            "options": ["bind", "ro", "nosuid", "nodev"]}


def find_init(setting: str = "") -> str:
    """The init binary to mount: ``PAAS_INIT_PATH`` (``Context.init_path``) or Debian's
    static tini; FailedPrecondition when it is not there."""
    path = setting.strip() or DEFAULT_INIT
    if not os.path.isabs(path):
        raise InvalidArgument(f"PAAS_INIT_PATH={path!r} is not an absolute path",
                              f"set it to a static init binary, e.g. {DEFAULT_INIT}")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise FailedPrecondition(
            f"the container init {path} is missing (--init, or an app's init-process)",
            "install it: apt-get install tini (install.sh does), or run without --init "
            "('paas ps:set APP init-process false' for an app)")
    return path
