"""The runtime's hand-off to the network stage: attach a container before runc starts it.

``bridge`` containers get a netns + veth + address (and published ports) from
``paas.network.BridgeNetwork``; ``host`` shares the host's stack; ``none`` gets
an empty netns made by runc. The lifecycle only sees ``NetPlan`` values.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Context
from ..model import ContainerConfig, PortMapping

if TYPE_CHECKING:
    from ..network import BridgeNetwork

__all__ = ["ContainerNetwork", "NetPlan", "expand_publish_all"]


@dataclass(frozen=True)
class NetPlan:
    """What the spec and /etc files need from the network of one container start."""

    netns_path: str | None = None
    userns_path: str | None = None
    ip: str | None = None
    resolv: str | None = None
    ports: tuple[PortMapping, ...] = ()


def expand_publish_all(exposed: tuple[str, ...]) -> tuple[PortMapping, ...]:
    """``-P``: every EXPOSEd port ("80/tcp", "53/udp", "8080") on a random host port."""
    out = []
    for item in exposed:
        port, _, proto = item.partition("/")
        if port.isdigit():
            out.append(PortMapping("0.0.0.0", 0, int(port), proto or "tcp"))
    return tuple(out)


class ContainerNetwork:
    def __init__(self, ctx: Context, conn: sqlite3.Connection) -> None:
        self.ctx = ctx
        self.conn = conn
        self._bridge: BridgeNetwork | None = None

    @property
    def bridge(self) -> BridgeNetwork:
        if self._bridge is None:
            from ..network import BridgeNetwork

            self._bridge = BridgeNetwork(self.ctx, self.conn)
        return self._bridge

    def check(self, cfg: ContainerConfig) -> None:
        """Conflict before anything is created when a requested host port is taken."""
        if cfg.network == "bridge" and cfg.ports:
            self.bridge.check_ports(cfg.ports)

    def attach(self, cid: str, cfg: ContainerConfig) -> NetPlan:
        if cfg.network != "bridge":
            return NetPlan()
        idmap = (cfg.idmap or self.ctx.idmap) if cfg.userns else None  # owns the netns
        att = self.bridge.attach(cid, cfg.ports, idmap, link_local=cfg.link_local,
                                 tenant=cfg.tenant)
        return NetPlan(att.netns_path, att.userns_path, att.ip, self.bridge.resolv_conf(),
                       att.ports)

    def detach(self, cid: str, cfg: ContainerConfig, *, wait: bool = True) -> None:
        if cfg.network == "bridge":
            self.bridge.detach(cid, wait=wait)

    def ports(self, cid: str, cfg: ContainerConfig) -> tuple[PortMapping, ...]:
        """Published ports with their host ports resolved (empty unless attached)."""
        if cfg.network != "bridge" or not cfg.ports:
            return ()
        att = self.bridge.attachment(cid)
        return att.ports if att else ()
