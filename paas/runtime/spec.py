"""Pure builder of the OCI runtime ``config.json`` for a container.

No I/O: takes a validated ``ContainerConfig`` and host facts, returns a dict
that tests assert on directly. Defaults follow Docker: its default capability
set, masked/read-only /proc and /sys paths, ``noNewPrivileges``, the default
seccomp profile, and a user namespace unless ``userns`` is off.
"""

from __future__ import annotations

from typing import Any

from ..model import ContainerConfig, IdMap

__all__ = ["build_spec", "DEFAULT_CAPS"]

DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)


def build_spec(
    cfg: ContainerConfig,
    *,
    rootfs: str,
    cgroups_path: str,
    idmap: IdMap | None,
    hostname: str,
    netns_path: str | None = None,
    extra_mounts: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """The OCI runtime spec (version 1.0.2) for ``cfg``.

    ``idmap`` None means no user namespace (``--userns=host``). ``netns_path``
    None with network "none" gives a fresh empty network namespace; network
    "host" shares the host's. ``cfg.user`` is already numeric ("uid:gid" or
    "uid:gid:g1,g2" for supplementary groups).
    """
    raise NotImplementedError
