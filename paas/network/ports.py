"""Published ports: ``-p`` parsing, the values handed to paasd, host-port probes.

``parse_publish`` is pure. ``probe_port`` asks the kernel whether a host port is
free by binding it (so anything listening counts, not only our own rules);
``random_port`` picks a free one from the ephemeral range. Not covered: holding
the port open while published (published ports are DNAT rules only, see
``rules``); port ranges; IPv6 host addresses.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import re
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ..errors import Conflict, InvalidArgument
from ..model import PortMapping

__all__ = [
    "Attachment",
    "PortMapping",
    "ephemeral_range",
    "overlaps",
    "parse_publish",
    "probe_port",
    "random_port",
]

_PUBLISH_RE = re.compile(
    r"^(?:(?:(?P<ip>[0-9.]+):)?(?P<hp>\d*):)?(?P<cp>\d+)(?:/(?P<proto>[a-z]+))?$"
)


@dataclass(frozen=True)
class Attachment:
    """A container's place on the bridge; ``ports`` have their host ports resolved."""

    container_id: str
    netns_path: str
    ip: str
    gateway: str
    prefixlen: int
    ports: tuple[PortMapping, ...]
    userns_path: str | None = None  # the user namespace owning the netns, if any


def _port(text: str, what: str, spec: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise InvalidArgument(f"invalid {what} {text} in -p {spec}", "ports are 1-65535")
    return value


def parse_publish(text: str) -> PortMapping:
    """Parse ``[HOSTIP:][HOSTPORT]:CONTAINERPORT[/udp]`` or ``CONTAINERPORT[/udp]``."""
    spec = text.strip()
    m = _PUBLISH_RE.match(spec)
    if not m:
        hint = "use [HOSTIP:]HOSTPORT:CONTAINERPORT[/udp], e.g. -p 8080:80 or -p 127.0.0.1:8080:80"
        if spec.startswith("[") or spec.count(":") > 2:
            hint = "IPv6 host addresses are not supported; " + hint
        raise InvalidArgument(f"invalid port mapping {text!r}", hint)
    proto = m.group("proto") or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"unsupported protocol {proto!r} in -p {spec}", "use tcp or udp")
    host_ip = m.group("ip") or "0.0.0.0"
    try:
        ipaddress.IPv4Address(host_ip)
    except ValueError as err:
        raise InvalidArgument(f"invalid host address {host_ip!r} in -p {spec}",
                              "use an IPv4 address of this host, e.g. 127.0.0.1") from err
    hp = m.group("hp")
    host_port = _port(hp, "host port", spec) if hp else 0
    return PortMapping(host_ip, host_port, _port(m.group("cp"), "container port", spec), proto)


def overlaps(a: PortMapping, b: PortMapping) -> bool:
    """Whether two mappings claim the same host socket (0.0.0.0 claims every address)."""
    return (
        a.proto == b.proto
        and a.host_port == b.host_port
        and (a.host_ip == b.host_ip or "0.0.0.0" in (a.host_ip, b.host_ip))
    )


def probe_port(host_ip: str, port: int, proto: str) -> bool:
    """True when ``host_ip:port/proto`` can be bound now (nothing else holds it).

    SO_REUSEADDR so TIME_WAIT leftovers don't count; listeners still do.
    Raises InvalidArgument when ``host_ip`` is not an address of this host.
    """
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return False
            if err.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"{host_ip} is not an address of this host",
                                      "publish on 0.0.0.0, 127.0.0.1 or one of "
                                      "the host's own addresses") from err
            raise
    return True


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    with open(path) as f:
        lo, hi = (int(x) for x in f.read().split())
    return lo, hi


def random_port(mapping: PortMapping, taken: Collection[PortMapping],
                port_range: tuple[int, int],
                probe: Callable[[str, int, str], bool] = probe_port,
                rng: random.Random | None = None, tries: int = 200) -> int:
    """A host port for ``mapping`` (host_port 0) that no ``taken`` mapping claims and
    ``probe`` finds free."""
    rng = rng or random.Random()
    lo, hi = port_range
    for _ in range(tries):
        port = rng.randint(lo, hi)
        candidate = PortMapping(mapping.host_ip, port, mapping.container_port, mapping.proto)
        if any(overlaps(candidate, t) for t in taken):
            continue
        if probe(mapping.host_ip, port, mapping.proto):
            return port
    raise Conflict(f"no free host port for {mapping.container_port}/{mapping.proto} "
                   f"in {lo}-{hi}", "publish an explicit host port with -p HOSTPORT:PORT")
