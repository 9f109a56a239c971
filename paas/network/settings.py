"""Names of every host object of an instance's network, and settings from the environment.

Pure: bridge, veth, chain and comment names are derived from the instance name
(``[a-z][a-z0-9]{0,7}``) and the container id, within the kernel's limits
(IFNAMSIZ: 15 characters for interfaces, 28 for iptables chains).
``PAAS_BRIDGE`` overrides the bridge name, ``PAAS_SUBNET`` the subnet choice.
Not covered: validating that the objects exist (see ``bridge``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidArgument

__all__ = [
    "DEFAULT_CANDIDATES",
    "IFNAMSIZ",
    "Names",
    "NetworkSettings",
    "container_mac",
    "load_settings",
    "validate_cid",
    "validate_tenant",
    "veth_name",
]

IFNAMSIZ = 15  # usable characters of an interface name
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_CID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
_TENANT_RE = re.compile(r"^(?:|build|app:[a-z][a-z0-9-]{0,62})$")

# Tried in order; the first that overlaps no host route or address wins.
# 172.17-172.28 are left to Docker's default pools.
DEFAULT_CANDIDATES: tuple[ipaddress.IPv4Network, ...] = tuple(
    [ipaddress.IPv4Network(f"10.{n}.0.0/16") for n in range(88, 100)]
    + [ipaddress.IPv4Network("172.29.0.0/16")]
)


def validate_cid(cid: str) -> str:
    if not _CID_RE.match(cid):
        raise InvalidArgument(f"invalid container id {cid!r}",
                              "container ids are lowercase letters, digits, '_', '.', '-'")
    return cid


def container_mac(ip: str) -> str:
    """The MAC of a container's eth0, from its address (unique on the bridge, like
    Docker's 02:42:IP; 0a:58 as Kubernetes' bridge plugin, apart from the bridge's own
    02:...), so the anti-spoofing rules know it without asking the netns."""
    return "0a:58:" + ":".join(f"{int(b):02x}" for b in ip.split("."))


def validate_tenant(tenant: str) -> str:
    """Whose container it is: "" (a plain container:run), "build" or "app:NAME"."""
    if not _TENANT_RE.match(tenant):
        raise InvalidArgument(f"invalid tenant {tenant[:80]!r}",
                              "use app:NAME or build (set by paas itself, not by hand)")
    return tenant


@dataclass(frozen=True)
class Names:
    """Kernel object names of one instance's network."""

    instance: str
    bridge: str
    run_dir: str  # <PAAS_ROOT>/run

    @property
    def alias(self) -> str:
        """The bridge's ifalias: marks it as ours (a foreign interface never has it)."""
        return f"paas:{self.instance}"

    @property
    def chain(self) -> str:
        """filter: jumped to from FORWARD."""
        return f"PAAS-{self.instance.upper()}"

    @property
    def ports_chain(self) -> str:
        """filter: ACCEPT for each published container port."""
        return f"PAAS-{self.instance.upper()}-PORTS"

    @property
    def nat_chain(self) -> str:
        """nat: MASQUERADE rules, jumped to from POSTROUTING."""
        return f"PAAS-{self.instance.upper()}-NAT"

    @property
    def dnat_chain(self) -> str:
        """nat: DNAT for published ports and DNS, from PREROUTING and OUTPUT."""
        return f"PAAS-{self.instance.upper()}-DNAT"

    @property
    def raw_chain(self) -> str:
        """raw: drops what arrives from the bridge for loopback or link-local addresses,
        jumped to from PREROUTING (before conntrack and NAT)."""
        return f"PAAS-{self.instance.upper()}-RAW"

    @property
    def svc_chain(self) -> str:
        """nat chain of the apps' service addresses (``services``), jumped to from OUTPUT."""
        return f"PAAS-{self.instance.upper()}-SVC"

    @property
    def svc_comment_prefix(self) -> str:
        return f"paas-{self.instance}:svc:"

    @property
    def netns_dir(self) -> str:
        return os.path.join(self.run_dir, "netns")

    @property
    def lock_path(self) -> str:
        return os.path.join(self.run_dir, "network.lock")

    def netns_path(self, cid: str) -> str:
        return os.path.join(self.netns_dir, validate_cid(cid))

    def comment(self, cid: str) -> str:
        """iptables comment tagging the rules of one container."""
        return f"paas-{self.instance}:{cid}"

    @property
    def dns_comment(self) -> str:
        return f"paas-{self.instance}:dns"

    @property
    def mac(self) -> str:
        """A fixed, locally administered bridge MAC: the bridge would otherwise take
        the lowest port's MAC, and change it as veths come and go."""
        h = hashlib.sha256(self.instance.encode()).digest()
        return "02:" + ":".join(f"{b:02x}" for b in h[:5])


def veth_name(instance: str, cid: str, *, hashed: bool = False) -> str:
    """Host end of a container's veth: ``v<instance><cid prefix>``, 15 characters.

    ``hashed`` gives the fallback used when the cid prefix is already taken by
    another container of the instance.
    """
    room = IFNAMSIZ - 1 - len(instance)
    tail = hashlib.sha256(cid.encode()).hexdigest() if hashed else re.sub(r"[^a-z0-9]", "", cid)
    return f"v{instance}{tail[:room]}"


@dataclass(frozen=True)
class NetworkSettings:
    names: Names
    subnet: ipaddress.IPv4Network | None  # PAAS_SUBNET, None: choose one
    candidates: tuple[ipaddress.IPv4Network, ...] = DEFAULT_CANDIDATES
    resolv_conf: str = "/etc/resolv.conf"


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text.strip())
    except ValueError as err:
        raise InvalidArgument(f"PAAS_SUBNET={text!r} is not an IPv4 subnet",
                              "use CIDR notation without host bits, e.g. 10.88.0.0/16") from err
    if not 8 <= net.prefixlen <= 28:
        raise InvalidArgument(f"PAAS_SUBNET={text!r} has an unusable size",
                              "use a prefix length between /8 and /28")
    return net


def load_settings(instance: str, run_dir: str, env: Mapping[str, str] | None = None,
                  resolv_conf: str = "/etc/resolv.conf") -> NetworkSettings:
    env = os.environ if env is None else env
    bridge = env.get("PAAS_BRIDGE") or f"pb-{instance}"
    if not _IFNAME_RE.match(bridge) or bridge in (".", ".."):
        raise InvalidArgument(f"PAAS_BRIDGE={bridge!r} is not a valid interface name",
                              "use 1-15 letters, digits, '_', '.', '-'")
    subnet = parse_subnet(env["PAAS_SUBNET"]) if env.get("PAAS_SUBNET") else None
    return NetworkSettings(Names(instance, bridge, run_dir), subnet, resolv_conf=resolv_conf)
