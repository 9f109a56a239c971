"""Tenant isolation and anti-spoofing on the instance's bridge: one nftables bridge table.

A Linux bridge forwards every frame between its ports, so without this any container
reaches every other container's address, and with CAP_NET_RAW sends from any address
or MAC it likes (Docker's default bridge). The table ``bridge paas-<I>`` filters
frames entering from the instance's veths (the set ``ports``); the host's own frames
(nginx, published ports, NAT replies) leave through the bridge device and are not
filtered here::

  prerouting (from a port)  -> from-port: IPv4 only from the port's own MAC and
                               address, ARP only for them (set ``bind``); the rest
                               (IPv6, VLANs, any other ethertype) is dropped
  forward (port to port)    -> between-ports: ARP passes; IPv4 jumps to the chain of
                               the sender's tenant (map ``tenant``: address -> chain),
                               which accepts only its members' addresses; else drop
  input (port to the host)  -> to-host: no routing to the subnet through the gateway
                               (which would bypass the above), the gateway itself is
                               fine

Tenants (``settings.validate_tenant``): each app's containers (web, worker, one-offs)
are one tenant ``t-app-NAME``; plain ``container:run`` containers share
``t-default`` (Docker's default bridge keeps them talking, and so do we); build steps
(``build``) belong to none, so they reach no container at all. Links between
tenants (issue 15: "only linked apps reach a service's port") are one more rule in
the linking tenant's chain (``ip daddr . th dport @links-... accept``).

Why nftables' bridge family and not iptables' physdev match: that needs br_netfilter's
``bridge-nf-call-iptables``, one sysctl for every bridge of the host (Docker's, other
instances'); this table is the instance's own, hooked before br_netfilter (priority
-200) and matching only its ports. The kernel here lacks ``meta ibrname``, hence the
set of port names.

The table is written whole from the state DB in one ``nft -f`` transaction (atomic:
no moment without filtering) when an address is handed out, a spare changes tenant,
a container is removed, and at ``ensure``. A container exiting with ``--rm`` leaves
its entries until the next write: its veth and address are gone, and whoever gets
the address next is written first. Pure: ``ruleset``; ``sync``/``remove``/``problems``
execute. Not covered: IPv6 (dropped), several bridges.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .. import proc
from ..errors import PaasError
from . import links
from .settings import Names, container_mac

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .ipam import Ipam

__all__ = ["Port", "group_of", "ports_of", "problems", "remove", "ruleset", "sync",
           "table_name"]

PRIORITY = -200  # before br_netfilter's hooks (0)


@dataclass(frozen=True)
class Port:
    """What the table knows of one attachment."""

    veth: str
    mac: str
    ip: str
    tenant: str


# an ARP frame's Ethernet source, and the sender it claims, are the port's own
_ARP_OWN = "iifname . ether saddr . arp saddr ip @bind"
_ARP_SENDER = "iifname . arp saddr ether . arp saddr ip @bind"
_HOOKS = (("prerouting", "from-port"), ("forward", "between-ports"), ("input", "to-host"))


def _hook(hook: str, chain: str) -> str:
    return (f"  chain {hook} {{ type filter hook {hook} priority {PRIORITY}; policy accept; "
            f"iifname @ports jump {chain}; }}")


def table_name(names: Names) -> str:
    return f"paas-{names.instance}"


def group_of(tenant: str) -> str | None:
    """The tenant chain's suffix: ``default``, ``app-NAME``; None (build): no peers."""
    if tenant == "":
        return "default"
    if tenant.startswith("app:"):
        return "app-" + tenant[4:]
    return None


def _quote(ifname: str) -> str:
    return '"' + ifname + '"'  # our own veth names: letters and digits only


def _elements(items: Iterable[str]) -> str:
    items = sorted(set(items))
    return f" elements = {{ {', '.join(items)} }};" if items else ""


def ruleset(names: Names, subnet: ipaddress.IPv4Network, ports: Sequence[Port]) -> str:
    """``nft -f`` input replacing the instance's bridge table with one for ``ports``."""
    table = table_name(names)
    gateway = next(subnet.hosts())
    groups: dict[str, list[str]] = {}
    for p in ports:
        group = group_of(p.tenant)
        if group is not None:
            groups.setdefault(group, []).append(p.ip)
    veths = _elements(_quote(p.veth) for p in ports)
    binds = _elements(f"{_quote(p.veth)} . {p.mac} . {p.ip}" for p in ports)
    lines = [
        f"table bridge {table} {{}}",
        f"delete table bridge {table}",
        f"table bridge {table} {{",
        f"  set ports {{ type ifname;{veths} }}",
        f"  set bind {{ type ifname . ether_addr . ipv4_addr;{binds} }}",
        "  map tenant { type ipv4_addr : verdict;"
        + _elements(f"{p.ip} : jump t-{group_of(p.tenant)}" for p in ports
                    if group_of(p.tenant) is not None) + " }",
    ]
    for group, ips in sorted(groups.items()):
        lines += [f"  set m-{group} {{ type ipv4_addr;{_elements(ips)} }}",
                  f"  chain t-{group} {{ ip daddr @m-{group} accept; }}"]
    lines += [
        "  chain from-port {",
        "    iifname . ether saddr . ip saddr @bind return;",
        f"    {_ARP_OWN} {_ARP_SENDER} return;",
        "    drop;",
        "  }",
        "  chain between-ports { ether type arp accept; ip saddr vmap @tenant; drop; }",
        f"  chain to-host {{ ip daddr {subnet} ip daddr != {gateway} drop; }}",
        *(_hook(hook, chain) for hook, chain in _HOOKS),
        "}",
    ]
    return "\n".join(lines) + "\n"


