"""Instance configuration: where state lives and how host objects are named.

Everything comes from the environment with sane defaults, read once into a
frozen ``Context`` that is passed down explicitly (no module globals). Below the
environment lies the host's settings file, ``/etc/paas/paas.conf`` (``PAAS_CONFIG``):
the entry points merge it into ``os.environ`` first (``paas.conffile.apply``), so any
``PAAS_*`` setting, here or read where it is used, may live there:

- ``PAAS_ROOT`` (default ``/var/lib/paas``): all state of the instance.
- ``PAAS_INSTANCE``: short name used for every kernel object (cgroup parent,
  netns and veth names, bridge, iptables chains). Default ``paas`` for the
  default root, else ``p`` + 6 hex of the root path, so two instances never
  collide.
- ``PAAS_SUBUID`` (default ``100000:65536``): the host id range root of plain
  ``container:run`` containers maps to (Docker's userns-remap). Each app gets its own
  range instead, from the pool in ``PAAS_SUBUID_FILE``/``PAAS_SUBGID_FILE`` (default
  ``/etc/subuid``, ``/etc/subgid``), entries of ``PAAS_SUBID_USER`` (default ``root``);
  see ``paas.subids`` and ``paas.apps.idmaps``.
- ``PAAS_IDMAPPED`` (default ``auto``): ``off`` keeps one id-shifted copy of each layer
  per id range instead of idmapped views of one copy (``paas.image.views``).
- ``PAAS_RUNC`` (default ``runc``): the OCI runtime binary.
- ``PAAS_PIDS_LIMIT``, ``PAAS_APP_DISK_LIMIT``, ``PAAS_BUILD_DISK_LIMIT``,
  ``PAAS_MEMORY_RESERVE``, ``PAAS_CONTAINERS_MEMORY``: default limits of containers
  (``paas.runtime.limits``).
- ``PAAS_BUILD_CA_BUNDLE`` (default the host's ``/etc/ssl/certs/ca-certificates.crt``;
  ``off``): the CA bundle build containers trust (``paas.build.hostca``).
- ``PAAS_INIT_PATH`` (default Debian's ``/usr/bin/tini-static``): the init of
  ``container:run --init`` and of app processes (``paas.runtime.init``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import FailedPrecondition, InvalidArgument
from .model import DefaultLimits, IdMap
from .paths import DEFAULT_ROOT, Paths

__all__ = ["DEFAULT_ROOT", "Context", "Paths", "load_context", "prepare_root"]

_INSTANCE_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")


@dataclass(frozen=True)
class Context:
    """What every stage needs to know about the instance it works in."""

    paths: Paths
    instance: str
    idmap: IdMap
    runc: str = "runc"
    subid_files: tuple[str, str] = ("/etc/subuid", "/etc/subgid")
    subid_user: str = "root"
    idmapped: str = "auto"  # auto | off
    limits: DefaultLimits = field(default_factory=DefaultLimits)
    build_ca: str = ""  # PAAS_BUILD_CA_BUNDLE as given (paas.build.hostca parses it)
    init_path: str = ""  # PAAS_INIT_PATH as given (paas.runtime.init.find_init checks it)

    @property
    def cgroup_parent(self) -> str:
        """The cgroup under which every container of this instance lives."""
        return f"paas-{self.instance}"


def _instance_for(root: str) -> str:
    if root == DEFAULT_ROOT:
        return "paas"
    return "p" + hashlib.sha256(root.encode()).hexdigest()[:6]


def _parse_idmap(value: str) -> IdMap:
    m = re.fullmatch(r"(\d+):(\d+)", value.strip())
    if not m or int(m.group(2)) < 65536 or int(m.group(1)) == 0:
        raise InvalidArgument(
            f"PAAS_SUBUID={value!r} is not a usable id range",
            "set it to START:COUNT with START > 0 and COUNT >= 65536, e.g. 100000:65536",
        )
    return IdMap(container_id=0, host_id=int(m.group(1)), size=int(m.group(2)))


def load_context(env: Mapping[str, str] | None = None) -> Context:
    """Read the instance configuration from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    root = os.path.abspath(env.get("PAAS_ROOT") or DEFAULT_ROOT)
    instance = env.get("PAAS_INSTANCE") or _instance_for(root)
    if not _INSTANCE_RE.match(instance):
        raise InvalidArgument(
            f"PAAS_INSTANCE={instance!r} is not a valid instance name",
            "use 1-8 lowercase letters and digits, starting with a letter",
        )
    return Context(
        paths=Paths(root),
        instance=instance,
        idmap=_parse_idmap(env.get("PAAS_SUBUID") or "100000:65536"),
        runc=env.get("PAAS_RUNC") or "runc",
        subid_files=(env.get("PAAS_SUBUID_FILE") or "/etc/subuid",
                     env.get("PAAS_SUBGID_FILE") or "/etc/subgid"),
        subid_user=env.get("PAAS_SUBID_USER") or "root",
        idmapped=_parse_idmapped(env.get("PAAS_IDMAPPED") or "auto"),
        limits=_limits(env),
        build_ca=env.get("PAAS_BUILD_CA_BUNDLE") or "",
        init_path=env.get("PAAS_INIT_PATH") or "",
    )


def _parse_idmapped(value: str) -> str:
    if value not in ("auto", "off"):
        raise InvalidArgument(f"PAAS_IDMAPPED={value!r} is not a known mode",
                              "use auto (idmapped views where the kernel allows) or off")
    return value


def _limits(env: Mapping[str, str]) -> DefaultLimits:
    from .runtime.limits import limits_from_env

    return limits_from_env(env)


def prepare_root(paths: Paths) -> None:
    """Create the instance root (mode 0711) and check the container user can traverse it.

    Container root is an unprivileged host uid (user namespace), and runc opens the
    rootfs as that uid: every directory from / down to PAAS_ROOT must be searchable
    by others (o+x).
    """
    os.makedirs(paths.root, mode=0o711, exist_ok=True)
    os.chmod(paths.root, 0o711)
    parent = os.path.dirname(paths.root)
    while parent and parent != "/":
        if not os.stat(parent).st_mode & 0o001:
            raise FailedPrecondition(
                f"{parent} is not searchable by others, so containers cannot reach PAAS_ROOT",
                f"chmod o+x {parent}, or set PAAS_ROOT to a directory under a searchable path",
            )
        parent = os.path.dirname(parent)
