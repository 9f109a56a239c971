"""A real runc container, in a user namespace, joining an attachment's netns.

Proves runc accepts ``build_spec(..., netns_path=att.netns_path)`` with the
user namespace on: inside, eth0 has the attachment's address (read from
/proc/net/fib_trie: minbase has no iproute2), the bind-mounted resolv.conf is
the bridge's, and bash's /dev/tcp reaches a server the test runs on the bridge
gateway. The rootfs is the cached bookworm minbase shifted to host ids 100000+.
Teardown deletes the container, its cgroup parent, the rootfs and the network.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from idshift import shift_ids
from test_network import leftovers, random_free_net

from paas.config import load_context
from paas.model import ContainerConfig, IdMap
from paas.network import BridgeNetwork
from paas.runtime.spec import build_spec
from paas.state import connect

IDMAP = IdMap(container_id=0, host_id=100000, size=65536)


@pytest.fixture(scope="module")
def rootfs(rootfs_tar: Path) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="paas-netrunc-"))
    tmp.chmod(0o711)
    try:
        (tmp / "rootfs").mkdir()
        subprocess.run(["tar", "--numeric-owner", "-x", "-f", str(rootfs_tar), "-C",
                        str(tmp / "rootfs")], check=True)
        shift_ids(tmp / "rootfs", IDMAP.host_id)
        yield tmp / "rootfs"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_cgroup_parent(name: str) -> list[str]:
    left = []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / name.strip("/")
        if top.is_dir():
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: w[0].count("/"),
                                        reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError as err:
                    left.append(f"{dirpath}: {err}")
    return left


def test_runc_userns_container_joins_the_attachment(paas_root: dict[str, str],
                                                    rootfs: Path) -> None:
    ctx = load_context(paas_root)
    subnet = random_free_net(24, "10.24" + str(secrets.randbelow(10)))
    net = BridgeNetwork(ctx, connect(ctx.paths.db), env={"PAAS_SUBNET": subnet})
    cid = secrets.token_hex(32)
    cgroup_parent = f"/paas-test-{secrets.token_hex(4)}"
    runc = ["runc", "--root", os.path.join(ctx.paths.run, "runc")]
    try:
        att = net.attach(cid)
        bundle = Path(ctx.paths.container_dir(cid))
        bundle.mkdir(parents=True)
        resolv = bundle / "resolv.conf"
        resolv.write_text(net.resolv_conf())
        resolv.chmod(0o644)
        with socket.socket() as srv:
            srv.bind((att.gateway, 0))
            srv.listen()
            port = srv.getsockname()[1]
            got: list[str] = []

            def answer() -> None:
                conn, addr = srv.accept()
                got.append(addr[0])
                conn.sendall(b"hello-from-host\n")
                conn.close()

            threading.Thread(target=answer, daemon=True).start()
            script = ("hostname; cat /proc/net/fib_trie; cat /etc/resolv.conf; "
                      f"exec 3<>/dev/tcp/{att.gateway}/{port}; head -n1 <&3")
            cfg = ContainerConfig(image="debian:bookworm", image_id="sha256:" + "0" * 64,
                                  args=("bash", "-c", script))
            spec = build_spec(cfg, rootfs=str(rootfs), cgroups_path=f"{cgroup_parent}/{cid}",
                              idmap=IDMAP, hostname="netc", netns_path=att.netns_path,
                              extra_mounts=({"destination": "/etc/resolv.conf", "type": "bind",
                                             "source": str(resolv),
                                             "options": ["rbind", "ro"]},))
            assert {"type": "network", "path": att.netns_path} in spec["linux"]["namespaces"]
            (bundle / "config.json").write_text(json.dumps(spec))
            res = subprocess.run([*runc, "run", "-b", str(bundle), cid[:32]],
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                 timeout=120, check=False)
        assert res.returncode == 0, res.stderr
        out = res.stdout
        assert out.startswith("netc\n")
        assert f"|-- {att.ip}\n" in out and "/32 host LOCAL" in out
        assert net.resolv_conf() in out
        assert out.rstrip().endswith("hello-from-host")
        assert got == [att.ip]
    finally:
        subprocess.run([*runc, "delete", "-f", cid[:32]], capture_output=True, check=False)
        net.uninstall()
        left = leftovers(ctx, net.names.bridge, subnet) + _remove_cgroup_parent(cgroup_parent)
        assert not left, left
