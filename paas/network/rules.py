"""iptables rules of an instance's bridge: pure builders and a planner.

Rules are argument tuples in ``iptables-save``'s canonical order, so the
planner can compare them with what the kernel has (``parse_save``) and emit
only the ``iptables`` argv lists that are missing or stale: ``ensure`` costs one
``iptables-save`` when nothing changed. Layout (modelled on Docker with
``userland-proxy=false``)::

  filter FORWARD (pos 1) -> PAAS-<I>:   ESTABLISHED to bridge, from bridge, -> PORTS, DROP to bridge
  filter PAAS-<I>-PORTS:                ACCEPT per published container ip:port
  nat POSTROUTING -> PAAS-<I>-NAT:      MASQUERADE subnet out, 127/8 to bridge, DNAT hairpin
  nat PREROUTING (dst LOCAL) -> PAAS-<I>-DNAT: DNAT per published port (+ DNS)
  nat OUTPUT -> PAAS-<I>-SVC:           DNAT per app service address (``services``),
                                        then (dst LOCAL) -> PAAS-<I>-DNAT
  raw PREROUTING (-i bridge) -> PAAS-<I>-RAW: RETURN per container allowed link-local,
                                        DROP src 127/8, dst 127/8, dst 169.254/16

The RAW chain closes what ``route_localnet=1`` on the bridge opens (CVE-2020-8558
in kube-proxy): a container with CAP_NET_RAW can hand-build a frame to the gateway's
MAC for 127.0.0.1:PORT, and the host would deliver it to services bound to loopback
only. It runs before conntrack and NAT, so it sees the addresses a container wrote:
nginx's own path to a service address (127.x DNAT-ed in nat OUTPUT, MASQUERADEd to
the gateway) comes back addressed to the gateway and is un-NATed to 127.x only
later; the DNS DNAT (gateway:53 -> a loopback resolver) likewise. kube-proxy drops
in filter INPUT unless conntrack says ESTABLISHED/RELATED/DNAT; dropping what the
container addressed is simpler and leaves nothing that depends on conntrack's state.
Link-local (169.254.0.0/16: cloud metadata services) is dropped both to the host and
forwarded, except for containers that opted in (``link_local_rules``).

Per-container rules carry ``-m comment --comment paas-<I>:<cid>`` so detach can
find them without the state DB. Not covered: ip6tables (IPv6 from containers is
dropped on the bridge, ``policy``), the mangle table; isolation between containers
(``policy``: an nftables bridge table).
"""

from __future__ import annotations

import ipaddress
import itertools
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .ports import PortMapping
from .settings import Names

__all__ = [
    "Argv",
    "Rule",
    "SaveDump",
    "argv",
    "base_rules",
    "dns_rules",
    "jump_rules",
    "link_local_rules",
    "parse_save",
    "plan_ensure",
    "plan_remove_container",
    "plan_uninstall",
    "port_rules",
    "svc_base_rules",
]

Args = tuple[str, ...]
Argv = list[str]
IPTABLES = ("iptables", "-w")
LOOPBACK = "127.0.0.0/8"
LINK_LOCAL = "169.254.0.0/16"


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    args: Args


def argv(op: str, rule: Rule) -> Argv:
    """``iptables -w -t TABLE OP CHAIN ARGS``; op ``-I`` inserts at position 1."""
    pos = ["1"] if op == "-I" else []
    return [*IPTABLES, "-t", rule.table, op, rule.chain, *pos, *rule.args]


def _chain_argv(op: str, table: str, chain: str) -> Argv:
    return [*IPTABLES, "-t", table, op, chain]


def _comment(text: str) -> Args:
    return ("-m", "comment", "--comment", text)


