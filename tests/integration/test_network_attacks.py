"""Issue 12's network attacks, run from real containers against the real host.

A container (``paas container:run --rm`` of the stack image, which has python3) runs
``rawnet.py``: hand-built Ethernet frames on its eth0 (CAP_NET_RAW, as every
container has), addressed to the gateway's MAC with destination 127.0.0.1:PORT, where
the test listens on the host's loopback only. A TCP SYN must get no SYN-ACK and the
listener no connection (on the old code the tool completed the handshake by hand and
read the listener's secret); a UDP datagram must not arrive; nor may a datagram with a
spoofed 127.x source. The same from a Dockerfile ``RUN`` step of an
``image:build`` (build containers are on the same bridge). Controls prove each
attack is live: the same frames to the gateway's own address do arrive.

Link-local (169.254.0.0/16, where cloud metadata services live): a netns the test
makes, joined to the host by a veth with 169.254.x.1 on the host side and 169.254.x.2
inside, with a listener on each: unreachable from a container by default (both to the
host and forwarded), reachable with ``--allow-link-local``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STACK = "paas/stack:bookworm"
TOOL = Path(__file__).with_name("rawnet.py")


class Listener:
    """A TCP and a UDP socket on (addr, port) that record whatever reaches them."""

    def __init__(self, addr: str, port: int = 0) -> None:
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((addr, port))
        self.port = self.tcp.getsockname()[1]
        self.tcp.listen(8)
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((addr, self.port))
        self.udp.settimeout(0.2)
        self.connections: list[tuple[str, bytes]] = []
        self.datagrams: list[tuple[str, bytes]] = []
        self._stop = False
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._tcp, self._udp)]
        for t in self._threads:
            t.start()

    def _tcp(self) -> None:
        while not self._stop:
            try:
                conn, peer = self.tcp.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                conn.sendall(b"SECRET from the host's loopback\n")
                try:
                    data = conn.recv(200)
                except OSError:
                    data = b""
                self.connections.append((peer[0], data))

    def _udp(self) -> None:
        while not self._stop:
            try:
                data, peer = self.udp.recvfrom(200)
            except TimeoutError:
                continue
            self.datagrams.append((peer[0], data))

    def close(self) -> None:
        self._stop = True
        for t in self._threads:
            t.join()
        self.tcp.close()
        self.udp.close()


@contextlib.contextmanager
def listening(addr: str) -> Iterator[Listener]:
    lst = Listener(addr)
    try:
        yield lst
    finally:
        lst.close()


class Lab:
    def __init__(self, cli: Any, env: dict[str, str], tools: Path) -> None:
        self.cli, self.env, self.tools = cli, env, tools
        self.instance = env["PAAS_INSTANCE"]
        self.bridge = f"pb-{self.instance}"

    @property
    def mac(self) -> str:
        return Path(f"/sys/class/net/{self.bridge}/address").read_text().strip()

    @property
    def gateway(self) -> str:
        out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", self.bridge],
                             capture_output=True, text=True, check=True).stdout
        return str(json.loads(out)[0]["addr_info"][0]["local"])

    def run(self, *args: str, flags: tuple[str, ...] = ()) -> dict[str, Any]:
        """rawnet.py in a fresh ``--rm`` container; its JSON result."""
        res = self.cli("container:run", "--rm", "-v", f"{self.tools}:/tool:ro", *flags,
                       STACK, "python3", "/tool/rawnet.py", *args, timeout=120)
        result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
        return result


@pytest.fixture(scope="module")
def lab(instance_tools: Any, stack_tar: Path) -> Iterator[Lab]:
    paas_instance, cli_for = instance_tools
    tools = Path(tempfile.mkdtemp(prefix="paas-rawnet-"))
    try:
        tools.chmod(0o755)
        shutil.copy(TOOL, tools / "rawnet.py")
        (tools / "rawnet.py").chmod(0o644)
        with paas_instance() as env:
            cli = cli_for(env)
            cli("image:import", str(stack_tar), STACK)
            cli("daemon:start")
            lab = Lab(cli, env, tools)
            lab.run("connect", "192.0.2.1", "9", "--wait", "0.1")  # sets the bridge up
            yield lab
    finally:
        shutil.rmtree(tools, ignore_errors=True)


def test_raw_tcp_syn_to_host_loopback_gets_no_answer(lab: Lab) -> None:
    with listening(lab.gateway) as control:  # the attack is live: SYN-ACK from the gateway
        got = lab.run("tcp", lab.gateway, str(control.port), "--mac", lab.mac)
        assert got["synack"] is True, got
    with listening("127.0.0.1") as target:
        got = lab.run("tcp", "127.0.0.1", str(target.port), "--mac", lab.mac)
        time.sleep(0.5)
        assert got == {"sent": True, "synack": False, "data": ""}, got
        assert target.connections == []


def test_raw_udp_to_host_loopback_is_dropped(lab: Lab) -> None:
    with listening(lab.gateway) as control:
        lab.run("udp", lab.gateway, str(control.port), "--mac", lab.mac)
        _wait_for(lambda: control.datagrams)
        assert control.datagrams and control.datagrams[0][1] == b"hello from a container"
    with listening("127.0.0.1") as target:
        for _ in range(3):
            lab.run("udp", "127.0.0.1", str(target.port), "--mac", lab.mac)
        time.sleep(1)
        assert target.datagrams == []


def test_spoofed_loopback_source_is_dropped(lab: Lab) -> None:
    # a service that trusts "from 127.0.0.1" must never see a container's datagram
    # (127.0.0.1 itself is refused by the kernel as one of the host's own addresses; the
    # rest of 127/8 is not, once route_localnet is on)
    with listening(lab.gateway) as gw, listening("127.0.0.1") as lo:
        for src in ("127.0.0.1", "127.1.2.3"):
            lab.run("udp", lab.gateway, str(gw.port), "--mac", lab.mac, "--src", src)
            lab.run("udp", "127.0.0.1", str(lo.port), "--mac", lab.mac, "--src", src)
        time.sleep(1)
        assert gw.datagrams == [] and lo.datagrams == [] and lo.connections == []


def test_build_step_cannot_reach_host_loopback(lab: Lab, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(TOOL, ctx / "rawnet.py")
    (ctx / "Dockerfile").write_text(
        f"FROM {STACK}\nCOPY rawnet.py /rawnet.py\nARG MAC\nARG PORT\nARG GW\nARG GWPORT\n"
        "RUN python3 /rawnet.py udp 127.0.0.1 $PORT --mac $MAC && "
        "python3 /rawnet.py udp $GW $GWPORT --mac $MAC --src 127.1.2.3 && "
        "python3 /rawnet.py tcp 127.0.0.1 $PORT --mac $MAC\n")
    with listening("127.0.0.1") as lo, listening(lab.gateway) as gw:
        res = lab.cli("image:build", "--no-cache", "--progress", "plain", "-t", "rawnet:1",
                      "--build-arg", f"MAC={lab.mac}", "--build-arg", f"PORT={lo.port}",
                      "--build-arg", f"GW={lab.gateway}", "--build-arg", f"GWPORT={gw.port}",
                      str(ctx), timeout=300, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        time.sleep(1)
        assert '"synack": false' in res.stdout, res.stdout
        assert lo.datagrams == [] and lo.connections == [] and gw.datagrams == []
    lab.cli("image:rm", "rawnet:1", check=False)


def test_build_step_control_reaches_the_gateway(lab: Lab, tmp_path: Path) -> None:
    """The build test's frames are live: a RUN step's datagram to the gateway arrives."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(TOOL, ctx / "rawnet.py")
    (ctx / "Dockerfile").write_text(
        f"FROM {STACK}\nCOPY rawnet.py /rawnet.py\nARG MAC\nARG PORT\nARG GW\n"
        "RUN python3 /rawnet.py udp $GW $PORT --mac $MAC\n")
    with listening(lab.gateway) as gw:
        lab.cli("image:build", "--no-cache", "-t", "rawnet:2", "--build-arg", f"MAC={lab.mac}",
                "--build-arg", f"PORT={gw.port}", "--build-arg", f"GW={lab.gateway}", str(ctx),
                timeout=300)
        _wait_for(lambda: gw.datagrams)
        assert [d for _, d in gw.datagrams] == [b"hello from a container"]
    lab.cli("image:rm", "rawnet:2", check=False)


