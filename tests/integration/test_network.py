"""paas.network against the real kernel: netns, veths, the bridge, iptables, runc.

Each test gets a throwaway instance (``paas_root``) and a random test-only /24
(PAAS_SUBNET) that overlaps nothing on the host. "Containers" are attachments
running a tiny TCP+UDP server on :5000 inside their netns (``nsenter --net``);
"another host" is a netns joined to the host by its own veth pair. Traffic goes
only to loopback and to addresses on those test-made interfaces, except the
NAT-out test, which fetches the Debian mirror's Release file (a package
registry). Teardown uninstalls the network and asserts that no interface,
netns mount, address, iptables chain or rule of the instance is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.config import Context, load_context
from paas.errors import Conflict, InvalidArgument, PaasError
from paas.network import Attachment, BridgeNetwork, parse_publish, resolv_conf_for_bridge
from paas.network.subnet import host_networks
from paas.state import connect

SERVER = r"""
import socket, sys, threading
tag = sys.argv[1].encode()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 5000))
def udp():
    while True:
        data, addr = u.recvfrom(100)
        u.sendto(tag + b" udp " + addr[0].encode(), addr)
threading.Thread(target=udp, daemon=True).start()
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 5000))
t.listen(64)
print("ready", flush=True)
while True:
    c, addr = t.accept()
    c.sendall(tag + b" " + addr[0].encode())
    c.close()
"""

CLIENT = r"""
import socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
        s.sendto(b"hi", (host, port)); print(s.recv(100).decode())
    else:
        s = socket.create_connection((host, port), timeout=2); print(s.recv(100).decode())
except OSError as err:
    print("ERR", type(err).__name__)
