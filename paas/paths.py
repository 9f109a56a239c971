"""Where an instance keeps everything: paths derived from ``PAAS_ROOT``.

A leaf module with no imports beyond ``os`` (and a plain class, not a
dataclass): the CLI's hot paths (``container:run``, ``container:ps``) need
the daemon socket's path without paying for ``paas.config``'s imports.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_ROOT", "Paths", "paths_from_env"]

DEFAULT_ROOT = "/var/lib/paas"


def paths_from_env(env: Mapping[str, str] | None = None) -> Paths:
    env = os.environ if env is None else env
    return Paths(os.path.abspath(env.get("PAAS_ROOT") or DEFAULT_ROOT))


class Paths:
    """Every path of an instance, derived from its root (immutable)."""

    __slots__ = ("root",)
    root: str

    def __init__(self, root: str) -> None:
        object.__setattr__(self, "root", root)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Paths is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Paths) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"Paths({self.root!r})"

    @property
    def db(self) -> str:
        return os.path.join(self.root, "state.db")

    @property
    def layout(self) -> str:
        """The OCI image layout (oci-layout, index.json, blobs/sha256)."""
        return os.path.join(self.root, "images")

    @property
    def snapshots(self) -> str:
        return os.path.join(self.root, "snapshots")

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    @property
    def run(self) -> str:
        """Runtime state: sockets, pid files, runc's --root."""
        return os.path.join(self.root, "run")

    @property
    def runc_root(self) -> str:
        return os.path.join(self.run, "runc")

    @property
    def daemon_socket(self) -> str:
        return os.path.join(self.run, "paasd.sock")

    @property
    def daemon_pidfile(self) -> str:
        return os.path.join(self.run, "paasd.pid")

    @property
    def keeper_socket(self) -> str:
        return os.path.join(self.run, "keeper.sock")

    @property
    def keeper_pidfile(self) -> str:
        return os.path.join(self.run, "keeper.pid")

    @property
    def tmp(self) -> str:
        return os.path.join(self.root, "tmp")

    @property
    def build_cache(self) -> str:
        """Buildpack cache dirs, one per app (``CACHE_DIR`` of ``bin/compile``)."""
        return os.path.join(self.root, "buildcache")

    @property
    def storage(self) -> str:
        """Persistent app data (``storage:ensure-directory NAME`` makes ``storage/NAME``)."""
        return os.path.join(self.root, "data", "storage")

    @property
    def certs(self) -> str:
        """TLS certificates, one dir per app holding ``tls.pem`` (``paas.certs``)."""
        return os.path.join(self.root, "certs")

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.containers, cid)
