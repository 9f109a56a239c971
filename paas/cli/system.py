"""``system:uninstall``: remove everything an instance put on the host.

Containers (killed and removed), paasd and its keeper, the bridge with its
iptables chains and network namespaces, the idmapped views of the layers, the
instance's cgroups, and with
``--purge`` the state directory itself (images, logs, database).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING

from ..errors import InvalidArgument, PaasError

if TYPE_CHECKING:
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "remove_cgroups"]

def _step(text: str) -> float:
    sys.stdout.write(f"-----> {text}\n")
    sys.stdout.flush()
    return time.monotonic()


def _done(t0: float) -> None:
    sys.stdout.write(f"       done in {time.monotonic() - t0:.1f}s\n")


def remove_cgroups(parent: str) -> list[str]:
    """rmdir ``parent`` (and anything left below it) in every cgroup hierarchy; the
    paths that could not be removed."""
    left = []
    root = "/sys/fs/cgroup"
    tops = [os.path.join(root, d) for d in os.listdir(root)] if os.path.isdir(root) else []
    for top in [root, *tops]:
        path = os.path.join(top, parent)
        if not os.path.isdir(path):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                left.append(dirpath)
    return left


def _uninstall(app: App, a: argparse.Namespace) -> int:
    from ..runtime.lifecycle import Runtime

    ctx = app.ctx
    if a.purge and not a.yes:
        raise InvalidArgument(
            f"--purge deletes every image, log and record in {ctx.paths.root}",
            "check PAAS_ROOT, then add --yes if that is what you want",
        )
    rt = Runtime(ctx, app.conn)
    containers = rt.list_containers()
    t0 = _step(f"Removing {len(containers)} container(s)")
    for c in containers:
        rt.remove(c, force=True)
    _done(t0)

    from ..proxy import Proxy

    proxy = Proxy(ctx)
    t0 = _step("Stopping the instance's nginx")
    proxy.stop(keep_config=not a.purge)
    _done(t0)

    t0 = _step("Stopping paasd and its keeper")
    from .daemon import stop

    stop(app, argparse.Namespace(all=True, force=True, timeout=15.0))
    _done(t0)

    from ..network import BridgeNetwork

    net = BridgeNetwork(ctx, app.conn)
    t0 = _step(f"Removing bridge {net.names.bridge} and its iptables rules")
    net.uninstall()
    _done(t0)

    from ..image.views import Views

    t0 = _step("Unmounting the idmapped views of the layers")
    Views(ctx.paths.snapshots).unmount_all()
    _done(t0)

    t0 = _step(f"Removing cgroups {ctx.cgroup_parent}")
    left = remove_cgroups(ctx.cgroup_parent)
    if left:
        raise PaasError(f"cgroups still in use: {', '.join(left[:3])}",
                        "a process outside paas's control is in them; kill it and run again")
    _done(t0)

    if a.purge:
        t0 = _step(f"Deleting {ctx.paths.root}")
        app.conn.close()
        shutil.rmtree(ctx.paths.root)
        _done(t0)
    else:
        sys.stdout.write(f"       kept images and state in {ctx.paths.root} (--purge deletes them)\n")
    return 0


def configure(name: str, p: Parser) -> Handler:
    p.add_argument("--purge", action="store_true",
                   help="also delete PAAS_ROOT: images, logs and the state database")
    p.add_argument("--yes", action="store_true", help="confirm --purge")
    return _uninstall