"""


def random_free_net(prefix: int, first: str) -> str:
    busy = [n for n, _ in host_networks(skip_dev="")]
    import ipaddress
    for _ in range(100):
        net = ipaddress.IPv4Network(f"{first}.{random.randint(0, 255)}.0/{prefix}", strict=False)
        if not any(net.overlaps(b) for b in busy):
            return str(net)
    raise AssertionError("no free test subnet")


@dataclasses.dataclass
class Env:
    ctx: Context
    env: dict[str, str]
    net: BridgeNetwork
    conn: sqlite3.Connection
    procs: list[subprocess.Popen[str]]

    def new(self) -> BridgeNetwork:
        """Another BridgeNetwork on its own connection (like another paasd thread)."""
        return BridgeNetwork(self.ctx, connect(self.ctx.paths.db), env=self.env)

    def serve(self, att: Attachment, tag: str) -> None:
        p = subprocess.Popen(["nsenter", f"--net={att.netns_path}", sys.executable, "-c",
                              SERVER, tag], stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"


def ask(host: str, port: int, proto: str = "tcp", netns: str | None = None) -> str:
    pre = ["nsenter", f"--net={netns}"] if netns else []
    res = subprocess.run([*pre, sys.executable, "-c", CLIENT, host, str(port), proto],
                         capture_output=True, text=True, timeout=30, check=True)
    return res.stdout.strip()


def leftovers(ctx: Context, bridge: str, subnet: str) -> list[str]:
    inst = ctx.instance
    out = []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name == bridge or name.startswith(("v" + inst, "vo" + inst)):
            out.append(f"interface {name}")
    addrs = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True,
                           check=False).stdout
    prefix = subnet.rsplit(".", 1)[0] + "."
    out += [f"address {line}" for line in addrs.splitlines() if f" {prefix}" in line]
    save = subprocess.run(["iptables-save"], capture_output=True, text=True,
                           check=False).stdout
    out += [f"iptables {line}" for line in save.splitlines()
            if f"PAAS-{inst.upper()}" in line or f"paas-{inst}" in line or subnet in line]
    mounts = Path("/proc/self/mountinfo").read_text()
    out += [f"mount {line}" for line in mounts.splitlines() if ctx.paths.root in line]
    tables = subprocess.run(["nft", "list", "tables", "bridge"], capture_output=True,
                            text=True, check=False).stdout.split()
    out += [f"nftables table {t}" for t in tables if t == f"paas-{inst}"]
    return out


@pytest.fixture
def net_env(paas_root: dict[str, str]) -> Iterator[Env]:
    ctx = load_context(paas_root)
    subnet = random_free_net(24, "10.2" + str(random.randint(0, 4)) + str(random.randint(0, 9)))
    env = {"PAAS_SUBNET": subnet}
    conn = connect(ctx.paths.db)
    e = Env(ctx, env, BridgeNetwork(ctx, conn, env=env), conn, [])
    try:
        yield e
    finally:
        for p in e.procs:
            p.kill()
            p.wait()
        e.net.uninstall()
        left = leftovers(ctx, e.net.names.bridge, subnet)
        assert not left, left
        assert e.net.ipam.count() == 0 and e.net.ipam.get("subnet") is None


@contextlib.contextmanager
def other_host(ctx: Context) -> Iterator[tuple[str, str]]:
    """A netns routed through the host by its own veth: (netns path, host-side address)."""
    net = random_free_net(30, "172.30")
    base = net.split("/")[0].rsplit(".", 1)[0]
    path = os.path.join(ctx.paths.root, "client-ns")
    veth = f"vo{ctx.instance}"
    Path(path).touch()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    try:
        for cmd in (["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", path],
                    ["addr", "add", f"{base}.1/30", "dev", veth],
                    ["link", "set", veth, "up"]):
            subprocess.run(["ip", *cmd], check=True)
        inner = (f"link set lo up\naddr add {base}.2/30 dev eth0\nlink set eth0 up\n"
                 f"route add default via {base}.1\n")
        subprocess.run(["nsenter", f"--net={path}", "ip", "-batch", "-"], input=inner,
                       text=True, check=True)
        yield path, f"{base}.1"
    finally:
        subprocess.run(["ip", "link", "del", veth], capture_output=True, check=False)
        subprocess.run(["umount", path], check=True)
        os.unlink(path)


def _host_address() -> str:
    out = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True,
                                    text=True, check=True).stdout)
    for link in out:
        for a in link.get("addr_info", []):
            if a.get("scope") == "global" and not link["ifname"].startswith(("pb-", "v")):
                return str(a["local"])
    raise AssertionError("the host has no global IPv4 address")


def cid(n: int | str) -> str:
    return f"{n}".rjust(4, "0") + os.urandom(30).hex()


def test_two_containers_reach_each_other_and_the_host_reaches_both(net_env: Env) -> None:
    net = net_env.net
    t0 = time.monotonic()
    a = net.attach(cid("a"))
    b = net.attach(cid("b"))
    assert time.monotonic() - t0 < 5
    assert (a.gateway, a.prefixlen) == (net.gateway, 24) and a.ip != b.ip
    assert os.path.dirname(a.netns_path) == os.path.join(net_env.ctx.paths.run, "netns")
    net_env.serve(a, "A")
    net_env.serve(b, "B")
    assert ask(a.ip, 5000) == f"A {a.gateway}"  # host -> container, from the gateway
    assert ask(b.ip, 5000, "udp") == f"B udp {b.gateway}"
    assert ask(b.ip, 5000, netns=a.netns_path) == f"B {a.ip}"  # container -> container
    # idempotent: same attachment, a fresh BridgeNetwork (daemon restart) sees it too
    assert net.attach(a.container_id) == a
    assert net_env.new().attachment(b.container_id) == b
    t0 = time.monotonic()
    net.ensure()
    assert time.monotonic() - t0 < 0.5
    net.detach(a.container_id)
    net.detach(a.container_id)
    assert net.attachment(a.container_id) is None and not os.path.exists(a.netns_path)
    assert "ERR" in ask(a.ip, 5000)
    c = net.attach(cid("c"))
    # round robin: a just-released address is not handed out again at once (its old
    # netns may still be dying and answering ARP)
    assert c.ip not in (a.ip, b.ip)


def test_published_ports_from_loopback_host_address_and_another_host(net_env: Env) -> None:
    net = net_env.net
    lo_port, any_port = (random.randint(20000, 30000) for _ in range(2))
    a = net.attach(cid("a"), [parse_publish(f"127.0.0.1:{lo_port}:5000"),
                              parse_publish(f"0.0.0.0:{any_port}:5000"),
                              parse_publish("5000"), parse_publish("5000/udp")])
    rnd_tcp, rnd_udp = a.ports[2].host_port, a.ports[3].host_port
    lo, hi = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert lo <= rnd_tcp <= hi and lo <= rnd_udp <= hi
    assert net_env.new().attachment(a.container_id) == a  # resolved ports persisted
    b = net.attach(cid("b"))
    net_env.serve(a, "A")
    net_env.serve(b, "B")
    assert ask("127.0.0.1", lo_port).startswith("A ")
    assert ask("127.0.0.1", any_port) == f"A {a.gateway}"  # loopback masqueraded
    host_ip = _host_address()
    assert ask(host_ip, any_port).startswith("A ")
    assert ask("127.0.0.1", rnd_tcp).startswith("A ")
    assert ask("127.0.0.1", rnd_udp, "udp").startswith("A udp")
    assert ask(host_ip, lo_port).startswith("ERR")  # published on 127.0.0.1 only
    # hairpin: a container reaches a published port through the gateway
    assert ask(a.gateway, any_port, netns=b.netns_path) == f"A {a.gateway}"
    with other_host(net_env.ctx) as (ns, outer_ip):
        assert ask(outer_ip, any_port, netns=ns).startswith("A ")
        assert ask(outer_ip, rnd_udp, "udp", netns=ns).startswith("A udp")
        assert ask(outer_ip, lo_port, netns=ns).startswith("ERR")
        assert ask(b.ip, 5000, netns=ns).startswith("ERR")  # b publishes nothing: dropped
    net.detach(a.container_id)
    assert ask("127.0.0.1", any_port).startswith("ERR")


def test_port_in_use_is_a_conflict_and_creates_nothing(net_env: Env) -> None:
    net = net_env.net
    net.ensure()
    before = subprocess.run(["iptables-save"], capture_output=True, text=True,
                           check=False).stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for spec in (f"127.0.0.1:{port}:80", f"{port}:80"):
            with pytest.raises(Conflict, match=f"port {port} is already in use") as ei:
                net.attach(cid("x"), [parse_publish(spec)])
            assert ei.value.hint
    a = net.attach(cid("a"), [parse_publish(f"{port}:80")])
    with pytest.raises(Conflict, match=f"port {port} is already in use"):
        net.attach(cid("y"), [parse_publish(f"127.0.0.1:{port}:81")])
    with pytest.raises(InvalidArgument, match="not an address of this host"):
        net.attach(cid("z"), [parse_publish("203.0.113.9:8080:80")])
    assert sorted(os.listdir(os.path.dirname(a.netns_path))) == [a.container_id]
    assert net.ipam.ids() == [a.container_id]
    net.detach(a.container_id)
    after = subprocess.run(["iptables-save"], capture_output=True, text=True,
                           check=False).stdout
    strip = re.compile(r"^[#:].*$", re.MULTILINE)
    assert strip.sub("", before) == strip.sub("", after)


def test_foreign_bridge_and_overlapping_subnet_are_refused(net_env: Env) -> None:
    ctx = net_env.ctx
    foreign = BridgeNetwork(ctx, net_env.conn, env={"PAAS_BRIDGE": "lo",
                                                     **net_env.env})
    with pytest.raises(Conflict, match="interface lo exists and is not the bridge"):
        foreign.ensure()
    overlap = BridgeNetwork(ctx, net_env.conn, env={"PAAS_SUBNET": "127.0.0.0/16"})
    with pytest.raises(InvalidArgument, match="PAAS_SUBNET 127.0.0.0/16 overlaps"):
        overlap.attach(cid("a"))
    assert not os.path.exists(f"/sys/class/net/{net_env.net.names.bridge}")
    assert net_env.net.ipam.get("subnet") is None
    save = subprocess.run(["iptables-save"], capture_output=True, text=True,
                           check=False).stdout
    assert f"PAAS-{ctx.instance.upper()}" not in save


def _mirror() -> str:
    for path in glob.glob("/etc/apt/sources.list.d/*.sources"):
        m = re.search(r"^URIs:\s*(\S+)", Path(path).read_text(), re.MULTILINE)
        if m and "security" not in m.group(1):
            return m.group(1).rstrip("/")
    for path in glob.glob("/etc/apt/sources.list*"):
        if os.path.isfile(path):
            m = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", Path(path).read_text(), re.MULTILINE)
            if m:
                return m.group(1).rstrip("/")
    raise AssertionError("no Debian mirror in /etc/apt")


DNS_QUERY = r"""
import random, socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
qid = random.randint(0, 65535)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(q, (server, 53))
r = s.recv(512)
print("ok" if struct.unpack(">H", r[:2])[0] == qid and r[3] & 0xf == 0 else "bad", struct.unpack(">H", r[6:8])[0])
"""

FETCH = r"""
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode()[:2000])
"""


def test_nat_out_and_dns_from_a_container(net_env: Env) -> None:
    a = net_env.net.attach(cid("a"))
    ns = ["nsenter", f"--net={a.netns_path}", sys.executable, "-c"]
    url = f"{_mirror()}/dists/bookworm/Release"
    res = subprocess.run([*ns, FETCH, url], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert "Codename: bookworm" in res.stdout
    conf = resolv_conf_for_bridge(Path("/etc/resolv.conf").read_text(), a.gateway)
    assert conf == net_env.net.resolv_conf()
    server = re.search(r"^nameserver\s+(\S+)", conf, re.MULTILINE)
    assert server is not None
    host = re.sub(r"^https?://([^/:]+).*$", r"\1", url)
    res = subprocess.run([*ns, DNS_QUERY, server.group(1), host], capture_output=True,
                         text=True, timeout=30, check=False)
    assert res.returncode == 0 and res.stdout.startswith("ok"), (res.stdout, res.stderr)


def test_concurrent_attaches_get_distinct_addresses(net_env: Env) -> None:
    net_env.net.ensure()
    results: dict[int, Attachment] = {}
    errors: list[Exception] = []

    def worker(i: int) -> None:
        try:
            results[i] = net_env.new().attach(cid(i), [parse_publish("5000")])
        except (PaasError, OSError, sqlite3.Error) as err:  # asserted below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    ips = {a.ip for a in results.values()}
    ports = {a.ports[0].host_port for a in results.values()}
    assert len(ips) == 20 and len(ports) == 20
    masters = glob.glob(f"/sys/class/net/{net_env.net.names.bridge}/brif/*")
    assert len(masters) == 20
    for a in results.values():
        assert ask(a.ip, 5000).startswith("ERR")  # nothing listens, but it routes
    assert len(net_env.net.ipam.ids()) == 20


def test_spare_attachments_are_handed_out_and_cleaned(net_env: Env) -> None:
    """Attachments made ahead of time: a container gets one (same netns, veth, address),
    it works like any other, and uninstall removes spares too."""
    from paas.model import IdMap

    net = net_env.new()
    idmap = IdMap(0, 100000, 65536)
    assert net.fill_spares(2, idmap) == 2
    assert net.fill_spares(2, idmap) == 0  # already there
    spare_ids = {sid for sid, _ in net.ipam.spares()}
    c = net.attach(cid(7), (), idmap)
    assert c.userns_path is not None and os.path.basename(c.netns_path) in spare_ids
    assert len(net.ipam.spares()) == 1
    assert net.attach(cid(8), (), None).userns_path is None  # no spare for another mapping
    net.detach(c.container_id)
    net.uninstall()
    assert net.ipam.spares() == []
    left = os.listdir(net.names.netns_dir) if os.path.isdir(net.names.netns_dir) else []
    assert left == []


def test_an_attachment_lost_in_a_reboot_comes_back_with_its_address(net_env: Env) -> None:
    net = net_env.net
    a = net.attach(cid("a"), [parse_publish("127.0.0.1::5000")])
    # the "reboot": the netns mounts and the veth are gone, the state DB is not
    for path in (a.netns_path + ".user", a.netns_path):
        subprocess.run(["umount", "-l", path], check=False)
    row = net.ipam.get_row(a.container_id)
    assert row is not None
    subprocess.run(["ip", "link", "del", row.host_veth], check=False)
    again = net.attach(a.container_id)
    assert (again.ip, again.ports) == (a.ip, a.ports)  # what routes to it stays right
    net_env.serve(again, "A")
    assert ask(again.ip, 5000) == f"A {net.gateway}"
    port = again.ports[0].host_port
    assert ask("127.0.0.1", port).startswith("A ")
    save = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert save.count(f"--dport {port} ") == 1  # published once, not twice
