"""Values handed between stages: frozen dataclasses, no behaviour, no I/O.

This is a leaf module: it imports nothing from paas. Stages exchange these
instead of importing each other (the image store hands the runtime a tuple of
``Mount``; the runtime never imports the store's internals).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_RESTART_POLICY",
    "BindMount",
    "BindPolicy",
    "BuildRequest",
    "BuildResult",
    "Container",
    "ContainerConfig",
    "ContainerState",
    "DefaultLimits",
    "Descriptor",
    "Healthcheck",
    "HistoryEntry",
    "IdMap",
    "Image",
    "ImageConfig",
    "ImageRef",
    "Limits",
    "Mount",
    "PortMapping",
    "ProcessOptions",
    "Push",
    "Release",
    "Resources",
    "Route",
    "RunOptions",
    "Upstream",
]


@dataclass(frozen=True)
class IdMap:
    """One uid/gid mapping range: container ids [container_id, +size) -> host [host_id, +size)."""

    container_id: int
    host_id: int
    size: int

    def to_host(self, cid: int) -> int:
        if self.container_id <= cid < self.container_id + self.size:
            return cid - self.container_id + self.host_id
        return self.host_id + 65534 - self.container_id  # nobody: outside the range

    def to_container(self, hid: int) -> int:
        if self.host_id <= hid < self.host_id + self.size:
            return hid - self.host_id + self.container_id
        return 65534  # nobody: outside the range

    @property
    def key(self) -> str:
        """Stable name for snapshot directories unpacked for this mapping."""
        return f"{self.host_id}-{self.size}"


@dataclass(frozen=True)
class ImageRef:
    """A parsed ``NAME[:TAG]`` (or ``NAME@sha256:...``) reference."""

    name: str
    tag: str = "latest"
    digest: str | None = None

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Healthcheck:
    """Docker's ``Healthcheck`` (Dockerfile HEALTHCHECK); durations in nanoseconds, 0 = default.

    ``test`` is ``("NONE",)`` (disabled), ``("CMD", arg...)`` or ``("CMD-SHELL", command)``."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class ImageConfig:
    """The runnable part of an OCI image config (``config`` object), with Docker's extensions
    (Healthcheck, Shell, OnBuild) that builders write and readers keep."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None  # None: no Cmd; (): Docker's "Cmd": [] (CMD [])
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    volumes: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    shell: tuple[str, ...] = ()
    on_build: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryEntry:
    created: str
    created_by: str
    empty_layer: bool = False
    comment: str = ""


@dataclass(frozen=True)
class Image:
    """An image in the store: identified by its config digest, like Docker's IMAGE ID."""

    id: str  # sha256:<config digest>
    manifest_digest: str
    created: str  # RFC 3339
    size: int  # sum of layer sizes
    config: ImageConfig
    diff_ids: tuple[str, ...]
    chain_ids: tuple[str, ...]
    history: tuple[HistoryEntry, ...] = ()
    refs: tuple[ImageRef, ...] = ()
    architecture: str = "amd64"
    os: str = "linux"


@dataclass(frozen=True)
class Mount:
    """A mount to perform: the hand-off between snapshotter and runtime (containerd's Mount)."""

    type: str  # "overlay", "bind", ...
    source: str
    options: tuple[str, ...] = ()


class BindPolicy:
    """How the host path of a ``BindMount`` is resolved at each container start
    (``paas.hostpath``): the values of ``BindMount.policy``."""

    HOST = "host"  # container:run -v: symlinks followed (Docker); paas's state refused
    STRICT = "strict"  # app storage: no symlink in any component; system dirs refused too
    INTERNAL = "internal"  # paas's own (build dirs under PAAS_ROOT): used as they are

    ALL = (HOST, STRICT, INTERNAL)


@dataclass(frozen=True)
class BindMount:
    """A user volume: ``-v HOSTDIR:DIR[:ro][,strict]``."""

    source: str
    target: str
    readonly: bool = False
    policy: str = BindPolicy.HOST


