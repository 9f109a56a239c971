"""Subnet choice with fake routes, and IPAM on an in-memory state DB."""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from collections.abc import Iterator, Sequence

import pytest

from paas.errors import Conflict, InvalidArgument
from paas.network.ipam import Ipam
from paas.network.ports import PortMapping
from paas.network.settings import DEFAULT_CANDIDATES
from paas.network.subnet import check_free, choose_subnet, parse_ip_json
from paas.state.db import MIGRATIONS

Net = ipaddress.IPv4Network

ROUTES = json.dumps([
    {"type": "unicast", "dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
    {"dst": "10.88.0.0/16", "dev": "cni-podman0"},
    {"dst": "10.89.3.0/24", "dev": "wg0"},
    {"type": "local", "dst": "10.90.0.7", "dev": "eth1", "table": "local"},
    {"dst": "10.91.0.0/16", "dev": "pb-me"},
    {"dst": "ff00::/8", "dev": "eth0"},
])
ADDRS = json.dumps([
    {"ifname": "eth2", "addr_info": [{"family": "inet", "local": "10.92.1.5", "prefixlen": 16},
                                     {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]},
    {"ifname": "pb-me", "addr_info": [{"family": "inet", "local": "10.91.0.1", "prefixlen": 16}]},
])


def test_choose_subnet_skips_routes_addresses_and_default() -> None:
    existing = parse_ip_json(ROUTES, ADDRS, skip_dev="pb-me")
    assert (Net("10.89.3.0/24"), "wg0") in existing
    assert not any(dev == "pb-me" for _, dev in existing)
    # 10.88 podman, 10.89 wg0, 10.90 a local address, 10.92 eth2; 10.91 is our own bridge
    assert choose_subnet(DEFAULT_CANDIDATES, existing) == Net("10.91.0.0/16")
    assert choose_subnet(DEFAULT_CANDIDATES, existing, taken=[Net("10.91.0.0/16")]) == \
        Net("10.93.0.0/16")


def test_choose_subnet_all_taken() -> None:
    with pytest.raises(Conflict) as ei:
        choose_subnet(DEFAULT_CANDIDATES, [(Net("10.0.0.0/8"), "x"), (Net("172.16.0.0/12"), "y")])
    assert "PAAS_SUBNET" in ei.value.hint


def test_check_free_reports_the_overlap() -> None:
    existing = parse_ip_json(ROUTES, ADDRS, skip_dev="")
    with pytest.raises(InvalidArgument, match="10.89.3.0/24 on wg0"):
        check_free(Net("10.89.0.0/16"), existing, "PAAS_SUBNET")
    check_free(Net("10.200.0.0/16"), existing, "PAAS_SUBNET")


@pytest.fixture
def ipam() -> Iterator[Ipam]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for migration in MIGRATIONS:
        conn.executescript(migration)
    yield Ipam(conn)
    conn.close()


def _no_pick(p: PortMapping, taken: Sequence[PortMapping]) -> int:
    raise AssertionError("no random port expected")


SMALL = Net("10.9.9.0/29")  # gateway .1, containers .2-.6


def test_allocate_release_exhaust(ipam: Ipam) -> None:
    ips = [ipam.allocate(f"c{i}", SMALL, f"/ns/c{i}", [f"v{i}"], (), _no_pick).ip
           for i in range(5)]
    assert ips == [f"10.9.9.{n}" for n in range(2, 7)]
    with pytest.raises(Conflict, match="no free address"):
        ipam.allocate("c9", SMALL, "/ns/c9", ["v9"], (), _no_pick)
    assert ipam.get_row("c9") is None  # rolled back
    ipam.release("c2")
    assert ipam.allocate("c9", SMALL, "/ns/c9", ["v9"], (), _no_pick).ip == "10.9.9.4"
    assert ipam.count() == 5
    att = ipam.to_attachment(ipam.get_row("c9") or pytest.fail("row"), SMALL)
    assert (att.gateway, att.prefixlen, att.netns_path) == ("10.9.9.1", 29, "/ns/c9")


def test_veth_fallback_name(ipam: Ipam) -> None:
    assert ipam.allocate("a1", SMALL, "/ns/a1", ["vx", "vy"], (), _no_pick).host_veth == "vx"
    assert ipam.allocate("a2", SMALL, "/ns/a2", ["vx", "vy"], (), _no_pick).host_veth == "vy"
    with pytest.raises(Conflict):
        ipam.allocate("a3", SMALL, "/ns/a3", ["vx", "vy"], (), _no_pick)


def test_ports_persist_and_conflict(ipam: Ipam) -> None:
    picked: list[list[PortMapping]] = []

    def pick(p: PortMapping, taken: Sequence[PortMapping]) -> int:
        picked.append(list(taken))
        return 40001

    ports = (PortMapping("127.0.0.1", 8080, 5000, "tcp"), PortMapping("0.0.0.0", 0, 53, "udp"))
    row = ipam.allocate("c1", SMALL, "/ns/c1", ["v1"], ports, pick)
    assert row.ports[1] == PortMapping("0.0.0.0", 40001, 53, "udp")
    assert picked == [[ports[0]]]  # the picker sees what is already claimed
    assert ipam.get_row("c1") == row
    # 0.0.0.0:8080 overlaps 127.0.0.1:8080; udp 8080 does not
    with pytest.raises(Conflict, match="port 8080 is already in use"):
        ipam.allocate("c2", SMALL, "/ns/c2", ["v2"], [PortMapping("0.0.0.0", 8080, 1, "tcp")],
                      _no_pick)
    assert ipam.get_row("c2") is None and ipam.count() == 1
    ipam.allocate("c2", SMALL, "/ns/c2", ["v2"], [PortMapping("0.0.0.0", 8080, 1, "udp")],
                  _no_pick)
    assert ipam.conflicting([PortMapping("10.0.0.1", 9, 1, "tcp"),
                             PortMapping("0.0.0.0", 9, 2, "tcp")]) is not None
    ipam.release("c1")
    assert ipam.conflicting(list(ports)) is None
    assert [p.host_port for p in ipam.published()] == [8080]


def test_config_roundtrip(ipam: Ipam) -> None:
    assert ipam.get("subnet") is None
    ipam.put("subnet", "10.1.0.0/16")
    ipam.put("subnet", "10.2.0.0/16")
    assert ipam.get("subnet") == "10.2.0.0/16"
    ipam.clear_config()
    assert ipam.get("subnet") is None


def test_released_address_is_not_reused_at_once(ipam: Ipam) -> None:
    a = ipam.allocate("r0", SMALL, "/ns/r0", ["w0"], (), _no_pick).ip
    ipam.allocate("r1", SMALL, "/ns/r1", ["w1"], (), _no_pick)
    ipam.release("r0")
    nxt = ipam.allocate("r2", SMALL, "/ns/r2", ["w2"], (), _no_pick).ip
    assert (a, nxt) == ("10.9.9.2", "10.9.9.4")  # round robin, like Docker's IPAM
