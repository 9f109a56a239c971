"""Service addresses against the real kernel: DNAT from the host to the app's
attachments, an atomic switch, spreading, restore after the rules were wiped, and
nothing left after uninstall (the ``net_env`` teardown checks)."""

from __future__ import annotations

import subprocess

from test_network import Env, ask, cid, net_env

from paas.model import Upstream
from paas.network.services import SERVICE_PORT, AppServices

__all__ = ["net_env"]  # the fixture, re-exported for pytest


def _svc_rules(env: Env) -> list[str]:
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-S", env.net.names.svc_chain],
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "--comment" in line]


def test_switch_moves_new_connections_and_survives_a_wipe(net_env: Env) -> None:
    net = net_env.net
    a, b = net.attach(cid("a")), net.attach(cid("b"))
    net_env.serve(a, "A")
    net_env.serve(b, "B")
    svc = AppServices(net)
    front = svc.front("web")
    vip = front[0].host
    assert {u.host for u in front} == {vip} and front[0].port == SERVICE_PORT
    assert vip not in (a.ip, b.ip, net.gateway)

    svc.switch("web", [Upstream(a.ip, 5000)])
    assert ask(vip, SERVICE_PORT) == f"A {net.gateway}"
    svc.switch("web", [Upstream(b.ip, 5000)])
    assert {ask(vip, SERVICE_PORT) for _ in range(5)} == {f"B {net.gateway}"}

    svc.switch("web", [Upstream(a.ip, 5000), Upstream(b.ip, 5000)])
    seen = [ask(vip, SERVICE_PORT).split()[0] for _ in range(40)]
    assert 5 <= seen.count("A") <= 35, seen  # both get a share (p of failing ~1e-5)

    # a reboot or a firewall reload wiped the chain: ensure() puts the rules back
    subprocess.run(["iptables", "-w", "-t", "nat", "-F", net.names.svc_chain], check=True)
    assert "ERR" in ask(vip, SERVICE_PORT)
    net.ensure(force=True)
    assert len(_svc_rules(net_env)) == 2
    assert ask(vip, SERVICE_PORT).split()[0] in ("A", "B")

    # another app gets another address; forgetting one leaves the other alone
    other = AppServices(net_env.new())
    other.switch("api", [Upstream(b.ip, 5000)])
    assert other.front("api")[0].host not in (vip, a.ip, b.ip)
    svc.forget("web")
    rules = _svc_rules(net_env)
    assert len(rules) == 1 and "svc:api" in rules[0]
    assert net.ipam.service("web") is None