def base_rules(names: Names, subnet: ipaddress.IPv4Network,
               dns_target: str | None = None) -> dict[tuple[str, str], list[Args]]:
    """The rules every chain of the instance must hold, besides per-container ones."""
    br, net = names.bridge, str(subnet)
    gateway = str(next(subnet.hosts()))
    return {
        ("filter", names.chain): [
            ("-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
            ("-i", br, "-j", "ACCEPT"),
            ("-o", br, "-j", names.ports_chain),
            ("-o", br, "-j", "DROP"),
        ],
        ("filter", names.ports_chain): [],
        ("raw", names.raw_chain): raw_rules(),
        ("nat", names.nat_chain): [
            ("-s", net, "!", "-o", br, "-j", "MASQUERADE"),
            ("-s", "127.0.0.0/8", "-o", br, "-j", "MASQUERADE"),
            ("-s", net, "-o", br, "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE"),
        ],
        ("nat", names.dnat_chain): dns_rules(names, net, gateway, dns_target),
        # the apps' service rules (tagged, rewritten by ``services``) come before this one
        ("nat", names.svc_chain): svc_base_rules(names),
    }


def raw_rules() -> list[Args]:
    """What nothing on the bridge may send: loopback as source (spoofed) or destination,
    link-local as destination (after the per-container RETURNs of those allowed it)."""
    return [
        ("-s", LOOPBACK, "-j", "DROP"),
        ("-d", LOOPBACK, "-j", "DROP"),
        ("-d", LINK_LOCAL, "-j", "DROP"),
    ]


def link_local_rules(names: Names, cid: str, ip: str) -> list[Rule]:
    """A container allowed link-local: its address (only its own veth may send from it,
    ``policy``) skips the RAW chain's link-local DROP. Inserted first."""
    return [Rule("raw", names.raw_chain,
                 ("-s", f"{ip}/32", "-d", LINK_LOCAL, *_comment(names.comment(cid)),
                  "-j", "RETURN"))]


def svc_base_rules(names: Names) -> list[Args]:
    """The SVC chain's last rule: on to the published ports (and DNS) for local addresses."""
    return [("-m", "addrtype", "--dst-type", "LOCAL", "-j", names.dnat_chain)]


def dns_rules(names: Names, net: str, gateway: str, target: str | None) -> list[Args]:
    """DNAT the gateway's port 53 to a host resolver on loopback (None: no rules)."""
    if target is None:
        return []
    return [
        ("-s", net, "-d", f"{gateway}/32", "-p", proto, "-m", proto, "--dport", "53",
         *_comment(names.dns_comment), "-j", "DNAT", "--to-destination", f"{target}:53")
        for proto in ("udp", "tcp")
    ]


def jump_rules(names: Names) -> list[Rule]:
    local = ("-m", "addrtype", "--dst-type", "LOCAL")
    return [
        Rule("filter", "FORWARD", ("-j", names.chain)),
        Rule("nat", "PREROUTING", (*local, "-j", names.dnat_chain)),
        Rule("nat", "OUTPUT", ("-j", names.svc_chain)),
        Rule("nat", "POSTROUTING", ("-j", names.nat_chain)),
        Rule("raw", "PREROUTING", ("-i", names.bridge, "-j", names.raw_chain)),
    ]


def port_rules(names: Names, cid: str, ip: str, port: PortMapping) -> list[Rule]:
    """DNAT host ip:port -> container ip:port, and let it through FORWARD."""
    if port.host_port <= 0:
        raise ValueError(f"unresolved host port in {port}")
    dest = () if port.host_ip == "0.0.0.0" else ("-d", f"{port.host_ip}/32")
    proto = ("-p", port.proto, "-m", port.proto)
    tag = _comment(names.comment(cid))
    return [
        Rule("nat", names.dnat_chain,
             (*dest, *proto, "--dport", str(port.host_port), *tag,
              "-j", "DNAT", "--to-destination", f"{ip}:{port.container_port}")),
        Rule("filter", names.ports_chain,
             ("-d", f"{ip}/32", *proto, "--dport", str(port.container_port), *tag,
              "-j", "ACCEPT")),
    ]


@dataclass
class Table:
    chains: set[str] = field(default_factory=set)
    rules: list[tuple[str, Args]] = field(default_factory=list)  # (chain, args) in order

    def rules_of(self, chain: str) -> list[Args]:
        return [args for c, args in self.rules if c == chain]


SaveDump = dict[str, Table]


def parse_save(text: str) -> SaveDump:
    """``iptables-save`` output -> table -> chains and ``-A`` rules (tokens unquoted)."""
    dump: SaveDump = {}
    table: Table | None = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = dump.setdefault(line[1:].strip(), Table())
        elif table is None or not line or line.startswith("#"):
            continue
        elif line.startswith(":"):
            table.chains.add(line[1:].split()[0])
        elif line.startswith("-A "):
            tokens = shlex.split(line)
            table.rules.append((tokens[1], tuple(tokens[2:])))
    return dump


def _comment_of(args: Args) -> str | None:
    for i, tok in enumerate(args[:-1]):
        if tok == "--comment":
            return args[i + 1]
    return None


def _is_container_rule(names: Names, args: Args) -> bool:
    c = _comment_of(args)
    return c is not None and c.startswith(f"paas-{names.instance}:") and c != names.dns_comment


def plan_ensure(dump: SaveDump, names: Names, base: dict[tuple[str, str], list[Args]],
                jumps: Sequence[Rule]) -> list[Argv]:
    """Commands that bring the kernel from ``dump`` to ``base`` + ``jumps`` (first in
    their built-in chain), leaving per-container rules alone. Empty when done."""
    create: list[Argv] = []
    fix: list[Argv] = []
    for (table, chain), want in base.items():
        t = dump.get(table, Table())
        if chain not in t.chains:
            create.append(_chain_argv("-N", table, chain))
            have: list[Args] = []
        else:
            have = [a for a in t.rules_of(chain) if not _is_container_rule(names, a)]
        if have == want:
            continue
        fix += [argv("-D", Rule(table, chain, a)) for a in have]
        fix += [argv("-A", Rule(table, chain, a)) for a in want]
    ours = _our_chains(names)
    for tname, t in sorted(dump.items()):  # jumps of an older layout
        fix += [argv("-D", Rule(tname, chain, args)) for chain, args in t.rules
                if chain not in ours and _jumps_to(args, ours)
                and Rule(tname, chain, args) not in jumps]
    for jump in jumps:
        rules = dump.get(jump.table, Table()).rules_of(jump.chain)
        if rules[:1] == [jump.args] and rules.count(jump.args) == 1:
            continue
        fix += [argv("-D", jump)] * rules.count(jump.args)
        fix.append(argv("-I", jump))
    return create + fix


def plan_remove_container(dump: SaveDump, names: Names, cid: str) -> list[Argv]:
    tag = names.comment(cid)
    ours = _our_chains(names)
    return [
        argv("-D", Rule(tname, chain, args))
        for tname, t in sorted(dump.items())
        for chain, args in t.rules
        if chain in ours and _comment_of(args) == tag
    ]


def _our_chains(names: Names) -> set[str]:
    return {names.chain, names.ports_chain, names.nat_chain, names.dnat_chain,
            names.svc_chain, names.raw_chain}


def _jumps_to(args: Args, chains: Iterable[str]) -> bool:
    targets = set(chains)
    return any(a == "-j" and b in targets for a, b in itertools.pairwise(args))


def plan_uninstall(dump: SaveDump, names: Names) -> list[Argv]:
    """Delete every jump into the instance's chains, then flush and delete them."""
    ours = _our_chains(names)
    cmds: list[Argv] = []
    for tname, t in sorted(dump.items()):
        cmds += [argv("-D", Rule(tname, chain, args)) for chain, args in t.rules
                 if chain not in ours and _jumps_to(args, ours)]
    for tname, t in sorted(dump.items()):
        present = sorted(ours & t.chains)
        cmds += [_chain_argv("-F", tname, c) for c in present]
        cmds += [_chain_argv("-X", tname, c) for c in present]
    return cmds
