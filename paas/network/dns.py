"""The resolv.conf a container on the bridge gets (pure).

A host resolver on loopback (systemd-resolved's 127.0.0.53, a local dnsmasq)
cannot be reached from a container's own loopback. Like Docker, loopback
nameservers are dropped; when nothing is left, the container uses the bridge
gateway, which ``rules.dns_rules`` DNATs to the host's loopback resolver
(``route_localnet`` on the bridge lets those packets through). Not covered:
IPv6 nameservers are kept as they are; ``search``/``options`` lines are copied.
"""

from __future__ import annotations

import ipaddress

__all__ = ["loopback_resolver", "nameservers", "resolv_conf_for_bridge"]


def nameservers(host_text: str) -> list[str]:
    out = []
    for line in host_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            out.append(fields[1])
    return out


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def loopback_resolver(host_text: str) -> str | None:
    """The IPv4 loopback resolver to forward the gateway's port 53 to, when the host
    has only loopback nameservers; None when containers can use the host's list."""
    servers = nameservers(host_text)
    if not servers or not all(_is_loopback(s) for s in servers):
        return None
    v4 = [s for s in servers if ":" not in s]
    return v4[0] if v4 else "127.0.0.1"


def resolv_conf_for_bridge(host_text: str, gateway: str) -> str:
    """The host's resolv.conf without loopback nameservers; ``nameserver <gateway>``
    instead when the host has nothing but loopback resolvers."""
    lines = []
    replaced = False
    use_gateway = loopback_resolver(host_text) is not None
    for line in host_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and _is_loopback(fields[1]):
            if use_gateway and not replaced:
                lines.append(f"nameserver {gateway}")
                replaced = True
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"