def ports_of(ipam: Ipam) -> list[Port]:
    """What the table must know of every attachment in the state DB."""
    out = []
    for row in ipam.rows():
        mac = row.mac
        if not mac:  # made before paas set MACs, still running: ask its netns
            mac = links.netns_mac(row.netns_path) or container_mac(row.ip)
            ipam.set_mac(row.container_id, mac)
        out.append(Port(row.host_veth, mac, row.ip, row.tenant))
    return out


def sync(names: Names, subnet: ipaddress.IPv4Network, ports: Sequence[Port]) -> None:
    """Write the table for ``ports``; the caller holds the network lock."""
    proc.run(["nft", "-f", "-"], input=ruleset(names, subnet, ports),
             what="install the bridge's isolation rules (nftables)")


def remove(names: Names) -> None:
    table = table_name(names)
    proc.run(["nft", "-f", "-"], input=f"table bridge {table} {{}}\ndelete table bridge {table}\n",
             what="remove the bridge's isolation rules (nftables)")


def _installed(names: Names) -> dict[str, set[str]] | None:
    """Set name -> its elements as text, of the installed table; None when it is missing."""
    res = proc.run(["nft", "-j", "list", "table", "bridge", table_name(names)], check=False,
                   what="read the bridge's isolation rules")
    if res.returncode != 0:
        return None
    out: dict[str, set[str]] = {}
    for item in json.loads(res.stdout).get("nftables", []):
        for kind in ("set", "map"):
            if kind in item:
                out[item[kind]["name"]] = {_text(e) for e in item[kind].get("elem", [])}
        if "chain" in item:
            out.setdefault("chains", set()).add(item["chain"]["name"])
    return out


def _text(elem: object) -> str:
    """A JSON element of ``nft -j`` as the text ``ruleset`` writes."""
    if isinstance(elem, list) and len(elem) == 2:  # map: [key, verdict]
        key, verdict = elem
        target = verdict.get("jump", {}).get("target", "") if isinstance(verdict, dict) else ""
        return f"{_text(key)} : jump {target}"
    if isinstance(elem, dict) and "concat" in elem:
        return " . ".join(_text(e) for e in elem["concat"])
    if isinstance(elem, dict) and "elem" in elem:
        return _text(elem["elem"]["val"])
    return str(elem)


def problems(names: Names, ports: Sequence[Port]) -> list[str]:
    """What is wrong with the installed table for ``ports`` ([]: nothing). Entries of
    containers gone since the last write are fine (nothing has their veth or address);
    one that names a current veth or address wrongly is not."""
    try:
        have = _installed(names)
    except PaasError as err:  # e.g. nft is not installed
        return [f"nftables unreadable: {err.message}"]
    except ValueError as err:
        return [f"nftables unreadable: {err}"]
    if have is None:
        return [f"table bridge {table_name(names)} is missing"]
    want: dict[str, set[str]] = {
        "ports": {p.veth for p in ports},
        "bind": {f"{p.veth} . {p.mac} . {p.ip}" for p in ports},
        "tenant": {f"{p.ip} : jump t-{group_of(p.tenant)}" for p in ports
                   if group_of(p.tenant) is not None},
    }
    for p in ports:
        group = group_of(p.tenant)
        if group is not None:
            want.setdefault(f"m-{group}", set()).add(p.ip)
    current = {p.ip for p in ports} | {p.veth for p in ports}
    out = []
    for name in sorted(set(want) | {n for n in have if n.startswith("m-")}):
        got, need = have.get(name, set()), want.get(name, set())
        wrong = {e for e in got - need
                 if current & set(e.replace(" : ", " . ").split(" . "))}
        if need - got or wrong:
            out.append(f"set {name} lacks {len(need - got)} and has {len(wrong)} wrong "
                       "element(s)")
    missing = {name for pair in _HOOKS for name in pair} - have.get("chains", set())
    out += [f"chain {c} is missing" for c in sorted(missing)]
    return out
