"""Bridge, veth and network namespace plumbing: ``ip`` argv builders and their executors.

The ``*_cmds`` functions are pure argv builders. A container's netns is a fresh
namespace bind-mounted on ``<PAAS_ROOT>/run/netns/<cid>`` by ``unshare
--net=PATH`` (no process stays in it); runc joins it through that path.
Commands inside the netns run as one ``nsenter --net=PATH ip -batch -``.
Not covered: IPv6 addresses, MTU tuning, moving existing interfaces.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence

from .. import linux, proc
from ..errors import CommandFailed
from ..model import IdMap

__all__ = [
    "bridge_cmds",
    "create_netns",
    "delete_link",
    "ifalias",
    "interface_exists",
    "is_bridge",
    "is_netns_mount",
    "is_up",
    "link_addresses",
    "netns_inner_cmds",
    "netns_mac",
    "remove_netns",
    "run_in_netns",
    "veth_cmds",
    "write_sysctl",
]

log = logging.getLogger(__name__)

Argv = list[str]


# --- pure builders ----------------------------------------------------------------

def bridge_cmds(bridge: str, alias: str, mac: str, address: str) -> list[Argv]:
    """Create the bridge with its marker alias, fixed MAC and gateway ``address`` (cidr)."""
    return [
        ["ip", "link", "add", "name", bridge, "type", "bridge"],
        ["ip", "link", "set", "dev", bridge, "alias", alias, "address", mac],
        ["ip", "addr", "add", address, "dev", bridge],
        ["ip", "link", "set", "dev", bridge, "up"],
    ]


def veth_cmds(host_veth: str, bridge: str, netns_path: str, mac: str) -> list[Argv]:
    """A veth pair whose peer is created directly inside the netns as eth0 with ``mac``."""
    return [
        ["ip", "link", "add", "name", host_veth, "type", "veth",
         "peer", "name", "eth0", "address", mac, "netns", netns_path],
        ["ip", "link", "set", "dev", host_veth, "master", bridge, "up"],
    ]


def netns_inner_cmds(address: str, gateway: str) -> list[Argv]:
    """Inside the netns: lo up, eth0 with ``address`` (cidr), default route."""
    return [
        ["ip", "link", "set", "dev", "lo", "up"],
        ["ip", "addr", "add", address, "dev", "eth0"],
        ["ip", "link", "set", "dev", "eth0", "up"],
        ["ip", "route", "add", "default", "via", gateway, "dev", "eth0"],
    ]


def batch_text(cmds: Sequence[Argv]) -> str:
    """``ip -batch`` input for ``cmds`` (each starting with "ip"); tokens are names and
    addresses we built, so none may contain whitespace or quotes."""
    lines = []
    for cmd in cmds:
        if cmd[0] != "ip" or any(not t or any(c.isspace() or c in "\"'\\#" for c in t)
                                 for t in cmd):
            raise ValueError(f"not a safe ip batch command: {cmd!r}")
        lines.append(" ".join(cmd[1:]))
    return "\n".join(lines) + "\n"


# --- executors --------------------------------------------------------------------

def run_all(cmds: Sequence[Argv], what: str) -> None:
    for cmd in cmds:
        proc.run(cmd, what=what)


def run_ip_batch(cmds: Sequence[Argv], what: str) -> None:
    """Several ``ip ...`` commands as one ``ip -batch -`` process (one exec, not N)."""
    proc.run(["ip", "-batch", "-"], input=batch_text(cmds), what=what)


def run_in_netns(netns_path: str, cmds: Sequence[Argv], what: str) -> None:
    proc.run(["nsenter", f"--net={netns_path}", "ip", "-batch", "-"],
             input=batch_text(cmds), what=what)


def interface_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def is_bridge(name: str) -> bool:
    return os.path.isdir(f"/sys/class/net/{name}/bridge")


def ifalias(name: str) -> str:
    try:
        with open(f"/sys/class/net/{name}/ifalias") as f:
            return f.read().strip()
    except OSError:
        return ""


def link_addresses(name: str) -> list[str]:
    """IPv4 addresses (cidr) on interface ``name``."""
    res = proc.run(["ip", "-o", "-4", "addr", "show", "dev", name], what=f"list {name}'s addresses")
    out = []
    for line in res.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            out.append(fields[fields.index("inet") + 1])
    return out


def is_up(name: str) -> bool:
    try:
        with open(f"/sys/class/net/{name}/flags") as f:
            return bool(int(f.read().strip(), 16) & 0x1)
    except OSError:
        return False


def delete_link(name: str) -> None:
    """Delete an interface; nothing to do when it is already gone."""
    if not interface_exists(name):
        return
    res = proc.run(["ip", "link", "del", "dev", name], check=False)
    if res.returncode != 0 and interface_exists(name):
        raise CommandFailed(f"could not delete interface {name}: {res.stderr.strip()}",
                            "check `ip link show` and delete it by hand",
                            returncode=res.returncode, stderr=res.stderr)


def write_sysctl(key: str, value: str) -> None:
    """Set /proc/sys/<key> (dots as slashes) unless it already has ``value``."""
    path = "/proc/sys/" + key.replace(".", "/")
    with open(path) as f:
        if f.read().strip() == value:
            return
    with open(path, "w") as f:
        f.write(value)


def netns_mac(netns_path: str) -> str | None:
    """The MAC of eth0 in the netns at ``netns_path`` (None when it has none)."""
    res = proc.run(["nsenter", f"--net={netns_path}", "ip", "-o", "link", "show", "eth0"],
                   check=False, what="read a container's MAC")
    fields = res.stdout.split()
    if res.returncode != 0 or "link/ether" not in fields:
        return None
    return fields[fields.index("link/ether") + 1]


def is_netns_mount(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == real and fields[sep + 1] == "nsfs":
                return True
    return False


def create_netns(path: str, idmap: IdMap | None = None) -> None:
    """A new, empty network namespace bind-mounted on ``path`` (kept if already there).

    With ``idmap`` the netns is owned by a new user namespace with that mapping,
    bind-mounted on ``path + ".user"``: the container joins both, so ``runc exec``
    (which enters the user namespace first) can still enter the netns.
    """
    if os.path.exists(path) and is_netns_mount(path):
        return
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    user = path + ".user"
    for p in (path, user) if idmap else (path,):
        with open(p, "a"):
            pass
    try:
        if idmap is None:
            proc.run(["unshare", f"--net={path}", "true"], what="create a network namespace")
        else:
            linux.namespaces_with_idmap(user, path, idmap)
    except CommandFailed:
        remove_netns(path)
        remove_netns(user)
        raise


def remove_netns(path: str) -> None:
    """Unmount and delete a netns bind mount; nothing to do when it is gone.

    umount2 until the kernel says "not a mount point" (EINVAL): direct syscalls,
    not umount(8) and mountinfo scans, since this runs at every container exit."""
    while os.path.exists(path):
        try:
            linux.umount(path)
        except CommandFailed as err:
            if err.returncode in (errno.EINVAL, errno.ENOENT):
                break
            raise CommandFailed(f"could not unmount {path}: {err.message}", f"umount -l {path}",
                                returncode=err.returncode) from err
    try:
        os.unlink(path)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise
