"""Which IPv4 subnet the bridge uses: the pure choice, and the host's routes it avoids.

``choose_subnet`` and ``parse_ip_json`` are pure; ``host_networks`` runs
``ip -j`` once for routes (every table) and once for addresses. Not covered:
IPv6, routes that appear after the choice (the choice is persisted and kept).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from typing import Any

from .. import proc
from ..errors import Conflict, FailedPrecondition, InvalidArgument

__all__ = ["check_free", "choose_subnet", "host_networks", "parse_ip_json"]

Net = ipaddress.IPv4Network


def parse_ip_json(routes_json: str, addrs_json: str, skip_dev: str) -> list[tuple[Net, str]]:
    """(network, device) of every IPv4 route and address, ignoring default routes and
    anything on ``skip_dev`` (our own bridge)."""
    out: list[tuple[Net, str]] = []
    routes: list[dict[str, Any]] = json.loads(routes_json or "[]")
    for r in routes:
        dst, dev = r.get("dst", ""), r.get("dev", "")
        if dst in ("", "default") or dev == skip_dev:
            continue
        try:
            out.append((ipaddress.IPv4Network(dst, strict=False), dev))
        except ValueError:
            continue  # an IPv6 or odd entry (e.g. "multicast"): not ours to judge
    links: list[dict[str, Any]] = json.loads(addrs_json or "[]")
    for link in links:
        dev = link.get("ifname", "")
        if dev == skip_dev:
            continue
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                out.append((ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}",
                                                  strict=False), dev))
    return out


def host_networks(skip_dev: str) -> list[tuple[Net, str]]:
    routes = proc.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                      what="list the host's routes")
    addrs = proc.run(["ip", "-j", "-4", "addr", "show"], what="list the host's addresses")
    return parse_ip_json(routes.stdout, addrs.stdout, skip_dev)


def check_free(subnet: Net, existing: Iterable[tuple[Net, str]], source: str) -> None:
    """InvalidArgument when ``subnet`` (from ``source``, e.g. "PAAS_SUBNET") overlaps
    a host route or address."""
    for net, dev in existing:
        if subnet.overlaps(net):
            raise InvalidArgument(
                f"{source} {subnet} overlaps {net} on {dev or 'the host'}",
                "choose a subnet no host route uses (see `ip route show table all`)")


def choose_subnet(candidates: Sequence[Net], existing: Iterable[tuple[Net, str]],
                  taken: Iterable[Net] = ()) -> Net:
    """The first candidate that overlaps no existing network nor a ``taken`` one."""
    busy = [n for n, _ in existing] + list(taken)
    for cand in candidates:
        if not any(cand.overlaps(n) for n in busy):
            return cand
    if not candidates:
        raise FailedPrecondition("no candidate subnets", "set PAAS_SUBNET")
    raise Conflict(
        f"every candidate subnet ({candidates[0]} ... {candidates[-1]}) is in use on this host",
        "set PAAS_SUBNET to a free IPv4 subnet, e.g. PAAS_SUBNET=10.123.0.0/16")
