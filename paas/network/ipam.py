"""Addresses, attachments and published ports of the bridge, kept in the state DB.

Every write happens in one ``BEGIN IMMEDIATE`` transaction, so concurrent
attaches (threads or processes, each with its own connection) never hand out
the same address or host port; the ``UNIQUE`` constraints on ``ip`` and
``host_veth`` are the last line of defence. Tables come from migration 2 in
``paas/state/db.py``. Not covered: kernel objects (see ``bridge``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import Conflict
from ..state.db import transaction
from .ports import Attachment, PortMapping, overlaps
from .settings import container_mac

__all__ = ["AttachmentRow", "Ipam", "ServiceRow"]


@dataclass(frozen=True)
class AttachmentRow:
    container_id: str
    ip: str
    netns_path: str
    host_veth: str
    ports: tuple[PortMapping, ...]
    link_local: bool = False  # may reach 169.254.0.0/16
    tenant: str = ""  # whose container (``settings.validate_tenant``)
    mac: str = ""  # of its eth0 ('' for one made before paas set it: see ``bridge``)


@dataclass(frozen=True)
class ServiceRow:
    """An app's service address and the container ip:ports it is DNAT-ed to."""

    app: str
    vip: str
    endpoints: tuple[tuple[str, int], ...] = ()


PortPicker = Callable[[PortMapping, Sequence[PortMapping]], int]


