"""Pure parts of paas.network: -p parsing, names within kernel limits, resolv.conf."""

from __future__ import annotations

import random

import pytest

from paas.errors import Conflict, InvalidArgument
from paas.network import PortMapping, parse_publish, resolv_conf_for_bridge
from paas.network.dns import loopback_resolver
from paas.network.ports import overlaps, random_port
from paas.network.settings import IFNAMSIZ, Names, load_settings, veth_name


@pytest.mark.parametrize("text,want", [
    ("8080:80", PortMapping("0.0.0.0", 8080, 80, "tcp")),
    ("127.0.0.1:8080:5000", PortMapping("127.0.0.1", 8080, 5000, "tcp")),
    ("53:53/udp", PortMapping("0.0.0.0", 53, 53, "udp")),
    ("10.1.2.3::80/tcp", PortMapping("10.1.2.3", 0, 80, "tcp")),
    (":80", PortMapping("0.0.0.0", 0, 80, "tcp")),
    ("5000", PortMapping("0.0.0.0", 0, 5000, "tcp")),
    ("5000/udp", PortMapping("0.0.0.0", 0, 5000, "udp")),
    (" 65535:1 ", PortMapping("0.0.0.0", 65535, 1, "tcp")),
])
def test_parse_publish_good(text: str, want: PortMapping) -> None:
    assert parse_publish(text) == want


@pytest.mark.parametrize("text", [
    "", "abc", "80:", "0:80", "8080:0", "70000:80", "80:70000", "80/sctp", "80/TCP",
    "300.1.1.1:80:80", "localhost:80:80", "[::1]:80:80", "1.2.3.4:80", "8000-8010:80",
    "1:2:3:4", "-1:80",
])
def test_parse_publish_bad(text: str) -> None:
    with pytest.raises(InvalidArgument) as ei:
        parse_publish(text)
    assert ei.value.hint


def test_ipv6_hint() -> None:
    with pytest.raises(InvalidArgument, match="port mapping") as ei:
        parse_publish("[::1]:80:80")
    assert "IPv6" in ei.value.hint


def test_overlaps() -> None:
    a = PortMapping("0.0.0.0", 8080, 80, "tcp")
    assert overlaps(a, PortMapping("127.0.0.1", 8080, 5000, "tcp"))
    assert not overlaps(a, PortMapping("127.0.0.1", 8080, 80, "udp"))
    assert not overlaps(PortMapping("127.0.0.1", 8080, 80, "tcp"),
                        PortMapping("10.0.0.1", 8080, 80, "tcp"))
    assert not overlaps(a, PortMapping("0.0.0.0", 8081, 80, "tcp"))


def test_random_port_skips_taken_and_busy() -> None:
    want = PortMapping("0.0.0.0", 0, 80, "tcp")
    taken = [PortMapping("127.0.0.1", 40000, 1, "tcp")]
    busy = {40001}
    port = random_port(want, taken, (40000, 40002), probe=lambda ip, p, proto: p not in busy,
                       rng=random.Random(1))
    assert port == 40002


def test_random_port_exhausted() -> None:
    with pytest.raises(Conflict, match="no free host port"):
        random_port(PortMapping("0.0.0.0", 0, 80, "tcp"), [], (40000, 40001),
                    probe=lambda ip, p, proto: False, tries=10)


@pytest.mark.parametrize("instance", ["a", "paas", "t1a2b3c", "abcdefgh"])
def test_names_fit_kernel_limits(instance: str) -> None:
    s = load_settings(instance, "/r/run", env={})
    assert s.names.bridge == f"pb-{instance}" and len(s.names.bridge) <= IFNAMSIZ
    cid = "f" * 64
    for hashed in (False, True):
        v = veth_name(instance, cid, hashed=hashed)
        assert len(v) == IFNAMSIZ and v.startswith("v" + instance)
    assert veth_name(instance, cid) != veth_name(instance, cid, hashed=True)
    n = s.names
    for chain in (n.chain, n.ports_chain, n.nat_chain, n.dnat_chain):
        assert len(chain) <= 28 and instance.upper() in chain
    assert n.netns_path(cid) == f"/r/run/netns/{cid}"
    assert n.mac.startswith("02:") and len(n.mac) == 17


def test_settings_from_env() -> None:
    s = load_settings("x", "/r", env={"PAAS_BRIDGE": "mybr0", "PAAS_SUBNET": "10.5.0.0/24"})
    assert s.names.bridge == "mybr0" and str(s.subnet) == "10.5.0.0/24"
    for bad in ({"PAAS_BRIDGE": "x" * 16}, {"PAAS_BRIDGE": "a b"},
                {"PAAS_SUBNET": "10.5.0.1/24"}, {"PAAS_SUBNET": "nonsense"},
                {"PAAS_SUBNET": "10.5.0.0/30"}, {"PAAS_SUBNET": "fd00::/64"}):
        with pytest.raises(InvalidArgument):
            load_settings("x", "/r", env=bad)


def test_names_reject_bad_cid() -> None:
    with pytest.raises(InvalidArgument):
        Names("x", "pb-x", "/r").netns_path("../etc")


HOST_RESOLVED = "# systemd\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.com\n"


def test_resolv_conf_loopback_resolver_uses_gateway() -> None:
    out = resolv_conf_for_bridge(HOST_RESOLVED, "10.88.0.1")
    assert "nameserver 10.88.0.1" in out and "127.0.0.53" not in out
    assert "search example.com" in out and "options edns0 trust-ad" in out
    assert loopback_resolver(HOST_RESOLVED) == "127.0.0.53"


def test_resolv_conf_keeps_real_servers() -> None:
    host = "nameserver 10.255.255.53\nnameserver 127.0.0.1\nnameserver 1.1.1.1\n"
    out = resolv_conf_for_bridge(host, "10.88.0.1")
    assert out.split("\n")[:2] == ["nameserver 10.255.255.53", "nameserver 1.1.1.1"]
    assert "10.88.0.1" not in out and loopback_resolver(host) is None
    assert loopback_resolver("nameserver ::1\n") == "127.0.0.1"
    assert loopback_resolver("") is None
