"""Per-app service addresses: what nginx proxies to, switched without reloading nginx.

Each app gets a stable address from the bridge's subnet (its *service address*,
kept in the state DB; no interface has it). nginx's upstream is its loopback twin
(``front_address``: 10.89.255.254 -> 127.89.255.254);
an iptables ``nat OUTPUT`` rule DNATs each new connection to it to one of the
app's current web containers, spread at random (kube-proxy's ClusterIP in
iptables mode). A deploy switches traffic by rewriting the instance's SVC chain
in one ``iptables-restore --noflush`` transaction: new connections go to the
new containers at once, connections already open keep their container
(conntrack), and nginx is never reloaded, so its client keep-alive connections
survive every deploy. The address also survives reboots: nginx's config never
holds a container IP that could go stale.

Pure: ``service_rules``/``restore_text``. ``AppServices`` executes them and is
the switch ``paas.proxy.Proxy`` drives. Not covered: traffic from containers to
another app's service address (only the host's nginx uses them), IPv6.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from .. import proc
from ..model import Upstream
from .ipam import ServiceRow
from .rules import Args, svc_base_rules
from .settings import Names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .bridge import BridgeNetwork

__all__ = ["SERVICE_PORT", "AppServices", "front_address", "restore_text", "service_rules",
           "sync_rules"]

SERVICE_PORT = 80


def front_address(vip: str) -> str:
    """The loopback address nginx connects to for the service address ``vip``:
    ``10.89.255.254`` -> ``127.89.255.254`` (instances' subnets never overlap, so neither
    do these). On loopback the kernel may reuse a TIME_WAIT port for a new connection
    (``tcp_tw_reuse``'s default); on the bridge it may not, and every upstream connection
    a gunicorn-style server closes would hold one of the ~28k ephemeral ports for 60 s,
    capping an app at ~470 new connections/s. ``route_localnet`` on the bridge and the
    ``127.0.0.0/8 -> bridge`` MASQUERADE rule (made for ports published on 127.0.0.1)
    carry the DNAT-ed packets."""
    return "127." + vip.split(".", 1)[1]


def service_rules(names: Names, services: Sequence[ServiceRow]) -> list[Args]:
    """The SVC chain's tagged rules: per app, one DNAT per endpoint; the i-th of n
    matches with probability 1/(n-i), so each endpoint gets 1/n of new connections."""
    out: list[Args] = []
    for s in services:
        n = len(s.endpoints)
        for i, (ip, port) in enumerate(s.endpoints):
            chance: Args = () if i == n - 1 else (
                "-m", "statistic", "--mode", "random", "--probability", f"{1 / (n - i):.11f}")
            out.append(("-d", f"{front_address(s.vip)}/32", "-p", "tcp", "-m", "tcp",
                        "--dport", str(SERVICE_PORT),
                        "-m", "comment", "--comment", f"{names.svc_comment_prefix}{s.app}",
                        *chance, "-j", "DNAT", "--to-destination", f"{ip}:{port}"))
    return out


def restore_text(names: Names, services: Sequence[ServiceRow]) -> str:
    """``iptables-restore --noflush`` input replacing the whole SVC chain (declaring a
    chain flushes it; the table is committed as one transaction)."""
    chain = names.svc_chain
    rules = [*service_rules(names, services), *svc_base_rules(names)]
    lines = ["*nat", f":{chain} - [0:0]", *(f"-A {chain} {shlex.join(a)}" for a in rules)]
    return "\n".join([*lines, "COMMIT", ""])


def sync_rules(net: BridgeNetwork) -> None:
    """Rewrite the SVC chain from the state DB; the caller holds the network lock."""
    text = restore_text(net.names, net.ipam.services())
    proc.run(["iptables-restore", "-w", "--noflush"], input=text,
             what="switch the apps' service addresses")


class AppServices:
    """Service addresses of an instance's apps; the proxy's switch."""

    # nginx lists the service address this many times: with max_fails=0 each retry
    # (proxy_next_upstream) is a new connection, DNAT-ed afresh, so a dead container
    # is skipped as it was when nginx listed the containers themselves
    TRIES = 3

    def __init__(self, net: BridgeNetwork) -> None:
        self.net = net

    def front(self, app: str) -> tuple[Upstream, ...]:
        """What nginx proxies ``app`` to (its service address, allocated on first use)."""
        row = self.net.ipam.ensure_service(app, self.net.subnet())
        return (Upstream(front_address(row.vip), SERVICE_PORT),) * self.TRIES

    def switch(self, app: str, endpoints: Sequence[Upstream]) -> None:
        """From now on, new connections to ``app``'s address go to ``endpoints`` only."""
        self.net.ensure()
        self.net.ipam.ensure_service(app, self.net.subnet())
        with self.net.locked():
            self.net.ipam.set_endpoints(app, [(u.host, u.port) for u in endpoints])
            sync_rules(self.net)

    def forget(self, app: str) -> None:
        """Drop ``app``'s rules and release its address."""
        if self.net.ipam.service(app) is None:
            return
        with self.net.locked():
            self.net.ipam.drop_service(app)
            sync_rules(self.net)