@dataclass(frozen=True)
class PortMapping:
    """``-p HOSTIP:HOSTPORT:CONTAINERPORT/PROTO``; host_port 0 means "pick one"."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str  # "tcp" | "udp"

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class Resources:
    memory: int | None = None  # bytes
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None  # None: the instance's default; -1: unlimited
    disk: int | None = None  # bytes of the writable layer (--storage-opt size=); None: unlimited


@dataclass(frozen=True)
class DefaultLimits:
    """An instance's limits for containers that set none (``PAAS_*`` settings, ``paas.config``).

    ``pids``: per container (None: unlimited). ``app_disk``/``build_disk``: the writable
    layer of app process containers / build containers (None: unlimited).
    ``memory_reserve``/``memory_reserve_pct``: what the containers' parent cgroup keeps
    free of the host's memory for the platform (the larger of the two);
    ``containers_memory``: that cap given explicitly instead (0: no cap)."""

    pids: int | None = 4096
    app_disk: int | None = 10 << 30
    build_disk: int | None = 10 << 30
    memory_reserve: int = 1 << 30
    memory_reserve_pct: int = 10
    containers_memory: int | None = None


@dataclass(frozen=True)
class ContainerConfig:
    """Everything ``container:run`` was asked for, after validation and image defaults."""

    image: str  # the reference as the user typed it, normalised (name:tag)
    image_id: str
    args: tuple[str, ...]  # entrypoint + cmd, resolved
    env: tuple[str, ...] = ()
    working_dir: str = "/"
    user: str = "0:0"
    hostname: str = ""
    tty: bool = False
    stdin: bool = False
    binds: tuple[BindMount, ...] = ()
    ports: tuple[PortMapping, ...] = ()  # as requested; host port 0 = random at each start
    resources: Resources = field(default_factory=Resources)
    network: str = "bridge"  # bridge | none | host
    userns: bool = True  # False: --userns=host
    auto_remove: bool = False
    restart: str = "no"
    # the id range of its user namespace: an app's own (paas.apps.idmaps); None: the
    # instance's default range (PAAS_SUBUID), as for every container made before
    idmap: IdMap | None = None
    # the bridge's policy for this container (``paas.network``): ``link_local``
    # lets it reach 169.254.0.0/16 (cloud metadata), refused by default; ``tenant`` is
    # who it belongs to ("" a plain container:run, "app:NAME" an app, "build" a build step)
    link_local: bool = False
    tenant: str = ""
    # ``--init``: a tiny init (tini) is PID 1 and runs ``args`` as its child
    # (``paas.runtime.init``): signals reach it, zombies are reaped
    init: bool = False


class ContainerState:
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    RESTARTING = "restarting"  # exited, a restart policy will start it again after a backoff


@dataclass(frozen=True)
class Container:
    id: str  # 64 hex
    name: str
    config: ContainerConfig
    state: str
    created: float
    pid: int | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""
    restart_count: int = 0
    stopped_by_user: bool = False


@dataclass(frozen=True)
class RunOptions:
    """What the user asked ``container:run`` for, parsed but not yet resolved against the image."""

    image: str
    command: tuple[str, ...] = ()
    entrypoint: str | None = None
    env: tuple[str, ...] = ()
    binds: tuple[BindMount, ...] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    name: str | None = None
    tty: bool = False
    stdin: bool = False
    detach: bool = False
    auto_remove: bool = False
    resources: Resources = field(default_factory=Resources)
    network: str = "bridge"
    publish: tuple[PortMapping, ...] = ()
    publish_all: bool = False
    expose: tuple[str, ...] = ()  # extra EXPOSE entries ("80/tcp") for -P
    userns: bool = True
    restart: str = "no"
    idmap: IdMap | None = None  # None: the default range; set by paas, never by a flag
    link_local: bool = False  # --allow-link-local (ContainerConfig.link_local)
    tenant: str = ""  # ContainerConfig.tenant, set by paas's own callers
    init: bool = False  # --init (ContainerConfig.init)
    # the host's CA bundle read-only at paas.build.hostca.CA_TARGET, with its variables
    # (an app's host-ca-bundle opt-in; set by paas's own callers)
    host_ca: bool = False


@dataclass(frozen=True)
class BuildRequest:
    """``image:build``: a context dir and a Dockerfile into an image (``paas.build``)."""

    context: str
    dockerfile: str = ""  # default: CONTEXT/Dockerfile
    tags: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    target: str = ""  # the stage to stop at (name or index); default the last
    no_cache: bool = False
    network: str = "bridge"  # of RUN steps and buildpack compiles
    # buildpack builds (no Dockerfile): the stack image, buildpacks to use (empty: detect),
    # and the name of the persistent cache dir (an app name)
    buildpack: bool = False
    buildpacks: tuple[str, ...] = ()
    stack: str = ""
    cache_name: str = ""
    app: str = ""  # whose id range the build containers use ("": the default range)


@dataclass(frozen=True)
class BuildResult:
    image: Image
    steps: int
    cached: int
    seconds: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Upstream:
    """One web container behind the proxy."""

    host: str  # container IP
    port: int


@dataclass(frozen=True)
class Route:
    """What the proxy serves for one app (``paas.proxy``): its domains and healthy web
    containers; no upstreams means the app answers 503 (nothing running)."""

    app: str
    domains: tuple[str, ...]
    upstreams: tuple[Upstream, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()  # nginx:set KEY VALUE, validated
    template: str = ""  # an app-supplied vhost template (jinja2 text), "" for the default


@dataclass(frozen=True)
class Push:
    """One ref update of a ``git push`` (``paas.receive`` -> ``paas.deploy``), handed over
    after the pushed objects are stored and before the ref moves."""

    app: str
    ref: str  # e.g. refs/heads/main
    old: str  # 40 hex digits; all zeros for a new ref
    new: str  # all zeros for a deletion
    repo: str  # the app's bare repository
    pusher: str = ""  # ssh key or http user name


@dataclass(frozen=True)
class Release:
    """A numbered, immutable state of an app: what runs (image, processes), with what
    config and scale, from which commit; rollback makes a new release from an old one."""

    app: str
    version: int
    image_id: str
    processes: tuple[tuple[str, str], ...]  # type -> command ("" = the image's default)
    config: tuple[tuple[str, str], ...]
    formation: tuple[tuple[str, int], ...]
    git_sha: str
    description: str
    created: float
    created_by: str = ""
    builder: str = "dockerfile"  # or "buildpack": how processes' commands are run


DEFAULT_RESTART_POLICY = "on-failure:10"  # of process containers, as in Dokku


@dataclass(frozen=True)
class Limits:
    """Resource limits of an app's process type, as validated ``container:run`` flag text
    (``512m``, ``1.5``, ``256``); None: no limit from this level."""

    memory: str | None = None
    cpus: str | None = None
    pids: str | None = None
    disk: str | None = None  # the writable layer's size


@dataclass(frozen=True)
class ProcessOptions:
    """An app's operational settings (``paas.apps`` -> ``paas.deploy``) that every process
    container of its next release gets: storage mounts, limits, restart policy, network."""

    mounts: tuple[BindMount, ...] = ()
    limits: tuple[tuple[str, Limits], ...] = ()  # process type ("" = every type) -> limits
    restart: str = DEFAULT_RESTART_POLICY
    allow_link_local: bool = False  # network:set APP allow-link-local
    init: bool = True  # ps:set APP init-process: tini as PID 1 (Dokku's --init default)
    host_ca: bool = False  # ps:set APP host-ca-bundle: the host's CA bundle mounted
    default_disk: str | None = None  # the instance's writable-layer size for app containers
