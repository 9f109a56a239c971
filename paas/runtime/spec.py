"""Pure builder of the OCI runtime ``config.json`` for a container.

No I/O: takes a validated ``ContainerConfig`` and host facts, returns a dict
that tests assert on directly. Defaults follow Docker (moby ``oci/defaults.go``
and ``daemon/oci_linux.go``): its default capability set (effective and
permitted only for uid 0), the default mounts, masked and read-only /proc and
/sys paths, the device cgroup allowlist, the default seccomp profile; plus
``noNewPrivileges`` and a user namespace unless ``userns`` is off.

Not covered: resolving image USER names (``runtime.user``), creating network
namespaces (the network stage passes ``netns_path``), privileged mode,
cap-add/drop, AppArmor/SELinux labels, cgroup namespaces.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgument
from ..model import BindMount, ContainerConfig, IdMap, Resources
from ..oom import CONTAINER_OOM_SCORE_ADJ
from .init import init_args, init_mount
from .seccomp import default_profile

__all__ = [
    "DEFAULT_CAPS",
    "DEFAULT_PATH",
    "MASKED_PATHS",
    "OCI_VERSION",
    "READONLY_PATHS",
    "build_spec",
    "capabilities_for",
    "parse_user",
    "stdio_owner",
]

OCI_VERSION = "1.0.2"

DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

_CPU_PERIOD = 100_000
_NOFILE_SOFT = 1024
_NOFILE_HARD = 20_000  # this host's hard limit; runc fails to start above it


def _mount(dest: str, typ: str, source: str, *options: str) -> dict[str, Any]:
    return {"destination": dest, "type": typ, "source": source, "options": list(options)}


def _dev(typ: str | None, major: int | None, minor: int | None, access: str = "rwm",
         allow: bool = True) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": allow, "access": access}
    if typ is not None:
        rule["type"] = typ
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


# Deny everything, then Docker's allowlist with /dev/fuse denied, then the
# entries runc always appends (mknod of any node, /dev/full, /dev/ptmx, pts).
DEVICE_RULES: tuple[dict[str, Any], ...] = (
    _dev(None, None, None, allow=False),
    _dev("c", 1, 5), _dev("c", 1, 3), _dev("c", 1, 9), _dev("c", 1, 8), _dev("c", 5, 0),
    _dev("c", 5, 1),
    _dev("c", 10, 229, allow=False),
    # After the deny: cgroup v1 cannot punch a hole into a wildcard rule.
    _dev("c", None, None, "m"), _dev("b", None, None, "m"),
    _dev("c", 1, 7), _dev("c", 5, 2), _dev("c", 136, None),
)


def parse_user(user: str) -> tuple[int, int, tuple[int, ...]]:
    """``"uid:gid[:g1,g2]"`` (numeric, already resolved) -> (uid, gid, additional gids)."""
    parts = user.split(":") if user else ["0", "0"]
    try:
        if len(parts) not in (2, 3):
            raise ValueError(user)
        uid, gid = int(parts[0]), int(parts[1])
        extra = tuple(int(g) for g in parts[2].split(",") if g) if len(parts) == 3 else ()
    except ValueError as err:
        raise InvalidArgument(
            f"invalid numeric user {user!r}",
            "resolve the image USER to 'uid:gid[:g1,g2]' first (paas.runtime.user.resolve_user)",
        ) from err
    if min((uid, gid) + extra) < 0:
        raise InvalidArgument(f"invalid numeric user {user!r}: negative id", "use ids >= 0")
    return uid, gid, extra


def stdio_owner(user: str, idmap: IdMap | None) -> tuple[int, int] | None:
    """The host uid and gid a container's stdio pipes must belong to so that its process
    can open ``/dev/stdout`` again (Apache's ``CustomLog /dev/stdout``; a pipe is mode
    0600, and host root is nobody in a user namespace): its user (numeric ``user``),
    mapped through its id range. runc and containerd chown the stdio they make to the
    container's root; its user is more, since root there may open what its user owns.
    None: host root, as pipes are made."""
    uid, gid, _ = parse_user(user)
    if idmap is not None:
        uid, gid = idmap.to_host(uid), idmap.to_host(gid)
    return None if (uid, gid) == (0, 0) else (uid, gid)


def _env(cfg: ContainerConfig, hostname: str) -> list[str]:
    """Docker's order: PATH (unless set), HOSTNAME, TERM (tty), then the user's env wins."""
    defaults = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if cfg.tty:
        defaults.append("TERM=xterm")
    merged: dict[str, str] = {}
    for item in defaults + list(cfg.env):
        key = item.partition("=")[0]
        if not key:
            raise InvalidArgument(f"invalid environment variable {item!r}", "use KEY=VALUE")
        merged[key] = item
    return list(merged.values())


def capabilities_for(uid: int) -> dict[str, list[str]]:
    caps = list(DEFAULT_CAPS)
    if uid == 0:
        return {"bounding": caps, "effective": caps, "permitted": list(caps)}
    # moby: no effective/permitted caps for non-root users, as execve would do.
    return {"bounding": caps}


def _process(cfg: ContainerConfig, hostname: str, nofile_hard: int,
             init: str | None) -> dict[str, Any]:
    if not cfg.args:
        raise InvalidArgument("no command specified",
                              "give a command, or use an image with an ENTRYPOINT or CMD")
    if cfg.init and init is None:
        raise InvalidArgument("--init needs the init binary", "pass init= (paas.runtime.init)")
    uid, gid, extra = parse_user(cfg.user)
    user: dict[str, Any] = {"uid": uid, "gid": gid}
    if extra:
        user["additionalGids"] = list(extra)
    return {
        "terminal": cfg.tty,
        "user": user,
        "args": init_args(cfg.args) if cfg.init else list(cfg.args),
        "env": _env(cfg, hostname),
        "cwd": cfg.working_dir or "/",
        "capabilities": capabilities_for(uid),
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile_hard,
                     "soft": min(_NOFILE_SOFT, nofile_hard)}],
        "noNewPrivileges": True,
        "oomScoreAdj": CONTAINER_OOM_SCORE_ADJ,  # never the platform's protection (paas.oom)
    }


def _bind(b: BindMount) -> dict[str, Any]:
    if not b.source.startswith("/") or not b.target.startswith("/") or b.target == "/":
        raise InvalidArgument(
            f"invalid volume {b.source}:{b.target}",
            "use absolute paths HOSTDIR:DIR, and DIR must not be /",
        )
    if b.readonly:  # "rro": read-only all the way down, like Docker >= 25
        return _mount(b.target, "bind", b.source, "rbind", "rprivate", "ro", "rro")
    return _mount(b.target, "bind", b.source, "rbind", "rprivate", "rw")


def _mounts(cfg: ContainerConfig, userns: bool, own_netns: bool) -> list[dict[str, Any]]:
    mounts = [
        _mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
        _mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        _mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance",
               "ptmxmode=0666", "mode=0620", "gid=5"),
    ]
    if userns and not own_netns:
        # sysfs can only be mounted by the owner of the network namespace; a
        # container in a user namespace joining a netns it does not own (the
        # host's, or one created beforehand by host root) gets the host's /sys
        # bound instead, as runc's rootless spec does. "rro" (mount_setattr,
        # kernel >= 5.12) makes the submounts read-only too, not just the top.
        mounts.append(_mount("/sys", "bind", "/sys", "rbind", "nosuid", "noexec", "nodev", "ro",
                              "rro"))
    else:
        mounts.append(_mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"))
    # moby drops "ro" here in a user namespace; runc 1.1.5 remounts it ro fine, so keep it.
    mounts.append(_mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "ro"))
    mounts += [
        _mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        _mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777",
               "size=65536k"),
    ]
    return mounts + [_bind(b) for b in cfg.binds]


def _namespaces(cfg: ContainerConfig, idmap: IdMap | None,
                netns_path: str | None, userns_path: str | None) -> list[dict[str, str]]:
    ns: list[dict[str, str]] = [{"type": "mount"}]
    if cfg.network != "host":
        ns.append({"type": "network", "path": netns_path} if netns_path else {"type": "network"})
    ns += [{"type": "uts"}, {"type": "pid"}, {"type": "ipc"}]
    if idmap is not None:
        ns.append({"type": "user", "path": userns_path} if userns_path else {"type": "user"})
    return ns


def _resources(res: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": [dict(d) for d in DEVICE_RULES]}
    if res.memory:
        out["memory"] = {"limit": res.memory, "swap": res.memory}
    cpu: dict[str, Any] = {}
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    if res.cpus:
        cpu["quota"] = round(res.cpus * _CPU_PERIOD)
        cpu["period"] = _CPU_PERIOD
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit and res.pids_limit > 0:  # -1: unlimited
        out["pids"] = {"limit": res.pids_limit}
    return out


def _check_network(cfg: ContainerConfig, netns_path: str | None) -> None:
    if cfg.network == "host" and netns_path:
        raise InvalidArgument("a host-network container cannot join a network namespace",
                              "drop netns_path, or use another network mode")


def build_spec(
    cfg: ContainerConfig,
    *,
    rootfs: str,
    cgroups_path: str,
    idmap: IdMap | None,
    hostname: str,
    netns_path: str | None = None,
    userns_path: str | None = None,
    extra_mounts: tuple[dict[str, Any], ...] = (),
    nofile_hard: int = _NOFILE_HARD,
    arch: str = "x86_64",
    init: str | None = None,
) -> dict[str, Any]:
    """The OCI runtime spec (version 1.0.2) for ``cfg``.

    ``idmap`` None means no user namespace (``--userns=host``). ``netns_path``
    None with network "none" gives a fresh empty network namespace; network
    "host" shares the host's. ``cfg.user`` is already numeric ("uid:gid" or
    "uid:gid:g1,g2" for supplementary groups). ``extra_mounts`` are OCI mount
    dicts appended last (e.g. /etc/hosts, /etc/resolv.conf). ``nofile_hard``
    must not exceed the host's hard RLIMIT_NOFILE. ``userns_path`` is a user namespace
    (with ``idmap``'s mapping) that owns ``netns_path``: runc joins both, so
    ``runc exec`` can enter the netns after the userns and sysfs can be mounted.
    ``init``: the host path of the init binary, needed when ``cfg.init`` (its args are
    then ``/dev/init -g -- ARGS``, ``paas.runtime.init``).
    """
    _check_network(cfg, netns_path)
    own_netns = cfg.network != "host" and (netns_path is None or userns_path is not None)
    linux: dict[str, Any] = {
        "namespaces": _namespaces(cfg, idmap, netns_path, userns_path),
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "cgroupsPath": cgroups_path,
        "resources": _resources(cfg.resources),
        "seccomp": default_profile(DEFAULT_CAPS, arch),
    }
    if idmap is not None:
        mapping = [{"containerID": idmap.container_id, "hostID": idmap.host_id,
                    "size": idmap.size}]
        linux["uidMappings"] = mapping
        linux["gidMappings"] = [dict(m) for m in mapping]
    return {
        "ociVersion": OCI_VERSION,
        "process": _process(cfg, hostname, nofile_hard, init),
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": _mounts(cfg, idmap is not None, own_netns) + [dict(m) for m in extra_mounts]
        + ([init_mount(init)] if cfg.init and init is not None else []),
        "linux": linux,
    }
