"""DNS for containers when the host's resolver listens on loopback.

The host's resolv.conf is replaced by a test file naming 127.0.0.153 (like
systemd-resolved's 127.0.0.53); a UDP and a TCP "resolver" run there. The
container's resolv.conf must name the bridge gateway, and the gateway's port 53
must reach the loopback resolver through the DNS DNAT rules. Teardown
uninstalls and checks nothing of the instance is left.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path

from test_network import leftovers, random_free_net

from paas.config import load_context
from paas.network import BridgeNetwork
from paas.state import connect

RESOLVER = "127.0.0.153"

ASK = r"""
import socket, sys
gw = sys.argv[1]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
u.sendto(b"q", (gw, 53)); print(u.recv(100).decode())
t = socket.create_connection((gw, 53), timeout=3); print(t.recv(100).decode())
"""


def test_loopback_resolver_is_reached_through_the_gateway(paas_root: dict[str, str]) -> None:
    ctx = load_context(paas_root)
    resolv = Path(ctx.paths.root) / "host-resolv.conf"
    resolv.write_text(f"nameserver {RESOLVER}\noptions edns0\n")
    subnet = random_free_net(24, "10.25" + str(secrets.randbelow(6)))
    net = BridgeNetwork(ctx, connect(ctx.paths.db), env={"PAAS_SUBNET": subnet},
                        resolv_conf=str(resolv))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind((RESOLVER, 53))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((RESOLVER, 53))
        tcp.listen()

        def serve() -> None:
            _, addr = udp.recvfrom(100)
            udp.sendto(b"udp-answer", addr)
            conn, _ = tcp.accept()
            conn.sendall(b"tcp-answer")
            conn.close()

        threading.Thread(target=serve, daemon=True).start()
        try:
            att = net.attach(secrets.token_hex(32))
            assert net.resolv_conf() == f"nameserver {att.gateway}\noptions edns0\n"
            res = subprocess.run(["nsenter", f"--net={att.netns_path}", sys.executable, "-c",
                                  ASK, att.gateway], capture_output=True, text=True,
                                 timeout=30, check=False)
            assert res.returncode == 0, res.stderr
            assert res.stdout.split() == ["udp-answer", "tcp-answer"]
        finally:
            net.uninstall()
            left = leftovers(ctx, net.names.bridge, subnet)
            assert not left, left
