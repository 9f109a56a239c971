"""The probes of ``paas report``: each looks at one part of the instance (versions,
cgroups, the bridge and its iptables rules, paasd and its keeper, nginx and its live
config, git over HTTP, disk space and the store) and returns ``Check``s, a problem
always with its fix. Read-only: nothing is created, started or repaired here, and
nothing imports pyroute2; the whole report takes well under a second.

Not here: pure verdicts (``checks``), rendering (``paas.cli.doctor``).
"""

from __future__ import annotations

import ipaddress
import os
import platform
import socket
import sqlite3

from .. import __version__, proc
from ..config import Context
from ..errors import PaasError
from .checks import Check, cgroup_mode, disk_check, first_version, git_http_port

__all__ = ["repair_network", "run_probes"]

FIX_DAEMON = "start it with 'paas daemon:start'"
FIX_NETWORK = "run 'paas report --fix' (sets up the bridge and installs its rules again)"


def _tool_version(argv: list[str]) -> str:
    try:
        res = proc.run(argv, check=False, timeout=5, what=argv[0])
    except PaasError:
        return ""
    return first_version(res.stdout + res.stderr)


def versions(ctx: Context) -> list[Check]:
    from ..proxy.params import params_from_env

    out = [Check("versions", "paas version", __version__),
           Check("versions", "python version", platform.python_version()),
           Check("versions", "kernel version", platform.release())]
    runc = _tool_version([ctx.runc, "--version"])
    out.append(Check("versions", "runc version", runc or "missing",
                     "" if runc else f"runc ({ctx.runc}) does not run",
                     "install it: apt-get install runc (or run ./install.sh)"))
    nginx = _tool_version([params_from_env(ctx).nginx, "-v"])
    out.append(Check("versions", "nginx version", nginx or "missing",
                     "" if nginx else "nginx is not installed",
                     "install it: apt-get install nginx-light (or run ./install.sh)"))
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mode = cgroup_mode(f.read())
    out.append(Check("versions", "cgroup mode", mode,
                     "no cgroup filesystem is mounted" if mode == "none" else "",
                     "mount cgroup2 on /sys/fs/cgroup (systemd does at boot)"))
    return out


def network(ctx: Context, conn: sqlite3.Connection) -> list[Check]:
    from ..network import links
    from ..network.bridge import BridgeNetwork
    from ..network.rules import base_rules, jump_rules, parse_save, plan_ensure

    net = BridgeNetwork(ctx, conn)
    br = net.names.bridge
    stored = net.ipam.get("subnet")
    if not stored:
        return [Check("network", "bridge", f"{br} (never set up)",
                      "the instance's bridge was never set up (the first container sets it up)",
                      FIX_NETWORK)]
    subnet = ipaddress.IPv4Network(stored)
    if not links.interface_exists(br):
        return [Check("network", "bridge", f"{br} missing ({subnet})",
                      f"bridge {br} does not exist", FIX_NETWORK)]
    want = f"{next(subnet.hosts())}/{subnet.prefixlen}"
    out = [Check("network", "bridge", f"{br} {want}",
                 "" if want in links.link_addresses(br) and links.is_up(br)
                 else f"bridge {br} is down or lacks its address {want}", FIX_NETWORK)]
    res = proc.run(["iptables-save"], check=False, timeout=10, what="read iptables")
    if res.returncode != 0:
        out.append(Check("network", "rules", "unreadable", "iptables-save failed: "
                         f"{res.stderr.strip()[:200]}", "run as root; install iptables"))
        return out
    missing = plan_ensure(parse_save(res.stdout), net.names,
                          base_rules(net.names, subnet, net._dns_target()),
                          jump_rules(net.names))
    out.append(Check("network", "NAT/FORWARD rules",
                     "ok" if not missing else f"{len(missing)} change(s) needed",
                     "" if not missing else "the bridge's iptables rules are missing or "
                     "changed (containers lose their network or published ports)",
                     FIX_NETWORK))
    return out


def repair_network(ctx: Context, conn: sqlite3.Connection) -> None:
    """``report --fix``: the bridge, its address, sysctls and iptables rules (again)."""
    from ..network.bridge import BridgeNetwork

    BridgeNetwork(ctx, conn).ensure(force=True)


def services(ctx: Context) -> list[Check]:
    from ..daemon.client import DaemonClient
    from ..daemon.process import read_pidfile
    from ..proxy import Proxy
    from ..runtime.resolve import pid_start_time

    out = []
    ping = DaemonClient(ctx.paths).ping(timeout=0.5)
    keeper = read_pidfile(ctx.paths.keeper_pidfile)
    keeper_alive = keeper is not None and pid_start_time(keeper) is not None
    if ping is None:
        out.append(Check("services", "paasd", "not running", "paasd is not running "
                         "(containers cannot be started or restarted)", FIX_DAEMON))
    else:
        pid = read_pidfile(ctx.paths.daemon_pidfile)
        out.append(Check("services", "paasd", f"running (pid {pid})"))
    out.append(Check("services", "keeper",
                     f"running (pid {keeper})" if keeper_alive else "not running",
                     "" if keeper_alive or ping is None else "paasd runs without its keeper "
                     "(containers would die with it)",
                     "restart it: 'paas daemon:stop' then 'paas daemon:start'"))
    proxy = Proxy(ctx)
    if not proxy.is_running():
        out.append(Check("services", "nginx", "not running",
                         "nginx is not running: no app is reachable", "run 'paas nginx:start'"))
    else:
        try:
            proxy.validate()
            out.append(Check("services", "nginx", "running, config ok"))
        except PaasError as err:
            out.append(Check("services", "nginx", "running, config invalid",
                             err.message, "fix or remove the offending vhost "
                             "(paas nginx:show-config APP), then 'paas nginx:validate'"))
    out.append(_git_http())
    return out


def _git_http() -> Check:
    try:
        with open("/etc/default/paas-git-http", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = ""
    port = git_http_port(text, os.environ.get("PAAS_HTTP_GIT_PORT", ""))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return Check("services", "git http", f"listening on port {port}")
    except OSError:
        return Check("services", "git http", f"nothing on port {port}",
                     f"git push over HTTP is unavailable (nothing listens on port {port})",
                     "systemctl start paas-git-http (or run 'paas git:http-serve'); "
                     "pushes over ssh do not need it", warning=True)


def storage(ctx: Context) -> list[Check]:
    from ..image.usage import UsageCache, human_size

    st = os.statvfs(ctx.paths.root)
    out = [disk_check(ctx.paths.root, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)]
    blobs = 0
    blob_dir = os.path.join(ctx.paths.layout, "blobs", "sha256")
    try:
        entries = list(os.scandir(blob_dir))
    except FileNotFoundError:
        entries = []
    for e in entries:
        blobs += e.stat(follow_symlinks=False).st_blocks * 512
    cache = UsageCache(os.path.join(ctx.paths.tmp, "usage-cache.json"))
    unpacked = cache.total()
    layers = f", unpacked layers {human_size(unpacked)}" if unpacked else ""
    out.append(Check("storage", "store", f"blobs {human_size(blobs)}{layers} "
                                         "(details: paas system:df)"))
    return out


def run_probes(ctx: Context, conn: sqlite3.Connection) -> list[Check]:
    from .limits import limits

    return [*versions(ctx), *network(ctx, conn), *services(ctx), *limits(ctx), *storage(ctx)]
