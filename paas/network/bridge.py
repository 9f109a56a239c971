"""``BridgeNetwork``: the one bridge of an instance and the containers attached to it.

Order of every operation: validate (names, subnet, ports) -> record in the DB
(address, veth name, host ports, in one BEGIN IMMEDIATE transaction) -> create
kernel objects; a failure while creating them undoes the attach with
``detach``. iptables changes and the bridge setup are serialised by a file lock
in ``<PAAS_ROOT>/run`` (threads and processes). Everything is idempotent:
``ensure`` costs one ``ip`` and one ``iptables-save`` when nothing is missing.
Not covered: holding published host ports open, IPv6, several networks.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from .. import proc
from ..config import Context
from ..errors import Conflict, InvalidArgument, PaasError
from ..model import IdMap
from ..state.db import transaction
from . import links, policy
from .dns import loopback_resolver, resolv_conf_for_bridge
from .ipam import AttachmentRow, Ipam
from .ports import Attachment, PortMapping, ephemeral_range, probe_port, random_port
from .rules import (
    argv,
    base_rules,
    jump_rules,
    link_local_rules,
    parse_save,
    plan_ensure,
    plan_remove_container,
    plan_uninstall,
    port_rules,
)
from .settings import container_mac, load_settings, validate_cid, veth_name
from .subnet import check_free, choose_subnet, host_networks

__all__ = ["BridgeNetwork"]

log = logging.getLogger(__name__)


def _validate_port(p: PortMapping) -> None:
    try:
        ipaddress.IPv4Address(p.host_ip)
    except ValueError as err:
        raise InvalidArgument(f"invalid host address {p.host_ip!r}", "use an IPv4 address") from err
    if p.proto not in ("tcp", "udp") or not 0 <= p.host_port <= 65535 \
            or not 1 <= p.container_port <= 65535:
        raise InvalidArgument(f"invalid port mapping {p}", "ports are 1-65535, tcp or udp")


def _has_rules(row: AttachmentRow) -> bool:
    """Whether the container has iptables rules of its own (``_publish``)."""
    return bool(row.ports) or row.link_local


def _idmap_key(idmap: IdMap | None) -> str:
    return idmap.key if idmap is not None else "host"


class BridgeNetwork:
    """The bridge network of the instance ``ctx`` (state in ``conn``)."""

    def __init__(self, ctx: Context, conn: sqlite3.Connection, *,
                 env: Mapping[str, str] | None = None,
                 resolv_conf: str = "/etc/resolv.conf") -> None:
        self.settings = load_settings(ctx.instance, ctx.paths.run, env, resolv_conf)
        self.names = self.settings.names
        self.ipam = Ipam(conn)

    # --- the bridge -------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The instance's network lock (bridge, iptables rules)."""
        os.makedirs(self.names.run_dir, mode=0o700, exist_ok=True)
        with open(self.names.lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _ours(self) -> bool:
        return links.interface_exists(self.names.bridge) and \
            links.is_bridge(self.names.bridge) and \
            links.ifalias(self.names.bridge) == self.names.alias

    def _check_bridge_owner(self) -> None:
        br = self.names.bridge
        if links.interface_exists(br) and not self._ours():
            raise Conflict(f"interface {br} exists and is not the bridge of paas instance "
                           f"{self.names.instance}",
                           "set PAAS_BRIDGE to an unused interface name, or remove "
                           f"{br} if nothing needs it")

    def subnet(self) -> ipaddress.IPv4Network:
        """The instance's subnet: persisted choice, PAAS_SUBNET, or the first free
        candidate (then persisted)."""
        stored_text = self.ipam.get("subnet")
        stored = ipaddress.IPv4Network(stored_text) if stored_text else None
        explicit = self.settings.subnet
        if stored is not None and explicit in (None, stored):
            return stored
        self._check_bridge_owner()
        existing = host_networks(skip_dev=self.names.bridge if self._ours() else "")
        if explicit is not None:
            if stored is not None and self.ipam.count():
                raise Conflict(f"this instance uses {stored}, PAAS_SUBNET says {explicit}",
                               "detach every container (or uninstall the network) "
                               "before changing PAAS_SUBNET")
            check_free(explicit, existing, "PAAS_SUBNET")
            chosen = explicit
        else:
            chosen = choose_subnet(self.settings.candidates, existing)
        with transaction(self.ipam.conn):
            self.ipam.put("subnet", str(chosen))
        return chosen

    @property
    def gateway(self) -> str:
        return str(next(self.subnet().hosts()))

    def _dns_target(self) -> str | None:
        try:
            with open(self.settings.resolv_conf) as f:
                return loopback_resolver(f.read())
        except FileNotFoundError:
            return None

    def resolv_conf(self) -> str:
        """The resolv.conf for containers on this bridge."""
        with open(self.settings.resolv_conf) as f:
            return resolv_conf_for_bridge(f.read(), self.gateway)

    def _ensured_marker(self) -> tuple[str, str]:
        """(path, content) of the note saying this boot already has our bridge and rules."""
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        stored = self.ipam.get("subnet") or ""
        return (os.path.join(self.names.run_dir, "bridge.ensured"),
                f"{boot} {self.names.bridge} {stored}\n")

    def ensure(self, *, force: bool = False) -> None:
        """Bridge up with the gateway address, sysctls, NAT and FORWARD rules.

        Done in full once per boot (and whenever ``force``, e.g. at paasd start);
        later calls only check a marker and that the bridge exists: a container
        start must not pay for iptables-save every time."""
        marker, content = self._ensured_marker()
        if (not force and os.path.exists(f"/sys/class/net/{self.names.bridge}")
                and os.path.exists(marker)):
            with open(marker) as f:
                if f.read() == content:
                    return
        self._ensure_full()
        marker, content = self._ensured_marker()  # the subnet may have been chosen just now
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker + ".tmp", "w") as f:
            f.write(content)
        os.replace(marker + ".tmp", marker)

    def _ensure_full(self) -> None:
        with self.locked():
            self._check_bridge_owner()
            subnet = self.subnet()
            self._ensure_bridge(subnet)
            links.write_sysctl("net.ipv4.ip_forward", "1")
            links.write_sysctl(f"net.ipv4.conf.{self.names.bridge}.route_localnet", "1")
            dump = parse_save(proc.run(["iptables-save"], what="read iptables").stdout)
            base = base_rules(self.names, subnet, self._dns_target())
            links.run_all(plan_ensure(dump, self.names, base, jump_rules(self.names)),
                          what="install the bridge's iptables rules")
            self._sync_policy()
            if self.ipam.services():  # after a reboot: the apps' service addresses again
                from .services import sync_rules

                sync_rules(self)

    def _ensure_bridge(self, subnet: ipaddress.IPv4Network) -> None:
        n = self.names
        want = f"{next(subnet.hosts())}/{subnet.prefixlen}"
        if not links.interface_exists(n.bridge):
            links.run_all(links.bridge_cmds(n.bridge, n.alias, n.mac, want),
                          what=f"create bridge {n.bridge}")
            return
        have = links.link_addresses(n.bridge)
        for addr in have:
            if addr != want:
                proc.run(["ip", "addr", "del", addr, "dev", n.bridge], what="fix bridge address")
        if want not in have:
            proc.run(["ip", "addr", "add", want, "dev", n.bridge], what="set bridge address")
        if not links.is_up(n.bridge):
            proc.run(["ip", "link", "set", "dev", n.bridge, "up"], what="bring the bridge up")

    def _sync_policy(self) -> None:
        """Write the instance's nftables table from the DB; the caller holds the lock."""
        policy.sync(self.names, self.subnet(), policy.ports_of(self.ipam))

    # --- containers -------------------------------------------------------------------

    def check_ports(self, ports: Sequence[PortMapping]) -> None:
        """Conflict when a host port is claimed by another container or bound by
        anything on the host; creates nothing."""
        for p in ports:
            _validate_port(p)
        clash = self.ipam.conflicting(ports)
        if clash is not None:
            raise Conflict(f"port {clash.host_port} is already in use",
                           f"{clash.host_ip}:{clash.host_port}/{clash.proto} is published by "
                           "another container; choose another host port")
        for p in ports:
            if p.host_port and not probe_port(p.host_ip, p.host_port, p.proto):
                raise Conflict(f"port {p.host_port} is already in use",
                               f"something on this host holds {p.host_ip}:{p.host_port}/"
                               f"{p.proto}; choose another host port, or -p "
                               f"{p.container_port} for a random one")

    def _pick_port(self, p: PortMapping, taken: Sequence[PortMapping]) -> int:
        return random_port(p, taken, ephemeral_range())

    def _complete(self, row: AttachmentRow) -> bool:
        return links.interface_exists(row.host_veth) and links.is_netns_mount(row.netns_path)

    def attach(self, cid: str, ports: Sequence[PortMapping] = (),
               idmap: IdMap | None = None, *, link_local: bool = False,
               tenant: str = "") -> Attachment:
        """Put container ``cid`` on the bridge: netns, veth, address, routes, ports.

        With ``idmap`` the netns belongs to a user namespace with that mapping
        (``Attachment.userns_path``), which the container must join too.
        ``link_local``: it may reach 169.254.0.0/16; ``tenant``: whose it is. Both are
        recorded with the address (a restart keeps them)."""
        validate_cid(cid)
        ports = tuple(ports)
        row = self.ipam.get_row(cid)
        if row is not None:
            if ports and tuple(p for p in ports if p.host_port) != \
                    tuple(p for p in row.ports if p in ports):
                raise Conflict(f"container {cid[:12]} is already attached with other ports",
                               "detach it before publishing different ports")
            if self._complete(row):
                return self.ipam.to_attachment(row, self.subnet())
            replumbed = self._replumb(row, idmap)
            if replumbed is not None:
                return replumbed
        self.check_ports(ports)
        self.ensure()
        subnet = self.subnet()
        spare = self._take_spare(cid, ports, idmap, subnet, link_local, tenant)
        if spare is not None:
            return spare
        return self._attach_new(cid, tuple(ports), idmap, subnet, link_local, tenant)

    def _replumb(self, row: AttachmentRow, idmap: IdMap | None) -> Attachment | None:
        """An attachment whose netns or veth is gone (made before a reboot, or half-made
        by a crash) plumbed again with the same address and ports, so whatever routes to
        the container (an app's service address) stays right; None when its address is
        not in the subnet any more (then it is detached, and the caller starts over)."""
        self.ensure()
        subnet = self.subnet()
        if ipaddress.IPv4Address(row.ip) not in subnet:
            self.detach(row.container_id)
            return None
        links.remove_netns(row.netns_path)
        links.remove_netns(row.netns_path + ".user")
        if not row.mac:  # made before paas set MACs: it gets its own now
            self.ipam.set_mac(row.container_id, container_mac(row.ip))
            row = replace(row, mac=container_mac(row.ip))
            with self.locked():
                self._sync_policy()
        if _has_rules(row):  # the old rules, if they survived, would be duplicated
            with self.locked():
                dump = parse_save(proc.run(["iptables-save"], what="read iptables").stdout)
                links.run_all(plan_remove_container(dump, self.names, row.container_id),
                              what="remove published ports")
        try:
            self._plumb(row, subnet, idmap)
        except BaseException:
            self.detach(row.container_id)
            raise
        return self.ipam.to_attachment(row, subnet)

    def _attach_new(self, cid: str, ports: tuple[PortMapping, ...], idmap: IdMap | None,
                    subnet: ipaddress.IPv4Network, link_local: bool = False,
                    tenant: str = "") -> Attachment:
        inst = self.names.instance
        row = self.ipam.allocate(
            cid, subnet, self.names.netns_path(cid),
            [veth_name(inst, cid), veth_name(inst, cid, hashed=True)], ports, self._pick_port,
            link_local=link_local, tenant=tenant)
        try:
            with self.locked():  # filtered before its veth joins the bridge
                self._sync_policy()
            self._plumb(row, subnet, idmap)
        except BaseException:
            try:
                self.detach(cid)
            except PaasError as err:
                log.warning("undoing the failed attach of %s: %s", cid, err.render())
            raise
        return self.ipam.to_attachment(row, subnet)

    # --- spares ---------------------------------------------------------------------

    def _take_spare(self, cid: str, ports: Sequence[PortMapping], idmap: IdMap | None,
                    subnet: ipaddress.IPv4Network, link_local: bool = False,
                    tenant: str = "") -> Attachment | None:
        """A ready-made netns (+ user namespace), veth and address for ``cid``: the
        container start then costs a DB update instead of a fork and two execs."""
        row = self.ipam.take_spare(cid, _idmap_key(idmap), tuple(ports), self._pick_port,
                                   link_local=link_local, tenant=tenant)
        if row is None:
            return None
        if not self._complete(row):  # e.g. made before a reboot
            self.detach(cid)
            return None
        try:
            if tenant:  # spares are made as plain containers'
                with self.locked():
                    self._sync_policy()
            self._publish(row)
        except BaseException:
            self.detach(cid)
            raise
        return self.ipam.to_attachment(row, subnet)

    def fill_spares(self, count: int, idmap: IdMap | None) -> int:
        """Make spares until ``count`` exist for ``idmap`` (dropping broken ones); how
        many were made. Meant for paasd's background thread."""
        key = _idmap_key(idmap)
        have = 0
        for sid, k in self.ipam.spares():
            row = self.ipam.get_row(sid)
            if k == key and row is not None and self._complete(row):
                have += 1
            elif k == key:
                self.ipam.forget_spare(sid)
                self.detach(sid)
        made = 0
        if have < count:
            self.ensure()
        while have + made < count:
            sid = secrets.token_hex(32)
            self._attach_new(sid, (), idmap, self.subnet())
            self.ipam.add_spare(sid, key)
            made += 1
        return made

    def drop_spares(self, keep: set[str]) -> int:
        """Remove the spares made for id maps whose key is not in ``keep``; how many."""
        dropped = 0
        for sid, k in self.ipam.spares():
            if k not in keep:
                self.ipam.forget_spare(sid)
                self.detach(sid)
                dropped += 1
        return dropped

    def _plumb(self, row: AttachmentRow, subnet: ipaddress.IPv4Network,
               idmap: IdMap | None) -> None:
        gateway = str(next(subnet.hosts()))
        links.create_netns(row.netns_path, idmap)
        links.delete_link(row.host_veth)
        links.run_ip_batch(links.veth_cmds(row.host_veth, self.names.bridge, row.netns_path,
                                           row.mac or container_mac(row.ip)),
                           what=f"create veth {row.host_veth}")
        links.run_in_netns(row.netns_path,
                           links.netns_inner_cmds(f"{row.ip}/{subnet.prefixlen}", gateway),
                           what="configure the container's network namespace")
        self._publish(row)

    def _publish(self, row: AttachmentRow) -> None:
        """The container's own iptables rules: published ports, link-local allowed."""
        rules = [argv("-A", r) for p in row.ports
                 for r in port_rules(self.names, row.container_id, row.ip, p)]
        if row.link_local:  # before the RAW chain's DROP of link-local
            rules += [argv("-I", r) for r in link_local_rules(self.names, row.container_id,
                                                              row.ip)]
        if rules:
            with self.locked():
                links.run_all(rules, what="install the container's iptables rules")

    def attachment(self, cid: str) -> Attachment | None:
        row = self.ipam.get_row(cid)
        stored = self.ipam.get("subnet")
        if row is None or stored is None:
            return None
        return self.ipam.to_attachment(row, ipaddress.IPv4Network(stored))

    def _our_veth(self, name: str) -> bool:
        master = f"/sys/class/net/{name}/master"
        return os.path.islink(master) and \
            os.path.basename(os.readlink(master)) == self.names.bridge

    def detach(self, cid: str, *, wait: bool = True) -> None:
        """Remove the container's rules, veth and netns, and release its address.

        ``wait=False`` (a container exit) only unmounts the netns: the kernel deletes
        the veth pair with the dying namespace, which saves the ~20 ms ``ip link del``
        waits for. Addresses are handed out round robin, so the dying netns's address
        is not reused meanwhile."""
        validate_cid(cid)
        row = self.ipam.get_row(cid)
        inst = self.names.instance
        if row is None or _has_rules(row):  # most containers have no rules of their own
            with self.locked():
                dump = parse_save(proc.run(["iptables-save"], what="read iptables").stdout)
                links.run_all(plan_remove_container(dump, self.names, cid),
                              what="remove published ports")
        if row is not None:
            if wait:
                links.delete_link(row.host_veth)
        else:  # no record: only delete interfaces that are provably ours
            for name in (veth_name(inst, cid), veth_name(inst, cid, hashed=True)):
                if self._our_veth(name):
                    links.delete_link(name)
        netns = row.netns_path if row else self.names.netns_path(cid)
        links.remove_netns(netns)
        links.remove_netns(netns + ".user")
        self.ipam.release(cid)
        if wait and row is not None:  # an exit leaves them to the next write (``policy``)
            with self.locked():
                self._sync_policy()

    def uninstall(self) -> None:
        """Detach everything, delete the bridge and every chain and rule of the instance."""
        for cid in self.ipam.ids():
            self.detach(cid)
        if os.path.isdir(self.names.netns_dir):
            for name in os.listdir(self.names.netns_dir):
                links.remove_netns(os.path.join(self.names.netns_dir, name))
        with self.locked():
            if self._ours():
                net = "/sys/class/net"
                for name in os.listdir(net):
                    if self._our_veth(name):
                        links.delete_link(name)
                links.delete_link(self.names.bridge)
            dump = parse_save(proc.run(["iptables-save"], what="read iptables").stdout)
            links.run_all(plan_uninstall(dump, self.names), what="remove the bridge's rules")
            policy.remove(self.names)
        with transaction(self.ipam.conn):
            self.ipam.clear_config()