# --- link-local -------------------------------------------------------------------

SERVER = r"""
import socket, sys
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((sys.argv[1], int(sys.argv[2]))); t.listen(8); print("ready", flush=True)
while True:
    c, _ = t.accept(); c.sendall(b"metadata " + sys.argv[1].encode() + b"\n"); c.close()
"""


@pytest.fixture
def metadata(lab: Lab) -> Iterator[tuple[str, str, int]]:
    """(host-side 169.254 address, netns-side address, port), a listener on each."""
    n = int(hashlib.sha256(lab.instance.encode()).hexdigest()[:4], 16) % 250 + 1
    host_ip, inner_ip = f"169.254.{n}.1", f"169.254.{n}.2"
    assert n != 169
    path = Path(lab.env["PAAS_ROOT"]) / "metadata-ns"
    veth = f"vm{lab.instance}"
    port = 8169
    path.touch()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        for cmd in (["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns",
                     str(path)],
                    ["addr", "add", f"{host_ip}/30", "dev", veth],
                    ["link", "set", veth, "up"]):
            subprocess.run(["ip", *cmd], check=True)
        inner = (f"link set lo up\naddr add {inner_ip}/30 dev eth0\nlink set eth0 up\n"
                 f"route add default via {host_ip}\n")
        subprocess.run(["nsenter", f"--net={path}", "ip", "-batch", "-"], input=inner,
                       text=True, check=True)
        for pre, ip in (([], host_ip), (["nsenter", f"--net={path}"], inner_ip)):
            p = subprocess.Popen([*pre, sys.executable, "-c", SERVER, ip, str(port)],
                                 stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield host_ip, inner_ip, port
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run(["ip", "link", "del", veth], capture_output=True, check=False)
        subprocess.run(["umount", str(path)], check=True)
        os.unlink(path)


def test_link_local_is_unreachable_by_default(lab: Lab, metadata: tuple[str, str, int]) -> None:
    host_ip, inner_ip, port = metadata
    # the host reaches both: the listeners are up
    for ip in (host_ip, inner_ip):
        with socket.create_connection((ip, port), timeout=2) as s:
            assert s.recv(100) == f"metadata {ip}\n".encode()
    for ip in (host_ip, inner_ip):  # to the host and forwarded
        got = lab.run("connect", ip, str(port), "--wait", "2")
        assert "error" in got, got
    got = lab.run("udp", inner_ip, str(port), "--mac", lab.mac)  # raw frames too
    assert got == {"sent": True}


def test_link_local_with_the_opt_in(lab: Lab, metadata: tuple[str, str, int]) -> None:
    host_ip, inner_ip, port = metadata
    for ip in (host_ip, inner_ip):
        got = lab.run("connect", ip, str(port), "--wait", "3", flags=("--allow-link-local",))
        assert got == {"data": f"metadata {ip}\n"}, got
    # the container's rule went with it; the next container is refused again
    save = subprocess.run(["iptables-save", "-t", "raw"], capture_output=True, text=True,
                          check=True).stdout
    assert f"paas-{lab.instance}:" not in save
    assert "error" in lab.run("connect", inner_ip, str(port), "--wait", "2")


def _wait_for(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.05)
