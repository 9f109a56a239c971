"""Tenant isolation and anti-spoofing on the bridge (``paas.network.policy``), attacked
from real containers.

Servers (``rawnet.py serve``) run detached: two containers of app ``a``, one of app
``b``, two plain ``container:run`` ones. Clients are ``--rm`` containers of a tenant
(``--tenant``: what a deploy sets for an app's containers; build steps get ``build``
from the builder itself). Same-app containers connect; another app's, a plain
container's and a build step's connections are refused; plain containers keep
talking among themselves (Docker's default bridge does). Hand-built frames cannot get
around it: not through the gateway's MAC (routing by the host), not with another
container's source address or MAC, not by ARP spoofing.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_network_attacks import STACK, TOOL, Lab, lab, listening

__all__ = ["lab"]  # the fixture, re-exported for pytest

PORT = 5000


@dataclass(frozen=True)
class Server:
    name: str
    ip: str
    mac: str


@pytest.fixture(scope="module")
def servers(lab: Lab) -> Iterator[dict[str, Server]]:
    tenants = {"a1": "app:a", "a2": "app:a", "b1": "app:b", "p1": "", "p2": ""}
    out: dict[str, Server] = {}
    try:
        for name, tenant in tenants.items():
            lab.cli("container:run", "-d", "--name", f"srv-{name}", "--tenant", tenant,
                    "-v", f"{lab.tools}:/tool:ro", STACK, "python3", "/tool/rawnet.py",
                    "serve", name, str(PORT))
        for name in tenants:
            line = _wait_log(lab, name, "ready ")
            _, ip, mac = line.split()
            out[name] = Server(name, ip, mac)
        yield out
    finally:
        for name in tenants:
            lab.cli("container:rm", "-f", f"srv-{name}", check=False)


def _logs(lab: Lab, name: str) -> list[str]:
    return lab.cli("container:logs", f"srv-{name}").stdout.splitlines()


def _wait_log(lab: Lab, name: str, prefix: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in _logs(lab, name):
            if line.startswith(prefix):
                return line
        time.sleep(0.1)
    raise AssertionError(f"srv-{name} never logged {prefix!r}: {_logs(lab, name)}")


def _udp_lines(lab: Lab, name: str) -> list[str]:
    return [line for line in _logs(lab, name) if line.startswith("udp ")]


def _connect(lab: Lab, tenant: str, ip: str) -> dict[str, str]:
    return lab.run("connect", ip, str(PORT), "--wait", "2", flags=("--tenant", tenant))


def test_same_app_connects_other_tenants_are_refused(lab: Lab,
                                                     servers: dict[str, Server]) -> None:
    s = servers
    assert _connect(lab, "app:a", s["a1"].ip)["data"].startswith("a1 ")
    assert _connect(lab, "app:a", s["a2"].ip)["data"].startswith("a2 ")
    assert _connect(lab, "app:b", s["b1"].ip)["data"].startswith("b1 ")
    assert _connect(lab, "", s["p1"].ip)["data"].startswith("p1 ")  # Docker's default
    for tenant, target in (("app:b", "a1"), ("app:a", "b1"), ("app:a", "p1"),
                           ("", "a1"), ("", "b1"), ("build", "a1"), ("build", "p1")):
        got = _connect(lab, tenant, s[target].ip)
        assert "error" in got, (tenant, target, got)
    # the host still reaches every container (nginx, published ports)
    for srv in s.values():
        with socket.create_connection((srv.ip, PORT), timeout=2) as conn:
            assert conn.recv(100).decode().startswith(srv.name)


def test_build_step_reaches_no_container(lab: Lab, servers: dict[str, Server],
                                         tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(TOOL, ctx / "rawnet.py")
    runs = " && ".join(f"python3 /rawnet.py connect {servers[n].ip} {PORT} --wait 2"
                       for n in ("a1", "b1", "p1"))
    (ctx / "Dockerfile").write_text(f"FROM {STACK}\nCOPY rawnet.py /rawnet.py\nRUN {runs}\n")
    res = lab.cli("image:build", "--no-cache", "-t", "isolation:1", str(ctx), timeout=300)
    results = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 3 and all("error" in r for r in results), res.stdout
    lab.cli("image:rm", "isolation:1", check=False)


def test_routing_through_the_gateway_is_refused(lab: Lab, servers: dict[str, Server]) -> None:
    a1 = servers["a1"]
    # control: a frame of app a to a1's own MAC arrives
    lab.run("udp", a1.ip, str(PORT), "--mac", a1.mac, "--payload", "direct",
            flags=("--tenant", "app:a"))
    _wait_log(lab, "a1", "udp ")
    # app b hands the frame to the gateway for the host to route: dropped
    for payload in ("via-gateway-1", "via-gateway-2"):
        lab.run("udp", a1.ip, str(PORT), "--mac", lab.mac, "--payload", payload,
                flags=("--tenant", "app:b"))
    time.sleep(1)
    assert not any("via-gateway" in line for line in _udp_lines(lab, "a1"))


def test_spoofed_source_address_or_mac_is_dropped(lab: Lab, servers: dict[str, Server]) -> None:
    a1, a2 = servers["a1"], servers["a2"]
    lab.run("udp", a2.ip, str(PORT), "--mac", a2.mac, "--payload", "control",
            flags=("--tenant", "app:a"))
    assert "control" in _wait_log(lab, "a2", "udp ")
    # app b pretends to be a1 (a2's own tenant) by its address, then by its MAC
    lab.run("udp", a2.ip, str(PORT), "--mac", a2.mac, "--src", a1.ip, "--payload",
            "spoofed-ip", flags=("--tenant", "app:b"))
    lab.run("udp", a2.ip, str(PORT), "--mac", a2.mac, "--src", a1.ip, "--src-mac", a1.mac,
            "--payload", "spoofed-ip-and-mac", flags=("--tenant", "app:b"))
    lab.run("udp", a2.ip, str(PORT), "--mac", a2.mac, "--src-mac", a1.mac, "--payload",
            "spoofed-mac", flags=("--tenant", "app:a"))
    with listening(lab.gateway) as gw:  # nor may the host see a1's address from it
        lab.run("udp", lab.gateway, str(gw.port), "--mac", lab.mac, "--src", a1.ip,
                flags=("--tenant", "app:b"))
        time.sleep(1)
        assert gw.datagrams == []
    assert not any("spoofed" in line for line in _udp_lines(lab, "a2"))


def test_arp_spoofing_is_dropped(lab: Lab, servers: dict[str, Server]) -> None:
    a1 = servers["a1"]
    with socket.create_connection((a1.ip, PORT), timeout=2) as conn:  # the host learns a1
        conn.recv(100)
    time.sleep(1.5)  # past the neighbour entry's locktime: a reply could replace it
    lab.run("arp", a1.ip, "--mac", lab.mac, flags=("--tenant", "app:b"))
    time.sleep(0.5)
    neigh = subprocess.run(["ip", "-j", "neigh", "show", a1.ip, "dev", lab.bridge],
                           capture_output=True, text=True, check=True).stdout
    assert [n.get("lladdr") for n in json.loads(neigh)] == [a1.mac]