class Ipam:
    """The network tables of one instance's state DB."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # --- settings (subnet, bridge) --------------------------------------------

    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM net_config WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO net_config (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def clear_config(self) -> None:
        self.conn.execute("DELETE FROM net_config")

    # --- attachments ------------------------------------------------------------

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM net_attachments").fetchone()[0])

    def ids(self) -> list[str]:
        rows = self.conn.execute("SELECT container_id FROM net_attachments ORDER BY ip")
        return [str(r[0]) for r in rows]

    _ROW = ("SELECT container_id, ip, netns_path, host_veth, link_local, tenant, mac "
            "FROM net_attachments")

    def get_row(self, cid: str) -> AttachmentRow | None:
        row = self.conn.execute(self._ROW + " WHERE container_id = ?", (cid,)).fetchone()
        if row is None:
            return None
        return AttachmentRow(row[0], row[1], row[2], row[3], self._ports(cid),
                             bool(row[4]), str(row[5]), str(row[6]))

    def rows(self) -> list[AttachmentRow]:
        """Every attachment (spares too), without their ports."""
        return [AttachmentRow(r[0], r[1], r[2], r[3], (), bool(r[4]), str(r[5]), str(r[6]))
                for r in self.conn.execute(self._ROW + " ORDER BY ip")]

    def set_mac(self, cid: str, mac: str) -> None:
        with transaction(self.conn):
            self.conn.execute("UPDATE net_attachments SET mac = ? WHERE container_id = ?",
                              (mac, cid))

    def _ports(self, cid: str | None = None) -> tuple[PortMapping, ...]:
        q = "SELECT host_ip, host_port, container_port, proto FROM net_ports"
        rows = (self.conn.execute(q + " WHERE container_id = ? ORDER BY rowid", (cid,))
                if cid is not None else self.conn.execute(q))
        return tuple(PortMapping(r[0], int(r[1]), int(r[2]), r[3]) for r in rows)

    def published(self) -> tuple[PortMapping, ...]:
        """Every host port published by any container of the instance."""
        return self._ports()

    def conflicting(self, ports: Sequence[PortMapping]) -> PortMapping | None:
        """The first of ``ports`` another attachment (or an earlier one in ``ports``)
        already claims."""
        taken = list(self.published())
        for p in ports:
            if p.host_port and any(overlaps(p, t) for t in taken):
                return p
            taken.append(p)
        return None

    def allocate(self, cid: str, subnet: ipaddress.IPv4Network, netns_path: str,
                 veths: Sequence[str], ports: Sequence[PortMapping],
                 pick_port: PortPicker, *, link_local: bool = False,
                 tenant: str = "") -> AttachmentRow:
        """Reserve the next free address after the last one handed out (round robin,
        like Docker: a just-released address is not reused while its old netns may
        still be dying), a veth name and host ports for ``cid``; Conflict when the
        subnet is full or a port is claimed."""
        with transaction(self.conn):
            clash = self.conflicting(ports)
            if clash is not None:
                raise Conflict(f"port {clash.host_port} is already in use",
                               "another container of this instance publishes it; "
                               "choose another host port")
            ip = self._free_ip(subnet, self._used_ips(), self.get("last_ip"))
            self.put("last_ip", ip)
            veth_taken = {str(r[0]) for r in self.conn.execute(
                "SELECT host_veth FROM net_attachments")}
            veth = next((v for v in veths if v not in veth_taken), None)
            if veth is None:
                raise Conflict(f"no free interface name for container {cid}",
                               "detach the container whose id shares its prefix")
            mac = container_mac(ip)
            self.conn.execute(
                "INSERT INTO net_attachments (container_id, ip, netns_path, host_veth, created,"
                " link_local, tenant, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, ip, netns_path, veth, time.time(), int(link_local), tenant, mac))
            resolved = self._claim_ports(cid, ports, pick_port)
        return AttachmentRow(cid, ip, netns_path, veth, resolved, link_local, tenant, mac)

    def _claim_ports(self, cid: str, ports: Sequence[PortMapping],
                     pick_port: PortPicker) -> tuple[PortMapping, ...]:
        """Inside a transaction: record ``cid``'s ports, random host ports picked."""
        resolved: list[PortMapping] = []
        taken = list(self.published())
        for p in ports:
            if p.host_port == 0:
                p = PortMapping(p.host_ip, pick_port(p, taken + resolved),
                                p.container_port, p.proto)
            resolved.append(p)
        self.conn.executemany(
            "INSERT INTO net_ports (container_id, host_ip, host_port, container_port, proto)"
            " VALUES (?, ?, ?, ?, ?)",
            [(cid, p.host_ip, p.host_port, p.container_port, p.proto) for p in resolved])
        return tuple(resolved)

    # --- spares: attachments made ahead of time, handed to the next container ------

    def add_spare(self, sid: str, idmap_key: str) -> None:
        with transaction(self.conn):
            self.put(f"spare:{sid}", idmap_key)

    def spares(self) -> list[tuple[str, str]]:
        """(spare id, id-map key) of every spare attachment."""
        rows = self.conn.execute("SELECT key, value FROM net_config WHERE key LIKE 'spare:%'")
        return [(str(k)[6:], str(v)) for k, v in rows]

    def forget_spare(self, sid: str) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM net_config WHERE key = ?", (f"spare:{sid}",))

    def take_spare(self, cid: str, idmap_key: str, ports: Sequence[PortMapping],
                   pick_port: PortPicker, *, link_local: bool = False,
                   tenant: str = "") -> AttachmentRow | None:
        """Hand a spare made for ``idmap_key`` to ``cid`` (row renamed, ports claimed,
        its policy recorded); None when there is none. Concurrent takers never get the
        same spare."""
        with transaction(self.conn):
            found = self.conn.execute(
                "SELECT key FROM net_config WHERE key LIKE 'spare:%' AND value = ? LIMIT 1",
                (idmap_key,)).fetchone()
            if found is None:
                return None
            sid = str(found[0])[6:]
            clash = self.conflicting(ports)
            if clash is not None:
                raise Conflict(f"port {clash.host_port} is already in use",
                               "another container of this instance publishes it; "
                               "choose another host port")
            self.conn.execute("DELETE FROM net_config WHERE key = ?", (f"spare:{sid}",))
            self.conn.execute("UPDATE net_attachments SET container_id = ?, link_local = ?, "
                              "tenant = ? WHERE container_id = ?",
                              (cid, int(link_local), tenant, sid))
            self._claim_ports(cid, ports, pick_port)
        return self.get_row(cid)

    def _used_ips(self) -> set[str]:
        used = {str(r[0]) for r in self.conn.execute("SELECT ip FROM net_attachments")}
        return used | {s.vip for s in self.services()}

    # --- service addresses (``services``): key svc:<app> -> {"vip", "endpoints"} ----------

    def services(self) -> list[ServiceRow]:
        rows = self.conn.execute(
            "SELECT key, value FROM net_config WHERE key LIKE 'svc:%' ORDER BY key")
        out = []
        for key, value in rows:
            doc = json.loads(value)
            out.append(ServiceRow(str(key)[4:], str(doc["vip"]),
                                  tuple((str(ip), int(port)) for ip, port in doc["endpoints"])))
        return out

    def service(self, app: str) -> ServiceRow | None:
        return next((s for s in self.services() if s.app == app), None)

    def _put_service(self, row: ServiceRow) -> None:
        self.put(f"svc:{row.app}", json.dumps(
            {"vip": row.vip, "endpoints": [list(e) for e in row.endpoints]}))

    def ensure_service(self, app: str, subnet: ipaddress.IPv4Network) -> ServiceRow:
        """``app``'s service row; a new one gets the highest free address of the subnet
        (containers are numbered from the bottom, so the two rarely meet)."""
        with transaction(self.conn):
            row = self.service(app)
            if row is not None:
                return row
            used = self._used_ips()
            top = int(subnet.broadcast_address) - 1
            bottom = int(subnet.network_address) + 2
            vip = next((str(ipaddress.IPv4Address(n)) for n in range(top, bottom - 1, -1)
                        if str(ipaddress.IPv4Address(n)) not in used), None)
            if vip is None:
                raise Conflict(f"no free address left in {subnet} for the service of {app}",
                               "remove stopped containers or unused apps")
            row = ServiceRow(app, vip)
            self._put_service(row)
        return row

    def set_endpoints(self, app: str, endpoints: Sequence[tuple[str, int]]) -> ServiceRow:
        with transaction(self.conn):
            row = self.service(app)
            if row is None:
                raise Conflict(f"app {app} has no service address", "deploy it again")
            row = ServiceRow(app, row.vip, tuple(endpoints))
            self._put_service(row)
        return row

    def drop_service(self, app: str) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM net_config WHERE key = ?", (f"svc:{app}",))

    @staticmethod
    def _free_ip(subnet: ipaddress.IPv4Network, used: set[str], last: str | None) -> str:
        first = int(subnet.network_address) + 2  # after the gateway
        end = int(subnet.broadcast_address)  # exclusive
        start = first
        if last is not None and ipaddress.IPv4Address(last) in subnet:
            start = int(ipaddress.IPv4Address(last)) + 1
        for n in range(end - first):
            addr = str(ipaddress.IPv4Address(first + (start - first + n) % (end - first)))
            if addr not in used:
                return addr
        raise Conflict(f"no free address left in {subnet}",
                       "remove stopped containers, or set PAAS_SUBNET to a larger subnet "
                       "after `uninstall`")

    def release(self, cid: str) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM net_ports WHERE container_id = ?", (cid,))
            self.conn.execute("DELETE FROM net_attachments WHERE container_id = ?", (cid,))

    def to_attachment(self, row: AttachmentRow, subnet: ipaddress.IPv4Network) -> Attachment:
        user = row.netns_path + ".user"
        return Attachment(row.container_id, row.netns_path, row.ip,
                          str(next(subnet.hosts())), subnet.prefixlen, row.ports,
                          user if os.path.exists(user) else None)
