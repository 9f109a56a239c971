"""The bridge's nftables table (``paas.network.policy``): the pure ruleset builder and the
report's comparison, against texts and a faked listing (no kernel)."""

from __future__ import annotations

import ipaddress

import pytest

from paas.errors import InvalidArgument
from paas.network import links, policy
from paas.network.policy import Port, group_of, ruleset
from paas.network.settings import Names, container_mac, validate_tenant

N = Names("t1", "pb-t1", "/r/run")
NET = ipaddress.IPv4Network("10.77.0.0/24")
PORTS = [
    Port("vt1aaa", "0a:58:0a:4d:00:02", "10.77.0.2", ""),
    Port("vt1bbb", "0a:58:0a:4d:00:03", "10.77.0.3", "app:web"),
    Port("vt1ccc", "0a:58:0a:4d:00:04", "10.77.0.4", "app:web"),
    Port("vt1ddd", "0a:58:0a:4d:00:05", "10.77.0.5", "build"),
]


def test_tenants_and_macs() -> None:
    assert [group_of(t) for t in ("", "app:web", "build")] == ["default", "app-web", None]
    assert container_mac("10.77.0.2") == "0a:58:0a:4d:00:02"
    assert container_mac("172.29.255.254") == "0a:58:ac:1d:ff:fe"
    assert validate_tenant("app:my-app") == "app:my-app"
    for bad in ("app:", "app:A", "APP:web", "build ", "app:web;drop", "x"):
        with pytest.raises(InvalidArgument):
            validate_tenant(bad)


def test_ruleset_replaces_the_table_atomically() -> None:
    lines = ruleset(N, NET, PORTS).splitlines()
    # declaring then deleting makes the delete safe when the table is missing; all of it
    # is one nft -f transaction
    assert lines[:3] == ["table bridge paas-t1 {}", "delete table bridge paas-t1",
                         "table bridge paas-t1 {"]
    assert lines[-1] == "}"


def test_ruleset_binds_each_port_to_its_mac_and_address() -> None:
    text = ruleset(N, NET, PORTS)
    assert '  set ports { type ifname; elements = { "vt1aaa", "vt1bbb", "vt1ccc", "vt1ddd" }; }' \
        in text
    assert '"vt1ddd" . 0a:58:0a:4d:00:05 . 10.77.0.5' in text  # a build step: bound too
    assert "    iifname . ether saddr . ip saddr @bind return;" in text
    assert ("    iifname . ether saddr . arp saddr ip @bind "
            "iifname . arp saddr ether . arp saddr ip @bind return;") in text
    # everything else from a port (IPv6, VLAN tags, other ethertypes) is dropped
    body = text[text.index("chain from-port"):]
    assert body.split("\n")[3].strip() == "drop;"
    assert ("chain prerouting { type filter hook prerouting priority -200; policy accept; "
            "iifname @ports jump from-port; }") in text


def test_ruleset_tenants_reach_only_their_members() -> None:
    text = ruleset(N, NET, PORTS)
    assert ("map tenant { type ipv4_addr : verdict; elements = { 10.77.0.2 : jump t-default, "
            "10.77.0.3 : jump t-app-web, 10.77.0.4 : jump t-app-web }; }") in text
    assert "set m-app-web { type ipv4_addr; elements = { 10.77.0.3, 10.77.0.4 }; }" in text
    assert "set m-default { type ipv4_addr; elements = { 10.77.0.2 }; }" in text
    assert "chain t-app-web { ip daddr @m-app-web accept; }" in text
    assert "10.77.0.5 :" not in text  # a build step has no tenant chain: it reaches nothing
    assert "chain between-ports { ether type arp accept; ip saddr vmap @tenant; drop; }" in text
    # routing to another container through the gateway would bypass all of it
    assert "chain to-host { ip daddr 10.77.0.0/24 ip daddr != 10.77.0.1 drop; }" in text


def test_ruleset_without_containers_has_empty_sets() -> None:
    text = ruleset(N, NET, [])
    assert "  set ports { type ifname; }" in text and "elements" not in text
    assert "chain t-" not in text


def test_problems_ignores_the_leftovers_of_exited_containers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    current = PORTS[:2]
    gone = Port("vt1zzz", "0a:58:0a:4d:00:09", "10.77.0.9", "")
    installed = {
        "ports": {p.veth for p in [*current, gone]},
        "bind": {f"{p.veth} . {p.mac} . {p.ip}" for p in [*current, gone]},
        "tenant": {"10.77.0.2 : jump t-default", "10.77.0.3 : jump t-app-web",
                   "10.77.0.9 : jump t-default"},
        "m-default": {"10.77.0.2", "10.77.0.9"},
        "m-app-web": {"10.77.0.3"},
        "chains": {"from-port", "between-ports", "to-host", "prerouting", "forward", "input"},
    }
    monkeypatch.setattr(policy, "_installed", lambda names: installed)
    assert policy.problems(N, current) == []
    # an address of a current container in another tenant's set is a problem
    installed["m-default"] = {"10.77.0.2", "10.77.0.3"}
    assert policy.problems(N, current) == ["set m-default lacks 0 and has 1 wrong element(s)"]
    installed["m-default"] = {"10.77.0.2"}
    installed["bind"] = installed["bind"] - {"vt1bbb . 0a:58:0a:4d:00:03 . 10.77.0.3"}
    installed["chains"] = installed["chains"] - {"forward"}
    assert policy.problems(N, current) == ["set bind lacks 1 and has 0 wrong element(s)",
                                           "chain forward is missing"]
    monkeypatch.setattr(policy, "_installed", lambda names: None)
    assert policy.problems(N, current) == ["table bridge paas-t1 is missing"]


def test_installed_elements_as_the_builder_writes_them() -> None:
    assert policy._text({"concat": ["vt1aaa", "0a:58:0a:4d:00:02", "10.77.0.2"]}) == \
        "vt1aaa . 0a:58:0a:4d:00:02 . 10.77.0.2"
    assert policy._text(["10.77.0.2", {"jump": {"target": "t-default"}}]) == \
        "10.77.0.2 : jump t-default"


def test_veth_peer_gets_the_containers_mac() -> None:
    cmds = links.veth_cmds("vt1aaa", "pb-t1", "/r/run/netns/x", "0a:58:0a:4d:00:02")
    assert cmds[0] == ["ip", "link", "add", "name", "vt1aaa", "type", "veth", "peer", "name",
                       "eth0", "address", "0a:58:0a:4d:00:02", "netns", "/r/run/netns/x"]
