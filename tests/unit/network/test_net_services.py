"""Service addresses: the SVC chain's rules (pure) and their rows in the state DB."""

from __future__ import annotations

import ipaddress

import pytest
from test_net_ipam_subnet import _no_pick, ipam

from paas.errors import Conflict
from paas.network.ipam import Ipam, ServiceRow
from paas.network.rules import parse_save
from paas.network.services import front_address, restore_text, service_rules
from paas.network.settings import Names

N = Names("t1", "pb-t1", "/r/run")
NET = ipaddress.IPv4Network("10.77.0.0/24")
__all__ = ["ipam"]  # the fixture, shared with the IPAM tests


def test_rules_spread_new_connections_evenly() -> None:
    rows = [ServiceRow("web", "10.77.0.254", (("10.77.0.2", 5000), ("10.77.0.3", 5000),
                                              ("10.77.0.4", 5000))),
            ServiceRow("api", "10.77.0.253", (("10.77.0.9", 8080),))]
    rules = service_rules(N, rows)
    assert len(rules) == 4
    chances = [r[r.index("--probability") + 1] if "--probability" in r else None for r in rules]
    assert chances == ["0.33333333333", "0.50000000000", None, None]
    # nginx's side is the loopback twin of the address (TIME_WAIT ports reusable there)
    assert rules[0][:8] == ("-d", "127.77.0.254/32", "-p", "tcp", "-m", "tcp", "--dport", "80")
    assert front_address("10.89.255.253") == "127.89.255.253"
    assert rules[0][-3:] == ("DNAT", "--to-destination", "10.77.0.2:5000")
    assert rules[3][-1] == "10.77.0.9:8080" and "paas-t1:svc:api" in rules[3]
    assert service_rules(N, [ServiceRow("idle", "10.77.0.252")]) == []


def test_restore_text_replaces_the_whole_chain_in_one_commit() -> None:
    text = restore_text(N, [ServiceRow("web", "10.77.0.254", (("10.77.0.2", 5000),))])
    lines = text.splitlines()
    assert lines[:2] == ["*nat", ":PAAS-T1-SVC - [0:0]"] and lines[-1] == "COMMIT"
    assert text.count("COMMIT") == 1
    chain = parse_save(text)["nat"].rules_of("PAAS-T1-SVC")
    assert chain[-1] == ("-m", "addrtype", "--dst-type", "LOCAL", "-j", "PAAS-T1-DNAT")
    assert chain[0][-1] == "10.77.0.2:5000"
    # no apps: only the jump on to the published ports stays
    assert len(parse_save(restore_text(N, []))["nat"].rules_of("PAAS-T1-SVC")) == 1


def test_service_addresses_come_from_the_top_and_are_stable(ipam: Ipam) -> None:
    a = ipam.ensure_service("a", NET)
    b = ipam.ensure_service("b", NET)
    assert (a.vip, b.vip) == ("10.77.0.254", "10.77.0.253")
    assert ipam.ensure_service("a", NET) == a
    row = ipam.set_endpoints("a", [("10.77.0.2", 5000), ("10.77.0.3", 5000)])
    assert ipam.service("a") == row and row.endpoints[1] == ("10.77.0.3", 5000)
    ipam.drop_service("a")
    assert ipam.service("a") is None and [s.app for s in ipam.services()] == ["b"]
    with pytest.raises(Conflict):
        ipam.set_endpoints("a", [])


def test_containers_never_get_a_service_address(ipam: Ipam) -> None:
    small = ipaddress.IPv4Network("10.77.0.0/29")  # .2 to .6 for containers and services
    vip = ipam.ensure_service("a", small).vip
    assert vip == "10.77.0.6"
    got = [ipam.allocate(f"c{i}", small, f"/ns/c{i}", [f"v{i}"], (), _no_pick).ip
           for i in range(4)]
    assert vip not in got and len(set(got)) == 4
    with pytest.raises(Conflict):  # full: the service address is not handed out
        ipam.allocate("c9", small, "/ns/c9", ["v9"], (), _no_pick)
    with pytest.raises(Conflict):
        ipam.ensure_service("b", small)
